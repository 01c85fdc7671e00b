"""What a request for work sets out to do, and which of the user's standing rules govern it."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmm.retrieve import evidence, scope
from lmm.retrieve.search import Hit, cognition_hits, scope_projects
from lmm.store import reads
from lmm.text import consolidate

if TYPE_CHECKING:
    from lmm.store.db import Store

RULES = 2  # rules added to a prompt's brief at most
KINDS = ("preference", "lesson", "gotcha", "workflow")


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.I)


# Each activity and the words that name it, as regular expressions (whole words; a line that
# starts with spaces goes on the one before): in a rule (`RULE`), and in a request for work
# (`ASK`: the same unless given). Tools are named where they are the activity's usual word.
_RULE_WORDS = r"""
commit: commit(?:s|ted|ting)? | amend | squash | rebas(?:e|ing) | pull requests? | PRs? |
    merge requests?
branch: branch(?:es|ing)? | checkout -b | switch -c
release: releas(?:e|es|ed|ing) | tag(?:s|ged|ging)? | changelog | publish | version bump |
    semver | goreleaser | cargo-dist
dependency: dependenc(?:y|ies) | deps? | packages? | librar(?:y|ies) | crates? | lockfile |
    lock file | requirements.txt | install(?:s|ed|ing)? | pip | uv add | poetry add | npm | pnpm |
    yarn | cargo add | go get | vendor
test: tests? | testing | pytest | specs? | e2e | unit tests? | integration tests? | fixtures? |
    conftest(?:.py)? | mock(?:s|ed|ing)? | coverage | vitest | jest | playwright | nextest |
    go test
database: migrat(?:e|es|ed|ion|ions|ing) | alembic | goose | schema | index(?:es)? | columns? |
    tables? | database | db | sql | postgres(?:ql)? | sqlite | queries | query
endpoint: endpoints? | routes? | routers? | handlers? | api |
    (?:GET|POST|PUT|PATCH|DELETE) /[^\s]*
logging: logging | loggers? | log (?:lines?|levels?|messages?|every|each|all) | structlog | slog |
    zerolog | tracing | log as json
format: lint(?:s|ing|er)? | format(?:ting|ter)? | fmt | ruff | black | eslint | prettier |
    clippy | mypy | pyright | type ?check(?:ing|er)?
build: build(?:s|ing)? | compil(?:e|es|ing) | bundl(?:e|es|ing)
deploy: deploy(?:s|ed|ing|ment)? | staging | production | prod | docker | compose | kubernetes |
    k8s | fly | helm | containers?
ui: components? | pages? | css | styling | stylesheets? | tailwind | tsx | jsx | react |
    layouts? | buttons? | forms? | ui
docs: docs? | documentation | readme | docstrings? | comments?
errors: error handling | exceptions? | timeouts? | retr(?:y|ies) | panic(?:s|king)? | unwrap |
    rais(?:e|es|ing) | thiserror | anyhow
time: dates | datetimes? | timestamps? | time ?zones? | tz | utc | today | tomorrow | calendar |
    dst | daylight saving
cli: flags? | cli | command[- ]line | subcommands?
config: config | configuration | settings? | env | env vars? | environment variables? | .env |
    secrets?
"""
_ASK_WORDS = r"""
errors: errors? | exceptions? | timeouts? | times out | retr(?:y|ies) | crash(?:es|ing)? | dies |
    handle (?:it|them|that|this|errors?)
cli: flags? | cli | subcommands? | --[a-z][\w-]+
"""


def _vocabulary(table: str) -> dict[str, re.Pattern[str]]:
    """`name: alternative | alternative ...` lines (indented ones continue the line before)."""
    said: dict[str, str] = {}
    name = ""
    for line in table.strip("\n").splitlines():
        if not line.startswith(" "):
            name, line = line.split(": ", 1)
        said[name] = f"{said.get(name, '')} {line.strip()}"
    return {n: _words(*(a.strip() for a in text.split(" | "))) for n, text in said.items()}


RULE = _vocabulary(_RULE_WORDS)
ASK = RULE | _vocabulary(_ASK_WORDS)
# "add structlog", "install zod", "bump golang-ical": a named package, not "add an index"
_ADDS = re.compile(r"\b(?:add|install|uninstall|remove|drop|upgrade|bump|pin|need)\s+"
                   r"([a-z@][\w.@/-]*)", re.I)  # fmt: skip


# what a rule quotes rather than says: a commit message in quotes (an error in brackets:
# `consolidate.without_parentheses`)
_QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"")


def activities(text: str, vocabulary: dict[str, re.Pattern[str]] = RULE) -> set[str]:
    """The activities `text` names (in its own words: quoted messages and bracketed asides,
    such as the error a workflow quotes, are not read)."""
    said = _QUOTED.sub(" ", consolidate.without_parentheses(text))
    return {name for name, pattern in vocabulary.items() if pattern.search(said)}


@functools.lru_cache(maxsize=8192)
def governs(rule: str) -> frozenset[str]:
    """`activities` of a rule's text, remembered: `lmm serve` reads the same rules for every
    request for work."""
    return frozenset(activities(rule))


def asked(prompt: str) -> set[str]:
    """The activities a request for work starts: those it names, and adding a dependency when
    it adds or bumps something named like a package (no common word, or a-dash-name)."""
    found = activities(prompt, ASK)
    words = evidence.common_words()
    for m in _ADDS.finditer(prompt):
        name = m.group(1).lower()
        if any(c in name for c in "-.@/") or (words and name.isalpha() and name not in words):
            found.add("dependency")
    return found


@dataclass
class Rule:
    hit: Hit
    shared: frozenset[str]  # activities it shares with the prompt


def rules_for(store: Store, prompt: str, project: str | None, limit: int = RULES) -> list[Rule]:
    """The standing rules (active preferences, lessons, gotchas, workflows of `project` and the
    user-wide ones it does not override) that govern what `prompt` asks to do, best first."""
    if not project or evidence.asks(prompt):
        return []
    wanted = asked(prompt)
    if not wanted:
        return []
    hidden = scope.overridden(store, project)
    terms = set(evidence.query_terms(prompt))
    found: list[tuple[tuple[float, ...], int, frozenset[str]]] = []
    for row in reads.rule_rows(store, scope_projects(store, project) or [], KINDS):
        if row["id"] in hidden:
            continue
        shared = governs(row["text"]) & wanted
        if not shared:
            continue
        words = set(re.findall(r"\w+", row["text"].lower()))
        said = sum(1 for t in terms if evidence.matches(t, frozenset(words)))
        key = (len(shared), said, float(row["salience"]), float(row["evidence"]))
        found.append((key, int(row["id"]), shared))
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    hits = {h.id: h for h in cognition_hits(store, [i for _, i, _ in found[: 4 * limit]])}
    chosen: list[Rule] = []
    for _, i, shared in found[: 4 * limit]:
        if i in hits and not any(_alike(hits[i].text, r.hit.text) for r in chosen):
            chosen.append(Rule(hits[i], shared))
        if len(chosen) == limit:
            break
    return chosen


def _alike(a: str, b: str) -> bool:
    """Two rules that say mostly the same (the same workflow learned twice)."""
    wa, wb = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    return len(wa & wb) >= 0.6 * min(len(wa), len(wb))
