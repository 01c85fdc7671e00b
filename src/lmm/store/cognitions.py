"""Cognitions: durable knowledge taken from sessions, code or the user, with the turns behind it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from lmm.errors import CognitionError
from lmm.store.db import Store, quote_fts
from lmm.text import consolidate
from lmm.text.redact import find_secrets, redact, redact_cut, unmarked

CATEGORIES = ("preference", "decision", "fact", "lesson", "workflow", "gotcha")
ORIGINS = ("rules", "lm", "user", "code")  # the usual ones; any extractor's name is allowed
TEAM = "team"  # the origin of a memory pulled from the team store (lmm.store.team)
# Categories whose statements can contradict each other (facts about code are replaced per file).
INSTRUCTIVE = ("preference", "decision", "workflow", "gotcha")
USER_SALIENCE = 0.9
SCOPES = ("user", "project")


@dataclass
class SourceRef:
    """Where a cognition came from: a turn of a session, or a file of a codebase."""

    session_id: str | None = None
    turn_key: str | None = None
    uuid: str | None = None  # the source record's message uuid
    timestamp: str | None = None
    file_path: str | None = None
    line_no: int | None = None
    quote: str = ""  # the words of the source that support the cognition


@dataclass
class Cognition:
    """One unit of durable knowledge. `id` and `uid` are filled in by the store."""

    text: str
    category: str
    project_id: int | None = None  # NULL: user-wide
    subject: str | None = None
    keywords: list[str] = field(default_factory=list)
    salience: float = 0.5
    origin: str = "rules"
    status: str = "active"
    valid_from: str | None = None
    valid_until: str | None = None
    evidence: int = 1
    superseded_by: int | None = None
    sources: list[SourceRef] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    learned_in: int | None = None  # the project it was first stated in (kept when user-wide)
    scope_by: str | None = None  # why it has its scope: None (as stated) | rule | repeated | user
    id: int | None = None
    uid: str = ""
    project: str | None = None  # the project's path, filled in when read back
    learned_in_path: str | None = None  # `learned_in`'s path, filled in when read back

    @property
    def scope(self) -> str:
        """'user' (applies in every project) or 'project'."""
        return "user" if self.project_id is None else "project"


def make_uid(project_id: int | None, category: str, text: str) -> str:
    key = (
        f"{project_id if project_id is not None else '*'}|{category}|{consolidate.normalise(text)}"
    )
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def combined_salience(base: float, evidence: int) -> float:
    """Each supporting source adds independent weight: 1 - (1 - base)^evidence, capped at 0.99."""
    return round(min(0.99, 1 - (1 - base) ** max(1, evidence)), 4)


def _check(cog: Cognition) -> None:
    if cog.category not in CATEGORIES:
        raise CognitionError(f"category {cog.category!r} is not one of {', '.join(CATEGORIES)}")
    if not cog.origin:
        raise CognitionError(
            f"a cognition needs an origin ({', '.join(ORIGINS)}, or an extractor's name)"
        )
    if not cog.text.strip():
        raise CognitionError("a cognition needs some text")


# ---- the write path


@dataclass
class Outcome:
    """What `put` did: the row that holds the cognition now and how it got there."""

    id: int
    action: str  # added | merged (new evidence) | unchanged | forgotten (kept forgotten)
    superseded: list[int] = field(default_factory=list)  # rows this one replaced


def add(store: Store, cog: Cognition) -> int:
    """Store `cog` (redacted); returns the id of the row that now holds it. See `put`."""
    return put(store, cog).id


def put(store: Store, cog: Cognition) -> Outcome:
    """Store `cog`, merging it into a duplicate or superseding what it contradicts.

    Idempotent: putting the same cognition with the same sources again changes nothing.
    Call inside `store.transaction()` for batch speed.
    """
    _check(cog)
    cog = replace(cog, extra=dict(cog.extra), sources=list(cog.sources))  # the caller's stays as is
    cog.keywords = safe_keywords(cog.text, cog.keywords)
    cog.text = redact(cog.text.strip())
    if cog.valid_from is None:
        cog.valid_from = min((s.timestamp for s in cog.sources if s.timestamp), default=None)
    if cog.subject is None and cog.category in INSTRUCTIVE:
        sv = consolidate.subject_value(cog.text)
        if sv:
            cog.subject, cog.extra["value"] = sv
    if cog.learned_in is None:
        cog.learned_in = cog.project_id
    uid = make_uid(cog.project_id, cog.category, cog.text)
    row = store.db.execute(
        "SELECT id, status, valid_until FROM cognitions WHERE uid = ?", (uid,)
    ).fetchone()
    if row is None:
        row = _find_by_source(store, cog)
    if row is not None:
        if row["status"] == "forgotten":
            return Outcome(int(row["id"]), "forgotten")
        out = Outcome(int(row["id"]), "merged" if _attach(store, row["id"], cog) else "unchanged")
        restated = out.action == "merged" and cog.valid_from is not None
        if (
            row["status"] == "superseded"
            and restated
            and _later(cog.valid_from, row["valid_until"])
        ):
            _revive(store, out.id)  # stated again (a new source) after it was replaced: current
            out.superseded = _supersede_conflicts(store, cog, out.id)
        return out
    dup = _find_duplicate(store, cog)
    if dup is not None:
        dup_id, dup_project = dup
        if cog.project_id is None and dup_project is not None:  # now said as a rule for all work
            _set_project(store, dup_id, None, cog.scope_by or "rule")
        out = Outcome(dup_id, "merged" if _attach(store, dup_id, cog) else "unchanged")
        if out.action == "merged" and cog.project_id is not None and dup_project is None:
            out.superseded = _agree_again(store, cog, dup_id)
        return out
    again = _stated_elsewhere(store, cog)
    if again is not None:
        _set_project(store, again, None, "repeated")
        _attach(store, again, cog)
        return Outcome(again, "merged")
    new_id = _insert(store, cog, uid)
    return Outcome(new_id, "added", _supersede_conflicts(store, cog, new_id))


def _later(a: str | None, b: str | None) -> bool:
    """Whether time `a` is after time `b`; an unknown time counts as now."""
    if a is None:
        return b is not None
    return b is not None and a > b


def _insert(store: Store, cog: Cognition, uid: str) -> int:
    cur = store.db.execute(
        """INSERT INTO cognitions (uid, project_id, category, subject, text, keywords, salience,
            evidence, origin, status, valid_from, extra, learned_in, scope_by)
        VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, 'active', ?, ?, ?, ?)""",
        (
            uid,
            cog.project_id,
            cog.category,
            cog.subject,
            cog.text,
            orjson.dumps(sorted(set(cog.keywords))).decode(),
            cog.salience,
            cog.origin,
            cog.valid_from,
            orjson.dumps({**cog.extra, "base_salience": cog.salience}, option=_SORT).decode(),
            cog.learned_in if cog.learned_in is not None else cog.project_id,
            cog.scope_by,
        ),
    )
    new_id = int(cur.lastrowid or 0)
    _attach(store, new_id, cog)
    return new_id


_SORT = orjson.OPT_SORT_KEYS
_INSERT_SOURCE = """
INSERT INTO cognition_sources
    (cognition_id, session_id, turn_key, uuid, timestamp, file_path, line_no, quote)
