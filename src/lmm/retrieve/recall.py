"""Recall: a query (or a prompt) in, a short sourced memory brief and its hits out."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lmm import config
from lmm.errors import LmmError
from lmm.lm import speed
from lmm.retrieve import activities, changes, scope
from lmm.retrieve import evidence as ev_units
from lmm.retrieve import search as search_module
from lmm.retrieve.search import Hit, retrieve
from lmm.retrieve.synth import (
    Brief,
    Evidence,
    SynthConfig,
    approx_tokens,
    asks_current,
    excerpt,
    extractive_brief,
    generate_brief,
    lead_with,
    select_evidence,
)
from lmm.store import reads, vectors

if TYPE_CHECKING:
    from lmm.lm.base import TextGenerator
    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store

log = logging.getLogger(__name__)

CURRENT_EXTRA = 8  # hits kept beyond k for a prompt about the present: the newer turns come later
QUERY_CHARS = 2_000  # a pasted prompt beyond this adds noise to keyword search, not recall


@dataclass(frozen=True)
class RecallConfig:
    """What `recall` retrieves and how it writes the brief."""

    k: int = 12  # hits retrieved before pruning (--k)
    # an LM writes the brief (--generate); False: the evidence (--no-generate); None: an LM
    # only where it fits `budget_seconds` (a GPU, an endpoint, a fast runtime: `speed.choose`)
    generate: bool | None = None
    model: str | None = None  # LM for generation: packaged name, folder, .gguf (--model)
    budget_seconds: float = 15.0  # the wait a generated brief may cost when generate is None
    synth: SynthConfig = field(default_factory=SynthConfig)
    unseen_topics: bool = True  # a question naming a topic the memory never saw gets nothing
    rules: int = activities.RULES  # rules of a request's activities put first (0: none)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise LmmError(f"--k must be at least 1 (got {self.k})")
        if self.budget_seconds <= 0:
            raise LmmError(f"--budget-seconds must be positive (got {self.budget_seconds})")


@dataclass
class Recall:
    """A brief and the hits behind it."""

    query: str
    brief: Brief
    hits: list[Hit]
    seconds: float = 0.0
    why: str = ""  # why the brief is of its kind (evidence / generated / fallback)


def choose_generation(cfg: RecallConfig) -> speed.Choice:
    """Whether `recall` with `cfg` has an LM write the brief, and why."""
    if cfg.generate is True:
        return speed.Choice(True, "asked for (--generate)")
    if cfg.generate is False:
        return speed.Choice(False, "asked for (--no-generate)")
    from lmm.lm.models import DEFAULT_MODEL

    return speed.choose(cfg.model or config.settings().model or DEFAULT_MODEL, cfg.budget_seconds)


def describe(brief: Brief, why: str) -> str:
    """One line saying which kind of brief this is and why, for the text output."""
    if brief.mode == "generated":
        return f"generated brief by {brief.model} in {brief.seconds:.1f} s: {why}"
    if brief.mode == "declined":
        return (
            f"no brief: {brief.model} found nothing in the evidence that matters "
            f"(NONE, {brief.seconds:.1f} s)"
        )
    if brief.mode == "fallback":
        n = len(brief.dropped)
        return (
            f"evidence brief: {brief.model}'s brief failed the grounding check "
            f"({n} sentence{'s' if n != 1 else ''} dropped, {brief.seconds:.1f} s)"
        )
    return f"evidence brief: {why}"


def resolve_project(store: Store, cwd: str | None) -> str | None:
    """The stored project that `cwd` is in (the deepest stored path at or above it), else `cwd`:
    a session started in a subfolder recalls its repository's memory."""
    if not cwd:
        return None
    path = cwd.rstrip("/") or "/"
    paths = reads.project_paths(store)
    above = [p for p in paths if path == p or path.startswith(p.rstrip("/") + "/")]
    return max(above, key=len) if above else path


def default_embedder(store: Store, name: str | None = None) -> Embedder | None:
    """The embedder called `name` ("none": keyword-only), else the store's own: the packaged
    model when the store holds its vectors (ONNX Runtime when installed, else
    sentence-transformers, which imports torch), else None."""
    from lmm.retrieve import embed

    if name == "none":
        return None
    if name:
        return embed.get_embedder(name)
    models = set(vectors.embedder_dims(store))
    if embed.DEFAULT_MODEL not in models:
        return None
    try:
        return embed.get_embedder(embed.DEFAULT_MODEL)
    except LmmError as exc:
        log.warning("keyword-only recall: %s", exc)
        return None


