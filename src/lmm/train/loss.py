"""Next-token loss from the last hidden states, a chunk of tokens at a time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

IGNORE = -100


def _chunk_loss(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, target: torch.Tensor
) -> torch.Tensor:
    logits = F.linear(hidden, weight, bias).float()  # [n, vocab]: the only full-vocab tensor
    return F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="sum")


def loss_and_grad(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy of `logits` [n, V] and its gradient w.r.t. them (softmax - one-hot,
    zero on ignored rows), in the logits' dtype; the softmax is computed in fp32."""
    x = logits.float()
    valid = target != IGNORE
    safe = target.clamp(min=0).unsqueeze(1)
    lse = torch.logsumexp(x, dim=-1, keepdim=True)
    loss = ((lse - x.gather(1, safe)).squeeze(1) * valid).sum()
    grad = torch.exp(x - lse)
    grad = grad.scatter_add(1, safe, -torch.ones_like(safe, dtype=grad.dtype))
    return loss, (grad * valid.unsqueeze(1)).to(logits.dtype)


_COMPILED: dict[str, Callable[..., Any]] = {}


def _loss_and_grad_for(device: torch.device) -> Callable[..., Any]:
    """On GPU, `loss_and_grad` compiled into a few fused kernels (no fp32 [n, V] tensors in
    memory); on CPU the plain function."""
    if device.type != "cuda":
        return loss_and_grad
    if "cuda" not in _COMPILED:
        _COMPILED["cuda"] = torch.compile(loss_and_grad, dynamic=True)
    return _COMPILED["cuda"]


class LinearCrossEntropy(torch.autograd.Function):
    """sum CE(hidden @ weight.T, target), chunk by chunk, gradients made in the forward."""

    @staticmethod
    def forward(
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, chunk: int,
        need_hidden: bool, need_weight: bool,
    ) -> torch.Tensor:  # fmt: skip
        kind = hidden.device.type
        # one dtype for every matmul: autocast's (bf16) when it is on, else the inputs'
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else hidden.dtype
        w, hs = weight.to(dtype), hidden.to(dtype)  # no copy when the dtype already matches
        step = _loss_and_grad_for(hidden.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_h = torch.empty_like(hidden) if need_hidden else None
        # accumulated in the compute dtype by the matmul itself (beta=1): an fp32 buffer would
        # cost a full read-cast-add-write of the [V, H] gradient per chunk
        grad_w = torch.zeros_like(weight, dtype=dtype) if need_weight else None
        with torch.autocast(kind, enabled=False):
            for i in range(0, hidden.shape[0], chunk):
                h = hs[i : i + chunk]
                loss, dlogits = step(h @ w.t(), target[i : i + chunk])  # [n, V], then freed
                total += loss
                if grad_h is not None:
                    grad_h[i : i + chunk] = dlogits @ w
                if grad_w is not None:
                    grad_w.addmm_(dlogits.t(), h)
        ctx.grads = (grad_h, grad_w, weight.dtype)
        return total

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Any:
        grad_h, grad_w, w_dtype = ctx.grads
        del ctx.grads
        gh = None if grad_h is None else grad_h * grad_out.to(grad_h.dtype)
        gw = None if grad_w is None else (grad_w * grad_out).to(w_dtype)
        return gh, gw, None, None, None, None


def chunked_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    chunk: int = 1024,
    select: bool = True,
    fused: bool = True,
) -> torch.Tensor:
    """Sum of next-token cross-entropy over positions whose label is not -100.

    `hidden` [B, T, H] are the final (normed) hidden states, `labels` [B, T] the input ids with
    -100 where no loss is wanted (they are shifted here: position t predicts label t+1).
    `select` drops positions without a target first (one host sync; worth it for SFT, where most
    tokens are prompt); CPT blocks have a target everywhere and pass `select=False`.
    `fused` picks `LinearCrossEntropy`, else per-chunk checkpointing (always with a bias).
    """
    h = hidden[:, :-1].reshape(-1, hidden.shape[-1])
    y = labels[:, 1:].reshape(-1)
    if select:
        keep = (y != IGNORE).nonzero().squeeze(1)
        h, y = h.index_select(0, keep), y.index_select(0, keep)
    if fused and bias is None:
        grad = torch.is_grad_enabled()
        return LinearCrossEntropy.apply(
            h, weight, y, chunk, grad and h.requires_grad, grad and weight.requires_grad
        )
    total = hidden.new_zeros((), dtype=torch.float32)
    for i in range(0, h.shape[0], chunk):
        part = checkpoint(
            _chunk_loss, h[i : i + chunk], weight, bias, y[i : i + chunk], use_reentrant=False
        )
        total = total + part
    return total


class CausalLMLoss(nn.Module):
    """A causal LM whose forward returns the summed next-token loss (not logits).

    Wrapping the whole computation in one module lets DDP and FSDP see a single forward. `lm` is
    a transformers `*ForCausalLM` (possibly with LoRA layers injected by peft).
    """

    def __init__(
        self, lm: nn.Module, chunk: int = 1024, select: bool = True, fused: bool = True
    ) -> None:
        super().__init__()
        self.lm = lm
        self.chunk = chunk
        self.select = select
        self.fused = fused

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor
    ) -> torch.Tensor:
        lm: Any = self.lm
        decoder = lm.get_decoder()
        out = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        head: Any = lm.get_output_embeddings()
        return chunked_cross_entropy(
            out.last_hidden_state,
            head.weight,
            labels,
            bias=head.bias,
            chunk=self.chunk,
            select=self.select,
            fused=self.fused,
        )
