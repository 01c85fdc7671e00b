"""Training rows from the store: CPT documents, context→memory pairs and synthesis pairs."""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lmm.paths import open_private
from lmm.records import Turn
from lmm.store import history
from lmm.store.db import Store
from lmm.text import consolidate
from lmm.text.redact import redact
from lmm.train.base import Context, DataConfig, Memory, Pair, keyword_query, known

log = logging.getLogger(__name__)

MEMORY_SYSTEM = (
    "You are the long-term memory of a software developer's coding agent. Given what the agent "
    "is working on, recall the stored memories that matter for it, one per line, most important "
    "first. Answer 'No relevant memory.' when none applies."
)
NO_MEMORY = "No relevant memory."
ROLE_NAMES = {"user": "User", "assistant": "Assistant", "summary": "Summary", "system": "System"}


@dataclass
class TrainingData:
    """Rows per file stem (cpt_train, sft_val, ...) and the statistics that describe them."""

    rows: dict[str, list[dict[str, Any]]]
    stats: dict[str, Any]


# ---- rendering


def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_turn(turn: Turn, cfg: DataConfig) -> str | None:
    """One turn as a readable line, or None for bookkeeping turns (meta, system notes)."""
    if turn.kind in ("meta", "system") or not turn.text.strip():
        return None
    if turn.kind == "tool_result":
        body = turn.text.removeprefix("[result]").strip()
        line = "Tool result: " + clip(body, cfg.tool_result_chars)
    elif turn.kind == "compact_summary":
        line = "Summary of the conversation so far: " + turn.text.strip()
    else:
        line = f"{ROLE_NAMES.get(turn.role, turn.role.title())}: {turn.text.strip()}"
    return ("(sub-agent) " + line) if turn.agent_id else line


def render_session(title: str, header: str, turns: list[Turn], cfg: DataConfig) -> str:
    """A session as a readable document: title, project line, then one paragraph per turn."""
    body = "\n\n".join(r for t in turns if (r := render_turn(t, cfg)))
    return f"# {title}\n{header}\n\n{body}"


def _header(project: str | None, time: str | None, branch: str | None) -> str:
    parts = [f"Project: {project}" if project else "No project"]
    if time:
        parts.append(f"date {time[:10]}")
    if branch:
        parts.append(f"branch {branch}")
    return ", ".join(parts)


# ---- reading the store


def load_memories(store: Store) -> dict[int, Memory]:
    """Every cognition that still has text (forgotten ones are gone), with its source turns."""
    turns: dict[int, set[tuple[str, str]]] = {}
    first: dict[int, str] = {}
    for r in history.source_turns(store):
        turns.setdefault(int(r[0]), set()).add((r[1], r[2]))
        first.setdefault(int(r[0]), r[1])
    out = {}
    for r in history.cognitions_with_text(store):
        src = frozenset(turns.get(int(r["id"]), ()))
        out[int(r["id"])] = Memory(
            id=int(r["id"]),
            text=r["text"],
            category=r["category"],
            salience=float(r["salience"]),
            project_id=r["project_id"],
            known_from=r["valid_from"] if src else None,
            valid_until=r["valid_until"],
            turns=src,
            first_session=first.get(int(r["id"])),
        )
    return out


def split_sessions(roots: Iterable[str], val_fraction: float, seed: int) -> set[str]:
    """The root session ids held out for validation: the first `round(n * val_fraction)` (at
    least one when there are two or more) in an order fixed by hashing the id with the seed."""
    ids = sorted(set(roots), key=lambda s: hashlib.blake2b(f"{seed}:{s}".encode()).hexdigest())
    n = round(len(ids) * val_fraction)
    if val_fraction > 0 and len(ids) >= 2:
        n = max(1, min(n, len(ids) - 1))
    return set(ids[:n])


# ---- contexts


