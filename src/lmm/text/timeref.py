"""Relative time expressions in a turn, resolved against the moment the turn was said."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]  # fmt: skip
_NUMBERS: dict[str, int | str] = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "a few": "a few", "few": "a few",
    "several": "several",
}  # fmt: skip
_SEASONS = {
    "spring": (3, 5),
    "summer": (6, 8),
    "fall": (9, 11),
    "autumn": (9, 11),
    "winter": (12, 2),
}
_COUNT = (
    r"(?P<n>\d+|a couple of|a few|few|several|an?|one|two|three|four|five|six|seven|eight|nine|ten)"
)
_UNIT = r"(?P<unit>day|week|weekend|month|year)s?"
_DAY = r"(?P<day>monday|tuesday|wednesday|thursday|friday|saturday|sunday)"


def human(d: date) -> str:
    """date(2023, 5, 8) -> '8 May 2023'."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def human_date(timestamp: str) -> str:
    """'2023-05-08T13:56:00.000Z' -> '8 May 2023' (what people write in questions); an
    unreadable timestamp gives its first 10 characters."""
    day = parse_day(timestamp)
    return human(day) if day else timestamp[:10]


def parse_day(timestamp: str | None) -> date | None:
    """The calendar day of an ISO timestamp ('2023-05-08T13:56:00Z' -> 2023-05-08), or None."""
    if not timestamp:
        return None
    try:
        return date(int(timestamp[:4]), int(timestamp[5:7]), int(timestamp[8:10]))
    except (ValueError, IndexError):
        return None


def _month(d: date, delta: int) -> str:
    index = d.year * 12 + d.month - 1 + delta
    return f"{MONTHS[index % 12]} {index // 12}"


def _season(d: date, name: str, which: str) -> str:
    """'last summer' said in May 2023 -> 'summer 2022', said in October 2023 -> 'summer 2023';
    winter spans two years, so it is told relative to the date."""
    if name == "winter":
        side = {"last": "before", "next": "after"}.get(which)
        return f"the winter {side} {human(d)}" if side else f"the winter of {human(d)}"
    first, last = _SEASONS[name]
    if which == "last":
        year = d.year if d.month > last else d.year - 1
    elif which == "next":
        year = d.year if d.month < first else d.year + 1
    else:
        year = d.year
    return f"{name} {year}"


def _count(raw: str) -> int | str:
    raw = raw.lower()
    return int(raw) if raw.isdigit() else _NUMBERS.get(raw, raw)


def _ago(d: date, n: int | str, unit: str, after: bool) -> str:
    """'two weeks ago' -> 'two weeks before 8 May 2023'; '3 years ago' -> '2020'."""
    unit = unit.lower()
    if isinstance(n, int) and unit == "day":
        return human(d + timedelta(days=n if after else -n))
    if isinstance(n, int) and unit == "year":
        return str(d.year + (n if after else -n))
    if isinstance(n, int) and unit == "month":
        return _month(d, n if after else -n)
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    amount = words.get(n, str(n)) if isinstance(n, int) else n
    plural = "" if n == 1 else "s"
    return f"{amount} {unit}{plural} {'after' if after else 'before'} {human(d)}"


Rule = tuple[re.Pattern[str], Callable[[re.Match[str], date], str]]

