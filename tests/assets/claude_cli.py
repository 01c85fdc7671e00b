"""The real Claude Code CLI against a scripted stand-in for the Anthropic Messages API.

`MessagesStub` is a stdlib HTTP server on 127.0.0.1 (random port, one thread) that answers
`POST /v1/messages` with server-sent events exactly as the Messages API streams them
(message_start, content_block_start/delta/stop for text, thinking with its signature and
tool_use with input_json_delta, message_delta with the stop reason, message_stop), or with an
API error, or a stream that stalls. Every request body is recorded, so a test can check what
reached the model (system prompt, messages, hook additionalContext). Other endpoints the CLI
calls (count_tokens, HEAD/GET probes) get a harmless answer.

`run_claude` starts the real `claude` binary in print mode with a fresh HOME pointed at the
stub and returns its stdout and the transcript files it wrote under HOME/.claude/projects.

    stub = MessagesStub()
    stub.on("list the files", Reply.tool("Bash", {"command": "ls"}), Reply.text("Two files."))
    with stub:
        run = run_claude(["-p", "list the files"], stub=stub, home=tmp_path / "home")
    run.transcripts()  # {path: [records]}

Replies are matched on user messages, newest first: the first rule whose text occurs in the
latest user message any rule matches answers (its replies in order, the last one repeats), so a
prompt's rule also answers the tool results that follow it. Requests that match no rule take
the next reply of the queue (`stub.queue(...)`), then `stub.default`. Requests the CLI makes
on its own (probes without tools) are answered from `stub.side` and consume no rule or queue.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PINNED_VERSION = "2.1.332"
MODEL = "claude-sonnet-4-5-20250929"


# ---- the binary


def claude_bin() -> Path | None:
    """The `claude` binary: $LMM_CLAUDE_BIN, else the repo's `.cache/claude-code` install
    (`make claude-cli`); None when neither exists."""
    env = os.environ.get("LMM_CLAUDE_BIN")
    if env:
        path = Path(env)
        return path if path.exists() else None
    path = REPO / ".cache" / "claude-code" / "node_modules" / ".bin" / "claude"
    return path if path.exists() else None


def require_claude() -> Path:
    """The binary, or skip the calling test with the way to get it."""
    path = claude_bin()
    if path is None:
        pytest.skip(
            "the real Claude Code CLI is not installed: run `make claude-cli` (npm) "
            "or set LMM_CLAUDE_BIN to a `claude` binary"
        )
    return path


# ---- scripted replies


@dataclass(frozen=True)
class Block:
    """One content block of a reply: kind is text, thinking or tool_use."""

    kind: str
    text: str = ""
    name: str = ""
    input: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    signature: str = ""


@dataclass(frozen=True)
class Reply:
    """A scripted answer to one request.

    blocks: the content streamed; stop_reason defaults to tool_use when a tool is called,
    else end_turn. status != 200 answers with an API error instead (error_type, message).
    stall_after: stream that many blocks, then hold the connection open for stall_s seconds
    without sending anything (a stalled stream); -1 streams everything.
    """

    blocks: tuple[Block, ...] = ()
    stop_reason: str = ""
    status: int = 200
    error_type: str = ""
    message: str = ""
    stall_after: int = -1
    stall_s: float = 0.0
    delay_s: float = 0.0

    @staticmethod
    def text(text: str, thinking: str = "") -> Reply:
        blocks = (Block("thinking", thinking, signature=_signature()),) if thinking else ()
        return Reply((*blocks, Block("text", text)))

    @staticmethod
    def tool(name: str, input: dict[str, Any], text: str = "", thinking: str = "") -> Reply:
        return Reply.tools([(name, input)], text=text, thinking=thinking)

    @staticmethod
    def tools(
        calls: Sequence[tuple[str, dict[str, Any]]], text: str = "", thinking: str = ""
    ) -> Reply:
        """Several tool calls in one message (the CLI runs them in parallel when it can)."""
        blocks: list[Block] = []
        if thinking:
            blocks.append(Block("thinking", thinking, signature=_signature()))
        if text:
            blocks.append(Block("text", text))
        blocks += [Block("tool_use", name=n, input=i, id=_tool_id()) for n, i in calls]
        return Reply(tuple(blocks))

    @staticmethod
    def error(
        status: int = 529, error_type: str = "overloaded_error", message: str = "Overloaded"
    ) -> Reply:
        return Reply(status=status, error_type=error_type, message=message)

    @staticmethod
    def stall(text: str = "", seconds: float = 600.0) -> Reply:
        """Stream `text` (if any), then nothing for `seconds` with the connection open."""
        blocks = (Block("text", text),) if text else ()
        return Reply(blocks, stall_after=len(blocks), stall_s=seconds)


def _signature() -> str:
    return "sig" + uuid.uuid4().hex * 2


_tool_ids = itertools.count(1)


def _tool_id() -> str:
    return f"toolu_{next(_tool_ids):04d}{uuid.uuid4().hex[:20]}"


# ---- the requests


@dataclass
class Request:
    """One request the stub received."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def is_main(self) -> bool:
        """A conversation turn (the CLI sends tools with it), not a side probe."""
        return (
            self.path.startswith("/v1/messages")
            and "count_tokens" not in self.path
            and bool(self.body.get("tools"))
        )

    def system_text(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, str):
            return system
        return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))

    def last_user_text(self) -> str:
        """Text of the last user message: its text blocks and tool_result contents."""
        for message in reversed(self.body.get("messages", [])):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""

    def all_text(self) -> str:
        """System prompt and every message's text: what the model saw."""
        parts = [self.system_text()] + [
            content_text(m.get("content")) for m in self.body.get("messages", [])
        ]
        return "\n".join(parts)


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out: list[str] = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            out.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            out.append(content_text(block.get("content")))
    return "\n".join(out)


