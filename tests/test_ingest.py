"""Incremental, idempotent ingest on the real transcripts: appends, rewrites, truncation."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmm.ingest import run as lmm_ingest
from lmm.ingest.run import ingest
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SESSIONS = DATA / "claude_sessions"
REAL = SESSIONS / "claude-code-log-iansherr-fork" / "test" / "test_data" / "real_projects"

needs_data = pytest.mark.skipif(
    not SESSIONS.exists(), reason=f"real transcripts not found at {SESSIONS} (../shared/data)"
)


def _dump(store: Store) -> list[tuple[object, ...]]:
    # the FTS index must match the table exactly (raises "database disk image is malformed")
    store.db.execute("INSERT INTO turns_fts (turns_fts, rank) VALUES ('integrity-check', 1)")
    rows = store.db.execute(
        "SELECT session_id, key, uuids, role, kind, text, thinking, tools, timestamp, cwd, "
        "git_branch, agent_id, parent_tool_use_id FROM turns ORDER BY session_id, key"
    )
    return [tuple(r) for r in rows]


def _biggest_real_session() -> Path:
    files = [p for p in REAL.rglob("*.jsonl") if not p.name.startswith("agent-")]
    return max(files, key=lambda p: p.stat().st_size)


@needs_data
def test_all_shared_transcripts_ingest_and_second_run_adds_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "lmm.db")
    first = ingest(store, [SESSIONS])
    assert first.files_read == first.files > 150
    assert first.turns_new == first.turns_total > 2000
    assert first.subagents > 0 and first.files_skipped > 0  # sub-agents read, Warmup probes dropped
    assert first.malformed > 0  # sidecar's malformed.jsonl, edge_cases.jsonl
    dump = _dump(store)
    second = ingest(store, [SESSIONS])
    assert (second.turns_new, second.files_read, second.malformed) == (0, 0, 0)
    assert _dump(store) == dump
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@needs_data
def test_appended_lines_are_the_only_new_work(tmp_path: Path) -> None:
    src = _biggest_real_session()
    lines = src.read_bytes().splitlines(keepends=True)
    cut = len(lines) // 2
    live = tmp_path / "proj" / src.name
    live.parent.mkdir()
    live.write_bytes(b"".join(lines[:cut]))

    store = Store(tmp_path / "lmm.db")
    first = ingest(store, [live])
    assert first.bytes_read == live.stat().st_size
    with live.open("ab") as f:
        f.write(b"".join(lines[cut:]))
    second = ingest(store, [live])
    assert second.bytes_read == sum(len(x) for x in lines[cut:])  # only the appended bytes
    assert second.turns_new > 0 and second.files_rewritten == 0

    whole = Store(tmp_path / "whole.db")
    ingest(whole, [src])
    assert _dump(store) == _dump(whole)  # same store as one clean run, no duplicates


@needs_data
def test_rewritten_and_truncated_files_give_no_duplicates(tmp_path: Path) -> None:
    src = _biggest_real_session()
    live = tmp_path / "proj" / src.name
    live.parent.mkdir()
    shutil.copy(src, live)
    store = Store(tmp_path / "lmm.db")
    ingest(store, [live])
    dump = _dump(store)

    lines = src.read_bytes().splitlines(keepends=True)
    live.write_bytes(b"".join(lines[: len(lines) // 3]))  # truncated
    report = ingest(store, [live])
    assert report.files_rewritten == 1 and report.turns_new == 0
    assert _dump(store) == dump  # nothing already stored is lost

    live.write_bytes(b"".join(lines))  # rewritten back to full
    report = ingest(store, [live])
    assert report.turns_new == 0
    assert _dump(store) == dump


@needs_data
def test_half_written_last_line_is_read_once_complete(tmp_path: Path) -> None:
    src = _biggest_real_session()
    lines = src.read_bytes().splitlines(keepends=True)
    live = tmp_path / "proj" / src.name
    live.parent.mkdir()
    partial = lines[-1][: len(lines[-1]) // 2]
    live.write_bytes(b"".join(lines[:-1]) + partial)
    store = Store(tmp_path / "lmm.db")
    first = ingest(store, [live])
    assert (first.malformed, first.partial_lines) == (0, 1)  # being written: not malformed
    with live.open("ab") as f:
        f.write(lines[-1][len(partial) :])
    second = ingest(store, [live])
    assert (second.malformed, second.partial_lines) == (0, 0)
    assert store.stats()["malformed_lines"] == 0
    whole = Store(tmp_path / "whole.db")
    ingest(whole, [src])
    assert _dump(store) == _dump(whole)


@needs_data
def test_provenance_is_kept(tmp_path: Path) -> None:
    store = Store(tmp_path / "lmm.db")
    ingest(store, [REAL])
    row = store.db.execute(
        "SELECT t.session_id, t.uuid, t.timestamp, t.git_branch, p.path, s.path AS source "
        "FROM turns t JOIN projects p ON p.id = t.project_id JOIN sources s ON s.id = t.source_id "
        "WHERE t.role = 'user' AND t.cwd IS NOT NULL AND t.git_branch IS NOT NULL LIMIT 1"
    ).fetchone()
    assert all(row[k] for k in row.keys())  # noqa: SIM118
    assert row["path"].startswith("/")  # the full cwd, not a basename
    assert Path(row["source"]).exists()


def _indexes(store: Store) -> list[list[tuple[object, ...]]]:
    """Both FTS indexes, term by term, after integrity checks against their content."""
    db = store.db
    out = []
    for table in ("turns_fts", "turn_keys"):
        db.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        db.execute(f"CREATE VIRTUAL TABLE temp.{table}_v USING fts5vocab(main, {table}, instance)")
        out.append(
            [tuple(r) for r in db.execute(f"SELECT * FROM temp.{table}_v ORDER BY 1, 2, 3, 4")]
        )
    out.append([tuple(r) for r in db.execute("SELECT rowid, * FROM turn_keys ORDER BY rowid")])
    return out


@needs_data
def test_deferred_indexing_matches_indexing_each_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # small chunks and transactions: merges land in a turn of the same chunk, of an earlier chunk
    # of the same transaction (still unindexed) and of an earlier transaction (indexed)
    monkeypatch.setattr(lmm_ingest, "CHUNK_TURNS", 7)
    monkeypatch.setattr(lmm_ingest, "COMMIT_TURNS", 13)
    deferred = Store(tmp_path / "deferred.db")
    ingest(deferred, [SESSIONS], workers=0)

    @contextlib.contextmanager
    def each_batch(self: Store) -> Iterator[None]:  # no deferral: every batch indexed at once
        yield

    monkeypatch.setattr(Store, "bulk", each_batch)
    reference = Store(tmp_path / "reference.db")
    ingest(reference, [SESSIONS], workers=0)
    assert _dump(deferred) == _dump(reference)
    assert _indexes(deferred) == _indexes(reference)
