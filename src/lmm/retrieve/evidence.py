"""Query-focused evidence: from each retrieved hit, the lines that answer the prompt."""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass

from lmm.errors import LmmError
from lmm.retrieve.search import Hit, content_terms

_WORD = re.compile(r"\w+")
_TOOL = re.compile(r"\[tool: ([\w.:-]+)\] ")
_RESULT = re.compile(r"\[result(, error)?\] ")
_TAG_BLOCK = re.compile(
    r"<(system-reminder|ide_opened_file|ide_selection|local-command-caveat)>.*?(</\1>|$)", re.S
)
_NOISE_RESULT = re.compile(
    r"^(File created successfully|The file \S+ has been updated|Todos have been modified|"
    r"\S+ has been (updated|created) successfully)",
    re.I,
)
_LINE_NO = re.compile(r"^\s*\d+(→|\t)")  # Read results: "    12→code"
_OMITTED = re.compile(r"\[\.\.\. \d+ chars omitted \.\.\.\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*(\"'\[])")
UNIT_CHARS = 240  # a longer unit is windowed on the query's terms
MIN_POOL = 20  # idf counts at least this many units: in a pool of a few, every held term is common
SHORT_UNIT = 70  # a unit shorter than this is shown with its neighbours
INTRO_AFTER = 4  # units shown after one that introduces what follows ("CI runs:")
_SKIP_TOOLS = {"Read", "Glob", "Grep", "LS", "NotebookRead", "WebSearch"}  # what was looked at


@dataclass
class Unit:
    """One line or sentence of a hit, as shown (`text`), with the file it belongs to (`head`)."""

    hit: int  # index of its hit in the candidates
    pos: int  # order within the hit
    text: str
    head: str = ""  # "src/config.rs" for a line written into that file
    words: frozenset[str] = frozenset()
    score: float = 0.0


# ---- cutting a hit into units


def _field_values(payload: str, name: str) -> list[str]:
    """Every string value of `name` in a tool call's (maybe truncated) JSON, decoded."""
    out = []
    for raw in re.findall(rf'"{name}":"((?:[^"\\]|\\.)*)', payload):
        try:
            out.append(json.loads(f'"{raw}"'))
        except ValueError:
            out.append(raw.replace("\\n", "\n").replace('\\"', '"'))
    return out


def _tool_units(name: str, payload: str) -> list[tuple[str, str]]:
    """(head, text) pieces of one tool call: the command run, the lines written, the prompt."""
    if name in _SKIP_TOOLS:
        return []
    if name == "Bash":
        return [("", f"$ {c}") for c in _field_values(payload, "command")]
    paths = _field_values(payload, "file_path") or _field_values(payload, "notebook_path")
    head = paths[0] if paths else ""
    if name == "Write":
        return [(head, line) for text in _field_values(payload, "content") for line in _lines(text)]
    if name in ("Edit", "MultiEdit"):
        new = _field_values(payload, "new_string")
        return [(head, line) for text in new for line in _lines(text)] or [("", f"edited {head}")]
    if name == "TodoWrite":
        return [("todo", t) for t in _field_values(payload, "content")]
    texts = _field_values(payload, "prompt") or _field_values(payload, "description")
    return [("", piece) for text in texts for piece in _prose(text)]


_RULE = re.compile(r"^[|:\-\s+=]+$")  # a table's or a heading's rule line: "|---|---|"


def _lines(text: str) -> list[str]:
    return [ln for raw in text.split("\n") if (ln := " ".join(raw.split())) and not _RULE.match(ln)]


def _prose(text: str) -> list[str]:
    """Lines, and the sentences of a long line."""
    out: list[str] = []
    for line in _lines(text):
        out.extend(_SENTENCE.split(line) if len(line) > UNIT_CHARS else [line])
    return out


def _result_units(body: str, error: bool) -> list[tuple[str, str]]:
    body = _TAG_BLOCK.sub(" ", body).strip()
    if not body or _NOISE_RESULT.match(body):
        return []
    lines = [_LINE_NO.sub("", ln) for ln in body.split("\n")]
    return [("error" if error else "", ln) for ln in _lines("\n".join(lines))]


