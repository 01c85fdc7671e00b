"""What `lmm ingest-code` knows of a repository's files (`code_files`: path and content hash),
and retiring the code cognitions of a file that changed or went."""

from __future__ import annotations

import orjson

from lmm.store import cognitions
from lmm.store.db import Store


def known(store: Store, project_id: int) -> dict[str, str]:
    """Path -> content hash of each file of the project read before."""
    return {
        r["path"]: r["sha"]
        for r in store.db.execute(
            "SELECT path, sha FROM code_files WHERE project_id = ?", (project_id,)
        )
    }


def record(store: Store, path: str, project_id: int, sha: str) -> None:
    """Remember that the file at `path` was read with content hash `sha`."""
    store.db.execute(
        """INSERT INTO code_files (path, project_id, sha, updated_at)
        VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ON CONFLICT (path) DO UPDATE SET sha = excluded.sha,
            project_id = excluded.project_id, updated_at = excluded.updated_at""",
        (path, project_id, sha),
    )


def forget(store: Store, path: str) -> None:
    store.db.execute("DELETE FROM code_files WHERE path = ?", (path,))


def retire(store: Store, project_id: int, rel: str, keep: list[int]) -> int:
    """Supersede the active code cognitions of file `rel` that its new version no longer states
    (none of `keep`). A cognition other files still support only loses this file's source.
    Returns how many were superseded."""
    rows = store.db.execute(
        """SELECT DISTINCT c.id, c.extra FROM cognitions c
        JOIN cognition_sources s ON s.cognition_id = c.id
        WHERE c.project_id = ? AND c.origin = 'code' AND c.status = 'active' AND s.file_path = ?""",
        (project_id, rel),
    ).fetchall()
    retired = 0
    for r in rows:
        if r["id"] in keep:
            continue
        others = store.db.execute(
            "SELECT count(*) FROM cognition_sources WHERE cognition_id = ? AND file_path != ?",
            (r["id"], rel),
        ).fetchone()[0]
        if others:
            store.db.execute(
                "DELETE FROM cognition_sources WHERE cognition_id = ? AND file_path = ?",
                (r["id"], rel),
            )
            store.db.execute("UPDATE cognitions SET evidence = ? WHERE id = ?", (others, r["id"]))
            continue
        extra = orjson.loads(r["extra"])
        extra["retired"] = "gone from " + rel
        store.db.execute(
            "UPDATE cognitions SET extra = ? WHERE id = ?",
            (orjson.dumps(extra, option=orjson.OPT_SORT_KEYS).decode(), r["id"]),
        )
        cognitions.supersede(store, r["id"], None)
        retired += 1
    return retired
