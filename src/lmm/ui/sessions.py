"""Projects and sessions, newest first, and one session's transcript in conversation order."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import quote

from lmm.records import Turn
from lmm.store import browse
from lmm.store.db import Store
from lmm.ui.layout import Links, Paging, badge, esc, label, options, shorten, when
from lmm.ui.markup import edit_diff, edited_file, render

# Claude Code wraps slash commands and their output in these tags; shown quietly, not as prompts.
COMMAND_TAGS = ("<command-name>", "<command-message>", "<local-command-stdout>",
                "<local-command-stderr>", "<bash-stdout>", "<bash-stderr>")  # fmt: skip
_TAG = re.compile(r"</?[a-z][\w-]*>")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]")


def plain(text: str) -> str:
    """`text` without terminal escape sequences (colours, cursor moves) that tools printed."""
    return _ANSI.sub("", text)


def title_of(prompt: str, limit: int) -> str:
    """A prompt as a one-line title: escapes and tags like <bash-input> dropped."""
    return shorten(_TAG.sub(" ", plain(prompt)), limit)


def is_command(text: str) -> bool:
    return text.lstrip().startswith(COMMAND_TAGS)


def turn_anchor(key: str) -> str:
    """The element id of a turn in the session view."""
    return "t-" + key


def session_path(session_id: str) -> str:
    """The session view's path; ids from generic imports may hold any character."""
    return "/session/" + quote(session_id, safe="")


def session_title(store: Store, session_id: str, limit: int = 80) -> str:
    """A session's title, else its first prompt as one line, else 'session <id>'."""
    row = browse.title_and_first_prompt(store, session_id)
    if row is not None and row["title"]:
        return shorten(str(row["title"]), limit)
    if row is not None and row["first"]:
        return title_of(str(row["first"]), limit)
    return f"session {session_id[:8]}"


def cited_link(links: Links, session_id: str, count: int) -> str:
    """'N memories cite it', linked to those memories (plain text when none)."""
    words = f"{count} memor{'y cites' if count == 1 else 'ies cite'} it"
    if not count:
        return esc(words)
    return f'<a href="{links.href("/memories", session=session_id, status="all")}">{words}</a>'


def _project_cards(store: Store, links: Links, project_id: int | None, query: str) -> str:
    cards = []
    for p in browse.projects(store):
        cls = "card sel" if p["id"] == project_id else "card"
        cards.append(
            f'<a class="{cls}" href="{links.href("/", project=p["id"], q=query)}">'
            f"<b>{esc(p['name'])}</b><div class='meta mono'>{esc(p['path'])}</div>"
            f"<div class='meta'>{p['sessions']} sessions · {p['memories']} memories · "
            f"last {esc(when(p['last']))}</div></a>"
        )
    return (
        f"<details class='projects'><summary>Projects · {len(cards)}</summary>"
        f"<div class='grid'>{''.join(cards)}</div></details>"
    )


def search_form(links: Links, path: str, query: str, placeholder: str, controls: str = "") -> str:
    """A GET form with a labelled search box, extra `controls` and a Search button."""
    return (
        f"<form method='get' action='{esc(path)}' class='row' role='search' "
        f"style='margin-bottom:10px'>{links.hidden()}"
        f"{label('q', 'Search', hidden=True)}<input type='search' id='q' name='q' class='grow' "
        f"value='{esc(query)}' placeholder='{esc(placeholder)}'>{controls}"
        "<button type='submit'>Search</button></form>"
    )


