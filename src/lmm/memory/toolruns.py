"""Tool calls of a session paired with their results, and the rules that learn from them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from lmm.memory.seam import Candidate, SessionView, grounds, squash
from lmm.records import Turn
from lmm.text import consolidate
from lmm.text.shell import invocations

SIMILAR_WITHIN = 10  # Bash calls after a failure in which a similar success counts as its fix


@dataclass
class Run:
    """One tool call and what came back."""

    name: str
    call_key: str  # the assistant turn that made the call
    command: str  # Bash: the command line; other tools: the file path or ""
    result_key: str | None = None
    ok: bool = True
    output: str = ""
    index: int = 0  # position of the call turn in the session
    seq: int = 0  # position of the call among all calls of the session


_RESULT_HEAD = re.compile(r"^\[result(?:[:,][^\]]*)?\]\s?")
_PROTOCOL = re.compile(
    r"doesn't want to (?:proceed|take this action)|requires approval|haven't granted|"
    r"was blocked|String to replace not found|has not been read yet|Found \d+ matches of the|"
    r"No such tool available|is not running, so cannot be killed|<tool_use_error>",
)
_REJECTION = re.compile(r"reason for the rejection:\s*(.+)", re.S)


def rejection_reason(turn: Turn) -> str | None:
    """The words the user typed when rejecting a tool call, if this result carries them."""
    m = _REJECTION.search(turn.text)
    return m.group(1).strip() if m and len(m.group(1).split()) >= 2 else None


def runs(session: SessionView) -> list[Run]:
    """Every tool call with its result, in conversation order."""
    by_id: dict[str, Run] = {}
    out: list[Run] = []
    for i, turn in enumerate(session.turns):
        for call in turn.tool_calls:
            run = Run(call.name, turn.key, _command(call.name, call.input), index=i, seq=len(out))
            by_id[call.id] = run
            out.append(run)
        if turn.tool_results:
            output = _RESULT_HEAD.sub("", turn.text)
            for res in turn.tool_results:
                if (done := by_id.get(res.tool_use_id)) is not None:
                    done.result_key, done.ok, done.output = turn.key, not res.is_error, output
    return out


def _command(name: str, raw: str) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    value = data.get("command") if name == "Bash" else data.get("file_path")
    return value if isinstance(value, str) else ""


# ---- errors

_TRACEBACK_END = re.compile(r"^\w*(?:Error|Exception)\b:?.*$", re.M)  # a traceback's last line
_QUOTED_TRACEBACK = re.compile(r"^\s+\w*(?:Error|Exception): .*$", re.M)  # quoted by a tool (uv)
_ERROR_LINES = [
    re.compile(r"^.*command not found.*$", re.M),
    _TRACEBACK_END,
    re.compile(r"^.*(?:No such file or directory|Permission denied|not recognized as).*$", re.M),
    re.compile(r"^thread '[^']*' panicked at .*(?:\n.*)?$", re.M),  # Rust: where, then the message
    re.compile(r"^(?:error|fatal|ERROR|FATAL|npm ERR!)[\[:\s].*$", re.M),
    re.compile(r"^E\s{2,}\S.*$", re.M),  # pytest's assertion detail
    # pytest's short summary: "FAILED tests/x.py::test_y - OperationalError: database is locked"
    re.compile(r"^(?:FAILED|ERROR) \S+ - (\S.*)$", re.M),
    _QUOTED_TRACEBACK,
    re.compile(r"^\s*[×✗✘]\s+\S.*$", re.M),  # miette-style reports (cargo-dist, ...)
]
# Any other tool's words for failing ("cgo: C compiler "gcc" not found", "⨯ release failed ...
# error=git is in a dirty state"): read when none of the known forms above matches.
_SAYS_FAILURE = re.compile(
    r"^.*\b(?:error|errors|failed|failure|fatal|not found|cannot|can't|unable to|refused)\b.*$",
    re.I | re.M,
)
_ENVIRONMENT = re.compile(
    r"command not found|No module named|ModuleNotFoundError|Permission denied|not recognized|"
    r"ENOENT|cannot find|unknown option|unrecognized argument|not installed|No such file",
    re.I,
)


def error_line(output: str) -> str | None:
    """The line of a failed tool's output that says what went wrong, or None."""
    if _PROTOCOL.search(output[:400]):
        return None
    for rx in _ERROR_LINES:
        found = rx.findall(output)
        if found:
            line = found[-1] if rx in (_TRACEBACK_END, _QUOTED_TRACEBACK) else found[0]
            line = re.sub(r"^(?:E|[×✗✘])\s+", "", line.strip())
            return re.sub(r"\s*\n\s*", " ", line)[:200]
    if said := _SAYS_FAILURE.search(output):
        return re.sub(r"^\W+", "", said.group(0).strip())[:200] or None
    return None


# ---- commands

_SHELL_NOISE = re.compile(r"\s*(?:2>&1|\|\s*(?:head|tail|grep|less|cat)\b.*)$")
_KINDS = [
    ("run the tests", re.compile(r"\b(?:pytest|unittest|tox|nox|jest|vitest|mocha|cargo test|"
                                 r"make (?:test|check)|"
                                 r"go test|npm test|npm run test|yarn test|pnpm test|bun test)\b")),
    ("type-check", re.compile(r"\b(?:mypy|pyright|ty check|tsc)\b")),
    ("lint", re.compile(r"\b(?:ruff check|flake8|pylint|eslint|npm run lint|yarn lint)\b")),
    ("format", re.compile(r"\b(?:ruff format|black|prettier|gofmt|cargo fmt)\b")),
    ("build", re.compile(r"\b(?:npm run build|yarn build|pnpm build|cargo build|go build|"
                         r"make(?: \w+)?$|uv build|python -m build|vite build)\b")),
]  # fmt: skip


_FILE_ARG = re.compile(
    r"\.(?:py|pyi|js|ts|tsx|jsx|json|md|txt|toml|ya?ml|cfg|ini|html|css|sh|lock|log|csv)$"
)
_SETUP = re.compile(r"^(?:source|\.)\s+\S*activate\b")


def _segments(command: str) -> list[str]:
    """The parts of a command's first line, without `cd`/`export`, pipes to pagers, file
    arguments and verbosity flags."""
    first = command.strip().splitlines()[0] if command.strip() else ""
    parts = [p.strip("() ") for p in _split_unquoted(first.strip("() "))]
    out = []
    for part in parts:
        if not part or re.match(r"^(?:cd|export|set)\b", part):
            continue
        words: list[str] = []
        for w in _SHELL_NOISE.sub("", part).split():
            if re.match(r"^-(?:v+|x|q|s|-tb=\w+|-verbose|-quiet)$", w):
                continue
            argument = words and not w.startswith("-") and not _SETUP.match(" ".join(words))
            if argument and (
                _FILE_ARG.search(w) or ("/" in w and not w.startswith((".venv", "./")))
            ):
                continue  # a file argument
            words.append(w)
        if words:
            out.append(" ".join(words))
    return out


_QUOTED = re.compile(r"'[^']*'?|\"[^\"]*\"?")


def _split_unquoted(line: str) -> list[str]:
    """`line` split at `&&` and `;` outside quotes: `pnpm pkg set x='pnpm build && deploy'` is
    one command."""
    masked = _QUOTED.sub(lambda m: "\0" * len(m.group(0)), line)
    out, last = [], 0
    for m in re.finditer(r"&&|;", masked):
        out.append(line[last : m.start()])
        last = m.end()
    return [*out, line[last:]]


def base_command(command: str) -> str:
    """The reusable part of a command: no `cd x &&`, pipes, file arguments or verbosity flags."""
    return " && ".join(_segments(command))[:160]


def tool_command(command: str) -> tuple[str, str] | None:
    """(purpose, command) for a build/test/lint/format/type-check command, with the venv
    activation it needs; None for anything else (installs included)."""
    segments = _segments(command)
    for i, seg in enumerate(segments):
        if _INSTALL.match(seg):
            continue
        purpose = command_purpose(_QUOTED.sub("''", seg))  # what a quoted argument says is data
        if purpose:
            setup = [s for s in segments[:i] if _SETUP.match(s)]
            m = next(rx for p, rx in _KINDS if p == purpose).search(seg)
            assert m is not None
            flag = seg.find(" -", m.end())  # options vary from run to run; the tool does not
            return purpose, " && ".join([*setup, seg if flag < 0 else seg[:flag]])
    return None


_INSTALL = re.compile(
    r"^(?:uv (?:add|pip|sync|tool)|pip3? install|poetry add|npm (?:install|i)\b|yarn add|"
    r"pnpm add|brew|apt|sudo apt|cargo install|go install)"
)


_TOOLCHAINS = {
    "python": "pytest unittest tox nox mypy pyright ty ruff flake8 pylint black",
    "javascript": "jest vitest mocha npm yarn pnpm bun tsc eslint prettier vite",
    "rust": "cargo rustc clippy",
    "go": "go gofmt golangci-lint",
}
_TOOLCHAIN_OF = {tool: chain for chain, tools in _TOOLCHAINS.items() for tool in tools.split()}


def command_subject(purpose: str, command: str, prefix: str = "command") -> str:
    """What a build/test/lint/format/type-check command is the way to do: one subject per purpose
    and toolchain, so a newer command for it (`uv run ty check` after `uv run pyright`)
    supersedes the older one, while a repository's Python tests and JavaScript tests coexist."""
    rx = next(rx for p, rx in _KINDS if p == purpose)
    m = rx.search(command)
    tool = m.group(0).split()[0] if m else _program(command)
    env = sorted({e.split("=", 1)[0] for inv in invocations(command) for e in inv.env})
    # set variables make another recipe (a cross-build beside the plain build), not a newer one
    return f"{prefix} to {purpose} ({_TOOLCHAIN_OF.get(tool, tool)}{''.join(f' {e}' for e in env)})"


def command_purpose(command: str) -> str | None:
    for purpose, rx in _KINDS:
        if rx.search(command):
            return purpose
    return None


def _program(command: str) -> str:
    """The program a command runs, looking through `uv run`, `python -m`, `npx` and venvs."""
    words = base_command(command).replace("&&", " ").split()
    skip = {"uv", "run", "poetry", "python", "python3", "-m", "npx", "pnpm", "yarn", "exec",
            "source", ".venv/bin/activate", "bunx", "env", "sudo", "time"}  # fmt: skip
    for w in words:
        if w not in skip and not w.startswith("-") and "=" not in w:
            return w.rsplit("/", 1)[-1]
    return words[0] if words else ""


# Programs whose first argument says what they do, and the subcommands that change the project
# rather than run it: `cargo add clap --features derive` after a failed `cargo build` is its fix,
# no other form of the build.
_SUBCOMMANDS = frozenset(
    {"cargo", "go", "npm", "pnpm", "yarn", "bun", "uv", "git", "docker", "podman", "kubectl", "gh",
     "make", "poetry", "dotnet", "mvn", "gradle", "rustup", "brew", "apt", "pip", "pip3", "fly",
     "flyctl", "terraform", "helm"}
)  # fmt: skip
_CHANGES = frozenset({"add", "install", "i", "remove", "rm", "uninstall", "init", "get", "update",
                      "upgrade", "sync", "lock", "mod"})  # fmt: skip


def _action(command: str) -> str:
    """The program a command runs and, for one with subcommands, which one (`cargo build`)."""
    program = _program(command)
    if program not in _SUBCOMMANDS:
        return program
    words = base_command(command).replace("&&", " ").split()
    after = words[words.index(program) + 1 :] if program in words else []
    sub = next((w for w in after if not w.startswith(("-", "+"))), "")
    return f"{program} {sub}".strip()


def _similar(a: str, b: str) -> bool:
    """Whether `b` is another form of command `a` (the same program, not a change to the
    project such as `cargo add`), or shares half its words."""
    if a == b:
        return False
    changes = _action(b).partition(" ")[2] in _CHANGES and _action(a) != _action(b)
    if _program(a) and _program(a) == _program(b) and not changes:
        return True
    return consolidate.jaccard(a, b) >= 0.5 and not changes


def _grounded(turn: Turn, piece: str) -> str | None:
    """`piece` as it appears in the turn (its tool inputs hold JSON-escaped commands)."""
    text = grounds(turn)
    for form in (piece, json.dumps(piece)[1:-1], piece.splitlines()[0][:80] if piece else ""):
        if form and squash(form) in text:
            return form
    return None


def candidates(session: SessionView) -> Iterator[Candidate]:
    """Every tool-run candidate of the session."""
    all_runs = runs(session)
    bash = [r for r in all_runs if r.name == "Bash" and r.command and r.result_key]
    yield from _retries(session, bash, all_runs)
    yield from _diagnoses(session, all_runs)
    yield from _commands(session, bash)
    yield from _hooks(session)


_LOOK_ONLY = re.compile(
    r"^(?:ls|cat|head|tail|grep|rg|find|which|echo|pwd|git (?:status|diff|log|show)|wc|file|tree|"
    r"env|type)\b"
)


def _retries(session: SessionView, bash: list[Run], all_runs: list[Run]) -> Iterator[Candidate]:
    """A failed command, then (soon) a similar command that worked. With nothing done between
    them the new form of the command is the fix (gotcha/workflow: "`pytest` fails here; `source
    .venv/bin/activate && pytest` works"); with other commands run between, those fixed it
    (lesson: "... failed; `uv tool install --force .` fixed it"). Edits between them mean the
    code was fixed: that is `_diagnoses`' business."""
    seen: set[tuple[str, str]] = set()
    for i, bad in enumerate(bash):
        err = None if bad.ok else error_line(bad.output)
        if err is None or bad.result_key is None:
            continue
        good = next(
            (g for g in bash[i + 1 : i + 1 + SIMILAR_WITHIN] if _similar(bad.command, g.command)),
            None,
        )
        if good is None or not good.ok:
            continue
        between = [r for r in all_runs if bad.seq < r.seq < good.seq and r.ok]
        if any(r.name in _EDITORS for r in between):
            continue
        fixes = [r for r in between if r.name == "Bash" and not _LOOK_ONLY.match(r.command)]
        b, g = base_command(bad.command), base_command(good.command)
        helper = fixes[-1] if fixes else good
        call = session.turn(helper.call_key)
        quote = _grounded(call, helper.command) if call else None
        if (b, g) in seen or not b or not g or quote is None or (b == g and not fixes):
            continue
        seen.add((b, g))
        env = bool(_ENVIRONMENT.search(err))
        if fixes:
            fix = base_command(helper.command)
            category, text = "lesson", f"`{b}` failed ({err}); running `{fix}` fixed it."
        else:
            category = "gotcha" if env else "workflow"
            text = f"`{b}` fails here ({err}); `{g}` works instead."
        yield Candidate(
            category=category,
            text=text,
            turn_key=bad.result_key,
            quote=err,
            more=[(helper.call_key, quote)],
            keywords=sorted({_program(b), _program(g)} - {""}),
            salience=0.6 if env else 0.5,
        )


_CAUSE = re.compile(
    r"\b(?:the (?:issue|problem|error|bug|cause)(?: here)? (?:is|was)|this (?:happens|happened|is|"
    r"was) because|because|caused by|the fix (?:is|was)|fixed by|is missing|was missing|"
    r"need(?:s|ed)? to (?:be|use|add|install|import|set|pass|call)|should (?:be|use))\b",
    re.I,
)
# How an explanation of an error reads when it names no cause word: what a library lacks or
# needs, where a thing lives, since when it is available ("jiff has no `parse_from_str`",
# "derive macros live behind the `derive` feature", "`LazyLock` is only stable since 1.80").
_EXPLAINS = re.compile(
    r"\b(?:ha(?:s|ve) no|lives? (?:behind|in|under)|requires?|"
    r"needs?(?! to (?:fix|update|check|look|see|investigate|find|debug|run|modify|change))|"
    r"only (?:stable|available) (?:since|in|from)|"
    r"(?:is|are) (?:not|no longer) (?:supported|available|stable)|"
    r"(?:does not|doesn't|do not|don't) (?:have|exist|support|accept|implement)|returns? an?|"
    r"expects?|(?:is|are) dropped)\b",
    re.I,
)
_EFFECT = re.compile(r"\b(?:so (?:it|this|that) (?:panics|fails|crashes|breaks|errors))\b", re.I)
_FIX = re.compile(r"^(?:(?:the )?fix(?:ed)?\b|so (?:the|we|i)\b|instead\b)", re.I)
_TOOL_LINE = re.compile(r"^\[tool: [^\]]*\].*$", re.M)
# Failures that teach nothing beyond the session: a test's own assertion on the code being
# written, a summary line with no detail, a path the agent got wrong.
_NO_LESSON = re.compile(
    r"^(?:AssertionError\b|assert |error: test run failed|error: could not compile|"
    r"FAILED\b|error: \d+ tests? failed)|file or directory not found|No such file or directory",
)
_CODE = re.compile(r"`([^`]{2,80})`")


def _distinct(text: str) -> set[str]:
    """Distinctive words of an error or an explanation: identifiers and code, no plain words."""
    words = set(re.findall(r"[A-Za-z_][\w:.]*[A-Z_:.\d][\w:.]*|[a-z]+_[a-z_]+", text))
    for code in _CODE.findall(text):
        words |= set(re.findall(r"[A-Za-z_]\w{2,}", code))
    return {w.strip(".:").lower() for w in words if len(w.strip(".:")) > 2}


def _diagnosis(prose: str, err: str, output: str) -> str | None:
    """The sentence of the assistant's `prose` that explains `err`: one with a cause word, or one
    that explains (`_EXPLAINS`) and names something the error or its output names or says what
    it caused ("so it panics"); with the
    sentence after it when that one gives the fix ("... have no `latency_ms`, so it panics. Fix:
    skip those lines")."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+|\n+", prose) if p.strip()]
    named = _distinct(err) | _distinct(output[:4000])
    for i, sentence in enumerate(parts):
        if len(sentence) < 20 or sentence.endswith("?"):
            continue
        about = _distinct(sentence) & named or _EFFECT.search(sentence)
        explains = _EXPLAINS.search(sentence) and about
        if not (_CAUSE.search(sentence) or explains):
            continue
        sentence = re.sub(r"^(?:my (?:fault|bad|mistake)|oops|ah|right|ok(?:ay)?)\b[:,.!]?\s*", "",
                          sentence, flags=re.I)  # fmt: skip
        nxt = parts[i + 1] if i + 1 < len(parts) else ""
        if _FIX.match(nxt) and not nxt.endswith((":", "?")):
            sentence = f"{sentence} {nxt}"
        return re.sub(r"\s*[:;,]$", ".", sentence)
    return None


def _diagnoses(session: SessionView, all_runs: list[Run]) -> Iterator[Candidate]:
    """An error, then the assistant's next words naming its cause or fix: a lesson."""
    position = {t.key: i for i, t in enumerate(session.turns)}
    seen: set[str] = set()
    failures = [r for r in all_runs if not r.ok and r.result_key is not None]
    for turn in session.turns:  # errors the user pastes ("I got this: Traceback ...")
        pasted = re.search(r"Traceback \(most recent call last\)|\b\w+Error: ", turn.text)
        if turn.role == "user" and turn.kind == "message" and not turn.agent_id and pasted:
            failures.append(Run("paste", turn.key, "", turn.key, False, turn.text, -1, -1))
    for run in failures:
        err = error_line(run.output)
        if err is None or err in seen or run.result_key is None or _NO_LESSON.search(err):
            continue
        start = position[run.result_key] + 1
        for turn in session.turns[start : start + 6]:
            if turn.role == "user" and turn.kind == "message":
                break
            if turn.role != "assistant" or not turn.text:
                continue
            prose = _TOOL_LINE.sub("", turn.text)
            cause = _diagnosis(prose, err, run.output)
            if cause is None:
                continue
            seen.add(err)
            fixed = _passed_later(all_runs, run)
            text = f"{err} → {cause[:300]}" + (f" (then `{fixed}` passed)" if fixed else "")
            quote = next(p for p in prose.splitlines() if p.strip())
            quote = cause if squash(cause) in squash(prose) else quote
            yield Candidate(
                category="lesson",
                text=text,
                turn_key=run.result_key,
                quote=err,
                more=[(turn.key, quote)],
                keywords=sorted(consolidate.tokens(err))[:8],
                salience=0.5,
            )
            break


def _passed_later(all_runs: list[Run], failed: Run) -> str | None:
    """A later passing command that shows the error fixed: a part of one with the same program
    and subcommand (`cargo build -q` of `cargo build -q && ./bench`), else,
    once files were edited, any later run of the same program (`cargo nextest run` compiles what
    `cargo build` could not). A lesson that says so is no standing failure of its command."""
    if failed.name != "Bash":
        return None
    actions = {_action(seg) for seg in _segments(failed.command)} - {""}
    programs_list = [[a.split()[0]] for a in actions]  # compared with a part's first word
    edited = False
    fallback = None
    for r in all_runs:
        if r.seq <= failed.seq:
            continue
        edited = edited or (r.name in _EDITORS and r.ok)
        if r.name != "Bash" or not r.ok:
            continue
        same = [seg for seg in _segments(r.command) if _action(seg) in actions]
        if same:
            return same[0]
        if fallback is None and edited:
            fallback = next(
                (seg for seg in _segments(r.command) if _action(seg).split()[:1] in programs_list),
                None,
            )
    return fallback


_BASH_INPUT = re.compile(r"<bash-input>(.*?)</bash-input>", re.S)


def _commands(session: SessionView, bash: list[Run]) -> Iterator[Candidate]:
    """Build/test/lint/format commands that ran successfully (or that the user ran by hand)."""
    seen: set[str] = set()
    found: list[tuple[str, str, str]] = []  # (turn key, raw command, base)
    for r in bash:
        if r.ok:
            found.append((r.call_key, r.command, base_command(r.command)))
    for turn in session.turns:
        if turn.role == "user" and not turn.agent_id and (m := _BASH_INPUT.search(turn.text)):
            found.append((turn.key, m.group(1).strip(), base_command(m.group(1))))
    for key, raw, _ in found:
        tool = tool_command(raw)
        if tool is None or tool[1] in seen or len(tool[1]) > 100:
            continue
        purpose, base = tool
        said = session.turn(key)
        quote = _grounded(said, raw) if said else None
        if quote is None:
            continue
        seen.add(base)
        yield Candidate(
            category="workflow",
            text=f"To {purpose}: `{base}`.",
            turn_key=key,
            quote=quote,
            keywords=[purpose.split()[-1], _program(base)],
            salience=0.45,
            subject=command_subject(purpose, base),
            value=base,
        )


_HOOK = re.compile(r"(\w+)(?::(\w+))?\S*\s+\[([^\]]+)\] completed successfully")


def _hooks(session: SessionView) -> Iterator[Candidate]:
    """Hooks the user configured ("PostToolUse:Edit [uv run ruff format] completed ...")."""
    seen: set[tuple[str, str]] = set()
    for turn in session.turns:
        if turn.kind != "system":
            continue
        clean = re.sub(r"\x1b\[[0-9;]*m", "", turn.text)
        m = _HOOK.search(clean)
        if not m or (m.group(1), m.group(3)) in seen:
            continue
        seen.add((m.group(1), m.group(3)))
        quote = f"[{m.group(3)}] completed successfully"
        command = _SHELL_NOISE.sub("", m.group(3)).strip()
        after = " after edits" if m.group(1).startswith("PostToolUse") else ""
        purpose = command_purpose(command)
        yield Candidate(
            category="workflow",
            text=f"A {m.group(1)} hook runs `{command}`{after}.",
            turn_key=turn.key,
            quote=quote,
            keywords=[m.group(1), _program(m.group(3))],
            salience=0.4,
            subject=command_subject(purpose, command, f"{m.group(1)} hook") if purpose else None,
            value=command if purpose else None,
        )


_EDITORS = {"Edit", "Write", "MultiEdit", "NotebookEdit"}
