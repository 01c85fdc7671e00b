"""The background job that keeps the memory learning: one per store, fed by a queue."""

from __future__ import annotations

import os
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads it as True
if TYPE_CHECKING:
    from lmm.serve.learn import LearnReport
    from lmm.store.db import Store

QUEUE_DIR = "queue"
LOCK_NAME = "job.lock"
NICE = 10  # the job yields the CPU to the agent and its tools
SUFFIX = ".path"
ATTEMPTS = 3  # rounds an entry may fail before it is set aside as `*.failed`


def queue_dir() -> str:
    from lmm import paths

    return os.path.join(paths.home_dir(), QUEUE_DIR)


def lock_path() -> str:
    from lmm import paths

    return os.path.join(paths.home_dir(), LOCK_NAME)


# ---- the submitting side (inside a hook: os, sys, time, fcntl only)


def enqueue(transcript: str) -> str:
    """Queue one transcript path for the job; returns the entry's file. The entry appears whole
    (written aside, then renamed); names sort in submission order."""
    folder = queue_dir()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    name = f"{time.time_ns():020d}-{os.getpid()}{SUFFIX}"
    tmp = os.path.join(folder, "." + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, os.fsencode(transcript))
    finally:
        os.close(fd)
    entry = os.path.join(folder, name)
    os.rename(tmp, entry)
    return entry


def _try_lock() -> int | None:
    """An fd holding the job lock, or None when another process holds it."""
    import fcntl

    from lmm import paths

    os.makedirs(paths.home_dir(), mode=0o700, exist_ok=True)
    fd = os.open(lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int) -> None:
    os.close(fd)  # closing the last descriptor of the open file releases the flock


def job_running() -> bool:
    """Whether a job holds the lock now."""
    fd = _try_lock()
    if fd is None:
        return True
    _unlock(fd)
    return False


def start_job(log: str | None = None) -> int:
    """Start `python -m lmm.serve.background` in its own session (it outlives the hook); its stderr
    goes to `log` (a file path) when given. Returns its pid."""
    import subprocess

    err = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 -- closed below
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lmm.serve.background"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # survives the hook; no terminal signals reach it
            close_fds=True,
        )
    finally:
        if not isinstance(err, int):
            err.close()
    proc.returncode = 0  # never waited for: it outlives us by design (silences ResourceWarning)
    return proc.pid


def submit(transcript: str, log: str | None = None) -> int | None:
    """Queue `transcript` and start a job unless one runs (it will take the entry). Returns the
    new job's pid, or None when a running job takes it."""
    enqueue(transcript)
    if job_running():
        return None
    return start_job(log)


def pending() -> list[str]:
    """The queued entries' file paths, oldest first."""
    folder = queue_dir()
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if n.endswith(SUFFIX) and n[0] != "."]


def idle() -> bool:
    """No job runs and nothing waits in the queue."""
    return not pending() and not job_running()


def wait_idle(timeout: float, poll: float = 0.1) -> bool:
    """Wait until `idle()`; False when `timeout` seconds passed first."""
    end = time.monotonic() + timeout
    while not idle():
        if time.monotonic() > end:
            return False
        time.sleep(poll)
    return True


# ---- the job (imports what it needs; the submitting side above stays light)


def _read_entries(entries: list[str]) -> list[str]:
    """The transcript paths the entries name, in order, without repeats (unreadable entries,
    e.g. one a finished job already deleted, are skipped)."""
    found: dict[str, None] = {}
    for entry in entries:
        try:
            with open(entry, "rb") as f:
                found[os.fsdecode(f.read())] = None
        except OSError:
            continue
    return list(found)


def _retry(entry: str) -> None:
    """Put back an entry whose round failed, one attempt used; after `ATTEMPTS` it is renamed
    `*.failed` (kept for a look, never read again)."""
    import contextlib

    head, name = os.path.split(entry)
    stem = name[: -len(SUFFIX)]
    base, _, tried = stem.partition(".r")
    attempts = int(tried) + 1 if tried.isdigit() else 1
    target = f"{base}.r{attempts}{SUFFIX}" if attempts < ATTEMPTS else f"{base}.failed"
    with contextlib.suppress(FileNotFoundError):
        os.rename(entry, os.path.join(head, target))


