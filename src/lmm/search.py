"""Hybrid retrieval over stored turns and cognitions: FTS5 BM25 + dense vectors + fusion.

Contract (used by recall, hooks, MCP, eval):
    retrieve(store, query, *, project=None, k=10, embedder=None) -> list[Hit]
A `Hit` names what it found (`kind` turn|cognition, `id`), its text, a fused `score` and a
`source` (session id, date, file) to cite. With `embedder=None` retrieval is keyword-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Source:
    """Where a hit came from, for citing it in a brief."""

    session_id: str | None = None
    timestamp: str | None = None  # ISO 8601
    project: str | None = None
    file_path: str | None = None  # the transcript file, or a code file for codebase knowledge
    uuid: str | None = None
    dia_id: str | None = None


@dataclass
class Hit:
    kind: str  # turn | cognition
    id: int
    text: str
    score: float
    source: Source
    category: str | None = None  # for cognitions
    signals: dict[str, Any] = field(default_factory=dict)  # per-retriever ranks/scores, for eval


def retrieve(store: Any, query: str, *, project: str | None = None, k: int = 10,
             embedder: Any = None) -> list[Hit]:  # fmt: skip
    raise NotImplementedError
