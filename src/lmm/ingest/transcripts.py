"""Claude Code JSONL transcripts -> `Turn`s, streaming."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from pathlib import Path
from typing import Any

import orjson

from lmm.records import ParseIssue, SessionInfo, ToolCall, ToolResult, Turn
from lmm.text.redact import clip

log = logging.getLogger(__name__)

INPUT_CHARS = 500  # chars of a tool call's JSON input shown in Turn.text
LINK_CAP = 10_000  # bound on every bookkeeping dict (pending tool calls, prompts, sidechains)
WARMUP_PROMPT = "Warmup"  # the prompt Claude Code 2.0 sends to pre-warm sub-agents
IMAGE = "[image]"

_PATH_KEYS = ("file_path", "path", "notebook_path")
_AGENT_TOOLS = frozenset({"Task", "Agent"})
_LAYOUT_RANK = {"session": 0, "agent": 1, "subagent": 2}
_META_TOOL_USE_KEYS = ("toolUseId", "parentToolUseId", "tool_use_id")
SYNTHETIC_MODEL = "<synthetic>"  # assistant records the CLI writes itself (errors, no-ops)
INTERRUPTED = ("[Request interrupted by user]", "[Request interrupted by user for tool use]")
_DROPPED_SYSTEM = frozenset({"api_error", "stop_hook_summary", "turn_duration"})
# session titles by precedence: the user's own name first
_TITLE_RECORDS = (
    ("custom-title", "customTitle"),
    ("agent-name", "agentName"),
    ("ai-title", "aiTitle"),
)
_TITLE_TYPES = dict(_TITLE_RECORDS)
_FORK_DIRECTIVE = "</fork-boilerplate>"
# context injected into user messages: lmm's own, the CLI's reminders (hook output among them), IDE
_INJECTION = re.compile(
    r"<lmm-memory\b.*?(?:</lmm-memory>|\Z)|<(system-reminder|ide_opened_file|ide_selection)>"
    r".*?</\1>",
    re.DOTALL,
)


@dataclass
class TranscriptFile:
    path: Path
    layout: str  # session | agent | subagent
    session_id: str | None = None  # from the file name where the layout tells it
    agent_id: str | None = None
    meta: dict[str, object] = field(default_factory=dict)  # <agent>.meta.json, when present


# ---- discovery


def discover(paths: Sequence[Path]) -> list[TranscriptFile]:
    """Every non-empty *.jsonl under `paths` (files or folders, searched recursively), classified
    by layout and sorted: main session files first, then agent files, each by path."""
    found: dict[Path, TranscriptFile] = {}
    for root in paths:
        root = Path(root)
        if root.is_dir():
            candidates: Iterable[Path] = root.rglob("*.jsonl")
        elif root.suffix == ".jsonl" and root.is_file():
            candidates = [root]
        else:
            log.debug("skipping %s: not a folder or a .jsonl file", root)
            continue
        for path in candidates:
            try:
                if not path.is_file() or path.stat().st_size == 0:
                    continue
            except OSError:
                continue
            found.setdefault(path.resolve(), classify(path))
    return sorted(found.values(), key=lambda f: (_LAYOUT_RANK[f.layout], str(f.path)))


def classify(path: Path) -> TranscriptFile:
    """Layout of one transcript file, from its name and folders alone."""
    if not path.name.startswith("agent-"):
        return TranscriptFile(path, "session", session_id=path.stem)
    agent_id = path.stem[len("agent-") :]
    folders = path.parent.parts
    if "subagents" not in folders:
        return TranscriptFile(path, "agent", agent_id=agent_id)
    # <session>/subagents/[workflows/<run>/]agent-<id>.jsonl: the session is above `subagents`
    at = len(folders) - 1 - folders[::-1].index("subagents")
    session_id = folders[at - 1] if at > 0 else None
    return TranscriptFile(path, "subagent", session_id, agent_id, _read_meta(path))


def _read_meta(path: Path) -> dict[str, object]:
    meta_path = path.with_name(path.stem + ".meta.json")
    try:
        meta = orjson.loads(meta_path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


# ---- reading


class TranscriptReader:
    def __init__(self, file: TranscriptFile, offset: int = 0, line_no: int = 0) -> None:
        self.file = file
        self.offset = offset
        self.line_no = line_no
        self.skipped_reason: str | None = None  # e.g. "warmup probe": the whole file is dropped
        self._path = str(file.path)
        self._is_agent_file = file.layout != "session"
        # no real .meta.json names the parent's tool call yet; use it where one does
        self._meta_tool_use_id = next(
            (v for k in _META_TOOL_USE_KEYS if isinstance(v := file.meta.get(k), str)), None
        )
        self._sessions: dict[str, tuple[str | None, str | None]] = {}  # id -> (project, title)
        self._titles: dict[str, str] = {}  # session id -> title learned from a summary record
        self._summaries: dict[str, str] = {}  # leafUuid -> summary, leaf not yet seen
        self._recent: dict[str, str] = {}  # uuid -> session id, for summaries after their leaf
        self._tool_names: dict[str, str] = {}  # tool_use id -> tool name, until its result
        self._prompts: dict[str, str] = {}  # Task/Agent prompt -> tool_use id (inline sidechains)
        self._side_links: dict[str, str] = {}  # sidechain uuid -> parent tool_use id
        self._last_session: str | None = None
        self._pending: Turn | None = None  # assistant turn whose next line may share its id
        self._text: list[str] = []  # the pending turn's text and thinking blocks
        self._thinking: list[str] = []
        self.partial_line: int | None = None  # a last line still being written, left unread
        self._aliases: dict[str, str] = {}  # left-out record uuid -> its parent ("" = none)
        # (offset, line_no) where the first left-out record after the last yielded turn starts:
        # `offset` waits there until a kept turn below it is yielded
        self._hold: tuple[int, int] | None = None
        self._named: dict[str, dict[str, str]] = {}  # session id -> title record type -> title
        self._fork = False  # a fork sub-agent's file: it opens with a copy of the parent's call
        self._fork_prompt_seen = False

    def __iter__(self) -> Iterator[Turn | ParseIssue | SessionInfo]:
        try:
            fh = open(self.file.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as e:
            yield ParseIssue(self._path, self.line_no, f"cannot open: {e.strerror}")
            return
        with fh:
            fh.seek(self.offset)
            yield from self._read(fh)

    def _read(self, fh: Iterable[bytes]) -> Iterator[Turn | ParseIssue | SessionInfo]:
        lines: Iterator[bytes] = iter(fh)
        if self._is_agent_file and self.offset == 0:
            head = list(islice(lines, 2))
            first = _parse(head[0]) if head else ""
            if isinstance(first, dict) and _is_warmup(first, head[1] if len(head) > 1 else b""):
                self.skipped_reason = "warmup probe"
                for raw in chain(head, lines):
                    if raw.endswith(b"\n"):
                        self.offset, self.line_no = self.offset + len(raw), self.line_no + 1
                return
            lines = chain(head, lines)
        pos, line_no = self.offset, self.line_no
        for raw in lines:
            line_no += 1
            start, end = pos, pos + len(raw)
            record = _parse(raw)
            if not isinstance(record, dict):
                if not raw.endswith(b"\n"):  # may still be being written: leave it for later
                    yield from self._release()
                    if self._hold is None:
                        self.offset, self.line_no = pos, line_no - 1
                    self.partial_line = line_no
                    return
                pos = end
                if record:  # "" is a blank line
                    yield from self._release()
                    self.offset, self.line_no, self._hold = end, line_no, None
                    yield ParseIssue(self._path, line_no, record)
                elif self._pending is None and self._hold is None:
                    self.offset, self.line_no = end, line_no
                continue
            pos = end
            rtype = record.get("type")
            if rtype == "assistant":
                yield from self._assistant(record, (start, line_no - 1), line_no, end)
                continue
            if rtype == "fork-context-ref":
                self._fork = True  # hold here: a later read must see this line again
                self._hold = self._hold or (start, line_no - 1)
            elif isinstance(rtype, str) and rtype in _TITLE_TYPES:
                yield from self._title(record)
            turn = self._other(record, (start, line_no - 1), line_no, end)
            if turn is not None:
                yield from self._release()
                self.offset, self.line_no, self._hold = end, line_no, None
                yield from self._emit(turn)
            elif self._pending is None and self._hold is None:  # snapshot, queue operation...
                self.offset, self.line_no = end, line_no
        yield from self._release()
        if self._hold is None:
            self.offset, self.line_no = pos, line_no

    def _assistant(
        self, record: dict[str, Any], at: tuple[int, int], line_no: int, end: int
    ) -> Iterator[Turn | SessionInfo]:
        """Merge an assistant line into the pending turn when it continues the same message;
        else release the pending turn and start a new one. Synthetic records (API errors, "No
        response requested.") and a fork's copy of its parent's call are left out."""
        message = record.get("message")
        if not isinstance(message, dict):
            message = {}
        if (
            message.get("model") == SYNTHETIC_MODEL
            or record.get("isApiErrorMessage") is True
            or (self._fork and not self._fork_prompt_seen)
        ):
            self._leave_out(record, at)
            return
        mid = _str(message.get("id"))
        turn = self._pending
        if (
            turn is None
            or mid is None
            or turn.message_id != mid
            or turn.session_id != self._session_of(record)
        ):
            yield from self._release()
            turn = self._turn(record, mid or _str(record.get("uuid")) or f"line:{line_no}")
            turn.role, turn.message_id, turn.line_no = "assistant", mid, line_no
            if turn.is_sidechain and not self._is_agent_file:
                self._link_inline_sidechain(turn)
            self._pending, self._text, self._thinking = turn, [], []
        turn.end_offset, turn.end_line = end, line_no
        self._merge_assistant(turn, record, message)

    def _release(self) -> Iterator[Turn | SessionInfo]:
        """Yield the pending assistant turn, if any, with `offset` just past its last line so that
        a consumer stopping here loses nothing."""
        turn, self._pending = self._pending, None
        if turn is None:
            return
        self.offset, self.line_no = turn.end_offset, turn.end_line
        if self._hold is not None and self._hold[0] < turn.end_offset:
            self._hold = None
        turn.text, turn.thinking = "\n".join(self._text), "\n".join(self._thinking)
        yield from self._emit(turn)

    # ---- records -> turns

    def _session_of(self, record: dict[str, Any]) -> str:
        if self.file.layout == "subagent" and self.file.session_id:
            return self.file.session_id  # the folder names the parent session
        sid = record.get("sessionId")
        if isinstance(sid, str) and sid:
            return sid
        return self.file.session_id or self._last_session or self.file.path.stem

    def _turn(self, record: dict[str, Any], key: str) -> Turn:
        """A Turn with the provenance fields every record kind shares."""
        uuid = _str(record.get("uuid"))
        agent_id = _str(record.get("agentId")) or self.file.agent_id
        return Turn(
            session_id=self._session_of(record),
            key=key,
            role="system",
            kind="message",
            text="",
            uuid=uuid,
            parent_uuid=self._kept_parent(_str(record.get("parentUuid"))),
            uuids=[uuid] if uuid else [],
            timestamp=_str(record.get("timestamp")),
            cwd=_str(record.get("cwd")),
            git_branch=_str(record.get("gitBranch")) or None,
            is_sidechain=record.get("isSidechain") is True or self._is_agent_file,
            agent_id=agent_id,
            parent_tool_use_id=self._meta_tool_use_id,
        )

    def _merge_assistant(self, turn: Turn, record: dict[str, Any], message: dict[str, Any]) -> None:
        text, thinking = self._text, self._thinking
        uuid = _str(record.get("uuid"))
        if uuid and uuid not in turn.uuids:
            turn.uuids.append(uuid)
            if turn.parent_tool_use_id is not None:
                _remember(self._side_links, uuid, turn.parent_tool_use_id)
        content = message.get("content")
        if isinstance(content, str):
            text.append(content)
            return
        if not isinstance(content, list):
            return
        for block in content:
            if not isinstance(block, dict):
                if isinstance(block, str):
                    text.append(block)
                continue
            btype = block.get("type")
            if btype == "text":
                if isinstance(value := block.get("text"), str) and value:
                    text.append(value)
            elif btype == "thinking":
                if isinstance(value := block.get("thinking"), str) and value:
                    thinking.append(value)
            elif btype in ("tool_use", "server_tool_use"):
                text.append(self._tool_call(turn, block))
            elif btype == "image":
                text.append(IMAGE)

    def _tool_call(self, turn: Turn, block: dict[str, Any]) -> str:
        call_id = _str(block.get("id")) or ""
        name = _str(block.get("name")) or "?"
        raw_input = block.get("input")
        try:
            input_json = orjson.dumps(raw_input if raw_input is not None else {}).decode()
        except TypeError:
            input_json = "{}"
        turn.tool_calls.append(ToolCall(call_id, name, input_json))
        if call_id:
            _remember(self._tool_names, call_id, name)
        if isinstance(raw_input, dict):
            for k in _PATH_KEYS:
                path = raw_input.get(k)
                if isinstance(path, str) and path and path not in turn.files:
                    turn.files.append(path)
            prompt = raw_input.get("prompt")
            if name in _AGENT_TOOLS and call_id and not turn.is_sidechain:
                if isinstance(prompt, str):
                    _remember(self._prompts, prompt, call_id)
                # some sidechains hang straight off the calling record instead of a prompt
                for uuid in turn.uuids:
                    _remember(self._side_links, uuid, call_id)
        return f"[tool: {name}] {clip(input_json, INPUT_CHARS, 0)}"

    def _other(
        self, record: dict[str, Any], at: tuple[int, int], line_no: int, end: int
    ) -> Turn | None:
        """The Turn for a non-assistant record, or None when it is not conversation."""
        rtype = record.get("type")
        if rtype == "summary":
            summary = record.get("summary")
            leaf = _str(record.get("leafUuid"))
            if not isinstance(summary, str):
                return None
            if leaf:
                sid = self._recent.get(leaf)
                if sid is not None:
                    self._titles.setdefault(sid, summary)
                else:
                    _remember(self._summaries, leaf, summary)
            turn = Turn(
                session_id=self._last_session or self.file.session_id or self._session_of(record),
                key="summary:" + (leaf or f"line:{line_no}"),
                role="summary",
                kind="summary",
                text=summary,
                timestamp=_str(record.get("timestamp")),
                extra={"leaf_uuid": leaf} if leaf else {},
            )
        elif not isinstance(uuid := record.get("uuid"), str) or not uuid:
            if rtype != "user":
                return None
            turn = self._turn(record, f"line:{line_no}")
            self._user(turn, record)
        elif not self._is_conversation(record):
            self._leave_out(record, at)
            return None
        else:
            turn = self._turn(record, uuid)
            if rtype == "user":
                self._user(turn, record)
                if not self._is_spoken(turn, record):
                    self._leave_out(record, at)
                    return None
            elif rtype == "system":
                content = record.get("content")
                text = clip(content) if isinstance(content, str) else ""
                turn.kind, turn.text = "system", text
                if isinstance(subtype := record.get("subtype"), str):
                    turn.extra["subtype"] = subtype
                if logical := self._kept_parent(_str(record.get("logicalParentUuid"))):
                    turn.extra["logical_parent_uuid"] = logical  # compaction: what it continues
            else:  # a queued_command attachment: a prompt typed while the agent worked
                attachment = record.get("attachment")
                prompt = attachment.get("prompt") if isinstance(attachment, dict) else None
                turn.role, turn.text = "user", _prompt_text(prompt)
                turn.extra["record_type"] = "queued_command"
        if turn.is_sidechain and not self._is_agent_file:
            self._link_inline_sidechain(turn)
        turn.line_no, turn.end_line, turn.end_offset = line_no, line_no, end
        return turn

    def _user(self, turn: Turn, record: dict[str, Any]) -> None:
        turn.role = "user"
        message = record.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        parts: list[str] = []
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for block in content:
                if isinstance(block, str):
                    parts.append(block)
                elif not isinstance(block, dict):
                    continue
                elif (btype := block.get("type")) == "text":
                    if isinstance(value := block.get("text"), str) and not _injected(value):
                        parts.append(value)
                elif btype == "tool_result":
                    parts.append(self._tool_result(turn, record, block))
                elif btype == "image":
                    parts.append(IMAGE)
                elif btype == "document":
                    parts.append("[document]")
        turn.text = "\n".join(parts)
        if self._fork and not self._fork_prompt_seen:
            self._fork_prompt_seen = True  # the fork's directive, after the parent's call result
            turn.tool_results.clear()
            directive = turn.text.rpartition(_FORK_DIRECTIVE)[2].strip()
            turn.text = directive.removeprefix("Your directive:").strip()
        if turn.tool_results:
            turn.kind = "tool_result"
        elif record.get("isCompactSummary") is True:
            turn.kind, turn.text = "compact_summary", _without_injections(turn.text)
        elif record.get("isMeta") is True:
            turn.kind = "meta"

    def _is_conversation(self, record: dict[str, Any]) -> bool:
        """Whether a record with a uuid may be conversation: users' and system records (looked
        at further), prompts queued mid-turn; never other attachments, progress or unknown
        types, nor `api_error`, `stop_hook_summary` or `turn_duration` system records."""
        rtype = record.get("type")
        if rtype == "user":
            return True
        if rtype == "system":
            subtype = record.get("subtype")
            return not isinstance(subtype, str) or subtype not in _DROPPED_SYSTEM
        if rtype == "attachment":
            attachment = record.get("attachment")
            return isinstance(attachment, dict) and attachment.get("type") == "queued_command"
        return False

    def _is_spoken(self, turn: Turn, record: dict[str, Any]) -> bool:
        """A user record that the user (or a tool) said: not a meta record, a background
        agent's <task-notification>, or an interruption marker."""
        if turn.tool_results or turn.kind == "compact_summary":
            return True
        if turn.kind == "meta":
            return False
        origin = record.get("origin")
        if isinstance(origin, dict) and origin.get("kind") == "task-notification":
            return False
        text = turn.text.strip()
        return bool(text) and not text.startswith("<task-notification>") and text not in INTERRUPTED

    def _leave_out(self, record: dict[str, Any], at: tuple[int, int]) -> None:
        """Remember a left-out record's uuid as an alias of its parent, and hold `offset` before
        it until a kept turn below it has been yielded."""
        uuid = _str(record.get("uuid"))
        if not uuid:
            return
        _remember(self._aliases, uuid, _str(record.get("parentUuid")) or "")
        if self._hold is None:
            self._hold = at

    def _kept_parent(self, parent: str | None) -> str | None:
        """`parent`, or the nearest ancestor that is not a left-out record."""
        for _ in range(LINK_CAP):
            if parent is None or parent not in self._aliases:
                return parent
            parent = self._aliases[parent] or None
        return parent

    def _title(self, record: dict[str, Any]) -> Iterator[SessionInfo]:
        """Learn a title from custom-title / agent-name / ai-title; announce it when it changes."""
        field_name = _TITLE_TYPES[record["type"]]
        title = record.get(field_name)
        if not isinstance(title, str) or not title.strip():
            return
        sid = self._session_of(record)
        self._named.setdefault(sid, {})[record["type"]] = title.strip()
        known = self._sessions.get(sid)
        if known is not None and known[1] != self._title_of(sid):
            self._sessions[sid] = (known[0], self._title_of(sid))
            yield self._session_info(sid, known[0], self._title_of(sid))

    def _title_of(self, sid: str) -> str | None:
        named = self._named.get(sid, {})
        for rtype, _ in _TITLE_RECORDS:
            if rtype in named:
                return named[rtype]
        return self._titles.get(sid)

    def _tool_result(self, turn: Turn, record: dict[str, Any], block: dict[str, Any]) -> str:
        call_id = _str(block.get("tool_use_id")) or ""
        content = _flatten(block.get("content"))
        is_error = block.get("is_error") is True
        turn.tool_results.append(ToolResult(call_id, content, is_error))
        name = self._tool_names.pop(call_id, None)
        # a result that started a sub-agent names it: toolUseResult.agentId (2.x), else the text
        result = record.get("toolUseResult")
        agent_id = _str(result.get("agentId")) if isinstance(result, dict) else None
        if agent_id is None and name in _AGENT_TOOLS:
            agent_id = _agent_id_in(content)
        if agent_id and call_id:
            turn.extra["agent_id"], turn.extra["tool_use_id"] = agent_id, call_id
        # no tool name in the label: it must read the same whether or not this read saw the call
        label = "result" + (", error" if is_error else "")
        return f"[{label}] {clip(content)}"

    def _link_inline_sidechain(self, turn: Turn) -> None:
        """1.0 sub-agents live in the session file: their root prompt equals the parent's
        Task prompt; later records inherit the link through parentUuid."""
        if turn.parent_uuid is None:
            tool_use_id = self._prompts.pop(turn.text, None)
        else:
            tool_use_id = self._side_links.get(turn.parent_uuid)
        if tool_use_id is not None:
            turn.parent_tool_use_id = tool_use_id
            for uuid in turn.uuids:
                _remember(self._side_links, uuid, tool_use_id)

    def _emit(self, turn: Turn) -> Iterator[Turn | SessionInfo]:
        sid = turn.session_id
        if turn.kind != "summary":
            self._last_session = sid
            for uuid in turn.uuids:
                _remember(self._recent, uuid, sid)
                if self._summaries and (summary := self._summaries.pop(uuid, None)) is not None:
                    self._titles.setdefault(sid, summary)
        known = self._sessions.get(sid)
        project = known[0] if known and known[0] else turn.cwd
        title = self._title_of(sid)
        if known != (project, title):
            self._sessions[sid] = (project, title)
            yield self._session_info(sid, project, title)
        yield turn

    def _session_info(self, sid: str, project: str | None, title: str | None) -> SessionInfo:
        info = SessionInfo(sid, "claude", project=project, title=title)
        if self._is_agent_file:  # describes the sub-agent inside session `sid`
            info.agent_id = self.file.agent_id
            info.extra["layout"] = self.file.layout
            meta = self.file.meta
            for src, dst in (("agentType", "agent_type"), ("description", "description")):
                if isinstance(value := meta.get(src), str):
                    info.extra[dst] = value
            info.parent_tool_use_id = self._meta_tool_use_id
        return info


# ---- small pure helpers


def _parse(raw: bytes) -> dict[str, Any] | str:
    """The record on one line, or why there is none ("" for a blank line)."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if not raw.strip():
            return ""
        try:  # invalid UTF-8 or lone surrogates: replace them with U+FFFD and try again
            text = json.dumps(json.loads(raw.decode("utf-8", "replace")), ensure_ascii=False)
            record = orjson.loads(
                text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            )
        except (ValueError, RecursionError):
            return f"invalid JSON: {e}"
    if not isinstance(record, dict):
        return f"not a JSON object: {type(record).__name__}"
    return record


def _is_warmup(first: dict[str, Any], next_line: bytes) -> bool:
    """A sub-agent file that only pre-warms a cache: its prompt is "Warmup", or (2.0.4x, where
    the prompt is not written) it holds one root response that calls no tool."""
    message = first.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if first.get("type") == "user":
        if isinstance(content, list) and len(content) == 1 and isinstance(content[0], dict):
            content = content[0].get("text")
        return content == WARMUP_PROMPT
    if first.get("type") != "assistant" or next_line or first.get("parentUuid") is not None:
        return False
    blocks = content if isinstance(content, list) else []
    return not any(isinstance(b, dict) and b.get("type") == "tool_use" for b in blocks)


def _flatten(content: object) -> str:
    """Tool result content (a string or a list of blocks) as plain text; images as IMAGE."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        return str(content)
    parts: list[str] = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict):
            if block.get("type") == "image":
                parts.append(IMAGE)
            elif isinstance(value := block.get("text"), str):
                parts.append(value)
            elif isinstance(value := block.get("tool_name"), str):
                parts.append(f"[tool_reference: {value}]")
    return "\n".join(parts)


