"""Training rows: TRL shapes, the split by session (no leakage), caps per memory, redaction,
synthesis briefs that cite their evidence, and `lmm build-data`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import orjson
import pytest

from lmm import paths
from lmm.cli import main
from lmm.ingest.run import ingest
from lmm.memory import extract
from lmm.records import SessionInfo, Turn
from lmm.retrieve.synth import Evidence, ground
from lmm.store import cognitions, history
from lmm.store.cognitions import Cognition, SourceRef
from lmm.store.db import Store
from lmm.train import pairs, synthesis
from lmm.train.base import DataConfig, Memory

OTHER = "/home/dev/ledger"  # a second project, for distractors from other projects


def _other_project(store: Store) -> None:
    """Two short sessions of another project, one memory each, plus codebase knowledge."""
    for n, (sid, when, ask) in enumerate(
        [
            ("led-1", "2026-01-06T10:00:00Z", "Set up the ledger app with poetry and black."),
            ("led-2", "2026-01-20T10:00:00Z", "Always format the ledger code with black first."),
        ]
    ):
        store.add_session(SessionInfo(sid, "claude", project=OTHER))
        turns = [
            Turn(sid, f"{sid}-u", "user", "message", ask, uuid=f"{sid}-u", timestamp=when,
                 cwd=OTHER),
            Turn(sid, f"{sid}-a", "assistant", "message", f"Done with step {n} of the ledger work.",
                 uuid=f"{sid}-a", parent_uuid=f"{sid}-u", timestamp=when, cwd=OTHER),
        ]  # fmt: skip
        store.add_turns(turns)
        store.refresh_sessions([sid])
        cognitions.add(store, Cognition(
            text=ask, category="preference", project_id=store.project_id(OTHER), salience=0.6,
            sources=[SourceRef(session_id=sid, turn_key=f"{sid}-u", timestamp=when, quote=ask)],
        ))  # fmt: skip
    cognitions.add(store, Cognition(
        text="ledger/cli.py defines the `ledger report` command.", category="fact",
        project_id=store.project_id(OTHER), origin="code",
        sources=[SourceRef(file_path="ledger/cli.py", line_no=1, quote="def report")],
    ))  # fmt: skip


@pytest.fixture(scope="module")
def ledger_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Once per module: the sample, a second project (the ledger app), the rule extractor run."""
    s = Store(tmp_path_factory.mktemp("pairs") / "lmm.db")
    ingest(s, [paths.sample_projects()])
    _other_project(s)
    extract.run_extraction(s, extract.get_extractor("rules"))
    return s


@pytest.fixture(scope="module")
def data(ledger_store: Store) -> pairs.TrainingData:
    return pairs.build(ledger_store, DataConfig(val_fraction=0.2, seed=3))


def _texts(rows: list[dict]) -> list[str]:
    return [r["text"] if "text" in r else json.dumps(r["messages"]) for r in rows]


def test_rows_have_trl_shapes(data: pairs.TrainingData) -> None:
    assert set(data.rows) == set(pairs.STEMS)
    for stem, rows in data.rows.items():
        assert rows, f"{stem} is empty"
        for row in rows:
            if stem.startswith("cpt"):
                assert list(row) == ["text"] and row["text"].startswith("# ")
            else:
                assert list(row) == ["messages"]
                assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
                assert all(m["content"].strip() for m in row["messages"])


def test_split_is_by_session_without_leakage(ledger_store: Store, data: pairs.TrainingData) -> None:
    train, val = set(data.stats["sessions"]["train"]), set(data.stats["sessions"]["val"])
    every = {r[0] for r in ledger_store.db.execute("SELECT id FROM sessions")}
    assert train | val == every and not train & val and val
    train_text = "\n".join(_texts(data.rows["cpt_train"] + data.rows["sft_train"]
                                  + data.rows["synthesis_train"]))  # fmt: skip
    val_text = "\n".join(_texts(data.rows["cpt_val"] + data.rows["sft_val"]))
    for sid in val:
        said = [t.text for t in ledger_store.session_turns(sid)
                if t.role == "user" and t.kind == "message" and len(t.text) > 40]  # fmt: skip
        assert said, sid
        for text in said:  # every user message of a val session: in val rows, never in train
            assert text[:200] not in train_text
            assert json.dumps(text[:200])[1:-1] in val_text or text[:200] in val_text
    memories = pairs.load_memories(ledger_store)
    val_only = [m for m in memories.values() if m.sessions and m.sessions <= val]
    assert val_only
    for m in val_only:
        assert m.text not in train_text and json.dumps(m.text)[1:-1] not in train_text


