"""Decode speed at batch 1 for the Qwen3-1.7B shape: plain `generate` (dynamic cache), `generate`
with a static cache (transformers compiles its decode step on CUDA) and lmm.lm.fastgen (CUDA
graph of the whole step, eager or inductor-compiled forward), measured in one run on one device.

    PYTHONUNBUFFERED=1 python bench/decode_speed.py             # GPU: random Qwen3-1.7B, bf16
    python bench/decode_speed.py --smoke                        # CPU: tiny config, every path
                                                                # except CUDA graphs, seconds

Model: Qwen3Config hidden 2048, intermediate 6144, 28 layers, 16 heads, 8 KV heads, head_dim 128,
vocab 151936, tied embeddings, random weights. Prompt: --prompt random ids, then --new tokens.
Per method: first call seconds (compile/capture included), prefill ms (median time of a
max_new_tokens=1 call), decode tokens/s ((new - 1) / (median time of a full call - prefill)), and
how many of the first 32 greedy tokens equal static generate's. Random weights give nearly tied
logits, so bf16 rounding differences between kernels flip tokens early; hence a second check,
teacher forcing: one full forward over prompt + the method's tokens, and per position the gap
between the best logit and the chosen token's (0 = argmax). A decoding bug shows as gaps of the
size of the logits' spread; rounding as rare small ones, as for static generate itself.
Floor: bytes one decode step must read (every weight once, tied embeddings once, plus the KV cache
at the mean context) over the memory bandwidth of a large device-to-device copy. Last: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from lmm.lm import fastgen

FULL = dict(
    hidden_size=2048,
    intermediate_size=6144,
    num_hidden_layers=28,
    num_attention_heads=16,
    num_key_value_heads=8,
    head_dim=128,
    vocab_size=151936,
    tie_word_embeddings=True,
)
# untied: a tiny random model with tied embeddings only repeats its last input token
SMOKE = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    vocab_size=1000,
    tie_word_embeddings=False,
)
ROW = "{:22} {:>12} {:>11} {:>13} {:>10} {:>8} {:>9} {:>7}"


def build_model(shape: dict[str, Any], device: str, dtype: torch.dtype) -> Any:
    config = transformers.Qwen3Config(
        **shape,
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        eos_token_id=None,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.Qwen3ForCausalLM(config)
    model = model.to(dtype).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    return model


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device: str) -> float:
    """Bytes/s of a large copy, counting bytes read plus bytes written (median of 10)."""
    n = (1 << 30) if device == "cuda" else (1 << 26)  # elements of float32: 4 GiB / 256 MiB
    a = torch.rand(n, device=device)
    b = torch.empty_like(a)
    times = []
    for _ in range(12):
        sync(device)
        t = time.perf_counter()
        b.copy_(a)
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * a.numel() * a.element_size() / statistics.median(times[2:])


def bytes_per_token(model: Any, context: float) -> tuple[int, float]:
    """(weight bytes, KV bytes at `context`); parameters() yields tied embeddings once."""
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    c = model.config
    kv = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim * model.dtype.itemsize
    return weights, kv * context


def generate_fn(model: Any, ids: torch.Tensor, static: bool) -> Callable[[int], list[int]]:
    extra = {"cache_implementation": "static"} if static else {}

    def run(n: int) -> list[int]:
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=0,
                **extra,
            )
        return [int(t) for t in out[0, ids.shape[1] :].tolist()]

    return run


def fastgen_fn(model: Any, ids: torch.Tensor, mode: str) -> Callable[[int], list[int]]:
    # EOS id -1 is never produced, but keeps the per-chunk EOS checks (a host sync each 32
    # tokens, as synthesis has them) inside the timing
    return lambda n: fastgen.fast_generate(model, None, ids, n, mode=mode, eos_token_ids=[-1])


def measure(
    fn: Callable[[int], list[int]], new: int, repeats: int, device: str, warm_n: int
) -> dict[str, Any]:
    def timed(n: int) -> tuple[list[int], float]:
        sync(device)
        t = time.perf_counter()
        tokens = fn(n)
        sync(device)
        return tokens, time.perf_counter() - t

    _, first = timed(warm_n)
    fulls = [timed(new) for _ in range(repeats)]
    prefill = statistics.median(timed(1)[1] for _ in range(repeats))
    full = statistics.median(s for _, s in fulls)
    tokens = fulls[0][0]
    if len(tokens) != new:
        raise RuntimeError(f"expected {new} tokens, got {len(tokens)}")
    # None when timing noise swamps the decode time (a busy CPU in --smoke)
    rate = round((new - 1) / (full - prefill), 1) if full > 1.05 * prefill else None
    return {
        "first_call_s": round(first, 2),
        "prefill_ms": round(prefill * 1e3, 2),
        "decode_tok_s": rate,
        "full_call_s": round(full, 4),
        "tokens": tokens,
    }


def profile(fn: Callable[[int], list[int]], n: int) -> None:
    """Device kernels of one `n`-token call, by total time (kernels inside CUDA graphs too)."""
    from torch.profiler import ProfilerActivity

    with torch.profiler.profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn(n)
        torch.cuda.synchronize()
    print(
        prof.key_averages().table(
            sort_by="device_time_total", row_limit=18, max_name_column_width=70
        )
    )


def teacher_forced(model: Any, ids: torch.Tensor, tokens: list[int]) -> dict[str, float]:
    """Share of tokens that are the argmax of a full, cache-free forward, and the worst gap."""
    new = torch.tensor([tokens], device=ids.device)
    with torch.inference_mode():
        logits = model(torch.cat([ids, new[:, :-1]], dim=1), use_cache=False).logits
    logits = logits[0, ids.shape[1] - 1 :].float()  # position t predicts token t + 1
    gap = logits.max(dim=-1).values - logits.gather(1, new[0, :, None])[:, 0]
    return {
        "tf_argmax_share": round(float((gap == 0).float().mean()), 3),
        "tf_max_gap": round(float(gap.max()), 3),
        "logit_std": round(float(logits.std()), 3),
    }


def leading_match(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true", help="tiny config on CPU (float32)")
    ap.add_argument("--prompt", type=int, default=512, help="prompt tokens")
    ap.add_argument("--new", type=int, default=256, help="new tokens per call")
    ap.add_argument("--repeats", type=int, default=3, help="timed calls per method (median)")
    ap.add_argument("--methods", default="", help="comma list; default: all for the device")
    ap.add_argument("--json-out", type=Path, help="also write the JSON result here")
    ap.add_argument("--profile", default="", help="comma list of methods to profile (kernels)")
    args = ap.parse_args()

    device = "cpu" if args.smoke or not torch.cuda.is_available() else "cuda"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    shape = SMOKE if args.smoke else FULL
    prompt, new = (32, 16) if args.smoke else (args.prompt, args.new)
    card = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"device {card}; torch {torch.__version__}; transformers {transformers.__version__}")

    t = time.perf_counter()
    model = build_model(shape, device, dtype)
    attention = model.config._attn_implementation
    print(f"model built in {time.perf_counter() - t:.1f}s; attention {attention}")
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, shape["vocab_size"], (1, prompt), generator=g).to(device)

    methods: dict[str, Callable[[int], list[int]]] = {
        "generate dynamic": generate_fn(model, ids, static=False),
        "generate static": generate_fn(model, ids, static=True),
        "fastgen graph": fastgen_fn(model, ids, "graph"),
        "fastgen compile": fastgen_fn(model, ids, "compile"),
        "fastgen compile-notune": fastgen_fn(model, ids, "compile"),
        "fastgen eager": fastgen_fn(model, ids, "eager"),
    }
    default = ["generate dynamic", "generate static"]
    gpu = ["fastgen graph", "fastgen compile"]  # "fastgen compile-notune": --methods
    default += ["fastgen eager"] if device == "cpu" else gpu
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()] or default

    results: dict[str, dict[str, Any]] = {}
    for name in chosen:
        t = time.perf_counter()
        model.__dict__.pop("_lmm_fastgen", None)  # each fastgen method builds its own decoder
        tuned = name != "fastgen compile-notune"
        fastgen.COMPILE_OPTIONS = {"coordinate_descent_tuning": True} if tuned else {}
        try:  # one failing method must not hide the others' numbers
            warm_n = 8 if name == "generate dynamic" else new  # static caches are sized by new
            results[name] = measure(methods[name], new, args.repeats, device, warm_n)
            results[name].update(teacher_forced(model, ids, results[name]["tokens"]))
            if name in args.profile.split(","):
                profile(methods[name], 64)
        except Exception as exc:  # reported in the table and the JSON
            results[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        shown = {k: v for k, v in results[name].items() if k != "tokens"}
        print(f"  {name}: {time.perf_counter() - t:.1f}s {shown}")

    bw = copy_bandwidth(device)
    weights, kv = bytes_per_token(model, prompt + new / 2)
    floor = bw / (weights + kv)
    reference = results.get("generate static") or results.get("generate dynamic") or {}
    ref = reference.get("tokens")
    base = results.get("generate dynamic", {}).get("decode_tok_s")
    print(f"\n{card}, batch 1, prompt {prompt}, new {new}, {dtype}, median of {args.repeats}")
    head = ("method", "first call s", "prefill ms", "decode tok/s", "x dynamic", "match32")
    print(ROW.format(*head, "tf argmax", "tf gap"))
    for name, r in results.items():
        if "error" in r:
            print(f"{name:22} failed: {r['error']}")
            continue
        rate = r["decode_tok_s"]
        speedup = f"{rate / base:.1f}" if base and rate else "-"
        match = leading_match(r["tokens"][:32], ref[:32]) if ref else 0
        r["match32"], r["match_all"] = match, leading_match(r["tokens"], ref or [])
        r["distinct_tokens"] = len(set(r["tokens"]))
        cells = (r["first_call_s"], r["prefill_ms"], rate or "noise", speedup, f"{match}/32")
        print(ROW.format(name, *cells, r["tf_argmax_share"], r["tf_max_gap"]))
    print(ROW.format("floor (bandwidth)", "", "", f"{floor:.0f}", "", "", "", ""))
    print(
        f"floor: {weights / 1e9:.2f} GB weights + {kv / 1e6:.1f} MB KV read per token at "
        f"{bw / 1e12:.2f} TB/s (device-to-device copy, read + write)"
    )
    for r in results.values():
        r.pop("tokens", None)
    summary = {
        "bench": "decode_speed",
        "device": card,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "dtype": str(dtype),
        "prompt": prompt,
        "new": new,
        "repeats": args.repeats,
        "copy_bandwidth_Bps": round(bw),
        "bytes_per_token": round(weights + kv),
        "floor_tok_s": round(floor, 1),
        "methods": results,
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
