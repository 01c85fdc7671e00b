"""Ingest throughput: parse + redact + store (no embeddings), MB/s of JSONL and peak memory.

    python bench/ingest.py                 # 200 MB synthetic history (default)
    python bench/ingest.py --mb 20         # smoke run

The synthetic history is made from the real transcripts in ../shared/data/claude_sessions: their
sessions are copied with fresh uuids, message ids, session ids and shifted timestamps into several
project folders until the target size is reached, so record shapes and text are real.
The baseline runs in the same process tree on the same files: a bare loop (stdlib json, one regex,
executemany into SQLite, FTS5 rebuild) with none of lmm's features. Each side runs in its own
subprocess so its peak RSS is its own. CPU seconds (user + system, parser workers included) are
printed beside wall time, with the load average: on a shared machine wall time follows the CPU
share this run got, CPU seconds do not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "claude_sessions"
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ID_RE = re.compile(rb"\b(msg_|toolu_|req_)[A-Za-z0-9]{8,}")


def real_sessions() -> list[list[bytes]]:
    """The real session files (not sub-agents), each as its list of lines."""
    # the real sessions only (hand-made fixtures reuse ids like "s1" that would collide)
    real = DATA / "claude-code-log-iansherr-fork" / "test" / "test_data" / "real_projects"
    files = sorted(real.rglob("*.jsonl"))
    sessions = []
    for f in files:
        if f.name.startswith("agent-") or f.stat().st_size < 2_000:
            continue
        sessions.append(f.read_bytes().splitlines())
    if not sessions:
        raise SystemExit(f"no transcripts under {DATA}; this benchmark needs ../shared/data")
    return sessions


def synthesize(out: Path, target_mb: float, seed: int = 0) -> int:
    """Write copies of real sessions with fresh ids into `out`/<project>/<session>.jsonl."""
    rng = random.Random(seed)
    sessions = real_sessions()
    total = 0
    n = 0
    while total < target_mb * 1e6:
        lines = rng.choice(sessions)
        mapping: dict[bytes, bytes] = {}

        def fresh(m: re.Match[bytes], mapping: dict[bytes, bytes] = mapping) -> bytes:
            key = m.group(0)
            if key not in mapping:
                if key[:1] in b"mtr" and b"_" in key:
                    prefix = key.split(b"_", 1)[0] + b"_"
                    mapping[key] = prefix + uuid.UUID(int=rng.getrandbits(128)).hex.encode()[:24]
                else:
                    mapping[key] = str(uuid.UUID(int=rng.getrandbits(128), version=4)).encode()
            return mapping[key]

        body = b"\n".join(lines) + b"\n"
        body = UUID_RE.sub(fresh, body)
        body = ID_RE.sub(fresh, body)
        project = out / f"-home-dev-project{n % 7}"
        project.mkdir(parents=True, exist_ok=True)
        sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        (project / f"{sid}.jsonl").write_bytes(body)
        total += len(body)
        n += 1
    return total


def bare_loop(src: Path, db_path: Path) -> None:
    """The baseline: stdlib json, one regex, executemany into SQLite, FTS5 rebuild."""
    secret = re.compile(r"sk-[A-Za-z0-9_\-]{20,}")
    db = sqlite3.connect(db_path)
    db.executescript(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, session TEXT, uuid TEXT, text TEXT);"
        "CREATE VIRTUAL TABLE f USING fts5(text, content='t', content_rowid='id');"
    )
    for path in sorted(src.rglob("*.jsonl")):
        rows = []
        with path.open("rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                msg = rec.get("message") if isinstance(rec, dict) else None
                content = msg.get("content") if isinstance(msg, dict) else None
                if isinstance(content, list):
                    content = " ".join(
                        b.get("text", "") for b in content if isinstance(b, dict) and b.get("text")
                    )
                if isinstance(content, str):
                    rows.append((rec.get("sessionId"), rec.get("uuid"), secret.sub("X", content)))
        db.executemany("INSERT INTO t (session, uuid, text) VALUES (?, ?, ?)", rows)
        db.commit()
    db.execute("INSERT INTO f(f) VALUES ('rebuild')")
    db.commit()
    db.close()


def lmm_ingest(src: Path, home: Path) -> None:
    from lmm.ingest.run import ingest
    from lmm.store.db import Store

    with Store(home / "lmm.db") as store:
        report = ingest(store, [src])
    print(report.summary(), file=sys.stderr)


def child(which: str, src: Path, work: Path) -> None:
    t0 = time.perf_counter()
    if which == "lmm":
        lmm_ingest(src, work)
    else:
        bare_loop(src, work / "bare.db")
    dt = time.perf_counter() - t0
    # the writer and, for lmm, its parser workers (children): the larger peak of the two
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    peak_mb = peak_kb / 1024
    cpu = sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF),
                  resource.getrusage(resource.RUSAGE_CHILDREN))
    )  # fmt: skip
    print(json.dumps({"seconds": dt, "peak_rss_mb": peak_mb, "cpu_seconds": cpu}))


def run_child(which: str, src: Path) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run(
            [sys.executable, __file__, "--child", which, "--src", str(src), "--work", work],
            check=True,
            capture_output=True,
            text=True,
        )
    if out.stderr.strip():
        print(f"  {which}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mb", type=float, default=200.0, help="size of the synthetic history")
    ap.add_argument("--child", choices=["lmm", "bare"], help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.src, args.work)
        return
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "projects"
        t0 = time.perf_counter()
        size = synthesize(src, args.mb)
        files = sum(1 for _ in src.rglob("*.jsonl"))
        print(f"synthetic history: {size / 1e6:.1f} MB in {files} files "
              f"({time.perf_counter() - t0:.1f} s to generate)")  # fmt: skip
        load = os.getloadavg()[0]
        bare = run_child("bare", src)
        lmm = run_child("lmm", src)
    mb = size / 1e6
    print(f"{'':12}{'MB/s':>8}{'seconds':>10}{'CPU s':>8}{'peak RSS MB':>13}")
    for name, r in (("bare loop", bare), ("lmm", lmm)):
        print(f"{name:12}{mb / r['seconds']:8.1f}{r['seconds']:10.1f}{r['cpu_seconds']:8.1f}"
              f"{r['peak_rss_mb']:13.0f}")  # fmt: skip
    ratio = bare["seconds"] / lmm["seconds"]
    print(f"lmm / bare loop throughput: {ratio:.2f}x  (cpus: {os.cpu_count()}, load average "
          f"{load:.2f} before, {os.getloadavg()[0]:.2f} after)")  # fmt: skip
    print(f"INGEST MB/s={mb / lmm['seconds']:.1f} peak_rss_MB={lmm['peak_rss_mb']:.0f}")


if __name__ == "__main__":
    main()
