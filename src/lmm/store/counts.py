"""Figures about the store that `lmm doctor`, `lmm import` and the learn step report or decide
on: integrity, row counts, the embedding models that have vectors."""

from __future__ import annotations

from dataclasses import dataclass

from lmm.store.db import Store
from lmm.store.extraction import unread_sessions
from lmm.store.vectors import embedder_dims


@dataclass(frozen=True)
class Health:
    """What `lmm doctor` reads of the store."""

    quick_check: str  # "ok", or what PRAGMA quick_check found
    counts: dict[str, int]  # sessions, turns, memories (active cognitions)
    embedders: list[str]  # models with vectors
    turn_vectors: int
    turns_with_text: int
    unread_sessions: int  # sessions with turns no extractor has read


def health(store: Store) -> Health:
    one = lambda sql: store.db.execute(sql).fetchone()[0]  # noqa: E731
    quick = one("PRAGMA quick_check")
    counts = {
        "sessions": one("SELECT count(*) FROM sessions"),
        "turns": one("SELECT count(*) FROM turns"),
        "memories": one("SELECT count(*) FROM cognitions WHERE status = 'active'"),
    }
    models = list(embedder_dims(store))
    vectors = one("SELECT count(*) FROM vectors WHERE item_kind = 'turn'")
    with_text = one("SELECT count(*) FROM turns WHERE length(text) > 0")
    return Health(quick, counts, models, vectors, with_text, unread_sessions(store))
