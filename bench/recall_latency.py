"""Recall latency: Claude Code hook round trips with `lmm serve` warm vs cold, and recall with
synthesis for each packaged model.

    python bench/recall_latency.py                          # full run
    python bench/recall_latency.py --runs 1 --models none   # smoke run, no LM
    python bench/recall_latency.py --runs 3 --models none   # the hook rows in docs/benchmarks.md
    python bench/recall_latency.py --runs 0 --models qwen2.5-coder-1.5b --synth-queries 2

Store: the bundled sample history (ingest + rule extraction + all-MiniLM-L6-v2 vectors unless
`--embedder none`) in a temporary LMM_HOME. Queries: the first words of every ground-truth fact in
src/lmm/sample/facts.json (memory the hook should find), plus prompts with nothing to recall.
Rows:
  python -c pass    the floor: starting the interpreter, as every hook must
  hook, cold        `python -m lmm hook UserPromptSubmit` as Claude Code runs it, no server:
                    interpreter start + BM25/cognition search in-process (no embeddings)
  hook, warm        the same command while `lmm serve` runs (dense + BM25 in the server)
  request, warm     the hook's recall request to the warm server from a live client (no process
                    start): the server's share of `hook, warm`
  in-process        `ops.dispatch` keyword-only in this process (the retrieval work itself)
  synth <model>     a recall request with generation to a server keeping <model> warm
                    (the first --synth-queries queries, once each: CPU generation is slow)
Each row: p50 / p95 / max wall milliseconds over every query x --runs. Hook processes run as
Claude Code runs them, with compiled bytecode: PYTHONDONTWRITEBYTECODE is dropped from their
environment and one untimed hook runs first (and after the server starts). The load average is
printed before and after the hook rows: other processes on the machine inflate every number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "/home/dev/tidepool"
UNRELATED = [
    "What's the weather going to be like in Lisbon tomorrow?",
    "Write a haiku about autumn leaves",
    "hello",
    "Explain the difference between a monad and a functor",
]


def queries() -> list[str]:
    facts = json.loads((ROOT / "src" / "lmm" / "sample" / "facts.json").read_text())["facts"]
    asked = [" ".join(f["fact"].split()[:14]) for f in facts if f["kind"] != "secret"]
    return asked + UNRELATED


def percentiles(ms: list[float]) -> dict[str, float]:
    xs = sorted(ms)

    def rank(p: float) -> float:
        return xs[max(0, math.ceil(p * len(xs)) - 1)]

    return {"n": len(xs), "p50": rank(0.5), "p95": rank(0.95), "max": xs[-1]}


def line(name: str, stats: dict[str, float], extra: str = "") -> str:
    return (
        f"{name:<28} n={stats['n']:<4} p50 {stats['p50']:8.1f} ms   p95 {stats['p95']:8.1f} ms"
        f"   max {stats['max']:8.1f} ms  {extra}"
    )


# ---- setup


def build_store(home: Path, embedder: str) -> None:
    from lmm import paths
    from lmm.ingest.run import ingest
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.store.db import open_store

    with open_store() as store:
        ingest(store, [paths.sample_projects()])
        run_extraction(store, get_extractor("rules"))
        if embedder != "none":
            from lmm.retrieve.embed import embed_pending, get_embedder

            t0 = time.perf_counter()
            report = embed_pending(store, get_embedder(embedder))
            print(f"embedded {report.turns} turns, {report.cognitions} cognitions with "
                  f"{embedder} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip


def start_server(env: dict[str, str], model: str | None) -> subprocess.Popen[bytes]:
    """`lmm serve` in a child process (its stderr in $LMM_HOME/serve.err), once it answers."""
    from lmm.serve import client

    cmd = [sys.executable, "-m", "lmm", "serve"]
    cmd += ["--model", model] if model else ["--no-model"]
    err = Path(env["LMM_HOME"]) / "serve.err"
    with err.open("ab") as f:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=f)
    t0 = time.perf_counter()
    while not client.alive():
        if proc.poll() is not None:
            raise SystemExit(f"lmm serve exited: {err.read_text()[-2000:]}")
        if time.perf_counter() - t0 > 600:
            proc.kill()
            raise SystemExit("lmm serve did not start within 600 s")
        time.sleep(0.1)
    print(f"server ({model or 'no model'}) ready in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)  # fmt: skip
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


# ---- measurements


def hook_payload(prompt: str) -> bytes:
    return json.dumps(
        {
            "session_id": "bench-session",
            "transcript_path": "/nonexistent.jsonl",
            "cwd": PROJECT,
            "hook_event_name": "UserPromptSubmit",
            "prompt": prompt,
        }
    ).encode()


def hook_runs(env: dict[str, str], prompts: list[str], runs: int) -> tuple[list[float], int]:
    """Wall ms of each hook subprocess (after one untimed run); and how many answers carried
    memory."""
    cmd = [sys.executable, "-m", "lmm", "hook", "UserPromptSubmit"]
    subprocess.run(cmd, input=hook_payload("warm up"), capture_output=True, env=env, check=True)
    ms: list[float] = []
    answered = 0
    for _ in range(runs):
        for prompt in prompts:
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, input=hook_payload(prompt), capture_output=True, env=env)
            ms.append(1000 * (time.perf_counter() - t0))
            assert proc.returncode == 0, proc.stderr
            answered += bool(proc.stdout.strip())
    return ms, answered


def request_runs(prompts: list[str], runs: int, generate: bool) -> tuple[list[float], list[Any]]:
    from lmm.serve import client

    ms: list[float] = []
    results = []
    for _ in range(runs):
        for prompt in prompts:
            args = {"query": prompt, "cwd": PROJECT, "generate": generate}
            if not generate:  # what the UserPromptSubmit hook asks (hooks.respond)
                args |= {"exclude_session": "bench-session", "max_tokens": 400, "hits": False}
            t0 = time.perf_counter()
            results.append(client.call("recall", args, timeout=600))
            ms.append(1000 * (time.perf_counter() - t0))
    return ms, results


def in_process_runs(prompts: list[str], runs: int) -> list[float]:
    from lmm.serve import ops
    from lmm.store.db import open_store

    ms: list[float] = []
    with open_store() as store:
        for _ in range(runs):
            for prompt in prompts:
                t0 = time.perf_counter()
                ops.dispatch(store, "recall", {"query": prompt, "cwd": PROJECT})
                ms.append(1000 * (time.perf_counter() - t0))
    return ms


def interpreter_runs(env: dict[str, str], n: int) -> list[float]:
    """The floor under any hook: starting this Python and exiting."""
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
        ms.append(1000 * (time.perf_counter() - t0))
    return ms


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def hook_rows(env: dict[str, str], prompts: list[str], runs: int, results: dict[str, Any]) -> None:
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results["load_before"] = load_average()
    print(f"load average {results['load_before']} (1, 5, 15 min)")
    results["interpreter"] = percentiles(interpreter_runs(env, len(prompts) * runs))
    print(line("python -c pass (floor)", results["interpreter"]))
    ms, answered = hook_runs(env, prompts, runs)
    results["hook_cold"] = percentiles(ms)
    print(line("hook, cold (no server)", results["hook_cold"], f"{answered} with memory"))
    results["in_process"] = percentiles(in_process_runs(prompts, runs))
    print(line("in-process keyword-only", results["in_process"]))
    proc = start_server(env, None)
    try:
        ms, answered = hook_runs(env, prompts, runs)
        results["hook_warm"] = percentiles(ms)
        print(line("hook, warm (lmm serve)", results["hook_warm"], f"{answered} with memory"))
        ms, _ = request_runs(prompts, runs, generate=False)
        results["request_warm"] = percentiles(ms)
        print(line("request, warm (no startup)", results["request_warm"]))
    finally:
        stop_server(proc)
    results["load_after"] = load_average()
    print(f"load average {results['load_after']} (1, 5, 15 min)")


def packaged_models(wanted: str) -> dict[str, str]:
    """Installed packaged models: name -> what to load. Qwen is assembled (1.1 GB, once) under
    the real lmm home rather than the bench's temporary one."""
    from lmm.errors import LmmError
    from lmm.lm import packaged

    if wanted == "none":
        return {}
    names = list(packaged.PACKAGED) if wanted == "all" else wanted.split(",")
    out = {}
    for name in names:
        try:
            out[name] = str(packaged.PACKAGED[name]())
        except LmmError as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="passes over the queries (0: no hooks)")
    parser.add_argument("--synth-queries", type=int, default=4, help="queries per model")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the synthesis server")
    parser.add_argument("--models", default="all", help="comma list, 'all' packaged, or 'none'")
    parser.add_argument("--embedder", default="all-MiniLM-L6-v2", help="or 'none'")
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()

    wanted = packaged_models(args.models)  # before LMM_HOME moves to the temporary store
    home = Path(tempfile.mkdtemp(prefix="lmm-bench-"))
    os.environ["LMM_HOME"] = str(home)
    env = {**os.environ, "LMM_HOME": str(home)}
    build_store(home, args.embedder)
    prompts = queries()
    results: dict[str, Any] = {"queries": len(prompts), "runs": args.runs}
    print(f"{len(prompts)} queries x {args.runs} runs; store in {home}")

    if args.runs:
        hook_rows(env, prompts, args.runs, results)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)  # torch threads of the synthesis server

    from lmm.errors import LmmError
    from lmm.retrieve.synth import approx_tokens

    synth_prompts = prompts[: args.synth_queries]
    for model, spec in wanted.items():
        proc = start_server(env, spec)
        try:
            ms, out = request_runs(synth_prompts, 1, generate=True)
        except LmmError as exc:  # e.g. the server was OOM-killed mid-generation
            print(f"synth {model}: failed ({exc}); exit status {proc.poll()}")
            results[f"synth_{model}"] = {"error": str(exc), "exit_status": proc.poll()}
            continue
        finally:
            stop_server(proc)
        modes = {m: sum(r["mode"] == m for r in out) for m in ("generated", "fallback", "none")}
        tokens = [approx_tokens(r["brief"]) for r in out if r["brief"]]
        results[f"synth_{model}"] = {
            **percentiles(ms),
            "modes": modes,
            "tokens_max": max(tokens, default=0),
        }
        print(
            line(
                f"synth {model}",
                results[f"synth_{model}"],
                f"{modes}, max {max(tokens, default=0)} tok",
            )
        )
        for r in out[:2]:
            print(f"  e.g. {r['query'][:60]!r} -> {r['mode']}: {(r['brief'] or '')[:300]!r}")

    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
