"""Conversation files that are not Claude Code transcripts -> the same records the transcript
reader produces (`SessionInfo`, `Turn`, `ParseIssue`), so they go through the same store."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lmm.errors import InputError
from lmm.records import ParseIssue, SessionInfo, Turn

log = logging.getLogger(__name__)

Item = SessionInfo | Turn | ParseIssue

ACCEPTED_GENERIC = (
    "a JSON list of sessions (each a list of messages or an object with a 'messages' list), "
    'a JSON object {"sessions": [...]}, or JSONL with one session object or one message per line; '
    "a message is {role, content, timestamp?}"
)
_ROLES = {
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "bot": "assistant",
    "system": "system",
}


# ---- generic JSON / JSONL


@dataclass
class _RawSession:
    """A session as found in the file, before its messages are checked."""

    session_id: str
    messages: list[tuple[int, Any]]  # (line_no, message) pairs in source order
    project: str | None = None
    title: str | None = None


def read_generic(path: Path) -> Iterator[Item]:
    """Yield a `SessionInfo` then the `Turn`s of every session in a generic chat file.

    Session ids default to `<file stem>-<index>` (`<file stem>` for a JSONL of plain messages);
    turn keys are `<session>:<message index>`. A bad message or line becomes a `ParseIssue` and
    reading goes on; a file that is neither JSON nor JSONL raises `InputError`.
    """
    path = Path(path)
    sessions, issues = _generic_sessions(path)
    yield from issues
    for raw in sessions:
        yield SessionInfo(raw.session_id, "generic", project=raw.project, title=raw.title)
        yield from _generic_turns(path, raw)


def _generic_sessions(path: Path) -> tuple[list[_RawSession], list[ParseIssue]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text; accepted formats: {ACCEPTED_GENERIC}") from e
    if not text.strip():
        return [], []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if not _looks_like_jsonl(text):
            raise InputError(
                f"{path} is neither JSON nor JSONL ({e.msg} at line {e.lineno} column {e.colno}); "
                f"accepted formats: {ACCEPTED_GENERIC}"
            ) from e
        return _jsonl_sessions(path, text)
    return _json_sessions(path, doc)


def _looks_like_jsonl(text: str) -> bool:
    """At least half of the first 20 non-blank lines are JSON objects: a JSONL file with a few
    bad lines still reads (with issues), a broken pretty-printed JSON document does not."""
    lines = [line for line in text.splitlines() if line.strip()][:20]
    return sum(_is_object_line(line) for line in lines) * 2 >= len(lines)


def _is_object_line(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _json_sessions(path: Path, doc: Any) -> tuple[list[_RawSession], list[ParseIssue]]:
    if isinstance(doc, dict) and isinstance(doc.get("sessions"), list):
        doc = doc["sessions"]
    elif isinstance(doc, dict) and isinstance(doc.get("messages"), list):
        doc = [doc]
    elif _looks_like_message(doc):
        doc = [doc]  # a JSONL file of one message line parses as a JSON object
    if not isinstance(doc, list):
        raise InputError(
            f"{path} is JSON of an unknown shape; accepted formats: {ACCEPTED_GENERIC}"
        )
    if doc and all(_looks_like_message(item) for item in doc):
        # a bare list of messages (the OpenAI chat shape), grouped like JSONL message lines
        return _group_messages(path, [(i + 1, m) for i, m in enumerate(doc)]), []
    sessions: list[_RawSession] = []
    issues: list[ParseIssue] = []
    for index, item in enumerate(doc):
        raw = _session_from(item, f"{path.stem}-{index}", line_no=None)
        if raw is None:
            reason = (
                f"session {index} is not a list of messages or an object with a 'messages' list"
            )
            issues.append(ParseIssue(str(path), index + 1, reason))
        else:
            sessions.append(raw)
    return sessions, issues


def _jsonl_sessions(path: Path, text: str) -> tuple[list[_RawSession], list[ParseIssue]]:
    sessions: list[_RawSession] = []
    messages: list[tuple[int, Any]] = []
    issues: list[ParseIssue] = []
    n_objects = 0  # session-object lines seen, bad ones included, so default ids stay stable
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            issues.append(ParseIssue(str(path), line_no, f"invalid JSON: {e.msg}"))
            continue
        if not isinstance(obj, dict):
            issues.append(ParseIssue(str(path), line_no, "line is not a JSON object"))
        elif "messages" in obj:
            raw = _session_from(obj, f"{path.stem}-{n_objects}", line_no=line_no)
            n_objects += 1
            if raw is None:
                issues.append(ParseIssue(str(path), line_no, "'messages' is not a list"))
            else:
                sessions.append(raw)
        else:
            messages.append((line_no, obj))
    return sessions + _group_messages(path, messages), issues


def _group_messages(path: Path, messages: list[tuple[int, Any]]) -> list[_RawSession]:
    """Messages grouped by their "session_id"/"session" field in order of first appearance;
    messages without one form the session named after the file."""
    by_id: dict[str, _RawSession] = {}
    for line_no, msg in messages:
        sid = msg.get("session_id", msg.get("session"))
        sid = path.stem if sid is None else str(sid)
        by_id.setdefault(sid, _RawSession(sid, [])).messages.append((line_no, msg))
    return list(by_id.values())


def _looks_like_message(item: Any) -> bool:
    return (
        isinstance(item, dict) and "messages" not in item and ("role" in item or "content" in item)
    )


def _session_from(item: Any, default_id: str, line_no: int | None) -> _RawSession | None:
    """A session from a list of messages or a {id?, project?, title?, messages} object."""
    if isinstance(item, list):
        messages = item
        meta: dict[str, Any] = {}
    elif isinstance(item, dict) and isinstance(item.get("messages"), list):
        messages, meta = item["messages"], item
    else:
        return None
    sid = meta.get("id", meta.get("session_id"))
    numbered = [(line_no or i + 1, m) for i, m in enumerate(messages)]
    return _RawSession(
        default_id if sid is None else str(sid),
        numbered,
        project=_str_or_none(meta.get("project")),
        title=_str_or_none(meta.get("title")),
    )


def _generic_turns(path: Path, raw: _RawSession) -> Iterator[Turn | ParseIssue]:
    parent: str | None = None
    for index, (line_no, msg) in enumerate(raw.messages):
        where = f"session {raw.session_id!r} message {index}"
        if not isinstance(msg, dict):
            yield ParseIssue(str(path), line_no, f"{where}: not a JSON object")
            continue
        role = _ROLES.get(str(msg.get("role", "")).strip().lower())
        if role is None:
            yield ParseIssue(
                str(path),
                line_no,
                f"{where}: missing or unknown role "
                f"{msg.get('role')!r} (expected user, assistant or system)",
            )
            continue
        text = _content_text(msg.get("content"))
        if text is None:
            yield ParseIssue(
                str(path),
                line_no,
                f"{where}: content is neither a string nor a list of text blocks",
            )
            continue
        if not text.strip():
            yield ParseIssue(str(path), line_no, f"{where}: empty content")
            continue
        key = f"{raw.session_id}:{index}"
        yield Turn(
            session_id=raw.session_id,
            key=key,
            role=role,
            kind="system" if role == "system" else "message",
            text=text,
            uuid=key,
            parent_uuid=parent,
            uuids=[key],
            timestamp=_timestamp(msg.get("timestamp")),
            line_no=line_no,
            speaker=_str_or_none(msg.get("name")),
        )
        parent = key


def _content_text(content: Any) -> str | None:
    """A string, or the text blocks of a block list joined by blank lines; None if neither."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n\n".join(p for p in parts if p)


