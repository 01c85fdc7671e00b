"""The recall page: for a prompt, exactly what lmm's prompt hook would inject into the agent's
context (the brief wrapped as quoted memory, its token count), the evidence and every hit scored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmm.retrieve import recall as rc
from lmm.retrieve.synth import approx_tokens
from lmm.serve.hooks import PROMPT_TOKENS, wrap_memory
from lmm.store import browse
from lmm.store.db import Store
from lmm.ui.layout import Links, badge, esc, label, options, shorten, when
from lmm.ui.sessions import session_path, session_title, turn_anchor

if TYPE_CHECKING:
    from lmm.retrieve.embed import Embedder
    from lmm.retrieve.search import Hit


def hook_config() -> rc.RecallConfig:
    """The settings of the UserPromptSubmit hook."""
    return rc.with_config(rc.RecallConfig(generate=False), max_tokens=PROMPT_TOKENS)


def _hit_link(store: Store, links: Links, hit: Hit) -> str:
    if hit.kind == "cognition":
        return f'<a href="{links.href(f"/memory/{hit.id}")}">memory #{hit.id}</a>'
    row = browse.turn_place(store, hit.id)
    if row is None:
        return f"turn {hit.id}"
    target = links.href(session_path(row["session_id"]), turn_anchor(row["key"]))
    return f'<a href="{target}">{esc(session_title(store, row["session_id"], 60))} · turn</a>'


def recall_page(
    store: Store, links: Links, query: str, project_id: int | None, embedder: Embedder | None
) -> tuple[str, str]:
    plist = browse.projects(store)
    choices = [("", "All projects")] + [(str(p["id"]), p["path"]) for p in plist]
    form = (
        f"<form method='get' action='/recall' class='card'>"
        f"<input type='hidden' name='token' value='{esc(links.token)}'>"
        f"<div class='row'>{label('q', 'Prompt', hidden=True)}"
        f"<input type='search' id='q' name='q' value='{esc(query)}' class='grow' "
        "placeholder='A prompt, as you would type it to the agent' autofocus>"
        f"{label('project', 'Project', hidden=True)}"
        f"<select id='project' name='project'>{options(choices, str(project_id or ''))}</select>"
        "<button type='submit'>Recall</button></div></form>"
    )
    mode = f"hybrid (keyword + {esc(embedder.name)})" if embedder else "keyword-only (BM25)"
    intro = (
        "<h1>Recall</h1><p class='sub'>Type a prompt to see what lmm would put in front of the "
        f"agent for it: the prompt hook's extractive brief, at most {PROMPT_TOKENS} tokens. "
        f"Retrieval: {mode}.</p>"
    )
    if not query.strip():
        return "Recall", intro + form
    path = next((p["path"] for p in plist if p["id"] == project_id), None)
    result = rc.recall(store, query, project=path, config=hook_config(), embedder=embedder)
    brief = result.brief
    if brief.text:
        injected = wrap_memory(brief.text, title="recall")
        inject = (
            f"<h2>Injected into the agent's context</h2><div class='card inject'>"
            f"<div class='meta'>brief: <b class='brief-tokens'>{brief.tokens}</b> tokens "
            f"(budget {PROMPT_TOKENS}) · whole block {approx_tokens(injected)} tokens · "
            f"{len(brief.evidence)} evidence · {brief.mode} · {result.seconds * 1000:.0f} ms"
            f"</div><pre class='injected'>{esc(injected)}</pre></div>"
        )
    else:
        inject = (
            "<h2>Injected into the agent's context</h2><div class='card inject'>"
            "<p class='empty'>Nothing: no hit cleared the relevance threshold, so the hook "
            "stays silent.</p></div>"
        )
    used = {e.hit.kind + str(e.hit.id): e.n for e in brief.evidence}
    rows = []
    for rank, h in enumerate(result.hits, start=1):
        n = used.get(h.kind + str(h.id))
        tag = badge(f"[{n}]") if n else ""
        kind = badge(h.category, "b-" + h.category) if h.category else badge(h.kind, "b-fact")
        rows.append(
            f"<tr class='hit'><td class='score'>{rank}</td><td class='score'>{h.score:.4f}</td>"
            f"<td>{kind} {tag}</td><td>{esc(shorten(h.text, 220))}"
            f"<div class='meta'>{esc(when(h.source.timestamp))} · "
            f"{_hit_link(store, links, h)}</div></td></tr>"
        )
    hits = (
        "<h2>Hits <span class='meta'>ranked by fused score; [n] marks the evidence used</span></h2>"
        "<table><tr><th>#</th><th>Score</th><th>Kind</th><th>Text</th></tr>"
        f"{''.join(rows)}</table>"
        if rows
        else "<p class='empty'>No hits.</p>"
    )
    return f"Recall: {shorten(query, 40)}", intro + form + inject + hits