def recall(
    store: Store,
    query: str,
    *,
    project: str | None = None,
    config: RecallConfig | None = None,
    embedder: Embedder | None = None,
    lm: TextGenerator | None = None,
    exclude_session: str | None = None,
) -> Recall:
    """Retrieve memory for `query` within `project` (a path; None: everywhere) and write a brief.

    `exclude_session` drops hits from that session (the agent already has it in context). When
    `choose_generation` says generate, the LM is `lm`, else `models.generator(config.model)` loaded
    on first use; each generated brief's time is recorded for the next choice (`speed.record`).
    The hook, `lmm recall`, MCP `recall` and the browser's preview all call this.
    """
    cfg = config or RecallConfig()
    start = time.perf_counter()
    query = query.strip()[:QUERY_CHARS]
    hits = retrieve(store, query, project=project, k=cfg.k + 8, embedder=embedder) if query else []
    if query:  # user-wide memory: in a new folder too, and never against the project's own
        hits = scope.with_user_memory(
            store, query, hits, project=project, k=cfg.k, embedder=embedder
        )
    if exclude_session:
        hits = [h for h in hits if h.source.session_id != exclude_session]
    hits = hits[: cfg.k + (CURRENT_EXTRA if asks_current(query) else 0)]
    sessions = (
        continuity_block(store, query, project, exclude_session, CONTINUITY_TOKENS)
        if project and asks_continuity(query)
        else None
    )
    synth = cfg.synth
    if sessions:  # the sessions come first; the evidence gets the rest of the budget
        rest = max(40, synth.max_tokens - approx_tokens(sessions) - 1)
        synth = replace(synth, max_tokens=rest)
    never = never_seen(store, query, project) if cfg.unseen_topics and hits else []
    evidence = [] if never else select_evidence(query, hits, synth)
    asks_changes = changes.asks_changes(query)
    if (evidence or asks_changes) and not never and ev_units.asks(query):
        # the decisions that changed what is asked about lead
        later = changes.listed_changes if asks_changes else changes.later_changes
        found = later(store, query, project, evidence)
        evidence = changes.with_changes(found, evidence, history=asks_changes)
    rules = activities.rules_for(store, query, project, cfg.rules) if cfg.rules and query else []
    if rules:  # the standing rules of what a request for work sets out to do, on top
        evidence = with_rules(rules, evidence)
        extra = sum(approx_tokens(r.hit.text[: synth.line_chars]) + 12 for r in rules)
        synth = replace(synth, max_tokens=synth.max_tokens + extra)
    if never:
        choice = speed.Choice(False, "the memory never mentions " + ", ".join(never))
    elif evidence:
        choice = choose_generation(cfg)
    else:
        choice = speed.Choice(False, "no relevant evidence")
    if not evidence:
        brief = Brief(None, [], "none")
    elif choice.generate:
        try:
            if lm is None:
                from lmm.lm.models import generator

                lm = generator(cfg.model)
            brief = generate_brief(query, evidence, lm, synth)
            speed.record(lm.name, brief.seconds)
        except LmmError as exc:
            if cfg.generate:  # asked for: say what to fix
                raise
            log.warning("evidence brief: the model failed: %s", exc)
            brief = extractive_brief(evidence, synth)
            choice = speed.Choice(False, f"the model failed: {exc}")
    else:
        brief = extractive_brief(evidence, synth)
    if sessions:
        text = sessions + ("\n" + brief.text if brief.text else "")
        brief = replace(brief, text=text, mode=brief.mode if brief.text else "sessions")
    return Recall(query, brief, hits, time.perf_counter() - start, choice.why)


def with_rules(rules: list[activities.Rule], evidence: list[Evidence]) -> list[Evidence]:
    """`rules` as the first evidence, then the rest of `evidence` (a rule already among it
    moves up), numbered from 1."""
    ids = {r.hit.id for r in rules}
    rest = [ev for ev in evidence if not (ev.hit.kind == "cognition" and ev.hit.id in ids)]
    return lead_with([r.hit for r in rules], rest)


def never_seen(store: Store, query: str, project: str | None) -> list[str]:
    """For a question, its topic terms (`evidence.topic_terms`: no common word) that nothing in
    scope mentions: "how does lsl read journald logs?" where no turn or memory says journald.
    Whatever else matches, the memory cannot answer it, so nothing is better than look-alikes."""
    if not ev_units.asks(query):  # a request for work may still meet a rule ("ask before
        return []  # adding a crate"), whatever new thing it names
    own = search_module.own_name(project)
    terms = [t for t in ev_units.topic_terms(query) if t != own]
    return search_module.unseen(store, terms, search_module.scope_projects(store, project))


def describe_json(out: dict[str, Any]) -> str:
    """`describe` for a `to_json` object (what a server sends back)."""
    brief = Brief(out.get("brief"), [], str(out.get("mode")), out.get("model"))
    brief.dropped = ["?"] * int(out.get("dropped") or 0)
    brief.seconds = float(out.get("brief_seconds") or 0.0)
    return describe(brief, str(out.get("why") or ""))


# ---- where the work stopped: the project's latest sessions, for prompts that ask about them

