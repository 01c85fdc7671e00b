"""What building training rows works with: its knobs (`DataConfig`, one `lmm build-data` flag
each), a cognition as training sees it (`Memory`), a context the agent could be in and its
context→memory pair, and the two relevance rules both kinds of pairs share (`known`,
`keyword_query`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lmm.errors import LmmError


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class DataConfig:
    """Knobs of `build`; each is a `lmm build-data` flag (`max_per_memory` -> --max-per-memory)
    whose help is the field's metadata."""

    max_per_memory: int = _f(8, "pairs one memory may be a target of, x its salience; 0: no cap")
    val_fraction: float = _f(0.1, "share of sessions held out for validation")
    seed: int = _f(0, "split and sampling seed")
    chunk_turns: int = _f(8, "turns per conversation chunk")
    max_context_chars: int = _f(3000, "a context is cut to this many characters")
    max_targets: int = _f(5, "memories listed in one answer")
    retrieve_k: int = _f(3, "earlier memories found by keyword search per context")
    distractors: int = _f(4, "unrelated items mixed into each synthesis prompt")
    negative_fraction: float = _f(0.1, "'no relevant memory' pairs, as a share of the others")
    tool_result_chars: int = _f(600, "a tool result is clipped to this in rendered text")
    min_prompt_chars: int = _f(20, "shorter user messages make no prompt context")
    min_shared_words: int = _f(2, "a searched memory must share this many content words")

    def __post_init__(self) -> None:
        if self.max_per_memory < 0:
            raise LmmError("--max-per-memory must be 0 (no cap) or more")
        if not 0.0 <= self.val_fraction < 1.0:
            raise LmmError("--val-fraction must be in [0, 1), e.g. 0.1")
        if self.chunk_turns < 1 or self.max_context_chars < 200 or self.max_targets < 1:
            raise LmmError("--chunk-turns >= 1, --max-context-chars >= 200, --max-targets >= 1")


@dataclass
class Memory:
    """A cognition as training sees it."""

    id: int
    text: str
    category: str
    salience: float
    project_id: int | None
    known_from: str | None  # earliest source time; None: always known (code, user)
    valid_until: str | None
    turns: frozenset[tuple[str, str]]  # (session id, turn key) sources
    first_session: str | None = None  # the session of its earliest source

    @property
    def sessions(self) -> frozenset[str]:
        return frozenset(s for s, _ in self.turns)

    def line(self) -> str:
        date = f" ({self.known_from[:10]})" if self.known_from else ""
        return f"- [{self.category}] {self.text}{date}"


@dataclass
class Context:
    """Something the agent could be doing: a session opening, a prompt or a conversation chunk."""

    kind: str  # opening | prompt | chunk
    session_id: str
    project_id: int | None
    header: str  # project and date line
    text: str
    time: str | None  # timestamp of its last turn
    turn_keys: frozenset[str]
    query: str  # what retrieval is asked: the prompt itself, or the chunk


@dataclass
class Pair:
    context: Context
    split: str  # train | val
    ranked: list[tuple[int, int]] = field(default_factory=list)  # (memory id, priority)
    kept: list[int] = field(default_factory=list)  # memory ids in the answer


# ---- relevance


def known(m: Memory, time: str | None) -> bool:
    """Whether memory `m` existed and was not yet replaced at `time` (unknown time: always)."""
    if time is None:
        return True
    return (m.known_from is None or m.known_from <= time) and (
        m.valid_until is None or m.valid_until > time
    )


def keyword_query(text: str, terms: int = 48) -> str:
    from lmm.retrieve.search import content_terms

    return " ".join(content_terms(re.sub(r"[^\w\s]", " ", text))[:terms])
