"""A project and the team store: what leaves the machine when it is shared (its own active
memories, redacted again, under the project's team name; nothing of a project that opted out),
and what comes back when the team's memories are pulled (kept as memories of origin 'team')."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lmm.errors import LmmError
from lmm.ingest import privacy
from lmm.store import cognitions
from lmm.store.cognitions import Cognition
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


def _refuse_opted_out(project: str, consequence: str) -> None:
    privacy.reset_cache()  # an opt-out added a moment ago holds
    if privacy.excluded(project):
        raise LmmError(
            f"{project} has opted out of memory (.lmm-ignore or config.toml): {consequence}"
        )


def team_uid(key: str, category: str, text: str) -> str:
    """One id per memory across members: two members who learned the same thing share it once."""
    return hashlib.sha256(f"{key}|{category}|{normalise(text)}".encode()).hexdigest()[:32]


@dataclass
class Pulled:
    """What one pull did to the local store."""

    added: int = 0  # team memories new here
    unchanged: int = 0  # already here, or the same as one of the user's own
    overruled: int = 0  # contradicted by one of the user's own memories, which stays current
    forgotten: int = 0  # forgotten on the team store since the last pull, so forgotten here


def incoming(store: Store, project: str, shared: list[SharedMemory]) -> Pulled:
    """Keep the team's `shared` memories of `project` (a local folder) in the local store, in
    one transaction: new ones as memories of origin 'team' that name who shared them, forgotten
    ones forgotten here too. The user's own memory wins where the two disagree."""
    _refuse_opted_out(project, "nothing of the team's is kept for it")
    out = Pulled()
    with store.transaction():
        pid = store.project_id(project)
        have = cognitions.team_copies(store, pid)
        for m in shared:
            if m.forgotten:
                if m.uid in have and cognitions.forget(store, have[m.uid]):
                    out.forgotten += 1
                continue
            if m.uid in have:
                out.unchanged += 1
                continue
            cog = Cognition(
                text=m.text,
                category=m.category,
                project_id=pid,
                origin=cognitions.TEAM,
                keywords=m.keywords,
                salience=m.salience,
                valid_from=m.shared_at or m.valid_from,
                extra={"team_uid": m.uid, "shared_by": m.shared_by, "shared_at": m.shared_at},
            )
            done = cognitions.put(store, cog)
            kept = cognitions.get(store, done.id)
            if done.action != "added" or kept is None:
                out.unchanged += 1
            elif kept.status == "superseded":
                out.overruled += 1
            else:
                out.added += 1
    return out


def outgoing(store: Store, project: str, key: str) -> list[SharedMemory]:
    """The memories sharing `project` as `key` would send: its own active memories (not the
    user-wide ones, which belong to the user), each text redacted again. Raises LmmError for a
    project that opted out of memory or that the store does not know."""
    _refuse_opted_out(project, "nothing of it leaves this machine")
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


def pull(store: Store, url: str, projects: list[str]) -> dict[str, Pulled]:
    """Pull the team's memories of each local project folder in `projects` (by its team name)
    over one connection; opted-out projects are left alone."""
    from lmm.store import team

    done: dict[str, Pulled] = {}
    with team.connect(url) as conn:
        for project in projects:
            if privacy.excluded(project):
                continue
            key = team_key(project)
            done[project] = incoming(store, project, team.memories(conn, [key], forgotten=True))
    return done


def projects_of(store: Store, transcripts: list[str]) -> list[str]:
    """The stored project folders the transcripts' sessions belong to, each once."""
    found: dict[str, None] = {}
    for path in transcripts:
        row = store.session_with_project(Path(path).stem)
        if row is not None and row["path"]:
            found[str(row["path"])] = None
    return list(found)
