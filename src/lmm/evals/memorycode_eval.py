"""MemoryCode harness: for each evaluation query, does recall surface the latest version of every
coding instruction, and no superseded one?"""

from __future__ import annotations

import ast
import json
import logging
import time
from pathlib import Path
from typing import Any

from lmm.errors import LmmError
from lmm.evals import metrics as m
from lmm.evals import report
from lmm.evals.memorycode import states  # the shared "does this text state the instruction" rule

log = logging.getLogger(__name__)


def eval_queries(path: Path) -> list[str]:
    """The dialogue's final evaluation queries (its last session's `history_eval_query`)."""
    raw = json.loads(path.read_text())
    for session in reversed(raw["sessions"]):
        value = session.get("history_eval_query")
        queries = ast.literal_eval(value) if isinstance(value, str) else value
        if queries:
            return [str(q) for q in queries]
    return []


def judge(text: str, dialogue: Any) -> dict[str, Any]:
    """latest / stale shares of `text` for a `memorycode.Dialogue`."""
    from lmm.evals.memorycode import matcher

    by_id: dict[int, list[Any]] = {}
    for ins in dialogue.instructions:
        by_id.setdefault(ins.id, []).append(ins)
    latest_ok, stale, replaced = 0, 0, 0
    for versions in by_id.values():
        need = matcher(versions[-1].topic)
        latest_ok += states(text, need)
        for old in versions[:-1]:
            old_need = matcher(old.topic)
            if old_need != need:
                replaced += 1
                stale += states(text, old_need)
    n = len(by_id)
    return {
        "instructions": n,
        "latest": latest_ok / n if n else None,
        "stale": stale / replaced if replaced else None,
        "correct": n > 0 and latest_ok == n and stale == 0,
    }


def _summary(rows: list[dict[str, Any]], store_correct: float | None, n: int) -> dict[str, Any]:
    return {
        "dialogues": n,
        "queries": len(rows),
        "latest": m.mean(r["latest"] for r in rows),
        "stale": m.mean(r["stale"] for r in rows),
        "correct": m.mean(float(r["correct"]) for r in rows),
        "store_correct": store_correct,
    }


def run(out: Path, *, limit: int | None = None, data: Path) -> dict[str, Any]:
    """Every dialogue of the folder `data` (the first `limit` by number) through extraction and
    recall."""
    from lmm.evals import memorycode
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.retrieve.recall import RecallConfig, project_brief, recall
    from lmm.store.db import Store

    folder = data
    files = sorted(folder.glob("dialogue_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    if not files:
        raise LmmError(f"no MemoryCode dialogues in {folder}; pass --data FOLDER")
    files = files[:limit] if limit else files
    out.mkdir(parents=True, exist_ok=True)
    for p in out.glob("store.db*"):
        p.unlink()
    rows: list[dict[str, Any]] = []
    digests: list[dict[str, Any]] = []
    store_ok = []
    with Store(out / "store.db") as store:
        dialogues = []
        for path in files:
            dialogue = memorycode.load(path)
            memorycode.add_to_store(store, dialogue)
            dialogues.append((path, dialogue))
        run_extraction(store, get_extractor("rules"))
        cfg = RecallConfig(generate=False)
        for path, dialogue in dialogues:
            store_ok.append(memorycode.check(store, dialogue).correct)
            project = memorycode.project_of(dialogue)
            digest = project_brief(store, project) or ""
            digests.append({"dialogue": dialogue.name, "brief": digest, **judge(digest, dialogue)})
            for query in eval_queries(path):
                start = time.perf_counter()
                result = recall(
                    store, f"Write a {query}.", project=memorycode.project_of(dialogue), config=cfg
                )
                text = result.brief.text or ""
                rows.append(
                    {
                        "dialogue": dialogue.name,
                        "query": query,
                        "brief": text,
                        "seconds": round(time.perf_counter() - start, 4),
                        **judge(text, dialogue),
                    }
                )
    store_correct = m.mean(float(x) for x in store_ok)
    results = report.new_results("memorycode", {"limit": limit, "data": str(folder)})
    results["configs"] = {
        "retrieval": _summary(rows, store_correct, len(files)),
        "digest": _summary(digests, store_correct, len(files)),
    }
    results["rows"] = {"retrieval": rows, "digest": digests}
    results["columns"] = ["latest", "stale", "correct", "store_correct", "queries"]
    report.write(results, out)
    return results