def _timestamp(value: Any) -> str | None:
    """ISO 8601 text is kept as written; epoch seconds (or milliseconds) become UTC ISO."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value
        return _iso(datetime.fromtimestamp(seconds, UTC))
    return None


def _iso(moment: datetime) -> str:
    """The shape Claude Code writes: 2025-11-29T15:18:16.513Z."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


# ---- LoCoMo


_SESSION_KEY = re.compile(r"session_(\d+)")
_EVIDENCE = re.compile(r"D:?(\d+):(\d+)")  # "D:11:26" is a typo for D11:26 in the data


def read_locomo(path: Path) -> Iterator[Item]:
    """Yield one `SessionInfo` per LoCoMo session and one `Turn` per dialogue turn.

    Each conversation is its own project, `locomo/<sample_id>`; sessions are
    `<sample_id>:session_<N>`. Both speakers get role "user": they are two people stating facts
    about their own lives, and "assistant" would mark half the evidence as model output, which
    extractors and rankers discount. `speaker` keeps the real name, `key` and `dia_id` the exact
    LoCoMo id ("D1:3"), `uuid` is `<sample_id>:<dia_id>`. Session dates carry no zone and are
    written as UTC; turn i of a session is stamped i seconds after the session start so that time
    order is turn order.
    """
    path = Path(path)
    samples = _load_json(path, "the LoCoMo format: a JSON list of samples with 'conversation'")
    if not isinstance(samples, list):
        raise InputError(f"{path} is not a LoCoMo file: expected a JSON list of samples")
    for index, sample in enumerate(samples):
        conv = sample.get("conversation") if isinstance(sample, dict) else None
        if not isinstance(conv, dict) or "sample_id" not in sample:
            yield ParseIssue(
                str(path), index + 1, f"sample {index}: no 'sample_id' or 'conversation'"
            )
            continue
        yield from _locomo_sample(path, str(sample["sample_id"]), conv)


