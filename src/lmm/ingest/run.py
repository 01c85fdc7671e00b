"""Incremental, idempotent ingest: transcript files -> store."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm.errors import InputError
from lmm.ingest import importers, privacy
from lmm.ingest.transcripts import TranscriptFile, TranscriptReader, discover
from lmm.records import ParseIssue, SessionInfo, Turn
from lmm.store import erase
from lmm.store.db import PreparedTurns, Store, prepare_turns

log = logging.getLogger(__name__)

CHUNK_TURNS = 2_000
COMMIT_TURNS = 10_000  # rows per transaction at most (several small files share one)
CHUNK_CHARS = 4_000_000  # also cut a chunk at this much text: bounds memory on huge lines
HEAD_BYTES = 4_096
MAX_REPORTED_ISSUES = 50
PARALLEL_MIN_BYTES = 8_000_000  # below this, worker start-up costs more than it saves
OPTED_OUT = "opted out"  # sources.skipped of a file whose session's project opted out


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
    partial_lines: int = 0  # last lines still being written: read once a newline ends them
    turns_copied: int = 0  # turns already stored under another session (--fork-session copies)
    bytes_read: int = 0
    seconds: float = 0.0
    workers: int = 0
    turns_opted_out: int = 0  # turns of projects that opted out (`.lmm-ignore`), never stored
    turns_purged: int = 0  # stored turns of projects that opted out since, deleted by this run
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
            + (f"{self.partial_lines} lines still being written, " if self.partial_lines else "")
            + f"{mb:.1f} MB in {self.seconds:.2f} s ({rate:.1f} MB/s)"
        )


Progress = Callable[[int], None]  # called with a number of bytes just consumed


@dataclass
class Job:
    """One file to read, from where, and what to record when it is done."""

    path: Path
    key: str  # the resolved path: the source's identity in the store
    fmt: str  # claude | generic | locomo
    transcript: TranscriptFile | None
    start: int
    line_no: int
    size: int
    mtime_ns: int
    head: str


@dataclass
class Chunk:
    """What a reader produced for one piece of a file: pure data, safe to send between processes."""

    sessions: list[SessionInfo]
    prepared: PreparedTurns
    issues: list[ParseIssue]
    offset: int  # the file offset this chunk's content ends at
    line_no: int
    final: bool = False
    skipped: str | None = None
    error: str | None = None
    partial_line: int | None = None  # a last line still being written, left for the next read


def _head_hash(path: Path, length: int) -> str:
    with path.open("rb") as f:
        head = f.read(length)
    return f"{len(head)}:{hashlib.blake2b(head, digest_size=16).hexdigest()}"


def _unchanged_head(path: Path, stored: str | None) -> bool:
    if not stored:
        return False
    length = int(stored.split(":", 1)[0])
    return _head_hash(path, length) == stored


# ---- planning (main process, reads the store)


def plan(
    paths: Sequence[Path], fmt: str = "auto"
) -> tuple[list[TranscriptFile], list[tuple[Path, str]]]:
    """Split the inputs into Claude Code transcripts and whole-file imports (generic, LoCoMo)."""
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} does not exist; pass a transcript file or folder")
        if not p.is_dir() and not p.is_file():  # /dev/zero would never end, a FIFO may never open
            raise InputError(
                f"{p} is not a regular file (a device, FIFO or socket); pass a transcript file "
                "or folder"
            )
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


def _job(
    store: Store, path: Path, fmt: str, tf: TranscriptFile | None, report: IngestReport
) -> Job | None:
    """The work one file needs, or None when it has not changed since it was last read."""
    st = path.stat()
    key = str(path.resolve())
    src = store.source(key)
    # Same size and mtime as when last read: nothing new (a truncated last line stays unread
    # until the file changes, and is not reported again).
    if src is not None and src["size"] == st.st_size and src["mtime_ns"] == st.st_mtime_ns:
        report.files_unchanged += 1
        return None
    start, line_no = 0, 0
    if fmt == "claude" and src is not None and src["offset"] > 0:
        if st.st_size >= src["offset"] and _unchanged_head(path, src["head_hash"]):
            start, line_no = src["offset"], src["line_no"]
        else:
            report.files_rewritten += 1
            log.info("%s was rewritten; reading it again from the start", path)
    head = _head_hash(path, HEAD_BYTES)
    return Job(path, key, fmt, tf, start, line_no, st.st_size, st.st_mtime_ns, head)


# ---- reading (pure: runs in a worker process or in-process)


def _items(job: Job) -> tuple[Iterator[Turn | ParseIssue | SessionInfo], TranscriptReader | None]:
    if job.transcript is not None:
        reader = TranscriptReader(job.transcript, offset=job.start, line_no=job.line_no)
        return iter(reader), reader
    if job.fmt == "locomo":
        return importers.read_locomo(job.path), None
    return importers.read_generic(job.path), None


def read_job(job: Job) -> Iterator[Chunk]:
    """Parse, redact and serialise one file into chunks; the last one has `final=True`."""
    items, reader = _items(job)
    turns: list[Turn] = []
    sessions: list[SessionInfo] = []
    issues: list[ParseIssue] = []
    chars = 0

    def cut(offset: int, line_no: int) -> Chunk:
        nonlocal chars
        chunk = Chunk(list(sessions), prepare_turns(turns), list(issues), offset, line_no)
        turns.clear()
        sessions.clear()
        issues.clear()
        chars = 0
        return chunk

    try:
        for item in items:
            if isinstance(item, Turn):
                turns.append(item)
                chars += len(item.text) + len(item.thinking)
                if len(turns) >= CHUNK_TURNS or chars >= CHUNK_CHARS:
                    yield cut(item.end_offset, item.end_line)
            elif isinstance(item, ParseIssue):
                issues.append(item)
            else:
                sessions.append(item)
    except Exception:  # a reader bug must not stop the other files; report it with the file
        log.exception("reading %s failed", job.path)
        chunk = cut(job.start, job.line_no)
        chunk.final, chunk.error = True, traceback.format_exc(limit=3)
        yield chunk
        return
    if reader is not None:
        final = cut(reader.offset, reader.line_no)
        final.skipped, final.partial_line = reader.skipped_reason, reader.partial_line
    else:
        final = cut(job.size, 0)
    final.final = True
    yield final


# ---- writing (main process)


class _Writer:
    """Writes chunks: each in one transaction with its source checkpoint."""

    def __init__(self, store: Store, report: IngestReport, progress: Progress | None) -> None:
        self.store = store
        self.report = report
        self.progress = progress
        self.known_sessions: set[str] = set()
        self.touched: set[str] = set()
        self.done_offset: dict[str, int] = {}
        self.opted_out: set[str] = set()
        self.excluded: dict[str | None, bool] = {}  # project -> privacy.excluded, for this run
        self.file_opted_out: dict[str, bool] = {}  # source key -> marked opted out earlier
        self.pending = 0  # rows written since the last commit

    def _ensure_session(self, info: SessionInfo) -> None:
        if info.session_id not in self.known_sessions:
            self.report.sessions_new += not self.store.has_session(info.session_id)
            self.known_sessions.add(info.session_id)
        self.store.add_session(info)

    def commit(self) -> None:
        self.store.commit()
        self.pending = 0

    def rollback(self) -> None:
        self.store.rollback()
        self.pending = 0

    def _file_opted_out(self, job: Job) -> bool:
        known = self.file_opted_out.get(job.key)
        if known is None:
            src = self.store.source(job.key)
            known = self.file_opted_out[job.key] = bool(src and src["skipped"] == OPTED_OUT)
        return known

    def _excluded(self, project: str | None) -> bool:
        known = self.excluded.get(project)
        if known is None:
            known = self.excluded[project] = privacy.excluded(project)
        return known

    def _drop_opted_out(
        self, chunk: Chunk, fallback: str | None
    ) -> tuple[PreparedTurns, list[SessionInfo]]:
        """Leave out everything of projects that opted out (`lmm.ingest.privacy`), before any
        write."""
        out = self.opted_out
        for info in chunk.sessions:
            if self._excluded(info.project):
                out.add(info.session_id)
        projects = {row[14] or fallback for row in chunk.prepared.rows}
        if not out and not any(self._excluded(p) for p in projects):
            return chunk.prepared, chunk.sessions  # the common case: one check per project
        rows = []
        for row in chunk.prepared.rows:
            if row[0] in out or self._excluded(row[14] or fallback):
                out.add(row[0])
                self.report.turns_opted_out += 1
            else:
                rows.append(row)
        if len(rows) == len(chunk.prepared.rows) and not out:
            return chunk.prepared, chunk.sessions
        links = [link for link in chunk.prepared.links if link[0] not in out]
        sessions = [s for s in chunk.sessions if s.session_id not in out]
        return PreparedTurns(rows, links), sessions

    def write(self, job: Job, chunk: Chunk) -> None:
        store, report = self.store, self.report
        fields: dict[str, Any] = {
            "offset": chunk.offset,
            "line_no": chunk.line_no,
            "head_hash": job.head,
        }
        if chunk.final and chunk.error is None:
            fields.update(size=job.size, mtime_ns=job.mtime_ns, skipped=chunk.skipped)
        fallback = _fallback_project(job)
        if self._file_opted_out(job):  # an earlier run found its session opted out
            for row in chunk.prepared.rows:
                self.opted_out.add(row[0])
        prepared, sessions = self._drop_opted_out(chunk, fallback)
        if len(prepared.rows) < len(chunk.prepared.rows) or len(sessions) < len(chunk.sessions):
            self.file_opted_out[job.key] = True
        if self.file_opted_out.get(job.key):
            # remembered on the file: its later lines (some without a cwd) stay out too
            fields["skipped"] = OPTED_OUT
        if copied := store.copied_uuids(prepared.rows):
            self.report.turns_copied += len(copied)
            rows = [row for row in prepared.rows if row[2] not in copied]
            prepared = PreparedTurns(rows, prepared.links)
        session_ids = {row[0] for row in prepared.rows}
        if not store.in_transaction:
            store.begin()
        try:
            for info in sessions:
                self._ensure_session(info)
            for sid in session_ids - self.known_sessions:
                cwd = next((r[14] for r in chunk.prepared.rows if r[0] == sid and r[14]), None)
                self._ensure_session(SessionInfo(sid, job.fmt, project=cwd or fallback))
            source_id = store.upsert_source(job.key, job.fmt, **fields)
            store.add_prepared(prepared, source_id)
            if chunk.issues:
                store.add_issues(source_id, [(i.line_no, i.reason) for i in chunk.issues])
        except BaseException:
            self.rollback()
            raise
        # Small files share a transaction (a commit per file costs more than the file); each
        # chunk's turns and its source offset are always in the same one, so a kill loses
        # nothing that a resume does not redo.
        self.pending += len(prepared.rows) + 1
        if self.pending >= COMMIT_TURNS:
            self.commit()
        self.touched |= session_ids | {s.session_id for s in sessions}
        report.malformed += len(chunk.issues)
        report.partial_lines += chunk.partial_line is not None
        for issue in chunk.issues:
            if len(report.issues) < MAX_REPORTED_ISSUES:
                report.issues.append(issue)
        if chunk.error is not None:
            report.malformed += 1
            report.issues.append(ParseIssue(str(job.path), chunk.line_no, chunk.error))
        consumed = max(0, chunk.offset - self.done_offset.get(job.key, job.start))
        self.done_offset[job.key] = max(chunk.offset, self.done_offset.get(job.key, job.start))
        report.bytes_read += consumed
        if self.progress and consumed:
            self.progress(consumed)
        if chunk.final and chunk.skipped:
            report.files_skipped += 1
            report.subagents -= job.transcript is not None and job.transcript.layout != "session"


def _fallback_project(job: Job) -> str | None:
    """A project for sessions with no cwd: the Claude projects folder the file sits in."""
    if job.transcript is None:
        return None
    # <project>/<session>.jsonl, <project>/agent-*.jsonl, <project>/<session>/subagents/*.jsonl
    up = 3 if job.transcript.layout == "subagent" else 1
    return str(job.path.parents[up - 1])


# ---- the worker pool


def _worker(jobs: list[tuple[int, Job]], out: Any, parent: int) -> None:
    def put(item: object) -> None:
        while True:  # a bounded queue; give up when the writer is gone (killed, interrupted)
            try:
                out.put(item, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != parent:
                    raise SystemExit(1) from None

    for index, job in jobs:
        for chunk in read_job(job):
            put((index, chunk))
    put(None)


def _run_parallel(jobs: list[Job], writer: _Writer, workers: int) -> None:
    ctx: Any = mp.get_context("spawn" if os.name != "posix" else "fork")
    out = ctx.Queue(maxsize=4 * workers)
    shares: list[list[tuple[int, Job]]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for index, job in sorted(enumerate(jobs), key=lambda ij: -(ij[1].size - ij[1].start)):
        w = loads.index(min(loads))
        shares[w].append((index, job))
        loads[w] += job.size - job.start
    procs = [
        ctx.Process(target=_worker, args=(share, out, os.getpid()), daemon=True) for share in shares
    ]
    for p in procs:
        p.start()
    running = len(procs)
    try:
        while running:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if not any(p.is_alive() for p in procs):
                    raise InputError(
                        "an ingest worker died; run `lmm ingest` again to resume"
                    ) from None
                continue
            if item is None:
                running -= 1
                continue
            index, chunk = item
            writer.write(jobs[index], chunk)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)


def _workers_for(jobs: list[Job], requested: int | None) -> int:
    if requested is not None:
        return max(0, requested)
    total = sum(j.size - j.start for j in jobs)
    if total < PARALLEL_MIN_BYTES or len(jobs) < 2:
        return 0
    return max(1, min(len(jobs), (os.cpu_count() or 1) - 1))


# ---- the entry point


def _unnamed(path: Path, report: IngestReport) -> bool:
    """Whether `path`'s name is not valid UTF-8: the store keys files by name, so such a file is
    skipped (reported as an issue), and the rest of the run goes on."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        reason = "the file name is not valid UTF-8; rename the file to read it"
        report.issues.append(ParseIssue(shown, 0, reason))
        report.files_skipped += 1
        return True
    return False