def sessions_page(
    store: Store, links: Links, project_id: int | None, query: str = "", page_no: str = ""
) -> tuple[str, str]:
    """The home page: a search box and project filter, the sessions list a page at a time, the
    project cards folded away."""
    plist = browse.projects(store)
    chosen = next((p for p in plist if p["id"] == project_id), None)
    total = browse.count_sessions(store, project_id, query)
    paging = Paging.of(page_no, total)
    rows = []
    for s in browse.sessions(store, project_id, paging.size, paging.offset, query):
        title = s["title"] or title_of(s["first"] or "(no prompt)", 110)
        sub = badge("sub-agent") + " " if s["parent_session_id"] else ""
        rows.append(
            f"<tr data-item><td class='meta'>{esc(when(s['ended_at'] or s['started_at']))}</td>"
            f'<td>{sub}<a href="{links.href(session_path(s["id"]))}">{esc(title)}</a>'
            f"<div class='meta mono'>{esc(s['id'])}</div></td>"
            f"<td class='wide'>{esc(s['project'] or '')}</td><td class='score'>{s['turns']}</td>"
            f"<td class='score wide'>{cited_link(links, s['id'], s['cited']) if s['cited'] else 0}"
            "</td></tr>"
        )
    choices = [("", "All projects")] + [(str(p["id"]), p["name"]) for p in plist]
    controls = (
        f"{label('project', 'Project', hidden=True)}<select id='project' name='project'>"
        f"{options(choices, str(project_id or ''))}</select>"
    )
    scope = f" in {esc(chosen['path'])}" if chosen else ""
    found = f", matching “{esc(query)}”" if query.strip() else ""
    clear = f' · <a href="{links.href("/")}">show all</a>' if chosen or query.strip() else ""
    keep = {"project": project_id, "q": query}
    pager = paging.nav(links, "/", "sessions", **keep)
    if rows:
        listing = (
            f"{pager}<table><tr><th>Last turn</th><th>Session</th><th class='wide'>Project</th>"
            f"<th>Turns</th><th class='wide'>Memories</th></tr>{''.join(rows)}</table>{pager}"
        )
    elif query.strip() or chosen:
        listing = "<p class='empty'>No session matches.</p>"
    else:
        listing = "<p class='empty'>No sessions yet: run <code>lmm ingest</code>.</p>"
    body = (
        "<h1>Sessions</h1>"
        f"<p class='sub'>Every conversation lmm has read, newest first{scope}{found}{clear}.</p>"
        + search_form(links, "/", query, "Title or words said in the session", controls)
        + _project_cards(store, links, project_id, query)
        + listing
    )
    return "Sessions", body


# ---- one session


def _tool_call(name: str, input_json: str) -> str:
    """A collapsed tool call: file edits as a diff, other calls as their JSON input."""
    diff = edit_diff(name, input_json)
    said = edited_file(input_json) if diff else input_json  # an edit: the file it changes
    return (
        f"<details class='tool'><summary>tool call · <b>{esc(name)}</b> "
        f"<span class='mono'>{esc(shorten(said, 90))}</span></summary>"
        f"{diff or f'<pre>{esc(input_json)}</pre>'}</details>"
    )


def _assistant_body(turn: Turn) -> str:
    """Prose as text; each '[tool: NAME] ...' line the reader wrote becomes its collapsed call."""
    calls = list(turn.tool_calls)
    parts: list[str] = []
    prose: list[str] = []

    def flush() -> None:
        if "".join(prose).strip():
            parts.append(render(chr(10).join(prose).strip()))
        prose.clear()

    for line in turn.text.split("\n"):
        if line.startswith("[tool: ") and calls and line.startswith(f"[tool: {calls[0].name}]"):
            flush()
            call = calls.pop(0)
            parts.append(_tool_call(call.name, call.input))
        else:
            prose.append(line)
    flush()
    parts += [_tool_call(c.name, c.input) for c in calls]  # calls the text did not mention
    if turn.thinking:
        parts.insert(
            0, f"<details><summary>thinking</summary><div class='text'>{esc(turn.thinking)}</div>"
            "</details>"
        )  # fmt: skip
    return "".join(parts)


