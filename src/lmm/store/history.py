"""What evaluations and training read of the stored history: sessions and turns in order,
cognitions with their source turns, and the held-out split's removal of sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lmm.store.db import Store

# ---- sessions


def sessions(store: Store) -> list[dict[str, Any]]:
    """Sessions with turns, oldest first, with project path and root session (for the split)."""
    rows = store.db.execute(
        """SELECT s.id, s.project_id, p.path AS project, s.title, s.started_at,
            coalesce(s.parent_session_id, s.id) AS root
        FROM sessions s LEFT JOIN projects p ON p.id = s.project_id
        WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id)
        ORDER BY coalesce(s.started_at, ''), s.id"""
    ).fetchall()
    return [dict(r) for r in rows]


def prompted_sessions(store: Store) -> list[Any]:
    """Rows (id, path) of the top-level sessions of a project that have a user message, by
    project path, then start time."""
    return store.db.execute(
        """SELECT s.id, p.path FROM sessions s JOIN projects p ON p.id = s.project_id
        WHERE s.parent_session_id IS NULL AND EXISTS (SELECT 1 FROM turns t
            WHERE t.session_id = s.id AND t.role = 'user' AND t.kind = 'message')
        ORDER BY p.path, coalesce(s.started_at, ''), s.id"""
    ).fetchall()


def top_level_sessions(store: Store) -> list[str]:
    """Ids of the sessions that are no sub-agent's."""
    return [
        r[0] for r in store.db.execute("SELECT id FROM sessions WHERE parent_session_id IS NULL")
    ]


def started_at(store: Store, session_id: str) -> str | None:
    """When the session started; None when unknown or there is no such session."""
    row = store.db.execute("SELECT started_at FROM sessions WHERE id = ?", (session_id,)).fetchone()
    return row[0] if row else None


def drop_sessions(store: Store, ids: list[str]) -> None:
    """Delete sessions, their sub-agent sessions and their turns (FTS follows by trigger)."""
    with store.transaction():
        for sid in ids:
            kids = [
                r[0]
                for r in store.db.execute(
                    "SELECT id FROM sessions WHERE parent_session_id = ?", (sid,)
                )
            ]
            for s in [sid, *kids]:
                store.db.execute("DELETE FROM turns WHERE session_id = ?", (s,))
                store.db.execute("DELETE FROM agent_links WHERE session_id = ?", (s,))
                store.db.execute("DELETE FROM sessions WHERE id = ?", (s,))


# ---- turns


def project_turns(store: Store, project: str) -> list[Any]:
    """Rows (timestamp, speaker, text) of every turn of the project at `project`, in time
    order."""
    return store.db.execute(
        "SELECT t.timestamp, t.speaker, t.text FROM turns t JOIN projects p ON p.id = t.project_id "
        "WHERE p.path = ? ORDER BY t.timestamp, t.id",
        (project,),
    ).fetchall()


def main_thread_turns(store: Store) -> list[Any]:
    """Rows (session_id, role, kind, text, timestamp or '', project path) of every turn that is
    not a sidechain, by session, then time."""
    return store.db.execute(
        "SELECT t.session_id, t.role, t.kind, t.text, coalesce(t.timestamp, ''), p.path "
        "FROM turns t LEFT JOIN sessions s ON s.id = t.session_id "
        "LEFT JOIN projects p ON p.id = s.project_id "
        "WHERE t.is_sidechain = 0 ORDER BY t.session_id, t.timestamp, t.id"
    ).fetchall()


def message_turns(store: Store) -> list[Any]:
    """Rows (id, session_id, timestamp or '') of the user and assistant messages of 40 to 4000
    characters, by id."""
    return store.db.execute(
        "SELECT id, session_id, coalesce(timestamp, '') FROM turns WHERE kind = 'message' "
        "AND role IN ('user', 'assistant') AND length(text) BETWEEN 40 AND 4000 ORDER BY id"
    ).fetchall()