SELECT ?, ?, ?, ?, ?, ?, ?, ?
WHERE NOT EXISTS (SELECT 1 FROM cognition_sources WHERE cognition_id = ? AND session_id IS ?
    AND turn_key IS ? AND file_path IS ?)
"""


def _attach(store: Store, cog_id: int, cog: Cognition) -> bool:
    """Add `cog`'s sources to row `cog_id` (NULL-safe: the table's UNIQUE lets NULLs repeat).

    Evidence = distinct sources; salience = `combined_salience(base, evidence)`. Returns whether
    any source was new; when none is, the row is left byte-identical (idempotent re-runs)."""
    before = store.db.total_changes
    for s in cog.sources:
        store.db.execute(
            _INSERT_SOURCE,
            (cog_id, s.session_id, s.turn_key, s.uuid, s.timestamp, s.file_path, s.line_no,
             redact_cut(s.quote, 500), cog_id, s.session_id, s.turn_key, s.file_path),
        )  # fmt: skip
    if store.db.total_changes == before:
        return False
    row = store.db.execute("SELECT extra FROM cognitions WHERE id = ?", (cog_id,)).fetchone()
    extra = orjson.loads(row["extra"])
    base = max(float(extra.get("base_salience", cog.salience)), cog.salience)
    extra["base_salience"] = base
    n, first = store.db.execute(
        "SELECT count(*), min(timestamp) FROM cognition_sources WHERE cognition_id = ?", (cog_id,)
    ).fetchone()
    store.db.execute(
        """UPDATE cognitions SET evidence = ?, salience = ?, extra = ?,
            valid_from = CASE WHEN valid_from IS NULL OR ? < valid_from THEN ? ELSE valid_from END,
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?""",
        (
            max(1, int(n)),
            combined_salience(base, max(1, int(n))),
            orjson.dumps(extra, option=_SORT).decode(),
            first,
            first,
            cog_id,
        ),
    )
    return True


# Rows whose scope the user set never change scope because of what extraction reads.
_NOT_SET_BY_USER = "coalesce(scope_by, '') != 'user'"


def _meeting_sql(cog: Cognition) -> tuple[str, tuple[Any, ...]]:
    """Rows that can say the same as `cog`: its project's and the user-wide ones; for a user-wide
    cognition, the user-wide ones and those of the project it was learned in."""
    if cog.project_id is not None:
        return "(project_id = ? OR project_id IS NULL)", (cog.project_id,)
    if cog.learned_in is None:
        return "project_id IS NULL", ()
    return "(project_id IS NULL OR project_id = ?)", (cog.learned_in,)


def _rival_sql(cog: Cognition) -> tuple[str, tuple[Any, ...]]:
    """Rows `cog` can supersede: its own scope's, and across scopes those of the project where it
    was stated (a project statement does not replace a user-wide rule stated elsewhere: it only
    hides it in its project, `lmm.retrieve.scope`)."""
    if cog.project_id is not None:
        return (
            f"(project_id = ? OR (project_id IS NULL AND learned_in = ? AND {_NOT_SET_BY_USER}))",
            (cog.project_id, cog.project_id),
        )
    if cog.learned_in is None:
        return "project_id IS NULL", ()
    return (
        f"(project_id IS NULL OR (project_id = ? AND {_NOT_SET_BY_USER}))",
        (cog.learned_in,),
    )


def _same(cog: Cognition, text: str, subject: str | None, extra: str) -> bool:
    """Whether a stored row says the same as `cog`: equal normalised text, same subject and
    value, or token Jaccard >= DUPLICATE_JACCARD."""
    if consolidate.normalise(text) == consolidate.normalise(cog.text):
        return True
    value = cog.extra.get("value")
    if cog.subject and subject == cog.subject and value is not None:
        return bool(orjson.loads(extra).get("value") == value)
    if cog.subject and subject and subject != cog.subject:
        return False  # alike in words, about different things ("... in functions" / "methods")
    return consolidate.jaccard(text, cog.text) >= consolidate.DUPLICATE_JACCARD


def _find_by_source(store: Store, cog: Cognition) -> Any:
    """A row (any status) this same source turn already produced: re-runs land where the first
    run put them, even when that row was merged into or has been superseded since."""
    turns = [(s.session_id, s.turn_key) for s in cog.sources if s.session_id and s.turn_key]
    if not turns:
        return None
    # in any scope: a row moved to another scope since (promoted, or by the user) stays there
    for session_id, turn_key in turns[:1]:
        rows = store.db.execute(
            """SELECT c.id, c.status, c.valid_until, c.text, c.subject, c.extra
            FROM cognition_sources s JOIN cognitions c ON c.id = s.cognition_id
            WHERE s.session_id = ? AND s.turn_key = ? AND c.category = ?
            ORDER BY c.id""",
            (session_id, turn_key, cog.category),
        ).fetchall()
        for r in rows:
            # a forgotten row from this turn stays forgotten: its text is gone, so match loosely
            if r["status"] == "forgotten" or _same(cog, r["text"], r["subject"], r["extra"]):
                return r
    return None


def _find_duplicate(store: Store, cog: Cognition) -> tuple[int, int | None] | None:
    """(id, project id) of an active row of the same category that says the same thing, among
    those `cog` meets (`_meeting_sql`), rows of its own scope first: same subject and value, or a
    near-duplicate by `_same` among rows of similar length."""
    scope, params = _meeting_sql(cog)
    own_first = "project_id IS NULL" if cog.project_id is not None else "project_id IS NOT NULL"
    value = cog.extra.get("value")
    if cog.subject and value is not None:
        for r in store.db.execute(
            f"SELECT id, project_id, extra FROM cognitions WHERE {scope} AND category = ? "
            f"AND subject = ? AND status = 'active' ORDER BY {own_first}, id",
            (*params, cog.category, cog.subject),
        ):
            if orjson.loads(r["extra"]).get("value") == value:
                return int(r["id"]), r["project_id"]
    n = len(cog.text)
    # texts with token Jaccard >= 0.7 are of comparable length; the bound only saves work
    for r in store.db.execute(
        f"SELECT id, project_id, text, subject, extra FROM cognitions WHERE {scope} "
        f"AND category = ? AND status = 'active' AND length(text) BETWEEN ? AND ? "
        f"ORDER BY {own_first}, id",
        (*params, cog.category, n // 3, n * 3),
    ):
        if _same(cog, r["text"], r["subject"], r["extra"]):
            return int(r["id"]), r["project_id"]
    return None


def _stated_elsewhere(store: Store, cog: Cognition) -> int | None:
    """An active row of another project that states the same rule as `cog` (same category,
    subject and value, or near-duplicate text with that subject): a rule said in two projects
    holds in every one. Rules only (INSTRUCTIVE): facts and lessons belong to their codebase."""
    if cog.project_id is None or cog.category not in INSTRUCTIVE or not cog.subject:
        return None
    for r in store.db.execute(
        f"""SELECT id, text, subject, extra FROM cognitions WHERE subject = ? AND category = ?
        AND status = 'active' AND project_id IS NOT NULL AND project_id != ?
        AND {_NOT_SET_BY_USER} ORDER BY id""",
        (cog.subject, cog.category, cog.project_id),
    ):
        if _same(cog, r["text"], r["subject"], r["extra"]):
            return int(r["id"])
    return None


def rule_scoped(store: Store) -> list[Any]:
    """The active memories extraction made user-wide as rules for all work (`scope_by` 'rule'),
    with the project they were said in: id, category, text, learned_in."""
    return store.db.execute(
        "SELECT id, category, text, learned_in FROM cognitions WHERE status = 'active' "
        "AND project_id IS NULL AND scope_by = 'rule' AND learned_in IS NOT NULL"
    ).fetchall()


def unscope(store: Store, cog_id: int, project_id: int) -> None:
    """Give a memory extraction had made user-wide back to `project_id`, as stated there."""
    _set_project(store, cog_id, project_id, None)


def _set_project(store: Store, cog_id: int, project_id: int | None, scope_by: str | None) -> None:
    """Give row `cog_id` the scope of `project_id` (None: user-wide). Its uid follows the new
    scope unless another row holds that uid; `learned_in` keeps where it was first stated."""
    row = store.db.execute(
        "SELECT category, text, project_id FROM cognitions WHERE id = ?", (cog_id,)
    ).fetchone()
    uid = make_uid(project_id, row["category"], row["text"])
    store.db.execute(
        """UPDATE cognitions SET project_id = ?, scope_by = ?,
            learned_in = coalesce(learned_in, ?, ?),
            uid = CASE WHEN EXISTS (SELECT 1 FROM cognitions WHERE uid = ? AND id != ?)
                THEN uid ELSE ? END,
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ?""",
        (project_id, scope_by, row["project_id"], project_id, uid, cog_id, uid, cog_id),
    )
    # The in-process vector index groups rows by project and reloads when `vectors` gains a row
    # (embed.vector_index): writing the row's vectors again under new rowids tells it.
    store.db.execute(
        "INSERT OR REPLACE INTO vectors SELECT * FROM vectors "
        "WHERE item_kind = 'cognition' AND item_id = ?",
        (cog_id,),
    )


def _conflicting(store: Store, cog: Cognition, exclude: int) -> list[Any]:
    """Active rows in `cog`'s scope with its subject and a conflicting value. Instructive
    categories contradict each other across categories; others only within their own."""
    value = cog.extra.get("value")
    if not cog.subject or value is None:
        return []
    scope, params = _rival_sql(cog)
    group = INSTRUCTIVE if cog.category in INSTRUCTIVE else (cog.category,)
    marks = ", ".join("?" * len(group))
    rows = store.db.execute(
        f"SELECT id, extra, valid_from, origin FROM cognitions WHERE {scope} AND subject = ? "
        f"AND status = 'active' AND id != ? AND category IN ({marks}) ORDER BY id",
        (*params, cog.subject, exclude, *group),
    ).fetchall()
    return [
        r
        for r in rows
        if (old := orjson.loads(r["extra"]).get("value")) is not None
        and consolidate.conflicts(old, value)
    ]


def _supersede_conflicts(store: Store, cog: Cognition, cog_id: int) -> list[int]:
    """Supersede the active rows `cog` contradicts; if one of them is newer than `cog` (sessions
    read out of order), `cog` itself is the one replaced. Between the user's own memory and one
    from the team store (origin 'team'), the user's wins whichever is newer."""
    replaced = []
    for r in _conflicting(store, cog, cog_id):
        if cog.origin == TEAM and r["origin"] != TEAM:
            supersede(store, cog_id, int(r["id"]))
            return [cog_id]
        if cog.origin != TEAM and r["origin"] == TEAM:
            supersede(store, int(r["id"]), cog_id)
            replaced.append(int(r["id"]))
            continue
        if _later(r["valid_from"], cog.valid_from) and r["valid_from"] is not None:
            supersede(store, cog_id, int(r["id"]), when=r["valid_from"])
            return [cog_id]
        supersede(store, int(r["id"]), cog_id, when=cog.valid_from)
        replaced.append(int(r["id"]))
    return replaced


