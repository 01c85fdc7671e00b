"""What a request for work sets out to do, and which of the user's standing rules govern it.

"commit it", "add structlog", "write an integration test for the cancel flow": such prompts share
no word with the rule that applies ("conventional commits, lowercase", "use uv, never pip", "do
not mock the database in tests"), and a retriever by words or by meaning misses it. Both sides
are read as **activities** from one vocabulary of everyday development work (committing,
branching, releasing, adding dependencies, testing, running, migrations, endpoints, logging,
formatting, ...). A rule (an active preference, lesson, gotcha or workflow in scope) governs the
activities its text names; a prompt that asks for work starts the activities it names.
`rules_for(store, prompt, project)` returns the rules of the prompt's activities, best first: the
most activities shared, then the prompt's own words, salience, recency. Questions about the past
are left to the evidence brief (`evidence.asks`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lmm import evidence, scope
from lmm.search import Hit, cognition_hits, rule_rows, scope_projects

if TYPE_CHECKING:
    from lmm.store import Store

RULES = 2  # rules added to a prompt's brief at most
KINDS = ("preference", "lesson", "gotcha", "workflow")


def _words(*alternatives: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.I)


# Each activity: what names it in a rule (`RULE`) and in a request for work (`ASK`, the same
# unless given). Tools of each ecosystem are named where they are the activity's usual word.
RULE = {
    "commit": _words(
        r"commit(?:s|ted|ting)?",
        "amend",
        "squash",
        r"rebas(?:e|ing)",
        "pull requests?",
        "PRs?",
        "merge requests?",
    ),
    "branch": _words(r"branch(?:es|ing)?", "checkout -b", "switch -c"),
    "release": _words(
        r"releas(?:e|es|ed|ing)",
        r"tag(?:s|ged|ging)?",
        "changelog",
        "publish",
        "version bump",
        "semver",
        "goreleaser",
        "cargo-dist",
    ),
    "dependency": _words(
        r"dependenc(?:y|ies)",
        "deps?",
        r"packages?",
        r"librar(?:y|ies)",
        r"crates?",
        "lockfile",
        "lock file",
        "requirements.txt",
        r"install(?:s|ed|ing)?",
        "pip",
        "uv add",
        "poetry add",
        "npm",
        "pnpm",
        "yarn",
        "cargo add",
        "go get",
        "vendor",
    ),
    "test": _words(
        r"tests?",
        r"testing",
        "pytest",
        r"specs?",
        "e2e",
        "unit tests?",
        "integration tests?",
        "fixtures?",
        "conftest(?:.py)?",
        r"mock(?:s|ed|ing)?",
        "coverage",
        "vitest",
        "jest",
        "playwright",
        "nextest",
        "go test",
    ),
    "database": _words(
        r"migrat(?:e|es|ed|ion|ions|ing)",
        "alembic",
        "goose",
        "schema",
        r"index(?:es)?",
        r"columns?",
        r"tables?",
        "database",
        "db",
        "sql",
        "postgres(?:ql)?",
        "sqlite",
        "queries",
        "query",
    ),
    "endpoint": _words(
        r"endpoints?",
        r"routes?",
        r"routers?",
        r"handlers?",
        "api",
        r"(?:GET|POST|PUT|PATCH|DELETE) /[^\s]*",
    ),
    "logging": _words(
        "logging",
        r"loggers?",
        r"log (?:lines?|levels?|messages?|every|each|all)",
        "structlog",
        "slog",
        "zerolog",
        "tracing",
        "log as json",
    ),
    "format": _words(
        r"lint(?:s|ing|er)?",
        r"format(?:ting|ter)?",
        "fmt",
        "ruff",
        "black",
        "eslint",
        "prettier",
        "clippy",
        "mypy",
        "pyright",
        "type ?check(?:ing|er)?",
    ),
    "build": _words(r"build(?:s|ing)?", r"compil(?:e|es|ing)", r"bundl(?:e|es|ing)"),
    "deploy": _words(
        r"deploy(?:s|ed|ing|ment)?",
        "staging",
        "production",
        "prod",
        "docker",
        "compose",
        "kubernetes",
        "k8s",
        "fly",
        "helm",
        r"containers?",
    ),
    "ui": _words(
        r"components?",
        r"pages?",
        "css",
        r"styling",
        r"stylesheets?",
        "tailwind",
        "tsx",
        "jsx",
        "react",
        r"layouts?",
        r"buttons?",
        r"forms?",
        "ui",
    ),
    "docs": _words(r"docs?", "documentation", "readme", r"docstrings?", r"comments?"),
    "errors": _words(
        "error handling",
        r"exceptions?",
        r"timeouts?",
        r"retr(?:y|ies)",
        r"panic(?:s|king)?",
        "unwrap",
        r"rais(?:e|es|ing)",
        "thiserror",
        "anyhow",
    ),
    "time": _words(
        "dates",
        r"datetimes?",
        r"timestamps?",
        r"time ?zones?",
        "tz",
        "utc",
        "today",
        "tomorrow",
        "calendar",
        r"dst",
        "daylight saving",
    ),
    "cli": _words(r"flags?", "cli", "command[- ]line", r"subcommands?"),
    "config": _words(
        "config",
        "configuration",
        r"settings?",
        "env",
        r"env vars?",
        "environment variables?",
        ".env",
        r"secrets?",
    ),
}
ASK = RULE | {
    "errors": _words(
        r"errors?",
        r"exceptions?",
        r"timeouts?",
        r"times out",
        r"retr(?:y|ies)",
        r"crash(?:es|ing)?",
        "dies",
        r"handle (?:it|them|that|this|errors?)",
    ),
    "cli": _words(r"flags?", "cli", r"subcommands?", r"--[a-z][\w-]+"),
}
# "add structlog", "install zod", "bump golang-ical": a named package, not "add an index"
_ADDS = re.compile(r"\b(?:add|install|uninstall|remove|drop|upgrade|bump|pin|need)\s+"
                   r"([a-z@][\w.@/-]*)", re.I)  # fmt: skip


# what a rule quotes rather than says: an error message in brackets, a commit message in quotes
_ASIDE = re.compile(r"\([^()]*\)|'[^'\n]*'|\"[^\"\n]*\"")


def activities(text: str, vocabulary: dict[str, re.Pattern[str]] = RULE) -> set[str]:
    """The activities `text` names (in its own words: quoted messages and bracketed asides,
    such as the error a workflow quotes, are not read)."""
    said = _ASIDE.sub(" ", text)
    return {name for name, pattern in vocabulary.items() if pattern.search(said)}


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
    shared: set[str]  # activities it shares with the prompt


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
    found: list[tuple[tuple[float, ...], int, set[str]]] = []
    for row in rule_rows(store, scope_projects(store, project) or [], KINDS):
        if row["id"] in hidden:
            continue
        shared = activities(row["text"]) & wanted
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
