"""Write-time synthesis: a finished session's digest, kept as grounded cognitions."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lmm import config, paths
from lmm.errors import LmmError
from lmm.memory.extract import load_session
from lmm.memory.extract_lm import compact
from lmm.memory.seam import SessionView
from lmm.retrieve.search import Hit, Source
from lmm.retrieve.synth import Evidence, approx_tokens, citations, claim_words, ground
from lmm.store import cognitions
from lmm.store.cognitions import Cognition, SourceRef

if TYPE_CHECKING:
    from lmm.lm.base import Message, TextGenerator
    from lmm.store.db import Store

log = logging.getLogger(__name__)

# heading in the reply -> (section name, cognition category)
SECTIONS = {
    "done": ("done", "fact"),
    "decided": ("decided", "decision"),
    "fixed": ("fixed", "lesson"),
    "failed and fixed": ("fixed", "lesson"),
    "open": ("open", "fact"),
}
DEFAULT_MODEL = "qwen2.5-coder-0.5b"
LOCK_FILE = "digest.lock"
DONE_FILE = "digested.json"  # session id -> its turn count when digested

SYSTEM = (
    "You write the digest of a finished coding session for the developer's memory. Use only "
    "what the numbered turns say. Keep commands, file names, flags and error messages exactly as "
    "written."
)
INSTRUCTIONS = """Turns of the session:
{turns}

Write the session's digest: one line per item, each starting with its label and ending with the \
numbers of the turns it uses.
DONE: what was done [n]
DECIDED: what was decided, and why [n]
FIXED: what failed, and how it was fixed [n]
OPEN: what is still unfinished [n]
Use the session's own words: its commands, file names and errors. Write only such lines."""


@dataclass(frozen=True)
class DigestConfig:
    """How a session digest is written."""

    model: str | None = None  # generator spec ($LMM_DIGEST_MODEL, else DEFAULT_MODEL)
    prompt_tokens: int = 2_400  # turns shown at most (estimated tokens); longer turns are cut
    max_turn_chars: int = 600  # characters of one turn before the budget cuts further
    max_new_tokens: int = 160  # the digest's length at most (a CPU decodes a few tokens/s)
    min_support: float = 0.5  # share of a line's words found in the turns it cites
    min_words: int = 4  # claim words a line needs ("tool error [4]" says nothing)
    nice: int = 10  # niceness at least, on a CPU (`after_session_end`)
    threads: int = 0  # llama.cpp threads; 0: its default, all cores but one (faster under load)

    def __post_init__(self) -> None:
        if self.prompt_tokens < 200:
            raise LmmError(f"prompt_tokens must be at least 200 (got {self.prompt_tokens})")
        if not 0.0 <= self.min_support <= 1.0:
            raise LmmError(f"min_support must be within 0..1 (got {self.min_support})")


@dataclass
class DigestLine:
    section: str  # done | decided | fixed | open
    text: str  # the sentence, citations removed
    turns: list[int]  # the turn numbers it cites


@dataclass
class Digest:
    """What `digest_session` wrote for one session."""

    session_id: str
    model: str
    lines: list[DigestLine] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # lines the grounding check removed
    stored: list[int] = field(default_factory=list)  # cognition ids
    prompt_tokens: int = 0
    seconds: float = 0.0


def enabled() -> bool:
    """False when `LMM_DIGEST` is 0, false, no or off."""
    return config.settings().digest


# ---- the prompt


def _shown(turn_kind: str, role: str, has_error: bool) -> bool:
    if role not in ("user", "assistant"):
        return False
    if turn_kind == "tool_result":
        return has_error
    return turn_kind in ("message", "compact_summary")


def session_evidence(session: SessionView, cfg: DigestConfig) -> list[Evidence]:
    """The session's messages and failed tool calls as numbered evidence, within the budget:
    when they do not fit, every turn is cut shorter (down to 120 characters), then the oldest
    are left out."""
    turns = [
        t for t in session.turns if _shown(t.kind, t.role, any(r.is_error for r in t.tool_results))
    ]
    chars = cfg.max_turn_chars
    while True:
        texts = [(t, text) for t in turns if (text := compact(t, chars))]
        cost = sum(approx_tokens(text) + 6 for _, text in texts)
        if cost <= cfg.prompt_tokens or chars <= 120:
            break
        chars = max(120, chars * 3 // 4)
    while texts and sum(approx_tokens(x) + 6 for _, x in texts) > cfg.prompt_tokens:
        texts.pop(0)
    out = []
    for i, (turn, text) in enumerate(texts):
        source = Source(session.session_id, turn.timestamp, session.project, None, turn.uuid)
        hit = Hit("turn", i, text, 0.0, source, speaker=turn.speaker or turn.role)
        out.append(Evidence(i + 1, hit, text, 1.0))
    return out


def digest_messages(evidence: list[Evidence]) -> list[Message]:
    turns = "\n".join(f"[{e.n}] {e.hit.speaker}: {e.text}" for e in evidence)
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": INSTRUCTIONS.format(turns=turns)},
    ]


