"""Full-text lookups: FTS5 MATCH queries over turns (`turns_fts`, `turn_keys`) and cognitions
(`cognitions_fts`), ranked by BM25 or only asked whether anything matches, and the SQL clause
that keeps a query within a set of projects. MATCH strings come ready (`db.quote_fts`); what the
matches mean is `lmm.retrieve`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from lmm.store.db import Store


def scope_sql(column: str, projects: list[int] | None, kind: str) -> str:
    """An ` AND ...` clause keeping `column` within `projects` (None: no clause); a cognition
    without a project applies everywhere."""
    if projects is None:
        return ""
    ids = ", ".join(str(p) for p in projects) or "NULL"
    if kind == "cognition":  # a cognition without a project applies everywhere
        return f" AND ({column} IN ({ids}) OR {column} IS NULL)"
    return f" AND {column} IN ({ids})"


def table_rows(store: Store, table: str) -> int:
    """max(rowid) of an FTS table: about how many rows it holds."""
    return int(store.db.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])


def capped_count(store: Store, table: str, match: str, cap: int) -> int:
    """How many rows of `table` match `match`, counted up to `cap`."""
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT ?)"
    return int(store.db.execute(sql, (match, cap)).fetchone()[0])


def any_speaker_match(store: Store, match: str, projects: list[int] | None) -> bool:
    """Whether a turn in scope matches `match` in `turn_keys`. CROSS JOIN pins the FTS table as
    the outer loop: SQLite's planner would otherwise scan the project's turns and run the MATCH
    once per turn (2 ms instead of 0.04 ms a word)."""
    sql = "SELECT 1 FROM turn_keys f CROSS JOIN turns x ON x.id = f.rowid WHERE turn_keys MATCH ?"
    sql += scope_sql("x.project_id", projects, "turn") + " LIMIT 1"
    return bool(store.db.execute(sql, (match,)).fetchone())


def any_match(store: Store, match: str, projects: list[int] | None) -> bool:
    """Whether a turn (`turns_fts`) or an active cognition in scope matches `match`."""
    sql = {
        "turn": "SELECT 1 FROM turns_fts f CROSS JOIN turns x ON x.id = f.rowid "
        "WHERE turns_fts MATCH ?" + scope_sql("x.project_id", projects, "turn"),
        "cognition": "SELECT 1 FROM cognitions_fts f CROSS JOIN cognitions x ON x.id = f.rowid "
        "WHERE cognitions_fts MATCH ? AND x.status = 'active'"
        + scope_sql("x.project_id", projects, "cognition"),
    }
    return any(store.db.execute(q + " LIMIT 1", (match,)).fetchone() for q in sql.values())


def bm25_rows(
    store: Store,
    kind: str,
    match: str,
    projects: list[int] | None,
    limit: int,
    *,
    keys: bool,
    key_weights: Sequence[float],
) -> sqlite3.Cursor:
    """(item id, bm25) of the best `limit` matches of `kind` in scope, best (lowest) first:
    active cognitions over `cognitions_fts`; turns over `turn_keys` with `key_weights` per
    column (`keys`), else over `turns_fts`."""
    scope = scope_sql("x.project_id", projects, kind)
    if kind == "cognition":
        sql = (
            "SELECT f.rowid, bm25(cognitions_fts) FROM cognitions_fts f JOIN cognitions x "
            f"ON x.id = f.rowid WHERE cognitions_fts MATCH ? AND x.status = 'active'{scope}"
        )
    elif keys:
        weights = ", ".join(str(float(w)) for w in key_weights)
        sql = (
            f"SELECT f.rowid, bm25(turn_keys, {weights}) FROM turn_keys f "
            f"JOIN turns x ON x.id = f.rowid WHERE turn_keys MATCH ?{scope}"
        )
    else:
        sql = (
            "SELECT f.rowid, bm25(turns_fts) FROM turns_fts f JOIN turns x ON x.id = f.rowid "
            f"WHERE turns_fts MATCH ?{scope}"
        )
    return store.db.execute(sql + " ORDER BY 2 LIMIT ?", (match, limit))


# ---- act-time candidates: cognitions of the project and the user-wide ones

_COLUMNS = "c.id, c.category, c.text, c.origin"


def _project_scope(project: str | None) -> tuple[str, list[Any]]:
    """A clause for user-wide cognitions and, with `project`, that project's own."""
    scope = "c.project_id IS NULL"
    scope_params: list[Any] = []
    if project is not None:
        scope = "(c.project_id IS NULL OR c.project_id = (SELECT id FROM projects WHERE path = ?))"
        scope_params.append(project.rstrip("/") or "/")
    return scope, scope_params


def matching_cognitions(
    store: Store, match: str, categories: Sequence[str], project: str | None, limit: int
) -> list[sqlite3.Row]:
    """Active cognitions of `categories` in `project` (its own and user-wide) matching `match`,
    best BM25 first (id, category, text, origin)."""
    marks = ", ".join("?" * len(categories))
    scope, scope_params = _project_scope(project)
    return store.db.execute(
        f"SELECT {_COLUMNS} FROM cognitions_fts f JOIN cognitions c ON c.id = f.rowid "
        f"WHERE cognitions_fts MATCH ? AND c.status = 'active' AND c.category IN ({marks}) "
        f"AND {scope} ORDER BY bm25(cognitions_fts) LIMIT {limit}",
        [match, *categories, *scope_params],
    ).fetchall()


def latest_lessons(store: Store, project: str | None, limit: int) -> list[sqlite3.Row]:
    """The `limit` latest active lessons in `project` (its own and user-wide), newest first
    (id, category, text, origin)."""
    scope, scope_params = _project_scope(project)
    return store.db.execute(
        f"SELECT {_COLUMNS} FROM cognitions c WHERE c.category = 'lesson' "
        f"AND c.status = 'active' AND {scope} ORDER BY c.id DESC LIMIT {limit}",
        scope_params,
    ).fetchall()
