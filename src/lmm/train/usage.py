"""Synthesis rows labelled by use: what the agent's own next turns took from recall's evidence."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmm.retrieve.search import STOPWORDS, Hit
from lmm.retrieve.synth import (
    _SENTENCE_END,
    Evidence,
    SynthConfig,
    approx_tokens,
    ground,
    prompt_messages,
    select_evidence,
    sources_block,
)

if TYPE_CHECKING:
    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store

NONE = "NONE"
_TOKEN = re.compile(r"`[^`\n]{2,80}`|[\w./:@~+-]*\w")
_TOOL_LINE = re.compile(r"^\[tool: [^\]]*\].*$", re.M)


@dataclass(frozen=True)
class UsageConfig:
    """How rows are labelled. Fixed before any run: no setting is tuned on evaluation sets."""

    max_df: float = 0.03  # a plain word is specific when at most this share of turns holds it
    code_df: float = 0.2  # ... a code-shaped token (path, identifier, number) at most this share
    min_words: int = 2  # rare plain words a line must share with the usage (one code token does)
    follow_turns: int = 10  # assistant turns after the anchor that count as its use
    assistant_anchors: bool = True  # the assistant's stated next steps are anchors too
    min_prose: int = 40  # characters of prose an assistant anchor needs
    max_lines: int = 3  # evidence lines in a target brief at most
    sentence_chars: int = 240  # characters of one copied sentence (a window around its token)
    none_share: float = 0.25  # NONE rows at most this share of a split's rows
    pool: int = 60  # hits retrieved before the time filter (recall then keeps its own k)
    causal: bool = True  # evidence only from before the anchor; False: from every other session
    open_gate: bool = False  # also anchors whose evidence recall's answer gate would refuse
    # (`SynthConfig.min_answer` / `min_cosine` at 0): more rows, most of them NONE


def code_shaped(token: str) -> bool:
    """A path, dotted or snake_case identifier, CamelCase name, flag or number (2+ digits)."""
    if token.startswith("`"):
        return True
    return bool(
        re.search(r"[_./:@~+]", token.strip(".:"))
        or re.search(r"\d\d", token)
        or re.search(r"[a-z][A-Z]", token)
        or (token.startswith("-") and len(token) > 2)
    )


def tokens_of(text: str) -> set[str]:
    """The lower-cased candidate tokens of `text` (punctuation at the ends stripped)."""
    out = set()
    for raw in _TOKEN.findall(text):
        t = raw.strip("`").strip(".:,-/") if not raw.startswith("`") else raw
        if len(t) >= 3 and t.lower() not in STOPWORDS:
            out.add(t.lower())
    return out


@dataclass
class Frequency:
    """Document frequency of tokens over the store's turns and cognitions."""

    df: Counter[str] = field(default_factory=Counter)
    n: int = 1

    def share(self, token: str) -> float:
        return self.df.get(token, 0) / self.n

    @classmethod
    def of(cls, store: Store) -> Frequency:
        df: Counter[str] = Counter()
        n = 0
        from lmm.store import history

        for text in history.texts(store):
            n += 1
            df.update({t.strip("`") for t in tokens_of(text or "")})
        return cls(df, max(1, n))


def specific(token: str, freq: Frequency, cfg: UsageConfig) -> bool:
    share = freq.share(token.strip("`"))
    return share <= (cfg.code_df if code_shaped(token) else cfg.max_df)


def used_tokens(line: str, anchor: str, usage: str, freq: Frequency, cfg: UsageConfig) -> set[str]:
    """The specific tokens of evidence `line` that `usage` holds and `anchor` does not; empty
    unless they show use (one code-shaped token or `min_words` rare words)."""
    anchor_low = anchor.lower()
    usage_low = usage.lower()
    found = {
        t
        for t in tokens_of(line)
        if specific(t, freq, cfg) and t.strip("`") not in anchor_low and t.strip("`") in usage_low
    }
    found = {t for t in found if _whole(t.strip("`"), usage_low)}
    if any(code_shaped(t) for t in found) or len(found) >= cfg.min_words:
        return found
    return set()


def _whole(token: str, text: str) -> bool:
    """`token` in `text` as a whole token, not inside a longer word."""
    return re.search(rf"(?<![\w]){re.escape(token)}(?![\w])", text) is not None