def pieces(text: str) -> list[tuple[str, str]]:
    """A hit's text as (head, unit text) pieces in order, tool noise reduced or dropped."""
    text = _OMITTED.sub(" … ", _TAG_BLOCK.sub(" ", text))
    out: list[tuple[str, str]] = []
    marks = list(_TOOL.finditer(text)) + list(_RESULT.finditer(text))
    marks.sort(key=lambda m: m.start())
    out += [("", p) for p in _prose(text[: marks[0].start()] if marks else text)]
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end() : end]
        if mark.re is _TOOL:
            out += _tool_units(mark.group(1), body)
        else:
            out += _result_units(body, bool(mark.group(1)))
    return [(head, piece) for head, piece in out if len(piece) > 2]


def units_of(hits: list[Hit]) -> list[Unit]:
    """The units of every hit; a file path is shown relative to the hit's project."""
    units = []
    for i, hit in enumerate(hits):
        root = (hit.source.project or "").rstrip("/") + "/"
        for pos, (head, text) in enumerate(pieces(hit.text)):
            head = head.removeprefix(root) if len(root) > 1 else head
            units.append(Unit(i, pos, text, head, frozenset(_WORD.findall(text.lower()))))
    return units


# ---- scoring


_SUFFIX = re.compile(r"(ing|ed|es|s)$")


def _stem(term: str) -> str:
    """A crude stem: 'parsing' and 'parse' share 'pars', 'locked' and 'locks' 'lock'."""
    bare = _SUFFIX.sub("", term)
    return term[: max(4, min(len(bare), len(term) - 2))]


def matches(term: str, words: frozenset[str]) -> bool:
    if term in words:
        return True
    if len(term) <= 3:
        return False
    stem = _stem(term)
    return any(w.startswith(stem) for w in words)


# words that ask rather than name a topic; a unit holding one answers nothing
ASKING = frozenset(
    [
        "like",
        "remind",
        "tell",
        "know",
        "think",
        "ever",
        "exactly",
        "again",
        "thing",
        "things",
        "way",
        "also",
        "just",
        "still",
        "really",
        "please",
        "want",
        "wanted",
        "need",
        "use",
        "using",
        "used",
        "get",
        "got",
        "make",
        "made",
    ]
)


# words and phrases that ask for everything on a topic (synth.asks_gathering) name no topic
GATHERING = frozenset(
    ["list", "all", "every", "each", "across", "compare", "summarize", "summarise", "summary",
     "overview", "evolved", "evolve", "evolution", "changed", "history",
     "currently", "nowadays", "anymore"]  # ... and those asking how things stand now
)  # fmt: skip
_GATHER_PHRASE = re.compile(r"\bover time\b|\bso far\b", re.I)


def query_terms(query: str) -> list[str]:
    """The query's content terms (search.content_terms) that name something."""
    terms = content_terms(_GATHER_PHRASE.sub(" ", query))
    return [t for t in terms if t not in ASKING and t not in GATHERING]


# ---- a topic the memory has never seen


@functools.cache
def common_words() -> frozenset[str]:
    """Whole words of the packaged embedder's vocabulary (~20k common English words and names);
    empty when it is not installed, which turns `topic_terms` off."""
    try:
        from lmm.retrieve.embed import packaged_minilm

        vocab = (packaged_minilm() / "vocab.txt").read_text(encoding="utf-8").split()
    except (LmmError, OSError):
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.islower())


def topic_terms(query: str) -> list[str]:
    """The query's terms that are no common word ("journald", "bzip2", "semver"): names of
    tools, libraries and identifiers, each a topic of its own."""
    words = common_words()
    if not words:
        return []
    terms = query_terms(query)
    return [t for t in terms if len(t) > 2 and not t.isdigit() and not _forms(t) & words]


def _forms(term: str) -> set[str]:
    """`term` and the words it may inflect: computes, compute; parsed, parse; swapped, swap."""
    forms = {term}
    for suffix in ("s", "es", "ed", "ing", "er", "ers"):
        base = term.removesuffix(suffix)
        if base != term and len(base) >= 3:
            forms |= {base, base + "e"}
            if base[-1] == base[-2]:
                forms.add(base[:-1])
    return forms


