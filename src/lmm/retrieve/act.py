"""Act-time recall: the lessons, gotchas and rules that apply to the tool call about to run."""

from __future__ import annotations

import contextlib
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from lmm import paths
from lmm.store import fulltext, reads
from lmm.store.db import Store, quote_fts
from lmm.text.polarity import Reading, identifiers, read
from lmm.text.shell import Invocation, invocations

CATEGORIES = ("lesson", "gotcha", "preference", "workflow", "decision")
THRESHOLD = 2.0  # score a cognition needs to be shown (chosen on the dev cases, bench/act_time.py)
ASK_THRESHOLD = 2.5  # score a user's prohibition needs before the hook asks for confirmation
MAX_ITEMS = 3  # cognitions shown per call
MAX_CHARS = 400  # characters of one cognition's text in the context
CANDIDATES = 60  # cognitions read per call (BM25 prefilter)
LESSONS = 200  # latest lessons read per Bash call (their failing command is in their sources)
CALL_WINDOW = 20  # turns before a failed result in which its call is looked for
SHOWN_DIR = "act-shown"  # $LMM_HOME/act-shown/<session id>: ids shown in that session
SHOWN_DAYS = 7  # a session's list is dropped after this many idle days
MAX_CONTENT = 20_000  # characters of an edit's new text read for identifiers

# What each kind of evidence adds to a cognition's score.
SCORE = {
    "program": 1.0,  # the call's program is named
    "argument": 1.0,  # a distinctive argument is named (at most two count)
    "negated": 1.5,  # the program or an argument stands after "never", "not", ...
    "command": 1.0,  # a command in backticks has the call's program and all of its arguments
    "path": 2.5,  # the file's path relative to the project (or a longer tail of it)
    "basename": 1.5,  # the file's name
    "folder": 1.0,  # a distinctive folder of the path
    "identifier": 1.0,  # an identifier the edit writes (at most two count)
}

# Programs too common to count as evidence on their own: they need an argument to match.
_COMMON = frozenset(
    re.findall(
        r"\S+",
        "cd ls cat echo head tail grep rg find sed awk pwd mkdir rm cp mv touch chmod wc sort "
        "which true test printf source . git python python3 bash sh node make",
    )
)
# Arguments that say nothing about what a command does.
_PLAIN_ARGS = frozenset(
    re.findall(
        r"\S+",
        "run the a an to and or it with in on for of is - -- . .. ./... all -y --yes -f -v -q -n "
        "-e -c -m -p -r -x -s -i 1 0 true false here this that then when use using your you my "
        "not no",
    )
)
_COMMON_FILES = frozenset(
    re.findall(
        r"\S+",
        "index main mod __init__ readme lib app utils test tests src package setup config types "
        "init",
    )
)
_COMMON_FOLDERS = {"src", "lib", "app", "tests", "test", "pkg", "cmd", "internal", "docs",
                   "scripts", "components", "home", "dev", "tmp", "usr", "bin"}  # fmt: skip

# ---- the call


@dataclass(frozen=True)
class PendingCall:
    """What the agent is about to do, as the PreToolUse hook receives it."""

    tool: str
    command: str = ""  # Bash
    path: str = ""  # Edit, Write, MultiEdit, NotebookEdit
    content: str = ""  # the text an edit writes
    cwd: str | None = None


def tool_call(tool_name: str, tool_input: dict[str, Any], cwd: str | None = None) -> PendingCall:
    """A `PendingCall` from the hook's `tool_name` and `tool_input`."""
    command = tool_input.get("command") if tool_name == "Bash" else None
    path = tool_input.get("file_path") or tool_input.get("notebook_path") or ""
    parts = [tool_input.get(k) for k in ("content", "new_string", "new_source")]
    parts += [e.get("new_string") for e in tool_input.get("edits") or [] if isinstance(e, dict)]
    content = "\n".join(p for p in parts if isinstance(p, str))
    return PendingCall(
        tool=tool_name,
        command=command if isinstance(command, str) else "",
        path=path if isinstance(path, str) else "",
        content=content[:MAX_CONTENT],
        cwd=cwd,
    )


# ---- matching


@dataclass
class Match:
    """A cognition that applies to the call, and why."""

    id: int
    category: str
    text: str
    score: float
    why: list[str] = field(default_factory=list)
    ask: bool = False  # a prohibition the user stated, and the call breaks it
    origin: str = ""


def score(call: PendingCall, reading: Reading) -> tuple[float, list[str], bool]:
    """(score, evidence, breaks a prohibition) of one cognition for `call`."""
    if call.command:
        best: tuple[float, list[str], bool] = (0.0, [], False)
        for inv in invocations(call.command):
            found = _score_invocation(inv, reading)
            if found[0] > best[0]:
                best = found
        return best
    if call.path:
        return _score_edit(call, reading)
    return 0.0, [], False


