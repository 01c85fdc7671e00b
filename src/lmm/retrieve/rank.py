"""Ranking after retrieval: fusing the retrievers' lists, then the conversation around each turn."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lmm.store import reads

if TYPE_CHECKING:
    import numpy as np

    from lmm.retrieve.search_config import SearchConfig
    from lmm.store.db import Store

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


def fuse(
    lists: Sequence[dict[Any, float]],
    weights: Sequence[float],
    extra: Sequence[dict[Any, float]] | None = None,
    items: Sequence[Any] = (),
    rank_weight: float = 0.0,
    rank_k: float = 5.0,
) -> dict[Any, float]:
    """Weighted sum of z-scores, plus `rank_weight` x the list's weight / (rank_k + rank) for
    an item at (1-based) `rank` of a list. Each list is standardised over its own items plus
    one phantom item scoring 0 (what an unrelated text scores in BM25 and, roughly, in cosine),
    so a lone match still stands above the rest; an item missing from a list gets that list's
    lowest z. Scale-free like RRF but keeps how far ahead an item is (LoCoMo R@5 68.2 against
    58.7 for RRF with k=60); the rank term lifts an item that tops one list by a small margin
    (dense cosines bunch up), which z alone undervalues. `extra[j]` scores more items for list
    j (neighbours outside its top-N) with list j's mean and sd, without counting them in those
    or in its ranks; `items` are fused too, at the floor of every list that does not score them."""
    parts = []
    for j, scores in enumerate(lists):
        mean, sd = _stats([*scores.values(), 0.0])
        more = extra[j] if extra else {}
        z = {i: (s - mean) / sd for i, s in (more | scores).items()}
        floor = min([(s - mean) / sd for s in scores.values()] + [-mean / sd])
        parts.append((z, floor))
    every = {i for z, _ in parts for i in z} | set(items)
    out = {
        i: sum(w * z.get(i, floor) for (z, floor), w in zip(parts, weights, strict=True))
        for i in every
    }
    if rank_weight:
        for scores, w in zip(lists, weights, strict=True):
            ranked = sorted(scores, key=lambda i: (-scores[i], i))
            for rank, i in enumerate(ranked, start=1):
                out[i] += rank_weight * w / (rank_k + rank)
    return out


def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return mean, sd or 1.0


# ---- turn layout: which turns sit next to which, and which of them ask


_NOTE = re.compile(r"\s*\[[^\[\]]*\]\s*$")  # a trailing bracketed note: "[shares an image: ...]"
TAIL = 200  # characters of a turn's end read to tell whether it asks


def asks(text: str) -> bool:
    """Whether a turn ends by asking: its last sentence (before any trailing bracketed note, such
    as an attachment's caption) ends with '?'."""
    return _NOTE.sub("", text).rstrip().endswith("?")


@dataclass
class Layout:
    """Ids of turns with text, ascending; their sessions as small ints; whether each asks."""

    ids: np.ndarray
    sessions: np.ndarray
    asking: np.ndarray
    codes: dict[str, int] = field(default_factory=dict)


_LAYOUTS: dict[str, Layout] = {}


def turn_layout(store: Store) -> Layout:
    """The cached layout of `store`, extended with turns added since it was loaded."""
    import numpy as np

    layout = _LAYOUTS.get(str(store.path))
    if layout is None:
        empty = np.zeros(0, np.int64)
        layout = Layout(empty, empty, np.zeros(0, bool))
        _LAYOUTS[str(store.path)] = layout
    last = int(layout.ids[-1]) if len(layout.ids) else 0
    newest = reads.last_turn_id(store)
    if newest > last:
        ids: list[int] = []
        sessions: list[int] = []
        asking: list[bool] = []
        codes = layout.codes
        for r in reads.turn_tails(store, last, TAIL):
            ids.append(r[0])
            sessions.append(codes.setdefault(r[1], len(codes)))
            asking.append(asks(r[2]))
        layout.ids = np.concatenate([layout.ids, np.array(ids, np.int64)])
        layout.sessions = np.concatenate([layout.sessions, np.array(sessions, np.int64)])
        layout.asking = np.concatenate([layout.asking, np.array(asking, bool)])
    return layout


def _positions(layout: Layout, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids as an array, their positions in the layout, whether each is in it)."""
    import numpy as np

    cand = np.asarray(ids, np.int64)
    pos = np.minimum(np.searchsorted(layout.ids, cand), max(len(layout.ids) - 1, 0))
    known = layout.ids[pos] == cand if len(layout.ids) else np.zeros(len(cand), bool)
    return cand, pos, known


def neighbours(store: Store, ids: Sequence[int], width: int) -> dict[int, list[tuple[int, int]]]:
    """Turn id -> [(neighbour id, distance)] for up to `width` turns on each side, same session."""
    layout = turn_layout(store)
    out: dict[int, list[tuple[int, int]]] = {i: [] for i in ids}
    if not len(layout.ids) or not ids or width <= 0:
        return out
    cand, pos, known = _positions(layout, ids)
    for d in range(1, width + 1):
        for other in (pos - d, pos + d):
            ok = known & (other >= 0) & (other < len(layout.ids))
            ok[ok] &= layout.sessions[other[ok]] == layout.sessions[pos[ok]]
            for i, o in zip(cand[ok].tolist(), layout.ids[other[ok]].tolist(), strict=True):
                out[i].append((o, d))
    return out


def replies(store: Store, ids: Sequence[int]) -> dict[int, int | None]:
    """For each of `ids` that asks: the id of the turn after it in its session (None: none)."""
    import numpy as np

    layout = turn_layout(store)
    if not len(layout.ids) or not ids:
        return {}
    cand, pos, known = _positions(layout, ids)
    ok = known.copy()
    ok[ok] &= layout.asking[pos[ok]]
    nxt = np.minimum(pos + 1, len(layout.ids) - 1)
    same = (pos + 1 < len(layout.ids)) & (layout.sessions[nxt] == layout.sessions[pos])
    after = zip(cand[ok].tolist(), layout.ids[nxt[ok]].tolist(), same[ok].tolist(), strict=True)
    return {i: (n if s else None) for i, n, s in after}


# ---- the conversation around a turn


def in_context(
    store: Store,
    scores: dict[int, float],
    near: dict[int, list[tuple[int, int]]],
    answers: dict[int, int | None],
    cfg: SearchConfig,
) -> dict[int, float]:
    """Fused turn scores plus what the conversation says, in this order:
    1. the reply to an asking turn (`answers`: asking id -> reply id or None) gains
       reply_share x the asking turn's positive score;
    2. from each neighbour side at distance d (`near`, from the best turns), a turn gains
       window_share x window_decay ** (d - 1) x the better positive score there;
    3. a turn gains `session` x its session's best score;
    4. an asking turn keeps ask_keep of a positive score."""
    out = dict(scores)
    for q, reply in answers.items():
        if reply is not None and out.get(q, 0.0) > 0 and reply in out:
            out[reply] += cfg.reply_share * scores[q]
    base = dict(out)
    push: dict[tuple[int, int], float] = {}  # (receiver, distance) -> best positive score
    for i, ns in near.items():
        if base.get(i, 0.0) > 0:
            for n, d in ns:
                push[n, d] = max(push.get((n, d), 0.0), base[i])
    for (n, d), s in push.items():
        if n in out:
            out[n] += cfg.window_share * cfg.window_decay ** (d - 1) * s
    if cfg.session and out:
        layout = turn_layout(store)
        cand, pos, _ = _positions(layout, list(out))
        if len(layout.ids):
            sessions = layout.sessions[pos].tolist()
            best: dict[int, float] = {}
            for i, sess in zip(cand.tolist(), sessions, strict=True):
                best[sess] = max(best.get(sess, 0.0), out[i])
            for i, sess in zip(cand.tolist(), sessions, strict=True):
                out[i] += cfg.session * best[sess]
    for q in answers:
        if out.get(q, 0.0) > 0:
            out[q] *= cfg.ask_keep
    return out
