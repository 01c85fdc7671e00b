"""`lmm build-data | train`: training rows from the store, and the CPT -> SFT trainer."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from lmm import paths
from lmm.cli.output import emit

# ---- build-data


def stats_text(stats: dict[str, Any], out: Path) -> str:
    """The statistics `lmm build-data` prints: row counts and how evenly memories spread."""
    rows = stats["rows"]
    lines = [
        f"wrote training data to {out}",
        f"sessions: {len(stats['sessions']['train'])} train, {len(stats['sessions']['val'])} val",
        "rows (train / val): "
        + ", ".join(
            f"{k} {rows[k + '_train']} / {rows[k + '_val']}" for k in ("cpt", "sft", "synthesis")
        ),
    ]
    before = stats["before_cap"]
    for name in ("sft_train", "sft_val"):
        s = stats[name]
        ppm = s["pairs_per_memory"]
        hist = " ".join(f"{k}:{v}" for k, v in ppm["histogram"].items())
        lines += [
            f"{name}: {s['pairs']} pairs ({s['negatives']} with no memory) over {s['memories']} "
            f"memories; pairs per memory mean {ppm['mean']}, max {ppm['max']}; histogram {hist}",
            f"  top-4 answers cover {s['top4_target_share']:.0%} of pairs; top-4 memories appear "
            f"in {s['top4_memory_share']:.0%} (before --max-per-memory: "
            f"{before['top4_memory_share']:.0%}, max {before['pairs_per_memory']['max']})",
        ]
    lines.append("most repeated memories (train):")
    lines += [
        f"  {m['count']:>4}  {m['memory']}" for m in stats["sft_train"]["most_repeated_memories"]
    ]
    lines.append("most repeated answers (train):")
    lines += [
        f"  {t['count']:>4}  {t['target']}" for t in stats["sft_train"]["most_repeated_targets"]
    ]
    if not stats["sessions"]["train"] and not stats["sessions"]["val"]:
        lines.append("the store has no sessions: run `lmm ingest` first, then build again")
    elif not before["memories"]:
        lines.append("no memories in the store yet: run `lmm extract` first, then build again")
    return "\n".join(lines)


def cmd_build_data(args: argparse.Namespace) -> int:
    from lmm.store.db import open_store
    from lmm.train import pairs
    from lmm.train.base import DataConfig

    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(DataConfig)}
    cfg = DataConfig(**{k: v for k, v in flags.items() if v is not None})
    out = Path(args.out).expanduser() if args.out else paths.home() / "train-data"
    with open_store() as store:
        data = pairs.build(store, cfg)
    written = pairs.write(data, out)
    obj = {"out": str(out), "files": {k: str(v) for k, v in written.items()}, "stats": data.stats}
    emit(args, obj, stats_text(data.stats, out))
    return 0


# ---- train


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    from lmm.train.config import FIELDS

    flags = {name: getattr(args, name, None) for name in FIELDS if name != "stage"}
    flags["init_from"] = args.from_checkpoint
    return flags


def _progress() -> Any:
    """A step bar on stderr when it is a terminal; `update(step, total)` per optimizer step."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(unit="step", desc="train", file=sys.stderr, leave=False)

    def update(step: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.n = step
        bar.refresh()

    return update


def cmd_train(args: argparse.Namespace) -> int:
    from lmm.train import loop
    from lmm.train.config import read_toml, resolve

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    train_log = logging.getLogger("lmm.train")
    train_log.addHandler(handler)
    train_log.setLevel(logging.INFO)
    train_log.propagate = False
    file = read_toml(Path(args.config).expanduser()) if args.config else {}
    flags = _flags(args)
    progress = _progress()
    try:
        if args.stage == "both":
            sft_flags = {**flags, "init_from": None}
            results = loop.train_both(
                resolve("cpt", file, flags), resolve("sft", file, sft_flags), progress
            )
        else:
            results = [loop.train(resolve(args.stage, file, flags), progress)]
    finally:
        train_log.removeHandler(handler)
    lines = []
    for r in results:
        val = f", best val loss {r.best_val:.4f}" if r.best_val is not None else ""
        lines.append(f"{r.run}: {r.steps} steps in {r.seconds:.0f}s, loss {r.loss or 0:.4f}{val}")
    lines.append(f"use it: lmm recall --model {results[-1].run}")
    emit(args, [dataclasses.asdict(r) for r in results], "\n".join(lines))
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from lmm.train.base import DataConfig

    p = sub.add_parser(
        "build-data",
        parents=[common],
        help="write training rows (CPT, SFT, synthesis) from the store",
    )
    p.add_argument("--out", help="output folder (default: $LMM_HOME/train-data)")
    for f in dataclasses.fields(DataConfig):
        p.add_argument(
            "--" + f.name.replace("_", "-"),
            type=type(f.default),
            default=None,
            help=f"{f.metadata['help']} (default {f.default})",
        )
    p.set_defaults(func=cmd_build_data)

    p = sub.add_parser(
        "train", parents=[common], help="train the memory model: CPT, SFT or both (LoRA or full)"
    )
    p.add_argument(
        "--stage",
        choices=["cpt", "sft", "both"],
        default="sft",
        help="cpt: continued pre-training on your history; sft: instruction tuning; both",
    )
    p.add_argument("--config", help="a TOML file of these settings (see configs/*.toml)")
    p.add_argument(
        "--from-checkpoint",
        dest="from_checkpoint",
        metavar="DIR",
        help="start from a finished run's weights (run, adapter or model folder)",
    )
    _train_flags(p)
    p.set_defaults(func=cmd_train)


def _train_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, help from the field's metadata, default None (not given)."""
    from lmm.train.config import FIELDS

    for name, f in FIELDS.items():
        if name in ("stage", "init_from"):
            continue
        flag = "--" + name.replace("_", "-")
        helptext = f"{f.metadata['help']} (default {f.default!r})"
        if isinstance(f.default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=helptext)
        else:
            p.add_argument(flag, type=type(f.default), default=None, help=helptext)
