"""Several devices through torch.distributed: DDP for LoRA and full, FSDP2 for full fine-tuning."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

log = logging.getLogger(__name__)
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = CPU

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        from lmm.errors import LmmError

        raise LmmError("--device cuda but torch sees no CUDA GPU; use --device cpu")
    return name


def init(device: str = "auto") -> Dist:
    """Join the process group when launched by torchrun; pick this rank's device."""
    kind = pick_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if kind == "cuda":
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if kind == "cuda" else "gloo"
        if kind == "cuda":
            dist.init_process_group(backend, device_id=dev)
        else:
            dist.init_process_group(backend)
        log.info("rank %d of %d joined (%s)", rank, world, backend)
    return Dist(rank, world, local, dev)


def close(d: Dist) -> None:
    if d.distributed and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(d: Dist) -> None:
    if d.distributed:
        dist.barrier()


def mean(value: torch.Tensor, d: Dist) -> torch.Tensor:
    """The average of a scalar tensor over ranks."""
    if d.distributed:
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= d.world
    return value


def sum_(values: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.distributed:
        values = values.detach().clone()
        dist.all_reduce(values)
    return values


def decoder_layers(lm: Any) -> list[nn.Module]:
    """The transformer blocks of a causal LM (the ModuleList that holds most parameters)."""
    decoder: Any = lm.get_decoder() if hasattr(lm, "get_decoder") else lm
    layers = getattr(decoder, "layers", None)
    if isinstance(layers, nn.ModuleList):
        return list(layers)
    lists: list[Any] = [m for m in lm.modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        return []
    biggest: Any = max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))
    return list(biggest)


def wrap(module: nn.Module, lm: nn.Module, d: Dist, *, fsdp: bool, mixed: bool) -> nn.Module:
    """`module` ready for several ranks: FSDP2 (`fully_shard` on every decoder layer, then the
    root) when `fsdp`, else DDP. `mixed`: FSDP keeps fp32 master weights and computes in bf16."""
    if not d.distributed:
        return module
    if fsdp:
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        kwargs: dict[str, Any] = {"mp_policy": policy} if mixed else {}
        for layer in decoder_layers(lm):
            fully_shard(layer, **kwargs)
        fully_shard(module, **kwargs)
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [d.local_rank] if d.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)
