"""Server soak: `lmm serve` under 8 concurrent clients, valid and hostile requests mixed.

    python bench/server_soak.py                    # full run: 10,000 requests
    python bench/server_soak.py --requests 500     # smoke run (tests/test_concurrency.py)

Store: the bundled sample history (ingest + rule extraction) in a temporary LMM_HOME. Server:
`python -m lmm serve --no-model --embedder none` (retrieval only, keyword + cognitions) on its
Unix socket. Clients: `--clients` threads, one connection per request, sharing `--requests`.
Mix: 80% valid (recall and search, alternating, over a fixed list of prompts), 5% each of: not
JSON, over 1 MB, no token, wrong token. Reports p50/p99/max latency of valid requests, errors on
valid requests (must be 0), invalid requests that did not get a clear error (must be 0), and
the server's RSS after warm-up (the first 10% of requests) vs at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

QUERIES = (
    "database is locked",
    "which package manager do we use",
    "add a dry-run flag to sync",
    "tide table parser tests",
    "migration failed in CI",
    "busy_timeout",
    "how do we run the linters",
    "something nobody ever said",
)
KINDS = ["valid"] * 16 + ["not_json", "oversize", "no_token", "wrong_token"]
EXPECTED_ERROR = {
    "not_json": "malformed request",
    "oversize": "request too large",
    "no_token": "wrong or missing token",
    "wrong_token": "wrong or missing token",
}


def prepare(home: Path) -> None:
    """Ingest the sample history and extract cognitions into `home` (in this process)."""
    os.environ["LMM_HOME"] = str(home)
    from lmm import paths
    from lmm.ingest.run import ingest
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.store.db import open_store

    with open_store() as store:
        ingest(store, [paths.sample_projects()])
        run_extraction(store, get_extractor("rules"))


def start_server(
    home: Path, timeout: float = 60.0
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    env = {**os.environ, "LMM_HOME": str(home)}
    cmd = [sys.executable, "-m", "lmm", "serve", "--no-model", "--embedder", "none"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    info_file = home / "server.json"
    end = time.monotonic() + timeout
    while not info_file.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"lmm serve did not start: {err[-2000:]}")
        time.sleep(0.1)
    return proc, json.loads(info_file.read_text())


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def request_bytes(kind: str, n: int, token: str) -> bytes:
    op = "recall" if n % 2 else "search"
    args: dict[str, Any] = {"query": QUERIES[n % len(QUERIES)], "cwd": "/home/dev/tidepool"}
    if op == "recall":
        args["generate"] = False
    body: dict[str, Any] = {"token": token, "op": op, "args": args}
    if kind == "not_json":
        return b'{"token": "' + token.encode() + b'", "op": recall\n'
    if kind == "oversize":
        body["args"]["query"] = "x" * 1_100_000
    if kind == "no_token":
        del body["token"]
    if kind == "wrong_token":
        body["token"] = "0" * len(token)
    return json.dumps(body).encode() + b"\n"


def send(address: str, payload: bytes, timeout: float = 30.0) -> tuple[dict[str, Any] | None, str]:
    """One request on a fresh connection: (reply or None, transport error text)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            return None, f"{exc.__class__.__name__}: {exc}"
        sent = ""
        try:
            sock.sendall(payload)
        except OSError as exc:  # the server may refuse (and close) before reading it all
            sent = f"{exc.__class__.__name__}: {exc}"
        try:
            with sock.makefile("rb") as f:
                line = f.readline(64_000_000)
        except OSError as exc:
            return None, sent or f"{exc.__class__.__name__}: {exc}"
    try:
        return json.loads(line), ""
    except ValueError:
        return None, sent or f"no JSON reply: {line[:200]!r}"


def soak(home: Path, requests: int = 10_000, clients: int = 8, seed: int = 0) -> dict[str, Any]:
    """Run the soak against a fresh server over the store in `home`; returns the numbers."""
    proc, info = start_server(home)
    try:
        rng = random.Random(seed)
        plan = [(i, rng.choice(KINDS)) for i in range(requests)]
        warm = max(1, requests // 10)
        latencies: list[float] = []
        valid_errors: list[str] = []
        unclear: list[str] = []
        counts = {k: 0 for k in ("valid", *EXPECTED_ERROR)}
        lock = threading.Lock()
        rss: dict[str, int] = {"start": rss_kb(proc.pid)}
        cursor = iter(plan)
        done = 0

        def client() -> None:
            nonlocal done
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                n, kind = item
                t0 = time.perf_counter()
                reply, err = send(info["socket"], request_bytes(kind, n, info["token"]))
                dt = time.perf_counter() - t0
                with lock:
                    counts[kind] += 1
                    done += 1
                    if done == warm:
                        rss["warm"] = rss_kb(proc.pid)
                    if kind == "valid":
                        if reply is None or not reply.get("ok"):
                            valid_errors.append(err or str(reply))
                        else:
                            latencies.append(dt)
                    elif (
                        reply is None
                        or reply.get("ok")
                        or (EXPECTED_ERROR[kind] not in str(reply.get("error")))
                    ):
                        unclear.append(f"{kind}: {err or reply}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss["end"] = rss_kb(proc.pid)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ms = sorted(1000 * x for x in latencies)
    return {
        "requests": requests,
        "clients": clients,
        "wall_s": round(wall, 2),
        "counts": counts,
        "valid_ok": len(latencies),
        "valid_errors": len(valid_errors),
        "valid_error_examples": valid_errors[:5],
        "invalid_unclear": len(unclear),
        "invalid_unclear_examples": unclear[:5],
        "p50_ms": round(statistics.median(ms), 2) if ms else None,
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
        "rss_kb": rss,
        "rss_growth_after_warmup": round(rss["end"] / rss.get("warm", rss["start"]) - 1, 4),
        "server_alive_at_end": alive,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lmm-soak-") as tmp:
        home = Path(tmp) / "home"
        prepare(home)
        result = soak(home, args.requests, args.clients, args.seed)
    print(json.dumps(result, indent=2))
    ok = (
        result["valid_errors"] == 0
        and result["invalid_unclear"] == 0
        and result["rss_growth_after_warmup"] < 0.2
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