def _agree_again(store: Store, cog: Cognition, user_id: int) -> list[int]:
    """A project statement that repeats user-wide rule `user_id` replaces the project's older
    statements that contradicted the rule (and hid it there). Newer ones stay: a project
    statement never supersedes a user-wide rule stated elsewhere."""
    replaced = []
    for r in _conflicting(store, cog, user_id):
        if not _later(r["valid_from"], cog.valid_from) or r["valid_from"] is None:
            supersede(store, int(r["id"]), user_id, when=cog.valid_from)
            replaced.append(int(r["id"]))
    return replaced


def _revive(store: Store, cog_id: int) -> None:
    store.db.execute(
        """UPDATE cognitions SET status = 'active', superseded_by = NULL, valid_until = NULL,
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?""",
        (cog_id,),
    )


def supersede(store: Store, old_id: int, new_id: int | None, when: str | None = None) -> None:
    """Mark `old_id` as replaced by `new_id` (None: by nothing, it stopped being true) from
    `when` on (default: now). Never deletes."""
    store.db.execute(
        """UPDATE cognitions SET status = 'superseded', superseded_by = ?,
            valid_until = coalesce(?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
            updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ? AND status = 'active'""",
        (new_id, when, old_id),
    )


def team_copies(store: Store, project_id: int) -> dict[str, int]:
    """The project's memories pulled from the team store, not forgotten: team uid -> row id."""
    rows = store.db.execute(
        "SELECT id, json_extract(extra, '$.team_uid') FROM cognitions WHERE project_id = ? "
        "AND origin = ? AND status != 'forgotten'",
        (project_id, TEAM),
    )
    return {str(r[1]): int(r[0]) for r in rows if r[1]}


