"""Retrieved hits -> a short memory brief that cites its sources."""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TYPE_CHECKING

from lmm.errors import LmmError
from lmm.retrieve import evidence
from lmm.retrieve.search import STOPWORDS, Hit
from lmm.text import timeref

if TYPE_CHECKING:
    from lmm.lm.base import TextGenerator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthConfig:
    """How a brief is cut. Token counts are estimates (`approx_tokens`), never exceeded."""

    max_tokens: int = 340  # the brief, sources included (--max-tokens)
    evidence_tokens: int = 2_500  # evidence shown to the LM (--evidence-tokens)
    max_evidence: int = 8  # evidence items at most
    hit_chars: int = 700  # characters kept of one hit, a window around the query's words
    line_chars: int = 600  # characters of one extractive line
    min_answer: float = 0.22  # idf-weighted share of the query a unit must hold for any brief
    min_cosine: float = 0.55  # ... or the dense similarity a top hit must reach (when known)
    min_unit: float = 0.1  # idf-weighted share of the query a unit must hold to be shown
    relative: float = 0.0  # ... and this share of the best unit's score
    dense_weight: float = 0.0  # a unit's score + dense_weight x its hit's cosine (when known),
    rank_decay: float = 0.3  # x 1 / (1 + rank_decay x its hit's rank)
    max_units: int = 1  # units shown of one hit
    before: int = 1  # units shown before a chosen one (a short one: at least 1)
    after: int = 1  # ... and after it (an answer follows what names its topic)
    min_support: float = 0.5  # share of a generated sentence's words found in what it cites
    max_new_tokens: int = 200  # generated tokens at most: a brief is short, small LMs ramble
    gather_chars: int = 300  # a gathering prompt (all / every / over time): characters per line
    recency: float = 0.3  # a prompt about the present ('now', 'currently'): a unit's score x
    # (1 + recency x how new its hit is among the hits, 0 the oldest .. 1 the newest)
    on_none: str = "fallback"  # a model's reply of NONE: "fallback" (the extractive brief) or
    # "nothing" (no brief: the model judged that no evidence matters; mode "declined")

    def __post_init__(self) -> None:
        if self.max_tokens < 40:
            raise LmmError(f"--max-tokens must be at least 40 (got {self.max_tokens})")
        if self.evidence_tokens < 100:
            raise LmmError(f"--evidence-tokens must be at least 100 (got {self.evidence_tokens})")
        if self.max_evidence < 1:
            raise LmmError(f"--max-evidence must be at least 1 (got {self.max_evidence})")
        if self.on_none not in ("fallback", "nothing"):
            raise LmmError(f"on_none must be 'fallback' or 'nothing' (got {self.on_none!r})")
        for name in ("min_answer", "min_unit", "relative"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise LmmError(f"{name} must be within 0..1 (got {getattr(self, name)})")


_PIECE = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")


def approx_tokens(text: str) -> int:
    """A token count that BPE tokenizers rarely exceed: a letter run costs one token per 4
    letters, a digit or symbol one each, plus 10%. (Measured on the sample's briefs and turns:
    SmolLM2 and Qwen2.5 give 0.75-0.98 of it; chars/3.5 undercounts ids and paths by up to 1.8x.)"""
    pieces = sum(math.ceil(len(p) / 4) if p[0].isalpha() else 1 for p in _PIECE.findall(text))
    return math.ceil(1.1 * pieces)


# ---- evidence


@dataclass
class Evidence:
    """One numbered piece of evidence: a pruned hit and the text shown for it."""

    n: int
    hit: Hit
    text: str  # the excerpt shown (whole hit text when short)
    overlap: float  # share of the query's terms it contains

    def citation(self) -> str:
        """'lesson, 2026-01-07, session 1d0fc087[, file]': what is known of the source; the file
        only when it is not the session's own transcript (a sub-agent's, a code file)."""
        src = self.hit.source
        parts = [self.hit.category] if self.hit.category else []
        if src.timestamp:
            parts.append(src.timestamp[:10])
        if src.session_id:
            parts.append(f"session {src.session_id[:8]}")
        if src.file_path and PurePath(src.file_path).stem != src.session_id:
            parts.append(PurePath(src.file_path).name)  # a session's own file adds nothing
        if src.shared_by:
            parts.append(f"team: {src.shared_by}")
        return ", ".join(parts) or f"{self.hit.kind} {self.hit.id}"

    def label(self, project: bool = False) -> str:
        """The short citation an extractive line carries: category and date (and the project's
        folder name with `project`, and who shared a team memory); `citation` has the session
        and file."""
        src = self.hit.source
        parts = [self.hit.category] if self.hit.category else []
        if src.timestamp:
            parts.append(src.timestamp[:10])
        if project and src.project:
            parts.append(PurePath(src.project).name)
        if src.shared_by:
            parts.append(f"team: {src.shared_by}")
        return ", ".join(parts) or f"{self.hit.kind} {self.hit.id}"


_WORD = re.compile(r"\w+")


def _prefix(term: str) -> str:
    """A crude stem: 'locked' and 'locks' share 'lock', 'databases' and 'database' 'databa'."""
    return term[: max(4, len(term) - 2)]


def overlap(terms: list[str], text: str) -> float:
    """Share of `terms` found in `text` (a short term as a word, a longer one by its stem),
    out of at most 3 terms."""
    if not terms:
        return 0.0
    words = set(_WORD.findall(text.lower()))
    matched = sum(
        1
        for t in terms
        if t in words or (len(t) > 3 and any(w.startswith(_prefix(t)) for w in words))
    )
    return min(1.0, matched / min(len(terms), 3))


def excerpt(text: str, terms: list[str], limit: int) -> str:
    """`text` squashed to one line; past `limit` characters, a window around its first term."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    low = text.lower()
    hits = [i for t in terms if (i := low.find(_prefix(t))) >= 0]
    start = max(0, min(hits) - limit // 4) if hits else 0
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 40 else start
    end = start + limit - 2
    cut = text.rfind(" ", start, end)
    end = cut if cut > start + limit // 2 else end
    return ("…" if start else "") + text[start:end].rstrip() + "…"


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def _repeats(a: set[str], b: set[str], jaccard: float) -> bool:
    """Whether two word sets say the same: overlap >= `jaccard`, or one (of 5+ words) lies
    almost wholly inside the other (a cognition quoting the turn it came from)."""
    if not a or not b:
        return False
    common = len(a & b)
    small = min(len(a), len(b))
    return common / len(a | b) >= jaccard or (small >= 5 and common / small >= 0.9)


_GATHER = re.compile(
    r"\b(all|every|each|list|across|compare|comparison|differ|summar(y|ize|ise)|overview"
    r"|evolved?|evolution|history|over time|so far|swaps?|changes)\b",
    re.I,
)


def asks_gathering(query: str) -> bool:
    """Whether `query` asks for everything on a topic (all, every, list, across, over time,
    how it evolved) rather than one fact: its evidence comes from as many sessions as fit."""
    return bool(_GATHER.search(query))


_CURRENT = re.compile(
    r"\b(now|currently|current|right now|these days|nowadays|today|latest|anymore|any more"
    r"|at the moment|at present)\b",
    re.I,
)


def asks_current(query: str) -> bool:
    """Whether `query` asks how things stand now: the newer of two statements should lead."""
    return bool(_CURRENT.search(query))


def newness(hits: list[Hit]) -> list[float]:
    """Each hit's place in time among `hits`: 0 the oldest, 1 the newest (0.5 undated)."""
    stamps = [h.source.timestamp or "" for h in hits]
    dated = sorted({s for s in stamps if s})
    if len(dated) < 2:
        return [0.5] * len(hits)
    place = {s: i / (len(dated) - 1) for i, s in enumerate(dated)}
    return [place.get(s, 0.5) for s in stamps]


def select_evidence(query: str, hits: list[Hit], cfg: SynthConfig | None = None) -> list[Evidence]:
    """The evidence worth showing, best first, numbered from 1: from each hit the units that
    answer the query (evidence.focus), none at all when the best unit holds less than
    `min_answer` of the query's weight and the best hit's cosine is under `min_cosine`; each
    hit's line within `line_chars`, all within `evidence_tokens` and `max_evidence`.
    A gathering prompt (`asks_gathering`) takes one line per session first, each within
    `gather_chars`, the retriever's order not counted, so that more sessions fit; one about
    the present (`asks_current`) favours newer hits by `recency`."""
    cfg = cfg or SynthConfig()
    gather = asks_gathering(query)
    if gather:
        cfg = replace(cfg, rank_decay=0.0)
    hits = sorted((h for h in hits if h.text.strip()), key=lambda h: -h.score)
    units = evidence.units_of(hits)
    terms = evidence.score_units(query, units)
    if not units or not answers(units, hits, cfg):
        return []
    dense = [float(d["score"]) if (d := h.signals.get("dense")) else 0.0 for h in hits]
    new = newness(hits) if asks_current(query) else [0.0] * len(hits)
    # the per-hit bar: a unit holds some of the query's words, or its hit is close in meaning
    # (one under the bar is never chosen, but may be shown as a chosen one's neighbour)
    for u in units:  # the hit's meaning and the retriever's order count beside the words
        if u.score < cfg.min_unit and dense[u.hit] < cfg.min_cosine:
            u.score = -1.0
            continue
        u.score = (u.score + cfg.dense_weight * dense[u.hit]) / (1.0 + cfg.rank_decay * u.hit)
        u.score *= 1.0 + cfg.recency * new[u.hit]
    chosen: list[Evidence] = []
    budget = cfg.evidence_tokens
    groups = evidence.focus(units, 0.0, cfg.relative, cfg.before, cfg.after, cfg.max_units)
    if gather:
        groups = one_per_session(groups, hits)
    for group in groups:
        hit = hits[group.hit]
        text = timeref.annotate(group.text(terms), hit.source.timestamp)
        if gather:  # a short line each: more sessions fit
            text = evidence.window(text, terms, cfg.gather_chars)
        cost = approx_tokens(text) + 20  # the number and citation around it
        if cost > budget:
            continue
        budget -= cost
        chosen.append(Evidence(len(chosen) + 1, hit, text, group.score))
        if len(chosen) == cfg.max_evidence:
            break
    return chosen


def lead_with(hits: list[Hit], rest: list[Evidence]) -> list[Evidence]:
    """`hits` as whole lines of evidence first (rules, decisions), then `rest`, numbered from 1."""
    first = [Evidence(0, h, h.text, 1.0) for h in hits]
    return [replace(ev, n=n) for n, ev in enumerate(first + rest, start=1)]


def one_per_session(groups: list[evidence.Focus], hits: list[Hit]) -> list[evidence.Focus]:
    """`groups` with each session's best first, then the others, each part in its order."""
    seen: set[str | None] = set()
    first: list[evidence.Focus] = []
    rest: list[evidence.Focus] = []
    for g in groups:
        session = hits[g.hit].source.session_id or f"hit {g.hit}"
        (rest if session in seen else first).append(g)
        seen.add(session)
    return first + rest


def answers(units: list[evidence.Unit], hits: list[Hit], cfg: SynthConfig) -> bool:
    """Whether anything answers: a unit holds `min_answer` of the query's weight, or the best
    hit is that close in meaning (cosine `min_cosine`)."""
    if max(u.score for u in units) >= cfg.min_answer:
        return True
    dense = [float(d["score"]) for h in hits[:3] if (d := h.signals.get("dense"))]
    return bool(dense) and max(dense) >= cfg.min_cosine


# ---- briefs


@dataclass
class Brief:
    """A memory brief: `text` is None when nothing relevant was found."""

    text: str | None
    evidence: list[Evidence]
    mode: str  # none | extractive | generated | fallback (generation gave nothing grounded)
    # | declined (the model said NONE and `SynthConfig.on_none` is "nothing": no brief)
    model: str | None = None
    dropped: list[str] = field(default_factory=list)  # generated sentences the check removed
    seconds: float = 0.0

    @property
    def tokens(self) -> int:
        return approx_tokens(self.text) if self.text else 0


def extractive_brief(evidence: list[Evidence], cfg: SynthConfig | None = None) -> Brief:
    """The evidence itself, one line each: '[n] text (category, date[, project])', best
    first. A line that would overrun `max_tokens` is left out and later (shorter) ones still
    go in; the lines kept are numbered 1, 2, ... and the brief's evidence says which they are."""
    cfg = cfg or SynthConfig()
    if not evidence:
        return Brief(None, [], "none")
    lines: list[str] = []
    kept: list[Evidence] = []
    used = 0
    several = len({ev.hit.source.project for ev in evidence}) > 1
    for ev in evidence:
        body = f"{excerpt(ev.text, [], cfg.line_chars)} ({ev.label(several)})"
        line = f"[{len(kept) + 1}] {body}"
        if used + approx_tokens(line) + 1 > cfg.max_tokens:
            continue
        lines.append(line)
        kept.append(replace(ev, n=len(kept) + 1))
        used += approx_tokens(line) + 1
    if lines:
        return Brief("\n".join(lines), kept, "extractive")
    # every line is over the whole budget: shorten the best one until it fits
    ev, chars = evidence[0], cfg.line_chars
    line = f"[1] {excerpt(ev.text, [], chars)} ({ev.label(several)})"
    while approx_tokens(line) > cfg.max_tokens and chars > 20:
        chars = chars * 2 // 3
        line = f"[1] {excerpt(ev.text, [], chars)} ({ev.label(several)})"
    return Brief(line, [replace(ev, n=1)], "extractive")


SYSTEM = (
    "You write a short memory brief for a coding agent from numbered notes taken from its past "
    "sessions. Use only facts stated in the notes. End every sentence with the numbers of the "
    "notes it uses, like [1] or [2][3]. Keep commands, file names and error messages exactly as "
    "written. If no note helps with the task, reply NONE."
)


def prompt_messages(query: str, evidence: list[Evidence], words: int) -> list[dict[str, str]]:
    """The chat sent to the LM: the numbered notes first, then the task (small models follow
    what they read last), then the length limit."""
    lines = [f"[{ev.n}] ({ev.citation()}) {ev.text}" for ev in evidence]
    user = (
        "Notes from past sessions:\n"
        + "\n".join(lines)
        + f"\n\nTask: {query.strip()[:1000]}\n\nIn at most {words} words, say what in these "
        "notes matters for the task. End every sentence with the note numbers it uses, like [1]."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


MIN_WORDS = 2  # a "sentence" of bare citations, dates or one word says nothing
_CITATION_WORDS = frozenset(
    ["session", "sessions", "jsonl", "source", "sources", "note", "notes", "evidence"]
)
_HEX_ID = re.compile(r"[0-9a-f]{8,}")


def claim_words(sentence: str) -> set[str]:
    """The words a generated sentence asserts: no citations, stopwords, numbers, ids or the
    vocabulary of citing itself (a model that echoes '(2026-01-05, session ab0469a5)' says
    nothing)."""
    words = set(_WORD.findall(_CITE.sub(" ", sentence).lower()))
    return {
        w
        for w in words
        if len(w) > 1
        and not w.isdigit()
        and w not in STOPWORDS
        and w not in _CITATION_WORDS
        and not _HEX_ID.fullmatch(w)
    }


_SENTENCE_END = re.compile(r"(?<=[.!?\]])\s+(?=[A-Z`\"'(*-])|\n+")
_CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def citations(sentence: str) -> list[int]:
    """Evidence numbers cited in `sentence`: '[1]', '[2][3]' and '[2, 3]' forms."""
    return [int(n) for group in _CITE.findall(sentence) for n in re.split(r"\s*[,;]\s*", group)]


def ground(text: str, evidence: list[Evidence], min_support: float) -> tuple[list[str], list[str]]:
    """Split generated `text` into sentences; keep those that cite only existing evidence, claim
    something (`MIN_WORDS` `claim_words` at least) and whose claim words appear, at least
    `min_support` of them, in what they cite.
    Returns (kept, dropped)."""
    by_n = {ev.n: ev for ev in evidence}
    kept: list[str] = []
    dropped: list[str] = []
    for raw in _SENTENCE_END.split(text.strip()):
        sentence = raw.strip().lstrip("-* ").strip()
        if not sentence:
            continue
        cited = citations(sentence)
        ok = bool(cited) and all(n in by_n for n in cited)
        if ok:
            words = claim_words(sentence)
            source = set().union(*(set(_WORD.findall(by_n[n].hit.text.lower())) for n in cited))
            ok = len(words) >= MIN_WORDS and len(words & source) / len(words) >= min_support
        (kept if ok else dropped).append(sentence)
    return kept, dropped


def sources_block(evidence: list[Evidence], cited: set[int]) -> str:
    return "Sources:\n" + "\n".join(f"[{e.n}] {e.citation()}" for e in evidence if e.n in cited)


def says_none(reply: str) -> bool:
    """Whether a model's reply is the NONE that `SYSTEM` asks for (nothing helps)."""
    return reply.strip().strip("*`'\".").upper() == "NONE"


def generate_brief(
    query: str, evidence: list[Evidence], lm: TextGenerator, cfg: SynthConfig | None = None
) -> Brief:
    """A few grounded sentences by `lm`, then the sources they cite. Falls back to the
    extractive brief when no generated sentence survives `ground`; a reply of NONE gives no
    brief at all (mode "declined") when `cfg.on_none` is "nothing"."""
    cfg = cfg or SynthConfig()
    if not evidence:
        return Brief(None, [], "none", model=lm.name)
    start = time.perf_counter()
    reserve = approx_tokens(sources_block(evidence, {e.n for e in evidence}))
    room = min(cfg.max_new_tokens, max(40, cfg.max_tokens - reserve))
    reply = lm.generate(prompt_messages(query, evidence, int(room * 0.6)), max_new_tokens=room)
    if cfg.on_none == "nothing" and says_none(reply):
        return Brief(None, evidence, "declined", lm.name, [], time.perf_counter() - start)
    kept, dropped = ground(reply, evidence, cfg.min_support)
    if dropped:
        log.info("dropped %d ungrounded sentences from %s", len(dropped), lm.name)
    body: list[str] = []
    cited: set[int] = set()
    for sentence in kept:
        trial = cited | set(citations(sentence))
        text = " ".join([*body, sentence]) + "\n" + sources_block(evidence, trial)
        if approx_tokens(text) > cfg.max_tokens:
            break
        body.append(sentence)
        cited = trial
    seconds = time.perf_counter() - start
    if not body:
        brief = extractive_brief(evidence, cfg)
        brief.mode, brief.model, brief.dropped, brief.seconds = (
            "fallback",
            lm.name,
            dropped,
            seconds,
        )
        return brief
    text = " ".join(body) + "\n" + sources_block(evidence, cited)
    return Brief(text, evidence, "generated", lm.name, dropped, seconds)
