"""Incremental, idempotent ingest: transcript files -> store.

Each source file remembers how many bytes were consumed; a later run reads only what was appended.
A file whose head changed or that shrank was rewritten: it is read again from the start, and the
store's upsert keeps that free of duplicates. Every batch commits together with the source offset,
so an ingest killed at any point resumes where its last commit ended.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm import importers
from lmm.errors import InputError
from lmm.records import ParseIssue, SessionInfo, Turn
from lmm.store import Store
from lmm.transcripts import TranscriptFile, TranscriptReader, discover

log = logging.getLogger(__name__)

BATCH_TURNS = 2_000
HEAD_BYTES = 4_096
MAX_REPORTED_ISSUES = 50


@dataclass
class IngestReport:
    """What one ingest run did. `turns_new` counts rows that did not exist before."""

    files: int = 0
    files_read: int = 0
    files_unchanged: int = 0
    files_skipped: int = 0  # dropped whole, e.g. sub-agent "Warmup" probes
    files_rewritten: int = 0
    sessions: int = 0  # sessions touched by this run
    sessions_new: int = 0
    subagents: int = 0  # sub-agent transcripts among the files read
    turns_new: int = 0
    turns_total: int = 0
    malformed: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    issues: list[ParseIssue] = field(default_factory=list)

    def summary(self) -> str:
        mb = self.bytes_read / 1e6
        rate = mb / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.files} files ({self.files_read} read, {self.files_unchanged} unchanged, "
            f"{self.files_skipped} skipped, {self.files_rewritten} rewritten), "
            f"{self.sessions} sessions ({self.sessions_new} new), {self.subagents} sub-agents, "
            f"{self.turns_new} new turns ({self.turns_total} stored), "
            f"{self.malformed} malformed lines, "
            f"{mb:.1f} MB in {self.seconds:.2f} s ({rate:.1f} MB/s)"
        )


Progress = Callable[[int], None]  # called with a number of bytes just consumed


def _head_hash(path: Path, length: int) -> str:
    with path.open("rb") as f:
        head = f.read(length)
    return f"{len(head)}:{hashlib.blake2b(head, digest_size=16).hexdigest()}"


def _unchanged_head(path: Path, stored: str | None) -> bool:
    if not stored:
        return False
    length = int(stored.split(":", 1)[0])
    return _head_hash(path, length) == stored


class _Run:
    """State of one ingest run: the store, the report, which sessions exist."""

    def __init__(self, store: Store, report: IngestReport, progress: Progress | None) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.known_sessions: set[str] = set()
        self.touched: set[str] = set()

    def ensure_session(self, session_id: str, source: str, project: str | None) -> None:
        if session_id in self.known_sessions:
            return
        exists = self.store.db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,))
        if exists.fetchone() is None:
            self.store.add_session(SessionInfo(session_id, source, project=project))
            self.report.sessions_new += 1
        self.known_sessions.add(session_id)

    def consume(
        self,
        items: Iterable[Turn | ParseIssue | SessionInfo],
        *,
        source: str,
        source_path: str,
        fallback_project: str | None,
        checkpoint: Callable[[], dict[str, Any]],
        start: int = 0,
        fixed: dict[str, Any] | None = None,
    ) -> None:
        """Write a reader's items in batches, each batch in one transaction with its checkpoint."""
        store = self.store
        batch: list[Turn] = []
        issues: list[tuple[int, str]] = []
        sessions: list[SessionInfo] = []
        last_offset = start
        fixed = fixed or {}

        def flush(offset: int, line_no: int, final: bool = False) -> None:
            nonlocal last_offset
            src_fields = checkpoint() if final else {**fixed, "offset": offset, "line_no": line_no}
            with store.transaction():
                for info in sessions:
                    if info.session_id not in self.known_sessions:
                        exists = store.db.execute(
                            "SELECT 1 FROM sessions WHERE id = ?", (info.session_id,)
                        ).fetchone()
                        self.report.sessions_new += exists is None
                        self.known_sessions.add(info.session_id)
                    store.add_session(info)
                for t in batch:
                    self.ensure_session(t.session_id, source, t.cwd or fallback_project)
                source_id = store.upsert_source(source_path, source, **src_fields)
                store.add_turns(batch, source_id)
                if issues:
                    store.add_issues(source_id, issues)
            self.touched.update(t.session_id for t in batch)
            self.touched.update(s.session_id for s in sessions)
            if self.progress and offset > last_offset:
                self.progress(offset - last_offset)
            last_offset = max(last_offset, offset)
            batch.clear()
            issues.clear()
            sessions.clear()

        for item in items:
            if isinstance(item, Turn):
                batch.append(item)
                if len(batch) >= BATCH_TURNS:
                    flush(item.end_offset, item.end_line)
            elif isinstance(item, ParseIssue):
                issues.append((item.line_no, item.reason))
                self.report.malformed += 1
                if len(self.report.issues) < MAX_REPORTED_ISSUES:
                    self.report.issues.append(item)
            else:
                sessions.append(item)
        final = checkpoint()
        flush(final["offset"], final["line_no"], final=True)


