"""What the browser UI reads and writes: projects and sessions with their counts, one session's
header and the memories that cite its turns, and the lookups behind the memory pages.
"""

from __future__ import annotations

from typing import Any

from lmm.store.db import Store, quote_fts


def projects(store: Store) -> list[Any]:
    """Projects with their session and memory counts, most recently active first."""
    return store.db.execute(
        """SELECT p.id, p.path, p.name,
            (SELECT count(*) FROM sessions s WHERE s.project_id = p.id) AS sessions,
            (SELECT count(*) FROM cognitions c WHERE c.project_id = p.id
             AND c.status = 'active') AS memories,
            (SELECT max(coalesce(s.ended_at, s.started_at)) FROM sessions s
             WHERE s.project_id = p.id) AS last
        FROM projects p ORDER BY coalesce(last, '') DESC, p.path"""
    ).fetchall()


_FIRST_PROMPT = """(SELECT t.text FROM turns t WHERE t.session_id = s.id AND t.role = 'user'
    AND t.kind = 'message' AND t.is_sidechain = 0 AND length(t.text) > 0
    AND t.text NOT LIKE '<command-%' AND t.text NOT LIKE '<local-command-%'
    ORDER BY t.timestamp, t.id LIMIT 1)"""


def _where(project_id: int | None, query: str) -> tuple[str, list[Any]]:
    """The WHERE clause of the sessions list: one project, and a search of title, id and text."""
    where: list[str] = []
    params: list[Any] = []
    if project_id is not None:
        where.append("s.project_id = ?")
        params.append(project_id)
    if terms := quote_fts(query):
        like = (
            "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        )
        where.append(
            "(s.title LIKE ? ESCAPE '\\' OR s.id LIKE ? ESCAPE '\\' OR s.id IN "
            "(SELECT t.session_id FROM turns t WHERE t.id IN "
            "(SELECT rowid FROM turns_fts WHERE turns_fts MATCH ?)))"
        )
        params += [like, like, terms]
    return (" WHERE " + " AND ".join(where)) if where else "", params


def count_sessions(store: Store, project_id: int | None, query: str = "") -> int:
    where, params = _where(project_id, query)
    return int(store.db.execute(f"SELECT count(*) FROM sessions s{where}", params).fetchone()[0])


def sessions(
    store: Store, project_id: int | None, limit: int = 50, offset: int = 0, query: str = ""
) -> list[Any]:
    """Sessions (of one project when given; matching `query` in title, id or any turn's text),
    newest first, with a title or first prompt and their counts of turns and citing memories."""
    where, params = _where(project_id, query)
    sql = f"""SELECT s.id, s.title, s.started_at, s.ended_at, s.parent_session_id, s.source,
            p.name AS project, p.path,
            (SELECT count(*) FROM turns t WHERE t.session_id = s.id) AS turns,
            (SELECT count(DISTINCT c.cognition_id) FROM cognition_sources c
             WHERE c.session_id = s.id) AS cited,
            {_FIRST_PROMPT} AS first
        FROM sessions s LEFT JOIN projects p ON p.id = s.project_id{where}
        ORDER BY coalesce(s.ended_at, s.started_at, '') DESC, s.id LIMIT ? OFFSET ?"""
    return store.db.execute(sql, [*params, limit, offset]).fetchall()


def title_and_first_prompt(store: Store, session_id: str) -> Any:
    """The row (title, first) of a session: its title and its first real prompt; None when
    there is no such session."""
    return store.db.execute(
        f"SELECT s.title, {_FIRST_PROMPT} AS first FROM sessions s WHERE s.id = ?", (session_id,)
    ).fetchone()


def session_info(store: Store, session_id: str) -> Any:
    """A session's row with its project's path, or None."""
    return store.db.execute(
        "SELECT s.*, p.path FROM sessions s LEFT JOIN projects p ON p.id = s.project_id "
        "WHERE s.id = ?",
        (session_id,),
    ).fetchone()


def memory_links(store: Store, session_id: str) -> dict[str, list[int]]:
    """turn key -> ids of the cognitions that cite that turn."""
    out: dict[str, list[int]] = {}
    for r in store.db.execute(
        "SELECT DISTINCT turn_key, cognition_id FROM cognition_sources WHERE session_id = ? "
        "ORDER BY cognition_id",
        (session_id,),
    ):
        out.setdefault(r["turn_key"], []).append(int(r["cognition_id"]))
    return out


def turn_place(store: Store, turn_id: int) -> Any:
    """The row (session_id, key) of a turn, or None."""
    return store.db.execute("SELECT session_id, key FROM turns WHERE id = ?", (turn_id,)).fetchone()


def cited_in(store: Store, session_id: str) -> set[int]:
    """Ids of the cognitions with a source in the session."""
    rows = store.db.execute(
        "SELECT cognition_id FROM cognition_sources WHERE session_id = ?", (session_id,)
    )
    return {r[0] for r in rows}


def origins(store: Store) -> list[str]:
    """Every origin some stored cognition has."""
    return [r[0] for r in store.db.execute("SELECT DISTINCT origin FROM cognitions")]


def older_versions(store: Store, cog_id: int | None) -> list[int]:
    """Ids of the cognitions that `cog_id` superseded (superseded_by = it), in id order."""
    return [
        r[0]
        for r in store.db.execute(
            "SELECT id FROM cognitions WHERE superseded_by = ? ORDER BY id", (cog_id,)
        )
    ]
