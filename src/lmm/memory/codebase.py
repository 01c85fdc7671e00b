"""`lmm ingest-code PATH`: what a repository says about itself, as cognitions (origin 'code')."""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lmm.memory.codefacts import facts_of
from lmm.store import codefiles, cognitions
from lmm.store.cognitions import Cognition, SourceRef
from lmm.store.db import Store

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 1_000_000
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "dist", "build",
             "site-packages", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tox", ".nox",
             "target", ".idea", ".vscode"}  # fmt: skip


@dataclass
class CodeReport:
    """What one `ingest_code` run did."""

    root: str
    files: int = 0  # files considered
    files_read: int = 0  # new or changed
    files_unchanged: int = 0
    files_removed: int = 0
    added: int = 0  # new cognitions
    superseded: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.root}: {self.files} files ({self.files_read} read, {self.files_unchanged} "
            f"unchanged, {self.files_removed} removed), {self.added} new memories, "
            f"{self.superseded} superseded, {self.seconds:.2f} s"
        )


def _files(root: Path) -> list[Path]:
    """The repository's files: `git ls-files` where it is a git work tree, else a walk."""
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                 "--exclude-standard"],
                capture_output=True, check=True, timeout=60,
            ).stdout  # fmt: skip
            found = [root / p for p in out.decode(errors="replace").split("\0") if p]
            return sorted(p for p in found if p.is_file() and not SKIP_DIRS & set(p.parts))
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("git ls-files failed in %s (%s); walking the folder instead", root, exc)
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        paths += [Path(dirpath) / f for f in sorted(filenames)]
    return paths


def _sha(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def ingest_code(store: Store, root: Path) -> CodeReport:
    """Learn the repository at `root` (incremental: only new or changed files are read)."""
    t0 = time.perf_counter()
    root = root.expanduser().resolve()
    if not root.is_dir():
        from lmm.errors import InputError

        raise InputError(f"{root} is not a folder; pass the root of a repository")
    from lmm import paths
    from lmm.ingest import privacy

    if privacy.excluded_now(str(root)):
        from lmm.errors import InputError

        raise InputError(
            f"{root} has opted out of memory ({privacy.MARKER} or {paths.config_file()}); "
            "remove the opt-out to learn it"
        )
    report = CodeReport(root=str(root))
    pid = store.project_id(str(root))
    known = codefiles.known(store, pid)
    seen: set[str] = set()
    for path in _files(root):
        rel = path.relative_to(root).as_posix()
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        facts = facts_of(rel, data)
        if facts is None:
            continue  # not a file this module reads
        report.files += 1
        seen.add(str(path))
        sha = _sha(data)
        if known.get(str(path)) == sha:
            report.files_unchanged += 1
            continue
        report.files_read += 1
        with store.transaction():
            keep = []
            for fact in facts:
                cog = Cognition(
                    text=fact.text,
                    category=fact.category,
                    project_id=pid,
                    subject=f"{rel}::{fact.key}",
                    keywords=fact.keywords,
                    salience=fact.salience,
                    origin="code",
                    sources=[SourceRef(file_path=rel, line_no=fact.line, quote=fact.quote)],
                    extra={"value": _sha(fact.text.encode())},
                )
                out = cognitions.put(store, cog)
                report.added += out.action == "added"
                report.superseded += len(out.superseded)
                keep.append(out.id)
            report.superseded += codefiles.retire(store, pid, rel, keep)
            codefiles.record(store, str(path), pid, sha)
    for gone in sorted(set(known) - seen):
        rel = Path(gone).relative_to(root).as_posix() if gone.startswith(str(root)) else gone
        with store.transaction():
            report.superseded += codefiles.retire(store, pid, rel, [])
            codefiles.forget(store, gone)
        report.files_removed += 1
    report.seconds = time.perf_counter() - t0
    return report