def turn_rows(store: Store, ids: list[int]) -> list[Any]:
    """Rows (id, session_id, key, role, text, timestamp) of the turns `ids`, in that order;
    ids not stored are left out."""
    if not ids:
        return []
    marks = ", ".join("?" * len(ids))
    rows = store.db.execute(
        f"SELECT id, session_id, key, role, text, timestamp FROM turns WHERE id IN ({marks})", ids
    ).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def turn_id(store: Store, session_id: str, uuid: str) -> int | None:
    """The first turn row of the session that has `uuid` as its uuid, its key or one of its
    merged uuids."""
    row = store.db.execute(
        "SELECT id FROM turns WHERE session_id = ? AND (uuid = ? OR key = ? "
        "OR instr(uuids, json_quote(?)) > 0) ORDER BY id LIMIT 1",
        (session_id, uuid, uuid, uuid),
    ).fetchone()
    return None if row is None else int(row[0])


def texts(store: Store) -> Iterator[str | None]:
    """The text of every turn, then of every cognition."""
    for (text,) in store.db.execute("SELECT text FROM turns UNION ALL SELECT text FROM cognitions"):
        yield text


# ---- cognitions


def cognition_turn_ids(store: Store, cog_id: int) -> list[int]:
    """Turn row ids of the cognition's sources, in source order."""
    rows = store.db.execute(
        "SELECT t.id FROM cognition_sources s JOIN turns t "
        "ON t.session_id = s.session_id AND t.key = s.turn_key "
        "WHERE s.cognition_id = ? ORDER BY s.rowid",
        (cog_id,),
    ).fetchall()
    return [int(r[0]) for r in rows]


def active_cognitions(store: Store, project: str) -> list[Any]:
    """Rows (id, uid, text, category) of the active cognitions of the project at `project` and
    the user-wide ones, by id."""
    return store.db.execute(
        """SELECT c.id, c.uid, c.text, c.category FROM cognitions c
        LEFT JOIN projects p ON p.id = c.project_id
        WHERE c.status = 'active' AND (p.path = ? OR c.project_id IS NULL) ORDER BY c.id""",
        (project,),
    ).fetchall()


def session_sources(store: Store, cog_id: int) -> list[Any]:
    """Rows (session_id, uuid, turn_key) of the cognition's sources in a session, in order."""
    return store.db.execute(
        "SELECT session_id, uuid, turn_key FROM cognition_sources "
        "WHERE cognition_id = ? AND session_id IS NOT NULL ORDER BY rowid",
        (cog_id,),
    ).fetchall()


def source_turns(store: Store) -> list[Any]:
    """Rows (cognition_id, session_id, turn_key) of every source that is a turn, by cognition,
    then time (undated last), then order of insertion."""
    return store.db.execute(
        "SELECT cognition_id, session_id, turn_key FROM cognition_sources "
        "WHERE session_id IS NOT NULL AND turn_key IS NOT NULL "
        "ORDER BY cognition_id, coalesce(timestamp, '~'), rowid"
    ).fetchall()


def cognitions_with_text(store: Store) -> list[Any]:
    """Rows of every cognition that still has text (forgotten ones have none), by id."""
    return store.db.execute(
        "SELECT id, text, category, salience, project_id, valid_from, valid_until, origin "
        "FROM cognitions WHERE status != 'forgotten' AND text != '' ORDER BY id"
    ).fetchall()


def code_cognitions(store: Store) -> list[Any]:
    """Rows (text, project path, first source file) of the active cognitions taken from code,
    by project, file and id."""
    return store.db.execute(
        """SELECT c.text, p.path AS project,
            (SELECT min(file_path) FROM cognition_sources s WHERE s.cognition_id = c.id) AS file
        FROM cognitions c LEFT JOIN projects p ON p.id = c.project_id
        WHERE c.origin = 'code' AND c.status = 'active' AND c.text != ''
        ORDER BY p.path, file, c.id"""
    ).fetchall()