_QUESTION = re.compile(
    r"\?\s*$|^\s*(what|which|who|whom|whose|when|where|why|how|did|do|does|is|are|was|were|"
    r"have|has|had|can|could|should|would|will)\b"
    # asking to be told what is known: "remind me ...", "walk me through ...", "summarize ..."
    r"|^\W*(?:\w+,?\s+)?(?:(?:remind|tell|show|give|walk) me|explain|describe|summari[sz]e|list|"
    r"recap|recall)\b",
    re.I,
)


def asks(query: str) -> bool:
    """Whether `query` asks about something (a question), rather than asks for work."""
    return bool(_QUESTION.search(query))


def score_units(query: str, units: list[Unit]) -> list[str]:
    """Set each unit's score: the idf-weighted share of the query's terms it holds (idf over
    the units). Returns the terms."""
    terms = query_terms(query)
    if not terms or not units:
        return terms
    n = max(len(units), MIN_POOL)
    idf = {}
    for t in terms:
        df = sum(1 for u in units if matches(t, u.words))
        idf[t] = math.log((n + 1) / (df + 0.5))
    total = sum(idf.values()) or 1.0
    for u in units:
        u.score = sum(idf[t] for t in terms if matches(t, u.words)) / total
    return terms


# ---- choosing


def window(text: str, terms: list[str], limit: int = UNIT_CHARS) -> str:
    """`text` cut to `limit` characters around its first query term."""
    if len(text) <= limit:
        return text
    low = text.lower()
    found = [i for t in terms if (i := low.find(_stem(t) if len(t) > 3 else t)) >= 0]
    start = max(0, min(found) - limit // 3) if found else 0
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    end = start + limit
    cut = text.rfind(" ", start, end)
    end = cut if cut > start + limit // 2 else end
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _repeats(new: frozenset[str], old: frozenset[str]) -> bool:
    """Whether `new` says nothing that `old` did not: nearly the same words, or most of its
    own words already there (a longer unit that holds a shown one and more is no repeat)."""
    if not new or not old:
        return False
    common = len(new & old)
    return common / len(new | old) >= 0.8 or (len(new) >= 4 and common / len(new) >= 0.9)


@dataclass
class Focus:
    """The units chosen from one hit, in their order, as one line of evidence."""

    hit: int
    units: list[Unit]
    score: float  # its best unit's
    chosen: int = 0  # units chosen for their score (their neighbours come along)

    def text(self, terms: list[str]) -> str:
        parts: list[str] = []
        last_pos, last_head = -2, None
        for u in self.units:
            shown = window(u.text, terms)
            if u.head and u.head != last_head:
                shown = f"{u.head}: {shown}"
            parts.append(shown if u.pos == last_pos + 1 or not parts else f"… {shown}")
            last_pos, last_head = u.pos, u.head
        return " ".join(parts)


def focus(
    units: list[Unit],
    min_score: float,
    relative: float,
    before: int = 1,
    after: int = 1,
    per_hit: int = 3,
) -> list[Focus]:
    """Per hit, the units scoring at least `min_score` and `relative` x the best unit's, each
    with `before` and `after` neighbours (a short one with at least one each side: a heading
    or a question whose answer follows); hits ordered by their best unit; units that repeat
    one already taken are left out, and past `per_hit` chosen units a hit takes no more."""
    if not units:
        return []
    best = max(u.score for u in units)
    bar = max(min_score, relative * best)
    by_hit: dict[int, list[Unit]] = {}
    for u in units:
        by_hit.setdefault(u.hit, []).append(u)
    taken: list[frozenset[str]] = []
    out: list[Focus] = []
    for u in sorted(units, key=lambda u: (-u.score, u.hit, u.pos)):
        if u.score < bar:
            break
        if any(_repeats(u.words, w) for w in taken):
            continue
        taken.append(u.words)
        group = next((f for f in out if f.hit == u.hit), None)
        if group is not None and group.chosen >= per_hit:
            continue
        if group is None:
            group = Focus(u.hit, [], u.score)
            out.append(group)
        lo, hi = before, after
        if len(u.text) < SHORT_UNIT:
            lo, hi = max(1, lo), max(1, hi)
        if u.text.rstrip("*` ").endswith(":"):  # it introduces what follows
            hi = max(INTRO_AFTER, hi)
        near = [v for v in by_hit[u.hit] if -lo <= v.pos - u.pos <= hi]
        group.chosen += 1
        for v in near:
            if v not in group.units:
                group.units.append(v)
        group.units.sort(key=lambda v: v.pos)
    return out
