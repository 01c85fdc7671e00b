"""Cognitions by project, scope and category, one cognition with its sources and history, and
the edit / forget / remember / scope actions, all through `lmm.cognitions` (the CLI's own
functions). Each active memory carries a button that moves it between scopes: user-wide (every
project) and its project.
"""

from __future__ import annotations

from typing import Any

from lmm import cognitions
from lmm.cognitions import CATEGORIES, Cognition, CognitionError
from lmm.store import Store
from lmm.ui.layout import Links, badge, esc, options, shorten, when
from lmm.ui.sessions import projects, session_path, turn_anchor

STATUS_CHOICES = ("active", "superseded", "forgotten", "all")
SCOPE_CHOICES = [("", "every scope"), ("user", "user-wide"), ("project", "one project")]


def _project_path(store: Store, project_id: int | None) -> str | None:
    if project_id is None:
        return None
    row = store.db.execute("SELECT path FROM projects WHERE id = ?", (project_id,)).fetchone()
    return None if row is None else str(row[0])


def _chips(links: Links, key: str, values: list[tuple[str, str]], current: str, **keep: Any) -> str:
    out = []
    for value, label in values:
        cls = "on" if value == current else ""
        out.append(f'<a class="{cls}" href="{links.href("/memories", **{**keep, key: value})}">'
                   f"{esc(label)}</a>")  # fmt: skip
    return f"<div class='chips'>{''.join(out)}</div>"


def scope_form(cog: Cognition, links: Links) -> str:
    """A button that moves an active memory to the other scope (nothing for other statuses, and
    for a user-wide one that was never tied to a project)."""
    if cog.status != "active":
        return ""
    if cog.scope == "project":
        target, label = "user", "Use in every project"
    elif cog.learned_in_path:
        target, label = "project", f"Only in {shorten(cog.learned_in_path, 60)}"
    else:
        return ""
    return (
        f"<form method='post' action='/memory/{cog.id}/scope' class='inline'>{links.hidden()}"
        f"<input type='hidden' name='scope' value='{target}'>"
        f"<button type='submit' class='plain'>{esc(label)}</button></form>"
    )


def memory_card(cog: Cognition, links: Links) -> str:
    text = esc(cog.text) if cog.text else "<span class='empty'>(forgotten)</span>"
    status = "" if cog.status == "active" else " " + badge(cog.status, "b-" + cog.status)
    scope = esc(cog.project or "all projects")
    return (
        f'<div class="card"><div class="row">{badge(cog.category, "b-" + cog.category)}{status}'
        f'<a href="{links.href(f"/memory/{cog.id}")}" class="meta">#{cog.id}</a></div>'
        f"<div class='text' style='margin:6px 0 4px'>{text}</div>"
        f"<div class='meta'>{scope} · salience {cog.salience:.2f} · {cog.evidence} source"
        f"{'s' if cog.evidence != 1 else ''} · {esc(cog.origin)} · "
        f"since {esc(when(cog.valid_from) or 'undated')}</div>{scope_form(cog, links)}</div>"
    )


def remember_form(store: Store, links: Links, project_id: int | None) -> str:
    choices = [("", "all projects (user-wide)")]
    choices += [(str(p["id"]), p["path"]) for p in projects(store)]
    return (
        "<details class='card'><summary><b>Remember something</b> — add a memory by hand"
        f"</summary><form method='post' action='/remember'>{links.hidden()}"
        "<textarea name='text' required placeholder='e.g. Use uv, not pip.'></textarea>"
        "<div class='row' style='margin-top:8px'>"
        f"<select name='category'>{options([(c, c) for c in CATEGORIES], 'preference')}</select>"
        f"<select name='project'>{options(choices, str(project_id or ''))}</select>"
        "<button type='submit'>Remember</button></div></form></details>"
    )


