"""When recall has a model write the brief: the recorded brief times, the GPU check, the choice,
and what the text output says about the brief it shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmm.cli import main
from lmm.errors import LmmError
from lmm.lm import speed
from lmm.lm.models import ScriptedLM
from lmm.retrieve.recall import RecallConfig, describe, recall
from lmm.store.db import Store


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LMM_GPU", "0")
    monkeypatch.delenv("LMM_MODEL", raising=False)
    return tmp_path / "home"


def test_record_keeps_the_latest_times_and_survives_a_damaged_file(home: Path) -> None:
    assert speed.brief_seconds("smollm2") is None
    for s in (50, 40, 30, 20, 10, 4, 3):
        speed.record("smollm2", s)
    assert speed.load_times()["smollm2"] == [30, 20, 10, 4, 3]
    assert speed.brief_seconds("smollm2") == 10
    (home / speed.SPEED_FILE).write_text("{not json")
    assert speed.load_times() == {}
    speed.record("smollm2", 2.5)
    assert speed.load_times() == {"smollm2": [2.5]}


def test_choose_generates_only_where_a_brief_fits_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = speed.choose("smollm2", 15)
    assert not first.generate and "--generate" in first.why
    speed.record("smollm2", 48.0)
    slow = speed.choose("smollm2", 15)
    assert not slow.generate and "48 s per brief" in slow.why
    speed.record("qwen", 4.0)
    assert speed.choose("qwen", 15).generate
    assert not speed.choose("qwen", 3).generate
    assert speed.choose("http://127.0.0.1:8080/v1", 15).generate
    monkeypatch.setenv("LMM_GPU", "1")
    assert speed.choose("smollm2", 15) == speed.Choice(True, "a GPU is available")


def _cite_first(messages: list[dict[str, str]]) -> str:
    line = next(x for x in messages[-1]["content"].splitlines() if "busy_timeout" in x)
    return f"Set `PRAGMA busy_timeout = 30000` in db.connect() [{line[1 : line.index(']')]}]."


def test_recall_answers_from_evidence_unless_the_model_is_fast(sample_memories: Store) -> None:
    lm = ScriptedLM(respond=_cite_first, name="smollm2")
    result = recall(sample_memories, "database is locked", lm=lm)
    assert (result.brief.mode, lm.calls) == ("extractive", [])
    assert describe(result.brief, result.why).startswith("evidence brief: no GPU here")
    speed.record("smollm2", 2.0)  # a fast runtime: its briefs took 2 s here
    result = recall(sample_memories, "database is locked", lm=lm)
    assert result.brief.mode == "generated" and len(lm.calls) == 1
    assert "wrote briefs in 2.0 s" in describe(result.brief, result.why)
    assert len(speed.load_times()["smollm2"]) == 2  # this brief's time is recorded too


def test_recall_says_when_the_generated_brief_fell_back(sample_memories: Store) -> None:
    lm = ScriptedLM(default="The moon is made of cheese [7].", name="smollm2")
    result = recall(
        sample_memories, "database is locked", lm=lm, config=RecallConfig(generate=True)
    )
    assert result.brief.mode == "fallback"
    assert describe(result.brief, result.why) == (
        f"evidence brief: smollm2's brief failed the grounding check (1 sentence dropped, "
        f"{result.brief.seconds:.1f} s)"
    )


def test_recall_falls_back_when_the_chosen_model_fails(
    sample_memories: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LMM_GPU", "1")
    config = RecallConfig(model=str(tmp_path / "missing.txt"))
    result = recall(sample_memories, "database is locked", config=config)
    assert result.brief.mode == "extractive" and result.why.startswith("the model failed")
    with pytest.raises(LmmError, match=r"missing\.txt"):
        recall(
            sample_memories,
            "database is locked",
            config=RecallConfig(generate=True, model=config.model),
        )


def test_cli_recall_text_names_the_kind_of_brief(
    sample_memories: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    sample_memories.close()
    assert main(["recall", "database is locked", "--local"]) == 0
    out = capsys.readouterr().out
    assert "busy_timeout = 30000" in out
    assert out.endswith("\n\n(evidence brief: no GPU here; --generate has smollm2 write one)\n")
    assert main(["recall", "database is locked", "--no-generate", "--local"]) == 0
    assert capsys.readouterr().out.endswith("(evidence brief: asked for (--no-generate))\n")
    with pytest.raises(SystemExit):
        main(["recall", "x", "--generate", "--no-generate"])


def test_server_recall_takes_auto_and_loads_no_model_on_a_cpu(sample_memories: Store) -> None:
    from lmm.serve import ops

    def no_model() -> ScriptedLM:
        raise AssertionError("the model was loaded")

    out = ops.dispatch(
        sample_memories, "recall", {"query": "database is locked", "generate": "auto"}, lm=no_model
    )
    assert out["mode"] == "extractive" and out["why"].startswith("no GPU here")
    with pytest.raises(LmmError, match='true, false, "auto" or "warm"'):
        ops.dispatch(sample_memories, "recall", {"query": "database is locked", "generate": "yes"})
