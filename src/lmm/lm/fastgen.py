"""Fast batch-1 decoding for a transformers causal LM: synthesis at GPU memory speed."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from lmm.errors import LmmError

log = logging.getLogger(__name__)

MODES = ("auto", "generate", "eager", "graph", "compile")
GPU_DEFAULT = "compile"  # what "auto" picks on CUDA; the first call compiles (see `warm`)
# inductor options for "compile": coordinate descent tuning also makes inductor lower the
# batch-1 matrix-vector products to tuned Triton reductions (fused with the norms around them)
# instead of cuBLAS calls, which is what brings a decode step near memory bandwidth (gpt-fast)
COMPILE_OPTIONS: dict[str, bool] = {"coordinate_descent_tuning": True}
COMPILE_BACKEND = "inductor"  # tests check the compiled path on CPU with "aot_eager"
ATTENTION = "lmm_decode"  # name `decode_attention` is registered under in transformers
# cache lengths round up to these, so prompts of similar length share one graph. A step attends
# over the whole cache, so a smaller one is faster (H200, 768 needed: 522 tokens/s in a 2048 cache,
# 539 in 1024), but each new length compiles again: a decoder serves every shorter call, and a
# server warms one of 2048 (`warm`) so that a single compile covers prompts up to that size
BUCKET = {"eager": 512, "graph": 512, "compile": 1024}
FUSE_MLP = True  # `fuse_mlp` before building a "compile" decoder (H200: 500 -> 522 tokens/s)
_LOCK = threading.Lock()  # decoders hold device state: one decode per process at a time


@dataclass
class Decoder:
    """A static KV cache and the device state of a batch-1 decode loop over it.

    The graph reads and writes these tensors in place, so they are allocated once and never
    rebound; `out[i]` is the i-th new token of the current call."""

    model: Any  # the transformers causal LM
    cache: Any  # transformers StaticCache, max_len positions
    max_len: int
    mode: str  # eager | graph | compile
    sample: bool  # Gumbel-max sampling at `temperature` instead of argmax
    token: Any  # (1, 1) long: input of the next step
    pos: Any  # (1,) long: that token's position
    out: Any  # (max_len,) long: generated tokens
    idx: Any  # (1,) long: where the next step writes in `out`
    temperature: Any  # (1,) float32
    prefill_fn: Callable[[Any, Any], Any]  # (ids (1, q), positions (q,)) -> logits (1, vocab)
    step_fn: Callable[[Any, Any], Any]  # same, for the one-token step (compiled in "compile")
    graph: Any = None  # torch.cuda.CUDAGraph of `_step` once captured


# ---- building blocks


def _base(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (whose forward signature is `**kwargs`)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _static_cache(model: Any, max_len: int, device: Any, dtype: Any) -> Any:
    """A StaticCache of `max_len` positions; the constructor changed across transformers 4.x/5.x."""
    from transformers import StaticCache

    params = inspect.signature(StaticCache.__init__).parameters
    kwargs: dict[str, Any] = {"config": model.config, "max_cache_len": max_len}
    optional = {"max_batch_size": 1, "batch_size": 1, "device": device, "dtype": dtype}
    kwargs.update({k: v for k, v in optional.items() if k in params})
    return StaticCache(**kwargs)


def decode_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention for one new token, transformers' attention-function signature.

    query (b, heads, 1, d); key/value (b, kv_heads, L, d): the whole static cache; mask
    (b, 1, 1, L). The query heads that share a KV head become that head's query rows, so each KV
    head is read once, not as a repeated copy of the cache. Returns (b, 1, heads, d). Under
    torch.compile the products are written out, and inductor turns them into reductions spread
    over the whole GPU: an SDPA kernel gives one query token a handful of thread blocks (the
    cuDNN one took 24 us a layer on an H200, a quarter of the step). Longer queries: plain SDPA."""
    import torch

    b, heads, q, d = query.shape
    kv_heads = key.shape[1]
    if q != 1 or heads % kv_heads:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    grouped = query.reshape(b, kv_heads, heads // kv_heads, d)  # head i uses KV head i // group
    if not torch.compiler.is_compiling():
        out = torch.nn.functional.scaled_dot_product_attention(
            grouped, key, value, attn_mask=attention_mask, scale=scaling
        )
        return out.reshape(b, 1, heads, d), None
    scale = scaling if scaling is not None else d**-0.5
    scores = (grouped[:, :, :, None, :].float() * key[:, :, None].float()).sum(-1)  # (b, kv, g, L)
    probs = (scores * scale + attention_mask.float()).softmax(dim=-1)
    out = (probs[..., None] * value[:, :, None].float()).sum(-2)  # (b, kv, g, d)
    return out.to(query.dtype).reshape(b, 1, heads, d), None


def fuse_mlp(model: Any) -> int:
    """Give each gated MLP (gate_proj, up_proj, down_proj, act_fn: Llama, Qwen, Mistral...) one
    [gate; up] weight read by a single matrix-vector product per step instead of two; the two
    projections' weights become views of it (no extra memory) and the result is unchanged.
    Returns how many MLPs were fused; adapters (PEFT layers) and biases are left alone."""
    import torch
    from torch import nn

    count = 0
    for mlp in _base(model).modules():
        gate, up = getattr(mlp, "gate_proj", None), getattr(mlp, "up_proj", None)
        if "_lmm_gate_up" in mlp.__dict__ or not hasattr(mlp, "down_proj"):
            continue
        if type(gate) is not nn.Linear or type(up) is not nn.Linear:
            continue
        if gate.bias is not None or up.bias is not None or gate.weight.shape != up.weight.shape:
            continue
        with torch.no_grad():
            both = torch.cat([gate.weight, up.weight]).contiguous()
        n = gate.weight.shape[0]
        gate.weight = nn.Parameter(both[:n], requires_grad=False)
        up.weight = nn.Parameter(both[n:], requires_grad=False)
        mlp._lmm_gate_up = both

        def forward(x: Any, mlp: Any = mlp, both: Any = both, n: int = n) -> Any:
            g, u = torch.nn.functional.linear(x, both).split(n, dim=-1)
            return mlp.down_proj(mlp.act_fn(g) * u)

        mlp.forward = forward
        count += 1
    return count


@contextmanager
def _decode_attention(model: Any) -> Iterator[None]:
    """Route the model's attention through `decode_attention` for the duration (the graph keeps
    whatever kernels ran while it was captured; the compiled step guards on this name)."""
    config = _base(model).config
    before = config._attn_implementation
    config._attn_implementation = ATTENTION
    try:
        yield
    finally:
        config._attn_implementation = before


def _forward(model: Any, cache: Any, max_len: int) -> Callable[[Any, Any], Any]:
    """`fn(ids (1, q), positions (q,)) -> last logits (1, vocab)` over `cache`.

    The attention mask is passed in 4D additive form (0 = attend, dtype min = masked), which
    transformers uses as is, so no mask code with host-side checks runs inside the graph."""
    import torch

    params = inspect.signature(_base(model).forward).parameters
    cache_kw = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x
    dtype, device = model.dtype, model.device
    kv_range = torch.arange(max_len, device=device)
    lowest = torch.finfo(dtype).min

    def fn(ids: Any, positions: Any) -> Any:
        mask = (kv_range[None, :] > positions[:, None]).to(dtype) * lowest  # (q, max_len)
        kwargs: dict[str, Any] = {cache_kw: cache, "use_cache": True}
        if "cache_position" in params:  # transformers 4.x: cache slots come from cache_position
            kwargs["cache_position"] = positions
        if "logits_to_keep" in params:
            kwargs["logits_to_keep"] = 1
        out = model(
            input_ids=ids,
            position_ids=positions[None, :],
            attention_mask=mask[None, None],
            **kwargs,
        )
        return out.logits[:, -1, :]

    return fn


def _pick(logits: Any, temperature: Any, sample: bool) -> Any:
    """Next token (1,) from logits (1, vocab): argmax, or Gumbel-max (softmax sampling at
    `temperature` with no host sync: argmax of logits / T - log(Exp(1) noise))."""
    import torch

    if not sample:
        return logits.argmax(dim=-1)
    noise = torch.empty_like(logits, dtype=torch.float32).exponential_()
    return (logits.float() / temperature - noise.log()).argmax(dim=-1)


def _prefill(dec: Decoder, ids: Any) -> None:
    """Empty the cache, run the prompt, leave the first new token in `out[0]` and `token`."""
    import torch

    dec.cache.reset()  # zeroes keys/values (and transformers 5's write position) in place
    positions = torch.arange(ids.shape[1], device=ids.device)
    first = _pick(dec.prefill_fn(ids, positions), dec.temperature, dec.sample)
    dec.token.copy_(first.view(1, 1))
    dec.out[:1].copy_(first)
    dec.pos.fill_(ids.shape[1])
    dec.idx.fill_(1)


def _step(dec: Decoder) -> None:
    """One decode step, device work only (this is what the CUDA graph holds)."""
    with _decode_attention(dec.model):
        logits = dec.step_fn(dec.token, dec.pos)
    nxt = _pick(logits, dec.temperature, dec.sample)
    dec.token.copy_(nxt.view(1, 1))
    dec.out.index_copy_(0, dec.idx, nxt)
    dec.pos.add_(1)
    dec.idx.add_(1)


def _capture(dec: Decoder, warmup: int = 3) -> None:
    """Warm `_step` up on a side stream (compiles in "compile" mode), then capture it."""
    import torch

    _prefill(dec, torch.zeros((1, 1), dtype=torch.long, device=dec.pos.device))  # allocates KV
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            _step(dec)
    torch.cuda.current_stream().wait_stream(side)
    dec.graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(dec.graph):
        _step(dec)
    torch.cuda.synchronize()


def build(model: Any, max_len: int, mode: str, sample: bool) -> Decoder:
    """A decoder with a `max_len`-position cache; "graph"/"compile" capture their step here."""
    import torch
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, decode_attention)
    device = model.device
    cache = _static_cache(model, max_len, device, model.dtype)
    prefill_fn = _forward(model, cache, max_len)
    step_fn = prefill_fn
    if mode == "compile":
        if FUSE_MLP:
            log.info("fastgen: fused gate and up projections of %d MLPs", fuse_mlp(model))
        options: dict[str, Any] | None = (
            dict(COMPILE_OPTIONS) if COMPILE_BACKEND == "inductor" else None
        )
        step_fn = torch.compile(prefill_fn, backend=COMPILE_BACKEND, dynamic=False, options=options)

    def zeros(*shape: int) -> Any:
        return torch.zeros(shape, dtype=torch.long, device=device)

    dec = Decoder(
        model=model,
        cache=cache,
        max_len=max_len,
        mode=mode,
        sample=sample,
        token=zeros(1, 1),
        pos=zeros(1),
        out=zeros(max_len),
        idx=zeros(1),
        temperature=torch.ones(1, dtype=torch.float32, device=device),
        prefill_fn=prefill_fn,
        step_fn=step_fn,
    )
    if mode != "eager" and device.type == "cuda":
        start = time.perf_counter()
        _capture(dec)
        seconds = time.perf_counter() - start
        log.info("fastgen: captured the %s step (cache %d) in %.1fs", mode, max_len, seconds)
    return dec


