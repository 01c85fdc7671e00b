"""Act-time recall: does the PreToolUse hook show the right lesson before a tool call, and only
then?

    python bench/act_time.py                 # choose the threshold on dev, report test, latency
    python bench/act_time.py --runs 0        # quality only (no hook processes)
    python bench/act_time.py --cases bench/act_cases/codemem.json --runs 3

Store: the case file's `history` (real Claude Code transcripts) through `lmm ingest` and the rule
extractor, in a temporary LMM_HOME: every lesson and rule comes from the transcripts.
Cases: tool calls of a later session. `relevant` ones repeat a command that failed before or break
a stated rule: a hit when the hook's additionalContext contains `expect`. `silent` ones have
nothing that applies: a hit when the hook prints nothing. For each relevant case the report also
says whether any active cognition of the store holds `expect` (a miss there is the extractor's).
Threshold: chosen on the `dev` cases (best hits on both kinds, ties to the higher threshold);
the `test` cases are reported with the threshold lmm ships (`act.THRESHOLD`), run through the
real hook command. Latency: the PreToolUse hook process and, for comparison, the
UserPromptSubmit hook, without a server and with `lmm serve --no-model --embedder none` warm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CASES = ROOT / "bench" / "act_cases" / "codemem.json"
THRESHOLDS = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5)


def percentiles(ms: list[float]) -> dict[str, float]:
    xs = sorted(ms)

    def rank(p: float) -> float:
        return xs[max(0, math.ceil(p * len(xs)) - 1)]

    return {"n": len(xs), "p50": round(rank(0.5), 1), "p95": round(rank(0.95), 1)}


def build_store(history: Path) -> None:
    from lmm.ingest.run import ingest
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.store.db import open_store

    with open_store() as store:
        ingest(store, [history])
        run_extraction(store, get_extractor("rules"))


def payload(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": "bench-act",
        "transcript_path": "/nonexistent.jsonl",
        "cwd": case["cwd"],
        "hook_event_name": "PreToolUse",
        "tool_name": case["tool"],
        "tool_input": case["input"],
        "tool_use_id": "toolu_bench",
    }


def judge(case: dict[str, Any], context: str | None) -> bool:
    if case["kind"] == "silent":
        return not context
    return bool(context) and case["expect"].lower() in (context or "").lower()


def in_store(expect: str) -> bool:
    from lmm.store.db import open_store

    with open_store() as store:
        rows = store.db.execute(
            "SELECT text FROM cognitions WHERE status = 'active' AND category != 'fact'"
        ).fetchall()
    return any(expect.lower() in r[0].lower() for r in rows)


def in_process(cases: list[dict[str, Any]], threshold: float) -> list[str | None]:
    from lmm.retrieve import act, recall
    from lmm.store.db import open_store

    out = []
    with open_store() as store:
        for case in cases:
            call = act.tool_call(case["tool"], case["input"], case["cwd"])
            project = recall.resolve_project(store, case["cwd"])
            out.append(act.recall_for(store, call, project, threshold=threshold).context())
    return out


def score(cases: list[dict[str, Any]], contexts: list[str | None]) -> dict[str, Any]:
    rel = [judge(c, x) for c, x in zip(cases, contexts, strict=True) if c["kind"] == "relevant"]
    sil = [judge(c, x) for c, x in zip(cases, contexts, strict=True) if c["kind"] == "silent"]
    return {"relevant": f"{sum(rel)}/{len(rel)}", "silent": f"{sum(sil)}/{len(sil)}",
            "sum": sum(rel) / max(1, len(rel)) + sum(sil) / max(1, len(sil))}  # fmt: skip


CPU: list[float] = []  # CPU milliseconds (user + system) of each hook process, in run order


def hook_run(event: str, body: dict[str, Any], env: dict[str, str]) -> tuple[float, str]:
    """Wall milliseconds and stdout of one hook process (its CPU time goes to `CPU`)."""
    cmd = [sys.executable, "-m", "lmm", "hook", event]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, input=json.dumps(body).encode(), capture_output=True, env=env)
    ms = 1000 * (time.perf_counter() - t0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(1000 * (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    assert proc.returncode == 0, proc.stderr
    return ms, proc.stdout.decode()


def process_cpu_ms(pid: int | None) -> float:
    """CPU milliseconds a running process has used so far (Linux /proc), 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return 1000 * (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def context_of(stdout: str) -> str | None:
    if not stdout.strip():
        return None
    return str(json.loads(stdout)["hookSpecificOutput"].get("additionalContext") or "") or None


def prompt_body(case: dict[str, Any]) -> dict[str, Any]:
    """A UserPromptSubmit of the same size of work, for the comparison row."""
    what = case["input"].get("command") or case["input"].get("file_path")
    return {"session_id": "bench-act", "transcript_path": "/nonexistent.jsonl",
            "cwd": case["cwd"], "hook_event_name": "UserPromptSubmit",
            "prompt": f"next step: {what}"}  # fmt: skip


def latency(
    cases: list[dict[str, Any]], env: dict[str, str], runs: int, label: str, server: int | None
) -> dict[str, Any]:
    """Each hook over every case `runs` times: wall p50/p95, the hook process's CPU p50/p95
    and the server's CPU per request (the load average inflates wall times, not CPU)."""
    hook_run("PreToolUse", payload(cases[0]), env)  # compiled bytecode, warm page cache
    hook_run("UserPromptSubmit", prompt_body(cases[0]), env)
    out: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 2)}
    for event, body in (("PreToolUse", payload), ("UserPromptSubmit", prompt_body)):
        CPU.clear()
        served = process_cpu_ms(server)
        ms = [hook_run(event, body(c), env)[0] for _ in range(runs) for c in cases]
        out[event] = {
            "wall": percentiles(ms),
            "cpu": percentiles(list(CPU)),
            "server_cpu_per_call": round((process_cpu_ms(server) - served) / len(ms), 1),
        }
    out["load_after"] = round(os.getloadavg()[0], 2)
    print(f"{label}: {json.dumps(out)}")
    return out


