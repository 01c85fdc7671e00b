"""Synthesis rows labelled by use (lmm.train.usage): which evidence lines the agent's next turns
used, copied with their citations; NONE when none was."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.retrieve.search import Hit, Source
from lmm.retrieve.synth import Evidence, SynthConfig, ground
from lmm.store.db import open_store
from lmm.train import usage
from lmm.train.usage import Frequency, UsageConfig


def ev(n: int, text: str, session: str = "s-old", time: str = "2026-01-01T00:00:00Z") -> Evidence:
    hit = Hit("turn", n, text, 0.0, Source(session_id=session, timestamp=time))
    return Evidence(n, hit, text, 0.5)


FREQ = Frequency(Counter({"timeout": 1, "server": 50, "config": 40}), 100)


def test_code_shaped_tokens() -> None:
    assert usage.code_shaped("src/stats.rs")
    assert usage.code_shaped("busy_timeout")
    assert usage.code_shaped("30000")
    assert usage.code_shaped("useQuery")
    assert usage.code_shaped("--group-by")
    assert not usage.code_shaped("histogram")
    assert "src/stats.rs" in usage.tokens_of("Edit src/stats.rs now.")


def test_a_line_counts_as_used_only_for_tokens_the_prompt_does_not_hold() -> None:
    line = "Set PRAGMA busy_timeout = 30000 in db.connect() per station."
    cfg = UsageConfig()
    used = usage.used_tokens(
        line, "database is locked again", "Edit db.py: busy_timeout=30000", FREQ, cfg
    )
    assert {"busy_timeout", "30000"} <= used
    # the prompt already names them: restating is not use
    assert not usage.used_tokens(line, "set busy_timeout 30000", "busy_timeout=30000", FREQ, cfg)
    # a token inside a longer word is no use
    assert not usage.used_tokens("Use the foo_bar flag.", "x", "call foo_barbaz()", FREQ, cfg)


def test_target_copies_used_lines_with_citations_and_every_sentence_is_grounded() -> None:
    evidence = [
        ev(1, "Use uv, not pip. Never pip install in this repo."),
        ev(
            2,
            "Fix for database is locked: set PRAGMA busy_timeout = 30000 in db.connect(). "
            "Commit per station.",
        ),
    ]
    brief, cited = usage.target_brief(
        "the sync fails with database is locked",
        "[tool: Edit] {\"file_path\": \"db.py\", \"new_string\": \"busy_timeout = 30000\"}",
        evidence, 120, FREQ, UsageConfig(),
    )  # fmt: skip
    assert cited == [2]
    assert (
        brief == "Fix for database is locked: set PRAGMA busy_timeout = 30000 in db.connect() [2]."
    )
    kept, dropped = ground(brief, evidence, SynthConfig().min_support)
    assert kept and not dropped
    none, cited = usage.target_brief("hello", "nothing related", evidence, 120, FREQ, UsageConfig())
    assert (none, cited) == ("NONE", [])


def test_cap_none_and_split_by_session(tmp_path: Path) -> None:
    rows = [{"messages": [{"role": "assistant", "content": "Use uv [1]." if i % 2 else "NONE"}],
             "session": f"s{i % 4}", "anchor": "user", "cited": [1] if i % 2 else [],
             "evidence": 1} for i in range(40)]  # fmt: skip
    kept = usage.cap_none(rows, 0.25, 0)
    assert sum(1 for r in kept if not r["cited"]) == 6  # 20 used rows -> at most 25% NONE
    stats = usage.write(rows, tmp_path, UsageConfig(), 0.25, 0)
    assert stats["val"]["sessions"] == 1 and stats["train"]["sessions"] == 3
    train = [json.loads(x) for x in (tmp_path / "usage_train.jsonl").read_text().splitlines()]
    assert train and all(set(r) == {"messages"} for r in train)


def test_rows_from_the_sample_store(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    with open_store() as store:
        ingest(store, [paths.sample_projects()])
        run_extraction(store, get_extractor("rules"))
        anchors = usage.anchors(store, UsageConfig())
        assert anchors and all(a.usage.strip() for a in anchors)
        rows = usage.rows_of(store, UsageConfig(causal=False), SynthConfig(), 12, None)
    assert rows
    for r in rows:
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant"]
        target = r["messages"][-1]["content"]
        assert (target == "NONE") == (not r["cited"])
        assert "Task: " in r["messages"][1]["content"]
