"""Text rules: when two cognitions say the same thing, and when a newer one replaces an older."""

from __future__ import annotations

import functools
import re

DUPLICATE_JACCARD = 0.7

_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "`": "'"})
_WORD = re.compile(r"[a-z0-9_@.+#/-]+")
STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        "a an the and or of to in on for with by at from as is are be been it its this that these "
        "those we you i our your my me us they them their will would should shall must can could "
        "please just also all any each every so then than do does did have has had not no",
    )
)


_PARENTHESES = re.compile(r"\([^()]*\)")


def without_parentheses(text: str) -> str:
    """`text` with its asides in parentheses blanked out, nested ones too: "(OperationalError:
    (sqlite3.OperationalError) database is locked)" goes whole."""
    while (less := _PARENTHESES.sub(" ", text)) != text:
        text = less
    return text


@functools.lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower case, plain quotes, single spaces, no trailing punctuation."""
    text = text.translate(_QUOTES).lower()
    text = re.sub(r"\s+", " ", text).strip()
    return text.rstrip(" .!;:,")


def tokens(text: str) -> frozenset[str]:
    """Content words of `text` (stopwords dropped, a plural 's' stripped), for overlap tests."""
    return _tokens(text)


@functools.lru_cache(maxsize=8192)
def _tokens(text: str) -> frozenset[str]:
    out = set()
    for w in _WORD.findall(normalise(text)):
        w = w.strip(".-/")
        if not w or w in STOPWORDS:
            continue
        if len(w) > 4 and w.endswith("es") and w[:-2].endswith(("ss", "ch", "sh", "x")):
            w = w[:-2]
        elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
            w = w[:-1]
        out.add(w)
    return frozenset(out)


def jaccard(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


# ---- subjects and values

_KINDS = [
    ("function argument", r"(?:function |method )?(?:argument|parameter|arg|param)s?"),
    ("function", r"functions?"),
    ("method", r"methods?"),
    ("variable", r"variables?|vars?"),
    ("attribute", r"attributes?|attrs?|fields?|properties"),
    ("class", r"class(?:es)?"),
    ("constant", r"constants?"),
    ("module", r"modules?"),
    ("file", r"files?"),
    ("test", r"tests?"),
    ("branch", r"branch(?:es)?"),
]
_KIND_RE = [(k, re.compile(rf"\b(?:{p})(?: names?)?\b")) for k, p in _KINDS]
_NAMES = re.compile(r"\bnam(?:e|es|ing)\b|\bprefix|\bsuffix|case\b")
_ASPECTS = [
    ("prefix", re.compile(r"\b(?:start|begin|prefix|prefixed|precede)\w*")),
    ("suffix", re.compile(r"\b(?:end|ending|suffix|suffixed|finish)\w*")),
    (
        "case",
        re.compile(
            r"\b(?:camel ?case|pascal ?case|snake_case|snake case|kebab|upper ?case|"
            r"lower ?case|all caps)\b"
        ),
    ),
    ("contains", re.compile(r"\b(?:includ|contain|incorporat)\w*")),
]
_CASE_VALUE = re.compile(
    r"camel ?case|pascal ?case|snake_case|snake case|kebab[- ]case|(?:all )?upper ?case|"
    r"lower ?case|all caps"
)
_LITERAL = re.compile(r"'([^'\s]{1,40})'|\"([^\"\s]{1,40})\"")

# Interchangeable tools: choosing one replaces the previous choice of the same kind.
TOOL_KINDS: dict[str, tuple[str, ...]] = {
    "python package manager": ("pip", "uv", "poetry", "pipenv", "conda", "pdm", "hatch", "rye"),
    "js package manager": ("npm", "yarn", "pnpm", "bun"),
    "http client": ("requests", "httpx", "aiohttp", "urllib3", "axios", "fetch"),
    "test runner": ("pytest", "unittest", "nose", "jest", "vitest", "mocha"),
    "python formatter": ("black", "yapf", "autopep8", "ruff format"),
    "python linter": ("flake8", "pylint", "ruff"),
    "type checker": ("mypy", "pyright", "pyre"),
    "web framework": ("flask", "django", "fastapi", "starlette", "express", "next.js"),
    "database": ("sqlite", "postgres", "postgresql", "mysql", "mongodb", "redis"),
    "cli library": ("argparse", "click", "typer"),
    "dataframe library": ("pandas", "polars"),
    "js language": ("javascript", "typescript"),
    "scheduler": ("cron", "apscheduler", "celery", "systemd timers"),
    "bundler": ("webpack", "vite", "esbuild", "rollup", "parcel"),
}
_TOOL_OF = {tool: kind for kind, tools in TOOL_KINDS.items() for tool in tools}
_TOOL_RE = re.compile(
    r"(?<![\w.-])("
    + "|".join(re.escape(t) for t in sorted(_TOOL_OF, key=len, reverse=True))
    + r")(?![\w-])"
)
_NEGATED = re.compile(
    r"(?:\bnot|\bnever|\bno longer|\bdon'?t|\bdo not|\bavoid|\bdrop|\bstop using|\binstead of|"
    r"\brather than|\bover|\breplace|\bremove|\bwithout)\s+(?:use\s+|using\s+)?(?:the\s+)?$"
)
# a negation that governs the instruction ("never use", "don't add"), not "even if you don't need"
_POLARITY_NEG = re.compile(
    r"\b(?:never|avoid|no longer|stop|(?:don'?t|do not)(?: ever)? (?:use|add|include|import|write|"
    r"run|call|commit|push|put|install|rely|create|make|leave|edit|change|touch))\b"
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][a-zA-Z0-9]+(?:\s[A-Z][a-zA-Z0-9]+)*)")
_FRAME = frozenset(
    re.findall(
        r"\S+",
        "always never now going forward moving from on want need like make sure ensure remember "
        "using use keep note also important please don't dont i'd i'm we're",
    )
)


def first_kind_at(norm: str) -> int | None:
    """Where the first mention of a kind of name starts in `norm`, or None."""
    starts = [m.start() for _, rx in _KIND_RE if (m := rx.search(norm))]
    return min(starts) if starts else None


_TOPIC = re.compile(
    r"(?:^|[.,;:]\s*)(?:and\s+|so\s+|now\s+)?(?:for|when naming|when it comes to|regarding|as for|"
    r"with|(?:any time|whenever|when) (?:you(?:'re| are) )?(?:naming|defining|writing|creating))\s+"
    r"(?:your\s+|the\s+|all\s+|our\s+|an?\s+)?"
)


_CLAUSE_CUT = re.compile(r",? and |; |, but |\. ")


def kind_of_value(norm: str, at: int) -> str | None:
    """The kind of name a value at `at` is for. The kind named just before it ("start all
    function argument names with") when it refines the clause's topic or there is none; else the
    topic ("for method names, end them with ..."); else None."""
    clause = _CLAUSE_CUT.split(norm[:at])[-1]
    topic = None
    for m in _TOPIC.finditer(clause):
        ahead = clause[m.end() : m.end() + 40]
        if first_kind_at(ahead) == 0:
            topic = first_kind(ahead)
            break
    best: tuple[int, int, str] | None = None
    for order, (kind, rx) in enumerate(_KIND_RE):
        for m in rx.finditer(clause):
            key = (m.start(), -order)  # later start wins; at a tie the longer kind
            if best is None or key > best[:2]:
                best = (*key, kind)
    nearest = best[2] if best else None
    if topic and nearest and not nearest.startswith(topic):
        return topic
    return nearest or topic


def has_aspect(norm: str) -> bool:
    """Whether `norm` says how names are shaped (start/end/prefix/suffix/case/include)."""
    return any(rx.search(norm) for _, rx in _ASPECTS)


def is_naming_rule(norm: str) -> bool:
    """Whether `norm` shapes some kind of names, value or not ("include a digit in class names")."""
    return bool(_NAMES.search(norm)) and first_kind(norm) is not None and has_aspect(norm)


def has_naming_shape(norm: str) -> bool:
    """Whether `norm` shapes names, even without saying which ("include a digit in the names")."""
    return bool(_NAMES.search(norm)) and has_aspect(norm)


def first_kind(norm: str) -> str | None:
    """The kind of name mentioned first ("function argument" wins over "function" at a tie)."""
    best: tuple[int, int, str] | None = None
    for order, (kind, rx) in enumerate(_KIND_RE):
        m = rx.search(norm)
        if m and (best is None or (m.start(), order) < best[:2]):
            best = (m.start(), order, kind)
    return best[2] if best else None


_FRAME_TOKENS = tokens(" ".join(_FRAME))


_UNDERSCORE_THEN = re.compile(r"\bunderscore,? (?:followed by|and then) (?:the letters? |an? )?$")
_THEN_UNDERSCORE = re.compile(r"'?\s*followed by an? underscore")


def naming_value(norm: str) -> str | None:
    """The new value of a naming rule: the first quoted literal that is not the old one
    ("... with 'b_' instead of 'a_'", "change 'a_' to 'b_'")."""
    for m in _LITERAL.finditer(norm):
        before = norm[max(0, m.start() - 40) : m.start()]
        if _OLD_VALUE.search(before[-24:]):
            continue
        value = (m.group(1) or m.group(2)).strip(".,;:!?")
        if _UNDERSCORE_THEN.search(before):
            value = "_" + value  # "end them with an underscore followed by 'md'" -> '_md'
        elif _THEN_UNDERSCORE.match(norm, m.end()):
            value += "_"
        return value
    return None


_OLD_VALUE = re.compile(
    r"(?:instead of|rather than|\bnot|no longer|\bfrom|replac\w*|previously|used to|\bold|"
    r"\bwas|\bover)\s+(?:the\s+|an?\s+|using\s+)?(?:prefix\s+|suffix\s+)?$"
)


def naming_subject(norm: str) -> tuple[str, str] | None:
    """("method names prefix", "md_") for an identifier convention, else None.

    The value's shape decides prefix or suffix where it can ('md_' starts a name, '_md' ends
    one); otherwise the aspect word nearest before the value ("start ending ... with '_q'")."""
    value = naming_value(norm)
    affix = value is not None and (value.startswith("_") or value.endswith("_"))
    if not (affix or _NAMES.search(norm)):
        return None
    kind = first_kind(norm)
    if kind is None:
        return None
    if value is not None:
        kind = kind_of_value(norm, norm.find(value)) or kind
    m = _CASE_VALUE.search(norm)
    if m and _ASPECTS[2][1].search(norm) and not _LITERAL.search(norm):
        return f"{kind} names case", m.group(0).replace(" ", "")
    if value is None:
        return None
    if value.endswith("_") and not value.startswith("_"):
        return f"{kind} names prefix", value
    if value.startswith("_") and not value.endswith("_"):
        return f"{kind} names suffix", value
    at = norm.find(value)
    best: tuple[int, str] | None = None
    for aspect, rx in _ASPECTS:
        for hit in rx.finditer(norm):
            distance = at - hit.start() if hit.start() < at else 1000 + hit.start() - at
            if best is None or distance < best[0]:
                best = (distance, aspect)
    if best is None or best[1] == "case":
        return None
    return f"{kind} names {best[1]}", value


_CHOICE = re.compile(
    r"\b(?:use|using|prefer|switch(?:ing)? (?:over )?to|go(?:ing)? with|migrat\w* to|move to|"
    r"adopt|stick with|let'?s do|replace \S+ with|over|not|instead of|rather than|drop|avoid|"
    r"stop using)\s+(?:the\s+|a\s+)?$"
)


_MOVED = re.compile(rf"\bfrom '?{_TOOL_RE.pattern}'? to '?{_TOOL_RE.pattern}")
_ACCEPTED = re.compile(r"'?\s+(?:is|sounds|looks|it is)\s+(?:fine|good|great|ok)\b")


def tool_choice(norm: str) -> tuple[str, str] | None:
    """(kind, tool) when `norm` chooses or rejects ("!pip") one of interchangeable tools."""
    return _tool(norm)


def _tool(norm: str) -> tuple[str, str] | None:
    """A choice between interchangeable tools: the first one chosen ("use uv, not pip" -> uv),
    else the first one rejected (!pip). A tool merely mentioned ("`uv run pytest`") is no choice.
    "from X to Y" chooses Y."""
    moved = _MOVED.search(norm)
    if moved and _TOOL_OF[moved.group(1)] == _TOOL_OF[moved.group(2)]:
        return _TOOL_OF[moved.group(2)], moved.group(2)
    negated = None
    for m in _TOOL_RE.finditer(norm):
        tool = m.group(1)
        before = norm[max(0, m.start() - 24) : m.start()]
        if _NEGATED.search(before):
            negated = negated or tool
        elif _CHOICE.search(before) or _ACCEPTED.match(norm[m.end() : m.end() + 24]):
            return _TOOL_OF[tool], tool
    if negated:
        return _TOOL_OF[negated], "!" + negated
    return None


_EXCLUSIVE = re.compile(
    r"\b(?:use|using|prefer|switch|go with|stick with|set|call|format|choose|pick|deploy|host|"
    r"name|run)\b"
)


def _generic(text: str, norm: str) -> tuple[str, str] | None:
    """Subject: the statement's content words without its value. A capitalised product name
    after a choosing verb is an exclusive value ("use Zoom for calls" replaces "use Skype for
    calls"); quoted code names stay part of the subject ("add the '@retry' decorator"), so different
    additions do not replace each other. Polarity (always/never) is always part of the value."""
    value = None
    rest = norm
    caps = [m.group(1) for m in _CAPITALISED.finditer(text.lstrip("\"'([ "))]
    caps = [c for c in caps if c.lower() not in STOPWORDS and c.lower() not in _FRAME]
    if caps and not _LITERAL.search(norm) and _EXCLUSIVE.search(norm.replace(caps[0].lower(), " ")):
        value = caps[0].lower()  # a product chosen for a purpose: "use Zoom for video calls"
        rest = norm.replace(value, " ")
    polarity = "-" if _POLARITY_NEG.search(norm) else "+"
    words = sorted(tokens(rest) - _FRAME_TOKENS)
    if len(words) < 2:
        return None
    if value is None:
        return " ".join(words), polarity
    return " ".join(words), (value if polarity == "+" else "!" + value)


def subject_value(text: str) -> tuple[str, str] | None:
    """What `text` is about and what it says about it, or None when no rule applies."""
    norm = normalise(text)
    return naming_subject(norm) or _tool(norm) or _generic(text, norm)


def conflicts(value_a: str, value_b: str) -> bool:
    """Whether two values of one subject contradict: `X` vs `Y`, `X` vs `!X`, `+` vs `-`."""
    if value_a == value_b:
        return False
    neg_a, neg_b = value_a.startswith("!"), value_b.startswith("!")
    if neg_a and neg_b:
        return False  # avoiding two things is consistent
    if neg_a != neg_b:
        return value_a.lstrip("!") == value_b.lstrip("!")
    return True
