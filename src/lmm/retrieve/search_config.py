"""The knobs of retrieval (`SearchConfig`), in a module of their own: `search` runs the steps they
switch and weigh, `rank` the fusion and context steps, and neither needs the other to read them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchConfig:
    """Knobs of `retrieve`. Defaults are the measured best on LoCoMo dev; 0 switches a step off."""

    kinds: tuple[str, ...] = ("turn", "cognition")
    keyword: bool = True  # BM25
    dense: bool = True  # exact cosine (needs an embedder)
    candidates: int = 200  # per list, before fusion
    postings: int = 50_000  # BM25 keeps the rarest query terms matching at most this many rows,
    postings_share: float = 0.1  # or this share of the table's rows if fewer (never < 5,000)
    keyword_weight: float = 0.5  # fusion weights of the z-scored lists
    dense_weight: float = 0.5
    fusion: str = "z"  # "z" (weighted z-scores) or "rrf"
    rank_weight: float = 80.0  # "z" also adds rank_weight x weight / (rank_k + rank) per list
    rank_k: float = 5.0
    keys: bool = True  # BM25 over turn_keys; False: over the turn text alone (turns_fts)
    key_weights: tuple[float, float, float, float] = (1.0, 1.0, 0.3, 1.0)  # speaker, text, ctx, day
    participants: bool = True  # names of speakers: speaker column only; "someone" when dense
    own_name: bool = True  # within one project, its own name is no BM25 term (`own_name`)
    window: int = 3  # neighbours each side whose fused score a turn inherits
    window_share: float = 0.3  # x decay ** (distance - 1)
    window_decay: float = 0.7
    session: float = 0.2  # share of its session's best fused score a turn inherits
    reply_share: float = 0.3  # share of an asking turn's fused score its reply gains,
    ask_keep: float = 0.7  # and the share the asking turn keeps (both: rank.in_context)
    parts: bool = True  # a turn's dense score is its best sentence's where higher (best_sentences)
    recency: float = 0.1  # bonus x 0.5 ** (age / half_life), age from the newest candidate
    half_life_days: float = 30.0
    salience: float = 0.2  # cognitions: bonus x (salience - 0.5)
    rrf_k: float = 60.0