def _distinct(args: tuple[str, ...]) -> list[str]:
    """Arguments worth matching: flags and values, not filler; long paths by their parts."""
    out = []
    for a in args:
        a = a.lower().strip("'\"")
        if a in _PLAIN_ARGS or len(a) < 2 or a.startswith("$"):
            continue
        out.append(a)
    return out


def _score_invocation(inv: Invocation, r: Reading) -> tuple[float, list[str], bool]:
    args = _distinct(inv.args)
    same = [(cmd, role, _sameness(inv, args, cmd)) for cmd, role in r.commands]
    same = [(c, role, how) for c, role, how in same if how]
    for cmd, role, how in sorted(
        same, key=lambda x: (x[2] != "all", x[1] not in ("bad", "banned"))
    ):
        shown = f"`{' '.join([cmd.program, *_distinct(cmd.args)][:4])}`"
        if role == "bad" and how == "all":  # the call is a command that failed before
            extra = 0.5 * len(_distinct(cmd.args))
            return SCORE["program"] + SCORE["command"] + extra, [f"failed before: {shown}"], False
        if role == "banned" and how == "all":  # the user said not to run it
            extra = 0.5 * len(_distinct(cmd.args))
            return SCORE["program"] + SCORE["negated"] + extra, [f"not {shown}"], True
        if role == "bad":  # the same subcommand, other options
            return SCORE["program"] + SCORE["command"], [f"failed before: {shown}"], False
        if role == "fixed":  # it failed, the code was fixed, then it passed: the same test only
            # what it ran on (a test, a file), not its options: `cargo build --release` after
            # a compile error fixed once is no repeat of it
            overlap = len({a for a in _distinct(cmd.args) if not a.startswith("-")} & set(args))
            return SCORE["program"] + 0.5 * overlap, [f"failed once: {shown}"], False
    if any(role in ("good", "usual") and how == "all" for _, role, how in same):
        return 0.0, ["already follows it"], False  # the call is what the cognition asks for
    for cmd, role, how in same:  # the command that works, without some of what it needs
        theirs, ours = {*_distinct(cmd.args), *cmd.env}, {*args, *inv.env}
        if role in ("good", "usual") and how == "sub" and len(theirs & ours) > 1:
            shown = f"`{' '.join([*cmd.env, cmd.program, *_distinct(cmd.args)][:6])}`"
            return SCORE["program"] + SCORE["command"], [f"works as {shown}"], False
    if r.negated and inv.program in r.affirmed and inv.program not in r.negated:
        return 0.0, ["already follows it"], False  # "use uv, not pip" and the call runs uv
    sub = next((a for a in args if not a.startswith("-")), None)
    if inv.program in r.negated and inv.program in r.affirmed and sub in r.affirmed - r.negated:
        return (
            0.0,
            ["already follows it"],
            False,
        )  # "cargo-nextest, not cargo test": `cargo nextest`
    points, why, breaks = 0.0, [], False
    named = inv.program in r.prose or any(c.program == inv.program for c, _ in r.commands)
    if named:
        points += SCORE["program"] * (0.5 if inv.program in _COMMON else 1.0)
        why.append(inv.program)
    both = inv.program in r.affirmed  # "cargo-nextest for everything, not plain cargo test"
    if (
        inv.program in r.negated
        and inv.program not in _COMMON
        and (not both or (sub is not None and sub in r.negated and sub not in r.affirmed))
    ):
        points += SCORE["negated"]
        why.append(f"not {inv.program}")
        breaks = True
    hits = [a for a in args if _named(a, r)]
    denied = [a for a in hits if _denied(a, r)]
    if any(a.startswith("-") and a not in denied for a in hits) and not breaks:
        return 0.0, ["already follows it"], False  # it passes the option the rule asks for
    points += SCORE["argument"] * min(2, len(hits))
    why += hits[:2]
    if denied:
        points += SCORE["negated"]
        breaks = breaks or named
    if not named and not [a for a in denied if a != sub]:
        points = min(points, SCORE["argument"])  # "install" alone is no evidence of the command
    return points, why, breaks


def _sameness(inv: Invocation, args: list[str], cmd: Invocation) -> str | None:
    """ "all" when the call `inv` (its distinct `args`) runs the command `cmd` with all of its
    arguments, "sub" when only the program and its subcommand agree, else None."""
    if cmd.program != inv.program or cmd.runner != inv.runner:
        return None
    theirs = _distinct(cmd.args)
    if inv.program in _COMMON and not theirs:
        return None  # `cd`, `git`, `make` alone say nothing
    if set(theirs) <= set(args) and set(cmd.env) <= set(inv.env):
        return "all"
    sub = next((a for a in theirs if re.fullmatch(r"[a-z][\w:-]+", a)), None)
    if sub and args and sub == next((a for a in args if not a.startswith("-")), None):
        return "sub"
    return None


