"""1 GPU vs 2 GPUs: the same training run, loss curves side by side and tokens/s.

    python bench/train_scaling.py                        # GPU: Qwen3-1.7B, full FT (DDP), 30 steps
    python bench/train_scaling.py --method lora          # LoRA r16 (DDP)
    python bench/train_scaling.py --method full --fsdp   # FSDP2 on the 2-GPU run
    python bench/train_scaling.py --smoke                # CPU: tiny model, gloo, 6 steps

The driver launches `torchrun --nproc-per-node 1` and then `--nproc-per-node 2` on this file
(`--worker`). Both run lmm's trainer path (`lmm.train.loop.prepare` + `train_step`) from the same
random init on the same synthetic data, a fixed-seed Markov chain of tokens (learnable, so the
loss falls), with the same global batch: 1 GPU takes `--micro` sequences x 2 micro-batches per
step, each of 2 GPUs `--micro` x 1. So a step sees the same rows either way, and the two loss
curves should agree to bf16 noise. Scaling efficiency = tokens/s on 2 GPUs / (2 x tokens/s on 1),
timed after `--warmup` steps. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from lmm.train import data, loop, parallel  # noqa: E402
from lmm.train.config import TrainConfig  # noqa: E402
from train_throughput import QWEN3_1_7B, SMOKE, Shape, make_model  # noqa: E402


def markov_rows(shape: Shape, n: int, seed: int) -> list[data.Example]:
    """`n` sequences from a random sparse Markov chain (each token has 4 likely successors)."""
    g = torch.Generator().manual_seed(seed)
    vocab = min(shape.vocab, 4096)
    nexts = torch.randint(0, vocab, (vocab, 4), generator=g)
    rows = []
    for _ in range(n):
        tok = int(torch.randint(0, vocab, (1,), generator=g))
        picks = torch.randint(0, 4, (shape.seq,), generator=g)
        seq = []
        for k in picks.tolist():
            seq.append(tok)
            tok = int(nexts[tok, k])
        rows.append((seq, list(seq)))
    return rows


def worker(args: argparse.Namespace) -> None:
    d = parallel.init("cpu" if args.smoke else "auto")
    shape = SMOKE if args.smoke else QWEN3_1_7B
    accum = 2 // d.world
    cfg = TrainConfig(
        stage="cpt", method=args.method, fsdp=args.fsdp and d.distributed, lora_r=16,
        lora_alpha=32, grad_checkpointing=args.ckpt, compile=args.compile,
        precision="fp32" if args.smoke else "bf16", batch_size=args.micro, seq_len=shape.seq,
        grad_accum=accum, warmup_steps=2, lr=args.lr, device=d.device.type, seed=0,
    )  # fmt: skip
    dtype = torch.float32 if args.smoke else torch.bfloat16
    model = make_model(shape, dtype, d.device, seed=0)
    p = loop.prepare(cfg, d, model=model, tokenizer=None, base="random-init")
    optimizer = loop.make_optimizer(p.module, cfg, d.device)
    scheduler = loop.make_schedule(optimizer, cfg, args.steps)
    rows = markov_rows(shape, args.micro * 2 * args.steps, seed=1)
    it = data.batches(rows, args.micro, rank=d.rank, world=d.world, seed=0, epoch=0, pad_id=0)
    losses, tokens, start = [], 0, 0.0
    for step in range(1, args.steps + 1):
        if step == args.warmup + 1:
            if d.device.type == "cuda":
                torch.cuda.synchronize()
            start, tokens = time.perf_counter(), 0
        micro = [next(it) for _ in range(accum)]
        loss = loop.train_step(p, micro, optimizer, scheduler, cfg, d.device)
        losses.append(float(parallel.mean(loss, d)))  # one sync per step: this is a loss curve
        tokens += sum(b.tokens for b in micro) * d.world
    seconds = time.perf_counter() - start
    if d.main:
        peak = torch.cuda.max_memory_allocated() / 2**30 if d.device.type == "cuda" else None
        result = {"gpus": d.world, "losses": losses, "tokens_per_s": tokens / seconds,
                  "peak_gb_per_gpu": peak}  # fmt: skip
        Path(args.out).write_text(json.dumps(result))
    parallel.close(d)


def launch(n: int, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc-per-node={n}", __file__, "--worker", "--out", str(out),
           "--method", args.method, "--micro", str(args.micro), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--lr", str(args.lr)]  # fmt: skip
    cmd += [f for f, on in [("--smoke", args.smoke), ("--fsdp", args.fsdp),
                            ("--ckpt", args.ckpt), ("--compile", args.compile)] if on]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"the {n}-process run failed (exit {proc.returncode}); see above")
    return dict(json.loads(out.read_text()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny model on CPU with gloo")
    ap.add_argument("--method", choices=["full", "lora"], default="full")
    ap.add_argument("--fsdp", action="store_true", help="FSDP2 instead of DDP (full only)")
    ap.add_argument("--ckpt", action="store_true", help="activation checkpointing")
    ap.add_argument("--compile", action="store_true", help="torch.compile the decoder layers")
    ap.add_argument("--micro", type=int, default=4, help="sequences per micro-batch per GPU")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5, help="untimed first steps")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.smoke:
        args.steps, args.warmup, args.micro = min(args.steps, 6), 2, 2
    with tempfile.TemporaryDirectory() as tmp:
        one = launch(1, args, Path(tmp) / "1.json")
        two = launch(2, args, Path(tmp) / "2.json")
    diffs = [abs(a - b) for a, b in zip(one["losses"], two["losses"], strict=True)]
    efficiency = two["tokens_per_s"] / (2 * one["tokens_per_s"])
    print(f"{'step':>5}{'loss 1 GPU':>12}{'loss 2 GPUs':>13}{'diff':>9}")
    for i, (a, b) in enumerate(zip(one["losses"], two["losses"], strict=True), start=1):
        print(f"{i:>5}{a:>12.4f}{b:>13.4f}{abs(a - b):>9.4f}")
    print(f"tokens/s: 1 GPU {one['tokens_per_s']:,.0f}, 2 GPUs {two['tokens_per_s']:,.0f}; "
          f"scaling efficiency {efficiency:.1%}; max loss diff {max(diffs):.4f}")  # fmt: skip
    print(json.dumps({"bench": "train_scaling", "method": args.method, "fsdp": args.fsdp,
                      "smoke": args.smoke, "one": one, "two": two, "efficiency": efficiency,
                      "max_loss_diff": max(diffs)}))  # fmt: skip


if __name__ == "__main__":
    main()
