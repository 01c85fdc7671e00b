"""How far each extractor has read each session (`extraction_state`), and which sessions an
extraction run reads."""

from __future__ import annotations

from lmm.store.db import Store


def sessions_to_read(store: Store, project: str | None) -> list[str]:
    """The ids of sessions with turns (of the project at path `project`, when given), oldest
    first, so that later statements supersede earlier ones as they arrive."""
    sql = (
        "SELECT s.id FROM sessions s LEFT JOIN projects p ON p.id = s.project_id "
        "WHERE EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id)"
    )
    params: list[str] = []
    if project is not None:
        sql += " AND p.path = ?"
        params.append(project.rstrip("/") or "/")
    sql += " ORDER BY coalesce(s.started_at, ''), s.id"
    return [r[0] for r in store.db.execute(sql, params)]


def last_read(store: Store, session_id: str, extractor: str) -> int | None:
    """The row id of the last turn `extractor` read of the session (None: it never read it)."""
    state = store.db.execute(
        "SELECT last_turn_id FROM extraction_state WHERE session_id = ? AND extractor = ?",
        (session_id, extractor),
    ).fetchone()
    return None if state is None else int(state[0])


def mark_read(store: Store, session_id: str, extractor: str, last_turn_id: int) -> None:
    """Record that `extractor` has read the session up to turn row `last_turn_id`."""
    store.db.execute(
        """INSERT INTO extraction_state
            (session_id, extractor, last_turn_id, updated_at)
        VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ON CONFLICT (session_id, extractor) DO UPDATE SET
            last_turn_id = excluded.last_turn_id, updated_at = excluded.updated_at""",
        (session_id, extractor, last_turn_id),
    )


def unread_sessions(store: Store) -> int:
    """How many sessions have turns that no extractor has read."""
    return int(store.db.execute(
        "SELECT count(*) FROM sessions s WHERE EXISTS (SELECT 1 FROM turns t WHERE "
        "t.session_id = s.id AND t.id > coalesce((SELECT max(last_turn_id) FROM extraction_state "
        "e WHERE e.session_id = s.id), 0))"
    ).fetchone()[0])  # fmt: skip
