"""The extractor seam: what an extractor reads of a session and what it proposes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from lmm.records import Turn
from lmm.store.cognitions import CATEGORIES


@dataclass
class SessionView:
    """What an extractor sees of one session."""

    session_id: str
    project: str | None  # the project's path (None: no project)
    project_id: int | None
    turns: list[Turn]  # conversation order
    turn_ids: list[int] = field(default_factory=list)  # store row ids, parallel to `turns`
    first_new: int = 0  # index in `turns` of the first turn this extractor has not read
    _by_key: dict[str, Turn] = field(default_factory=dict, repr=False)

    def turn(self, key: str) -> Turn | None:
        if not self._by_key:
            self._by_key = {t.key: t for t in self.turns}
        return self._by_key.get(key)


@dataclass
class Candidate:
    """A proposed cognition, grounded in a quote of one turn of the session.

    `more` lists further (turn_key, quote) evidence, e.g. the turn that fixed an error.
    `user_wide` asks for project scope NULL: a rule for all work (`cues.for_all_work`).
    `subject` (optional) names what the statement is about. Left None, subject and value are
    derived from the text (`consolidate.subject_value`). A given subject with a `value`: a newer
    candidate with the same subject and another value supersedes the older; a given subject
    without a value only labels the cognition.
    """

    category: str
    text: str
    turn_key: str
    quote: str
    subject: str | None = None
    keywords: list[str] = field(default_factory=list)
    salience: float = 0.5
    user_wide: bool = False
    more: list[tuple[str, str]] = field(default_factory=list)
    value: str | None = None


class Extractor(Protocol):
    name: str

    def extract(self, session: SessionView) -> list[Candidate]: ...


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def grounds(turn: Turn) -> str:
    parts = [turn.text, turn.thinking, *(c.input for c in turn.tool_calls)]
    return squash("\n".join(p for p in parts if p))


def validate(candidate: Candidate, session: SessionView) -> str | None:
    """Why `candidate` must be rejected, or None when it is well-formed and grounded.

    The quote must occur in its turn's text, thinking or tool inputs (whitespace and case aside).
    """
    if candidate.category not in CATEGORIES:
        return f"category {candidate.category!r} is not one of {', '.join(CATEGORIES)}"
    if not candidate.text.strip():
        return "empty text"
    if not 0.0 <= candidate.salience <= 1.0:
        return f"salience {candidate.salience} is outside [0, 1]"
    for key, quote in [(candidate.turn_key, candidate.quote), *candidate.more]:
        if not key:
            return "no source turn"
        turn = session.turn(key)
        if turn is None:
            return f"source turn {key!r} is not in session {session.session_id}"
        if not quote.strip():
            return f"no quote from turn {key!r}"
        if squash(quote) not in grounds(turn):
            return f"quote not found in turn {key!r}: {quote[:60]!r}"
    return None
