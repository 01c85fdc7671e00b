"""Resumable training state and the weights saved along a run."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lmm.errors import LmmError
from lmm.train.model import save_weights
from lmm.train.parallel import Dist, barrier

PREFIX = "lm."  # CausalLMLoss keeps the causal LM as `.lm`


def _rng() -> dict[str, Any]:
    state: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def _set_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that train (LoRA adapters, or every weight for full fine-tuning)."""
    return {n: p.detach().cpu() for n, p in module.named_parameters() if p.requires_grad}


def save_state(
    run: Path,
    module: nn.Module,
    optimizer: Any,
    scheduler: Any,
    progress: dict[str, Any],
    d: Dist,
    fsdp: bool,
) -> Path:
    """Write `<run>/checkpoint` (all ranks call this)."""
    final, tmp = run / "checkpoint", run / "checkpoint.partial"
    if d.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(d)
    if fsdp:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_sd, optim_sd = get_state_dict(module, optimizer)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(tmp / "dcp"))
    elif d.main:
        state = {"model": trainable_state(module), "optim": optimizer.state_dict()}
        torch.save(state, tmp / "state.pt")
    torch.save(_rng(), tmp / f"rng{d.rank}.pt")
    if d.main:
        torch.save({"scheduler": scheduler.state_dict(), **progress}, tmp / "trainer.pt")
    barrier(d)
    if d.main:
        shutil.rmtree(final, ignore_errors=True)
        tmp.replace(final)
    barrier(d)
    return final


def load_state(
    where: Path, module: nn.Module, optimizer: Any, scheduler: Any, d: Dist, fsdp: bool
) -> dict[str, Any]:
    """Restore a checkpoint written by `save_state`; returns its progress (step, best_val...)."""
    ckpt = where / "checkpoint" if (where / "checkpoint").is_dir() else where
    if not (ckpt / "trainer.pt").is_file():
        raise LmmError(f"{where} has no resumable checkpoint (checkpoint/trainer.pt)")
    if fsdp:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_sd, optim_sd = get_state_dict(module, optimizer)
        state: dict[str, Any] = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=str(ckpt / "dcp"))
        set_state_dict(
            module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"]
        )
    else:
        state = torch.load(ckpt / "state.pt", map_location=d.device, weights_only=True)
        missing = set(trainable_state(module)) - set(state["model"])
        if missing:
            raise LmmError(
                f"{ckpt} does not match this model ({len(missing)} trainable weights missing, "
                f"e.g. {sorted(missing)[0]}); resume with the same --base and --method"
            )
        module.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optim"])
    trainer = torch.load(ckpt / "trainer.pt", weights_only=False)
    scheduler.load_state_dict(trainer.pop("scheduler"))
    rng = ckpt / f"rng{d.rank}.pt"
    if rng.is_file():
        _set_rng(torch.load(rng, weights_only=False))
    return dict(trainer)


def save_run_weights(
    out: Path,
    model: Any,
    module: nn.Module,
    tokenizer: Any,
    *,
    base: str,
    d: Dist,
    fsdp: bool,
    dtype: torch.dtype | None = None,
) -> None:
    """Save the weights being trained into `out` (rank 0 writes; under FSDP every rank helps
    gather the full state dict first). `model` is the peft model or the causal LM."""
    state = None
    if fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full: dict[str, Any] = get_model_state_dict(
            module, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        state = {k.removeprefix(PREFIX): v for k, v in full.items()}
    elif dtype is not None and not hasattr(model, "peft_config"):
        state = {k: v.to(dtype) for k, v in model.state_dict().items()}
    if state is not None and dtype is not None:
        state = {k: v.to(dtype) for k, v in state.items()}
    if d.main:
        tmp = out.with_name(out.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        save_weights(model, tokenizer, tmp, base=base, state_dict=state)
        shutil.rmtree(out, ignore_errors=True)
        tmp.replace(out)
    barrier(d)
