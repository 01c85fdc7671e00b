"""A store written by the first released schema opens with today's lmm and loses nothing.

tests/assets/store_v1/store_v1.sqlite3 was made by tests/assets/store_v1/make.py with migrations
M001..M003 only (user_version 3), holding the sample history, rule-extracted cognitions and two
user-stated ones. Opening a copy with the current `Store` applies every later migration.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lmm import paths
from lmm.ingest.run import ingest
from lmm.store import cognitions, migrations
from lmm.store.db import open_store

FIXTURE = Path(__file__).parent / "assets" / "store_v1" / "store_v1.sqlite3"
V1_TABLES = ("projects", "sources", "sessions", "turns", "cognitions", "cognition_sources",
             "extraction_state", "agent_links", "parse_issues")  # fmt: skip


def snapshot(db: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the v1 tables, restricted to the columns v1 had, in id order."""
    out = {}
    for table in V1_TABLES:
        cols = [r[1] for r in sqlite3.connect(FIXTURE).execute(f"PRAGMA table_info({table})")]
        out[table] = [
            tuple(r) for r in db.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2")
        ]
    return out


DROPPED_SYSTEM = ("api_error", "stop_hook_summary", "turn_duration")


def conversation(before: dict[str, list[tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    """The v1 turns the reader keeps today: no meta records, no dropped system records."""
    import json

    cols = [r[1] for r in sqlite3.connect(FIXTURE).execute("PRAGMA table_info(turns)")]
    kind, extra = cols.index("kind"), cols.index("extra")
    return [
        t for t in before["turns"]
        if t[kind] != "meta"
        and not (t[kind] == "system" and json.loads(t[extra]).get("subtype") in DROPPED_SYSTEM)
    ]  # fmt: skip


def _without_parents(turns: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [t[:4] + t[5:] for t in turns]  # (id, session_id, key, uuid, parent_uuid, ...)


def _uuids(before: dict[str, list[tuple[Any, ...]]]) -> set[str]:
    return {t[3] for t in before["turns"]}


@pytest.fixture
def old_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(FIXTURE, home / "lmm.db")
    monkeypatch.setenv("LMM_HOME", str(home))
    return home / "lmm.db"


def test_fixture_is_the_first_schema() -> None:
    db = sqlite3.connect(FIXTURE)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "turn_keys" not in tables  # M004 is not applied
    assert FIXTURE.stat().st_size < 1_000_000


def test_upgrade_keeps_every_row_and_search_works(old_store: Path) -> None:
    raw = sqlite3.connect(old_store)
    before = snapshot(raw)
    raw.close()
    assert len(before["turns"]) > 150 and len(before["cognitions"]) > 10

    with open_store() as store:
        db = store.db
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        after = snapshot(db)
        assert {k: v for k, v in after.items() if k != "turns"} == {
            k: v for k, v in before.items() if k != "turns"
        }
        # M008: the records the reader no longer keeps went (a caveat meta record and the
        # turn_duration system records of the sample); the rest stayed, re-linked past them
        assert _without_parents(after["turns"]) == _without_parents(conversation(before))
        kept = {t[3] for t in after["turns"]}
        assert all(t[4] is None or t[4] in kept for t in after["turns"] if t[4] in _uuids(before))
        # the FTS indexes of v1 still answer, and M004 indexed the old turns
        for check in ("turns_fts", "cognitions_fts"):
            db.execute(f"INSERT INTO {check} ({check}, rank) VALUES ('integrity-check', 1)")
        with_text = db.execute("SELECT count(*) FROM turns WHERE length(text) > 0").fetchone()[0]
        assert db.execute("SELECT count(*) FROM turn_keys").fetchone()[0] == with_text
        hits = store.search("busy_timeout", project="/home/dev/tidepool")
        assert hits and all(h.project == "/home/dev/tidepool" for h in hits)
        assert any("busy_timeout" in h.text for h in hits)
        found = cognitions.search(store, "dry-run sync job", project="/home/dev/tidepool")
        assert "Run the sync job with --dry-run first." in [c.text for c in found]

    # a second open is a no-op, and new history merges into the upgraded store without dupes
    with open_store() as store:
        report = ingest(store, [paths.sample_projects()])
        assert report.turns_new == 0
        assert _without_parents(snapshot(store.db)["turns"]) == _without_parents(
            conversation(before)
        )
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
