"""The vector tables: which embedding models a store holds vectors of (`embedders`), the turns,
turn parts and cognitions still without a vector for a model, and the vectors themselves
(written in batches, read per model and item kind for the in-process matrix, and a turn's
sentence vectors read by primary key). Vectors are float32 blobs; what they mean is
`lmm.retrieve.embed`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from lmm.store.db import Store


def embedder_dims(store: Store) -> dict[str, int]:
    """Model -> dim of every model the store holds vectors of."""
    return {r[0]: int(r[1]) for r in store.db.execute("SELECT model, dim FROM embedders")}


def add_embedder(store: Store, model: str, dim: int) -> None:
    store.db.execute("INSERT INTO embedders (model, dim) VALUES (?, ?)", (model, dim))


_PENDING_TURNS = """
SELECT t.id, t.session_id, t.role, t.speaker, t.text, t.timestamp FROM turns t
WHERE t.kind IN ('message', 'compact_summary', 'summary') AND length(t.text) > 0
  AND NOT EXISTS (SELECT 1 FROM vectors v
                  WHERE v.item_kind = 'turn' AND v.item_id = t.id AND v.model = ?)
ORDER BY t.id
"""
_PENDING_PARTS = """
SELECT t.id, t.role, t.speaker, t.text FROM turns t
WHERE t.kind IN ('message', 'compact_summary', 'summary') AND length(t.text) > 0
  AND NOT EXISTS (SELECT 1 FROM vectors v
                  WHERE v.item_kind = 'turn_parts' AND v.item_id = t.id AND v.model = ?)
ORDER BY t.id
"""
_PENDING_COGNITIONS = """
SELECT c.id, c.text, c.keywords FROM cognitions c WHERE c.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM vectors v
                  WHERE v.item_kind = 'cognition' AND v.item_id = c.id AND v.model = ?)
ORDER BY c.id
"""


def count_pending(store: Store, model: str) -> int:
    """How many items `embed_pending` would embed for `model` (a turn's parts count as one)."""
    n = 0
    for sql in (_PENDING_TURNS, _PENDING_COGNITIONS, _PENDING_PARTS):
        n += int(store.db.execute(f"SELECT count(*) FROM ({sql})", (model,)).fetchone()[0])
    return n


def pending_turns(store: Store, model: str) -> sqlite3.Cursor:
    """Turns with text and no vector for `model` (id, session_id, role, speaker, text,
    timestamp), by id."""
    return store.db.execute(_PENDING_TURNS, (model,))


def pending_parts(store: Store, model: str) -> list[sqlite3.Row]:
    """Turns with text and no 'turn_parts' row for `model` (id, role, speaker, text), by id."""
    return store.db.execute(_PENDING_PARTS, (model,)).fetchall()


def pending_cognitions(store: Store, model: str) -> sqlite3.Cursor:
    """Active cognitions with no vector for `model` (id, text, keywords), by id."""
    return store.db.execute(_PENDING_COGNITIONS, (model,))


def write_vectors(store: Store, rows: list[tuple[str, int, str, int, bytes]]) -> None:
    """(item kind, item id, model, dim, vec) rows, in one transaction."""
    with store.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO vectors (item_kind, item_id, model, dim, vec) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )


def write_parts(store: Store, rows: list[tuple[int, str, int, bytes]]) -> None:
    """(turn id, model, dim, vec) rows of kind 'turn_parts', in one transaction."""
    with store.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO vectors (item_kind, item_id, model, dim, vec) "
            "VALUES ('turn_parts', ?, ?, ?, ?)",
            rows,
        )


def version(store: Store) -> int:
    """max(rowid) of `vectors`: any insert changes it."""
    return int(store.db.execute("SELECT coalesce(max(rowid), 0) FROM vectors").fetchone()[0])


_ITEM_TABLE = {"turn": "turns", "cognition": "cognitions"}


def vector_rows(store: Store, model: str, kind: str) -> list[sqlite3.Row]:
    """(item id, project id or -1, vec) of every `kind` vector of `model`, by project then id."""
    return store.db.execute(
        f"SELECT v.item_id, coalesce(x.project_id, -1), v.vec FROM vectors v "
        f"JOIN {_ITEM_TABLE[kind]} x ON x.id = v.item_id "
        "WHERE v.item_kind = ? AND v.model = ? ORDER BY coalesce(x.project_id, -1), v.item_id",
        (kind, model),
    ).fetchall()


def part_rows(store: Store, model: str, ids: Sequence[int]) -> list[Any]:
    """(turn id, dim, vec) of the non-empty 'turn_parts' rows of `model` for the turns in `ids`,
    read by primary key 500 ids at a time (SQLite's variable limit)."""
    out: list[Any] = []
    for i in range(0, len(ids), 500):  # SQLite's variable limit
        chunk = list(ids[i : i + 500])
        out += store.db.execute(
            "SELECT item_id, dim, vec FROM vectors WHERE item_kind = 'turn_parts' AND model = ? "
            f"AND item_id IN ({', '.join('?' * len(chunk))}) AND length(vec) > 0",
            [model, *chunk],
        ).fetchall()
    return out