def _parts(arg: str) -> list[str]:
    """The names in a package or option argument; a file path's folders are no names."""
    if arg.startswith((".", "/", "~")):
        return []
    return [p for p in re.split(r"[/@=:]", arg.lstrip("-")) if len(p) >= 4]


def _denied(arg: str, r: Reading) -> bool:
    """Whether the user's words put `arg` (or a part of it) after a negation, and only there."""
    names = [arg, *_parts(arg)]
    return any(n in r.negated and n not in r.affirmed for n in names)


def _named(arg: str, r: Reading) -> bool:
    if arg in r.prose:
        return True
    stem = arg.lstrip("-")
    if len(stem) >= 4 and (stem in r.prose or stem.rstrip("s") in r.prose):
        return True
    return any(p in r.prose for p in _parts(arg))  # "github.com/rs/zerolog@latest": zerolog


def _score_edit(call: PendingCall, r: Reading) -> tuple[float, list[str], bool]:
    path = call.path
    root = (call.cwd or "").rstrip("/") + "/"
    rel = path[len(root) :] if call.cwd and path.startswith(root) else path.lstrip("/")
    parts = [p for p in rel.lower().split("/") if p]
    if not parts:
        return 0.0, [], False
    points, why, breaks = 0.0, [], False
    tails = ["/".join(parts[i:]) for i in range(len(parts) - 1)]  # the path and its longer tails
    if any(t in r.text_lower for t in tails if "/" in t):
        points += SCORE["path"]
        why.append(rel)
    else:
        name = parts[-1]
        stem = name.split(".", 1)[0]
        if name in r.words and stem not in _COMMON_FILES:
            points += SCORE["basename"]
            why.append(name)
        elif name in r.words:
            points += SCORE["basename"] / 2
            why.append(name)
    project_name = os.path.basename((call.cwd or "").rstrip("/")).lower()
    for folder in parts[:-1]:
        if folder in _COMMON_FOLDERS or len(folder) < 4 or folder not in r.words:
            continue
        if folder == project_name:  # the package named after the project: everything is in it
            continue
        points += SCORE["folder"]
        why.append(f"{folder}/")
        if folder in r.negated:
            points += SCORE["negated"]
            breaks = True
        break
    if call.content and r.identifiers:
        written = identifiers(call.content)
        hits = sorted(r.identifiers & written)
        if hits:
            points += SCORE["identifier"] * min(2, len(hits))
            why += hits[:2]
            if any(h in r.negated for h in hits):
                points += SCORE["negated"]
                breaks = True
    return points, why, breaks


# ---- the store


@dataclass
class ActRecall:
    """What the hook adds before the call: matches, best first, and whether to ask."""

    matches: list[Match]
    decision: str | None = None  # "ask" when a match is a prohibition the call breaks

    def context(self) -> str | None:
        if not self.matches:
            return None
        lines = ["Before this call: notes from earlier sessions that match it."]
        for m in self.matches:
            said = "you said" if m.category in ("preference", "decision") else m.category
            lines.append(f"- [{said}] {_clip(m.text)}")
        return "\n".join(lines)

    def reason(self) -> str | None:
        asked = [m for m in self.matches if m.ask]
        if not asked:
            return None
        return f"lmm: this may break a rule you stated earlier: “{_clip(asked[0].text)}”"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def query_terms(call: PendingCall) -> list[str]:
    """Words of the call that a matching cognition must contain (for the BM25 prefilter)."""
    terms: list[str] = []
    if call.command:
        for inv in invocations(call.command):
            terms.append(inv.program)
            terms += [a.lstrip("-") for a in _distinct(inv.args)][:8]
    elif call.path:
        terms += [p for p in call.path.lower().split("/") if p][-4:]
        if call.content:
            terms += sorted(identifiers(call.content))[:40]
    out: list[str] = []
    for t in terms:
        for part in re.split(r"[^\w]+", t):
            if len(part) >= 2 and part not in out:
                out.append(part)
    return out[:64]


def candidates(
    store: Store, call: PendingCall, project: str | None
) -> tuple[list[Any], dict[int, list[str]]]:
    """Active cognitions of the matched categories in the project (and user-wide): those that
    share a word with the call (best BM25 first), and, of the latest lessons, those whose
    failing command (in their source turns, not always in their text) runs the call's program.
    With the failing commands of the lessons among them."""
    terms = query_terms(call)
    if not terms:
        return [], {}
    match = " OR ".join(quote_fts(t) for t in terms)
    rows = fulltext.matching_cognitions(store, match, CATEGORIES, project, CANDIDATES)
    if not call.command:
        return rows, {}
    seen = {r["id"] for r in rows}
    lessons = fulltext.latest_lessons(store, project, LESSONS)
    ids = [r["id"] for r in rows if r["category"] == "lesson"] + [r["id"] for r in lessons]
    failed = failed_commands(store, ids)
    programs = {inv.program for inv in invocations(call.command)}
    for r in lessons:
        ran = {inv.program for cmd in failed.get(r["id"], []) for inv in invocations(cmd)}
        if r["id"] not in seen and ran & programs:
            rows.append(r)
    return rows, failed