CONTINUITY_TOKENS = 240  # the latest-sessions block at most (the evidence gets the rest)
# a prompt about the work itself rather than a topic: where it stopped, what is open, what is next
_CONTINUITY = re.compile(
    r"\b(last|previous|prior|earlier|yesterday'?s?|recent|latest) (time|session|week|day|change"
    r"|commit|thing|task|work|bit)|\b(most )?recently\b|\bleft off\b|\bin the middle of\b"
    r"|\bwhere (did|was|were|are|do) (i|we)\b|\bwhat (was|were) (i|we) (doing|working|up to|on)\b"
    r"|\b(yesterday|this morning|earlier today|the other day)\b"
    r"|\bwhat (did|have) (i|we) (finish|finished|work on|worked on|get done|got done)\b"
    r"|\bwhat('s| is| was| are| were)? (left|remaining|pending|outstanding|unfinished|open)\b"
    r"|\bwhat('s| is| comes| should \w+ do)? next\b|\bnext (steps?|tasks?|things?|up)\b"
    r"|\b(pick|picking) (it |this |that |things )?(back )?up\b|\b(resume|resuming)\b"
    r"|\b(get|getting|go|going) back to\b|\bcarry on\b|\bcontinue where\b"
    r"|\b(leave|left) (open|unfinished|undone|pending|off)|\bunfinished\b|\bhalf[- ]done\b"
    r"|\bstill (open|pending|to do|todo|left|broken|failing|needs?)\b|\b(todos?|to-dos?|wip)\b"
    r"|\bwork in progress\b|\bin progress\b|\boutstanding\b"
    r"|\b(did|have) (i|we) (ever |already |actually )?(finish|complete|wrap|fix|merge|push|ship"
    r"|commit|get to)"
    r"|\b(right |just )?before (starting|working|i started|we started|that)"
    r"|\b(which|what) branch\b|\bwhere (do|does) (it|things|this|that) stand\b"
    r"|\bstatus of\b|\bhow far (did|have|had) (i|we)\b",
    re.I,
)
# what an assistant says about work it has not done yet
_OPEN_WORK = re.compile(
    r"\btodo\b|\bnext\b|\bnot (handled|done|yet|implemented|supported|covered)|\byet\b"
    r"|\bleft\b|\bremaining\b|\bwip\b|\blater\b|\bpick up\b|\bunfinished\b|\bstill\b"
    r"|\bcommitted\b|\bpending\b",
    re.I,
)
LAST_TURNS = 3  # assistant turns read from the end of the latest session
UNIT_CHARS = 200  # characters of one line of the block


def asks_continuity(query: str) -> bool:
    """Whether `query` asks where the work stopped, what is left open or what comes next."""
    return bool(_CONTINUITY.search(query))


@dataclass
class SessionEnd:
    """How one stored session began and ended."""

    id: str
    date: str
    branch: str | None
    opening: str  # its first prompt
    closing: list[str] = field(default_factory=list)  # its last assistant turns (prose), in order


def latest_sessions(
    store: Store, project: str, limit: int = 2, exclude: str | None = None
) -> list[SessionEnd]:
    """The `limit` latest sessions of `project` (its subfolders included), newest first."""
    rows = reads.latest_session_rows(store, project, limit, exclude)
    out = []
    for r in rows:
        turns = reads.session_branch_messages(store, r["id"])
        prompts = [
            t["text"]
            for t in turns
            if t["role"] == "user" and not t["text"].lstrip().startswith("<")
        ]
        prose = [
            t["text"]
            for t in turns
            if t["role"] == "assistant" and not t["text"].startswith("[tool")
        ]
        branch = next((t["git_branch"] for t in reversed(turns) if t["git_branch"]), None)
        if prompts or prose:
            out.append(SessionEnd(r["id"], r["at"][:10], branch, prompts[0] if prompts else "",
                                  prose[-LAST_TURNS:]))  # fmt: skip
    return out


def closing_lines(session: SessionEnd, query: str) -> list[str]:
    """The lines of a session's last assistant turns that say what is left (a TODO, what comes
    next, what is not handled yet) or name the query's terms; else its very last line."""
    terms = ev_units.query_terms(query)
    lines = [p for text in session.closing for _, p in ev_units.pieces(text)]
    keep: list[str] = []
    for i, line in enumerate(lines):
        words = frozenset(re.findall(r"\w+", line.lower()))
        named = any(ev_units.matches(t, words) for t in terms)
        leads = i > 0 and lines[i - 1].rstrip("*` ").endswith(":") and lines[i - 1] in keep
        if _OPEN_WORK.search(line) or named or leads:
            keep.append(line)
    return keep or lines[-1:]


