"""Hybrid retrieval over stored turns and cognitions: FTS5 BM25 + dense vectors + fusion.

Contract (used by recall, hooks, MCP, eval):
    retrieve(store, query, *, project=None, k=10, embedder=None) -> list[Hit]
A `Hit` names what it found (`kind` turn|cognition, `id`), its text, a fused `score` and a
`source` (session id, date, file) to cite. With `embedder=None` retrieval is keyword-only.

Pipeline: the query's content words (stopwords dropped) are OR-ed for BM25; the query vector is
scored exactly against every stored vector in scope; each turn also takes credit from its
neighbours' scores (an answer follows its question); ranks are fused by `rrf`; small recency and
salience boosts follow. Each stage's effect on LoCoMo recall is in bench/locomo_recall.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmm.store import _like_prefix, quote_fts

if TYPE_CHECKING:
    import numpy as np

    from lmm.embed import Embedder
    from lmm.store import Store

log = logging.getLogger(__name__)


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
    speaker: str | None = None  # who said it (turns), where the source names people


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of `retrieve`; the defaults are the measured best (docs in bench/locomo_recall.py)."""

    kinds: tuple[str, ...] = ("turn", "cognition")
    keyword: bool = True  # FTS5 BM25 over content words
    dense: bool = True  # exact cosine against stored vectors (needs an embedder)
    candidates: int = 200  # per retriever and kind, before fusion
    rrf_k: float = 60.0
    keyword_weight: float = 1.0
    dense_weight: float = 1.0
    neighbours: float = 0.0  # share of an adjacent turn's score a turn inherits (0: off)
    recency: float = 0.0  # fused score x (1 + recency * 0.5 ** (age / half_life))
    half_life_days: float = 30.0
    salience: float = 0.2  # cognitions: fused score x (1 + salience * (salience - 0.5))


