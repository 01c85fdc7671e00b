"""How long `lmm serve` and `lmm ui` take to be ready, and their memory, per embedder backend.

    PYTHONPATH=src .venv/bin/python bench/startup.py [--rounds 2] [--history DIR]

A fresh LMM_HOME gets the bundled sample (or --history) with `lmm ingest`. `lmm embed` runs on a
copy of it per backend (LMM_EMBED_BACKEND=torch: sentence-transformers; onnx: `embed_onnx`,
lmm's default): seconds and peak memory of the whole command. The ONNX model file is built
first, in this process (a first use pays that once: printed). Then, round by round and
alternating which goes first, each backend starts:
- `lmm serve` (its default: the LM preloaded) and `lmm serve --no-model`, until it prints that
  it serves (the embedder loaded and retrieval warmed);
- `lmm ui`, until it prints its URL, and then until its recall page answers with the embedder
  (the ui loads it on a thread after printing the URL; the page waits for it).
Peak memory is the process's VmHWM at that moment. Medians over the rounds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("torch", "onnx")


def env_for(home: Path, backend: str | None = None) -> dict[str, str]:
    env = dict(os.environ, LMM_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH")] if p)
    if backend:
        env["LMM_EMBED_BACKEND"] = backend
    return env


def lmm(home: Path, *args: str, backend: str | None = None) -> tuple[float, float]:
    """Run `lmm ARGS` to its end: (seconds, peak MB of the process)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lmm", *args], env=env_for(home, backend),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"lmm {' '.join(args)} failed: {err.decode()[-2000:]}")
    return time.perf_counter() - t, usage.ru_maxrss / 1024


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(
    home: Path, backend: str, args: list[str], marker: str, stream: str
) -> tuple[Any, float, str]:
    """Start `lmm ARGS`; return (process, seconds until a line of `stream` holds `marker`, line)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "lmm", *args], env=env_for(home, backend),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    pipe = proc.stdout if stream == "stdout" else proc.stderr
    assert pipe is not None
    for line in pipe:
        if marker in line:
            return proc, time.perf_counter() - t, line.strip()
    proc.wait()
    raise SystemExit(f"lmm {' '.join(args)} ({backend}) ended before {marker!r}")


def stop(proc: Any) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve(home: Path, backend: str, extra: list[str]) -> tuple[float, float]:
    sock = home / f"bench-{backend}.sock"
    proc, seconds, _ = start(home, backend, ["serve", "--socket", str(sock), *extra],
                             "serving at", "stderr")  # fmt: skip
    mb = peak_mb(proc.pid)
    stop(proc)
    return seconds, mb


def ui(home: Path, backend: str) -> tuple[float, float, float]:
    """Seconds to the URL, seconds until a recall with the embedder answers, peak MB then."""
    t = time.perf_counter()
    proc, to_url, line = start(home, backend, ["ui", "--port", "0"], "lmm ui: ", "stdout")
    url = line.split("lmm ui: ", 1)[1].strip().replace("/?token=", "/recall?token=")
    with urllib.request.urlopen(f"{url}&q=sqlite+database+locked", timeout=300) as r:
        page = r.read().decode()  # the recall page waits for the embedder
    if "hybrid (keyword + " not in page:
        raise SystemExit(f"lmm ui ({backend}) answered recall without the embedder")
    to_search = time.perf_counter() - t
    mb = peak_mb(proc.pid)
    stop(proc)
    return to_url, to_search, mb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--history", type=Path, help="transcripts to ingest (default: the sample)")
    args = ap.parse_args(argv)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    sys.path.insert(0, str(ROOT / "src"))
    from lmm.retrieve.embed import packaged_minilm
    from lmm.retrieve.embed_onnx import cached_model

    t = time.perf_counter()
    print(f"onnx model file: {cached_model(packaged_minilm())} ({time.perf_counter() - t:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        lmm(home, "ingest", *([str(args.history)] if args.history else ["--sample"]))
        ingested = Path(tmp) / "ingested"
        shutil.copytree(home, ingested)
        # `lmm embed` as a user runs it, each backend on its own copy of the ingested store
        for backend in BACKENDS:
            where = home if backend == "onnx" else Path(tmp) / backend
            if where != home:
                shutil.copytree(ingested, where)
            seconds, mb = lmm(where, "embed", backend=backend)
            print(f"lmm embed ({backend}): {seconds:.1f} s, peak {mb:.0f} MB, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        results: dict[str, dict[str, list[float]]] = {b: {} for b in BACKENDS}
        for r in range(args.rounds):
            for backend in BACKENDS if r % 2 == 0 else tuple(reversed(BACKENDS)):
                row = results[backend]
                for label, extra in (("serve", []), ("serve --no-model", ["--no-model"])):
                    s, mb = serve(home, backend, extra)
                    row.setdefault(f"{label} s", []).append(s)
                    row.setdefault(f"{label} MB", []).append(mb)
                to_url, to_search, mb = ui(home, backend)
                row.setdefault("ui URL s", []).append(to_url)
                row.setdefault("ui recall s", []).append(to_search)
                row.setdefault("ui MB", []).append(mb)
                cells = "  ".join(f"{k} {v[-1]:.1f}" for k, v in row.items())
                print(f"round {r + 1} {backend:<5} {cells}  load {os.getloadavg()[0]:.1f}",
                      flush=True)  # fmt: skip
        for backend, row in results.items():
            print(f"median {backend:<5} " + "  ".join(
                f"{k} {statistics.median(v):.1f}" for k, v in row.items()))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
