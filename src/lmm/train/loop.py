"""The training loop: load -> data -> loop (validation, best, resumable checkpoints) -> save."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmm.errors import LmmError
from lmm.train import checkpoint, data, parallel
from lmm.train.config import TrainConfig
from lmm.train.loss import CausalLMLoss
from lmm.train.metrics import Metrics
from lmm.train.model import add_lora, load_for_training, merge, no_input_casting

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a finished run left behind."""

    run: Path
    steps: int
    loss: float | None  # training loss of the last logged step
    best_val: float | None
    weights: Path  # <run>/adapter or <run>/model
    best: Path | None
    merged: Path | None
    seconds: float


@dataclass
class Prepared:
    """A model ready to train: the pieces the loop and bench/train_throughput.py share."""

    model: Any  # peft model (LoRA) or causal LM (full): what gets saved
    lm: Any  # the causal LM inside it
    loss: CausalLMLoss  # unwrapped
    module: nn.Module  # `loss`, wrapped for DDP/FSDP when distributed
    tokenizer: Any
    base: str
    autocast: bool
    save_dtype: torch.dtype | None


def precision(cfg: TrainConfig, device: torch.device) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    if device.type == "cpu":
        return "fp32"
    return "bf16" if cfg.method == "lora" else "bf16-mixed"


def enable_checkpointing(lm: Any) -> None:
    kwargs = {"use_reentrant": False}
    if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.2x
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def prepare(
    cfg: TrainConfig,
    d: parallel.Dist,
    model: Any = None,
    tokenizer: Any = None,
    base: str | None = None,
) -> Prepared:
    """Load (unless `model` is given), add LoRA or unfreeze, checkpointing, compile, wrap."""
    prec = precision(cfg, d.device)
    dtype = torch.bfloat16 if prec == "bf16" else torch.float32
    if model is None:
        model, tokenizer, base = load_for_training(
            cfg.base, cfg.init_from, cfg.method, dtype, d.device
        )
    if cfg.method == "lora" and not hasattr(model, "peft_config"):
        model = add_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets)
    elif cfg.method == "full":
        model.requires_grad_(True)
    lm = model.get_base_model() if hasattr(model, "peft_config") else model
    lm.config.use_cache = False
    autocast = prec != "fp32" and not (cfg.fsdp and d.distributed and prec == "bf16-mixed")
    if cfg.method == "lora" and autocast:
        no_input_casting(model)
    if cfg.grad_checkpointing:
        enable_checkpointing(lm)
    if cfg.compile:
        for layer in parallel.decoder_layers(lm):
            layer.compile()
    loss = CausalLMLoss(lm, chunk=cfg.loss_chunk, select=cfg.stage == "sft")
    module = parallel.wrap(loss, lm, d, fsdp=cfg.fsdp, mixed=prec == "bf16-mixed")
    save_dtype = torch.bfloat16 if prec != "fp32" else None
    return Prepared(model, lm, loss, module, tokenizer, base or cfg.base, autocast, save_dtype)


def make_optimizer(module: nn.Module, cfg: TrainConfig, device: torch.device) -> Any:
    """AdamW over the trainable parameters; decay on matrices only; fused kernels on GPU."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=cfg.peak_lr, betas=(0.9, 0.95), fused=fused)


def make_schedule(optimizer: Any, cfg: TrainConfig, total: int) -> Any:
    """Linear warm-up, then cosine decay to `min_lr_ratio` of the peak."""
    warm = min(cfg.warmup_steps, max(total - 1, 0))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        progress = (step - warm) / max(1, total - warm)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _no_sync(module: Any, last: bool) -> Any:
    """Skip the gradient all-reduce on every micro-batch but the last of a step."""
    if last:
        return contextlib.nullcontext()
    if hasattr(module, "no_sync"):  # DDP
        return module.no_sync()
    if hasattr(module, "set_requires_gradient_sync"):  # FSDP2
        module.set_requires_gradient_sync(False)
        return contextlib.nullcontext()
    return contextlib.nullcontext()


def _skips_on_found_inf(optimizer: Any) -> bool:
    """Whether `optimizer.step()` honours a `found_inf` flag on the device: torch's fused Adam
    and AdamW read it (GradScaler's protocol) and leave weights, moments and step unchanged."""
    groups = getattr(optimizer, "param_groups", [])
    return isinstance(optimizer, torch.optim.Adam | torch.optim.AdamW) and all(
        g.get("fused") for g in groups
    )


def train_step(
    p: Prepared,
    micro: list[data.Batch],
    optimizer: Any,
    scheduler: Any,
    cfg: TrainConfig,
    device: torch.device,
) -> torch.Tensor:
    """One optimizer step over `micro` batches; returns the step's mean loss (on device, so
    reading it is the only host sync)."""
    targets = max(1, sum(b.targets for b in micro))
    total = torch.zeros((), device=device)
    module: Any = p.module
    if hasattr(module, "set_requires_gradient_sync"):
        module.set_requires_gradient_sync(True)
    for i, batch in enumerate(micro):
        b = batch.to(device)
        with (
            _no_sync(p.module, i == len(micro) - 1),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=p.autocast),
        ):
            loss = p.module(b.input_ids, b.attention_mask, b.labels) / targets
        loss.backward()
        total += loss.detach()
    params = [q for q in p.module.parameters() if q.grad is not None]
    if params:
        # A step whose gradient is not finite (one bad batch) must not touch the weights. The
        # fused AdamW (what the trainer uses on a GPU) skips the update on the device when told
        # through `found_inf`, as under GradScaler: no host sync; other optimizers are skipped
        # after a sync (zeroed gradients would still move weights through decay and momentum).
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip or float("inf"))
        bad = ~torch.isfinite(norm)
        if _skips_on_found_inf(optimizer):
            optimizer.found_inf = bad.float()
        elif bool(bad):
            optimizer.zero_grad(set_to_none=True)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return total