def forget(store: Store, cog_id: int) -> bool:
    """Mark a cognition forgotten: text and keywords blanked (and so gone from search), uid kept
    so that extraction never brings it back. Its sources' quotes are blanked too."""
    cur = store.db.execute(
        """UPDATE cognitions SET status = 'forgotten', text = '', keywords = '[]', subject = NULL,
            extra = '{}', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        WHERE id = ? AND status != 'forgotten'""",
        (cog_id,),
    )
    store.db.execute("UPDATE cognition_sources SET quote = '' WHERE cognition_id = ?", (cog_id,))
    return cur.rowcount > 0


def keywords_of(text: str) -> list[str]:
    """Up to 12 content words of `text`, taken from its redacted form with the markers left out:
    no keyword is a secret or a piece of one."""
    return sorted(consolidate.tokens(unmarked(redact(text))))[:12]


def safe_keywords(text: str, keywords: list[str]) -> list[str]:
    """`keywords` less any that is a secret by itself or overlaps a secret of `text` (the
    unredacted text they were taken from), unless the redacted text shows that word too."""
    spans = find_secrets(text)
    if not spans:
        return [k for k in keywords if redact(k) == k]
    shown = consolidate.tokens(unmarked(redact(text)))
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters grow when lowercased: offsets would shift
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)

    def overlaps(k: str) -> bool:
        at = lowered.find(k)
        while at >= 0:
            if any(s < at + len(k) and at < e for _, s, e in spans):
                return True
            at = lowered.find(k, at + 1)
        return False

    return [k for k in keywords if redact(k) == k and (k in shown or not overlaps(k))]


