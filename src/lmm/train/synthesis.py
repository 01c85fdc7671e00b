"""Synthesis rows: a task plus retrieved evidence -> the memory brief that cites it."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from lmm.retrieve.search import Hit, Source, content_terms
from lmm.retrieve.synth import (
    Evidence,
    SynthConfig,
    approx_tokens,
    excerpt,
    prompt_messages,
    select_evidence,
    sources_block,
)
from lmm.store import history
from lmm.store.db import Store
from lmm.train.base import DataConfig, Memory, Pair, keyword_query, known

T = TypeVar("T")
NONE = "NONE"  # what lmm.retrieve.synth.SYSTEM asks for when no evidence helps
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(*-])|\n+")


def cite(text: str, numbers: list[int]) -> str:
    """`text` with the citation before the end of every sentence: 'Use uv [2][5].'"""
    marks = "".join(f"[{n}]" for n in numbers)
    out = []
    for sentence in _SENTENCE.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        end = sentence[-1] if sentence[-1] in ".!?" else "."
        out.append(f"{sentence.rstrip('.!?').rstrip()} {marks}{end}")
    return " ".join(out)


def render_brief(items: list[tuple[Memory, list[int]]]) -> str:
    """The brief written from gold memories and the evidence numbers that support each."""
    return "\n".join(cite(m.text, nums) for m, nums in items) or NONE


def words_budget(evidence: list[Evidence], cfg: SynthConfig) -> int:
    """The word limit `lmm.retrieve.synth.generate_brief` puts in its prompt for this evidence."""
    reserve = approx_tokens(sources_block(evidence, {e.n for e in evidence}))
    return int(max(40, cfg.max_tokens - reserve) * 0.6)


def _memory_hit(m: Memory) -> Hit:
    source = Source(session_id=m.first_session, timestamp=m.known_from)
    return Hit("cognition", m.id, m.text, 0.0, source, category=m.category)


def _turn_hit(row: Any) -> Hit:
    source = Source(session_id=row["session_id"], timestamp=row["timestamp"])
    return Hit("turn", int(row["id"]), row["text"], 0.0, source, speaker=row["role"])


@dataclass
class Pools:
    """Where synthesis distractors come from: message turns (ids by session) per split."""

    turns: dict[str, list[tuple[int, str, str]]]  # split -> (turn id, session id, timestamp)
    split_of: dict[str, str]


def pools(store: Store, split_of: dict[str, str]) -> Pools:
    rows = history.message_turns(store)
    every = [(int(r[0]), r[1], r[2]) for r in rows if r[1] in split_of]
    train = [t for t in every if split_of[t[1]] == "train"]
    return Pools({"train": train, "val": every}, split_of)


def messages(
    store: Store,
    pair: Pair,
    memories: dict[int, Memory],
    allowed: Callable[[Memory], bool],
    pools: Pools,
    cfg: DataConfig,
    rng: random.Random,
) -> list[dict[str, str]]:
    """A synthesis row: context + retrieved items (gold memories, earlier turns found by keyword
    search, distractors from other sessions and projects) -> the brief citing the gold items."""
    from lmm.retrieve.search import keyword_scores

    ctx = pair.context
    gold = [memories[i] for i in pair.kept]
    projects = [ctx.project_id] if ctx.project_id is not None else None
    scores = keyword_scores(store, keyword_query(ctx.query), "turn", projects, 20)
    found = history.turn_rows(store, sorted(scores, key=lambda i: (-scores[i], i)))
    turns = [
        r
        for r in found
        if (pair.split == "val" or pools.split_of.get(r["session_id"]) == "train")
        and r["key"] not in ctx.turn_keys
        and (ctx.time is None or (r["timestamp"] or "") < ctx.time)
    ][:2]
    ranked = {i for i, _ in pair.ranked}  # capped-out relevant memories are no distractors
    mems = list(memories.values())
    others = _draw(
        mems,
        cfg.distractors // 2,
        rng,
        lambda m: m.id not in ranked and allowed(m) and known(m, ctx.time),
    )
    mine = pools.turns[pair.split]
    before = ctx.time or "~"  # no time: anything goes ("~" sorts after every ISO date)
    picks = _draw(
        mine, cfg.distractors - len(others), rng, lambda t: t[1] != ctx.session_id and t[2] < before
    )
    have = {r["id"] for r in turns}
    turns += [r for r in history.turn_rows(store, [t[0] for t in picks]) if r["id"] not in have]
    hits = [_memory_hit(m) for m in gold + others] + [_turn_hit(r) for r in turns]
    rng.shuffle(hits)
    synth = SynthConfig()
    evidence = shown_evidence(ctx.query, hits, synth)
    number = {(ev.hit.kind, ev.hit.id): ev.n for ev in evidence}
    shown = {ev.n: ev.text for ev in evidence}
    brief = []
    for m in gold:
        if ("cognition", m.id) not in number:
            continue  # recall would not show it: the brief cannot use it
        n = number[("cognition", m.id)]
        m = replace(m, text=shown[n].replace("…", " ").strip())  # what the model can read
        cites = [n]
        cites += [
            number[("turn", r["id"])]
            for r in turns
            if (r["session_id"], r["key"]) in m.turns and ("turn", r["id"]) in number
        ]
        brief.append((m, sorted(cites)))
    msgs = prompt_messages(ctx.query, evidence, words_budget(evidence, synth))
    return [*msgs, {"role": "assistant", "content": render_brief(brief)}]


def shown_evidence(query: str, hits: list[Hit], cfg: SynthConfig) -> list[Evidence]:
    """The evidence as `lmm recall` would show it to the model: `select_evidence` over the hits
    in their (shuffled) order, as if the retriever had ranked them so (the focused lines of each
    hit, dated, within the token budget). When nothing clears its bar (recall would not ask the
    model at all), every hit as a plain excerpt, so that a row still teaches NONE."""
    ranked = [replace(h, score=1.0 / (1 + i)) for i, h in enumerate(hits)]
    chosen = select_evidence(query, ranked, cfg)
    if chosen:
        return chosen
    terms = content_terms(query)
    return [
        Evidence(n, h, excerpt(h.text, terms, cfg.hit_chars), 0.0)
        for n, h in enumerate(ranked, start=1)
    ]


def _draw(seq: list[T], n: int, rng: random.Random, ok: Callable[[T], bool]) -> list[T]:
    """Up to `n` distinct random elements of `seq` that pass `ok` (a bounded number of tries,
    so a huge store costs no more than a small one)."""
    out: list[T] = []
    for _ in range(8 * n if seq else 0):
        if len(out) >= n:
            break
        x = seq[rng.randrange(len(seq))]
        if ok(x) and all(x is not y for y in out):
            out.append(x)
    return out
