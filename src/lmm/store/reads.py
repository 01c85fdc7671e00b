"""Row reads that retrieval and recall build on: turns by id and in order, the messages and
ends of a project's sessions, the projects under a path, cognitions by id, by category or
sharing a subject, and the tool calls a lesson was learned from. Each returns rows or plain
values; what they mean is `lmm.retrieve`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lmm.store.db import like_prefix
from lmm.store.fulltext import scope_sql

if TYPE_CHECKING:
    import sqlite3

    from lmm.store.db import Store


# ---- projects


def projects_under(store: Store, root: str) -> list[int]:
    """Ids of the project at `root` (no trailing slash but "/") and of every project below it."""
    rows = store.db.execute(
        "SELECT id FROM projects WHERE path = ? OR path LIKE ? ESCAPE '\\'",
        (root, like_prefix(root.rstrip("/")) + "/%"),
    ).fetchall()
    return [int(r[0]) for r in rows]


def project_paths(store: Store) -> list[str]:
    return [r[0] for r in store.db.execute("SELECT path FROM projects").fetchall()]


# ---- turns


def last_turn_id(store: Store) -> int:
    """The largest turn row id in the store (0: none)."""
    return int(store.db.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0])


def turn_tails(store: Store, after: int, chars: int) -> sqlite3.Cursor:
    """(id, session id, the last `chars` characters of the text) of the turns with text after
    id `after`, by id."""
    return store.db.execute(
        "SELECT id, session_id, substr(text, -?) FROM turns WHERE id > ? AND length(text) > 0 "
        "ORDER BY id",
        (chars, after),
    )


def session_messages(store: Store, session_id: str) -> list[dict[str, Any]]:
    """The messages with text of a session (id, role, speaker, text), by id."""
    return [
        dict(r)
        for r in store.db.execute(
            "SELECT id, role, speaker, text FROM turns WHERE session_id = ? "
            "AND kind = 'message' AND length(text) > 0 ORDER BY id",
            (session_id,),
        )
    ]


def turn_cognition_texts(store: Store, turn_id: int) -> list[str]:
    """Texts of the active cognitions extracted from a turn."""
    return [
        r[0]
        for r in store.db.execute(
            "SELECT c.text FROM cognition_sources s JOIN cognitions c ON c.id = s.cognition_id "
            "JOIN turns t ON t.session_id = s.session_id AND t.key = s.turn_key "
            "WHERE t.id = ? AND c.status = 'active'",
            (turn_id,),
        )
    ]


_TURN_ROWS = """SELECT t.id, t.text, t.session_id, t.timestamp, t.uuid, t.dia_id, t.speaker,
    t.role, p.path AS project, s.path AS file_path
FROM turns t LEFT JOIN projects p ON p.id = t.project_id LEFT JOIN sources s ON s.id = t.source_id
WHERE t.id IN ({marks})"""
_COGNITION_ROWS = """SELECT c.id, c.text, c.category, c.salience, c.valid_from,
    p.path AS project, src.session_id, src.timestamp, src.uuid, src.file_path,
    CASE WHEN c.origin = 'team' THEN json_extract(c.extra, '$.shared_by') END AS shared_by
FROM cognitions c LEFT JOIN projects p ON p.id = c.project_id
LEFT JOIN cognition_sources src ON src.rowid = (
    SELECT min(rowid) FROM cognition_sources WHERE cognition_id = c.id)
