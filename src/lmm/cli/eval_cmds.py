"""`lmm eval TASK` runs an evaluation into an output folder; `lmm eval --compare A B` prints two
runs side by side. Tasks: heldout, locomo, locomo-qa, memorycode, loss (see lmm.evals.run)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from lmm import paths
from lmm.cli.output import emit, progress_bar
from lmm.errors import LmmError

TASKS = ("heldout", "locomo", "locomo-qa", "memorycode", "loss")


def datasets() -> Path:
    """The public datasets (real history, LoCoMo, MemoryCode): `../shared/data` beside the
    repository, which `lmm eval` is run from."""
    return Path("..", "shared", "data").resolve()


def _settings(args: argparse.Namespace) -> Any:
    from lmm.evals.run import EvalSettings

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(EvalSettings)
        if getattr(args, f.name, None) is not None
    }
    return EvalSettings(**given)


def cmd_eval(args: argparse.Namespace) -> int:
    from lmm.evals import report

    if args.compare:
        a, b = (report.load(Path(p)) for p in args.compare)
        names = (Path(args.compare[0]).name or "A", Path(args.compare[1]).name or "B")
        text = report.compare(a, b, names)
        emit(args, {"a": a["configs"], "b": b["configs"]}, text)
        return 0
    if not args.task:
        raise LmmError("name a task (" + ", ".join(TASKS) + ") or pass --compare A B")
    out = Path(args.out).expanduser() if args.out else paths.home() / "evals" / args.task
    if args.task == "memorycode":
        from lmm.evals.memorycode_eval import run as run_memorycode

        data = Path(args.data).expanduser() if args.data else datasets() / "memorycode"
        results = run_memorycode(out, limit=args.limit, data=data)
    elif args.task == "loss":
        from lmm.evals.loss import run as run_loss

        if not args.model or not args.rows:
            raise LmmError("`lmm eval loss` needs --model NAME_OR_PATH and --rows FILE.jsonl")
        results = run_loss(
            out,
            args.model,
            [Path(p) for p in args.rows],
            limit=args.limit,
            seq_len=args.seq_len,
            metrics=args.metrics,
        )
    else:
        from lmm.evals import run

        settings = _settings(args)
        update, close = progress_bar(0, args.task, unit="ex")
        try:
            if args.task == "locomo-qa":
                export = Path(args.export_prompts) if args.export_prompts else None
                results = run.locomo_qa(out, settings, update, export, datasets=datasets())
            else:
                fn = {"heldout": run.heldout, "locomo": run.locomo_table}
                results = fn[args.task](out, settings, update, datasets=datasets())
        finally:
            close()
    text = report.markdown(results) + f"\nwritten to {out}"
    emit(
        args,
        {"out": str(out), "configs": results["configs"], "skipped": results.get("skipped", {})},
        text,
    )
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="evaluate memory configurations side by side",
        description="Run an evaluation into --out (JSON, markdown, PNG plots), or compare two "
        "runs. Configurations: none, gen, retrieval, rag-base, rag-trained.",
    )
    p.add_argument("task", nargs="?", choices=TASKS, help="what to evaluate")
    p.add_argument("--out", help="output folder (default: $LMM_HOME/evals/TASK)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two output folders to compare")
    g = p.add_argument_group("configurations (heldout, locomo, memorycode)")
    g.add_argument("--configs", help="comma-separated configurations (default: all five)")
    g.add_argument("--base-model", dest="base_model", help="LM of rag-base (default smollm2)")
    g.add_argument("--trained-model", dest="trained_model", help="LM of gen and rag-trained")
    g.add_argument("--embedder", help="embedder name, or none (default all-MiniLM-L6-v2)")
    g = p.add_argument_group("data")
    g.add_argument("--source", help="heldout: real (shared data), sample, or a projects folder")
    g.add_argument("--data", help="locomo: a LoCoMo file; memorycode: a dialogue folder")
    g.add_argument("--fraction", type=float, help="heldout: share of sessions used as memory")
    g.add_argument("--limit", type=int, help="at most this many examples / questions")
    g.add_argument("--category", dest="categories", help="LoCoMo categories, e.g. 1,2,3,4")
    g.add_argument("--seed", type=int, help="seed of the question sample")
    g = p.add_argument_group("locomo-qa: a reader LM answers from recall")
    g.add_argument("--reader", help="reader LM (default qwen2.5-coder-1.5b)")
    g.add_argument("--qa-configs", dest="qa_configs", help="none,full,recall")
    g.add_argument("--k", type=int, help="recall hits shown to the reader")
    g.add_argument("--budget", type=int, help="full-context token budget")
    g.add_argument("--prompt", help="reader prompt version, v1 or v2 (default v2)")
    g.add_argument(
        "--export-prompts",
        dest="export_prompts",
        help="write unanswered prompts here for scripts/batch_reader.py",
    )
    g = p.add_argument_group("loss: validation loss of models on rows")
    g.add_argument("--model", help="model name or folder")
    g.add_argument("--rows", nargs="+", help="JSONL files of {text} or {messages} rows")
    g.add_argument("--seq-len", dest="seq_len", type=int, default=1024, help="max tokens")
    g.add_argument("--metrics", nargs="*", default=[], help="metrics.jsonl of runs to plot")
    p.set_defaults(func=cmd_eval)