@torch.no_grad()
def evaluate(p: Prepared, items: list[data.Example], cfg: TrainConfig, d: parallel.Dist) -> float:
    """Validation loss per target token over (at most `eval_batches` micro-batches per rank)."""
    p.module.eval()
    sums = torch.zeros(2, device=d.device)
    pad = p.tokenizer.pad_token_id
    it = data.batches(
        items,
        cfg.batch_size,
        rank=d.rank,
        world=d.world,
        seed=cfg.seed,
        epoch=0,
        pad_id=pad,
        shuffle=False,
    )
    for n, batch in enumerate(it):
        if cfg.eval_batches and n >= cfg.eval_batches:
            break
        b = batch.to(d.device)
        with torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=p.autocast):
            sums[0] += p.module(b.input_ids, b.attention_mask, b.labels).float()
        sums[1] += b.targets
    p.module.train()
    sums = parallel.sum_(sums, d)
    return float(sums[0] / sums[1]) if sums[1] > 0 else float("nan")


def _micro_batches(
    items: list[data.Example], cfg: TrainConfig, d: parallel.Dist, pad: int, start: int
) -> Iterator[data.Batch]:
    per_epoch = data.batches_per_epoch(len(items), cfg.batch_size, d.world)
    epoch, skip = divmod(start, per_epoch)
    while True:
        yield from data.batches(
            items,
            cfg.batch_size,
            rank=d.rank,
            world=d.world,
            seed=cfg.seed,
            epoch=epoch,
            pad_id=pad,
            skip=skip,
        )
        epoch, skip = epoch + 1, 0


