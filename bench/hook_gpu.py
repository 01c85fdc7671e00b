"""The prompt hook with a model on a GPU: end-to-end wall time of `lmm hook UserPromptSubmit` while
`lmm serve --model M` keeps the model warm on the GPU (transformers + the compiled decoder,
`models.warm_decoder`), and how many of its briefs the model wrote.

    python bench/hook_gpu.py --model q.gguf --db lmm.db --prompts prompts.jsonl --n 40 --json OUT

Store: a copy of `--db` (e.g. the CodeMem store that bench/codemem.py builds) in a temporary
LMM_HOME; the server runs keyword-only (`--embedder none`: no embedder weights on a bare GPU
machine). Prompts: the `question` of the first `--n` rows of a bench/synth_eval.py prompts file,
each from its project's folder (/home/dev/<project>). The hook asks the server for
generate="warm" (hooks.respond): the warm model writes the brief; past the hook's deadline
(hooks.DEADLINE) the hook prints nothing. Rows: p50 / p95 / max wall milliseconds of
  hook, model warm      the hook process as Claude Code runs it (one untimed run first)
  request, model warm   the hook's recall request from a live client (no process start)
and per row the briefs written by the model ("Sources:" block), evidence briefs and no output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    at = lambda q: s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]  # noqa: E731
    return {"n": len(s), "p50": at(0.5), "p95": at(0.95), "max": s[-1]}


def payload(prompt: str, cwd: str) -> bytes:
    return json.dumps({"session_id": "bench-session", "transcript_path": "/nonexistent.jsonl",
                       "cwd": cwd, "hook_event_name": "UserPromptSubmit",
                       "prompt": prompt}).encode()  # fmt: skip


def kind_of(out: bytes) -> str:
    if not out.strip():
        return "nothing"
    text = json.loads(out)["hookSpecificOutput"]["additionalContext"]
    return "generated" if "\nSources:\n" in text else "evidence"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", required=True, help="what `lmm serve --model` loads")
    ap.add_argument("--db", type=Path, required=True, help="an lmm.db to copy")
    ap.add_argument("--prompts", type=Path, required=True, help="bench/synth_eval.py prompts")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = [json.loads(x) for x in args.prompts.read_text().splitlines()][: args.n]
    prompts = [(r["question"], "/home/dev" + ("" if r["project"] == "none" else f"/{r['project']}"))
               for r in rows]  # fmt: skip
    home = Path(tempfile.mkdtemp(prefix="lmm-hook-gpu-"))
    os.chmod(home, 0o700)
    shutil.copy2(args.db, home / "lmm.db")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["LMM_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    sys.path.insert(0, str(ROOT / "src"))
    os.environ["LMM_HOME"] = str(home)
    from lmm.serve import client

    t0 = time.perf_counter()
    err = (home / "serve.err").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "lmm", "serve", "--model", args.model,
                             "--embedder", "none"], env=env, stdout=subprocess.DEVNULL,
                            stderr=err)  # fmt: skip
    while not client.alive():
        if proc.poll() is not None or time.perf_counter() - t0 > 900:
            print((home / "serve.err").read_text()[-3000:], file=sys.stderr)
            raise SystemExit("lmm serve did not start")
        time.sleep(0.2)
    results: dict[str, Any] = {"serve_ready_s": round(time.perf_counter() - t0, 1)}
    print(f"server with {args.model} ready in {results['serve_ready_s']} s", flush=True)
    try:
        cmd = [sys.executable, "-m", "lmm", "hook", "UserPromptSubmit"]
        subprocess.run(cmd, input=payload("warm up the hook", "/home/dev"), env=env,
                       capture_output=True, check=True)  # fmt: skip
        ms: list[float] = []
        kinds: dict[str, int] = {}
        for prompt, cwd in prompts:
            t1 = time.perf_counter()
            out = subprocess.run(cmd, input=payload(prompt, cwd), env=env, capture_output=True)
            ms.append(1000 * (time.perf_counter() - t1))
            k = kind_of(out.stdout)
            kinds[k] = kinds.get(k, 0) + 1
        results["hook_model_warm"] = {**percentiles(ms), **kinds}
        print(f"hook, model warm: {results['hook_model_warm']}", flush=True)
        ms, kinds = [], {}
        for prompt, cwd in prompts:
            req = {"query": prompt, "cwd": cwd, "generate": "warm", "hits": False,
                   "exclude_session": "bench-session", "max_tokens": 340}  # fmt: skip
            t1 = time.perf_counter()
            res = client.call("recall", req, timeout=60)
            ms.append(1000 * (time.perf_counter() - t1))
            kinds[str(res.get("mode"))] = kinds.get(str(res.get("mode")), 0) + 1
        results["request_model_warm"] = {**percentiles(ms), **kinds}
        print(f"request, model warm: {results['request_model_warm']}", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print((home / "serve.err").read_text()[-1500:], file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