def _result_body(turn: Turn, tool_names: dict[str, str]) -> str:
    error = any(r.is_error for r in turn.tool_results)
    names = ", ".join(
        dict.fromkeys(tool_names.get(r.tool_use_id, "tool") for r in turn.tool_results)
    )
    text = turn.text
    for prefix in ("[result, error] ", "[result] "):
        text = text.removeprefix(prefix)
    return (
        f"<details class='{'err' if error else ''}'><summary>{esc(names)} result"
        f"{' · error' if error else ''} · {esc(shorten(text, 90))}</summary>"
        f"<pre>{esc(text)}</pre></details>"
    )


def render_turn(turn: Turn, links: Links, tool_names: dict[str, str], memories: list[int]) -> str:
    turn = replace(turn, text=plain(turn.text), thinking=plain(turn.thinking))
    side = turn.is_sidechain or turn.agent_id is not None
    cls = ["turn", turn.role]
    if side:
        cls.append("side")
    if turn.kind == "tool_result":
        cls[1] = "tool"
        body = _result_body(turn, tool_names)
        who = ""
    elif turn.role == "assistant":
        body = _assistant_body(turn)
        who = "Assistant"
    elif turn.kind == "message" and turn.role == "user" and not is_command(turn.text):
        body = render(turn.text)
        who = turn.speaker or "User"
    else:  # summaries, compaction, system and meta records: present but quiet
        cls.append("quiet")
        label = turn.extra.get("subtype") or ("command" if is_command(turn.text) else turn.kind)
        if not turn.text.strip():
            body = f"<span class='meta'>{esc(label)}</span>"
        else:
            body = (
                f"<details><summary>{esc(label)} · {esc(shorten(turn.text, 90))}</summary>"
                f"<div class='text'>{esc(turn.text)}</div></details>"
            )
        who = ""
    tags = [badge(f"sub-agent {turn.agent_id[:8]}")] if side and turn.agent_id and who else []
    tags += [
        f'<a class="badge" href="{links.href(f"/memory/{m}")}">memory #{m}</a>' for m in memories
    ]
    head = (
        f"<div class='row'><span class='who'>{esc(who)}</span>"
        f"<span class='meta'>{esc(when(turn.timestamp))}</span>{' '.join(tags)}</div>"
        if who or tags
        else ""
    )
    return f'<div class="{" ".join(cls)}" id="{esc(turn_anchor(turn.key))}">{head}{body}</div>'


def session_page(store: Store, links: Links, session_id: str) -> tuple[str, str] | None:
    """The transcript of one session, or None when there is no such session."""
    info = browse.session_info(store, session_id)
    if info is None:
        return None
    turns = store.session_turns(session_id)
    memories = browse.memory_links(store, session_id)
    tool_names: dict[str, str] = {}
    out = []
    for t in turns:
        for c in t.tool_calls:
            tool_names[c.id] = c.name
        out.append(render_turn(t, links, tool_names, memories.get(t.key, [])))
    branch = next((t.git_branch for t in turns if t.git_branch), None)
    first = next(
        (
            t.text
            for t in turns
            if t.role == "user" and t.kind == "message" and not is_command(t.text)
        ),
        "",
    )
    title = info["title"] or title_of(first or session_id, 80)
    cited = len({m for ms in memories.values() for m in ms})
    meta = [
        esc(info["path"] or "no project"),
        f"{esc(when(info['started_at']))} → {esc(when(info['ended_at']))}",
        f"{len(turns)} turns",
        cited_link(links, session_id, cited),
    ]
    if branch:
        meta.insert(1, f"branch {esc(branch)}")
    if info["parent_session_id"]:
        meta.append(
            f'sub-agent of <a href="{links.href(session_path(info["parent_session_id"]))}">'
            f"{esc(session_title(store, info['parent_session_id'], 60))}</a>"
        )
    body = (
        f"<h1>{esc(title)}</h1><p class='sub'><span class='mono'>{esc(session_id)}</span><br>"
        + " · ".join(meta)
        + "</p>"
        + ("".join(out) or "<p class='empty'>This session has no turns.</p>")
    )
    return title, body
