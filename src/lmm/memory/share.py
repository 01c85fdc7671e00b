"""What leaves the machine when a project is shared with the team store: its active memories,
redacted again, under the project's team key; nothing of a project that opted out."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from lmm.errors import LmmError
from lmm.ingest import privacy
from lmm.store import cognitions
from lmm.store.team import SharedMemory
from lmm.text.consolidate import normalise
from lmm.text.redact import redact

if TYPE_CHECKING:
    from lmm.store.db import Store


def team_key(project: str, given: str | None = None) -> str:
    """The name the team knows a project by: `given`, else the project folder's name (the same
    repository sits at different paths on different machines)."""
    key = (given or Path(project.rstrip("/")).name).strip()
    if not key:
        raise LmmError(f"{project!r} gives no project name; pass one with --as NAME")
    return key


def team_uid(key: str, category: str, text: str) -> str:
    """One id per memory across members: two members who learned the same thing share it once."""
    return hashlib.sha256(f"{key}|{category}|{normalise(text)}".encode()).hexdigest()[:32]


def outgoing(store: Store, project: str, key: str) -> list[SharedMemory]:
    """The memories sharing `project` as `key` would send: its own active memories (not the
    user-wide ones, which belong to the user), each text redacted again. Raises LmmError for a
    project that opted out of memory or that the store does not know."""
    privacy.reset_cache()
    if privacy.excluded(project):
        raise LmmError(f"{project} has opted out of memory (.lmm-ignore or config.toml): "
                       "nothing of it leaves this machine")  # fmt: skip
    if not store.has_project(project):
        raise LmmError(f"no stored project {project}; run `lmm ingest` first, or pass its folder")
    out = []
    for c in cognitions.list_(store, project=project, include_user_wide=False, scope="project"):
        text = redact(c.text)
        out.append(
            SharedMemory(
                project=key,
                uid=team_uid(key, c.category, text),
                category=c.category,
                text=text,
                keywords=[k for k in c.keywords if redact(k) == k],
                salience=c.salience,
                valid_from=c.valid_from,
                shared_by="",
                shared_at="",
            )
        )
    return out