def _window(sentence: str, token: str, limit: int) -> str:
    if len(sentence) <= limit:
        return sentence
    i = max(0, sentence.lower().find(token.strip("`")))
    start = max(0, i - limit // 3)
    if start:
        space = sentence.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    end = min(len(sentence), start + limit)
    cut = sentence.rfind(" ", start, end)
    end = cut if end < len(sentence) and cut > start + limit // 2 else end
    return (
        ("…" if start else "") + sentence[start:end].strip() + ("…" if end < len(sentence) else "")
    )


def cite_line(text: str, n: int) -> str:
    """One sentence with its citation before the final stop: 'Use uv [2].'"""
    text = text.strip()
    end = text[-1] if text[-1] in ".!?" else ""
    body = text[:-1].rstrip() if end else text
    return f"{body} [{n}]{end or '.'}"


def copy_line(ev: Evidence, used: set[str], cfg: UsageConfig) -> list[str]:
    """The sentences of `ev`'s text that hold a used token, each cut to `sentence_chars`
    around it and cited [n]; those `synth.ground` would drop are left out."""
    out = []
    for raw in _SENTENCE_END.split(ev.text.strip()):
        sentence = " ".join(raw.split())
        low = sentence.lower()
        hit = next((t for t in sorted(used) if t.strip("`") in low), None)
        if not hit:
            continue
        line = cite_line(_window(sentence, hit, cfg.sentence_chars), ev.n)
        kept, _ = ground(line, [ev], SynthConfig().min_support)
        if len(kept) == 1 and kept[0] == line:
            out.append(line)
    return out


def target_brief(
    anchor: str, usage: str, evidence: list[Evidence], room: int, freq: Frequency, cfg: UsageConfig
) -> tuple[str, list[int]]:
    """The brief the row teaches and the evidence numbers it cites ('NONE', [] when none used),
    within `room` tokens (`synth.approx_tokens`)."""
    lines: list[str] = []
    cited: list[int] = []
    for ev in evidence:
        used = used_tokens(ev.text, anchor, usage, freq, cfg)
        if not used:
            continue
        for line in copy_line(ev, used, cfg)[:2]:
            if approx_tokens("\n".join([*lines, line])) > room:
                break
            lines.append(line)
            if ev.n not in cited:
                cited.append(ev.n)
        if len(cited) == cfg.max_lines:
            break
    return ("\n".join(lines), cited) if lines else (NONE, [])


def room_for(evidence: list[Evidence], synth: SynthConfig) -> int:
    """The new tokens `synth.generate_brief` allows for this evidence."""
    reserve = approx_tokens(sources_block(evidence, {e.n for e in evidence}))
    return int(min(synth.max_new_tokens, max(40, synth.max_tokens - reserve)))


# ---- anchors and their use


@dataclass
class Anchor:
    session_id: str
    project: str | None
    time: str
    text: str  # the query recall would get
    usage: str  # what the assistant did next
    kind: str  # user | assistant


def prose(text: str) -> str:
    """An assistant turn's text without its '[tool: ...]' lines."""
    return " ".join(_TOOL_LINE.sub(" ", text).split())


def is_prompt(text: str) -> bool:
    """A typed user prompt, not a slash command's output, a caveat or an interruption note."""
    t = text.strip()
    return len(t) >= 15 and not t.startswith(("<", "Caveat:", "[Request interrupted"))


def anchors(store: Store, cfg: UsageConfig) -> list[Anchor]:
    """Every anchor of every stored session, in time order within its session."""
    from lmm.store import history

    rows = history.main_thread_turns(store)
    out: list[Anchor] = []
    by_session: dict[str, list[Any]] = {}
    for r in rows:
        by_session.setdefault(r[0], []).append(r)
    for session, turns in by_session.items():
        for i, (_, role, kind, text, time, project) in enumerate(turns):
            if kind != "message" or not time:
                continue
            if role == "user" and is_prompt(text):
                query = text.strip()
            elif (
                role == "assistant" and cfg.assistant_anchors and len(prose(text)) >= cfg.min_prose
            ):
                query = prose(text)
            else:
                continue
            follow: list[str] = []
            if role == "assistant":  # the tool calls of the same turn are its first use
                follow.append("\n".join(_TOOL_LINE.findall(text)))
            for _, r2, k2, t2, _, _ in turns[i + 1 :]:
                if r2 == "user" and k2 == "message" and is_prompt(t2):
                    break
                if r2 == "assistant":
                    follow.append(t2)
                    if len(follow) >= cfg.follow_turns:
                        break
            usage = "\n".join(f for f in follow if f)
            if usage.strip():
                out.append(Anchor(session, project, time, query, usage, role))
    return out


def evidence_before(
    store: Store,
    anchor: Anchor,
    synth: SynthConfig,
    k: int,
    pool: int,
    embedder: Embedder | None,
    causal: bool = True,
) -> list[Evidence]:
    """What recall would show for the anchor from the store as it stood before it: hits of other
    sessions dated before the anchor, cut to recall's k, then `select_evidence`."""
    from lmm.retrieve import scope
    from lmm.retrieve.recall import QUERY_CHARS, resolve_project
    from lmm.retrieve.search import retrieve

    query = anchor.text[:QUERY_CHARS]
    project = resolve_project(store, anchor.project)
    hits = retrieve(store, query, project=project, k=pool, embedder=embedder)
    hits = scope.with_user_memory(store, query, hits, project=project, k=pool, embedder=embedder)
    hits = [h for h in hits if earlier(h, anchor, causal)][:k]
    return select_evidence(query, hits, synth)


def earlier(hit: Hit, anchor: Anchor, causal: bool = True) -> bool:
    """Whether `hit` is from another session (and, `causal`, dated before the anchor)."""
    src = hit.source
    if src.session_id == anchor.session_id:
        return False
    return not causal or (bool(src.timestamp) and (src.timestamp or "") < anchor.time)


# ---- rows


def split_sessions(sessions: list[str], val_fraction: float, seed: int) -> set[str]:
    """The validation sessions: a seeded share of them (at least one when there are two)."""
    order = sorted(sessions)
    random.Random(seed).shuffle(order)
    n = max(1, math.ceil(len(order) * val_fraction)) if len(order) > 1 else 0
    return set(order[:n])


def rows_of(
    store: Store,
    cfg: UsageConfig,
    synth: SynthConfig,
    k: int,
    embedder: Embedder | None,
    tag: str = "",
) -> list[dict[str, Any]]:
    """One row per anchor that recall would give evidence: messages + the facts behind them."""
    freq = Frequency.of(store)
    loose = replace(synth, min_answer=0.0, min_cosine=0.0)
    out = []
    for a in anchors(store, cfg):
        evidence = evidence_before(store, a, synth, k, cfg.pool, embedder, cfg.causal)
        gated = bool(evidence)
        if not evidence and cfg.open_gate:
            evidence = evidence_before(store, a, loose, k, cfg.pool, embedder, cfg.causal)
        if not evidence:
            continue
        room = room_for(evidence, synth)
        brief, cited = target_brief(a.text, a.usage, evidence, room, freq, cfg)
        messages = prompt_messages(a.text[:2000], evidence, int(room * 0.6))
        messages.append({"role": "assistant", "content": brief})
        out.append(
            {
                "messages": messages,
                "session": f"{tag}{a.session_id}",
                "anchor": a.kind,
                "cited": cited,
                "evidence": len(evidence),
                "gated": gated,
            }
        )
    return out


def cap_none(rows: list[dict[str, Any]], share: float, seed: int) -> list[dict[str, Any]]:
    """`rows` with NONE rows thinned (seeded) to at most `share` of what is kept."""
    used = [r for r in rows if r["cited"]]
    none = [r for r in rows if not r["cited"]]
    keep = min(len(none), int(share / (1 - share) * len(used))) if share < 1 else len(none)
    rng = random.Random(seed)
    kept = set(map(id, rng.sample(none, keep)))
    return [r for r in rows if r["cited"] or id(r) in kept]


def write(rows: list[dict[str, Any]], out: Path, cfg: UsageConfig, val_fraction: float,
          seed: int) -> dict[str, Any]:  # fmt: skip
    """Split by session, thin NONE rows per split, write usage_{train,val}.jsonl + stats."""
    out.mkdir(parents=True, exist_ok=True)
    val = split_sessions(sorted({r["session"] for r in rows}), val_fraction, seed)
    stats: dict[str, Any] = {"config": cfg.__dict__, "val_fraction": val_fraction, "seed": seed}
    for split in ("train", "val"):
        part = [r for r in rows if (r["session"] in val) == (split == "val")]
        kept = cap_none(part, cfg.none_share, seed)
        with (out / f"usage_{split}.jsonl").open("w") as f:
            for r in kept:
                f.write(json.dumps({"messages": r["messages"]}) + "\n")
        with (out / f"usage_{split}_meta.jsonl").open("w") as f:
            for r in kept:
                f.write(json.dumps({k: v for k, v in r.items() if k != "messages"}) + "\n")
        stats[split] = {
            "anchors_with_evidence": len(part),
            "rows": len(kept),
            "none_rows": sum(1 for r in kept if not r["cited"]),
            "user_anchor_rows": sum(1 for r in kept if r["anchor"] == "user"),
            "open_gate_rows": sum(1 for r in kept if not r.get("gated", True)),
            "sessions": len({r["session"] for r in part}),
            "target_tokens_median": sorted(
                approx_tokens(r["messages"][-1]["content"]) for r in kept
            )[len(kept) // 2]
            if kept
            else 0,
        }
    (out / "usage_stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats
