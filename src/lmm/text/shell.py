"""Shell command lines read as the simple commands they run."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

# Words that start a command without being it.
_WRAPPERS = {"sudo", "env", "time", "nohup", "exec", "command", "nice", "timeout", "xargs"}
# (runner, word): the program is the word after both ("uv run pytest", "python -m pytest").
_RUNNERS = {("uv", "run"), ("poetry", "run"), ("pnpm", "exec"), ("pnpm", "dlx"), ("yarn", "dlx"),
            ("python", "-m"), ("python3", "-m"), ("pipx", "run"), ("hatch", "run"),
            ("bundle", "exec"), ("npm", "exec")}  # fmt: skip
_SOLO_RUNNERS = {"npx", "bunx", "uvx"}


@dataclass(frozen=True)
class Invocation:
    """One simple command of a shell line: its program (through `sudo`, `uv run`, `npx`, ...)
    and its arguments."""

    program: str
    args: tuple[str, ...] = ()
    runner: str = ""  # "uv", "npx", "python": what ran the program, if anything
    env: tuple[str, ...] = ()  # NAME=value assignments before it ("CGO_ENABLED=0")


def invocations(command: str) -> list[Invocation]:
    """The simple commands of a shell line (`a && b | c; d`), each read as `Invocation`."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = ""
        words = list(lexer)
    except ValueError:  # an unclosed quote: read it word by word
        words = command.split()
    out: list[Invocation] = []
    current: list[str] = []
    for w in [*words, ";"]:
        if w and set(w) <= set(";&|()<>\n"):
            if inv := _invocation(current):
                out.append(inv)
            current = []
        else:
            current.append(w)
    return out


def _invocation(words: list[str]) -> Invocation | None:
    i = 0
    runner = ""
    env: list[str] = []
    while i < len(words):
        w = words[i]
        wrapper_option = i > 0 and w.startswith("-") and words[i - 1] in _WRAPPERS
        if re.match(r"^[A-Za-z_]\w*=", w):
            env.append(w)
        if re.match(r"^[A-Za-z_]\w*=", w) or w in _WRAPPERS or wrapper_option:
            i += 1
            continue
        name = w.rsplit("/", 1)[-1]
        if name in _SOLO_RUNNERS and i + 1 < len(words):
            runner, i = name, i + 1
            continue
        if i + 2 < len(words) and (name, words[i + 1]) in _RUNNERS:
            runner, i = name, i + 2
            continue
        args = tuple(a for a in words[i + 1 :] if a)
        return Invocation(name.lower(), args, runner, tuple(env)) if name else None
    return None
