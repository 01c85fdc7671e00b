"""Search across sessions and memories at once (the nav's search box): the first matches of
each, with links to the full, filterable, paged lists."""

from __future__ import annotations

from lmm.store import browse
from lmm.store.db import Store
from lmm.ui.layout import Links, badge, esc, label, options, shorten, when
from lmm.ui.memories import MemoryFilter, find_memories
from lmm.ui.sessions import search_form, session_path, title_of

SHOWN = 10  # matches of each kind on this page


def search_page(
    store: Store, links: Links, query: str, project_id: int | None = None
) -> tuple[str, str]:
    """The first matches among sessions and memories (of one project, when given)."""
    intro = "<h1>Search</h1><p class='sub'>Sessions (title and every word said) and memories.</p>"
    choices = [("", "All projects")] + [(str(p["id"]), p["name"]) for p in browse.projects(store)]
    controls = (
        f"{label('project', 'Project', hidden=True)}<select id='project' name='project'>"
        f"{options(choices, str(project_id or ''))}</select>"
    )
    form = search_form(links, "/search", query, "Words to find in sessions and memories", controls)
    if not query.strip():
        return "Search", intro + form
    n_sessions = browse.count_sessions(store, project_id, query)
    rows = []
    for s in browse.sessions(store, project_id, SHOWN, 0, query):
        title = s["title"] or title_of(s["first"] or "(no prompt)", 110)
        rows.append(
            f"<tr data-item><td class='meta'>{esc(when(s['ended_at'] or s['started_at']))}</td>"
            f'<td><a href="{links.href(session_path(s["id"]))}">{esc(title)}</a>'
            f"<div class='meta'>{esc(s['project'] or '')}</div></td></tr>"
        )
    cogs = find_memories(store, MemoryFilter(project=project_id, status="all", q=query))
    cards = []
    for c in cogs[:SHOWN]:
        status = "" if c.status == "active" else " " + badge(c.status, "b-" + c.status)
        cards.append(
            f"<tr data-item><td>{badge(c.category, 'b-' + c.category)}{status}</td>"
            f'<td><a href="{links.href(f"/memory/{c.id}")}">{esc(shorten(c.text, 200))}</a>'
            f"<div class='meta'>{esc(c.project or 'all projects')} · {esc(c.origin)}</div></td>"
            "</tr>"
        )
    more_s = links.href("/", q=query, project=project_id)
    more_m = links.href("/memories", q=query, status="all", project=project_id)
    body = (
        intro
        + form
        + f"<h2>Sessions <span class='meta'>{n_sessions:,}</span></h2>"
        + (f"<table>{''.join(rows)}</table>" if rows else "<p class='empty'>No session.</p>")
        + (
            f'<p><a href="{more_s}">All {n_sessions:,} sessions →</a></p>'
            if n_sessions > SHOWN
            else ""
        )
        + f"<h2>Memories <span class='meta'>{len(cogs):,}</span></h2>"
        + (f"<table>{''.join(cards)}</table>" if cards else "<p class='empty'>No memory.</p>")
        + (
            f'<p><a href="{more_m}">All {len(cogs):,} memories →</a></p>'
            if len(cogs) > SHOWN
            else ""
        )
    )
    return f"Search: {shorten(query, 40)}", body
