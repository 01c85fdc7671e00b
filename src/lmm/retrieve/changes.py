"""Current over stale: a later decision that changed what an older line of a brief says.

"Let's move off chrono entirely to jiff", "Switch the benches to divan", "Rename the binary to
lsl" make older lines about chrono, the benches or the binary's name out of date. When a
question asks about what such a decision changed and its brief shows an older line that still
names the old thing, the decision leads the brief with its date: the agent reads the current
state first and the older lines as history.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from lmm.retrieve import evidence
from lmm.retrieve.search import Hit, cognition_hits, own_name, scope_projects
from lmm.store import reads

if TYPE_CHECKING:
    from lmm.retrieve.synth import Evidence
    from lmm.store.db import Store

MAX_CHANGES = 2  # later decisions put first in one brief
MAX_OLD_WORDS = 3  # what was replaced is named in a few words, not a sentence
MAX_LISTED = 4  # changes listed for a question asking what changed

# a question asking what changed: "list the library swaps", "how has X evolved", "history of X"
_ASKS_CHANGES = re.compile(
    r"\b(swaps?|swapped|switch(?:es|ed)|replace(?:d|ments?)|migrat(?:ed|ions?)|changes|changed"
    r"|evolved?|evolution|history)\b|\bover time\b",
    re.I,
)
_CHANGE_ASKING = frozenset(
    {"swap", "swaps", "swapped", "switches", "switched", "replaced", "replacement", "replacements",
     "migrated", "migration", "migrations", "changes", "changed", "evolve", "evolved", "evolution",
     "history", "time"}
)  # fmt: skip

_OLD = r"(?P<old>[^,;.]+?)"
_NEW = r"(?P<new>[`\w][\w`./:@+-]*)"
_THE = r"(?:the\s+|our\s+|my\s+)?"
# "move off chrono (entirely) to jiff", "replace X with Y", "drop X for Y", "use Y instead of
# X", "X → Y", "rename the parse module to ingest", "switch the benches to divan", "bump MSRV to
# 1.80"
_CHANGES = [
    re.compile(rf"\b(?:move|moving|moved|switch|switching|switched|migrate|migrating|migrated"
               rf"|port|porting|ported|go|going)\s+(?:off|away from|from)\s+{_THE}{_OLD}\s+"
               rf"(?:entirely\s+|completely\s+)?(?:to|onto|over to)\s+{_NEW}", re.I),
    re.compile(rf"\b(?:replace|replacing|replaced|swap|swapping|swapped)\s+{_THE}{_OLD}\s+"
               rf"(?:with|for|by)\s+{_NEW}", re.I),
    re.compile(rf"\b(?:drop|dropping|dropped)\s+{_THE}{_OLD}\s+(?:for|in favou?r of)\s+{_NEW}",
               re.I),
    re.compile(rf"\b(?:use|using)\s+{_NEW}\s+instead of\s+{_THE}{_OLD}(?:$|[,;.])", re.I),
    re.compile(r"(?P<old>`?[\w./:@-]+`?)\s*(?:→|->)\s*(?P<new>`?[\w./:@-]+`?)"),
    re.compile(rf"\b(?:rename|renaming|renamed|switch|switching|switched|move|moving|moved|bump"
               rf"|bumping|bumped|upgrade|upgrading|upgraded)\s+{_THE}{_OLD}\s+to\s+{_NEW}",
               re.I),
]  # fmt: skip


def _decisions(store: Store, project: str | None) -> list[Any]:
    """The active decisions of `project` and the user-wide ones, newest first."""
    rows = reads.rule_rows(store, scope_projects(store, project), ("decision",))
    return sorted(rows, key=lambda r: (r["valid_from"] or "", r["id"]), reverse=True)


@functools.lru_cache(maxsize=8192)
def change_of(text: str) -> tuple[str, str] | None:
    """(what was so before, what is so now) of a decision that changes something, else None;
    remembered: `lmm serve` reads the same decisions for every question."""
    for rx in _CHANGES:
        if (m := rx.search(text)) and len(m["old"].split()) <= MAX_OLD_WORDS:
            return " ".join(m["old"].replace("`", "").split()), m["new"].strip("`,. ")
    return None


def later_changes(
    store: Store, query: str, project: str | None, shown: list[Evidence]
) -> list[Hit]:
    """Decisions of `project` (and user-wide ones) that changed what `query` asks about (it
    names the old thing), newer than a shown line of a turn that still names the old thing and
    not the new one, unless a line as new as the decision names the new one, and not shown
    themselves: newest first, `MAX_CHANGES` at most."""
    lines = [
        (frozenset(re.findall(r"\w+", ev.text.lower())), ev.hit.source.timestamp or "")
        for ev in shown
        if ev.hit.kind == "turn" and ev.hit.source.timestamp
    ]
    if not lines:
        return []
    own = own_name(project)
    asked = _asked(query, own)
    ids = {ev.hit.id for ev in shown if ev.hit.kind == "cognition"}
    found: list[int] = []
    for row in _decisions(store, project):
        since = row["valid_from"] or ""
        change = change_of(row["text"])
        if row["id"] in ids or not since or change is None:
            continue
        old = [t for t in evidence.query_terms(change[0]) if t != own and len(t) > 2]
        new = change[1].lower()
        if not old or not all(_related(t, asked) for t in old):
            continue
        if any(when >= since and new in words for words, when in lines):
            continue  # a shown line already says how it is now
        if any(
            when < since and new not in words and any(evidence.matches(t, words) for t in old)
            for words, when in lines
        ):
            found.append(int(row["id"]))
        if len(found) == MAX_CHANGES:
            break
    return cognition_hits(store, found)


def asks_changes(query: str) -> bool:
    """Whether `query` asks what changed over time rather than how a thing is."""
    return bool(_ASKS_CHANGES.search(query))


def listed_changes(
    store: Store, query: str, project: str | None, shown: list[Evidence]
) -> list[Hit]:
    """For a question asking what changed: the decisions of `project` (and user-wide ones) that
    changed something and are not shown, oldest first, `MAX_LISTED` at most. When the question
    names a topic, only the changes that name it ("how did the port change"); every change when
    none does and something else answers ("list the library swaps"), none when nothing does."""
    own = own_name(project)
    asked = _asked(query, own) - _CHANGE_ASKING
    found: list[tuple[str, int, str, bool]] = []  # (since, id, new, names the asked topic)
    for row in _decisions(store, project):
        if (change := change_of(row["text"])) is None:
            continue
        named = [t for t in evidence.query_terms(row["text"]) if t != own]
        topical = any(_related(t, asked) for t in named)
        found.append((row["valid_from"] or "", int(row["id"]), change[1].lower(), topical))
    if any(f[3] for f in found):
        found = [f for f in found if f[3]]
    elif asked and not shown:
        return []
    found.sort()
    latest = {new: i for _, i, new, _ in found}  # one change stated twice: its latest wording
    shown_ids = {ev.hit.id for ev in shown if ev.hit.kind == "cognition"}
    kept = [i for _, i, new, _ in found if latest[new] == i and i not in shown_ids]
    return cognition_hits(store, kept[-MAX_LISTED:])


def _asked(query: str, own: str | None) -> frozenset[str]:
    """The query's terms, the project's own name left out."""
    return frozenset(t for t in evidence.query_terms(query) if t != own)


def _related(term: str, asked: frozenset[str]) -> bool:
    """Whether `term` and one of the query's terms are forms of one word ("benches" and
    "benchmarks", "parse" and "parsing")."""
    return evidence.matches(term, asked) or any(
        evidence.matches(a, frozenset([term])) for a in asked
    )


def with_changes(
    changes: list[Hit], shown: list[Evidence], *, history: bool = False
) -> list[Evidence]:
    """`changes` first, then `shown`, numbered from 1. With `history` (a question asking what
    changed) the shown decisions that changed something join them, all oldest first."""
    from lmm.retrieve.synth import lead_with

    if history:
        moved = [ev for ev in shown if ev.hit.kind == "cognition" and change_of(ev.hit.text)]
        shown = [ev for ev in shown if ev not in moved]
        changes = sorted(changes + [ev.hit for ev in moved], key=lambda h: h.source.timestamp or "")
    return lead_with(changes, shown)
