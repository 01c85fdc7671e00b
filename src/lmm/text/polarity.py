"""What a cognition's text names, and with which polarity, for matching it to a tool call."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from lmm.text.shell import Invocation, invocations

_NEGATION = re.compile(
    r"\b(?:never|not|no|don'?t|do not|doesn'?t|didn'?t|avoid|instead of|rather than|stop using|"
    r"no longer|without|drop|remove|away from|nor|neither|except)\b",
    re.I,
)
_CLAUSE_END = re.compile(
    r"[.;:!?,()—–]|\s-\s|\b(?:but|only|so|because|and|switch|go with|instead)\b", re.I
)
_PROHIBITION = re.compile(
    r"\b(?:never|not|don'?t|do not|no longer|stop using|avoid|instead of|rather than)\b", re.I
)
_WORD = re.compile(r"[A-Za-z0-9_@+#$%~-][\w@+#$%~./:=-]*")
_SPAN = re.compile(r"`([^`\n]+)`")
_IDENT = re.compile(r"\b[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*(?=\s*\()|"
                    r"\b[a-z]+[A-Z][\w$]*|\b[A-Za-z]+_[\w]+")  # fmt: skip
_FAILED = re.compile(r"^`(?P<bad>[^`]+)` fail(?:s here|ed) \(")
_WORKS = re.compile(r"; `(?P<good>[^`]+)` works instead\.$|; running `(?P<fix>[^`]+)` fixed it\.$")
_PASSED = re.compile(r"\(then `(?P<cmd>[^`]+)` passed\)$")
_PURPOSE = re.compile(r"^To (?:run the tests|type-check|lint|format|build): `(?P<cmd>[^`]+)`\.$")


@dataclass(frozen=True)
class Reading:
    """The parts of a cognition's text that a tool call can match."""

    words: frozenset[str]  # lower-case words and their light stems
    prose: frozenset[str]  # the same, outside code spans (a span is matched as a command)
    negated: frozenset[str]  # words after a negation, up to the end of the clause
    affirmed: frozenset[str]  # words of the prose outside those clauses
    commands: tuple[tuple[Invocation, str], ...]  # backticked: bad | banned | good | usual | fixed
    identifiers: frozenset[str]
    text_lower: str
    prohibition: bool  # the user forbids something ("never", "don't", "not")
    passed: bool  # a lesson whose failing command passed once the code was fixed


@functools.lru_cache(maxsize=4096)  # `lmm serve` reads the same cognitions call after call
def read(text: str, category: str = "preference") -> Reading:
    """What `text` (a cognition of `category`) names, and with which polarity. Negations count
    in what the user said (preferences, decisions, and notes not written by the tool-run rules):
    in an error message ("No module named ...") they say nothing about what to do."""
    lower = text.lower()
    roles: dict[str, str] = {}
    if failed := _FAILED.match(text):
        roles[failed.group("bad")] = "bad"
    if works := _WORKS.search(text):
        roles[works.group("good") or works.group("fix")] = "good"
    if passed := _PASSED.search(text):
        roles[passed.group("cmd")] = "fixed"
    if purpose := _PURPOSE.match(text):
        roles[purpose.group("cmd")] = "usual"
    said = category in ("preference", "decision") or (
        category != "lesson" and not roles and "→" not in text
    )
    prose = "" if purpose else _SPAN.sub(" ", lower)  # "To build: `x`." says only its command
    negated: set[str] = set()
    affirmed = prose
    for m in _NEGATION.finditer(lower) if said else ():
        rest = lower[m.end() : m.end() + 80]
        end = _CLAUSE_END.search(rest)
        window = rest[: end.start() if end else len(rest)]
        negated |= words(window)
        affirmed = affirmed.replace(_SPAN.sub(" ", window), " ")
    commands: list[tuple[Invocation, str]] = []
    for span in _SPAN.findall(text):
        role = roles.get(span)
        if role is None:
            role = "banned" if said and _negated_span(lower, span.lower()) else "good"
        commands += [(inv, role) for inv in invocations(span)]
    idents = identifiers(text)
    idents |= {s.lower() for s in _SPAN.findall(text) if re.fullmatch(r"[A-Za-z_$][\w$.]*", s)}
    return Reading(
        words=frozenset(words(lower)),
        prose=frozenset(words(prose)),
        negated=frozenset(negated),
        affirmed=frozenset(words(affirmed)),
        commands=tuple(commands),
        identifiers=frozenset(idents),
        text_lower=lower,
        prohibition=said and bool(_PROHIBITION.search(lower)),
        passed=passed is not None,
    )


def identifiers(text: str) -> set[str]:
    """Code names in `text` (`localStorage`, `unwrap(`, `snake_case`), lower case, dotted
    names split into their parts."""
    out: set[str] = set()
    for name in _IDENT.findall(text):
        out.update(p.lower() for p in name.split(".") if len(p) >= 4)
    return out


def _negated_span(lower: str, span: str) -> bool:
    at = lower.find(f"`{span}`")
    before = lower[max(0, at - 40) : at]
    cut = max((m.end() for m in _CLAUSE_END.finditer(before)), default=0)
    return at > 0 and bool(_NEGATION.search(before[cut:]))


def words(text: str) -> set[str]:
    out: set[str] = set()
    for w in _WORD.findall(text):
        w = w.strip(".:=,'\"")
        if not w:
            continue
        out.add(w)
        out.update(p for p in re.split(r"[/'.-]", w) if len(p) >= 2)
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            out.add(w[:-1])
    return out