def memories_page(
    store: Store,
    links: Links,
    project_id: int | None,
    category: str,
    status: str,
    scope: str = "",
) -> tuple[str, str]:
    """Cognitions of a project (plus user-wide ones) or of all, by category, status and scope."""
    if category and category not in CATEGORIES:
        raise CognitionError(f"category {category!r} is not one of {', '.join(CATEGORIES)}")
    status = status if status in STATUS_CHOICES else "active"
    scope = scope if scope in cognitions.SCOPES else ""
    path = _project_path(store, project_id)
    cogs = cognitions.list_(
        store,
        project=path,
        category=category or None,
        status=None if status == "all" else status,
        scope=scope or None,
    )
    keep = {"project": project_id, "category": category, "status": status, "scope": scope}
    pchoices = [("", "All projects")] + [(str(p["id"]), p["name"]) for p in projects(store)]
    pchips = _chips(links, "project", pchoices, str(project_id or ""), **keep)
    cats = [("", "every category")] + [(c, c) for c in CATEGORIES]
    cchips = _chips(links, "category", cats, category, **keep)
    schips = _chips(links, "status", [(s, s) for s in STATUS_CHOICES], status, **keep)
    schips += _chips(links, "scope", SCOPE_CHOICES, scope, **keep)
    groups = []
    for cat in CATEGORIES:
        mine = [c for c in cogs if c.category == cat]
        if mine:
            cards = "".join(memory_card(c, links) for c in mine)
            groups.append(f"<h2>{esc(cat.capitalize())} <span class='meta'>{len(mine)}</span></h2>"
                          f"{cards}")  # fmt: skip
    body = (
        "<h1>Memories</h1><p class='sub'>What lmm knows, most salient first. Each memory links "
        "to the turns it was taken from; corrections keep the old version as history.</p>"
        f"{pchips}{cchips}{schips}{remember_form(store, links, project_id)}"
        + ("".join(groups) or "<p class='empty'>No memories match.</p>")
    )
    return "Memories", body


# ---- one memory


def _history(store: Store, cog: Cognition) -> list[Cognition]:
    """Every version of `cog`: rows it replaced (recursively) and the rows that replaced it."""
    seen = {cog.id}
    chain = [cog]
    todo = [cog.id]
    while todo:  # older versions
        for r in store.db.execute(
            "SELECT id FROM cognitions WHERE superseded_by = ? ORDER BY id", (todo.pop(),)
        ):
            if r[0] not in seen and (old := cognitions.get(store, r[0])) is not None:
                seen.add(old.id)
                chain.append(old)
                todo.append(old.id)
    newer = cog.superseded_by
    while newer is not None and newer not in seen and (new := cognitions.get(store, newer)):
        seen.add(new.id)
        chain.append(new)
        newer = new.superseded_by
    return sorted(chain, key=lambda c: (c.valid_from or "", c.id or 0))


def _source_item(store: Store, links: Links, src: cognitions.SourceRef) -> str:
    quote = f"<div class='text'>“{esc(src.quote)}”</div>" if src.quote else ""
    if src.session_id:
        title = store.db.execute(
            "SELECT title FROM sessions WHERE id = ?", (src.session_id,)
        ).fetchone()
        name = (title[0] if title and title[0] else None) or f"session {src.session_id[:8]}"
        target = links.href(session_path(src.session_id), turn_anchor(src.turn_key or ""))
        where = f'<a href="{target}" class="source-link">{esc(name)} · turn</a>'
    elif src.file_path:
        line = f":{src.line_no}" if src.line_no else ""
        where = f"<span class='mono'>{esc(src.file_path)}{esc(line)}</span>"
    else:
        where = "stated by you"
    return (
        f"<div class='card'><div class='meta'>{esc(when(src.timestamp))}</div>{where}{quote}</div>"
    )