def run_round(entries: list[str]) -> LearnReport | None:
    """Learn from the transcripts the entries name, then delete the entries. A failed round is
    logged and its entries go back to the queue, `ATTEMPTS` times at most; a killed process
    deletes nothing, so the next job reads them again."""
    import contextlib
    import logging
    from pathlib import Path

    from lmm.serve.learn import auto_embedder, learn, with_subagents
    from lmm.store.db import open_store

    log = logging.getLogger("lmm.serve.background")
    transcripts = _read_entries(entries)
    report = None
    try:
        files = with_subagents([Path(t) for t in transcripts])
        if files:
            with open_store() as store:
                embedder, why = auto_embedder(store)
                report = learn(store, files, embedder=embedder, embed_skipped=why, embed_threads=1)
                log.info("job: %d transcripts: %s", len(transcripts), report.summary())
                _digest(store, transcripts)
                _team(store, transcripts)
    except Exception:  # the job's boundary: log it, never leave a traceback on a terminal
        log.exception("job failed on %s", ", ".join(transcripts))
        for entry in entries:
            _retry(entry)
        return None
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry)
    return report


def _digest(store: Store, transcripts: list[str]) -> None:
    """The last, optional step: session digests (digest.py; `LMM_DIGEST=0` switches it off).
    Its failure is logged and never sends the round's entries back to the queue."""
    import logging

    from lmm.memory import digest

    log = logging.getLogger("lmm.serve.background")
    try:
        for d in digest.after_learning(store, transcripts):
            log.info("job: digest of %s: %d lines kept, %d dropped in %.1f s",
                     d.session_id, len(d.lines), len(d.dropped), d.seconds)  # fmt: skip
    except Exception:  # optional: the round has learnt what it must
        log.exception("job: session digest failed")


def _team(store: Store, transcripts: list[str]) -> None:
    """With a team store (LMM_TEAM_URL), keep the team's memories of the sessions' projects
    (memory/share.py). Its failure (the team store unreachable) is logged and never sends the
    round's entries back to the queue."""
    import logging

    from lmm import config, paths
    from lmm.memory import share

    url = config.settings(str(paths.config_file())).team_url
    if not url:
        return
    log = logging.getLogger("lmm.serve.background")
    try:
        for project, done in share.pull(store, url, share.projects_of(store, transcripts)).items():
            log.info("job: team memories of %s: %d new, %d overruled, %d forgotten",
                     project, done.added, done.overruled, done.forgotten)  # fmt: skip
    except Exception:  # optional: the round has learnt what it must
        log.exception("job: pulling the team's memories failed")


def run_job() -> int:
    """Drain the queue while holding the lock; returns the rounds run (0: another job holds the
    lock, or nothing was queued)."""
    rounds = 0
    while True:
        fd = _try_lock()
        if fd is None:
            return rounds  # the holder drains, or a submitter probing the lock starts a job
        try:
            while entries := pending():
                run_round(entries)
                rounds += 1
        finally:
            _unlock(fd)
        if not pending():
            return rounds
        # an entry came between our last look and the unlock, its submitter saw the lock held


def main() -> int:
    """`python -m lmm.serve.background`: nice, log to hooks.log, drain the queue, exit 0."""
    import contextlib

    from lmm.serve.hooklog import setup_file_log

    with contextlib.suppress(OSError):
        os.nice(NICE)
    setup_file_log()
    try:
        run_job()
    except BaseException:  # SystemExit/KeyboardInterrupt included: say so in the log
        import logging

        logging.getLogger("lmm.serve.background").exception("job stopped")
        return 1
    return 0


if (
    __name__ == "__main__"
):  # `python -m lmm.serve.background`: run the importable copy of this module
    from lmm.serve.background import main as job_main

    raise SystemExit(job_main())