_RULES: list[Rule] = [
    (re.compile(r"\bthe day before yesterday\b", re.I), lambda m, d: human(d - timedelta(2))),
    (re.compile(r"\bthe day after tomorrow\b", re.I), lambda m, d: human(d + timedelta(2))),
    (re.compile(r"\byesterday\b", re.I), lambda m, d: human(d - timedelta(1))),
    (
        re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b", re.I),
        lambda m, d: human(d),
    ),
    (re.compile(r"\btomorrow\b", re.I), lambda m, d: human(d + timedelta(1))),
    (
        re.compile(rf"\b(?:last|this past) {_DAY}\b", re.I),
        lambda m, d: f"the {m['day'].capitalize()} before {human(d)}",
    ),
    (
        re.compile(rf"\bnext {_DAY}\b", re.I),
        lambda m, d: f"the {m['day'].capitalize()} after {human(d)}",
    ),
    (
        re.compile(r"\b(?:last|this past|past) (?P<u>week|weekend)\b", re.I),
        lambda m, d: f"the {m['u'].lower()} before {human(d)}",
    ),
    (
        re.compile(r"\bnext (?P<u>week|weekend)\b", re.I),
        lambda m, d: f"the {m['u'].lower()} after {human(d)}",
    ),
    (
        re.compile(r"\bthis (?P<u>week|weekend)\b", re.I),
        lambda m, d: f"the {m['u'].lower()} of {human(d)}",
    ),
    (re.compile(r"\blast month\b", re.I), lambda m, d: _month(d, -1)),
    (re.compile(r"\bnext month\b", re.I), lambda m, d: _month(d, 1)),
    (re.compile(r"\bthis month\b", re.I), lambda m, d: _month(d, 0)),
    (re.compile(r"\blast year\b", re.I), lambda m, d: str(d.year - 1)),
    (re.compile(r"\bnext year\b", re.I), lambda m, d: str(d.year + 1)),
    (re.compile(r"\bthis year\b", re.I), lambda m, d: str(d.year)),
    (
        re.compile(r"\b(?P<w>last|next|this) (?P<s>spring|summer|fall|autumn|winter)\b", re.I),
        lambda m, d: _season(d, m["s"].lower(), m["w"].lower()),
    ),
    (
        re.compile(rf"\b{_COUNT} {_UNIT} ago\b", re.I),
        lambda m, d: _ago(d, _count(m["n"]), m["unit"], after=False),
    ),
    (
        re.compile(rf"\bin {_COUNT} {_UNIT}\b", re.I),
        lambda m, d: _ago(d, _count(m["n"]), m["unit"], after=True),
    ),
]


def resolve(text: str, when: date) -> list[tuple[int, int, str]]:
    """(start, end, resolved) for each known relative expression in `text`, left to right;
    where two overlap, the one that starts first (then the longer) wins."""
    found = [(m.start(), m.end(), fn(m, when)) for rx, fn in _RULES for m in rx.finditer(text)]
    found.sort(key=lambda f: (f[0], -(f[1] - f[0])))
    kept: list[tuple[int, int, str]] = []
    for start, end, value in found:
        if not kept or start >= kept[-1][1]:
            kept.append((start, end, value))
    return kept


def annotate(text: str, timestamp: str | None) -> str:
    """`text` with "[resolved]" after each relative time expression (see the module docstring);
    unchanged when the timestamp is missing or unreadable."""
    when = parse_day(timestamp)
    if when is None:
        return text
    out, last = [], 0
    for _, end, value in resolve(text, when):
        out += [text[last:end], f" [{value}]"]
        last = end
    return "".join(out) + text[last:]


_SINCE = re.compile(r"(\d+)\s*(d|day|days|w|week|weeks|m|month|months|h|hour|hours)(?:\s+ago)?")


def parse_since(text: str, now: date | None = None) -> str:
    """A `--since` value as an ISO date: `2026-01-31` (or a full ISO time, kept), `today`,
    `yesterday`, `7d`, `2 weeks`, `3 months ago`. LmmError, naming the forms, for anything else."""
    from datetime import UTC, datetime

    from lmm.errors import LmmError

    raw = text.strip().lower()
    today = now or datetime.now(UTC).date()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[t ][\d:.]+z?)?", raw):
        try:
            date.fromisoformat(raw[:10])
        except ValueError:
            pass
        else:
            return text.strip()
    if raw in ("today", "yesterday"):
        return (today - timedelta(days=raw == "yesterday")).isoformat()
    if m := _SINCE.fullmatch(raw):
        n, unit = int(m.group(1)), m.group(2)[0]
        days = {"d": n, "w": 7 * n, "m": 30 * n, "h": 0}[unit]
        return (today - timedelta(days=days)).isoformat()
    raise LmmError(
        f"--since {text!r} is not a date: use 2026-01-31, today, yesterday, 7d, 2 weeks or "
        "3 months ago"
    )
