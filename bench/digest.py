"""Session digests on CodeMemBench: the time to digest the median session in the background, and
the "session-continuity" questions' answer rate before and after the digests are stored.

    python bench/digest.py                                   # qwen2.5-coder-0.5b, llama.cpp
    python bench/digest.py --per-project 1 --model smollm2   # smoke run

Store: ../shared/data/codemem/projects ingested into a temporary LMM_HOME, rule extraction run
(what `lmm ingest` does). Session size: the estimated tokens of the turns a digest reads (user and
assistant messages and failed tool calls, 600 characters each at most). The median main session
is digested first, through `digest.after_session_end` as the background job runs it (niced,
lock), with the model lmm picks on this machine (`models.generator`: llama.cpp for a GGUF model
when installed); then the latest --per-project sessions of each project, newest first (the
sessions "where was I" questions are about; chosen by date, not by the questions). CPU seconds
(all threads) beside wall seconds: the work itself, apart from the machine's load. Answer rate:
per question, recall's extractive brief (project-scoped, default budget) holds every
`must_include` string (case-insensitive). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from codemem import present  # CodeMem's scoring, one for every bench

CODEMEM = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "codemem"


def answered(store: Any, questions: list[dict[str, Any]]) -> dict[str, bool]:
    from lmm.retrieve.recall import RecallConfig, recall

    out = {}
    for q in questions:
        brief = (
            recall(
                store, q["question"], project=q["project"], config=RecallConfig(generate=False)
            ).brief.text
            or ""
        )
        out[q["id"]] = all(present(q, brief))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--per-project", type=int, default=3)
    args = ap.parse_args()
    if not CODEMEM.is_dir():
        sys.exit(f"no {CODEMEM}: this benchmark reads CodeMemBench")
    os.environ["LMM_HOME"] = tempfile.mkdtemp(prefix="lmm-digest-")

    from lmm.ingest.run import ingest
    from lmm.memory import digest
    from lmm.memory.extract import get_extractor, load_session, run_extraction
    from lmm.retrieve.synth import approx_tokens
    from lmm.store.db import open_store

    questions = [q for q in json.loads((CODEMEM / "questions.json").read_text())
                 if q["type"] == "session-continuity"]  # fmt: skip
    store = open_store()
    ingest(store, [CODEMEM / "projects"])
    run_extraction(store, get_extractor("rules"))
    rows = store.db.execute(
        "SELECT s.id, p.path, s.ended_at FROM sessions s JOIN projects p ON p.id = s.project_id "
        "WHERE s.parent_session_id IS NULL ORDER BY s.ended_at"
    ).fetchall()
    wide = digest.DigestConfig(prompt_tokens=1_000_000)
    size = {}
    for r in rows:
        view = load_session(store, r["id"])
        size[r["id"]] = sum(approx_tokens(e.text) + 6 for e in digest.session_evidence(view, wide))
    ordered = sorted(size, key=size.get)  # type: ignore[arg-type]
    median = ordered[len(ordered) // 2]
    mid = statistics.median(size.values())
    print(f"{len(rows)} sessions; digest view tokens: median {mid:.0f}, "
          f"min {min(size.values())}, max {max(size.values())}; median session {median[:8]} "
          f"({size[median]} tokens)", flush=True)  # fmt: skip

    before = answered(store, questions)
    print(
        f"session-continuity answered before: {sum(before.values())}/{len(questions)}", flush=True
    )

    start = time.perf_counter()
    lm = digest.generator(digest.DigestConfig(model=args.model))
    if hasattr(lm, "model") and callable(lm.model):
        lm.model()  # llama.cpp: load now, not inside the first digest's time
    load_s = time.perf_counter() - start
    print(f"model {args.model} ({type(lm).__name__}) loaded in {load_s:.1f}s; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip

    latest: dict[str, list[str]] = {}
    for r in reversed(rows):
        latest.setdefault(r["path"], []).append(r["id"])
    chosen = [median] + [
        sid for ids in latest.values() for sid in ids[: args.per_project] if sid != median
    ]
    runs = []
    for sid in chosen:
        load = os.getloadavg()[0]
        stats = getattr(lm, "stats", None)
        seen = (stats.prompt_tokens, stats.new_tokens) if stats else (0, 0)
        t0, c0 = time.perf_counter(), time.process_time()
        result = digest.after_session_end(store, sid, lm=lm)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert result is not None
        real = (stats.prompt_tokens - seen[0], stats.new_tokens - seen[1]) if stats else (0, 0)
        runs.append({"session": sid, "tokens": size[sid], "wall_s": round(wall, 1),
                     "cpu_s": round(cpu, 1),
                     "model_prompt_tokens": real[0], "model_new_tokens": real[1],
                     "kept": len(result.lines), "dropped": len(result.dropped),
                     "prompt_tokens": result.prompt_tokens, "load": round(load, 2)})  # fmt: skip
        print(f"digest {sid[:8]} ({size[sid]} tokens; model: {real[0]} in, {real[1]} out): "
              f"{wall:.1f}s wall, {cpu:.1f}s CPU, {len(result.lines)} lines "
              f"kept, {len(result.dropped)} dropped (load {load:.2f}, nice {os.nice(0)})",
              flush=True)  # fmt: skip
        for line in result.lines:
            print(f"    {line.section:6} {line.text[:110]} {line.turns}")

    after = answered(store, questions)
    print(f"session-continuity answered after: {sum(after.values())}/{len(questions)}")
    for q in questions:
        if before[q["id"]] != after[q["id"]]:
            print(f"  {q['id']}: {before[q['id']]} -> {after[q['id']]}  {q['question']}")
    print(json.dumps({"model": args.model, "runtime": type(lm).__name__, "load_s": load_s,
                      "median_session": median, "runs": runs,
                      "before": sum(before.values()), "after": sum(after.values()),
                      "questions": len(questions)}))  # fmt: skip


if __name__ == "__main__":
    main()
