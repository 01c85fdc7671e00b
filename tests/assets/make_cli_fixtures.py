"""Write the real-CLI transcript fixtures under tests/assets/cli-<version>/.

Each scenario runs the real `claude` CLI against the scripted Messages-API stand-in in a fresh
HOME and keeps what it wrote under HOME/.claude/projects, redacted: the HOME path becomes
/home/user, every UUID a sequential neutral one, long strings (system prompt snapshots, skill
listings, request blobs) are cut to a stub of their start.

    LMM_CLAUDE_BIN=... python tests/assets/make_cli_fixtures.py [scenario ...]
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.claude_cli import (
    PINNED_VERSION,
    ClaudeRun,
    MessagesStub,
    Reply,
    Request,
    claude_bin,
    cli_env,
    make_home,
    run_claude,
)

OUT = Path(__file__).resolve().parent / f"cli-{PINNED_VERSION}"
CUT = 300  # strings longer than this are cut (they are CLI boilerplate, not conversation)
LMM_CONTEXT = '<lmm-memory source="lmm">Prefer uv over pip in this project.</lmm-memory>'

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def hooks() -> dict[str, object]:
    """Hooks as `lmm install-hooks` writes them, answering with lmm-style context."""

    def out(event: str) -> str:
        body = {"hookSpecificOutput": {"hookEventName": event, "additionalContext": LMM_CONTEXT}}
        return "echo " + json.dumps(json.dumps(body))

    return {
        "hooks": {
            "SessionStart": [{"hooks": [{"type": "command", "command": out("SessionStart")}]}],
            "UserPromptSubmit": [
                {"hooks": [{"type": "command", "command": out("UserPromptSubmit")}]}
            ],
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": out("PreToolUse")}]}
            ],
        }
    }


# ---- scenarios: each runs the CLI in `home` and returns its last run


def tools(stub: MessagesStub, home: Path) -> ClaudeRun:
    """Text, thinking, parallel Bash + Write, Read, Edit; lmm-style hooks injecting context."""
    notes = home / "work" / "notes.txt"
    stub.on(
        "set up the notes",
        Reply.tools(
            [
                ("Bash", {"command": "echo ready", "description": "check the shell"}),
                ("Write", {"file_path": str(notes), "content": "alpha\n"}),
            ],
            text="I will check the shell and write the file.",
            thinking="Two independent steps; run them together.",
        ),
        Reply.tool("Read", {"file_path": str(notes)}),
        Reply.tool("Edit", {"file_path": str(notes), "old_string": "alpha", "new_string": "beta"}),
        Reply.text("The notes file now says beta.", thinking="Done; report back."),
    )
    return run_claude(["-p", "set up the notes file"], stub=stub, home=home, settings=hooks())


def agents(stub: MessagesStub, home: Path) -> ClaudeRun:
    """Agent in the foreground and in the background (task-notifications come back), then
    SendMessage to the first agent, which answers."""

    def send_message(request: Request) -> Reply:
        (agent_id,) = re.findall(r"agentId: (\w+)", request.all_text())[:1]
        message = {"to": agent_id, "summary": "follow up", "message": "FOLLOW-UP which count?"}
        return Reply.tool("SendMessage", message)

    stub.on("FOLLOW-UP", Reply.text("Follow-up answered: one."))
    stub.on("SUBTASK-ONE", Reply.tool("Bash", {"command": "echo one"}), Reply.text("Report one."))
    stub.on("SUBTASK-TWO", Reply.text("Report two."))
    first = {"description": "first part", "prompt": "SUBTASK-ONE count"}
    second = {"description": "second part", "prompt": "SUBTASK-TWO count"}
    stub.on(
        "split the work",
        Reply.tool("Agent", {**first, "subagent_type": "general-purpose"}),
        Reply.tool(
            "Agent", {**second, "subagent_type": "general-purpose", "run_in_background": True}
        ),
        Reply.text("Both agents are running."),
        Reply.text("The second report is in."),
        send_message,
        Reply.text("Asked the first agent again."),
        Reply.text("All reports are in."),
    )
    return run_claude(["-p", "split the work in two"], stub=stub, home=home, timeout=90)


def fork(stub: MessagesStub, home: Path) -> ClaudeRun:
    """A fork sub-agent (subagent_type "fork"): it starts from a copy of the parent's context."""
    stub.on(
        "explore in a fork",
        Reply.tool(
            "Agent",
            {
                "description": "forked look",
                "prompt": "FORKED-TASK look around",
                "subagent_type": "fork",
            },
        ),
        Reply.text("The fork is running."),
        Reply.text("The fork reported back."),
    )
    stub.on("FORKED-TASK", Reply.text("Fork report: nothing to see."))
    env = {"CLAUDE_CODE_FORK_SUBAGENT": "1"}
    return run_claude(["-p", "please explore in a fork"], stub=stub, home=home, env=env, timeout=90)


