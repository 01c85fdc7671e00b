"""The original study's training runs, reproduced on the real-history held-out set.

The study trained a memory model four ways: (1) baseline SFT, (2) salience-weighted SFT, (3) +
codebase knowledge, (4) CPT + deduplicated SFT. Here the rows come from lmm.train.pairs over the
held-out set's memory store (memory sessions only: nothing of a held-out session leaks into
training) and every run is LoRA on the base model through lmm.train:

- baseline: `DataConfig(max_per_memory=0)`: every (context, memory) pair, no cap;
- salience: `DataConfig()`: pairs per memory capped at 8 x salience, duplicates removed;
- cpt-dedup: CPT on the session documents, then SFT on the salience rows.

Run (3) needs the source code of the history's projects (`lmm ingest-code`); the real history
here ships none, so it is not run. Three steps, so the GPU part needs no store or embedder:

    export_inputs(heldout_dir, out)        # here: training rows + every prompt the evals send
    python scripts/study.py gpu OUT --base MODEL.gguf   # anywhere: train, val loss, replies
    replay(heldout_dir, out, results_out)  # here: the held-out task with the recorded replies

`replay` runs the normal configurations (`gen`, `rag-base`, `rag-trained`) with `Replay` LMs
that answer each prompt with the reply the real model gave, so grounding and scoring are the
same code as a live run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

RUNS = ("baseline", "salience", "cpt-dedup")
DATA_OF = {"baseline": "baseline", "salience": "salience", "cpt-dedup": "salience"}


def prompt_key(messages: list[dict[str, str]]) -> str:
    return hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).hexdigest()


@dataclass
class Recorder:
    """A TextGenerator that records what it is asked and answers nothing."""

    name: str = "recorder"
    calls: list[tuple[list[dict[str, str]], int]] = field(default_factory=list)

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str:
        self.calls.append((messages, max_new_tokens))
        return ""


@dataclass
class Replay:
    """A TextGenerator that gives, for each prompt, the reply a real model gave to it."""

    name: str
    replies: dict[str, str]

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str:
        return self.replies[prompt_key(messages)]


# ---- here: inputs


def export_inputs(heldout_dir: Path, out: Path, embedder: str = "all-MiniLM-L6-v2") -> int:
    """Training rows (data-baseline, data-salience) and prompts.jsonl of every gen and rag
    prompt of the held-out examples. Returns the number of prompts."""
    from lmm.evals import heldout
    from lmm.evals.run import load_embedder
    from lmm.evals.tasks import Retrieval, TurnIndex, memory_prompt
    from lmm.store.db import Store
    from lmm.train import pairs
    from lmm.train.base import DataConfig

    out.mkdir(parents=True, exist_ok=True)
    held = heldout.read(heldout_dir / "heldout.json")
    rows = []
    with Store(heldout_dir / "store.db") as store:
        for name in ("baseline", "salience"):
            cfg = DataConfig(max_per_memory=0) if name == "baseline" else DataConfig()
            pairs.write(pairs.build(store, cfg), out / f"data-{name}")
        recorder = Recorder()
        rag = Retrieval(store, TurnIndex(store), "rag", recorder, load_embedder(embedder))
        for ex in held.examples:
            rows.append(
                {"kind": "gen", "id": ex.id, "messages": memory_prompt(ex), "max_new_tokens": 160}
            )
            rag.answer(ex)
        for messages, n in recorder.calls:
            rows.append({"kind": "rag", "messages": messages, "max_new_tokens": n})
    with (out / "prompts.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return len(rows)


# ---- anywhere: training, validation loss, replies


def train_run(run: str, out: Path, *, base: str, steps: int, seq_len: int, device: str) -> Path:
    """Train one run on its rows; returns the folder holding its final weights."""
    from lmm.train.config import TrainConfig
    from lmm.train.loop import train, train_both

    cfg = TrainConfig(
        stage="sft",
        base=base,
        data=str(out / f"data-{DATA_OF[run]}"),
        out=str(out / f"run-{run}"),
        method="lora",
        lora_r=8,
        lora_alpha=16,
        seq_len=seq_len,
        batch_size=4,
        grad_accum=1,
        max_steps=steps,
        eval_every=max(1, steps // 5),
        eval_batches=0,
        save_every=0,
        device=device,
        tensorboard=False,
        sft_files="sft",
    )
    if run == "cpt-dedup":
        return train_both(replace(cfg, stage="cpt"), cfg)[-1].run
    return train(cfg).run


def run_models(
    out: Path, *, base: str, steps: int = 60, seq_len: int = 2048, device: str = "auto"
) -> dict[str, Any]:
    """Train every run, then for the base and each run: loss on the common validation rows
    (data-baseline/sft_val.jsonl) and a reply to every prompt (the base: rag prompts only)."""
    from lmm.evals.loss import read_rows, validation_loss
    from lmm.lm.loaded import generate
    from lmm.lm.models import load
    from lmm.lm.trained import load_trained

    prompts = [json.loads(x) for x in (out / "prompts.jsonl").read_text().splitlines() if x]
    val_rows = read_rows([out / "data-baseline" / "sft_val.jsonl"])
    found: dict[str, Any] = {}
    with (out / "replies.jsonl").open("w") as f:
        for name in ("base", *RUNS):
            if name == "base":
                lm = load(base, device=device)
            else:
                weights = train_run(
                    name, out, base=base, steps=steps, seq_len=seq_len, device=device
                )
                meta = json.loads((weights / "config.json").read_text())
                found[name] = {"weights": str(weights), "result": meta.get("result")}
                lm = load_trained(weights, device=device)
            found.setdefault(name, {})["common_val"] = validation_loss(
                lm, val_rows, seq_len=seq_len
            )
            for p in prompts:
                if name == "base" and p["kind"] != "rag":
                    continue
                reply = generate(lm, p["messages"], max_new_tokens=p["max_new_tokens"])
                f.write(
                    json.dumps({"model": name, "key": prompt_key(p["messages"]), "reply": reply})
                    + "\n"
                )
    (out / "study.json").write_text(json.dumps(found, indent=1))
    return found


# ---- here: the held-out task with the recorded replies


def replay(
    heldout_dir: Path, out: Path, results_out: Path, embedder: str = "all-MiniLM-L6-v2"
) -> dict[str, Any]:
    """none, retrieval, rag-base and, per run, gen and rag-trained on the held-out set."""
    from lmm.evals import heldout, report
    from lmm.evals.run import load_embedder
    from lmm.evals.tasks import Generation, MemoryTask, NoMemory, Retrieval, System, run_task
    from lmm.store.db import Store

    replies: dict[str, dict[str, str]] = {}
    for line in (out / "replies.jsonl").read_text().splitlines():
        r = json.loads(line)
        replies.setdefault(r["model"], {})[r["key"]] = r["reply"]
    study = json.loads((out / "study.json").read_text())
    held = heldout.read(heldout_dir / "heldout.json")
    emb = load_embedder(embedder)
    results = report.new_results(f"{held.name} study", {"study": str(out), "embedder": embedder})
    with Store(heldout_dir / "store.db") as store:
        task = MemoryTask(held.name, held.examples, store)
        systems: list[System] = [
            NoMemory(),
            Retrieval(store, task.index, "retrieval", None, emb),
            Retrieval(store, task.index, "rag-base", Replay("base", replies["base"]), emb),
        ]
        for run in RUNS:
            lm = Replay(run, replies[run])
            systems += [
                Generation(lm, f"gen [{run}]"),
                Retrieval(store, task.index, f"rag-trained [{run}]", lm, emb),
            ]
        for system in systems:
            scored = run_task(task, system)
            results["configs"][system.name] = scored["summary"]
            results["rows"][system.name] = scored["rows"]
    results["study"] = study
    lines = [
        "| model | train loss (last) | best val loss (own rows) | common val loss | ppl |",
        "|---|---|---|---|---|",
    ]
    for name in ("base", *RUNS):
        s = study.get(name, {})
        res, val = s.get("result") or {}, s.get("common_val") or {}
        cells = [res.get("loss"), res.get("best_val"), val.get("val_loss"), val.get("perplexity")]
        lines.append(f"| {name} | " + " | ".join(report.fmt(c) for c in cells) + " |")
    results["sections"] = {"Validation loss": "\n".join(lines)}
    report.write(results, results_out)
    plot_curves(out, results_out / "loss_curves.png")
    return results


def plot_curves(out: Path, path: Path) -> bool:
    """Training and validation loss per step of every run's stages (their metrics.jsonl)."""
    from lmm.evals.loss import loss_curves
    from lmm.evals.report import plot_losses

    files = sorted(out.glob("run-*/**/metrics.jsonl"))
    return plot_losses(loss_curves(files), path, "LoRA on the base model: loss per step")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the GPU part of the study: train, loss, replies")
    ap.add_argument("step", choices=["gpu"])
    ap.add_argument("out", type=Path)
    ap.add_argument("--base", required=True, help="the base model (e.g. a .gguf file)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    found = run_models(
        args.out, base=args.base, steps=args.steps, seq_len=args.seq_len, device=args.device
    )
    print(json.dumps(found, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