def _locomo_sample(path: Path, sample_id: str, conv: dict[str, Any]) -> Iterator[Item]:
    numbers = sorted(int(m.group(1)) for k in conv if (m := _SESSION_KEY.fullmatch(k)))
    for n in numbers:
        session_id = f"{sample_id}:session_{n}"
        date_text = str(conv.get(f"session_{n}_date_time", ""))
        start = _locomo_date(date_text)
        if start is None:
            yield ParseIssue(str(path), 0, f"{session_id}: unreadable date {date_text!r}")
        title = f"{sample_id} session {n}" + (f" ({date_text})" if date_text else "")
        yield SessionInfo(
            session_id,
            "locomo",
            project=f"locomo/{sample_id}",
            title=title,
            extra={
                "date_time": date_text,
                "speaker_a": str(conv.get("speaker_a", "")),
                "speaker_b": str(conv.get("speaker_b", "")),
            },
        )
        turns = conv[f"session_{n}"]
        if not isinstance(turns, list):
            yield ParseIssue(str(path), 0, f"{session_id}: turns are not a list")
            continue
        parent: str | None = None  # uuids are "<sample_id>:<dia_id>": dia_ids repeat across samples
        for i, turn in enumerate(turns):
            if not (isinstance(turn, dict) and turn.get("dia_id") and "text" in turn):
                yield ParseIssue(str(path), i + 1, f"{session_id} turn {i}: no 'dia_id' or 'text'")
                continue
            dia_id = str(turn["dia_id"])
            uuid = f"{sample_id}:{dia_id}"
            text = str(turn["text"])
            if turn.get("blip_caption"):
                text += f" [shares an image: {turn['blip_caption']}]"
            urls = turn.get("img_url")
            extra = {"img_url": str(urls[0])} if isinstance(urls, list) and urls else {}
            yield Turn(
                session_id=session_id,
                key=dia_id,
                role="user",
                kind="message",
                text=text,
                uuid=uuid,
                parent_uuid=parent,
                uuids=[uuid],
                timestamp=_iso(start + timedelta(seconds=i)) if start else None,
                line_no=i + 1,
                dia_id=dia_id,
                speaker=_str_or_none(turn.get("speaker")),
                extra=extra,
            )
            parent = uuid


