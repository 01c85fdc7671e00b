"""`lmm ingest` killed with SIGKILL at random points, then resumed: the store ends up equal to a
clean single run (no loss, no duplicates) and passes `PRAGMA integrity_check` every time."""

from __future__ import annotations

import importlib.util
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lmm.ingest.run import ingest
from lmm.store import migrations
from lmm.store.db import Store

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "claude_sessions"

needs_data = pytest.mark.skipif(
    not DATA.exists(), reason=f"real transcripts not found at {DATA} (../shared/data)"
)


def _synthesize(out: Path, mb: float) -> None:
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.synthesize(out, mb, seed=7)


def _dump(db_path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(db_path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.execute("INSERT INTO turns_fts (turns_fts, rank) VALUES ('integrity-check', 1)")
    rows = db.execute(
        "SELECT session_id, key, uuids, role, kind, text, thinking, tools, timestamp, line_no "
        "FROM turns ORDER BY session_id, key"
    ).fetchall()
    sources = db.execute("SELECT path, offset, line_no, size FROM sources ORDER BY path").fetchall()
    sessions = db.execute("SELECT id, started_at, ended_at FROM sessions ORDER BY id").fetchall()
    db.close()
    return rows + sources + sessions


def _consistent(db_path: Path) -> None:
    """What a kill may leave: a file that passes the integrity check at a whole schema version
    (a kill during start-up can come before the first migration commits: version 0, no tables),
    with a sound full-text index once it has one."""
    db = sqlite3.connect(db_path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert 0 <= db.execute("PRAGMA user_version").fetchone()[0] <= len(migrations.MIGRATIONS)
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'turns_fts'").fetchone():
            db.execute("INSERT INTO turns_fts (turns_fts, rank) VALUES ('integrity-check', 1)")
    finally:
        db.close()


def test_a_store_killed_before_its_first_migration_opens_and_ingests(tmp_path: Path) -> None:
    """The state a kill in the first instants leaves: the file exists, no schema yet."""
    path = tmp_path / "lmm.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    _consistent(path)
    store = Store(path)
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
        sample = ROOT / "src" / "lmm" / "sample" / "projects"
        assert ingest(store, [sample], workers=0).turns_new > 0
    finally:
        store.close()
    _consistent(path)


def _kill_and_resume(tmp_path: Path, rounds: int, mb: float) -> None:
    history = tmp_path / "projects"
    _synthesize(history, mb)
    clean = Store(tmp_path / "clean" / "lmm.db")
    ingest(clean, [history], workers=0)
    clean.close()
    expected = _dump(clean.path)

    home = tmp_path / "killed"
    env = {**os.environ, "LMM_HOME": str(home)}
    rng = random.Random(1)
    killed = 0
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-m", "lmm", "ingest", str(history)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.2, 1.5))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the writer and its parser workers
            killed += 1
        proc.wait()
        if (home / "lmm.db").exists():
            _consistent(home / "lmm.db")  # integrity holds after every kill
    assert killed > 0, "every run finished before the kill: make the history bigger"
    final = subprocess.run(
        [sys.executable, "-m", "lmm", "ingest", str(history)], env=env, capture_output=True
    )
    assert final.returncode == 0, final.stderr
    assert _dump(home / "lmm.db") == expected


@needs_data
def test_sigkill_during_ingest_then_resume_equals_a_clean_run(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, rounds=6, mb=15)


@pytest.mark.slow
@needs_data
def test_sigkill_many_times(tmp_path: Path) -> None:
    _kill_and_resume(tmp_path, rounds=40, mb=60)
