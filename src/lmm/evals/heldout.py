"""Held-out sets from real history: what did a later session need from earlier ones?"""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm.evals.metrics import keywords, tokens
from lmm.evals.tasks import Example, Reference
from lmm.store import history
from lmm.store.db import Store

log = logging.getLogger(__name__)

NEED_THRESHOLD = 0.5
MIN_SHARED = 2
MIN_PROMPT_WORDS = 5
DEFAULT_FRACTION = 0.6
SAMPLE_FACTS = Path(__file__).resolve().parents[1] / "sample" / "facts.json"
_WRAPPERS = re.compile(
    r"<(command-[a-z]+|local-command-[a-z]+|ide_[a-z_]+|system-reminder|bash-[a-z]+)>"
    r".*?</\1>",
    re.S,
)


@dataclass
class HeldOut:
    """A held-out set: the examples, how the sessions were split, and why some gave none."""

    name: str
    examples: list[Example]
    memory_sessions: list[str]
    heldout_sessions: list[str]
    skipped: dict[str, str] = field(default_factory=dict)  # held-out session -> why no example
    rule: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        from lmm.evals.tasks import example_json

        return {
            "name": self.name,
            "rule": self.rule,
            "memory_sessions": self.memory_sessions,
            "heldout_sessions": self.heldout_sessions,
            "skipped": self.skipped,
            "examples": [example_json(e) for e in self.examples],
        }


def read(path: Path) -> HeldOut:
    from lmm.evals.tasks import example_from_json

    obj = json.loads(Path(path).read_text())
    return HeldOut(
        obj["name"],
        [example_from_json(e) for e in obj["examples"]],
        obj["memory_sessions"],
        obj["heldout_sessions"],
        obj.get("skipped", {}),
        obj.get("rule", {}),
    )


# ---- sessions


def first_prompt(store: Store, session_id: str) -> str | None:
    """The session's first user message with `MIN_PROMPT_WORDS` words once command wrappers,
    IDE notes and system reminders are stripped; None when it has none."""
    for turn in store.session_turns(session_id):
        if turn.role != "user" or turn.kind != "message" or turn.agent_id:
            continue
        text = _WRAPPERS.sub(" ", turn.text).strip()
        if len(text.split()) >= MIN_PROMPT_WORDS:
            return text
    return None


def split(
    store: Store, fraction: float = DEFAULT_FRACTION
) -> dict[str, tuple[list[str], list[str]]]:
    """project path -> (memory session ids, held-out session ids), by start time."""
    rows = history.prompted_sessions(store)
    by_project: dict[str, list[str]] = {}
    for r in rows:
        by_project.setdefault(r["path"], []).append(r["id"])
    out = {}
    for project, ids in by_project.items():
        n_memory = min(len(ids), max(1, math.floor(len(ids) * fraction)))
        out[project] = (ids[:n_memory], ids[n_memory:])
    return out


def session_tokens(store: Store, session_id: str) -> set[str]:
    """Every token of the session's turns (text, thinking, tool inputs), plus path suffixes."""
    out: set[str] = set()
    for t in store.session_turns(session_id):
        parts = [t.text, t.thinking, *(c.input for c in t.tool_calls)]
        out.update(tokens("\n".join(parts)))
    for tok in [t for t in out if "/" in t]:
        pieces = tok.split("/")
        out.update("/".join(pieces[i:]) for i in range(1, len(pieces)) if pieces[i])
    return out


# ---- the rule


def idf_table(token_sets: list[set[str]]) -> dict[str, float]:
    n = len(token_sets)
    df = Counter(t for s in token_sets for t in s)
    return {t: math.log((n + 1) / (c + 1)) + 1 for t, c in df.items()} | {"": math.log(n + 1) + 1}


def need_score(memory_text: str, later: set[str], idf: dict[str, float]) -> tuple[float, int]:
    """(idf-weighted share of the memory's keywords found in the later session, count found)."""
    kws = keywords(memory_text)
    if not kws:
        return 0.0, 0
    unseen = idf[""]  # a keyword in no session at all weighs most
    total = sum(idf.get(w, unseen) for w in kws)
    shared = kws & later
    return sum(idf.get(w, unseen) for w in shared) / total, len(shared)