def memory_page(store: Store, links: Links, cog_id: int) -> tuple[str, str] | None:
    cog = cognitions.get(store, cog_id)
    if cog is None:
        return None
    sources = "".join(_source_item(store, links, s) for s in cog.sources)
    history = _history(store, cog)
    rows = []
    for h in history:
        current = " ← this one" if h.id == cog.id else ""
        text = esc(shorten(h.text, 160)) if h.text else "<span class='empty'>(forgotten)</span>"
        rows.append(
            f'<tr><td><a href="{links.href(f"/memory/{h.id}")}">#{h.id}</a>{esc(current)}</td>'
            f"<td>{badge(h.status, 'b-' + h.status)}</td><td>{text}</td>"
            f"<td class='meta'>{esc(when(h.valid_from))} → {esc(when(h.valid_until))}</td>"
            f"<td>{esc(h.origin)}</td></tr>"
        )
    actions = ""
    if cog.status == "active":
        actions = (
            f"<h2>Correct it</h2><form method='post' action='/memory/{cog.id}/edit' class='card'>"
            f"{links.hidden()}<textarea name='text' required>{esc(cog.text)}</textarea>"
            f"<div class='row' style='margin-top:8px'><select name='category'>"
            f"{options([(c, c) for c in CATEGORIES], cog.category)}</select>"
            "<button type='submit'>Save correction</button></div></form>"
            f"<form method='post' action='/memory/{cog.id}/forget' class='inline'>"
            f"{links.hidden()}<button type='submit' class='danger'>Forget this memory</button>"
            "</form>"
        )
    elif cog.status == "superseded" and cog.superseded_by:
        actions = (
            f'<p>Replaced by <a href="{links.href(f"/memory/{cog.superseded_by}")}">'
            f"#{cog.superseded_by}</a> on {esc(when(cog.valid_until))}.</p>"
        )
    body = (
        f"<h1>Memory #{cog.id}</h1><p class='sub'>{esc(cog.project or 'all projects')}</p>"
        + memory_card(cog, links)
        + f"<h2>Sources <span class='meta'>{len(cog.sources)}</span></h2>"
        + (sources or "<p class='empty'>No sources recorded.</p>")
        + (
            "<h2>History</h2><table><tr><th>Version</th><th>Status</th><th>Text</th>"
            f"<th>Valid</th><th>Origin</th></tr>{''.join(rows)}</table>"
            if len(history) > 1
            else ""
        )
        + actions
    )
    return f"Memory #{cog.id}", body


# ---- actions (POST); each returns the id to show next and a message


def edit_action(store: Store, cog_id: int, form: dict[str, str]) -> tuple[int, str]:
    text = form.get("text", "").strip()
    if not text:
        raise CognitionError("a memory needs some text; use Forget to remove it")
    with store.transaction():
        new_id = cognitions.edit(store, cog_id, text, category=form.get("category") or None)
    if new_id == cog_id:
        return cog_id, "Nothing changed."
    return new_id, f"Saved. #{new_id} replaces #{cog_id}, which is kept as history."


def forget_action(store: Store, cog_id: int) -> tuple[int, str]:
    from lmm import erase

    done = erase.forget(store, cog_id)
    return cog_id, "Forgotten: its text is gone and extraction will not bring it back." if done \
        else "It was already forgotten."  # fmt: skip


def scope_action(store: Store, cog_id: int, form: dict[str, str]) -> tuple[int, str]:
    scope = form.get("scope", "")
    project = form.get("project") or ""
    path = _project_path(store, int(project)) if project.isdigit() else None
    with store.transaction():
        held = cognitions.set_scope(store, cog_id, scope, project=path)
    cog = cognitions.get(store, held)
    where = "every project" if cog is None or cog.scope == "user" else cog.project
    merged = f" It merged into #{held}, which said the same there." if held != cog_id else ""
    return held, f"Now applies to {where}.{merged}"


def remember_action(store: Store, form: dict[str, str]) -> tuple[int, str]:
    text = form.get("text", "").strip()
    if not text:
        raise CognitionError("type what lmm should remember")
    project = form.get("project") or ""
    path = _project_path(store, int(project)) if project.isdigit() else None
    with store.transaction():
        new_id = cognitions.remember(
            store, text, project=path, category=form.get("category") or "preference"
        )
    return new_id, f"Remembered as #{new_id}."