WHERE c.status = 'active' AND c.id IN ({marks})"""


def turn_rows(store: Store, ids: Sequence[int]) -> list[Any]:
    """The turns in `ids` with their project and source file paths, as search cites them."""
    return _rows(store, _TURN_ROWS, ids)


def cognition_rows(store: Store, ids: Sequence[int]) -> list[Any]:
    """The active cognitions in `ids` with their project path and first source."""
    return _rows(store, _COGNITION_ROWS, ids)


def _rows(store: Store, sql: str, ids: Sequence[int]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(ids), 500):  # SQLite's variable limit
        chunk = list(ids[i : i + 500])
        out += store.db.execute(sql.format(marks=", ".join("?" * len(chunk))), chunk).fetchall()
    return out


# ---- sessions


def latest_session_rows(
    store: Store, project: str, limit: int, exclude: str | None
) -> list[sqlite3.Row]:
    """(id, at) of the `limit` latest top-level sessions of `project` and its subfolders, other
    than `exclude`, newest first; `at` is when the session ended, else began, else ''."""
    return store.db.execute(
        """SELECT s.id, coalesce(s.ended_at, s.started_at, '') AS at
        FROM sessions s JOIN projects p ON p.id = s.project_id
        WHERE (p.path = ? OR p.path LIKE ? ESCAPE '\\') AND s.parent_session_id IS NULL
            AND s.id IS NOT ?
        ORDER BY at DESC, s.id LIMIT ?""",
        (project, like_prefix(project) + "/%", exclude, limit),
    ).fetchall()


def session_branch_messages(store: Store, session_id: str) -> list[sqlite3.Row]:
    """The messages with text of a session (role, kind, text, git_branch), by id."""
    return store.db.execute(
        """SELECT role, kind, text, git_branch FROM turns WHERE session_id = ?
            AND kind = 'message' AND length(text) > 0 ORDER BY id""",
        (session_id,),
    ).fetchall()


def recent_session_rows(store: Store, project: str, limit: int) -> list[sqlite3.Row]:
    """(id, title, ended_at, first: its first user prompt that is no command wrapper) of the
    `limit` latest top-level sessions of `project` and its subfolders."""
    return store.db.execute(
        """SELECT s.id, s.title, s.ended_at,
            (SELECT t.text FROM turns t WHERE t.session_id = s.id AND t.role = 'user'
             AND t.kind = 'message' AND length(t.text) > 0 AND ltrim(t.text) NOT LIKE '<%'
             ORDER BY t.id LIMIT 1) AS first
        FROM sessions s JOIN projects p ON p.id = s.project_id
        WHERE (p.path = ? OR p.path LIKE ? ESCAPE '\\') AND s.parent_session_id IS NULL
        ORDER BY coalesce(s.ended_at, '') DESC, s.id LIMIT ?""",
        (project, like_prefix(project) + "/%", limit),
    ).fetchall()


# ---- cognitions


def rule_rows(store: Store, projects: list[int] | None, categories: Sequence[str]) -> list[Any]:
    """Active cognitions of `categories` in `projects` (None: all) and the user-wide ones: id,
    text, salience, evidence, valid_from (what `activities.rules_for` and `retrieve.changes`
    read)."""
    marks = ", ".join("?" * len(categories))
    sql = (
        "SELECT x.id, x.text, x.salience, x.evidence, x.valid_from FROM cognitions x "
        f"WHERE x.status = 'active' AND x.category IN ({marks})"
        + scope_sql("x.project_id", projects, "cognition")
    )
    return store.db.execute(sql, list(categories)).fetchall()


def user_wide_rivals(store: Store, projects: list[int]) -> list[sqlite3.Row]:
    """Pairs of an active user-wide cognition and an active cognition of `projects` about the
    same subject: u.id, u_category, u_extra, c_category, c_extra."""
    marks = ", ".join("?" * len(projects))
    return store.db.execute(
        f"""SELECT u.id, u.category AS u_category, u.extra AS u_extra,
            c.category AS c_category, c.extra AS c_extra
        FROM cognitions u JOIN cognitions c ON c.subject = u.subject AND c.status = 'active'
            AND c.project_id IN ({marks})
        WHERE u.project_id IS NULL AND u.status = 'active' AND u.subject IS NOT NULL""",
        projects,
    ).fetchall()


def lesson_tool_rows(store: Store, ids: list[int], window: int) -> list[sqlite3.Row]:
    """For the cognitions `ids`: each source turn that is a tool result (`results`: its tools
    JSON) with each assistant turn of its session up to `window` turns before it (`calls`)."""
    marks = ", ".join("?" * len(ids))
    return store.db.execute(
        "SELECT s.cognition_id, r.tools AS results, a.tools AS calls FROM cognition_sources s "
        "JOIN turns r ON r.session_id = s.session_id AND r.key = s.turn_key "
        "AND r.kind = 'tool_result' "
        "JOIN turns a ON a.session_id = r.session_id AND a.role = 'assistant' "
        f"AND a.id < r.id AND a.id >= r.id - {window} "
        f"WHERE s.cognition_id IN ({marks})",
        ids,
    ).fetchall()