def ingest(
    store: Store,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> IngestReport:
    """Ingest transcripts (files or folders) into `store`; only new lines are read.

    `workers`: parser processes beside the writing one (default: cores - 1 for big runs, 0 for
    small ones, which then run in this process).
    """
    t0 = time.perf_counter()
    report = IngestReport()
    privacy.reset_cache()  # the marker may have appeared since this process last looked
    report.turns_purged = erase.purge_opted_out(store, privacy.excluded)["turns"]
    transcripts, others = plan(paths, fmt)
    report.files = len(transcripts) + len(others)
    jobs: list[Job] = []
    for tf in transcripts:
        if _unnamed(tf.path, report):
            continue
        job = _job(store, tf.path, "claude", tf, report)
        if job is not None:
            jobs.append(job)
            report.subagents += tf.layout != "session"
    for path, kind in others:
        if _unnamed(path, report):
            continue
        job = _job(store, path, kind, None, report)
        if job is not None:
            jobs.append(job)
    report.files_read = len(jobs)
    if on_plan is not None:  # the bytes this run will read: unchanged files cost nothing
        on_plan(sum(j.size - j.start for j in jobs))
    inserted_before = store.turns_inserted
    writer = _Writer(store, report, progress)
    report.workers = _workers_for(jobs, workers)
    with store.bulk():
        try:
            if report.workers:
                _run_parallel(jobs, writer, report.workers)
            else:
                for job in jobs:
                    for chunk in read_job(job):
                        writer.write(job, chunk)
            writer.commit()
        finally:
            writer.rollback()  # only an interrupted run has anything uncommitted
    with store.transaction():
        store.link_subagents()
        # and sessions an earlier, killed run wrote turns for but never got to refresh
        store.refresh_sessions(writer.touched | store.unrefreshed_sessions())
    report.turns_total = store.turn_count()
    report.turns_new = store.turns_inserted - inserted_before  # not another process's turns
    report.sessions = len(writer.touched)
    report.seconds = time.perf_counter() - t0
    return report
