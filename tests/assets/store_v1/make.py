"""Build `store_v1.sqlite3`: a store as the FIRST released schema (M001..M003) wrote it.

The file is committed (named .sqlite3 because .gitignore ignores *.db); tests/test_upgrade.py
opens a copy with the current `Store`, which applies every later migration, and checks that
nothing was lost. Rebuild it only if the sample history
changes (never because a new migration was added: the point is an old file):

    .venv/bin/python tests/assets/store_v1/make.py

How: ingest the packaged sample history (and run the rule extractor, and remember two user
preferences) into a current store in a temporary folder; create an empty database with
`migrations.MIGRATIONS[:3]` applied by hand (user_version 3); copy into it, table by table, the
columns the v1 schema has; rebuild its FTS indexes; VACUUM. Source paths are stored relative to
the sample folder (`sample/...`) so the file does not depend on where the repo lives.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import tempfile
from pathlib import Path

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.store import cognitions, migrations
from lmm.store.db import open_store

V1 = 3  # M001_INITIAL, M002_COGNITIONS, M003_VECTORS
OUT = Path(__file__).resolve().parent / "store_v1.sqlite3"
TABLES = (
    "projects",
    "sources",
    "sessions",
    "turns",
    "agent_links",
    "parse_issues",
    "cognitions",
    "cognition_sources",
    "extraction_state",
    "code_files",
    "vectors",
    "embedders",
)


def build_current(folder: Path) -> Path:
    """A current store of the sample history; returns its path."""
    os.environ["LMM_HOME"] = str(folder)
    with open_store() as store:
        ingest(store, [paths.sample_projects()])
        run_extraction(store, get_extractor("rules"))
        cognitions.remember(store, "Prefer small commits with a test each.", project=None)
        cognitions.remember(
            store, "Run the sync job with --dry-run first.", project="/home/dev/tidepool"
        )
        return store.path


def make_v1(current: Path, out: Path) -> None:
    out.unlink(missing_ok=True)
    db = sqlite3.connect(out, isolation_level=None)
    for number, script in enumerate(migrations.MIGRATIONS[:V1], start=1):
        db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    db.execute("ATTACH DATABASE ? AS cur", (str(current),))
    db.execute("BEGIN")
    for table in TABLES:
        cols = ", ".join(r[1] for r in db.execute(f"PRAGMA main.table_info({table})"))
        db.execute(f"INSERT INTO main.{table} ({cols}) SELECT {cols} FROM cur.{table}")
    sample = str(paths.sample_projects().parent)
    db.execute(
        "UPDATE sources SET path = 'sample' || substr(path, ?) WHERE path LIKE ? || '%'",
        (len(sample) + 1, sample),
    )
    db.execute("INSERT INTO turns_fts (turns_fts) VALUES ('rebuild')")
    db.execute("INSERT INTO cognitions_fts (cognitions_fts) VALUES ('rebuild')")
    db.execute("COMMIT")
    db.execute("DETACH DATABASE cur")
    db.execute("VACUUM")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA user_version").fetchone()[0] == V1
    db.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        make_v1(build_current(Path(tmp)), OUT)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