def api_error(stub: MessagesStub, home: Path) -> ClaudeRun:
    """An overloaded API (529) without retries: a synthetic assistant record; then a 529 that
    a retry gets past: a `system` / `api_error` record before the answer."""
    stub.on("first question", Reply.text("First answer."))
    # before "overload": the failed prompt and the next one reach the API as one user message
    stub.on("retry", Reply.error(529, "overloaded_error", "Overloaded"), Reply.text("Recovered."))
    stub.on("overload", Reply.error(529, "overloaded_error", "Overloaded"))
    first = run_claude(["-p", "first question", "--output-format", "json"], stub=stub, home=home)
    sid = first.json()["session_id"]
    run_claude(["-p", "now overload", "--resume", sid], stub=stub, home=home)
    retries = {"CLAUDE_CODE_MAX_RETRIES": "2"}
    return run_claude(["-p", "retry please", "--resume", sid], stub=stub, home=home, env=retries)


def interrupt(stub: MessagesStub, home: Path) -> ClaudeRun:
    """A stream that stalls after some text; the user interrupts (SIGINT)."""
    stub.on("stall", Reply.stall("Partial answer before the stall", seconds=60))
    return run_claude(["-p", "stall please"], stub=stub, home=home, interrupt_after=2.5)


def resume(stub: MessagesStub, home: Path) -> ClaudeRun:
    """--resume, --continue, then --fork-session (a new session copying the old records)."""
    for word in ("first", "second", "third", "fourth"):
        stub.on(f"{word} prompt", Reply.text(f"Answer to the {word} prompt."))
    first = run_claude(["-p", "first prompt", "--output-format", "json"], stub=stub, home=home)
    sid = first.json()["session_id"]
    run_claude(["-p", "second prompt", "--resume", sid], stub=stub, home=home)
    run_claude(["-p", "third prompt", "--continue"], stub=stub, home=home)
    return run_claude(
        ["-p", "fourth prompt", "--resume", sid, "--fork-session"], stub=stub, home=home
    )


def compact(stub: MessagesStub, home: Path) -> ClaudeRun:
    """/compact, then a prompt after it; a title (--name, /rename)."""
    stub.on("first prompt", Reply.text("Answer before compaction."))
    stub.on(
        "create a detailed summary", Reply.text("<summary>The user asked one question.</summary>")
    )
    stub.on("after compaction", Reply.text("Answer after compaction."))
    first = run_claude(
        ["-p", "first prompt", "--output-format", "json", "--name", "notes-agent"],
        stub=stub,
        home=home,
    )
    sid = first.json()["session_id"]
    run_claude(["-p", "/compact", "--resume", sid], stub=stub, home=home)
    run_claude(["-p", "/rename Fixture title", "--resume", sid], stub=stub, home=home)
    return run_claude(["-p", "a prompt after compaction", "--resume", sid], stub=stub, home=home)


