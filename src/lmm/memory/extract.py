"""Stored sessions -> cognitions: run an extractor (`lmm.memory.seam`) over the store."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from lmm.errors import LmmError
from lmm.memory.seam import Candidate, Extractor, SessionView, validate
from lmm.store import cognitions, extraction
from lmm.store.cognitions import Cognition, SourceRef
from lmm.store.db import Store, row_to_turn

log = logging.getLogger(__name__)

MAX_TEXT = 600  # characters of a cognition's text


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

    row = store.session_with_project(session_id)
    rows = store.session_turn_rows(session_id)
    ids = {r["key"]: int(r["id"]) for r in rows}
    turns = conversation_order([row_to_turn(r) for r in rows])
    turn_ids = [ids[t.key] for t in turns]
    new = [i for i, tid in enumerate(turn_ids) if tid > after_turn_id]
    project_id = row["project_id"] if row else None
    if project_id is None:  # sessions without a project row: take the turns' project
        project_id = next((r["project_id"] for r in rows if r["project_id"] is not None), None)
    project = row["path"] if row and row["path"] else None
    if project is None and project_id is not None:
        project = store.project_path(project_id)
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
    unscoped: int = 0  # user-wide memories that the rules no longer read as for all work
    seconds: float = 0.0

    def summary(self) -> str:
        rate = self.turns / self.seconds if self.seconds > 0 else 0.0
        rejected = sum(self.rejected.values())
        return (
            f"{self.extractor}: {self.sessions} sessions read ({self.sessions_unchanged} "
            f"unchanged), {self.turns} turns, {self.candidates} candidates ({rejected} rejected), "
            f"{self.added} new cognitions, {self.merged} merged, {self.superseded} superseded, "
            + (f"{self.unscoped} back in their project, " if self.unscoped else "")
            + f"{self.seconds:.2f} s ({rate:.0f} turns/s)"
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
    ids = sessions if sessions is not None else extraction.sessions_to_read(store, project)
    for sid in ids:
        state = extraction.last_read(store, sid, extractor.name)
        last = 0 if state is None or full else state
        newest = store.newest_turn_id(sid)
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
            if state is None or state != newest:
                extraction.mark_read(store, sid, extractor.name, newest)
    report.rejected = dict(rejected)
    with store.transaction():
        report.unscoped = reread_scopes(store)
    report.seconds = time.perf_counter() - t0
    return report


def reread_scopes(store: Store) -> int:
    """Memories extraction made user-wide as rules for all work that `cues.for_all_work` no
    longer reads as one ("Tables: tenants, api_keys (hashed, never store raw keys)") go back to
    the project they were said in: a store learned before a better reading gets it too. The
    user's own moves (`scope_by` 'user') and repeated rules stand. Returns how many moved."""
    from lmm.memory.cues import for_all_work

    moved = 0
    for row in cognitions.rule_scoped(store):
        if not for_all_work(row["text"], instruction=row["category"] == "preference"):
            cognitions.unscope(store, int(row["id"]), int(row["learned_in"]))
            moved += 1
    return moved


def _store(store: Store, cog: Cognition, report: ExtractReport) -> None:
    outcome = cognitions.put(store, cog)
    if outcome.action == "added":
        report.added += 1
    elif outcome.action == "merged":
        report.merged += 1
    report.superseded += len(outcome.superseded)
