"""The real Claude Code CLI against the Messages-API stand-in (tests/assets/claude_cli.py): what
it sends, what it writes. Skips when the binary is not installed (`make claude-cli`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from assets.claude_cli import MessagesStub, Reply, claude_bin, run_claude
from assets.make_cli_fixtures import SCENARIOS
from lmm.ingest.run import ingest
from lmm.store.db import Store

pytestmark = pytest.mark.skipif(
    claude_bin() is None,
    reason="the real Claude Code CLI is not installed: run `make claude-cli` or set LMM_CLAUDE_BIN",
)


def _records(run, kind: str) -> list[dict]:
    return [r for recs in run.transcripts().values() for r in recs if r.get("type") == kind]


def test_streamed_text_and_thinking_reach_the_transcript(tmp_path: Path) -> None:
    stub = MessagesStub()
    stub.on("hello", Reply.text("Hi, stub speaking.", thinking="The user greets me."))
    with stub:
        run = run_claude(
            ["-p", "hello there", "--output-format", "json"], stub=stub, home=tmp_path / "h"
        )
    assert run.returncode == 0, run.stderr
    assert run.json()["result"] == "Hi, stub speaking."
    blocks = [b for r in _records(run, "assistant") for b in r["message"]["content"]]
    assert {"type": "text", "text": "Hi, stub speaking."} in blocks
    assert any(b["type"] == "thinking" and b["thinking"] == "The user greets me." for b in blocks)
    prompts = [r["message"]["content"] for r in _records(run, "user")]
    assert prompts == ["hello there"]
    assert "hello there" in stub.main_requests()[0].last_user_text()


def test_tool_calls_run_and_their_results_come_back(tmp_path: Path) -> None:
    home = tmp_path / "h"
    target = home / "work" / "notes.txt"
    stub = MessagesStub()
    stub.on(
        "write the notes",
        Reply.tool("Write", {"file_path": str(target), "content": "alpha\n"}),
        Reply.tool("Edit", {"file_path": str(target), "old_string": "alpha", "new_string": "beta"}),
        Reply.tool("Bash", {"command": "cat notes.txt", "description": "show"}),
        Reply.text("Written."),
    )
    with stub:
        run = run_claude(["-p", "write the notes"], stub=stub, home=home)
    assert run.returncode == 0, run.stderr
    assert target.read_text() == "beta\n"
    assert "beta" in stub.main_requests()[-1].last_user_text()  # Bash's output went back
    names = [
        b["name"]
        for r in _records(run, "assistant")
        for b in r["message"]["content"]
        if b["type"] == "tool_use"
    ]
    assert names == ["Write", "Edit", "Bash"]


def test_hook_context_reaches_the_next_request(tmp_path: Path) -> None:
    context = {
        "hookSpecificOutput": {"hookEventName": "UserPromptSubmit", "additionalContext": "CTX-7f3a"}
    }
    settings = {
        "hooks": {
            "UserPromptSubmit": [
                {"hooks": [{"type": "command", "command": f"echo '{json.dumps(context)}'"}]}
            ],
            "SessionStart": [{"hooks": [{"type": "command", "command": "echo START-91c2"}]}],
        }
    }
    stub = MessagesStub()
    with stub:
        run = run_claude(["-p", "anything"], stub=stub, home=tmp_path / "h", settings=settings)
    assert run.returncode == 0, run.stderr
    first = stub.main_requests()[0].all_text()
    assert "CTX-7f3a" in first and "START-91c2" in first
    kinds = {r["attachment"]["type"] for r in _records(run, "attachment")}
    assert {"hook_success", "hook_additional_context"} <= kinds


def test_api_error_and_interrupted_stream(tmp_path: Path) -> None:
    stub = MessagesStub()
    stub.on("overload", Reply.error(529, "overloaded_error", "Overloaded"))
    stub.on("stall", Reply.stall("partial", seconds=60))
    with stub:
        failed = run_claude(["-p", "overload me"], stub=stub, home=tmp_path / "a")
        stalled = run_claude(
            ["-p", "stall now"], stub=stub, home=tmp_path / "b", interrupt_after=2.5
        )
    assert failed.returncode != 0 and "529" in failed.stdout
    synthetic = [r for r in _records(failed, "assistant") if r["message"]["model"] == "<synthetic>"]
    assert synthetic and synthetic[0].get("isApiErrorMessage") is True
    texts = [json.dumps(r["message"]["content"]) for r in _records(stalled, "user")]
    assert any("[Request interrupted by user]" in t for t in texts)


# ---- every fixture scenario, live: what this binary writes is inventoried and stored cleanly

DOC = Path(__file__).resolve().parents[1] / "docs" / "claude-code.md"


def _documented() -> set[str]:
    return set(re.findall(r"`([^`\s]+)`", DOC.read_text()))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_live_scenario_is_inventoried_and_stored_cleanly(tmp_path: Path, scenario: str) -> None:
    home = tmp_path / "home"
    with MessagesStub() as stub:
        SCENARIOS[scenario](stub, home)
    transcripts = sorted((home / ".claude" / "projects").rglob("*.jsonl"))
    assert transcripts
    documented = _documented()
    for path in transcripts:
        for line in path.read_text().splitlines():
            record = json.loads(line)
            names = [record.get("type")]
            if record.get("type") == "attachment":
                names.append(record["attachment"].get("type"))
            if record.get("type") == "system":
                names.append(record.get("subtype"))
            for name in names:
                assert name in documented, f"{name} ({path.name}) is not in docs/claude-code.md"
    store = Store(tmp_path / "lmm.db")
    report = ingest(store, [home / ".claude" / "projects"])
    assert report.malformed == 0
    texts = [r[0] for r in store.db.execute("SELECT text FROM turns WHERE kind = 'message'")]
    assert texts
    for text in texts:
        assert "<lmm-memory" not in text and "<task-notification>" not in text, text
        assert "[Request interrupted" not in text and "API Error" not in text, text
