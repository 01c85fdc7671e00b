"""Training throughput of lmm's trainer path against a plain transformers loop, same run, same GPU.

    python bench/train_throughput.py                  # GPU: random-init Qwen3-1.7B, bf16, 8 x 2048
    python bench/train_throughput.py --smoke          # CPU: tiny config, 2 steps per row
    python bench/train_throughput.py --rows lora,lora-ckpt,lora-sft   # a subset

Rows (each on a fresh model; a row that runs out of memory is reported as OOM):
- baseline: `model(input_ids, labels=labels).loss` + `torch.optim.AdamW` (what a plain loop does:
  full-vocabulary logits, default foreach AdamW), full fine-tuning, no checkpointing.
- full, full-ckpt, full-compile: lmm's path (`lmm.train.loop.prepare` + `train_step`: chunked
  loss from hidden states, fused AdamW, SDPA, no host sync per step), full fine-tuning, without /
  with activation checkpointing, and with torch.compile of every decoder layer.
- full-mixed: as `full`, with fp32 master weights under bf16 autocast (the trainer's default
  for full fine-tuning on a GPU: bf16 weights lose updates smaller than their precision).
- lora, lora-ckpt, lora-compile: LoRA r16 on all linear layers of a frozen bf16 base, without /
  with checkpointing, and compiled without checkpointing.
- lora-sft: LoRA SFT at 1 x 2048 with checkpointing, loss on the last quarter only, the config's
  default loss chunk of 1024 (the 8 GB row).
Every row but lora-sft takes --grad-accum micro-batches per optimizer step (default 2: 16
sequences of 2048 per step, as configs/qwen3-1.7b-*.toml); a step's tokens count them all.

tokens/s counts every input token. MFU = model FLOPs per token x tokens/s / the card's peak dense
bf16 FLOPs (H100 SXM and H200: 989 TFLOPS; H100 PCIe 756; A100 312). Model FLOPs per token
(PaLM appendix B, nanoGPT): 6N + 12 L H Q T for full fine-tuning (N = parameters in matmuls, tied
embedding counted once; L layers, H heads, Q head dim, T sequence), 4N + 12 L H Q T for LoRA (no
weight gradients for the frozen base); recomputation under checkpointing is not counted.
Targets: full >= 60% MFU; LoRA >= 1.3x the best full tokens/s; lora-sft peak <= 8 GB.
Imports only torch, transformers, peft and lmm's train modules (from ../src). Prints a table, then
one JSON line.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lmm.train import data, loop, parallel
from lmm.train.config import TrainConfig

ROWS = ["baseline", "full", "full-ckpt", "full-compile", "full-mixed", "lora", "lora-ckpt",
        "lora-compile", "lora-sft"]  # fmt: skip
PEAKS = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
         ("A100", 312e12)]  # fmt: skip


@dataclass
class Shape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    batch: int
    seq: int


QWEN3_1_7B = Shape(2048, 6144, 28, 16, 8, 128, 151936, 8, 2048)
SMOKE = Shape(64, 128, 2, 4, 2, 16, 1000, 2, 64)


def make_model(shape: Shape, dtype: torch.dtype, device: torch.device, seed: int = 0) -> Any:
    """A randomly initialised Qwen3 causal LM with tied embeddings, SDPA attention."""
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=shape.vocab, hidden_size=shape.hidden, intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim, tie_word_embeddings=True,
        max_position_embeddings=max(4096, shape.seq), rope_theta=1e6, use_cache=False,
        attn_implementation="sdpa",
    )  # fmt: skip
    torch.manual_seed(seed)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # made in its dtype: no fp32 copy on the GPU first
    try:
        with torch.device(device):
            model = Qwen3ForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    return model.train()


def flops_per_token(model: Any, shape: Shape, lora: bool) -> float:
    n = sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)
    attention = 12 * shape.layers * shape.heads * shape.head_dim * shape.seq
    return (4 if lora else 6) * n + attention


def peak_flops(device: torch.device) -> tuple[str, float | None]:
    if device.type != "cuda":
        return "cpu", None
    name = torch.cuda.get_device_name(device)
    return name, next((peak for key, peak in PEAKS if key in name), None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    torch._dynamo.reset()


def _batch(shape: Shape, batch: int, device: torch.device, sft: bool) -> data.Batch:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, shape.vocab, (batch, shape.seq), generator=g)
    labels = ids.clone()
    if sft:
        labels[:, : shape.seq * 3 // 4] = -100  # a prompt without loss, the answer after it
    targets = int((labels[:, 1:] != -100).sum())
    return data.Batch(ids, None, labels, ids.numel(), targets).to(device)


def run_row(
    row: str, shape: Shape, device: torch.device, args: argparse.Namespace, batch: int
) -> dict[str, Any]:
    """Time `args.steps` optimizer steps after `args.warmup` (compile rows: more warm-up).
    `start_gb` is what was still allocated before the row's model was made (a leak shows)."""
    lora = row.startswith("lora")
    sft = row == "lora-sft"
    start_gb = (
        round(torch.cuda.memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None
    )
    mixed = row == "full-mixed"
    dtype = torch.bfloat16 if device.type == "cuda" and not mixed else torch.float32
    model = make_model(shape, dtype, device)
    b = _batch(shape, batch, device, sft)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)  # count training, not making the model
    warmup = args.warmup + (args.compile_warmup if "compile" in row else 0)
    accum = 1 if sft else args.grad_accum
    if row == "baseline":
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step() -> torch.Tensor:
            for _ in range(accum):
                loss = model(input_ids=b.input_ids, labels=b.labels).loss / accum
                loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.detach()
    else:
        cfg = TrainConfig(
            stage="sft" if sft else "cpt", method="lora" if lora else "full", lora_r=16,
            lora_alpha=32, grad_checkpointing="ckpt" in row or sft, compile="compile" in row,
            precision=("bf16-mixed" if mixed else "bf16") if device.type == "cuda" else "fp32",
            batch_size=batch,
            seq_len=shape.seq, grad_accum=accum, warmup_steps=0,
            loss_chunk=1024 if sft else args.loss_chunk,  # lora-sft: the laptop default
            device=device.type,
        )  # fmt: skip
        d = parallel.Dist(device=device)
        p = loop.prepare(cfg, d, model=model, tokenizer=None, base="random-init")
        model = p.model
        optimizer = loop.make_optimizer(p.module, cfg, device)
        scheduler = loop.make_schedule(optimizer, cfg, warmup + args.steps)

        def step() -> torch.Tensor:
            return loop.train_step(p, [b] * accum, optimizer, scheduler, cfg, device)

    for _ in range(warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    _sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    tokens_per_s = b.tokens * accum / seconds
    if row in args.profile.split(","):
        _profile(row, step, device)
    result = {
        "row": row, "status": "ok", "batch": batch, "accum": accum, "seq": shape.seq,
        "start_gb": start_gb,
        "tokens_per_s": round(tokens_per_s, 1), "step_s": round(seconds, 4),
        "flops_per_token": flops_per_token(model, shape, lora),
        "loss": round(float(losses[-1]), 4),
        "peak_gb": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda" else None,
    }  # fmt: skip
    return result


def _profile(row: str, step: Any, device: torch.device) -> None:
    """Two more steps under torch.profiler: the kernels that take the time, to stderr."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(2):
            step()
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=30, max_name_column_width=70)
    print(f"# profile of {row} (2 steps)\n{table}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny config on CPU (checks the code)")
    ap.add_argument(
        "--rows", default=",".join(ROWS), help="comma-separated subset of " + ",".join(ROWS)
    )
    ap.add_argument("--steps", type=int, default=10, help="timed steps per row")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per row")
    ap.add_argument("--compile-warmup", type=int, default=5, help="extra warm-up for compile rows")
    ap.add_argument("--loss-chunk", type=int, default=4096, help="tokens per lm_head chunk")
    ap.add_argument("--grad-accum", type=int, default=2,
                    help="micro-batches per optimizer step (2 x 8 = the shipped configs' 16 "
                         "sequences per step; lora-sft: 1)")  # fmt: skip
    ap.add_argument("--profile", default="", help="rows to profile after timing (comma-separated)")
    args = ap.parse_args()
    shape = SMOKE if args.smoke else QWEN3_1_7B
    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    if args.smoke:
        args.steps, args.warmup, args.compile_warmup = min(args.steps, 2), 1, 1
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    card, peak = peak_flops(device)
    rows = []
    for row in [r.strip() for r in args.rows.split(",") if r.strip()]:
        if row not in ROWS:
            raise SystemExit(f"unknown row {row!r}; choose from {', '.join(ROWS)}")
        batch = 1 if row == "lora-sft" else shape.batch
        while True:  # a row that does not fit is retried at half the batch, down to 1
            _reset(device)
            try:
                res = run_row(row, shape, device, args, batch)
            except torch.OutOfMemoryError:
                res = {"row": row, "status": "OOM", "batch": batch}
            except Exception as exc:  # a failing row must not hide the others' numbers
                res = {"row": row, "status": f"error: {type(exc).__name__}: {str(exc)[:300]}"}
            if res["status"] != "OOM" or batch == 1 or row == "lora-sft":
                break
            print(f"# {row}: OOM at batch {batch}, trying {batch // 2}", file=sys.stderr)
            batch //= 2
        if res["status"] == "ok" and peak:
            res["mfu"] = round(res["flops_per_token"] * res["tokens_per_s"] / peak, 4)
        rows.append(res)
        print(f"# {row}: {res}", file=sys.stderr, flush=True)
    ok = {r["row"]: r for r in rows if r["status"] == "ok"}
    full = [r for k, r in ok.items() if k.startswith("full") or k == "baseline"]
    best_full = max(full, key=lambda r: r["tokens_per_s"]) if full else None
    best_lora = max((r for k, r in ok.items() if k in ("lora", "lora-ckpt", "lora-compile")),
                    key=lambda r: r["tokens_per_s"], default=None)  # fmt: skip
    speedup = (best_lora["tokens_per_s"] / best_full["tokens_per_s"]
               if best_lora and best_full else None)  # fmt: skip
    lmm_full = [r for k, r in ok.items() if k.startswith("full") and "mfu" in r]
    targets = {
        "best_full_mfu": max((r["mfu"] for r in lmm_full), default=None),
        "full_mfu_ge_0.60": bool(lmm_full) and max(r["mfu"] for r in lmm_full) >= 0.60,
        "lora_over_best_full": round(speedup, 3) if speedup else None,
        "lora_ge_1.3x": speedup is not None and speedup >= 1.3,
        "lora_sft_peak_gb": ok.get("lora-sft", {}).get("peak_gb"),
        "lora_sft_le_8gb": (ok.get("lora-sft", {}).get("peak_gb") or 99) <= 8.0,
    }
    head = f"{'row':<14}{'status':<8}{'batch':>6}{'tok/s':>12}{'step s':>9}{'MFU':>8}{'peak GB':>9}"
    print(f"card: {card}, peak bf16 {peak / 1e12 if peak else 0:.0f} TFLOPS, "
          f"torch {torch.__version__}, shape {shape}")  # fmt: skip
    print(head)
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['row']:<14}{r['status'][:60]}")
            continue
        mfu = f"{r['mfu']:.1%}" if "mfu" in r else "-"
        peak_gb = f"{r['peak_gb']:.1f}" if r["peak_gb"] is not None else "-"
        print(f"{r['row']:<14}{'ok':<8}{r['batch']:>6}{r['tokens_per_s']:>12,.0f}"
              f"{r['step_s']:>9.3f}{mfu:>8}{peak_gb:>9}")  # fmt: skip
    print("targets:", json.dumps(targets))
    print(json.dumps({"bench": "train_throughput", "card": card, "peak_flops": peak,
                      "torch": torch.__version__, "smoke": args.smoke, "rows": rows,
                      "targets": targets}))  # fmt: skip


if __name__ == "__main__":
    main()