def continuity_block(
    store: Store, query: str, project: str, exclude: str | None, max_tokens: int
) -> str | None:
    """'Last session (date, branch): began: ... / ended: ...' and the session before it, within
    `max_tokens`; None when the project has no stored session."""
    sessions = latest_sessions(store, project, 2, exclude)
    if not sessions:
        return None
    last = sessions[0]
    branch = f", branch {last.branch}" if last.branch else ""
    began = f"Last session ({last.date}{branch}): began: {excerpt(last.opening, [], 100)}"
    before = ""
    if len(sessions) > 1:
        before = f"Session before ({sessions[1].date}): {excerpt(sessions[1].opening, [], 100)}"
    ended = [ev_units.window(line, [], UNIT_CHARS) for line in closing_lines(last, query)]
    room = max_tokens - approx_tokens(began) - approx_tokens(before) - 2
    kept: list[str] = []
    for line in reversed(ended):  # the closing lines that fit, the last ones first
        if approx_tokens("ended: " + " ".join([line, *kept])) <= room:
            kept.insert(0, line)
    text = "\n".join(filter(None, [began, "ended: " + " ".join(kept) if kept else "", before]))
    return text or None


def hit_json(hit: Hit) -> dict[str, Any]:
    src = hit.source
    return {
        "id": hit.id,
        "kind": hit.kind,
        "category": hit.category,
        "text": hit.text,
        "score": round(hit.score, 6),
        "source": {
            "session_id": src.session_id,
            "timestamp": src.timestamp,
            "project": src.project,
            "file_path": src.file_path,
            "uuid": src.uuid,
            **({"shared_by": src.shared_by} if src.shared_by else {}),
        },
    }


def to_json(result: Recall) -> dict[str, Any]:
    """The `lmm recall --json` object: `brief` (text or null), how it was made, and the hits."""
    return {
        "query": result.query,
        "brief": result.brief.text,
        "mode": result.brief.mode,
        "model": result.brief.model,
        "why": result.why,
        "dropped": len(result.brief.dropped),
        "brief_seconds": round(result.brief.seconds, 3),
        "evidence": [
            {"n": e.n, "kind": e.hit.kind, "id": e.hit.id, "citation": e.citation()}
            for e in result.brief.evidence
        ],
        "hits": [hit_json(h) for h in result.hits],
        "seconds": round(result.seconds, 4),
    }


# ---- the session-start digest

BRIEF_SECTIONS = [  # (category, heading, at most this many)
    ("preference", "Preferences", 8),
    ("decision", "Decisions", 6),
    ("lesson", "Lessons", 6),
    ("gotcha", "Gotchas", 4),
    ("workflow", "Workflow", 4),
    ("fact", "Facts", 4),
]
RECENT_SESSIONS = 5


def recent_sessions(store: Store, project: str, limit: int = RECENT_SESSIONS) -> list[str]:
    """'2026-01-26 (eddc9ef6): <title or first prompt>' for the project's latest sessions."""
    rows = reads.recent_session_rows(store, project, limit)
    out = []
    for r in rows:
        what = r["title"] or r["first"]
        if what:
            out.append(f"{(r['ended_at'] or '')[:10]} ({r['id'][:8]}): {excerpt(what, [], 160)}")
    return out


def project_brief(store: Store, project: str | None, *, max_tokens: int = 2_000) -> str | None:
    """The project's top active cognitions by category, then its recent sessions, within
    `max_tokens`; user-wide cognitions are included (in a folder with no memory yet, only they),
    except those the project's own memory contradicts. None when there is nothing to say."""
    sections: list[tuple[str, list[str]]] = []
    for category, heading, limit in BRIEF_SECTIONS:
        cogs = scope.brief_cognitions(store, project, category, limit)
        lines = [f"- {excerpt(c.text, [], 300)} ({(c.valid_from or '')[:10] or 'undated'})"
                 for c in cogs if c.text.strip()]  # fmt: skip
        if lines:
            sections.append((heading, lines))
    if project:
        recent = recent_sessions(store, project)
        if recent:
            sections.append(("Recent sessions", [f"- {line}" for line in recent]))
    if not sections:
        return None
    out: list[str] = []
    used = 0
    for heading, lines in sections:
        for i, line in enumerate(lines):
            chunk = ([f"{heading}:"] if i == 0 else []) + [line]
            cost = sum(approx_tokens(c) + 1 for c in chunk)
            if used + cost > max_tokens:
                break
            out += chunk
            used += cost
    return "\n".join(out) or None


def with_config(config: RecallConfig, **changes: Any) -> RecallConfig:
    """`config` with top-level fields and `synth` fields (max_tokens=..., etc.) replaced."""
    synth_fields = SynthConfig.__dataclass_fields__
    synth = {k: v for k, v in changes.items() if k in synth_fields and v is not None}
    top = {k: v for k, v in changes.items() if k not in synth_fields and v is not None}
    return replace(config, synth=replace(config.synth, **synth), **top)
