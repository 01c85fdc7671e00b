"""The live view of what lmm's hooks put in front of the agent: each recent session-start brief,
prompt recall and rule before a tool call, newest first, with the prompt or tool that asked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lmm import paths
from lmm.paths import INJECTIONS_NAME
from lmm.text.redact import redact
from lmm.ui.layout import Links, esc, shorten, when
from lmm.ui.sessions import session_path

REFRESH = 5  # seconds between reloads of the live page
SHOWN = 50  # injections on the page


@dataclass(frozen=True)
class Injection:
    at: str
    event: str
    session: str
    cwd: str
    prompt: str
    text: str
    tool: str = ""


FIELDS = ("at", "event", "session", "cwd", "prompt", "text", "tool")  # of a line, in order


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return []


def recent(home: Path | None = None, limit: int = SHOWN) -> list[Injection]:
    """The newest `limit` injections, newest first (broken lines skipped)."""
    path = (home or paths.home()) / INJECTIONS_NAME
    out: list[Injection] = []
    for line in reversed(_lines(path.with_name(path.name + ".1")) + _lines(path)):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if not isinstance(d, dict):
            continue
        out.append(Injection(*(str(d.get(k) or "") for k in FIELDS)))
        if len(out) >= limit:
            break
    return out


def injected_page(links: Links, live: bool, home: Path | None = None) -> tuple[str, str]:
    items = recent(home)
    cards = []
    for i in items:
        if i.event == "UserPromptSubmit":
            why = f"prompt “{esc(shorten(redact(i.prompt), 200))}”"
        elif i.event == "PreToolUse":
            why = f"before a <b>{esc(i.tool or 'tool')}</b> call: the rules and lessons it matches"
        else:
            why = "session start: the project's brief"
        session = (
            f' · <a href="{links.href(session_path(i.session))}">session {esc(i.session[:8])}</a>'
            if i.session
            else ""
        )
        cards.append(
            f"<div class='card' data-item><div class='meta'>{esc(when(i.at))} · {esc(i.event)} · "
            f"<span class='mono'>{esc(i.cwd)}</span>{session}</div><div>{why}</div>"
            f"<details><summary>{len(i.text):,} characters injected · "
            f"{esc(shorten(i.text, 80))}</summary><pre class='injected'>{esc(i.text)}</pre>"
            "</details></div>"
        )
    toggle = (
        f'live, every {REFRESH} s · <a href="{links.href("/injected", live="0")}">pause</a>'
        if live
        else f'paused · <a href="{links.href("/injected")}">go live</a>'
    )
    body = (
        "<h1>Injected</h1><p class='sub'>What lmm's hooks put in front of the agent, newest "
        "first: the brief at each session start, the memory recalled for each prompt (with the "
        f"prompt that asked) and the rules matched before a tool call ({toggle}). "
        f'<a href="{links.href("/recall")}">Recall</a> shows, for any prompt, the hits and '
        "the evidence behind such a brief.</p>"
        + (
            "".join(cards)
            or "<p class='empty'>Nothing injected yet. Once the hooks are installed "
            "(<code>lmm install-hooks</code>), each prompt that recalls memory appears here.</p>"
        )
    )
    return "Injected", body