def needed(memory_text: str, later: set[str], idf: dict[str, float]) -> bool:
    score, shared = need_score(memory_text, later, idf)
    return score >= NEED_THRESHOLD and shared >= MIN_SHARED


# ---- memories


def cognition_memories(store: Store, project: str) -> list[Reference]:
    """Active cognitions of `project` (and user-wide ones) as references with their sources."""
    rows = history.active_cognitions(store, project)
    out = []
    for r in rows:
        sources = [
            (s["session_id"], s["uuid"] or s["turn_key"])
            for s in history.session_sources(store, r["id"])
        ]
        out.append(Reference(r["text"], r["category"], sources, r["uid"]))
    return out


def sample_memories(session_ids: set[str], facts_path: Path = SAMPLE_FACTS) -> list[Reference]:
    """The sample's labelled facts stated in `session_ids` (no secrets, no compaction rows)."""
    facts = json.loads(facts_path.read_text())["facts"]
    main = [f for f in facts if "-" not in f["label"] and f["kind"] not in ("secret", "compaction")]
    out = []
    for f in main:
        if f["session_id"] not in session_ids:
            continue
        extra = [g for g in facts if g["label"].startswith(f["label"] + "-")]
        sources = [(g["session_id"], g["uuid"]) for g in [f, *extra]]
        out.append(Reference(f["fact"], f["kind"], sources, f["label"]))
    return out


# ---- building a set


def build(
    store: Store,
    sources: list[Path],
    *,
    name: str,
    sample_facts: Path | None = None,
    fraction: float = DEFAULT_FRACTION,
    extractor: str = "rules",
) -> HeldOut:
    """Ingest `sources` into `store` (a fresh one), split, drop the held-out sessions, extract
    cognitions from the rest, and pick each held-out session's needed memories."""
    from lmm.ingest.run import ingest
    from lmm.memory.extract import get_extractor, run_extraction

    ingest(store, sources)
    parts = split(store, fraction)
    everyone = history.top_level_sessions(store)
    token_sets = {sid: session_tokens(store, sid) for sid in everyone}
    idf = idf_table(list(token_sets.values()))
    later_info = {}
    for _project, (_, later) in parts.items():
        for sid in later:
            later_info[sid] = (first_prompt(store, sid), history.started_at(store, sid))
    memory_ids = [s for mem, _ in parts.values() for s in mem]
    heldout_ids = [s for _, later in parts.values() for s in later]
    history.drop_sessions(store, heldout_ids)
    report = run_extraction(store, get_extractor(extractor))
    log.info("held-out %s: %s", name, report.summary())
    examples: list[Example] = []
    skipped: dict[str, str] = {}
    for project, (mem, later) in parts.items():
        if sample_facts is not None:
            memories = sample_memories(set(mem), sample_facts)
        else:
            memories = cognition_memories(store, project)
        for sid in later:
            prompt, started = later_info[sid]
            if prompt is None:
                skipped[sid] = f"no user prompt of {MIN_PROMPT_WORDS}+ words"
                continue
            refs = [r for r in memories if needed(r.text, token_sets[sid], idf)]
            if not refs:
                skipped[sid] = "needed none of the earlier memories"
                continue
            ex_id = f"{project.rstrip('/').rsplit('/', 1)[-1]}/{sid[:8]}"
            examples.append(
                Example(ex_id, prompt, refs, project, started, None, {"session_id": sid})
            )
    rule = {
        "need_threshold": NEED_THRESHOLD,
        "min_shared": MIN_SHARED,
        "fraction": fraction,
        "min_prompt_words": MIN_PROMPT_WORDS,
        "extractor": extractor,
        "memories": "sample facts.json" if sample_facts else f"{extractor} cognitions",
    }
    return HeldOut(name, examples, memory_ids, heldout_ids, skipped, rule)
