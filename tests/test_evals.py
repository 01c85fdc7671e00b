"""The eval harnesses: the held-out rule and set, tasks against every configuration, LoCoMo
(questions, audit ids, QA with a cached scripted reader), MemoryCode judging, validation loss,
reports and `lmm eval`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from lmm import paths
from lmm.cli import main
from lmm.evals import heldout, locomo, report
from lmm.evals.memorycode_eval import judge, states
from lmm.evals.tasks import (
    Example,
    Generation,
    MemoryTask,
    Output,
    Reference,
    build_systems,
    run_task,
)
from lmm.lm.models import ScriptedLM
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
S1 = "ab0469a5-c2ba-4ff7-b9d4-9080df2db07e"
P1_UUID = "7b52cecb-f416-43e5-b71c-41ae32185492"


# ---- the held-out rule


def test_need_score_weights_shared_keywords_by_idf() -> None:
    idf = {"pytest": 2.0, "run": 1.0, "tidepool": 1.0, "": 3.0}
    # keywords of the memory: always, pytest, run (3.0 unseen, 2.0, 1.0); shared: pytest, run
    assert heldout.need_score("Always run pytest", {"pytest", "run", "x"}, idf) == (0.5, 2)
    assert heldout.needed("Always run pytest", {"pytest", "run"}, idf)
    # one shared keyword is never enough, however heavy
    assert heldout.need_score("pytest please", {"pytest"}, idf) == (1.0, 1)
    assert not heldout.needed("pytest please", {"pytest"}, idf)
    assert heldout.need_score("it is", {"it"}, idf) == (0.0, 0)


def test_idf_table() -> None:
    idf = heldout.idf_table([{"a", "b"}, {"a"}])
    assert idf == {"a": math.log(3 / 3) + 1, "b": math.log(3 / 2) + 1, "": math.log(3) + 1}


@pytest.fixture(scope="module")
def sample_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, heldout.HeldOut]:
    store = Store(tmp_path_factory.mktemp("heldout") / "store.db")
    held = heldout.build(
        store, [paths.sample_projects()], name="sample", sample_facts=heldout.SAMPLE_FACTS
    )
    return store, held


def test_sample_heldout_set(sample_set: tuple[Store, heldout.HeldOut]) -> None:
    store, held = sample_set
    assert len(held.memory_sessions) == 4 and len(held.heldout_sessions) == 3
    got = {e.id: [r.label for r in e.references] for e in held.examples}
    assert got == {
        "tidepool/e3b8afa4": ["D2", "F2"],
        "tidepool/af83d107": ["D2"],
        "tidepool/eddc9ef6": ["P1", "F1", "F2"],
    }
    assert held.examples[0].query.startswith('The dashboard\'s "refresh now" button')
    # held-out sessions are gone from the memory store; memory sessions stay
    stored = {r[0] for r in store.db.execute("SELECT DISTINCT session_id FROM turns")}
    assert not stored & set(held.heldout_sessions)
    assert set(held.memory_sessions) <= stored
    # a reference's sources resolve to the turns that state it
    p1 = held.examples[2].references[0]
    assert p1.sources == [(S1, P1_UUID)]


def test_first_prompt_skips_command_wrappers(tmp_path: Path) -> None:
    assert heldout._WRAPPERS.sub(" ", "<command-name>/clear</command-name> hi").strip() == "hi"


# ---- tasks and configurations


@pytest.fixture
def tiny_task(sample_set: tuple[Store, heldout.HeldOut]) -> MemoryTask:
    store, _ = sample_set
    ref = Reference("Use uv, never pip install", "preference", [(S1, P1_UUID)], "P1")
    ex = Example("e1", "install httpx", [ref], "/home/dev/tidepool", "2026-01-16")
    return MemoryTask("tiny", [ex], store, (1, 3))


def test_score_of_a_hand_made_output(tiny_task: MemoryTask) -> None:
    p1_turn = tiny_task.index.turn_of(S1, P1_UUID)
    assert p1_turn is not None
    out = Output("never pip install: uv add", [999_999, p1_turn, p1_turn], 0.5, "test")
    row = tiny_task.score(tiny_task.examples[0], out)
    # keywords {never, pip, install} all present ('use' is a stopword, 'uv' too short)
    assert row["coverage"] == 1.0
    assert (row["recall@1"], row["recall@3"], row["mrr"]) == (0.0, 1.0, 0.5)
    assert row["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert row["per_reference"] == [{"category": "preference", "label": "P1", "coverage": 1.0}]
    assert (row["length_tokens"], row["seconds"], row["mode"]) == (5, 0.5, "test")


def test_every_configuration_runs_the_same_task(tiny_task: MemoryTask) -> None:
    base = ScriptedLM(default="Use uv: never pip install [1].", name="base")
    trained = ScriptedLM(default="- [preference] Use uv, never pip install", name="trained")
    systems, skipped = build_systems(
        ["none", "gen", "retrieval", "rag-base", "rag-trained"], tiny_task.store,
        base=lambda: base, trained=lambda: trained, k=3,
    )  # fmt: skip
    assert [s.name for s in systems] == ["none", "gen", "retrieval", "rag-base", "rag-trained"]
    assert skipped == {}
    results = {s.name: run_task(tiny_task, s) for s in systems}
    assert results["none"]["summary"]["coverage"] == 0.0
    assert results["none"]["summary"]["recall@3"] == 0.0
    assert results["gen"]["rows"][0]["output"] == "- [preference] Use uv, never pip install"
    assert results["gen"]["summary"]["coverage"] == 1.0
    assert results["gen"]["summary"]["recall@3"] == 0.0  # generation retrieves nothing
    # the trained model was asked with the training prompt
    system, user = trained.calls[0]
    assert system["content"].startswith("You are the long-term memory")
    assert user["content"] == (
        "Project: /home/dev/tidepool, date 2026-01-16\n"
        "A new session starts. The user asks: install httpx"
    )
    assert results["retrieval"]["rows"][0]["mode"] in ("extractive", "none")
    assert results["rag-base"]["rows"][0]["mode"] in ("generated", "fallback", "none")


def test_missing_models_are_reported_not_guessed(tiny_task: MemoryTask) -> None:
    systems, skipped = build_systems(["none", "gen", "rag-trained"], tiny_task.store)
    assert [s.name for s in systems] == ["none"]
    assert set(skipped) == {"gen", "rag-trained"}
    assert "--trained-model" in skipped["gen"]


def test_generation_strips_its_output() -> None:
    ex = Example("x", "q", [], None)
    out = Generation(ScriptedLM(default="  memory \n")).answer(ex)
    assert (out.text, out.turn_ids, out.mode) == ("memory", [], "generated")


# ---- LoCoMo


def _locomo_file(path: Path) -> Path:
    conv = {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I painted a lake sunrise last year!"},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "Lovely. I adopted a dog named Rex."},
        ],
        "session_2_date_time": "10:00 am on 20 June, 2023",
        "session_2": [
            {"speaker": "Ann", "dia_id": "D2:1", "text": "I started pottery classes yesterday."},
        ],
    }
    qa = [
        {"question": "When did Ann paint a sunrise?", "answer": 2022, "evidence": ["D1:1"],
         "category": 2},
        {"question": "What is Bob's dog called?", "answer": "Rex", "evidence": ["D1:02"],
         "category": 4},
        {"question": "What did Ann take up?", "adversarial_answer": "golf", "evidence": [],
         "category": 5},
    ]  # fmt: skip
    path.write_text(json.dumps([{"sample_id": "conv-x", "conversation": conv, "qa": qa}]))
    return path


def test_locomo_questions_ids_and_sources(tmp_path: Path) -> None:
    qs = locomo.load_questions(_locomo_file(tmp_path / "l.json"), None)
    assert [q.qid for q in qs] == ["locomo_0_qa0", "locomo_0_qa1", "locomo_0_qa2"]
    assert locomo.sources(qs[1]) == [("conv-x:session_1", "conv-x:D1:2")]
    assert [q.category for q in locomo.select(qs, categories={2, 4})] == [2, 4]
    two = locomo.select(qs, limit=2, seed=1)
    assert len(two) == 2 and set(map(id, two)) > set(map(id, locomo.select(qs, limit=1, seed=1)))


def test_locomo_audit_ids_match_the_dev_file() -> None:
    dev, audit = locomo.dev_file(DATA), locomo.audit_file(DATA)
    if not (dev.is_file() and audit.is_file()):
        pytest.skip(f"LoCoMo data not found at {dev.parent}")
    qs = {q.qid: q for q in locomo.load_questions(dev, audit)}
    q = qs["locomo_0_qa1"]
    assert (q.question, q.answer, q.evidence) == ("When did Melanie paint a sunrise?", "2022",
                                                  ["D1:12"])  # fmt: skip
    assert (q.corrected_evidence, q.audit_error) == (["D1:14"], "WRONG_CITATION")
    assert q.evidence_for(True) == ["D1:14"] and q.evidence_for(False) == ["D1:12"]
    assert sum(1 for q in qs.values() if q.audit_error) == 85


def test_locomo_qa_answers_scores_and_resumes(tmp_path: Path) -> None:
    path = _locomo_file(tmp_path / "l.json")
    store = Store(tmp_path / "store.db")
    locomo.prepare_store(store, path)
    qs = locomo.load_questions(path, None)
    answers = {"When did Ann paint a sunrise?": "2022", "What is Bob's dog called?": "Rex",
               "What did Ann take up?": "Not mentioned."}  # fmt: skip

    def respond(messages: list[dict[str, str]]) -> str:
        user = messages[-1]["content"]
        if user.startswith("No conversation excerpts"):
            return "Not mentioned."
        return next(a for q, a in answers.items() if q in user)

    reader = ScriptedLM(respond=respond, name="scripted")
    cache = locomo.AnswerCache(tmp_path / "answers.jsonl")
    rows = locomo.answer_questions(store, qs, ["none", "full"], reader, cache, budget=1000)
    by = {(r["config"], r["qid"]): r for r in rows}
    assert by[("none", "locomo_0_qa0")]["f1"] == 0.0
    assert by[("none", "locomo_0_qa2")]["f1"] == 1.0  # adversarial: 'not mentioned' is right
    assert by[("full", "locomo_0_qa0")]["f1"] == 1.0
    assert by[("full", "locomo_0_qa1")]["f1"] == 1.0
    # the full context shows every turn with its absolute session date, oldest first
    full_prompt = reader.calls[3][-1]["content"]
    assert full_prompt.splitlines()[1:4] == [
        "[8 May 2023] Ann: I painted a lake sunrise last year [2022]!",
        "[8 May 2023] Bob: Lovely. I adopted a dog named Rex.",
        "[20 June 2023] Ann: I started pottery classes yesterday [19 June 2023].",
    ]  # the default prompt (v3) shows relative times resolved
    summary = locomo.qa_summary(rows)
    assert summary["full"]["f1_cat1_4"] == 100.0 and summary["none"]["f1_cat1_4"] == 0.0
    assert summary["none"]["f1_by_category"] == {"temporal": 0.0, "single-hop": 0.0,
                                                 "adversarial": 100.0}  # fmt: skip
    # a second run reads every answer from the cache: this reader would fail if asked
    broken = ScriptedLM(respond=lambda m: pytest.fail("asked again"), name="scripted")
    again = locomo.answer_questions(store, qs, ["none", "full"], broken,
                                    locomo.AnswerCache(tmp_path / "answers.jsonl"))  # fmt: skip
    assert [r["prediction"] for r in again] == [r["prediction"] for r in rows]


def test_exported_prompts_answered_in_batch_complete_the_cache(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from scripts.batch_reader import answer

    from lmm.lm.models import tiny_model

    path = _locomo_file(tmp_path / "l.json")
    store = Store(tmp_path / "store.db")
    locomo.prepare_store(store, path)
    qs = locomo.load_questions(path, None)
    reader = ScriptedLM(respond=lambda m: pytest.fail("exporting must not generate"), name="r")
    cache = locomo.AnswerCache(tmp_path / "answers.jsonl")
    export = tmp_path / "prompts.jsonl"
    rows = locomo.answer_questions(store, qs, ["none", "full"], reader, cache, export=export)
    assert rows == []
    prompts = [json.loads(line) for line in export.read_text().splitlines()]
    v = locomo.DEFAULT_PROMPT
    assert [p["key"] for p in prompts] == [f"r|{v}|{c}|locomo_0_qa{i}" for c in ("none", "full")
                                           for i in range(3)]  # fmt: skip
    lm = tiny_model(seed=0)
    lm.tokenizer.padding_side = "left"
    answered = answer(prompts, lm.tokenizer, lm.model, batch=4)
    assert [a["key"] for a in answered] == [p["key"] for p in prompts]
    assert all("messages" not in a and a["backend"] == "transformers-cpu" for a in answered)
    with cache.path.open("a") as f:
        f.writelines(json.dumps(a) + "\n" for a in answered)
    done = locomo.answer_questions(store, qs, ["none", "full"], reader,
                                   locomo.AnswerCache(cache.path))  # fmt: skip
    assert [r["prediction"] for r in done] == [a["prediction"] for a in answered]


def test_full_context_keeps_the_latest_turns_within_budget(tmp_path: Path) -> None:
    path = _locomo_file(tmp_path / "l.json")
    store = Store(tmp_path / "store.db")
    locomo.prepare_store(store, path)
    q = locomo.load_questions(path, None)[0]
    words = lambda text: len(text.split())  # noqa: E731
    # costs (words + 1) of the three lines: 12, 12, 10; 22 keeps the last two, 21 the last one
    assert len(locomo.full_context(store, q, 21, words)) == 1
    lines = locomo.full_context(store, q, 22, words)
    assert lines == ["[8 May 2023] Bob: Lovely. I adopted a dog named Rex.",
                     "[20 June 2023] Ann: I started pottery classes yesterday."]  # fmt: skip


# ---- MemoryCode judging


def test_memorycode_states_and_judge() -> None:
    from lmm.evals.memorycode import Dialogue, Instruction

    assert states("Always end attribute names with '_at'.", ["_at", "attribute"])
    assert not states("end attribute names with '_attr'", ["_at", "attribute"])
    dialogue = Dialogue("d", "M", "m", ["", ""], [
        Instruction(1, 0, "always end attribute names with '_j'", 0),
        Instruction(1, 1, "always end attribute names with '_at'", 1),
        Instruction(2, 0, "always start method names with 'a_'", 0),
    ])  # fmt: skip
    good = "[1] Attribute names end with '_at'. [2] Method names start with 'a_'."
    assert judge(good, dialogue) == {"instructions": 2, "latest": 1.0, "stale": 0.0,
                                     "correct": True}  # fmt: skip
    stale = good + " [3] attribute names end with '_j'"
    assert judge(stale, dialogue) == {"instructions": 2, "latest": 1.0, "stale": 1.0,
                                      "correct": False}  # fmt: skip


# ---- validation loss


def test_validation_loss_matches_the_models_own_loss() -> None:
    torch = pytest.importorskip("torch")
    from lmm.evals.loss import validation_loss
    from lmm.lm.models import tiny_model

    lm = tiny_model(seed=1)
    text = "uv run pytest -q"
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        expected = float(lm.model(input_ids=torch.tensor([ids]), labels=torch.tensor([ids])).loss)
    got = validation_loss(lm, [{"text": text}])
    assert got["val_loss"] == pytest.approx(expected, rel=1e-5)
    assert got["perplexity"] == pytest.approx(math.exp(expected), rel=1e-5)
    assert (got["target_tokens"], got["rows"], got["rows_skipped"]) == (len(ids) - 1, 1, 0)
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    both = validation_loss(lm, [{"text": text}, chat], seq_len=10_000)
    assert both["rows"] == 2 and both["target_tokens"] > got["target_tokens"]
    assert validation_loss(lm, [chat], seq_len=3)["rows_skipped"] == 1


# ---- reports and the command


def _results(coverage: float) -> dict[str, Any]:
    res = report.new_results("t", {"x": 1})
    res["configs"] = {"none": {"coverage": 0.0, "recall@5": 0.0, "examples": 2},
                      "retrieval": {"coverage": coverage, "recall@5": 0.5, "examples": 2,
                                    "coverage_by_category": {"fact": coverage}}}  # fmt: skip
    return res


def test_report_files_and_compare(tmp_path: Path) -> None:
    files = report.write(_results(0.25), tmp_path / "a")
    assert {"results.json", "summary.md"} <= {p.name for p in files}
    assert "| retrieval | 0.250 | 0.500 |" in (tmp_path / "a" / "summary.md").read_text()
    text = report.compare(_results(0.25), _results(0.75), ("a", "b"))
    assert "| retrieval | coverage | 0.250 | 0.750 | 0.500 |" in text.splitlines()
    assert "| none | coverage | 0.000 | 0.000 | 0.000 |" in text.splitlines()


def test_report_draws_plots_when_matplotlib_is_there(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    files = {p.name for p in report.write(_results(0.25), tmp_path)}
    assert files == {"results.json", "summary.md", "coverage_by_category.png", "recall_at_k.png"}


def test_lmm_eval_heldout_sample_and_compare(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    out = tmp_path / "run"
    argv = ["eval", "heldout", "--source", "sample", "--configs", "none,retrieval",
            "--embedder", "fake-hash", "--out", str(out), "--json"]  # fmt: skip
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert list(got["configs"]) == ["none", "retrieval"]
    assert got["configs"]["none"]["coverage"] == 0.0
    assert got["configs"]["none"]["examples"] == 3
    assert (out / "heldout.json").is_file() and (out / "summary.md").is_file()
    assert main(["eval", "--compare", str(out), str(out)]) == 0
    assert "| retrieval | coverage |" in capsys.readouterr().out
    assert main(["eval"]) == 2


def test_recorded_prompts_replay_the_same_replies() -> None:
    from scripts.study import Recorder, Replay, prompt_key

    ex = Example("x", "install httpx", [], "/p", "2026-01-16")
    recorder = Recorder()
    assert Generation(recorder).answer(ex).text == ""
    ((messages, max_new),) = recorder.calls
    assert max_new == 160
    replay = Replay("run", {prompt_key(messages): " - [preference] use uv "})
    assert Generation(replay, "gen [run]").answer(ex).text == "- [preference] use uv"
    with pytest.raises(KeyError):
        replay.generate([{"role": "user", "content": "another prompt"}])


def test_memorycode_harness_on_one_dialogue(tmp_path: Path) -> None:
    from lmm.evals.memorycode_eval import eval_queries, run

    first = DATA / "memorycode" / "dialogue_1.json"
    if not first.is_file():
        pytest.skip(f"MemoryCode data not found at {first.parent}")
    results = run(tmp_path / "mc", limit=1, data=first.parent)
    assert list(results["configs"]) == ["retrieval", "digest"]
    retrieval, digest = results["configs"]["retrieval"], results["configs"]["digest"]
    assert retrieval["queries"] == len(eval_queries(first)) > 0
    assert (retrieval["dialogues"], digest["queries"]) == (1, 1)
    assert retrieval["store_correct"] in (0.0, 1.0)
    assert (tmp_path / "mc" / "summary.md").is_file()