# ---- the reply

_HEADING = re.compile(r"^\W*(done|decided|fixed|failed and fixed|open)\W*:\s*(.*)$", re.I)
_SPEAKER = re.compile(r"^(?:user|assistant)\s*:\s*", re.I)
_NONE = re.compile(r"^\W*(none|n/a|nothing)\W*$", re.I)


def parse(reply: str) -> list[tuple[str, str]]:
    """(section, line) pairs of a digest reply; lines before any heading and 'none' are left out."""
    out: list[tuple[str, str]] = []
    section: str | None = None
    for raw in reply.splitlines():
        line = raw.strip()
        if m := _HEADING.match(line):
            section = SECTIONS[m.group(1).lower()][0]
            line = m.group(2).strip()
        line = _SPEAKER.sub("", line.lstrip("-*• ").strip())  # a copied turn's "user: "
        if section and line and not _NONE.match(line):
            out.append((section, line))
    return out


_CATEGORY = {section: category for section, category in SECTIONS.values()}


def _quote(evidence: Evidence, sentence: str) -> str:
    """The sentence of a cited turn that shares most words with the digest line."""
    words = claim_words(sentence)
    parts = [p for p in re.split(r"(?<=[.!?])\s+", evidence.text) if p.strip()] or [evidence.text]
    return max(parts, key=lambda p: len(words & set(re.findall(r"\w+", p.lower()))))[:300]


def to_cognition(line: DigestLine, evidence: list[Evidence], session: SessionView) -> Cognition:
    by_n = {e.n: e for e in evidence}
    sources = [
        SourceRef(
            session_id=session.session_id,
            turn_key=_turn_key(session, by_n[n]),
            uuid=by_n[n].hit.source.uuid,
            timestamp=by_n[n].hit.source.timestamp,
            quote=_quote(by_n[n], line.text),
        )
        for n in dict.fromkeys(line.turns)
    ]
    return Cognition(
        text=line.text,
        category=_CATEGORY[line.section],
        project_id=session.project_id,
        salience=0.6,
        origin="digest",
        sources=sources,
        extra={"digest": line.section},
    )


def _turn_key(session: SessionView, evidence: Evidence) -> str | None:
    uuid = evidence.hit.source.uuid
    return next((t.key for t in session.turns if t.uuid == uuid), None)


def cite(line: str, evidence: list[Evidence], min_support: float) -> str:
    """`line` as is when it cites turns; else with the one turn that holds the largest share of
    its claim words appended as its citation, when that share reaches `min_support` (small
    models often write a true line and forget the numbers; `ground` then checks it as usual)."""
    words = claim_words(line)
    if citations(line) or len(words) < 2 or not evidence:
        return line

    def share(e: Evidence) -> float:
        return len(words & set(re.findall(r"\w+", e.hit.text.lower()))) / len(words)

    best = max(evidence, key=share)
    return f"{line.rstrip()} [{best.n}]" if share(best) >= min_support else line


_CITES = re.compile(r"\s*(\[\d+(?:\s*[,;]\s*\d+)*\])+")


