"""MemoryCode through the real extraction path: latest instruction versions active, replaced
versions superseded (the dataset's own instruction ids and versions are the ground truth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmm.evals import memorycode
from lmm.memory.extract import run_extraction
from lmm.memory.extract_rules import RuleExtractor
from lmm.store import cognitions
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "memorycode"


def dialogue(name: str) -> memorycode.Dialogue:
    path = DATA / f"{name}.json"
    if not path.exists():
        pytest.skip(f"MemoryCode data not found at {DATA} (shared data absent)")
    return memorycode.load(path)


def test_load_and_turns() -> None:
    d = dialogue("dialogue_121")
    assert (d.mentor, d.mentee, len(d.texts)) == ("Yuichi", "Pablo", 5)
    assert [(i.id, i.version, i.session) for i in d.instructions] == [
        (14, 5, 0), (8, 4, 0), (14, 6, 2), (33, 0, 2)
    ]  # fmt: skip
    sessions = memorycode.to_turns(d)
    info, turns = sessions[0]
    assert (info.session_id, info.project) == ("dialogue_121-s000", "memorycode/dialogue_121")
    assert {t.role for t in turns} == {"user", "assistant"}
    assert turns[0].speaker == "Yuichi" and turns[0].role == "user"
    assert turns[1].timestamp == "2024-01-01T09:01:00Z"


def test_matcher_reads_topics() -> None:
    assert memorycode.matcher("always end attribute names with '_at'") == ["_at", "attribute"]
    assert memorycode.matcher("always start function names with 'x_'") == [
        "x_", "function", "!function argument"
    ]  # fmt: skip
    assert memorycode.matcher(
        "always add the '@retry' decorator from the 'pedantic' module to all methods"
    ) == ["retry", "try", "method"]


@pytest.mark.parametrize(
    "name",
    ["dialogue_1", "dialogue_111", "dialogue_115", "dialogue_121", "dialogue_151", "dialogue_167"],
)
def test_rules_keep_the_latest_instruction_versions(tmp_path: Path, name: str) -> None:
    d = dialogue(name)
    with Store(tmp_path / "lmm.db") as store:
        memorycode.add_to_store(store, d)
        run_extraction(store, RuleExtractor())
        result = memorycode.check(store, d)
        assert result.problems == []
        assert result.correct and result.ok == len({i.id for i in d.instructions})


def test_check_catches_a_stale_instruction(tmp_path: Path) -> None:
    d = dialogue("dialogue_121")
    with Store(tmp_path / "lmm.db") as store:
        memorycode.add_to_store(store, d)
        run_extraction(store, RuleExtractor())
        newest = next(c for c in cognitions.list_(store) if "'_at'" in c.text)
        cognitions.forget(store, newest.id)
        result = memorycode.check(store, d)
        assert not result.correct
        assert result.problems == [
            "instruction 14: latest \"always end attribute names with '_at'\" (session 2) "
            "is not active"
        ]