def _ingest_transcript(run: _Run, tf: TranscriptFile) -> None:
    store, report = run.store, run.report
    path = tf.path
    st = path.stat()
    key = str(path.resolve())
    src = store.source(key)
    # Same size and mtime as when last read: nothing new (a truncated last line stays unread
    # until the file changes, and is not reported again).
    if src is not None and src["size"] == st.st_size and src["mtime_ns"] == st.st_mtime_ns:
        report.files_unchanged += 1
        return
    start, line_no = 0, 0
    if src is not None and src["offset"] > 0:
        if st.st_size >= src["offset"] and _unchanged_head(path, src["head_hash"]):
            start, line_no = src["offset"], src["line_no"]
        else:
            report.files_rewritten += 1
            log.info("%s was rewritten; reading it again from the start", path)
    reader = TranscriptReader(tf, offset=start, line_no=line_no)
    report.files_read += 1
    report.subagents += tf.layout != "session"

    head = _head_hash(path, HEAD_BYTES)

    def checkpoint() -> dict[str, Any]:
        return {
            "offset": reader.offset,
            "line_no": reader.line_no,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "head_hash": head,
            "skipped": reader.skipped_reason,
        }

    fallback = str(path.parent) if tf.layout == "session" else str(path.parent.parent)
    run.consume(
        reader,
        source="claude",
        source_path=key,
        fallback_project=fallback,
        checkpoint=checkpoint,
        start=start,
        fixed={"head_hash": head},
    )
    if reader.skipped_reason:
        report.files_skipped += 1
        report.subagents -= 1
    report.bytes_read += max(0, reader.offset - start)


def _ingest_whole_file(run: _Run, path: Path, fmt: str) -> None:
    """Generic and LoCoMo files are small: re-read whole when they change (upserts dedupe)."""
    store, report = run.store, run.report
    st = path.stat()
    key = str(path.resolve())
    src = store.source(key)
    if (
        src is not None
        and src["size"] == st.st_size
        and src["mtime_ns"] == st.st_mtime_ns
        and _unchanged_head(path, src["head_hash"])
    ):
        report.files_unchanged += 1
        return
    reader = importers.read_locomo(path) if fmt == "locomo" else importers.read_generic(path)
    report.files_read += 1

    head = _head_hash(path, HEAD_BYTES)

    def checkpoint() -> dict[str, Any]:
        return {
            "offset": st.st_size,
            "line_no": 0,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "head_hash": head,
        }

    run.consume(
        reader,
        source=fmt,
        source_path=key,
        fallback_project=None,
        checkpoint=checkpoint,
        fixed={"head_hash": head},
    )
    report.bytes_read += st.st_size


def _count_turns(store: Store) -> int:
    return int(store.db.execute("SELECT count(*) FROM turns").fetchone()[0])


def plan(
    paths: Sequence[Path], fmt: str = "auto"
) -> tuple[list[TranscriptFile], list[tuple[Path, str]]]:
    """Split the inputs into Claude Code transcripts and whole-file imports (generic, LoCoMo)."""
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} does not exist; pass a transcript file or folder")
    if fmt == "claude":
        return discover(paths), []
    others: list[tuple[Path, str]] = []
    claude_inputs: list[Path] = []
    for p in paths:
        if p.is_dir():
            if fmt in ("generic", "locomo"):
                others += [(f, fmt) for f in sorted(p.rglob("*.json*")) if f.is_file()]
            else:
                claude_inputs.append(p)
            continue
        kind = importers.detect_format(p) if fmt == "auto" else fmt
        if kind == "claude":
            claude_inputs.append(p)
        else:
            others.append((p, kind))
    return (discover(claude_inputs) if claude_inputs else []), others


def ingest(
    store: Store,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest transcripts (files or folders) into `store`; only new lines are read."""
    t0 = time.perf_counter()
    report = IngestReport()
    transcripts, others = plan(paths, fmt)
    report.files = len(transcripts) + len(others)
    before = _count_turns(store)
    run = _Run(store, report, progress)
    for tf in transcripts:
        _ingest_transcript(run, tf)
    for path, kind in others:
        _ingest_whole_file(run, path, kind)
    with store.transaction():
        store.link_subagents()
        store.refresh_sessions(run.touched)
    report.turns_total = _count_turns(store)
    report.turns_new = report.turns_total - before
    report.sessions = len(run.touched)
    report.seconds = time.perf_counter() - t0
    return report


def total_bytes(paths: Sequence[Path], fmt: str = "auto") -> int:
    """Bytes a full read of `paths` would consume (for progress bars)."""
    transcripts, others = plan(paths, fmt)
    return sum(t.path.stat().st_size for t in transcripts) + sum(
        p.stat().st_size for p, _ in others
    )
