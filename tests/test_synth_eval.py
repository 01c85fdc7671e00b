"""bench/synth_eval.py scoring: answers, abstentions, ungrounded sentences and the brief that
`synth.generate_brief` makes of a stored reply."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import synth_eval

NOTE = "Run the tests with `make test` before every commit."


def _row(qid: str, qtype: str, must: list[str], evidence: bool = True) -> dict[str, object]:
    ev = [{"n": 1, "text": NOTE, "kind": "cognition", "id": 7, "hit_text": NOTE,
           "category": "workflow", "session_id": "s1", "timestamp": "2026-01-05T09:00:00Z",
           "project": "/p"}]  # fmt: skip
    return {"id": qid, "type": qtype, "project": "p", "question": "how do I run the tests?",
            "must_include": must, "stale": ["pytest"],
            "messages": [{"role": "user", "content": "x"}] if evidence else [],
            "max_new_tokens": 100, "evidence": ev if evidence else [],
            "extractive": f"[1] {NOTE} (workflow, 2026-01-05)" if evidence else "",
            "extractive_tokens": 20}  # fmt: skip


def test_score_counts_answers_ungrounded_sentences_and_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [_row("a", "workflow", ["make test"]), _row("b", "abstention", [], evidence=True)]
    replies = [
        {"id": "a", "reply": "Run `make test` before every commit [1]. Use pytest -x [1].",
         "new_tokens": 20},
        {"id": "b", "reply": "NONE", "new_tokens": 1},
    ]  # fmt: skip
    prompts, gen = tmp_path / "p.jsonl", tmp_path / "g.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gen.write_text("".join(json.dumps(r) + "\n" for r in replies))
    args = argparse.Namespace(prompts=prompts, gen=[f"m={gen}"], types=None, split=None)
    assert synth_eval.cmd_score(args) == 0
    table = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in
             capsys.readouterr().out.splitlines() if line.startswith("| ")}  # fmt: skip
    raw = table["m (raw reply)"]
    assert raw[1] == "100.0"  # the answer is in the reply
    assert raw[2] == "1/1"  # NONE on the abstention question
    assert raw[4] == "50.0 (1/2)"  # "Use pytest -x" is not in the note it cites
    brief = table["m (brief)"]
    assert brief[2] == "0/1"  # generate_brief falls back to the extractive brief on NONE
    assert table["m (brief, NONE = nothing)"][2] == "1/1"  # ... or, asked to, gives no brief
    assert table["extractive"][1] == "100.0"


def test_stale_leak_needs_a_stale_value_without_the_answer() -> None:
    row = {"must_include": ["make test"], "stale": ["pytest"]}
    assert synth_eval.stale_leak(row, "run pytest")
    assert not synth_eval.stale_leak(row, "run make test, not pytest")
    assert synth_eval.is_none(" NONE. ") and not synth_eval.is_none("None of it [1].")