Matcher = str | Callable[[Request, str], bool]  # (request, a user message's text)


Scripted = Reply | Callable[[Request], Reply]  # a reply, or one made from the request


@dataclass
class _Rule:
    match: Matcher
    replies: list[Scripted]
    served: int = 0

    def matches(self, request: Request, text: str) -> bool:
        if callable(self.match):
            return self.match(request, text)
        return self.match in text

    def next(self, request: Request) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply(request) if callable(reply) else reply


class MessagesStub:
    """The Messages-API stand-in; use as a context manager (starts and stops the server)."""

    def __init__(self, default: Reply | None = None, side: Reply | None = None) -> None:
        self.default = default or Reply.text("Done.")
        self.side = side or Reply.text("ok")
        self.requests: list[Request] = []
        self._rules: list[_Rule] = []
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- script
    def on(self, match: Matcher, *replies: Scripted) -> MessagesStub:
        """Serve `replies` in order (the last repeats) to main requests whose latest user message
        that any rule matches contains `match` (or `match(request, text)` is true): a prompt's
        rule keeps answering the tool results that follow it. Earlier rules win. A reply may
        be a function of the request (to use ids the CLI made, e.g. an agent's id)."""
        with self._lock:
            self._rules.append(_Rule(match, list(replies)))
        return self

    def queue(self, *replies: Reply) -> MessagesStub:
        """Replies for main requests no rule matches, first in first out."""
        with self._lock:
            self._queue.extend(replies)
        return self

    # -- what came in
    def main_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.is_main]

    def seen(self, text: str) -> bool:
        """True when any main request showed `text` to the model."""
        return any(text in r.all_text() for r in self.main_requests())

    # -- server
    @property
    def url(self) -> str:
        assert self._server is not None, "start the stub first (with stub: ...)"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> MessagesStub:
        handler = type("Handler", (_Handler,), {"stub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _reply_for(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            if not request.is_main:
                return self.side
            rule = self._active_rule(request)
            if rule is not None:
                return rule.next(request)
            if self._queue:
                return self._queue.pop(0)
            return self.default

    def _active_rule(self, request: Request) -> _Rule | None:
        """The first rule matching the latest user message that any rule matches: a rule stays
        active across the tool results that follow its prompt."""
        messages = [m for m in request.body.get("messages", []) if m.get("role") == "user"]
        for message in reversed(messages):
            text = content_text(message.get("content"))
            for rule in self._rules:
                if rule.matches(request, text):
                    return rule
        return None


class _Handler(BaseHTTPRequestHandler):
    stub: MessagesStub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _json(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.stub.requests.append(Request("GET", self.path, {}, dict(self.headers)))
        self._json(200, {"data": [], "has_more": False})

    def do_POST(self) -> None:
        body = self._body()
        request = Request("POST", self.path, body, dict(self.headers))
        if "count_tokens" in self.path:
            self.stub.requests.append(request)
            self._json(200, {"input_tokens": 100})
            return
        if not self.path.startswith("/v1/messages"):
            self.stub.requests.append(request)
            self._json(200, {})
            return
        reply = self.stub._reply_for(request)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.status != 200:
            self._json(
                reply.status,
                {"type": "error", "error": {"type": reply.error_type, "message": reply.message}},
            )
            return
        model = body.get("model") or MODEL
        if body.get("stream"):
            self._stream(reply, model)
        else:
            self._json(200, _message(reply, model, with_content=True))

    def _stream(self, reply: Reply, model: str) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self._event(
                "message_start", {"type": "message_start", "message": _message(reply, model)}
            )
            self._event("ping", {"type": "ping"})
            for index, block in enumerate(reply.blocks):
                if index == reply.stall_after:
                    break
                for name, data in _block_events(index, block):
                    self._event(name, data)
            if 0 <= reply.stall_after <= len(reply.blocks):
                self.stub._stop.wait(reply.stall_s)
                return
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
                    "usage": {"output_tokens": 20},
                },
            )
            self._event("message_stop", {"type": "message_stop"})
        except (BrokenPipeError, ConnectionResetError):
            return

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()


def _stop_reason(reply: Reply) -> str:
    if reply.stop_reason:
        return reply.stop_reason
    return "tool_use" if any(b.kind == "tool_use" for b in reply.blocks) else "end_turn"


def _message(reply: Reply, model: str, with_content: bool = False) -> dict[str, Any]:
    content = [_block_json(b) for b in reply.blocks] if with_content else []
    return {
        "id": "msg_" + uuid.uuid4().hex[:24],
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _stop_reason(reply) if with_content else None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 20 if with_content else 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _block_json(block: Block) -> dict[str, Any]:
    if block.kind == "thinking":
        return {"type": "thinking", "thinking": block.text, "signature": block.signature}
    if block.kind == "tool_use":
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {"type": "text", "text": block.text}


def _chunks(text: str, size: int = 12) -> Iterable[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _block_events(index: int, block: Block) -> Iterable[tuple[str, dict[str, Any]]]:
    if block.kind == "thinking":
        start: dict[str, Any] = {"type": "thinking", "thinking": ""}
        deltas = [{"type": "thinking_delta", "thinking": c} for c in _chunks(block.text)]
        deltas.append({"type": "signature_delta", "signature": block.signature})
    elif block.kind == "tool_use":
        start = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
        deltas = [
            {"type": "input_json_delta", "partial_json": c}
            for c in _chunks(json.dumps(block.input))
        ]
    else:
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": c} for c in _chunks(block.text)]
    yield (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": start},
    )
    for delta in deltas:
        yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}


# ---- the runner


@dataclass
class ClaudeRun:
    """What one `claude` process left: exit code, output, and its HOME."""

    returncode: int
    stdout: str
    stderr: str
    home: Path
    cwd: Path

    @property
    def projects(self) -> Path:
        return self.home / ".claude" / "projects"

    def transcript_paths(self) -> list[Path]:
        """Every .jsonl under HOME/.claude/projects (main sessions and sub-agent files), sorted."""
        if not self.projects.exists():
            return []
        return sorted(self.projects.rglob("*.jsonl"))

    def transcripts(self) -> dict[Path, list[dict[str, Any]]]:
        return {p: read_jsonl(p) for p in self.transcript_paths()}

    def json(self) -> Any:
        """stdout parsed (for --output-format json)."""
        return json.loads(self.stdout)

    def stream(self) -> list[dict[str, Any]]:
        """stdout as JSON lines (for --output-format stream-json)."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_home(home: Path, settings: dict[str, Any] | None = None) -> Path:
    """A fresh HOME for the CLI: onboarding done, and `settings` (hooks, permissions) written to
    HOME/.claude/settings.json."""
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    state = home / ".claude.json"
    if not state.exists():
        state.write_text(json.dumps({"hasCompletedOnboarding": True, "numStartups": 1}))
    if settings is not None:
        (home / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2))
    return home


def cli_env(stub: MessagesStub, home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    keep = {
        k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "TERM") if k in os.environ
    }
    return {
        **keep,
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": stub.url,
        "ANTHROPIC_API_KEY": "sk-ant-test-0000",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "IS_SANDBOX": "1",
        **(extra or {}),
    }


def run_claude(
    args: Sequence[str],
    stub: MessagesStub,
    home: Path,
    cwd: Path | None = None,
    settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = 60.0,
    interrupt_after: float | None = None,
) -> ClaudeRun:
    """Run `claude ARGS` (add `-p` yourself for print mode) against `stub` with HOME=home
    (created with onboarding done; `settings` written to its settings.json) in `cwd`
    (default home/work). Tools run without permission prompts unless args say otherwise.
    `interrupt_after`: send SIGINT (Ctrl-C) after that many seconds if still running (an
    interrupted turn, a stalled stream given up on). Skips the test when the binary is missing."""
    binary = require_claude()
    make_home(home, settings)
    cwd = cwd or home / "work"
    cwd.mkdir(parents=True, exist_ok=True)
    argv = [str(binary), *args]
    if "--permission-mode" not in args and "--dangerously-skip-permissions" not in args:
        argv += ["--permission-mode", "bypassPermissions"]
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=cli_env(stub, home, env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if interrupt_after is not None:
        try:
            out, err = proc.communicate(stdin or "", timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)  # what Ctrl-C does to a print-mode run
            out, err = _finish(proc, timeout)
    else:
        try:
            out, err = proc.communicate(stdin or "", timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
    return ClaudeRun(proc.returncode, out, err, home, cwd)


def _finish(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def copy_transcripts(run: ClaudeRun, dest: Path) -> list[Path]:
    """Copy the run's transcripts to `dest` keeping their layout under projects/."""
    out = []
    for path in run.transcript_paths():
        target = dest / path.relative_to(run.projects)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        out.append(target)
    return out