def contexts(sess: dict[str, Any], turns: list[Turn], cfg: DataConfig) -> list[Context]:
    """The opening, every user prompt and every chunk of `chunk_turns` turns of a session."""
    branch = next((t.git_branch for t in turns if t.git_branch), None)

    def context(kind: str, text: str, time: str | None, keys: Iterable[str], query: str) -> Context:
        header = _header(sess["project"], time, branch if kind == "opening" else None)
        text, query = clip(text, cfg.max_context_chars), clip(query, cfg.max_context_chars)
        pid = sess["project_id"]
        return Context(kind, sess["id"], pid, header, text, time, frozenset(keys), query)

    prompts = [
        t
        for t in turns
        if t.role == "user" and t.kind == "message" and not t.agent_id
        and len(t.text.strip()) >= cfg.min_prompt_chars
    ]  # fmt: skip
    out = [
        context(
            "prompt" if i else "opening",
            ("" if i else "A new session starts. ") + "The user asks: " + t.text.strip(),
            t.timestamp,
            [t.key],
            t.text.strip(),
        )
        for i, t in enumerate(prompts)
    ]
    shown = [(t, r) for t in turns if (r := render_turn(t, cfg))]
    start, size = 0, 0
    for i, (_, r) in enumerate([*shown, (None, "")]):
        n = i - start
        if n and (i == len(shown) or n >= cfg.chunk_turns or size + len(r) > cfg.max_context_chars):
            chunk = shown[start:i]
            times = [t.timestamp for t, _ in chunk if t.timestamp]
            text = "\n\n".join(x for _, x in chunk)
            keys = [t.key for t, _ in chunk]
            out.append(context("chunk", text, times[-1] if times else None, keys, text))
            start, size = i, 0
        size += len(r) + 2
    return out


# ---- relevance


def by_turn(memories: dict[int, Memory]) -> dict[tuple[str, str], list[int]]:
    """(session id, turn key) -> ids of the memories sourced in that turn."""
    out: dict[tuple[str, str], list[int]] = {}
    for m in memories.values():
        for t in m.turns:
            out.setdefault(t, []).append(m.id)
    return out


def rank_memories(
    store: Store, ctx: Context, memories: dict[int, Memory],
    sourced: dict[tuple[str, str], list[int]], allowed: Callable[[Memory], bool], cfg: DataConfig,
) -> list[tuple[int, int]]:  # fmt: skip
    """(memory id, priority) of the memories relevant to `ctx`: those sourced in its turns
    (priority 0), then up to `retrieve_k` earlier ones found by keyword search (1, 2, ...) that
    share at least `min_shared_words` content words with it. `sourced` is `by_turn(memories)`."""
    from lmm.retrieve.search import keyword_scores

    direct = {i for k in ctx.turn_keys for i in sourced.get((ctx.session_id, k), ())}
    found = [(i, 0) for i in sorted(direct) if allowed(memories[i])]
    have = {i for i, _ in found}
    projects = [ctx.project_id] if ctx.project_id is not None else None
    query = keyword_query(ctx.query)
    scores = keyword_scores(store, query, "cognition", projects, cfg.retrieve_k * 8)
    words = consolidate.tokens(ctx.text)
    rank = 1
    for i in sorted(scores, key=lambda i: (-scores[i], i)):
        m = memories.get(i)
        if rank > cfg.retrieve_k:
            break
        if m is None or i in have or not allowed(m) or not known(m, ctx.time):
            continue
        if len(consolidate.tokens(m.text) & words) < cfg.min_shared_words:
            continue
        found.append((i, rank))
        rank += 1
    found.sort(key=lambda x: (x[1], -memories[x[0]].salience, x[0]))
    return found[: cfg.max_targets]