def start_server(env: dict[str, str]) -> subprocess.Popen[bytes]:
    from lmm.serve import client

    cmd = [sys.executable, "-m", "lmm", "serve", "--no-model", "--embedder", "none"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.perf_counter()
    while not client.alive():
        if proc.poll() is not None or time.perf_counter() - t0 > 120:
            raise SystemExit("lmm serve did not start")
        time.sleep(0.1)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=Path, default=DEFAULT_CASES)
    parser.add_argument("--runs", type=int, default=3, help="latency passes over the cases")
    parser.add_argument("--show", action="store_true", help="print every test case's context")
    args = parser.parse_args()

    spec = json.loads(args.cases.read_text())
    history = (ROOT / spec["history"]).resolve()
    if not history.exists():
        raise SystemExit(f"{history} is absent (the shared data folder); nothing to measure")
    home = Path(tempfile.mkdtemp(prefix="lmm-act-"))
    os.environ["LMM_HOME"] = str(home)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT / "src")
    build_store(history)
    from lmm.retrieve import act

    cases = spec["cases"]
    dev = [c for c in cases if c["split"] == "dev"]
    test = [c for c in cases if c["split"] == "test"]
    print(f"{len(cases)} cases ({len(dev)} dev, {len(test)} test); store in {home}")
    print("dev, in-process, by threshold:")
    best = None
    for t in THRESHOLDS:
        s = score(dev, in_process(dev, t))
        print(f"  {t:>4}: relevant {s['relevant']:>6}  silent {s['silent']:>6}")
        if best is None or s["sum"] >= best[1]:
            best = (t, s["sum"])
    assert best is not None
    print(f"dev's choice {best[0]}; lmm ships act.THRESHOLD = {act.THRESHOLD}")

    contexts = [context_of(hook_run("PreToolUse", payload(c), env)[1]) for c in test]
    s = score(test, contexts)
    rel = [c for c in test if c["kind"] == "relevant"]
    stored = sum(in_store(c["expect"]) for c in rel)
    hits_stored = sum(
        judge(c, x) and in_store(c["expect"])
        for c, x in zip(test, contexts, strict=True)
        if c["kind"] == "relevant"
    )
    print(f"test, through the hook: relevant {s['relevant']} (the store holds {stored} of those "
          f"lessons; {hits_stored}/{stored} of them shown), silent {s['silent']}")  # fmt: skip
    for c, x in zip(test, contexts, strict=True):
        ok = judge(c, x)
        if args.show or not ok:
            what = c["input"].get("command") or c["input"].get("file_path")
            mark = "ok  " if ok else "MISS" if c["kind"] == "relevant" else "NOISE"
            print(f"  {mark} {c['kind']:<8} {what!r} -> {(x or '')[-200:]!r}")

    if args.runs:
        latency(cases, env, args.runs, "no server", None)
        proc = start_server(env)
        try:
            latency(cases, env, args.runs, "lmm serve warm", proc.pid)
        finally:
            proc.terminate()
            proc.wait(30)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