def git_sha() -> str | None:
    """The commit of the lmm checkout this runs from ('+dirty' with local changes), or None."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("+dirty" if dirty.strip() else "")


def default_out(stage: str) -> Path:
    from lmm import paths

    return paths.home() / "runs" / f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def train(cfg: TrainConfig, progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run one stage as `cfg` says; see the module docstring for commands."""
    t_start = time.perf_counter()
    # ---- setup
    d = parallel.init(cfg.device)
    if not cfg.data:
        from lmm import paths

        cfg = replace(cfg, data=str(paths.home() / "train-data"))
    run = Path(cfg.resume or cfg.out or default_out(cfg.stage)).expanduser()
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    for path in data.stage_files(Path(cfg.data), cfg.stage, cfg.sft_files, "train"):
        if not path.is_file():  # before loading a model that may take a minute
            raise LmmError(f"no training file {path}; run `lmm build-data --out {path.parent}`")
    # ---- model
    p = prepare(cfg, d)
    # ---- data
    train_items = data.examples(cfg, p.tokenizer, "train")
    val_items = data.examples(cfg, p.tokenizer, "val")
    per_epoch = data.batches_per_epoch(len(train_items), cfg.batch_size, d.world)
    if per_epoch == 0:
        raise LmmError(
            f"{len(train_items)} training examples ({cfg.stage}, seq_len {cfg.seq_len}) make no "
            f"batch of {cfg.batch_size} x {d.world} device(s); build more data or lower --seq-len"
        )
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch / cfg.grad_accum))
    files = data.stage_files(Path(cfg.data), cfg.stage, cfg.sft_files, "train")
    files += data.stage_files(Path(cfg.data), cfg.stage, cfg.sft_files, "val")
    meta = {
        "lmm_run": 1,
        "stage": cfg.stage,
        "config": cfg.to_dict(),
        "base": p.base,
        "git_sha": git_sha(),
        "data_hash": data.data_hash(files),
        "world_size": d.world,
        "precision": precision(cfg, d.device),
        "train_examples": len(train_items),
        "val_examples": len(val_items),
        "total_steps": total,
        "torch": torch.__version__,
    }
    if d.main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
        p.tokenizer.save_pretrained(str(run / "tokenizer"))
    # ---- optimizer, schedule, resume
    optimizer = make_optimizer(p.module, cfg, d.device)
    scheduler = make_schedule(optimizer, cfg, total)
    state: dict[str, Any] = {"step": 0, "best_val": None, "tokens": 0}
    if cfg.resume:
        fsdp_run = cfg.fsdp and d.distributed
        state.update(checkpoint.load_state(run, p.module, optimizer, scheduler, d, fsdp_run))
        log.info("resumed %s at step %d", run, state["step"])
    metrics = Metrics(
        run, enabled=d.main, tensorboard=cfg.tensorboard, wandb=cfg.wandb, config=cfg.to_dict()
    )
    weights = run / ("adapter" if cfg.method == "lora" else "model")
    best_dir: Path | None = run / "best" if (run / "best").is_dir() else None

    def save(out: Path) -> None:
        checkpoint.save_run_weights(
            out,
            p.model,
            p.module,
            p.tokenizer,
            base=p.base,
            d=d,
            fsdp=cfg.fsdp and d.distributed,
            dtype=p.save_dtype,
        )

    def validate(step: int) -> None:
        nonlocal best_dir
        if not val_items:
            return
        val = evaluate(p, val_items, cfg, d)
        better = state["best_val"] is None or val < state["best_val"]
        log.info("step %d | val_loss %.4f%s", step, val, " (best)" if better else "")
        metrics.write({"step": step, "val_loss": val})
        if better:
            state["best_val"] = val
            best_dir = run / "best"
            save(best_dir)

    # ---- loop
    log.info(
        "%s %s on %s x%d: %d steps, %d train / %d val examples, run %s",
        cfg.stage,
        cfg.method,
        d.device.type,
        d.world,
        total,
        len(train_items),
        len(val_items),
        run,
    )
    p.module.train()
    pad = p.tokenizer.pad_token_id
    stream = _micro_batches(train_items, cfg, d, pad, state["step"] * cfg.grad_accum)
    fsdp = cfg.fsdp and d.distributed
    window_loss = torch.zeros((), device=d.device)
    window_tokens, window_steps, t_log = 0, 0, time.perf_counter()
    last_loss: float | None = None
    for step in range(state["step"] + 1, total + 1):
        micro = [next(stream) for _ in range(cfg.grad_accum)]
        window_loss += train_step(p, micro, optimizer, scheduler, cfg, d.device)
        window_tokens += sum(b.tokens for b in micro)
        window_steps += 1
        state["step"] = step
        if step % cfg.log_every == 0 or step == total:
            pair = parallel.sum_(
                torch.stack([window_loss, torch.tensor(float(window_tokens), device=d.device)]), d
            )
            now = time.perf_counter()
            last_loss = float(pair[0]) / (window_steps * d.world)
            tps = float(pair[1]) / (now - t_log)
            dt = (now - t_log) / window_steps
            lr = scheduler.get_last_lr()[0]
            state["tokens"] += int(pair[1])
            log.info(
                "step %d/%d | loss %.4f | lr %.2e | tok/s %s | dt %.2fs",
                step,
                total,
                last_loss,
                lr,
                f"{tps:,.0f}",
                dt,
            )
            metrics.write(
                {
                    "step": step,
                    "loss": last_loss,
                    "lr": lr,
                    "tokens_per_s": tps,
                    "dt": dt,
                    "tokens": state["tokens"],
                }
            )
            window_loss.zero_()
            window_tokens, window_steps, t_log = 0, 0, time.perf_counter()
        if progress and d.main:
            progress(step, total)
        if cfg.eval_every and step % cfg.eval_every == 0 and step != total:
            validate(step)
            t_log = time.perf_counter()
        if cfg.save_every and step % cfg.save_every == 0 and step != total:
            checkpoint.save_state(run, p.module, optimizer, scheduler, state, d, fsdp)
            t_log = time.perf_counter()
    # ---- eval and save
    validate(total)
    checkpoint.save_state(run, p.module, optimizer, scheduler, state, d, fsdp)
    save(weights)
    merged = None
    if cfg.merge and cfg.method == "lora" and d.main:
        merged = merge(run, dtype=p.save_dtype or torch.float32)
    metrics.close()
    result = RunResult(
        run,
        total,
        last_loss,
        state["best_val"],
        weights,
        best_dir,
        merged,
        time.perf_counter() - t_start,
    )
    if d.main:
        meta["result"] = {
            "steps": total,
            "loss": last_loss,
            "best_val": state["best_val"],
            "seconds": round(result.seconds, 1),
        }
        (run / "config.json").write_text(json.dumps(meta, indent=2) + "\n")
    parallel.barrier(d)
    return result


def train_both(
    cpt: TrainConfig, sft: TrainConfig, progress: Callable[[int, int], None] | None = None
) -> list[RunResult]:
    """CPT, then SFT starting from the CPT run's weights: <out>/cpt and <out>/sft."""
    out = Path(cpt.out or default_out("both")).expanduser()
    first = train(replace(cpt, out=str(out / "cpt"), resume=""), progress)
    second = train(
        replace(sft, out=str(out / "sft"), init_from=str(first.run), resume=""), progress
    )
    return [first, second]
