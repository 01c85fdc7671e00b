"""Cognitions by project, scope and category, one cognition with its sources and history, and
the edit / forget / remember / scope actions, all through `lmm.store.cognitions` (the CLI's own
functions). Each active memory carries a button that moves it between scopes: user-wide (every
project) and its project.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lmm.errors import CognitionError
from lmm.store import browse, cognitions
from lmm.store.cognitions import CATEGORIES, Cognition
from lmm.store.db import Store
from lmm.ui.layout import Links, Paging, badge, esc, label, options, shorten, when
from lmm.ui.sessions import search_form, session_path, session_title, turn_anchor

STATUS_CHOICES = ("active", "superseded", "forgotten", "all")
ORIGIN_LABELS = {"rules": "rules", "lm": "model", "user": "by you", "code": "code (ingest-code)"}
SCOPE_CHOICES = [("", "every scope"), ("user", "user-wide"), ("project", "one project")]


def _chips(links: Links, key: str, values: list[tuple[str, str]], current: str, **keep: Any) -> str:
    out = []
    for value, text in values:
        cls = "on" if value == current else ""
        out.append(f'<a class="{cls}" href="{links.href("/memories", **{**keep, key: value})}">'
                   f"{esc(text)}</a>")  # fmt: skip
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


def memory_card(cog: Cognition, links: Links, item: bool = False) -> str:
    text = esc(cog.text) if cog.text else "<span class='empty'>(forgotten)</span>"
    status = "" if cog.status == "active" else " " + badge(cog.status, "b-" + cog.status)
    scope = esc(cog.project or "all projects")
    return (
        f'<div class="card"{" data-item" if item else ""}><div class="row">'
        f"{badge(cog.category, 'b-' + cog.category)}{status}"
        f'<a href="{links.href(f"/memory/{cog.id}")}" class="meta">#{cog.id}</a></div>'
        f"<div class='text' style='margin:6px 0 4px'>{text}</div>"
        f"<div class='meta'>{scope} · salience {cog.salience:.2f} · {cog.evidence} source"
        f"{'s' if cog.evidence != 1 else ''} · {esc(cog.origin)} · "
        f"since {esc(when(cog.valid_from) or 'undated')}</div>{scope_form(cog, links)}</div>"
    )


def remember_form(
    store: Store, links: Links, project_id: int | None, draft: str | None = None
) -> str:
    choices = [("", "all projects (user-wide)")]
    choices += [(str(p["id"]), p["path"]) for p in browse.projects(store)]
    return (
        f"<details class='card'{'' if draft is None else ' open'}><summary>"
        "<b>Remember something</b> — add a memory by hand</summary>"
        f"<form method='post' action='/remember'>{links.hidden()}"
        f"{label('r-text', 'What lmm should remember')}"
        "<textarea id='r-text' name='text' required placeholder='e.g. Use uv, not pip.'>"
        f"{esc(draft or '')}</textarea><div class='row' style='margin-top:8px'>"
        f"{label('r-category', 'Category')}<select id='r-category' name='category'>"
        f"{options([(c, c) for c in CATEGORIES], 'preference')}</select>"
        f"{label('r-project', 'Applies to')}<select id='r-project' name='project'>"
        f"{options(choices, str(project_id or ''))}</select>"
        "<button type='submit'>Remember</button></div></form></details>"
    )


@dataclass(frozen=True)
class MemoryFilter:
    """What the memories page shows: each field is a query parameter ('' for any)."""

    project: int | None = None
    category: str = ""
    status: str = "active"
    scope: str = ""
    origin: str = ""
    q: str = ""
    session: str = ""  # only memories citing this session

    @classmethod
    def of(cls, query: dict[str, str], project: int | None) -> MemoryFilter:
        status = query.get("status", "active")
        scope = query.get("scope", "")
        return cls(
            project=project,
            category=query.get("category", ""),
            status=status if status in STATUS_CHOICES else "active",
            scope=scope if scope in cognitions.SCOPES else "",
            origin=query.get("origin", "")[:40],
            q=query.get("q", "")[:500],
            session=query.get("session", "")[:300],
        )

    def params(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def find_memories(store: Store, f: MemoryFilter) -> list[Cognition]:
    """The cognitions `f` selects, most salient first."""
    if f.category and f.category not in CATEGORIES:
        raise CognitionError(f"category {f.category!r} is not one of {', '.join(CATEGORIES)}")
    path = store.project_path(f.project)
    if f.project is not None and path is None:
        return []  # no such project
    cogs = cognitions.list_(
        store,
        project=path,
        category=f.category or None,
        status=None if f.status == "all" else f.status,
        scope=f.scope or None,
    )
    if f.origin:
        cogs = [c for c in cogs if c.origin == f.origin]
    if f.session:
        cited = browse.cited_in(store, f.session)
        cogs = [c for c in cogs if c.id in cited]
    if words := f.q.lower().split():
        cogs = [c for c in cogs if all(w in f"{c.text} {c.project or ''}".lower() for w in words)]
    return cogs


def _origins(store: Store) -> list[str]:
    found = browse.origins(store)
    return sorted(set(found) | set(cognitions.ORIGINS))


def memories_page(
    store: Store, links: Links, f: MemoryFilter, page_no: str = "", draft: str | None = None
) -> tuple[str, str]:
    """Cognitions of a project (plus user-wide ones) or of all, filtered and searched, a page at
    a time."""
    cogs = find_memories(store, f)
    paging = Paging.of(page_no, len(cogs))
    keep = f.params()
    pchoices = [("", "All projects")] + [(str(p["id"]), p["name"]) for p in browse.projects(store)]
    pchips = _chips(links, "project", pchoices, str(f.project or ""), **keep)
    cats = [("", "every category")] + [(c, c) for c in CATEGORIES]
    cchips = _chips(links, "category", cats, f.category, **keep)
    schips = _chips(links, "status", [(s, s) for s in STATUS_CHOICES], f.status, **keep)
    schips += _chips(links, "scope", SCOPE_CHOICES, f.scope, **keep)
    origins = [("", "every origin")] + [(o, ORIGIN_LABELS.get(o, o)) for o in _origins(store)]
    ochips = _chips(links, "origin", origins, f.origin, **keep)
    hidden = "".join(
        f"<input type='hidden' name='{esc(k)}' value='{esc(v)}'>"
        for k, v in keep.items()
        if k != "q"
    )
    shown = cogs[paging.offset : paging.offset + paging.size]
    cards = "".join(memory_card(c, links, item=True) for c in shown)
    pager = paging.nav(links, "/memories", "memories", **keep)
    cited = ""
    if f.session:
        title = session_title(store, f.session)
        cited = (
            f"<p class='flash'>Memories citing <a href=\"{links.href(session_path(f.session))}\">"
            f'{esc(title)}</a> · <a href="{links.href("/memories")}">all memories</a></p>'
        )
    body = (
        "<h1>Memories</h1><p class='sub'>What lmm knows, most salient first. Each memory links "
        "to the turns it was taken from; corrections keep the old version as history.</p>"
        + cited
        + search_form(links, "/memories", f.q, "Words in the memory", hidden)
        + f"{pchips}{cchips}{schips}{ochips}{remember_form(store, links, f.project, draft)}"
        + (f"{pager}{cards}{pager}" if cards else "<p class='empty'>No memories match.</p>")
    )
    return "Memories", body


# ---- one memory


def _history(store: Store, cog: Cognition) -> list[Cognition]:
    """Every version of `cog`: rows it replaced (recursively) and the rows that replaced it."""
    seen = {cog.id}
    chain = [cog]
    todo = [cog.id]
    while todo:  # older versions
        for older in browse.older_versions(store, todo.pop()):
            if older not in seen and (old := cognitions.get(store, older)) is not None:
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
        name = session_title(store, src.session_id)
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


def memory_page(
    store: Store, links: Links, cog_id: int, draft: str | None = None, category: str = ""
) -> tuple[str, str] | None:
    """One memory: its card, sources, history and the correct / forget actions. `draft` refills
    the correction box (after a refused edit) instead of the memory's own text."""
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
            f"<td class='meta wide'>{esc(when(h.valid_from))} → {esc(when(h.valid_until))}</td>"
            f"<td class='wide'>{esc(h.origin)}</td></tr>"
        )
    actions = ""
    if cog.status == "active":
        actions = (
            f"<h2>Correct it</h2><form method='post' action='/memory/{cog.id}/edit' class='card'>"
            f"{links.hidden()}{label('e-text', 'The corrected memory')}"
            f"<textarea id='e-text' name='text' required>"
            f"{esc(cog.text if draft is None else draft)}</textarea>"
            f"<div class='row' style='margin-top:8px'>{label('e-category', 'Category')}"
            f"<select id='e-category' name='category'>"
            f"{options([(c, c) for c in CATEGORIES], category or cog.category)}</select>"
            "<button type='submit'>Save correction</button></div></form>"
            f'<a class="button danger" href="{links.href(f"/memory/{cog.id}/forget")}">'
            "Forget this memory…</a>"
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
            f"<th class='wide'>Valid</th><th class='wide'>Origin</th></tr>{''.join(rows)}</table>"
            if len(history) > 1
            else ""
        )
        + actions
    )
    return f"Memory #{cog.id}", body