def remember(
    store: Store, text: str, *, project: str | None = None, category: str = "preference"
) -> int:
    """Add a cognition the user states directly (origin 'user', high salience).

    `project` is a project path; None makes it user-wide."""
    pid = store.project_id(project) if project else None
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    cog = Cognition(
        text=text,
        category=category,
        project_id=pid,
        salience=USER_SALIENCE,
        origin="user",
        keywords=keywords_of(text),
        valid_from=now,
        sources=[SourceRef(timestamp=now, quote=text)],
    )
    return add(store, cog)


def edit(store: Store, cog_id: int, text: str, *, category: str | None = None) -> int:
    """Correct an active cognition: the new text (origin 'user', valid from now) replaces it and
    the old row stays as superseded history. Returns the id of the row holding the correction
    (`cog_id` itself when nothing changed). Call inside `store.transaction()`."""
    old = get(store, cog_id)
    if old is None:
        raise CognitionError(f"there is no cognition #{cog_id}; `lmm memories` lists them")
    if old.status != "active":
        raise CognitionError(
            f"cognition #{cog_id} is {old.status}; only active ones can be edited "
            "(add a new one with `lmm remember`)"
        )
    category = category or old.category
    if consolidate.normalise(text) == consolidate.normalise(old.text) and category == old.category:
        return cog_id
    now = store.db.execute("SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')").fetchone()[0]
    cog = Cognition(
        text=redact(text.strip()),
        category=category,
        project_id=old.project_id,
        learned_in=old.learned_in,
        scope_by=old.scope_by,
        keywords=keywords_of(text),
        salience=max(old.salience, USER_SALIENCE),
        origin="user",
        valid_from=now,
        sources=[SourceRef(timestamp=now, quote=text)],
    )
    _check(cog)
    if cog.category in INSTRUCTIVE and (sv := consolidate.subject_value(cog.text)):
        cog.subject, cog.extra["value"] = sv
    # Not `put`: a small correction is a near-duplicate of the row it corrects and would merge.
    uid = make_uid(cog.project_id, cog.category, cog.text)
    row = store.db.execute("SELECT id, status FROM cognitions WHERE uid = ?", (uid,)).fetchone()
    if row is not None and row["status"] == "forgotten":
        raise CognitionError(f"that text was forgotten (#{row['id']}); word it differently")
    if row is None:
        new_id = _insert(store, cog, uid)
    else:
        new_id = int(row["id"])
        _attach(store, new_id, cog)
        _revive(store, new_id)
    supersede(store, cog_id, new_id, when=now)
    _supersede_conflicts(store, cog, new_id)
    return new_id