def failed_commands(store: Store, ids: list[int]) -> dict[int, list[str]]:
    """The Bash commands whose failed results the cognitions `ids` were learned from (a lesson's
    source is the failed tool result; the call is in an assistant turn just before it)."""
    if not ids:
        return {}
    rows = reads.lesson_tool_rows(store, ids, CALL_WINDOW)
    out: dict[int, list[str]] = {}
    for row in rows:
        failed = {
            t.get("tool_use_id")
            for t in orjson.loads(row["results"])
            if isinstance(t, dict) and t.get("is_error")
        }
        for call in orjson.loads(row["calls"]):
            if not isinstance(call, dict) or call.get("id") not in failed:
                continue
            if call.get("name") != "Bash":
                continue
            try:
                command = orjson.loads(call.get("input") or "{}").get("command")
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if isinstance(command, str) and command.strip():
                out.setdefault(int(row["cognition_id"]), []).append(command)
    return out


def recall_for(
    store: Store,
    call: PendingCall,
    project: str | None,
    *,
    threshold: float = THRESHOLD,
    ask: bool = True,
) -> ActRecall:
    """The cognitions that apply to `call` in `project`, at most `MAX_ITEMS`, best first.
    With `ask`, a user's prohibition that the call breaks asks for confirmation."""
    rows, failed = candidates(store, call, project)
    found: list[Match] = []
    for row in rows:
        reading = read(row["text"], row["category"])
        if commands := failed.get(row["id"]):
            role = "fixed" if reading.passed else "bad"
            ran = [(inv, role) for command in commands for inv in invocations(command)]
            reading = replace(reading, commands=(*reading.commands, *ran))
        points, why, breaks = score(call, reading)
        if points < threshold:
            continue
        asks = (
            ask
            and breaks
            and points >= ASK_THRESHOLD
            and row["category"] == "preference"
            and reading.prohibition
        )
        found.append(
            Match(int(row["id"]), row["category"], row["text"], points, why, asks, row["origin"])
        )
    found.sort(key=lambda m: (-m.score, -int(m.ask), m.id))
    top = found[:MAX_ITEMS]
    return ActRecall(top, "ask" if any(m.ask for m in top) else None)


# ---- once per session: the CLI keeps what it was told in the conversation


def shown_file(session_id: str) -> Path:
    safe = re.sub(r"[^\w.-]", "_", session_id)[:120] or "_"
    return paths.home() / SHOWN_DIR / safe


def already_shown(session_id: str | None) -> set[int]:
    """Ids of the cognitions act-time recall has shown in this session."""
    if not session_id:
        return set()
    try:
        text = shown_file(session_id).read_text()
    except OSError:
        return set()
    return {int(x) for x in text.split() if x.isdigit()}


def mark_shown(session_id: str | None, ids: list[int]) -> None:
    """Remember that `ids` were shown in this session; forget sessions idle for `SHOWN_DAYS`."""
    if not session_id or not ids:
        return
    path = shown_file(session_id)
    if not path.exists():
        _forget_old(path.parent)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with path.open("a") as f:
        f.write("".join(f"{i}\n" for i in ids))


def _forget_old(folder: Path) -> None:
    cutoff = time.time() - SHOWN_DAYS * 86_400
    for old in folder.glob("*") if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < cutoff:
                old.unlink()


def recall_once(
    store: Store,
    call: PendingCall,
    project: str | None,
    session_id: str | None,
    *,
    ask: bool = True,
) -> ActRecall:
    """`recall_for`, leaving out what this session was already shown (a rule the call breaks
    asks again every time), and remembering what it shows now."""
    result = recall_for(store, call, project, ask=ask)
    seen = already_shown(session_id)
    result.matches = [m for m in result.matches if m.ask or m.id not in seen]
    result.decision = "ask" if any(m.ask for m in result.matches) else None
    mark_shown(session_id, [m.id for m in result.matches if m.id not in seen])
    return result


def to_json(result: ActRecall) -> dict[str, Any]:
    return {
        "context": result.context(),
        "decision": result.decision,
        "reason": result.reason(),
        "matches": [
            {
                "id": m.id,
                "category": m.category,
                "score": round(m.score, 2),
                "why": m.why,
                "ask": m.ask,
                "text": m.text,
            }
            for m in result.matches
        ],
    }