def digest_session(
    store: Store,
    session_id: str,
    lm: TextGenerator,
    config: DigestConfig | None = None,
) -> Digest:
    """Ask `lm` for the session's digest, keep its grounded lines as cognitions."""
    cfg = config or DigestConfig()
    session = load_session(store, session_id)
    if not session.turns:
        raise LmmError(f"no session {session_id!r} in the store; run `lmm ingest` first")
    evidence = session_evidence(session, cfg)
    result = Digest(session_id, lm.name)
    if not evidence:
        return result
    messages = digest_messages(evidence)
    result.prompt_tokens = sum(approx_tokens(m["content"]) for m in messages)
    start = time.perf_counter()
    reply = lm.generate(messages, max_new_tokens=cfg.max_new_tokens)
    result.seconds = time.perf_counter() - start
    for section, line in parse(reply):
        kept, dropped = ground(cite(line, evidence, cfg.min_support), evidence, cfg.min_support)
        result.dropped += dropped
        for sentence in kept:
            if len(claim_words(sentence)) < cfg.min_words:
                result.dropped.append(sentence)
                continue
            text = _CITES.sub("", sentence).strip()
            result.lines.append(DigestLine(section, text, citations(sentence)))
    with store.transaction():
        for kept_line in result.lines:
            cog = to_cognition(kept_line, evidence, session)
            result.stored.append(cognitions.add(store, cog))
    log.info(
        "digest of %s: %d lines kept, %d dropped, %.1fs",
        session_id,
        len(result.lines),
        len(result.dropped),
        result.seconds,
    )
    return result


def _done_path() -> Path:
    return paths.home() / DONE_FILE


def _done() -> dict[str, int]:
    """Session id -> its turn count when it was last digested."""
    try:
        data = json.loads(_done_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else {}


def digested(store: Store, session_id: str) -> bool:
    """Whether `session_id` was digested with the turns it has now (a session digested at a
    compaction is digested again once it has more turns)."""
    return _done().get(session_id) == store.session_turn_count(session_id)


def mark_digested(store: Store, session_id: str) -> None:
    done = _done()
    done[session_id] = store.session_turn_count(session_id)
    tmp = _done_path().with_name(f"{DONE_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(done))
    tmp.replace(_done_path())


# ---- the background step


def generator(cfg: DigestConfig) -> TextGenerator:
    """The digest's model: `cfg.model`, `$LMM_DIGEST_MODEL` or DEFAULT_MODEL; in llama.cpp, with
    `cfg.threads` threads when set, unless it is loaded already."""
    from lmm.lm import llamacpp, models

    lm = models.generator(cfg.model or config.settings().digest_model or DEFAULT_MODEL)
    if cfg.threads and isinstance(lm, llamacpp.LlamaCppLM) and not lm.loaded:
        lm.threads = cfg.threads
    return lm


def after_session_end(
    store: Store,
    session_id: str,
    config: DigestConfig | None = None,
    lm: TextGenerator | None = None,
) -> Digest | None:
    """The digest step of the job that runs after a session ends: None when switched off
    (`LMM_DIGEST=0`) or the session was digested with the turns it has now. `lm` defaults to
    `config.model`, `$LMM_DIGEST_MODEL` or the packaged Qwen2.5-Coder-0.5B. Waits for any other
    digest on this machine to finish first; on a CPU it runs at niceness `config.nice` at least."""
    import fcntl

    from lmm.lm import speed

    cfg = config or DigestConfig()
    if not enabled() or digested(store, session_id):
        return None
    if not speed.gpu_available() and (current := os.nice(0)) < cfg.nice:
        os.nice(cfg.nice - current)  # at least `nice`, however many sessions this process digests
    lock = paths.home() / LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # one session at a time
        try:
            if digested(store, session_id):  # by another process while this one waited
                return None
            if lm is None:
                lm = generator(cfg)
            result = digest_session(store, session_id, lm, cfg)
            mark_digested(store, session_id)
            return result
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def after_learning(
    store: Store, transcripts: list[str], lm: TextGenerator | None = None
) -> list[Digest]:
    """The background job's last, optional step (background.run_round): digest each main session
    among `transcripts` (by file name, `<session id>.jsonl`) that has none yet. Skipped, with a
    log line, when switched off, when no fast runtime is here (neither llama.cpp nor a GPU: a
    transformers digest on a CPU costs minutes), or when the model cannot be loaded."""
    from lmm.lm import llamacpp, speed

    if not enabled():
        return []
    if lm is None and not (llamacpp.available() or speed.gpu_available()):
        log.info("no session digest: no GPU and no llama.cpp (pip install 'lmm[cpu]')")
        return []
    out = []
    for transcript in transcripts:
        session_id = Path(transcript).stem
        if not store.has_session(session_id):
            continue
        try:
            result = after_session_end(store, session_id, lm=lm)
        except LmmError as exc:
            log.info("no session digest: %s", exc)
            break
        if result is not None:  # the model stays loaded for the next (llamacpp.load caches)
            out.append(result)
    return out
