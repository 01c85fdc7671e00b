"""Stored sessions -> cognitions, through a small extractor seam.

The seam (stable; `lmm.memory.extract_lm.LMExtractor` implements it too):

    class Extractor(Protocol):
        name: str                                   # "rules", "lm", ...: origin + state key
        def extract(self, session: SessionView) -> list[Candidate]: ...

An extractor reads one `SessionView` (the session's turns in conversation order, with
`first_new`: the index of the first turn it has not seen before) and proposes `Candidate`s. Each
candidate names its source turn (`turn_key`) and a verbatim `quote` of that turn; `validate()`
rejects it when the category is unknown, the text is empty, the turn does not exist or the quote
is not in the turn (grounding). `run_extraction()` validates, turns candidates into `Cognition`s
and stores them through `cognitions.add` (which merges duplicates and supersedes contradicted
ones), then records per session how far the extractor has read (`extraction_state`). A session
is re-read only when it has new turns; re-reading is harmless (uids and source rows make every
write idempotent), so correctness never depends on that bookkeeping.

API: `get_extractor("rules" | "lm")`, `run_extraction(store, extractor, project=None,
sessions=None, full=False) -> ExtractReport`, `load_session(store, session_id, after_turn_id=0)`,
`validate(candidate, session) -> str | None`, `to_cognition(candidate, session, origin)`.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from lmm.errors import LmmError
from lmm.records import Turn
from lmm.store import cognitions
from lmm.store.cognitions import CATEGORIES, Cognition, SourceRef
from lmm.store.db import Store, row_to_turn

log = logging.getLogger(__name__)

MAX_TEXT = 600  # characters of a cognition's text


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


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _grounds(turn: Turn) -> str:
    parts = [turn.text, turn.thinking, *(c.input for c in turn.tool_calls)]
    return _squash("\n".join(p for p in parts if p))


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
        if _squash(quote) not in _grounds(turn):
            return f"quote not found in turn {key!r}: {quote[:60]!r}"
    return None


def to_cognition(candidate: Candidate, session: SessionView, origin: str) -> Cognition:
    """A validated candidate as a `Cognition` with its source pointers."""
    sources = []
    for key, quote in [(candidate.turn_key, candidate.quote), *candidate.more]:
        turn = session.turn(key)
        assert turn is not None
        sources.append(
            SourceRef(
                session_id=session.session_id,
                turn_key=key,
                uuid=turn.uuid,
                timestamp=turn.timestamp,
                quote=quote.strip(),
            )
        )
    text = candidate.text.strip()
    if len(text) > MAX_TEXT:
        text = text[: MAX_TEXT - 1].rstrip() + "…"
    return Cognition(
        text=text,
        category=candidate.category,
        project_id=None if candidate.user_wide else session.project_id,
        learned_in=session.project_id,
        scope_by="rule" if candidate.user_wide and session.project_id is not None else None,
        subject=candidate.subject,
        keywords=candidate.keywords,
        salience=candidate.salience,
        origin=origin,
        valid_from=sources[0].timestamp,
        sources=sources,
        extra={"value": candidate.value} if candidate.subject and candidate.value else {},
    )


# ---- reading sessions from the store


def load_session(store: Store, session_id: str, after_turn_id: int = 0) -> SessionView:
    """A session as extractors see it; turns with row id > `after_turn_id` are the new ones."""
    from lmm.conversation import conversation_order

    row = store.db.execute(
        "SELECT s.project_id, p.path FROM sessions s LEFT JOIN projects p ON p.id = s.project_id "
        "WHERE s.id = ?",
        (session_id,),
    ).fetchone()
    rows = store.db.execute(
        "SELECT * FROM turns WHERE session_id = ? ORDER BY source_id, line_no, id", (session_id,)
    ).fetchall()
    ids = {r["key"]: int(r["id"]) for r in rows}
    turns = conversation_order([row_to_turn(r) for r in rows])
    turn_ids = [ids[t.key] for t in turns]
    new = [i for i, tid in enumerate(turn_ids) if tid > after_turn_id]
    project_id = row["project_id"] if row else None
    if project_id is None:  # sessions without a project row: take the turns' project
        project_id = next((r["project_id"] for r in rows if r["project_id"] is not None), None)
    project = row["path"] if row and row["path"] else None
    if project is None and project_id is not None:
        project = store.db.execute(
            "SELECT path FROM projects WHERE id = ?", (project_id,)
        ).fetchone()[0]
    return SessionView(
        session_id=session_id,
        project=project,
        project_id=project_id,
        turns=turns,
        turn_ids=turn_ids,
        first_new=min(new) if new else len(turns),
    )


# ---- running an extractor over the store


@dataclass
class ExtractReport:
    """What one extraction run did."""

    extractor: str
    sessions: int = 0  # sessions read
    sessions_unchanged: int = 0  # skipped: no turns since the last run
    turns: int = 0
    candidates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # reason kind -> count
    added: int = 0  # new cognitions
    merged: int = 0  # candidates that became evidence for an existing cognition
    superseded: int = 0  # cognitions replaced by newer ones during this run
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.turns / self.seconds if self.seconds > 0 else 0.0
        rejected = sum(self.rejected.values())
        return (
            f"{self.extractor}: {self.sessions} sessions read ({self.sessions_unchanged} "
            f"unchanged), {self.turns} turns, {self.candidates} candidates ({rejected} rejected), "
            f"{self.added} new cognitions, {self.merged} merged, {self.superseded} superseded, "
            f"{self.seconds:.2f} s ({rate:.0f} turns/s)"
        )


def get_extractor(name: str) -> Extractor:
    """The extractor called `name`: 'rules' (offline, fast) or 'lm' (a local language model)."""
    if name == "rules":
        from lmm.memory.extract_rules import RuleExtractor

        return RuleExtractor()
    if name == "lm":
        try:
            from lmm.memory import extract_lm
        except ImportError as exc:
            raise LmmError(
                f"the LM extractor is not available ({exc}); use --extractor rules, or install "
                "the model extra: pip install 'lmm[llm]'"
            ) from exc
        return extract_lm.LMExtractor()
    raise LmmError(f"unknown extractor {name!r}; choose 'rules' or 'lm'")


def _session_ids(store: Store, project: str | None, sessions: list[str] | None) -> list[str]:
    if sessions is not None:
        return sessions
    sql = (
        "SELECT s.id FROM sessions s LEFT JOIN projects p ON p.id = s.project_id "
        "WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id)"
    )
    params: list[str] = []
    if project is not None:
        sql += " AND p.path = ?"
        params.append(project.rstrip("/") or "/")
    # oldest first, so that later statements supersede earlier ones as they arrive
    sql += " ORDER BY coalesce(s.started_at, ''), s.id"
    return [r[0] for r in store.db.execute(sql, params)]


def run_extraction(
    store: Store,
    extractor: Extractor,
    *,
    project: str | None = None,
    sessions: list[str] | None = None,
    full: bool = False,
) -> ExtractReport:
    """Run `extractor` over the store's sessions (of `project`, a path, when given).

    Only sessions with turns the extractor has not read are read again, unless `full`.
    Each session is written in one transaction together with its extraction state.
    """
    t0 = time.perf_counter()
    report = ExtractReport(extractor=extractor.name)
    rejected: Counter[str] = Counter()
    for sid in _session_ids(store, project, sessions):
        state = store.db.execute(
            "SELECT last_turn_id FROM extraction_state WHERE session_id = ? AND extractor = ?",
            (sid, extractor.name),
        ).fetchone()
        last = 0 if state is None or full else int(state[0])
        newest = store.db.execute(
            "SELECT max(id) FROM turns WHERE session_id = ?", (sid,)
        ).fetchone()[0]
        if newest is None or newest <= last:
            report.sessions_unchanged += 1
            continue
        view = load_session(store, sid, after_turn_id=last)
        found = extractor.extract(view)
        report.sessions += 1
        report.turns += len(view.turns)
        report.candidates += len(found)
        with store.transaction():
            for cand in found:
                reason = validate(cand, view)
                if reason is not None:
                    rejected[reason.split(" ", 1)[0]] += 1
                    log.info("rejected %s candidate from %s: %s", extractor.name, sid, reason)
                    continue
                _store(store, to_cognition(cand, view, extractor.name), report)
            if state is None or int(state[0]) != newest:
                store.db.execute(
                    """INSERT INTO extraction_state
                        (session_id, extractor, last_turn_id, updated_at)
                    VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
                    ON CONFLICT (session_id, extractor) DO UPDATE SET
                        last_turn_id = excluded.last_turn_id, updated_at = excluded.updated_at""",
                    (sid, extractor.name, newest),
                )
    report.rejected = dict(rejected)
    report.seconds = time.perf_counter() - t0
    return report


def _store(store: Store, cog: Cognition, report: ExtractReport) -> None:
    outcome = cognitions.put(store, cog)
    if outcome.action == "added":
        report.added += 1
    elif outcome.action == "merged":
        report.merged += 1
    report.superseded += len(outcome.superseded)