def forget_page(store: Store, links: Links, cog_id: int) -> tuple[str, str] | None:
    """The confirm step before Forget, which cannot be undone: it says what will be erased."""
    cog = cognitions.get(store, cog_id)
    if cog is None:
        return None
    if cog.status == "forgotten":
        return f"Memory #{cog.id}", f"<h1>Memory #{cog.id}</h1><p>It is already forgotten.</p>"
    turns = len({(s.session_id, s.turn_key) for s in cog.sources if s.session_id})
    erased = f"{turns} source turn{'s' if turns != 1 else ''}"
    warning = (
        "<p><b>This cannot be undone.</b> Forgetting erases the memory's text (and its earlier "
        f"versions and any memory saying the same) and removes its words from the {erased} it "
        "was taken from, so extraction never brings it back. Neither lmm nor this page can "
        "restore erased text. To change what it says instead, correct it: the old version is "
        "kept as history.</p>"
    )
    body = (
        f"<h1>Forget memory #{cog.id}?</h1>"
        + memory_card(cog, links)
        + f"<div class='card'>{warning}"
        + f"<form method='post' action='/memory/{cog.id}/forget' class='row'>{links.hidden()}"
        "<button type='submit' class='danger solid'>Forget and erase</button>"
        f'<a class="button plain" href="{links.href(f"/memory/{cog.id}")}">Keep it</a>'
        "</form></div>"
    )
    return f"Forget memory #{cog.id}?", body


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
    from lmm.store import erase

    done = erase.forget(store, cog_id)
    return cog_id, "Forgotten: its text is gone and extraction will not bring it back." if done \
        else "It was already forgotten."  # fmt: skip


def scope_action(store: Store, cog_id: int, form: dict[str, str]) -> tuple[int, str]:
    scope = form.get("scope", "")
    project = form.get("project") or ""
    path = store.project_path(int(project)) if project.isdigit() else None
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
    path = store.project_path(int(project)) if project.isdigit() else None
    with store.transaction():
        new_id = cognitions.remember(
            store, text, project=path, category=form.get("category") or "preference"
        )
    return new_id, f"Remembered as #{new_id}."