def test_split_is_deterministic_and_keeps_one_session_for_validation() -> None:
    ids = [f"s{i}" for i in range(7)]
    assert pairs.split_sessions(ids, 0.1, 0) == pairs.split_sessions(list(reversed(ids)), 0.1, 0)
    assert len(pairs.split_sessions(ids, 0.1, 0)) == 1
    assert len(pairs.split_sessions(ids, 0.5, 0)) == 4
    assert pairs.split_sessions(ids, 0.0, 0) == set()
    assert pairs.split_sessions(["only"], 0.5, 0) == set()


def test_cap_per_memory_bounds_repeats(ledger_store: Store) -> None:
    capped = pairs.build(ledger_store, DataConfig(max_per_memory=1, val_fraction=0.2, seed=3))
    free = pairs.build(ledger_store, DataConfig(max_per_memory=0, val_fraction=0.2, seed=3))
    assert capped.stats["sft_train"]["pairs_per_memory"]["max"] == 1
    assert free.stats["sft_train"]["pairs_per_memory"]["max"] > 1
    answers = [r["messages"][2]["content"] for r in capped.rows["sft_train"]]
    for m in pairs.load_memories(ledger_store).values():
        assert sum(1 for a in answers if f"] {m.text} (" in a or a.endswith(f"] {m.text}")) <= 1


def test_pair_stats_expose_the_parrot_problem() -> None:
    texts = {1: "use uv", 2: "pytest -q", 3: "httpx", 4: "wal", 5: "cron"}
    stats = pairs.pair_stats([[1], [1], [1, 2], [3], [4], [5], [1], []], texts)
    assert stats == {
        "pairs": 8,
        "negatives": 1,
        "memories": 5,
        "pairs_per_memory": {"mean": 1.6, "max": 4, "histogram": {"1": 4, "4-7": 1}},
        "top4_target_share": round(6 / 7, 4),  # [1] x3, then [1,2], [3], [4] once each
        "top4_memory_share": round(6 / 7, 4),
        "most_repeated_targets": [
            {"count": 3, "target": "use uv"},
            {"count": 1, "target": "use uv | pytest -q"},
            {"count": 1, "target": "httpx"},
            {"count": 1, "target": "wal"},
            {"count": 1, "target": "cron"},
        ],
        "most_repeated_memories": [
            {"count": 4, "memory": "use uv"},
            {"count": 1, "memory": "pytest -q"},
            {"count": 1, "memory": "httpx"},
            {"count": 1, "memory": "wal"},
            {"count": 1, "memory": "cron"},
        ],
    }


def test_contexts_are_opening_prompts_and_chunks(ledger_store: Store) -> None:
    sess = next(s for s in history.sessions(ledger_store) if s["id"] == "led-1")
    turns = ledger_store.session_turns("led-1")
    got = pairs.contexts(sess, turns, DataConfig(chunk_turns=1))
    assert [(c.kind, c.turn_keys, c.time) for c in got] == [
        ("opening", frozenset({"led-1-u"}), "2026-01-06T10:00:00Z"),
        ("chunk", frozenset({"led-1-u"}), "2026-01-06T10:00:00Z"),
        ("chunk", frozenset({"led-1-a"}), "2026-01-06T10:00:00Z"),
    ]
    assert got[0].header == f"Project: {OTHER}, date 2026-01-06"
    assert got[0].query == "Set up the ledger app with poetry and black."
    assert got[2].text == "Assistant: Done with step 0 of the ledger work."


def test_memories_relevant_to_a_context_are_sourced_in_it_or_found_earlier(
    ledger_store: Store,
) -> None:
    memories = pairs.load_memories(ledger_store)
    sess = next(s for s in history.sessions(ledger_store) if s["id"] == "led-2")
    ctx = pairs.contexts(sess, ledger_store.session_turns("led-2"), DataConfig())[0]
    ranked = pairs.rank_memories(ledger_store, ctx, memories, pairs.by_turn(memories),
                                 lambda m: True, DataConfig())  # fmt: skip
    texts = [(memories[i].text, prio) for i, prio in ranked]
    assert texts == [
        ("Always format the ledger code with black first.", 0),  # said in this very prompt
        ("Set up the ledger app with poetry and black.", 1),  # earlier, shares "ledger", "black"
    ]
    early = pairs.contexts(next(s for s in history.sessions(ledger_store) if s["id"] == "led-1"),
                           ledger_store.session_turns("led-1"), DataConfig())[0]  # fmt: skip
    ranked = pairs.rank_memories(ledger_store, early, memories, pairs.by_turn(memories),
                                 lambda m: True, DataConfig())  # fmt: skip
    assert [memories[i].text for i, _ in ranked] == [
        "Set up the ledger app with poetry and black."  # the later one is not known yet
    ]