def cap_per_memory(pairs: list[Pair], memories: dict[int, Memory], cfg: DataConfig) -> None:
    """Fill each pair's `kept`: a memory stays in at most `max(1, round(max_per_memory x
    salience))` pairs of a split, those where it ranks best first (direct sources, then search
    rank), ties broken by the seed."""
    rng = random.Random(cfg.seed)
    order = {id(p): rng.random() for p in pairs}
    slots: dict[tuple[str, int], list[tuple[int, float, Pair]]] = {}
    for p in pairs:
        for mid, prio in p.ranked:
            slots.setdefault((p.split, mid), []).append((prio, order[id(p)], p))
    keep: set[tuple[int, int]] = set()
    for (_, mid), cands in slots.items():
        cap = len(cands)
        if cfg.max_per_memory:
            cap = max(1, round(cfg.max_per_memory * memories[mid].salience))
        for _, _, p in sorted(cands, key=lambda c: (c[0], c[1]))[:cap]:
            keep.add((id(p), mid))
    for p in pairs:
        p.kept = [mid for mid, _ in p.ranked if (id(p), mid) in keep]


# ---- statistics


def _bucket(n: int) -> str:
    lo = 1 << (n.bit_length() - 1)
    return str(lo) if lo == 1 else f"{lo}-{2 * lo - 1}"


def pair_stats(targets: list[list[int]], texts: dict[int, str]) -> dict[str, Any]:
    """How evenly memories spread over pairs. `targets` are the memory ids of each pair's answer.

    A parrot-prone set has a high `top4_target_share` (pairs whose whole answer is one of the 4
    most frequent answers) or `top4_memory_share` (pairs naming one of the 4 most used memories).
    """
    per_memory = Counter(m for t in targets for m in t)
    answers = Counter(tuple(t) for t in targets if t)
    positives = sum(1 for t in targets if t)
    top_mem = {m for m, _ in per_memory.most_common(4)}
    counts = list(per_memory.values())
    hist = Counter(_bucket(c) for c in counts)
    share = lambda n: round(n / positives, 4) if positives else 0.0  # noqa: E731
    return {
        "pairs": len(targets),
        "negatives": len(targets) - positives,
        "memories": len(per_memory),
        "pairs_per_memory": {
            "mean": round(sum(counts) / len(counts), 2) if counts else 0.0,
            "max": max(counts, default=0),
            "histogram": {k: hist[k] for k in sorted(hist, key=lambda b: int(b.split("-")[0]))},
        },
        "top4_target_share": share(sum(n for _, n in answers.most_common(4))),
        "top4_memory_share": share(sum(1 for t in targets if top_mem & set(t))),
        "most_repeated_targets": [
            {"count": n, "target": " | ".join(clip(texts[m], 60) for m in a)}
            for a, n in answers.most_common(5)
        ],
        "most_repeated_memories": [
            {"count": n, "memory": clip(texts[m], 100)} for m, n in per_memory.most_common(5)
        ],
    }


# ---- building and writing

STEMS = ("cpt_train", "cpt_val", "sft_train", "sft_val", "synthesis_train", "synthesis_val")


def code_documents(store: Store) -> list[str]:
    """Codebase knowledge (cognitions with origin 'code'), one document per project."""
    rows = history.code_cognitions(store)
    docs: dict[str, list[str]] = {}
    for r in rows:
        where = f"{r['file']}: " if r["file"] else ""
        docs.setdefault(r["project"] or "all projects", []).append(f"- {where}{r['text']}")
    return [f"# What the code of {p} says\n\n" + "\n".join(lines) for p, lines in docs.items()]