def set_scope(store: Store, cog_id: int, scope: str, *, project: str | None = None) -> int:
    """Move a cognition to `scope`: 'user' (every project) or 'project' (`project`, a path;
    default: the project it was learned in). The move is the user's: extraction never moves it
    back. Returns the id of the row that holds it: another row's when that row already said the
    same in the new scope (this one then becomes its superseded history). Call inside
    `store.transaction()`."""
    if scope not in SCOPES:
        raise CognitionError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    cog = get(store, cog_id)
    if cog is None:
        raise CognitionError(f"there is no cognition #{cog_id}; `lmm memories` lists them")
    if cog.status == "forgotten":
        raise CognitionError(f"cognition #{cog_id} is forgotten; it has no text to move")
    if scope == "user":
        target: int | None = None
    elif project is not None:
        target = store.project_id(project.rstrip("/") or "/")
    elif cog.learned_in is not None:
        target = cog.learned_in
    else:
        raise CognitionError(
            f"cognition #{cog_id} was not learned in a project; name one: --project PATH"
        )
    if target == cog.project_id:
        store.db.execute("UPDATE cognitions SET scope_by = 'user' WHERE id = ?", (cog_id,))
        return cog_id
    moved = replace(cog, project_id=target)
    dup = _find_duplicate(store, moved) if cog.status == "active" else None
    if dup is not None and dup[1] == target and dup[0] != cog_id:
        _attach(store, dup[0], moved)  # its sources now back the row that says the same there
        store.db.execute("UPDATE cognitions SET scope_by = 'user' WHERE id = ?", (dup[0],))
        supersede(store, cog_id, dup[0])
        return dup[0]
    _set_project(store, cog_id, target, "user")
    return cog_id