def queued(stub: MessagesStub, home: Path) -> ClaudeRun:
    """A second prompt sent (stream-json input) while the first turn is still running."""
    stub.on(
        "slow task",
        Reply.tool("Bash", {"command": "sleep 3; echo slept"}),
        Reply.text("Slow task done."),
    )
    stub.on("queued follow-up", Reply.text("Follow-up done."))
    binary = claude_bin()
    assert binary is not None
    make_home(home)
    cwd = home / "work"
    cwd.mkdir(parents=True, exist_ok=True)
    argv = [
        str(binary),
        "-p",
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
    ]
    argv += ["--permission-mode", "bypassPermissions"]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=cli_env(stub, home),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None

    def send(text: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(
            json.dumps({"type": "user", "message": {"role": "user", "content": text}}) + "\n"
        )
        proc.stdin.flush()

    def wait_for(requests: int, limit: float = 30.0) -> None:
        deadline = time.monotonic() + limit
        while len(stub.main_requests()) < requests and time.monotonic() < deadline:
            time.sleep(0.1)

    send("start the slow task")
    wait_for(1)  # the model asked for `sleep 3`: the turn is running
    time.sleep(0.5)
    send("queued follow-up please")
    wait_for(2)  # the tool result and the queued prompt went back together
    time.sleep(1.0)
    proc.stdin.close()
    proc.stdin = None  # closed: communicate() only reads
    out, err = proc.communicate(timeout=60)
    return ClaudeRun(proc.returncode, out, err, home, cwd)


SCENARIOS: dict[str, Callable[[MessagesStub, Path], ClaudeRun]] = {
    f.__name__: f for f in (tools, agents, fork, api_error, interrupt, resume, compact, queued)
}


# ---- redaction


BULKY = ("api-request-shape", "api-request-blob", "api-request", "prompt_snapshot")


def _shrink(record: dict[str, object]) -> object:
    """Conversation records stay whole; records that copy whole API requests keep only their
    scalar fields; the others have long strings cut."""
    attachment = record.get("attachment")
    kind = attachment.get("type") if isinstance(attachment, dict) else record.get("type")
    if record.get("type") in ("user", "assistant", "system"):
        return record  # the conversation itself: kept whole
    if kind not in BULKY:
        return _cut(record)
    out = {
        k: (_cut(v) if v is None or isinstance(v, str | int | float) else "[cut]")
        for k, v in record.items()
    }
    if isinstance(attachment, dict):
        out["attachment"] = {"type": kind, "systemPrompt": "[cut]"}
    return out


def _cut(value: object) -> object:
    if isinstance(value, str):
        return value if len(value) <= CUT else value[:CUT] + " [cut]"
    if isinstance(value, list):
        return [_cut(v) for v in value]
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in value.items()}
    return value


def redact_tree(projects: Path, dest: Path, home: Path) -> list[Path]:
    """Copy projects/ to dest with neutral paths and ids; returns the written files."""
    ids: dict[str, str] = {}

    def neutral(match: re.Match[str]) -> str:
        return ids.setdefault(match.group(0), f"00000000-0000-4000-8000-{len(ids) + 1:012d}")

    home_s, folder = str(home), str(home).replace("/", "-").replace(".", "-").replace("_", "-")
    written = []
    for path in sorted(projects.rglob("*")):
        if not path.is_file() or path.suffix not in (".jsonl", ".json"):
            continue
        rel = str(path.relative_to(projects)).replace(folder, "-home-user")
        rel = _UUID.sub(neutral, rel)
        lines = []
        for line in path.read_text().splitlines():
            text = (
                json.dumps(_shrink(json.loads(line)), ensure_ascii=False) if line.strip() else line
            )
            text = text.replace(home_s, "/home/user").replace(folder, "-home-user")
            lines.append(_UUID.sub(neutral, text))
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
        written.append(target)
    return written


def main(names: list[str]) -> None:
    if claude_bin() is None:
        raise SystemExit("no claude binary: set LMM_CLAUDE_BIN or run `make claude-cli`")
    for name in names or list(SCENARIOS):
        with tempfile.TemporaryDirectory() as tmp, MessagesStub() as stub:
            home = Path(tmp) / "home"
            run = SCENARIOS[name](stub, home)
            dest = OUT / name
            shutil.rmtree(dest, ignore_errors=True)
            files = redact_tree(run.projects, dest, home)
            print(
                f"{name}: rc {run.returncode}, {len(files)} files, "
                f"{len(stub.main_requests())} requests"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