def build(
    store: Store, cfg: DataConfig | None = None, progress: Callable[[int], None] | None = None
) -> TrainingData:
    """Every training row the store can give, split by session. `progress(1)` per session."""
    from lmm.train import synthesis

    cfg = cfg or DataConfig()
    memories = load_memories(store)
    sourced = by_turn(memories)
    sess = history.sessions(store)
    val_roots = split_sessions([s["root"] for s in sess], cfg.val_fraction, cfg.seed)
    split_of = {s["id"]: "val" if s["root"] in val_roots else "train" for s in sess}
    train_ids = {sid for sid, sp in split_of.items() if sp == "train"}

    def allowed_in(split: str) -> Callable[[Memory], bool]:
        if split == "val":
            return lambda m: True
        return lambda m: not m.turns or bool(m.sessions & train_ids)

    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in STEMS}
    seen: set[str] = set()
    pairs: list[Pair] = []
    for s in sess:
        turns = store.session_turns(s["id"])
        split = split_of[s["id"]]
        first = next((t.text for t in turns if t.role == "user" and t.kind == "message"), "")
        title = s["title"] or clip(first, 80) or f"Session {s['id'][:8]}"
        doc = render_session(title, _header(s["project"], s["started_at"], None), turns, cfg)
        if _new(seen, doc):
            rows[f"cpt_{split}"].append({"text": doc})
        for ctx in contexts(s, turns, cfg):
            if _new(seen, ctx.header + ctx.text):
                ranked = rank_memories(store, ctx, memories, sourced, allowed_in(split), cfg)
                pairs.append(Pair(ctx, split, ranked))
        if progress:
            progress(1)
    rows["cpt_train"] += [{"text": d} for d in code_documents(store) if _new(seen, d)]

    cap_per_memory(pairs, memories, cfg)
    rng = random.Random(cfg.seed)
    chosen: list[Pair] = []
    for split in ("train", "val"):
        mine = [p for p in pairs if p.split == split]
        positives = [p for p in mine if p.kept]
        negatives = [p for p in mine if not p.ranked]
        n_neg = min(len(negatives), math.ceil(cfg.negative_fraction * len(positives)))
        chosen += positives + rng.sample(negatives, n_neg)
    pools = synthesis.pools(store, split_of)
    for p in chosen:
        ctx = p.context
        answer = "\n".join(memories[i].line() for i in p.kept) or NO_MEMORY
        rows[f"sft_{p.split}"].append(
            {"messages": [
                {"role": "system", "content": MEMORY_SYSTEM},
                {"role": "user", "content": f"{ctx.header}\n{ctx.text}"},
                {"role": "assistant", "content": answer},
            ]}
        )  # fmt: skip
        msgs = synthesis.messages(store, p, memories, allowed_in(p.split), pools, cfg, rng)
        rows[f"synthesis_{p.split}"].append({"messages": msgs})
    texts = {i: m.text for i, m in memories.items()}
    stats = {
        "rows": {k: len(v) for k, v in rows.items()},
        "sessions": {"train": sorted(train_ids), "val": sorted(set(split_of) - train_ids)},
        "contexts": dict(Counter(p.context.kind for p in chosen)),
        "dropped_by_cap": sum(1 for p in pairs if p.ranked and not p.kept),
        "before_cap": pair_stats([[i for i, _ in p.ranked] for p in pairs if p.ranked], texts),
        "sft_train": pair_stats([p.kept for p in chosen if p.split == "train"], texts),
        "sft_val": pair_stats([p.kept for p in chosen if p.split == "val"], texts),
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
    }
    return TrainingData(rows, stats)


def _new(seen: set[str], text: str) -> bool:
    key = hashlib.blake2b(re.sub(r"\s+", " ", text.lower()).encode(), digest_size=16).hexdigest()
    if key in seen:
        return False
    seen.add(key)
    return True


def _redacted(row: dict[str, Any]) -> dict[str, Any]:
    if "text" in row:
        return {"text": redact(row["text"])}
    return {"messages": [{**m, "content": redact(m["content"])} for m in row["messages"]]}


def write(data: TrainingData, out: Path) -> dict[str, Path]:
    """Write `<stem>.jsonl` per row kind and `stats.json` into `out`, every text redacted again.

    Each file is written whole then renamed, so a crash never leaves a half-written one; files
    are 0600, as the store is."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = {}
    for stem, rows in data.rows.items():
        path = out / f"{stem}.jsonl"
        tmp = path.with_name(path.name + ".partial")
        with open_private(tmp) as f:
            for row in rows:
                f.write(orjson.dumps(_redacted(row)) + b"\n")
        tmp.replace(path)
        paths[stem] = path
    stats = out / "stats.json"
    with open_private(stats) as f:
        f.write(orjson.dumps(data.stats, option=orjson.OPT_INDENT_2) + b"\n")
    paths["stats"] = stats
    return paths