# ---- reading


def _row_to_cognition(store: Store, r: Any) -> Cognition:
    sources = [
        SourceRef(
            session_id=s["session_id"],
            turn_key=s["turn_key"],
            uuid=s["uuid"],
            timestamp=s["timestamp"],
            file_path=s["file_path"],
            line_no=s["line_no"],
            quote=s["quote"] or "",
        )
        for s in store.db.execute(
            "SELECT * FROM cognition_sources WHERE cognition_id = ? "
            "ORDER BY timestamp, session_id, turn_key, file_path",
            (r["id"],),
        )
    ]
    return Cognition(
        id=r["id"],
        uid=r["uid"],
        text=r["text"],
        category=r["category"],
        project_id=r["project_id"],
        project=r["project"],
        subject=r["subject"],
        keywords=orjson.loads(r["keywords"]),
        salience=r["salience"],
        origin=r["origin"],
        status=r["status"],
        valid_from=r["valid_from"],
        valid_until=r["valid_until"],
        evidence=r["evidence"],
        superseded_by=r["superseded_by"],
        sources=sources,
        extra=orjson.loads(r["extra"]),
        learned_in=r["learned_in"],
        learned_in_path=r["learned_in_path"],
        scope_by=r["scope_by"],
    )


_SELECT = (
    "SELECT c.*, p.path AS project, h.path AS learned_in_path FROM cognitions c "
    "LEFT JOIN projects p ON p.id = c.project_id LEFT JOIN projects h ON h.id = c.learned_in"
)


