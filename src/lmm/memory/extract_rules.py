"""The rule-based extractor: offline, deterministic, thousands of turns per second."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lmm.memory import toolruns
from lmm.memory.cues import ORDER, REQUEST, classify, for_all_work
from lmm.memory.seam import Candidate, SessionView
from lmm.records import Turn
from lmm.store.cognitions import INSTRUCTIVE
from lmm.text import consolidate

# ---- user text -> sentences

_WRAPPERS = re.compile(
    r"<(ide_opened_file|ide_selection|system-reminder|command-message|command-args)>.*?</\1>",
    re.S,
)
_SKIP_PREFIXES = ("<command-name>", "<local-command-", "<bash-", "[Request interrupted", "Caveat:")
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.S)
_SENTENCE = re.compile(r"[^\n]*?(?:[.!?](?=\s|$)|$)", re.M)
_WORDS = re.compile(r"[A-Za-z][A-Za-z'_-]*")
_LIT = re.compile(r"['\"`‘“][^'\"`’”\s]+['\"`’”]")  # a quoted name or value


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of `text`, code blocks and log-like lines left out."""
    masked = _CODE_BLOCK.sub(lambda m: " " * len(m.group(0)), text)
    spans = []
    for m in _SENTENCE.finditer(masked):
        start, end = m.start(), m.end()
        chunk = masked[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        start += lead
        chunk = chunk.strip()
        if not chunk or len(_WORDS.findall(chunk)) < 3 or len(chunk) > 400:
            continue
        line = masked[masked.rfind("\n", 0, start) + 1 :]
        if re.match(r"^(?:[\s>|$#+-]|\d+[:.)→]|[A-Za-z_]+\()", line[:4]):
            continue  # quoted output, diff or code line
        spans.append((start, end))
    return spans


PASTED_AFTER = 2500  # a user message longer than this is mostly pasted (logs, docs) ...
TYPED_HEAD = 1000  # ... and only its head is read as the user's own words


def user_text(turn: Turn) -> str | None:
    """The words the user typed in `turn`, or None when it is not a user message."""
    if turn.role != "user" or turn.kind != "message" or turn.is_sidechain or turn.agent_id:
        return None
    text = _WRAPPERS.sub(" ", turn.text).strip()
    if text.startswith(_SKIP_PREFIXES):
        return None
    return text[:TYPED_HEAD] if len(text) > PASTED_AFTER else text


# ---- context: what a sentence points back to

_ANAPHOR = re.compile(
    r"\b(?:this|these|those)\b(?!\s+(?:repo|project|folder|file|codebase|directory|session|"
    r"branch|machine|box|team|company|code|way|time|week|year))|\bthat(?:'s| is| one)\b|"
    r"\b(?:it|them|they|the same)\b",
    re.I,
)
# "that goes for all my repos", "the same applies to tests": the rule is the sentence before
_EXTENDS = re.compile(
    r"^\W*(?:(?:and|also|oh|btw),?\s+)*(?:that|this|the same|same)(?: rule)? "
    r"(?:goes|applies|holds)\b",
    re.I,
)
_CONDITION = re.compile(
    r"^\W*(?:when|whenever|if|as|while|once|before|after|for|because|since|every time|each time)\b",
    re.I,
)
_LEAD_IN = re.compile(
    r"^\W*(?:(?:and|also|so|ok|okay|btw|now|please)\W+)*(?:from now on|going forward|moving "
    r"forward|henceforth|from here on|in (?:the )?future|for the future)?\W*",
    re.I,
)
_CLAUSE_END = re.compile(r"\s(?:—|–|-)\s|[,;:]\s")
_POINTER = re.compile(
    r"\b(?:this|these|those|the same) (?!repo|project|folder|file|codebase|directory|"
    r"session|branch|machine|box|team|company|code\b|way|time|week|year)[a-z]{3,}|"
    r"\b(?:in|to|for|with|into|on|of|include|add|use|start|end|apply) (?:them|it)\b",
    re.I,
)


def _dangling(sentence: str) -> bool:
    """A naming rule that does not say for which names ("Start them with 'i_'", "Also,
    include a single digit in the name")."""
    norm = consolidate.normalise(sentence)
    if consolidate.has_naming_shape(norm) and consolidate.first_kind(norm) is None:
        return True
    value = consolidate.naming_value(norm)
    affix = value is not None and (value.startswith("_") or value.endswith("_"))
    return affix and consolidate.naming_subject(norm) is None


def _needs_context(sentence: str) -> bool:
    """A sentence that cannot stand alone: it names what it is about only by pointing back, or
    gives a naming rule without saying which names."""
    norm = consolidate.normalise(sentence)
    if consolidate.naming_subject(norm) is not None:
        return False  # complete in itself
    value = consolidate.naming_value(norm)
    if value and (value.startswith("_") or value.endswith("_")):
        return True  # a prefix or suffix, but for which names?
    if _EXTENDS.match(sentence):
        return True
    if ORDER.search(norm):
        return False  # "it's crucial that you ...": the "it" points nowhere
    # "output has to be deterministic, I snapshot-test this stuff": a pointer after a first
    # clause that is a rule by itself points inside the sentence
    cut = _CLAUSE_END.search(sentence)
    condition = _CONDITION.match(sentence)  # "Whenever you work on a method, add this ..."
    first = sentence[: cut.start()] if cut is not None else ""
    said = len(_WORDS.findall(_LEAD_IN.sub("", first))) >= 2  # "From now on, ...": a lead-in
    if said and not condition and classify(first) is not None:
        sentence = first
    head = " ".join(_WORDS.findall(sentence)[:14])
    if _POINTER.search(head):
        return True  # "add this decorator", "include the string 'chx' in them"
    if _LIT.search(sentence):
        return False  # it names its own object ("always import the 'hashlib' module")
    m = _ANAPHOR.search(sentence)
    return m is not None and len(_WORDS.findall(sentence[: m.start()])) <= 12


_JOIN = re.compile(r",? and |; |, while |, then ")
_RULE_VERB = re.compile(r"\b(?:include|add|use|import|annotate|start|end|prefix|suffix)\b")


def _rule_like(clause: str) -> bool:
    low = consolidate.normalise(clause)
    if consolidate.naming_value(low) or consolidate.has_naming_shape(low):
        return True
    return consolidate.first_kind(low) is not None and bool(_RULE_VERB.search(low))


def _clauses(text: str, start: int, end: int) -> list[tuple[int, int, str | None]]:
    """Split a sentence holding several rules ("start X with 'a' and end them with 'b'", "use
    annotations for functions, and make sure attribute names end with '_q'") into (start, end,
    text) clauses. A clause without its own verb borrows the first clause's ("Always start your
    method names with 'b'"); one without a kind of name borrows that ("end function names with
    'b'"). Text None: the span itself."""
    piece = text[start:end]
    bounds: list[tuple[int, int]] = []
    last = 0
    for m in _JOIN.finditer(piece):
        right = piece[m.end() :].lower()
        full = consolidate.has_aspect(right) or consolidate.first_kind(right) is not None
        if full and _rule_like(piece[last : m.start()]) and _rule_like(right):
            bounds.append((last, m.start()))
            last = m.end()
    if not bounds:
        return [(start, end, None)]
    bounds.append((last, len(piece)))
    first = piece[bounds[0][0] : bounds[0][1]]
    low_first = first.lower()
    value = consolidate.naming_value(low_first)
    kind = consolidate.kind_of_value(low_first, low_first.find(value)) if value else None
    kind = kind or consolidate.first_kind(low_first)
    lead = _lead(first, kind)
    out: list[tuple[int, int, str | None]] = []
    for n, (a, b) in enumerate(bounds):
        clause = piece[a:b]
        low = clause.lower()
        borrowed = None
        if n and lead and not consolidate.has_aspect(low):
            borrowed = lead + clause  # "start your " + "method names with 'b'"
        elif n and kind and consolidate.first_kind(low) is None:
            named = f"{kind} names"  # "end them with '_d'" -> "end function names with '_d'"
            borrowed, k = re.subn(r"\b(?:them|it|they|the names?)\b", named, clause, count=1)
            borrowed = borrowed if k else f"{clause} for {named}"
        if consolidate.naming_value((borrowed or clause).lower()) is None and n + 1 < len(bounds):
            # "start method names and variable names with 'x_'": both get 'x_'
            nxt = piece[bounds[n + 1][0] : bounds[n + 1][1]].lower()
            shared = consolidate.naming_value(nxt)
            bare = not consolidate.has_aspect(nxt)
            whole = consolidate.naming_subject(low) is not None  # "CamelCase for class names"
            if (
                shared
                and bare
                and not whole
                and consolidate.has_naming_shape(low)
                and low.rstrip(" .").endswith(("name", "names"))
            ):
                borrowed = f"{borrowed or clause} with '{shared}'"
        out.append((start, end, borrowed) if borrowed else (start + a, start + b, None))
    return out


def _lead(clause: str, kind: str | None) -> str:
    """The words of a naming rule before its kind of name, from its last clause boundary:
    "..., but we always start function names with 'x_'" -> "we always start "."""
    if kind is None:
        return ""
    low = clause.lower()
    value = consolidate.naming_value(low)
    end = low.find(value) if value else len(low)
    at = max((m.start() for m in re.finditer(kind.split()[0], low[:end])), default=-1)
    if at < 0:
        return ""
    cut = max((m.end() for m in re.finditer(r", but |, and |; |: |, ", clause[:at])), default=0)
    return clause[cut:at]


_LEADING_PRONOUN = re.compile(r"^\W*(?:\w+,\s+)?(?:they|it|this|these|that|those)\b", re.I)


def _antecedent(text: str, spans: list[tuple[int, int]], i: int, sentence: str) -> int:
    """Start of the sentence that `sentence` (number `i`) points back to: the nearest of the
    three before it that names the noun after "this/that" ("this decorator"), else the one
    before it, going further back while that one starts with a pronoun too."""
    m = re.search(r"\b(?:this|that|these|those|the same)\s+([a-z]{3,})", sentence, re.I)
    if m:
        noun = m.group(1).lower().rstrip("s")
        named = [j for j in range(i - 1, max(-1, i - 4), -1) if noun in _span(text, spans[j])]
        # the sentence that names it ("the '@retry' decorator") beats one that talks about it
        for j in sorted(named, key=lambda j: (not _LIT.search(_span(text, spans[j])), -j)):
            return spans[j][0]
    j = i - 1
    while j > 0 and j > i - 3 and _LEADING_PRONOUN.match(text[spans[j][0] : spans[j][1]]):
        j -= 1
    if REQUEST.match(text[spans[j][0] : spans[j][1]]):
        return spans[i][0]  # a request for a task now is no context for a standing rule
    return spans[j][0]


_GENERIC = consolidate.tokens(
    "code new convention conventions rule rules guideline guidelines standard standards practice "
    "style update instruction please going forward now so this these those that it them they use "
    "follow apply keep mind remember make sure always incorporate implement"
)


def _adds(sentence: str, before: str) -> bool:
    """Whether `sentence` says more than the text before it that it points back to."""
    if _LIT.search(sentence):
        return True
    return bool(consolidate.tokens(sentence) - _GENERIC - consolidate.tokens(before))


def _span(text: str, span: tuple[int, int]) -> str:
    return text[span[0] : span[1]].lower()


def _name_the_kind(text: str, spans: list[tuple[int, int]], i: int, sentence: str) -> str | None:
    """A naming rule that says "the name"/"them" instead of which names, rewritten with the kind
    named in one of the three sentences before ("include a single digit in the name" ->
    "... in the function argument names")."""
    low = consolidate.normalise(sentence)
    if consolidate.first_kind(low) is not None:
        return None
    value = consolidate.naming_value(low)
    affix = value is not None and (value.startswith("_") or value.endswith("_"))
    if not (affix or consolidate.has_naming_shape(low)):
        return None
    for j in range(i - 1, max(-1, i - 4), -1):
        before = _span(text, spans[j])
        kind = consolidate.kind_of_value(before, len(before))
        if kind:
            named = f"{kind} names"
            out, k = re.subn(r"\b(?:the names?|them|it|they)\b", named, sentence, count=1)
            return out if k else f"{sentence.rstrip('.')} for {named}."
    return None


def statements(turn: Turn, text: str, salience_boost: float = 0.0) -> Iterator[Candidate]:
    """Candidates from the sentences of one user-authored text (grounded in `turn`)."""
    spans = sentences(text)
    said_at: set[int] = set()  # sentences that produced a candidate
    for i, (s0, s1) in enumerate(spans):
        for n, (c0, c1, borrowed) in enumerate(_clauses(text, s0, s1)):
            sentence = borrowed or text[c0:c1].strip()
            found = classify(sentence)
            if found is None and not _dangling(sentence):
                continue
            start = c0
            if i > 0 and n == 0 and (renamed := _name_the_kind(text, spans, i, sentence)):
                start = _antecedent(text, spans, i, sentence)
                borrowed = renamed
                found = classify(renamed) or found
            elif i > 0 and n == 0 and _needs_context(sentence):
                start = _antecedent(text, spans, i, sentence)
                if start in said_at and not _adds(sentence, text[start:c0]):
                    continue  # "use this new convention": the rule before, said again
                found = classify(text[start:c1]) or found
            if found is None:
                continue
            said_at.add(s0)
            category, salience = found
            quote = text[start:c1].strip()
            said = borrowed if borrowed else quote
            yield Candidate(
                category=category,
                text=_tidy(said),
                turn_key=turn.key,
                quote=quote,
                keywords=sorted(consolidate.tokens(said))[:12],
                salience=min(1.0, salience + salience_boost),
                user_wide=category in INSTRUCTIVE
                and for_all_work(said, instruction=category == "preference"),
            )
            extra = _second_rule(said)
            if extra:
                yield Candidate(category, extra, turn.key, quote, salience=salience)


def _second_rule(said: str) -> str | None:
    """A prefix or suffix rule that also asks for a digit ("start with 'm_' followed by a single
    digit") holds two rules; the digit one outlives a later change of the prefix."""
    low = consolidate.normalise(said)
    named = consolidate.naming_subject(low)
    if named is None or not re.search(r"\b(?:a|one) (?:single )?(?:digit|number)\b", low):
        return None
    kind = named[0].rsplit(" names ", 1)[0]
    return f"Include a single digit in {kind} names."


def _tidy(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^(?:(?:ok|okay|so|well|also|and|but|oh|great|good|perfect|now|firstly|"
                  r"secondly|additionally|lastly),?\s+)+", "", text, flags=re.I)  # fmt: skip
    text = re.sub(r"^(?:\d{1,2}[.)]|[-*•])\s+", "", text)  # a list item's marker
    return text[:1].upper() + text[1:]


# ---- the extractor


class RuleExtractor:
    """Rules over user sentences and tool runs; see the module docstring."""

    name = "rules"

    def extract(self, session: SessionView) -> list[Candidate]:
        out: list[Candidate] = []
        for turn in session.turns:
            text = user_text(turn)
            if text is not None:
                out.extend(statements(turn, text))
            elif turn.kind == "tool_result" and (reason := toolruns.rejection_reason(turn)):
                out.extend(_correction(turn, reason))
        out.extend(toolruns.candidates(session))
        return _unique(out)


def _correction(turn: Turn, reason: str) -> list[Candidate]:
    """The reason the user gave when rejecting a tool call: a correction of what the agent was
    about to do, so a preference even when it is as short as "use pnpm"."""
    found = list(statements(turn, reason))
    if found or len(reason) > 300:
        return found
    return [
        Candidate(
            category="preference",
            text=_tidy(reason),
            turn_key=turn.key,
            quote=reason,
            keywords=sorted(consolidate.tokens(reason))[:12],
            salience=0.6,
        )
    ]


def _unique(found: list[Candidate]) -> list[Candidate]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for c in found:
        key = (c.category, consolidate.normalise(c.text), c.turn_key)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out