def _prompt_text(prompt: object) -> str:
    """A queued prompt: a string, or content blocks."""
    if isinstance(prompt, str):
        return prompt
    return _flatten(prompt)


def _injected(block: str) -> bool:
    """A text block that is nothing but injected context: the CLI adds its reminders, IDE
    context and hook output as blocks of their own before or after what the user typed."""
    return bool(block.strip()) and not _INJECTION.sub("", block).strip()


def _without_injections(text: str) -> str:
    """`text` without injected context: lmm's own (`<lmm-memory ...>...</lmm-memory>`), the
    CLI's `<system-reminder>` blocks and the IDE's `<ide_opened_file>` / `<ide_selection>`."""
    if "<lmm-memory" not in text and "<system-reminder>" not in text and "<ide_" not in text:
        return text
    return _INJECTION.sub("", text).strip()


def _agent_id_in(text: str) -> str | None:
    """The id in a Task result's trailer "agentId: <id> (use SendMessage ...)"."""
    at = text.find("agentId: ")
    if at < 0:
        return None
    start = end = at + len("agentId: ")
    while end < len(text) and text[end].isalnum():
        end += 1
    return text[start:end] or None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _remember(book: dict[str, str], key: str, value: str) -> None:
    """dict insert that forgets the oldest entry past LINK_CAP: bounded memory on huge files."""
    book[key] = value
    if len(book) > LINK_CAP:
        del book[next(iter(book))]