def get(store: Store, cog_id: int) -> Cognition | None:
    row = store.db.execute(f"{_SELECT} WHERE c.id = ?", (cog_id,)).fetchone()
    return None if row is None else _row_to_cognition(store, row)


def list_(
    store: Store,
    *,
    project: str | None = None,
    category: str | None = None,
    status: str | None = "active",
    since: str | None = None,
    include_user_wide: bool = True,
    scope: str | None = None,
    limit: int | None = None,
    origin: str | None = None,
    exclude_origin: str | None = None,
) -> list[Cognition]:
    """Cognitions, most salient first. `project` is a project path: that project's cognitions
    plus (with `include_user_wide`) the user-wide ones. `scope` 'user' or 'project' keeps only
    those. `status=None` lists every status. `since` (ISO date) keeps those valid from that date
    on. `origin` keeps only what that extractor (or 'user', 'code') made; `exclude_origin` leaves
    it out ('code': what `lmm ingest-code` read from the repository)."""
    where: list[str] = []
    params: list[Any] = []
    if origin is not None:
        where.append("c.origin = ?")
        params.append(origin)
    if exclude_origin is not None:
        where.append("c.origin != ?")
        params.append(exclude_origin)
    if scope is not None:
        if scope not in SCOPES:
            raise CognitionError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        where.append("c.project_id IS NULL" if scope == "user" else "c.project_id IS NOT NULL")
    if project is not None:
        clause = "p.path = ?"
        if include_user_wide:
            clause = f"({clause} OR c.project_id IS NULL)"
        where.append(clause)
        params.append(project.rstrip("/") or "/")
    if category is not None:
        if category not in CATEGORIES:
            raise CognitionError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
        where.append("c.category = ?")
        params.append(category)
    if status is not None:
        where.append("c.status = ?")
        params.append(status)
    if since is not None:
        where.append("coalesce(c.valid_from, c.created_at) >= ?")
        params.append(since)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY c.salience DESC, c.valid_from DESC, c.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [_row_to_cognition(store, r) for r in store.db.execute(sql, params).fetchall()]


def search(
    store: Store, query: str, *, project: str | None = None, limit: int = 10
) -> list[Cognition]:
    """Active cognitions matching `query` (FTS5 BM25), within a project plus user-wide ones."""
    match = quote_fts(query)
    if not match:
        return []
    sql = (
        _SELECT + " JOIN cognitions_fts f ON f.rowid = c.id WHERE cognitions_fts MATCH ? "
        "AND c.status = 'active'"
    )
    params: list[Any] = [match]
    if project is not None:
        sql += " AND (p.path = ? OR c.project_id IS NULL)"
        params.append(project.rstrip("/"))
    sql += " ORDER BY bm25(cognitions_fts) LIMIT ?"
    params.append(limit)
    return [_row_to_cognition(store, r) for r in store.db.execute(sql, params).fetchall()]


def dump(store: Store) -> list[tuple[Any, ...]]:
    """Every cognition and source row except timestamps of the write, for idempotence checks."""
    rows: list[tuple[Any, ...]] = [
        tuple(r)
        for r in store.db.execute(
            "SELECT id, uid, project_id, category, subject, text, keywords, salience, evidence, "
            "origin, status, superseded_by, valid_from, valid_until, extra FROM cognitions "
            "ORDER BY id"
        )
    ]
    rows += [tuple(r) for r in store.db.execute("SELECT * FROM cognition_sources ORDER BY 1, 2, 3")]
    return rows