def _locomo_date(text: str) -> datetime | None:
    """'1:56 pm on 8 May, 2023' -> 2023-05-08 13:56 UTC."""
    try:
        return datetime.strptime(text.strip(), "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class LocomoQuestion:
    """One LoCoMo QA item, ready for a benchmark."""

    sample_id: str
    index: int  # position in the sample's "qa" list; the audit's question_id uses it
    question: str
    # for category 5 this is `adversarial_answer`: the trap (usually true of the other speaker);
    # the official scoring expects a reply saying the conversation does not mention it
    answer: str
    category: int  # 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop, 5 adversarial
    evidence: list[str]  # normalised dia_ids, e.g. ["D8:6", "D9:17"]


def locomo_questions(path: Path) -> list[LocomoQuestion]:
    """Every QA item of a LoCoMo file; malformed items are logged and skipped."""
    path = Path(path)
    samples = _load_json(path, "the LoCoMo format: a JSON list of samples with 'qa'")
    if not isinstance(samples, list):
        raise InputError(f"{path} is not a LoCoMo file: expected a JSON list of samples")
    out = []
    for sample in samples:
        if not isinstance(sample, dict):
            continue
        sample_id = str(sample.get("sample_id", ""))
        for index, qa in enumerate(sample.get("qa", [])):
            if not (
                isinstance(qa, dict) and "question" in qa and isinstance(qa.get("category"), int)
            ):
                log.warning(
                    "%s: %s qa %d has no question or category, skipped", path, sample_id, index
                )
                continue
            category = qa["category"]
            answer = qa.get("adversarial_answer") if category == 5 else qa.get("answer")
            out.append(
                LocomoQuestion(
                    sample_id=sample_id,
                    index=index,
                    question=str(qa["question"]),
                    answer="" if answer is None else str(answer),
                    category=category,
                    evidence=normalise_evidence(qa.get("evidence", [])),
                )
            )
    return out


def normalise_evidence(ids: list[Any]) -> list[str]:
    """['D8:6; D9:17', 'D30:05', 'D'] -> ['D8:6', 'D9:17', 'D30:5']: split on ';' and spaces,
    strip leading zeros, drop what is not a dialogue id, keep the first of duplicates."""
    out: list[str] = []
    for raw in ids:
        for part in re.split(r"[;\s]+", str(raw)):
            m = _EVIDENCE.fullmatch(part)
            if m:
                dia_id = f"D{int(m.group(1))}:{int(m.group(2))}"
                if dia_id not in out:
                    out.append(dia_id)
    return out


def _load_json(path: Path, expected: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path} is not JSON ({e}); expected {expected}") from e


# ---- format sniffing


def detect_format(path: Path) -> str:
    """'claude', 'generic' or 'locomo' for a file; a folder is taken as a Claude projects tree.

    A JSON list whose items have "conversation" and "qa" is LoCoMo; JSONL whose lines carry
    "type" and "uuid"/"sessionId" (or are `summary` lines with "leafUuid") is Claude Code;
    anything else is left to `read_generic`, which says what it accepts.
    """
    path = Path(path)
    if path.is_dir():
        return "claude"
    with path.open("rb") as f:
        head = f.read(1 << 16)
    if head.lstrip().startswith(b"["):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return "generic"
        first = doc[0] if isinstance(doc, list) and doc else None
        if isinstance(first, dict) and "conversation" in first and "qa" in first:
            return "locomo"
        return "generic"
    with path.open("rb") as f:
        for _ in range(50):  # a line at a time, each read up to 64 KiB
            raw = f.readline(1 << 16)
            if not raw:
                break
            line = raw.decode("utf-8", errors="replace")
            if not raw.endswith(b"\n") and len(raw) == 1 << 16:
                # longer than that (a big file-history-snapshot, say): judge by its start
                if _looks_like_claude(line):
                    return "claude"
                while (rest := f.readline(1 << 16)) and not rest.endswith(b"\n"):
                    pass
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                if _looks_like_claude(line):
                    return "claude"
                continue
            if isinstance(obj, dict) and _is_claude_record(obj):
                return "claude"
    return "generic"


# records of Claude Code transcripts that carry no uuid or sessionId
_CLAUDE_TYPES = re.compile(
    r'^\s*\{\s*"type"\s*:\s*"(file-history-snapshot|queue-operation|summary|custom-title|'
    r'agent-name|ai-title|last-prompt|fork-context-ref)"'
)


def _looks_like_claude(start: str) -> bool:
    """The start of a line too long to parse: Claude Code writes its envelope keys first."""
    if start.lstrip().startswith("{") and ('"sessionId"' in start or '"parentUuid"' in start):
        return True
    return _CLAUDE_TYPES.match(start) is not None


def _is_claude_record(obj: dict[str, Any]) -> bool:
    if "type" not in obj:
        return False
    return "uuid" in obj or "sessionId" in obj or (obj["type"] == "summary" and "leafUuid" in obj)