def decode(
    dec: Decoder, ids: Any, max_new_tokens: int, eos: Sequence[int], check_every: int
) -> list[int]:
    """Prefill `ids` (1, P) and decode up to `max_new_tokens`, stopping after the first EOS
    (kept, as `generate` keeps it); one host sync per `check_every` tokens."""
    import torch

    _prefill(dec, ids)
    eos_t = torch.tensor(list(eos), dtype=torch.long, device=ids.device)
    done = 1
    stop = bool(eos) and bool(torch.isin(dec.out[:1], eos_t).item())
    while not stop and done < max_new_tokens:
        chunk = min(check_every, max_new_tokens - done)
        for _ in range(chunk):
            if dec.graph is not None:
                dec.graph.replay()
            else:
                _step(dec)
        done += chunk
        stop = bool(eos) and bool(torch.isin(dec.out[done - chunk : done], eos_t).any().item())
    tokens: list[int] = dec.out[:done].tolist()
    hits = [i for i, t in enumerate(tokens) if t in eos]
    return tokens[: hits[0] + 1] if hits else tokens


# ---- entry point


def eos_ids(model: Any, tokenizer: Any | None) -> list[int]:
    """EOS ids from the generation config (int or list) and the tokenizer."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(int(i) for i in configured)
    if tokenizer is not None and getattr(tokenizer, "eos_token_id", None) is not None:
        ids.add(int(tokenizer.eos_token_id))
    return sorted(ids)


def _plain_generate(
    model: Any, ids: Any, n: int, temperature: float, eos: list[int], pad: int
) -> list[int]:
    import torch

    kwargs: dict[str, Any] = {"do_sample": temperature > 0}
    if temperature > 0:
        kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
    else:  # clear sampling defaults from generation_config, or transformers warns about them
        kwargs.update(temperature=None, top_p=None, top_k=None)
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=n,
            eos_token_id=eos or None,
            pad_token_id=pad,
            **kwargs,
        )
    return [int(t) for t in out[0, ids.shape[1] :].tolist()]


def _decoder(model: Any, needed: int, mode: str, sample: bool, fallback: bool = False) -> Decoder:
    """The model's cached decoder for (mode, sample) if its cache is long enough, else a new one;
    with `fallback`, a "compile" that fails to build gives way to "graph" (logged)."""
    decoders: dict[tuple[str, bool], Decoder] = model.__dict__.setdefault("_lmm_fastgen", {})
    dec = decoders.get((mode, sample))
    if dec is None or dec.max_len < needed:
        decoders.pop((mode, sample), None)  # free the old cache and graph pool first
        limit = getattr(model.config, "max_position_embeddings", None) or needed
        size = -(-needed // BUCKET[mode]) * BUCKET[mode]
        try:
            dec = build(model, min(size, max(limit, needed)), mode, sample)
        except RuntimeError as exc:  # dynamo and inductor failures are RuntimeErrors
            if not (fallback and mode == "compile"):
                raise
            log.warning("fastgen: compiling the decode step failed (%s); using mode 'graph'", exc)
            return _decoder(model, needed, "graph", sample)
        decoders[(mode, sample)] = dec
    return dec


def _resolve(model: Any, mode: str) -> str:
    on_cuda = model.device.type == "cuda"
    if mode == "auto":
        mode = GPU_DEFAULT if on_cuda else "generate"
    if mode in ("graph", "compile") and not on_cuda:
        raise LmmError(f"fastgen mode {mode!r} needs the model on a CUDA GPU; use mode='auto'")
    attention = _base(model).config._attn_implementation
    if mode != "generate" and attention not in ("sdpa", "eager"):
        log.info("fastgen: %s attention takes no 4D mask; using generate", attention)
        mode = "generate"
    return mode


def warm(model: Any, tokens: int = 2048, mode: str = "auto", temperature: float = 0.0) -> None:
    """Build (compile, capture) the decoder `fast_generate` with these settings uses for prompt +
    new tokens up to `tokens`, so that a long-lived server pays for it before its first request."""
    import torch

    if mode not in MODES:
        raise LmmError(f"unknown fastgen mode {mode!r}; pick one of {', '.join(MODES)}")
    auto, mode = mode == "auto", _resolve(model, mode)
    if mode != "generate":
        with _LOCK, torch.inference_mode():
            _decoder(model, tokens, mode, temperature > 0, fallback=auto)


def fast_generate(
    model: Any,
    tokenizer: Any | None,
    input_ids: Any,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    *,
    mode: str = "auto",
    check_every: int = 32,
    eos_token_ids: Sequence[int] | None = None,
) -> list[int]:
    """New token ids for one prompt (`input_ids`: ids, shape (P,) or (1, P)), EOS included.

    Greedy at temperature 0, else softmax sampling at `temperature`. `model` is a loaded
    transformers causal LM; "auto" decodes with a compiled CUDA graph on CUDA (the first call
    compiles: about a minute, see `warm`) and calls `model.generate` on CPU. `eos_token_ids`
    defaults to the generation config's and the tokenizer's EOS."""
    import torch

    if mode not in MODES:
        raise LmmError(f"unknown fastgen mode {mode!r}; pick one of {', '.join(MODES)}")
    if max_new_tokens < 1 or check_every < 1:
        raise LmmError("max_new_tokens and check_every must be at least 1")
    auto, mode = mode == "auto", _resolve(model, mode)
    ids = torch.as_tensor(input_ids, dtype=torch.long, device=model.device).reshape(1, -1)
    eos = eos_ids(model, tokenizer) if eos_token_ids is None else [int(t) for t in eos_token_ids]
    if mode == "generate":
        pad = getattr(tokenizer, "pad_token_id", None)
        pad = pad if pad is not None else (eos or [0])[0]
        return _plain_generate(model, ids, max_new_tokens, temperature, eos, pad)
    needed = ids.shape[1] + max_new_tokens
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and needed > limit:
        raise LmmError(
            f"prompt ({ids.shape[1]} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
            f"model's {limit} positions; shorten the prompt or ask for fewer tokens"
        )
    with _LOCK, torch.inference_mode():
        dec = _decoder(model, needed, mode, temperature > 0, fallback=auto)
        dec.temperature.fill_(max(temperature, 1e-6))
        return decode(dec, ids, max_new_tokens, eos, check_every)