# ---- query terms

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t don ll ve re d m o y""".split()
)


def content_terms(query: str) -> list[str]:
    """Lowercased word tokens of `query` minus stopwords, first occurrence order, no repeats."""
    seen: dict[str, None] = {}
    for word in re.findall(r"\w+", query.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)


def or_match(query: str) -> str:
    """An FTS5 MATCH string: every content term quoted, OR-ed (AND would drop most evidence)."""
    return " OR ".join(quote_fts(term) for term in content_terms(query))


# ---- fusion


def rrf(rankings: Sequence[Sequence[Any]], weights: Sequence[float] | None = None,
        k: float = 60.0) -> dict[Any, float]:  # fmt: skip
    """Reciprocal-rank fusion: score(item) = sum over rankings of weight / (k + rank), rank
    1-based. An item missing from a ranking gets nothing from it. (Cormack et al., SIGIR 2009)"""
    weights = weights or [1.0] * len(rankings)
    fused: dict[Any, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return fused


# ---- scope


def scope_projects(store: Store, project: str | None) -> list[int] | None:
    """Ids of the project at `project` and of every project below it (None: no scope)."""
    if not project:
        return None
    root = project.rstrip("/") or "/"
    rows = store.db.execute(
        "SELECT id FROM projects WHERE path = ? OR path LIKE ? ESCAPE '\\'",
        (root, _like_prefix(root.rstrip("/")) + "/%"),
    ).fetchall()
    return [int(r[0]) for r in rows]


def _scope_sql(column: str, projects: list[int] | None, kind: str) -> str:
    if projects is None:
        return ""
    ids = ", ".join(str(p) for p in projects) or "NULL"
    if kind == "cognition":  # a cognition without a project applies everywhere
        return f" AND ({column} IN ({ids}) OR {column} IS NULL)"
    return f" AND {column} IN ({ids})"


# ---- retrievers


_KEYWORD_SQL = {
    "turn": "SELECT f.rowid, bm25(turns_fts) AS s FROM turns_fts f JOIN turns x ON x.id = f.rowid "
    "WHERE turns_fts MATCH ?{scope} ORDER BY s LIMIT ?",
    "cognition": "SELECT f.rowid, bm25(cognitions_fts) AS s FROM cognitions_fts f "
    "JOIN cognitions x ON x.id = f.rowid WHERE cognitions_fts MATCH ? "
    "AND x.status = 'active'{scope} ORDER BY s LIMIT ?",
}


def keyword_scores(
    store: Store, query: str, kind: str, projects: list[int] | None, limit: int
) -> dict[int, float]:
    """Item id -> BM25 score (higher is better) of the best `limit` matches in scope."""
    match = or_match(query)
    if not match:
        return {}
    sql = _KEYWORD_SQL[kind].format(scope=_scope_sql("x.project_id", projects, kind))
    return {int(r[0]): -float(r[1]) for r in store.db.execute(sql, (match, limit))}


def dense_scores(
    store: Store, qvec: np.ndarray, embedder: Embedder, kind: str,
    projects: list[int] | None, limit: int,
) -> dict[int, float]:  # fmt: skip
    """Item id -> cosine of the best `limit` stored vectors in scope (exact search)."""
    import numpy as np

    from lmm.embed import vector_index

    index = vector_index(store, embedder.name, kind)
    if not len(index.ids):
        return {}
    if projects is None:
        spans = [(0, len(index.ids))]
    else:
        wanted = [*projects, -1] if kind == "cognition" else projects
        spans = sorted(index.spans[p] for p in wanted if p in index.spans)
    if not spans:
        return {}
    if spans == [(0, len(index.ids))]:
        ids, scores = index.ids, index.matrix @ qvec
    else:
        ids = np.concatenate([index.ids[s:e] for s, e in spans])
        scores = np.concatenate([index.matrix[s:e] @ qvec for s, e in spans])
    if len(scores) > limit:
        top = np.argpartition(-scores, limit)[:limit]
        ids, scores = ids[top], scores[top]
    return {int(i): float(s) for i, s in zip(ids, scores, strict=True)}


def spread_to_neighbours(store: Store, scores: dict[int, float], share: float) -> dict[int, float]:
    """Each turn also gets `share` x the best score of the turns just before and after it in its
    session: an answer turn ("yes, adoption agencies") often matches only through its question."""
    if share <= 0 or not scores:
        return scores
    ids = list(scores)
    marks = ", ".join("?" * len(ids))
    rows = store.db.execute(
        f"""SELECT t.id,
            (SELECT max(p.id) FROM turns p WHERE p.session_id = t.session_id AND p.id < t.id),
            (SELECT min(n.id) FROM turns n WHERE n.session_id = t.session_id AND n.id > t.id)
        FROM turns t WHERE t.id IN ({marks})""",
        ids,
    ).fetchall()
    out = dict(scores)
    for tid, prev, nxt in rows:
        for neighbour in (prev, nxt):
            if neighbour is not None:
                gain = share * scores[tid]
                out[neighbour] = max(out.get(neighbour, 0.0), scores.get(neighbour, 0.0) + gain)
    return out


def _ranking(scores: dict[int, float]) -> list[int]:
    return sorted(scores, key=lambda i: (-scores[i], i))


# ---- retrieve


def retrieve(store: Store, query: str, *, project: str | None = None, k: int = 10,
             embedder: Embedder | None = None, config: SearchConfig | None = None,
             qvec: np.ndarray | None = None) -> list[Hit]:  # fmt: skip
    """The `k` best turns and active cognitions for `query`, within `project` (a full path:
    that folder and every folder below it) when given. `qvec` skips embedding the query."""
    cfg = config or SearchConfig()
    projects = scope_projects(store, project)
    if projects == []:
        return []
    use_dense = cfg.dense and embedder is not None
    if use_dense and qvec is None:
        from lmm.embed import check_model

        assert embedder is not None
        check_model(store, embedder)
        qvec = embedder.embed([query])[0]
    rankings: list[list[tuple[str, int]]] = []
    weights: list[float] = []
    signals: dict[tuple[str, int], dict[str, Any]] = {}
    for kind in cfg.kinds:
        lists: list[tuple[str, dict[int, float], float]] = []
        if cfg.keyword:
            found = keyword_scores(store, query, kind, projects, cfg.candidates)
            lists.append(("bm25", found, cfg.keyword_weight))
        if use_dense:
            assert embedder is not None and qvec is not None
            found = dense_scores(store, qvec, embedder, kind, projects, cfg.candidates)
            lists.append(("dense", found, cfg.dense_weight))
        for name, scores, weight in lists:
            if kind == "turn":
                scores = spread_to_neighbours(store, scores, cfg.neighbours)
            ranking = _ranking(scores)
            rankings.append([(kind, i) for i in ranking])
            weights.append(weight)
            for rank, i in enumerate(ranking, start=1):
                signals.setdefault((kind, i), {})[name] = {"rank": rank, "score": scores[i]}
    fused = rrf(rankings, weights, k=cfg.rrf_k)
    hits = _hydrate(store, fused, signals)
    _boost(hits, cfg)
    hits.sort(key=lambda h: (-h.score, h.kind, h.id))
    return hits[:k] if cfg.recency or cfg.salience else hits[:k]


def _hydrate(
    store: Store, fused: dict[tuple[str, int], float], signals: dict[Any, dict[str, Any]]
) -> list[Hit]:
    hits: list[Hit] = []
    turn_ids = [i for kind, i in fused if kind == "turn"]
    cog_ids = [i for kind, i in fused if kind == "cognition"]
    for r in _rows(store, _TURN_ROWS, turn_ids):
        key = ("turn", r["id"])
        hits.append(
            Hit(
                kind="turn",
                id=r["id"],
                text=r["text"],
                score=fused[key],
                source=Source(
                    session_id=r["session_id"],
                    timestamp=r["timestamp"],
                    project=r["project"],
                    file_path=r["file_path"],
                    uuid=r["uuid"],
                    dia_id=r["dia_id"],
                ),
                signals=signals.get(key, {}),
                speaker=r["speaker"] or r["role"],
            )
        )
    for r in _rows(store, _COGNITION_ROWS, cog_ids):
        key = ("cognition", r["id"])
        hits.append(
            Hit(
                kind="cognition",
                id=r["id"],
                text=r["text"],
                score=fused[key],
                source=Source(
                    session_id=r["session_id"],
                    timestamp=r["valid_from"] or r["timestamp"],
                    project=r["project"],
                    file_path=r["file_path"],
                    uuid=r["uuid"],
                ),
                category=r["category"],
                signals={**signals.get(key, {}), "salience": r["salience"]},
            )
        )
    return hits


_TURN_ROWS = """SELECT t.id, t.text, t.session_id, t.timestamp, t.uuid, t.dia_id, t.speaker,
    t.role, p.path AS project, s.path AS file_path
