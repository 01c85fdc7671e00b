"""Hybrid retrieval over stored turns and cognitions: FTS5 BM25 + dense vectors + fusion."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lmm.retrieve.rank import fuse, in_context, neighbours, replies, rrf
from lmm.retrieve.search_config import SearchConfig
from lmm.store import fulltext, reads
from lmm.store.db import quote_fts

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    import numpy as np

    from lmm.retrieve.embed import Embedder, VectorIndex
    from lmm.store.db import Store

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
    shared_by: str | None = None  # the team member who shared it (a memory from the team store)


@dataclass
class Hit:
    kind: str  # turn | cognition
    id: int
    text: str
    score: float
    source: Source
    category: str | None = None  # for cognitions
    signals: dict[str, Any] = field(default_factory=dict)  # per-retriever ranks/scores, for eval
    speaker: str | None = None  # who said it (turns): a name where the source has one, else role


# ---- the query

_STOPWORDS = """a about above after again against all am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves s t don ll ve re d m o y"""
STOPWORDS = frozenset(_STOPWORDS.split())
ROLES = frozenset({"user", "assistant", "system", "summary"})
MIN_POSTINGS = 5_000  # the share-based BM25 budget never goes below this


def content_terms(query: str) -> list[str]:
    """Lowercased word tokens of `query` minus stopwords, first occurrence order, no repeats."""
    seen: dict[str, None] = {}
    for word in re.findall(r"\w+", query.lower()):
        if word not in STOPWORDS and word not in seen:
            seen[word] = None
    return list(seen)


def or_match(query: str, names: Sequence[str] = ()) -> str:
    """An FTS5 MATCH string: every content term quoted and OR-ed (AND drops most evidence);
    terms in `names` match only the `speaker` column."""
    return _match(content_terms(query), names)


def _match(terms: Sequence[str], names: Sequence[str]) -> str:
    return " OR ".join(f"speaker : {quote_fts(t)}" if t in names else quote_fts(t) for t in terms)


_DF: dict[tuple[str, str, int], tuple[int, dict[str, int]]] = {}  # -> (rows, term -> capped df)


def rare_terms(
    store: Store,
    table: str,
    terms: list[str],
    postings: int,
    keep: Sequence[str] = (),
    share: float = 1.0,
) -> list[str]:
    """The rarest of `terms` whose document frequencies add up to at most `postings`, or to
    `share` of the table's rows if that is less but at least 5,000 (the rarest term always
    stays, and so do `keep`). FTS5 scores every row matching any term, so a
    common term costs the most and, by its low IDF, moves ranks the least: at 1M turns this
    budget is what keeps BM25 in tens of milliseconds. Tables below it are never pruned."""
    rows = fulltext.table_rows(store, table)
    if share < 1.0:
        postings = min(postings, max(MIN_POSTINGS, int(share * rows)))
    if len(terms) < 2 or rows <= postings:
        return terms
    # document frequencies, counted only up to the budget and remembered while the table grows
    # by less than a tenth (fts5vocab reads a common term's whole doclist: 57 ms at 1M rows)
    counted, df = _DF.get((str(store.path), table, postings), (rows, {}))
    if rows > counted * 1.1:
        counted, df = rows, {}
    _DF[str(store.path), table, postings] = (counted, df)
    for term in terms:
        if term not in df:
            df[term] = fulltext.capped_count(store, table, quote_fts(term), postings + 1)
    kept, total = set(keep), 0
    for rank, term in enumerate(sorted(terms, key=lambda t: df[t])):
        if rank == 0 or total + df[term] <= postings:
            kept.add(term)
            total += df[term]
    return [t for t in terms if t in kept]


def participants(store: Store, query: str, projects: list[int] | None = None) -> list[str]:
    """Capitalised query words that name a speaker of a turn in scope (lowercased)."""
    capitalised = {w.lower() for w in re.findall(r"\b[A-Z]\w+", query)} - ROLES - STOPWORDS
    return [
        name
        for name in sorted(capitalised)
        if fulltext.any_speaker_match(store, f"speaker : {quote_fts(name)}", projects)
    ]


def dense_query(query: str, names: Sequence[str]) -> str:
    """The text embedded for `query`: participant names (and their 's) become "someone"."""
    for name in names:
        query = re.sub(rf"\b{re.escape(name)}(?:'s)?\b", "someone", query, flags=re.I)
    return query


# ---- scope


def scope_projects(store: Store, project: str | None) -> list[int] | None:
    """Ids of the project at `project` and of every project below it (None: no scope).
    '/a/app' covers '/a/app' and '/a/app/web', never '/a/app2'."""
    if not project:
        return None
    return reads.projects_under(store, project.rstrip("/") or "/")


def unseen(store: Store, terms: Sequence[str], projects: list[int] | None) -> list[str]:
    """The `terms` that no turn or active cognition in scope holds, in any inflection (the
    porter tokenizer: "gzipped" is seen where "gzip" is); user-wide cognitions count."""
    out = []
    for term in terms:
        if not fulltext.any_match(store, quote_fts(term), projects):
            out.append(term)
    return out


def cognition_hits(store: Store, ids: Sequence[int]) -> list[Hit]:
    """Cognitions as hits (source and category filled in as retrieval fills them), in `ids`'
    order; a score of 0."""
    hits = {h.id: h for h in _hydrate(store, {("cognition", i): 0.0 for i in ids}, {})}
    return [hits[i] for i in ids if i in hits]


# ---- retrievers


def keyword_scores(
    store: Store,
    query: str,
    kind: str,
    projects: list[int] | None,
    limit: int,
    *,
    names: Sequence[str] = (),
    config: SearchConfig | None = None,
    drop: Sequence[str] = (),
) -> dict[int, float]:
    """Item id -> BM25 score (higher is better) of the best `limit` matches in scope; terms in
    `drop` are left out unless nothing else is left."""
    cfg = config or SearchConfig(keys=False)
    names = names if kind == "turn" and cfg.keys else ()
    table = {"cognition": "cognitions_fts", "turn": "turn_keys" if cfg.keys else "turns_fts"}[kind]
    terms = content_terms(query)
    terms = [t for t in terms if t not in drop] or terms
    terms = rare_terms(store, table, terms, cfg.postings, names, cfg.postings_share)
    match = _match(terms, names)
    if not match:
        return {}
    rows = fulltext.bm25_rows(
        store, kind, match, projects, limit, keys=cfg.keys, key_weights=cfg.key_weights
    )
    return {int(r[0]): -float(r[1]) for r in rows}


def _spans(index: VectorIndex, kind: str, projects: list[int] | None) -> list[tuple[int, int]]:
    """The index's row ranges in scope (a cognition without a project applies everywhere)."""
    if not len(index.ids):
        return []
    if projects is None:
        return [(0, len(index.ids))]
    wanted = [*projects, -1] if kind == "cognition" else projects
    return sorted(index.spans[p] for p in wanted if p in index.spans)


def dense_top(
    index: VectorIndex, spans: list[tuple[int, int]], qvec: np.ndarray, limit: int
) -> dict[int, float]:
    """The best `limit` cosines of `qvec` over the index rows in `spans` (no store access, so
    it may run on another thread)."""
    import numpy as np

    if not spans:
        return {}
    if len(spans) == 1:
        start, end = spans[0]
        ids, scores = index.ids[start:end], index.cosines(start, end, qvec)
    else:
        ids = np.concatenate([index.ids[s:e] for s, e in spans])
        scores = np.concatenate([index.cosines(s, e, qvec) for s, e in spans])
    if len(scores) > limit:
        top = np.argpartition(-scores, limit)[:limit]
        ids, scores = ids[top], scores[top]
    return {int(i): float(s) for i, s in zip(ids.tolist(), scores.tolist(), strict=True)}


def dense_lookup(store: Store, qvec: np.ndarray, embedder: Embedder, kind: str,
                 ids: Sequence[int]) -> dict[int, float]:  # fmt: skip
    """Item id -> cosine for the items in `ids` that have a vector."""
    from lmm.retrieve.embed import vector_index

    sims = vector_index(store, embedder.name, kind).scores_of(ids, qvec)
    return {i: s for i, s in zip(ids, sims, strict=True) if s is not None}


def best_sentences(
    store: Store, qvec: np.ndarray, embedder: Embedder, scores: dict[int, float]
) -> dict[int, float]:
    """Turn cosines raised to the turn's best sentence (embed.turn_parts) where that is higher:
    one relevant sentence of a long turn is not averaged away. Read for candidates only."""
    from lmm.retrieve.embed import best_parts

    best = best_parts(store, embedder.name, list(scores), qvec)
    return {i: max(s, best.get(i, s)) for i, s in scores.items()}


# ---- retrieve


def retrieve(store: Store, query: str, *, project: str | None = None, k: int = 10,
             embedder: Embedder | None = None,
             config: SearchConfig | None = None) -> list[Hit]:  # fmt: skip
    """The `k` best turns and active cognitions for `query`, within `project` (a full path:
    that folder and every folder below it) when given."""
    cfg = config or SearchConfig()
    projects = scope_projects(store, project)
    if projects == [] or not query.strip():
        return []
    return _retrieve(store, query, projects, k, embedder, cfg, own_name(project))


def own_name(project: str | None) -> str | None:
    """The scope's own folder name ("logslice"): within one project every memory is about it,
    so the word names no topic (`keyword_scores` leaves it out, as `participants` do)."""
    name = (project or "").rstrip("/").rsplit("/", 1)[-1].lower()
    return name if re.fullmatch(r"\w+", name) else None


def retrieve_user_wide(store: Store, query: str, *, k: int = 10,
                       embedder: Embedder | None = None,
                       config: SearchConfig | None = None) -> list[Hit]:  # fmt: skip
    """The `k` best user-wide cognitions (no project: they hold in every one) for `query`,
    scored as `retrieve` scores cognitions: what a folder lmm has no memory of can still recall."""
    cfg = config or SearchConfig()
    if not query.strip():
        return []
    # an empty project list scopes cognitions to the user-wide ones (`fulltext.scope_sql`,
    # `_spans`)
    return _retrieve(store, query, [], k, embedder, replace(cfg, kinds=("cognition",)))


def _retrieve(store: Store, query: str, projects: list[int] | None, k: int,
              embedder: Embedder | None, cfg: SearchConfig,
              own: str | None = None) -> list[Hit]:  # fmt: skip
    own = own if cfg.own_name else None
    q = read_query(store, query, projects, embedder, cfg, own)
    fused: dict[tuple[str, int], float] = {}
    signals: dict[tuple[str, int], dict[str, Any]] = {}
    for kind in cfg.kinds:
        scores = _kind_scores(store, kind, q, projects, embedder, cfg, signals)
        fused |= {(kind, i): s for i, s in scores.items()}
    top = sorted(fused, key=lambda key: (-fused[key], key))[: k + 50]
    hits = _hydrate(store, {key: fused[key] for key in top}, signals)
    _boost(hits, cfg)
    hits.sort(key=lambda h: (-h.score, h.kind, h.id))
    return hits[:k]


PUSHERS = 100  # the best fused turns whose neighbours inherit from them


@dataclass
class Query:
    """What retrieval makes of a query before scoring."""

    text: str
    names: list[str]  # participant names in it (`participants`)
    vec: np.ndarray | None = None  # the dense query's vector
    drop: list[str] = field(default_factory=list)  # terms BM25 leaves out (`own_name`)


def read_query(store: Store, query: str, projects: list[int] | None,
               embedder: Embedder | None, cfg: SearchConfig,
               own: str | None = None) -> Query:  # fmt: skip
    """Participant names and the dense vector of `query`; `own` (the scope's own name,
    `own_name`) is no BM25 term and reads "the project" in the dense query."""
    q = Query(query, participants(store, query, projects) if cfg.participants else [])
    q.drop = [own] if own else []
    if cfg.dense and embedder is not None:
        from lmm.retrieve.embed import check_model

        check_model(store, embedder)
        text = dense_query(query, q.names)
        if own:
            text = re.sub(rf"\b{re.escape(own)}(?:'s)?\b", "the project", text, flags=re.I)
        q.vec = embedder.embed([text])[0]
    return q


# From this many vectors in scope, the cosine pass runs on a worker thread while BM25 runs in
# SQLite: both release the GIL. Interleaved A/B over the same queries, unscoped, this 2-core
# machine: 1M vectors p50/p95 131/161 -> 81/106 ms (both cores loaded: 198/283 -> 149/220);
# 100k: 38.5/64.9 -> 32.7/55.5 ms; same hits.
PARALLEL_ROWS = 50_000
_WORKER: list[ThreadPoolExecutor] = []


def _worker() -> ThreadPoolExecutor:
    """One thread for cosine passes (concurrent requests take turns: two cores are busy then)."""
    if not _WORKER:
        from concurrent.futures import ThreadPoolExecutor

        _WORKER.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmm-dense"))
    return _WORKER[0]


def _kind_scores(
    store: Store,
    kind: str,
    q: Query,
    projects: list[int] | None,
    embedder: Embedder | None,
    cfg: SearchConfig,
    signals: dict[tuple[str, int], dict[str, Any]],
) -> dict[int, float]:
    """Fused scores of one kind's candidates (and, for turns, of their neighbours)."""
    lists: list[tuple[str, dict[int, float]]] = []
    weights: list[float] = []
    qvec = q.vec
    dense: Future[dict[int, float]] | dict[int, float] | None = None
    if embedder is not None and qvec is not None:
        from lmm.retrieve.embed import vector_index

        index = vector_index(store, embedder.name, kind)
        spans = _spans(index, kind, projects)
        if cfg.keyword and sum(e - s for s, e in spans) >= PARALLEL_ROWS:
            dense = _worker().submit(dense_top, index, spans, qvec, cfg.candidates)
        else:
            dense = dense_top(index, spans, qvec, cfg.candidates)
    if cfg.keyword:
        found = keyword_scores(store, q.text, kind, projects, cfg.candidates, names=q.names,
                               config=cfg, drop=q.drop)  # fmt: skip
        lists.append(("bm25", found))
        weights.append(cfg.keyword_weight)
    if dense is not None and embedder is not None and qvec is not None:
        found = dense if isinstance(dense, dict) else dense.result()
        if kind == "turn" and cfg.parts:
            found = best_sentences(store, qvec, embedder, found)
        lists.append(("dense", found))  # last: the exact-cosine lookup below extends it
        weights.append(cfg.dense_weight)
    ranks: list[list[int]] = []
    for name, found in lists:
        ranks.append(sorted(found, key=lambda i: (-found[i], i)))
        for rank, i in enumerate(ranks[-1], start=1):
            signals.setdefault((kind, i), {})[name] = {"rank": rank, "score": found[i]}
    if cfg.fusion == "rrf":
        scores = rrf(ranks, weights, k=cfg.rrf_k)
    else:
        scores = fuse(
            [s for _, s in lists], weights, rank_weight=cfg.rank_weight, rank_k=cfg.rank_k
        )
    if kind != "turn":
        return scores
    near: dict[int, list[tuple[int, int]]] = {}
    best = sorted((i for i in scores if scores[i] > 0), key=lambda i: -scores[i])
    if cfg.window > 0 and cfg.window_share:
        near = neighbours(store, best[:PUSHERS], cfg.window)
    answers = replies(store, best) if cfg.reply_share or cfg.ask_keep != 1.0 else {}
    reached = {n for ns in near.values() for n, _ in ns} | {r for r in answers.values() if r}
    receivers = sorted(reached - scores.keys())
    if cfg.fusion == "rrf":
        scores |= {i: 0.0 for i in receivers}
    elif receivers or (embedder is not None and len(lists) > 1):
        # every candidate and receiver gets its exact cosine, not only the dense top-N
        extras: list[dict[int, float]] = [{} for _ in lists]
        if embedder is not None and qvec is not None:
            dense = lists[-1][1]
            missing = [i for i in [*scores, *receivers] if i not in dense]
            extras[-1] = dense_lookup(store, qvec, embedder, kind, missing)
            if cfg.parts:
                extras[-1] = best_sentences(store, qvec, embedder, extras[-1])
        scores = fuse(
            [s for _, s in lists], weights, extras, receivers, cfg.rank_weight, cfg.rank_k
        )
    return in_context(store, scores, near, answers, cfg)


def _hydrate(
    store: Store, fused: dict[tuple[str, int], float], signals: dict[Any, dict[str, Any]]
) -> list[Hit]:
    hits: list[Hit] = []
    turn_ids = [i for kind, i in fused if kind == "turn"]
    cog_ids = [i for kind, i in fused if kind == "cognition"]
    for r in reads.turn_rows(store, turn_ids):
        key = ("turn", r["id"])
        source = Source(
            r["session_id"], r["timestamp"], r["project"], r["file_path"], r["uuid"], r["dia_id"]
        )
        speaker = r["speaker"] or r["role"]
        hits.append(
            Hit("turn", r["id"], r["text"], fused[key], source, None, signals.get(key, {}), speaker)
        )
    for r in reads.cognition_rows(store, cog_ids):
        key = ("cognition", r["id"])
        source = Source(
            r["session_id"], r["valid_from"] or r["timestamp"], r["project"], r["file_path"],
            r["uuid"], shared_by=r["shared_by"],
        )  # fmt: skip
        signal = {**signals.get(key, {}), "salience": r["salience"]}
        hits.append(Hit("cognition", r["id"], r["text"], fused[key], source, r["category"], signal))
    return hits


def _boost(hits: list[Hit], cfg: SearchConfig) -> None:
    """Small additive nudges after fusion, in z units (scaled to RRF's when fusing by rank):
    recent items, salient cognitions."""
    unit = 1.0 if cfg.fusion == "z" else 1.0 / (cfg.rrf_k + 1.0)
    if cfg.recency:
        stamps = [h.source.timestamp for h in hits if h.source.timestamp]
        newest = max(stamps) if stamps else None
        for h in hits:
            if newest and h.source.timestamp:
                age = _days_between(h.source.timestamp, newest)
                h.score += unit * cfg.recency * 0.5 ** (age / cfg.half_life_days)
    if cfg.salience:
        for h in hits:
            if h.kind == "cognition":
                h.score += unit * cfg.salience * (float(h.signals["salience"]) - 0.5)


def _days_between(a: str, b: str) -> float:
    from datetime import datetime

    try:
        da = datetime.fromisoformat(a.replace("Z", "+00:00"))
        db = datetime.fromisoformat(b.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return abs((db - da).total_seconds()) / 86400.0