def test_codebase_knowledge_becomes_a_cpt_document(data: pairs.TrainingData) -> None:
    docs = [r["text"] for r in data.rows["cpt_train"] if r["text"].startswith("# What the code")]
    assert docs == [
        f"# What the code of {OTHER} says\n\n"
        "- ledger/cli.py: ledger/cli.py defines the `ledger report` command."
    ]


def test_synthesis_briefs_cite_the_evidence_that_holds_each_memory(
    data: pairs.TrainingData,
) -> None:
    checked = 0
    for row in data.rows["synthesis_train"] + data.rows["synthesis_val"]:
        system, user, answer = (m["content"] for m in row["messages"])
        assert system.startswith("You write a short memory brief")
        evidence = dict(re.findall(r"^\[(\d+)\] \((?:[^)]*)\) (.*)$", user, re.M))
        if answer == synthesis.NONE:
            continue
        for line in answer.splitlines():
            cited = [int(n) for n in re.findall(r"\[(\d+)\]", line)]
            assert cited and all(str(n) in evidence for n in cited)
            claim = re.sub(r" (\[\d+\])+(?=[.!?]?$)", "", line).rstrip(".")
            assert any(claim.split(" [")[0][:40] in evidence[str(n)] for n in cited), line
        checked += 1
    assert checked >= 5


def test_synthesis_brief_survives_the_grounding_check() -> None:
    from lmm.retrieve.search import Hit, Source

    m = Memory(1, "Use uv, not pip. Never run pip install.", "preference", 0.9, 1,
                     "2026-01-05T09:00:00Z", None, frozenset())  # fmt: skip
    brief = synthesis.render_brief([(m, [2])])
    assert brief == "Use uv, not pip [2]. Never run pip install [2]."
    hit = Hit("cognition", 1, m.text, 1.0, Source(timestamp=m.known_from), category="preference")
    other = Hit("turn", 9, "Something else entirely.", 0.5, Source())
    evidence = [Evidence(1, other, other.text, 0.0), Evidence(2, hit, hit.text, 1.0)]
    kept, dropped = ground(brief, evidence, 0.3)
    assert (kept, dropped) == (["Use uv, not pip [2].", "Never run pip install [2]."], [])


def test_write_redacts_again_and_is_complete(ledger_store: Store, tmp_path: Path) -> None:
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
    cid = cognitions.add(ledger_store, Cognition(
        text="deploy token lives in GH_TOKEN", category="workflow", project_id=None,
        sources=[SourceRef(quote="x")],
    ))  # fmt: skip
    try:  # a secret that slipped past the store's redaction (raw SQL, as an old store might)
        ledger_store.db.execute("UPDATE cognitions SET text = ? WHERE id = ?",
                         (f"deploy with GH_TOKEN={secret} set", cid))  # fmt: skip
        data = pairs.build(ledger_store, DataConfig(val_fraction=0.2, seed=3, max_per_memory=0))
        written = pairs.write(data, tmp_path / "out")
    finally:
        ledger_store.db.execute("DELETE FROM cognitions WHERE id = ?", (cid,))
    assert sorted(p.name for p in written.values()) == sorted(
        [f"{s}.jsonl" for s in pairs.STEMS] + ["stats.json"]
    )
    everything = "".join(p.read_text() for p in written.values())
    assert secret not in everything
    assert "[REDACTED:github]" in everything
    for stem in pairs.STEMS:
        lines = (tmp_path / "out" / f"{stem}.jsonl").read_bytes().splitlines()
        assert len(lines) == len(data.rows[stem])
        assert all(orjson.loads(line) for line in lines)
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["rows"] == data.stats["rows"]


def test_cli_build_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    with Store(paths.db_path()) as s:
        ingest(s, [paths.sample_projects()])
        extract.run_extraction(s, extract.get_extractor("rules"))
    out = tmp_path / "data"
    assert main(["build-data", "--out", str(out), "--max-per-memory", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stats"]["config"]["max_per_memory"] == 3
    assert result["stats"]["sft_train"]["pairs_per_memory"]["max"] <= 3
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{s}.jsonl" for s in pairs.STEMS] + ["stats.json"]
    )
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o600}  # as the store is
    assert out.stat().st_mode & 0o777 == 0o700
    assert main(["build-data", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "pairs per memory mean" in text and "top-4 memories appear in" in text
    assert "most repeated memories (train):" in text