FROM turns t LEFT JOIN projects p ON p.id = t.project_id LEFT JOIN sources s ON s.id = t.source_id
WHERE t.id IN ({marks})"""
_COGNITION_ROWS = """SELECT c.id, c.text, c.category, c.salience, c.valid_from,
    p.path AS project, src.session_id, src.timestamp, src.uuid, src.file_path
FROM cognitions c LEFT JOIN projects p ON p.id = c.project_id
LEFT JOIN cognition_sources src ON src.rowid = (
    SELECT min(rowid) FROM cognition_sources WHERE cognition_id = c.id)
WHERE c.status = 'active' AND c.id IN ({marks})"""


def _rows(store: Store, sql: str, ids: list[int]) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(ids), 500):  # SQLite's variable limit
        chunk = ids[i : i + 500]
        out += store.db.execute(sql.format(marks=", ".join("?" * len(chunk))), chunk).fetchall()
    return out


def _boost(hits: list[Hit], cfg: SearchConfig) -> None:
    """Small multiplicative nudges after fusion: recent turns, salient cognitions."""
    if cfg.recency:
        from datetime import datetime

        stamps = [h.source.timestamp for h in hits if h.source.timestamp]
        newest = max(stamps) if stamps else None
        for h in hits:
            if newest and h.source.timestamp:
                age = _days_between(h.source.timestamp, newest, datetime)
                h.score *= 1.0 + cfg.recency * 0.5 ** (age / cfg.half_life_days)
    if cfg.salience:
        for h in hits:
            if h.kind == "cognition":
                h.score *= 1.0 + cfg.salience * (float(h.signals["salience"]) - 0.5)


def _days_between(a: str, b: str, datetime: Any) -> float:
    try:
        da = datetime.fromisoformat(a.replace("Z", "+00:00"))
        db = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return abs((db - da).total_seconds()) / 86400.0
