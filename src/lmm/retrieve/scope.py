"""User-wide memory as a project sees it: a user-wide cognition (no project) holds in every
project, one lmm has never seen included, unless the project's own memory says otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from lmm.retrieve.search import Hit, retrieve_user_wide, scope_projects
from lmm.store import cognitions, reads
from lmm.text import consolidate

if TYPE_CHECKING:
    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store


def overridden(store: Store, project: str | None) -> set[int]:
    """Ids of active user-wide cognitions contradicted by an active cognition of `project` (a
    path; its subfolders count, as in retrieval). Rules contradict across the instructive
    categories, other knowledge only within its own category."""
    ids = scope_projects(store, project) if project else None
    if not ids:
        return set()
    rows = reads.user_wide_rivals(store, ids)
    out: set[int] = set()
    for r in rows:
        rivals = r["u_category"] == r["c_category"] or (
            r["u_category"] in cognitions.INSTRUCTIVE and r["c_category"] in cognitions.INSTRUCTIVE
        )
        theirs = orjson.loads(r["u_extra"]).get("value")
        ours = orjson.loads(r["c_extra"]).get("value")
        known = theirs is not None and ours is not None
        if rivals and known and consolidate.conflicts(str(theirs), str(ours)):
            out.add(int(r["id"]))
    return out


def brief_cognitions(
    store: Store, project: str | None, category: str, limit: int
) -> list[cognitions.Cognition]:
    """The `limit` most salient active cognitions of `category` for `project`'s brief: its own
    and the user-wide ones it does not contradict."""
    hidden = overridden(store, project)
    found = cognitions.list_(store, project=project, category=category, limit=limit + len(hidden))
    return [c for c in found if c.id not in hidden][:limit]


def with_user_memory(
    store: Store,
    query: str,
    hits: list[Hit],
    *,
    project: str | None,
    k: int,
    embedder: Embedder | None = None,
) -> list[Hit]:
    """`hits` (retrieved within `project`) as user-wide memory adjusts them: a folder lmm holds
    nothing of gets the `k` user-wide cognitions that best match `query` (retrieval within a
    project finds nothing there); a known project loses the user-wide ones it contradicts."""
    if not project:
        return hits
    if not scope_projects(store, project):
        return retrieve_user_wide(store, query, k=k, embedder=embedder)
    hidden = overridden(store, project)
    return [h for h in hits if not (h.kind == "cognition" and h.id in hidden)]
