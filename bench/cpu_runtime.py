"""CPU runtimes side by side: transformers (lmm.lm.models.load: the GGUF dequantised to float32 or
bfloat16) and llama.cpp (llama-cpp-python reading the packaged GGUF as shipped), same model, same
prompt, interleaved in one run so the machine's load hits both alike.

    python bench/cpu_runtime.py                                  # every packaged model found
    python bench/cpu_runtime.py --models smollm2 --reps 1        # smoke run, seconds
    python bench/cpu_runtime.py --sweep qwen2.5-coder-0.5b       # pick transformers' best setting

Prompt: a memory brief request (`synth.prompt_messages`) over evidence from the CodeMemBench
transcripts in ../shared/data/codemem (ingested into a temporary LMM_HOME, retrieved for one
fixed query, --evidence-tokens of it, about 1,500 tokens), rendered by the model's own chat
template; both runtimes get the same text. Per runtime and model:
  prefill tok/s   prompt tokens / time to evaluate the prompt (no cache between repetitions)
  decode tok/s    150 tokens forced (no early stop) / their time after the prompt
  brief s         prompt + 150 tokens: the time to a 150-token brief
--llama-threads lists llama.cpp's thread counts to time (each a row).
The best of --reps repetitions is reported (the least disturbed by other work) with the load
average before each. --sweep first times transformers at 1 and 2 threads in float32 and
bfloat16 and llama.cpp at 1 and 2 threads on one model, and prints them. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lmm.lm import loaded, models, packaged

CODEMEM = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "codemem"
QUERY = "why did we switch the rate limiter from a fixed window and what broke when we did"
NEW = 150


def evidence_prompt(evidence_tokens: int) -> list[dict[str, str]]:
    """The brief request over ~`evidence_tokens` of CodeMemBench evidence."""
    from lmm import paths as lmm_paths
    from lmm.ingest.run import ingest
    from lmm.retrieve.search import retrieve
    from lmm.retrieve.synth import SynthConfig, prompt_messages, select_evidence
    from lmm.store.db import open_store

    if not CODEMEM.is_dir():
        sys.exit(f"no {CODEMEM}: this benchmark reads the CodeMemBench transcripts")
    os.environ["LMM_HOME"] = tempfile.mkdtemp(prefix="lmm-cpu-runtime-")
    assert lmm_paths.home().is_dir()
    with open_store() as store:
        ingest(store, [CODEMEM / "projects"])
        hits = retrieve(store, QUERY, k=40)
    cfg = SynthConfig(evidence_tokens=evidence_tokens, max_evidence=16, min_overlap=0.0)
    return prompt_messages(QUERY, select_evidence(QUERY, hits, cfg), 90)


# ---- transformers


def load_transformers(spec: str, dtype: str, threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    models.unload()
    os.environ["LMM_THREADS"] = str(threads)
    lm = models.load(spec, device="cpu")
    if dtype == "bfloat16":
        lm.model.to(torch.bfloat16)
    return lm


def time_transformers(lm: Any, prompt: str) -> dict[str, float]:
    import torch

    ids = lm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        start = time.perf_counter()
        lm.model(ids, use_cache=True)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        out = lm.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=NEW,
            min_new_tokens=NEW,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
        total = time.perf_counter() - start
    assert out.shape[1] - ids.shape[1] == NEW
    return row(ids.shape[1], prefill, total)


# ---- llama.cpp


def load_llama(spec: str, threads: int) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=str(packaged.PACKAGED[spec]()), n_ctx=4096, n_threads=threads,
                 n_threads_batch=threads, verbose=False)  # fmt: skip


def time_llama(llm: Any, prompt: str) -> dict[str, float]:
    tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    llm.reset()
    start = time.perf_counter()
    llm.eval(tokens)
    prefill = time.perf_counter() - start
    eos = llm.token_eos()
    for _ in range(NEW):  # greedy, end of text masked: the length is forced, as in transformers
        scores = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(llm.n_vocab(),))
        scores = scores.copy()
        scores[eos] = -np.inf
        llm.eval([int(scores.argmax())])
    total = time.perf_counter() - start
    return row(len(tokens), prefill, total)


def row(prompt_tokens: int, prefill: float, total: float) -> dict[str, float]:
    return {
        "prompt_tokens": prompt_tokens,
        "prefill_tok_s": prompt_tokens / prefill,
        "decode_tok_s": NEW / (total - prefill),
        "brief_s": total,
    }


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def best(rows: list[dict[str, float]]) -> dict[str, float]:
    return min(rows, key=lambda r: r["brief_s"])


def show(label: str, r: dict[str, float]) -> None:
    print(f"{label:44} {r['prompt_tokens']:>6.0f} {r['prefill_tok_s']:>9.1f} "
          f"{r['decode_tok_s']:>9.2f} {r['brief_s']:>8.1f}", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="smollm2,qwen2.5-coder-0.5b,qwen2.5-coder-1.5b")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--evidence-tokens", type=int, default=1_500)
    ap.add_argument("--tf-threads", type=int, default=2)
    ap.add_argument("--tf-dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--llama-threads", default="2", help="comma-separated thread counts")
    ap.add_argument("--sweep", help="time the runtimes' settings on this model first")
    args = ap.parse_args()

    messages = evidence_prompt(args.evidence_tokens)
    print(f"machine: {os.cpu_count()} cores; load average {load_avg()}", flush=True)
    head = f"{'runtime / model':44} {'prompt':>6} {'prefill/s':>9} {'decode/s':>9} {'brief s':>8}"
    results: dict[str, Any] = {"sweep": {}, "table": {}}

    if args.sweep:
        print(f"\nsettings on {args.sweep} (one repetition each)\n{head}")
        tf_prompt = None
        for dtype in ("float32", "bfloat16"):
            for threads in (1, 2):
                lm = load_transformers(args.sweep, dtype, threads)
                tf_prompt = loaded.render_prompt(lm.tokenizer, messages)
                r = time_transformers(lm, tf_prompt)
                results["sweep"][f"transformers {dtype} {threads}t"] = r
                show(f"transformers {dtype}, {threads} thread(s) [load {load_avg()}]", r)
        assert tf_prompt is not None
        for n in (1, 2):
            r = time_llama(load_llama(args.sweep, n), tf_prompt)
            results["sweep"][f"llama.cpp {n}t"] = r
            show(f"llama.cpp, {n} thread(s) [load {load_avg()}]", r)

    threads = [int(t) for t in args.llama_threads.split(",")]
    print(f"\ntransformers {args.tf_dtype} {args.tf_threads}t vs llama.cpp at {threads} threads, "
          f"best of {args.reps}, interleaved\n{head}")  # fmt: skip
    for spec in args.models.split(","):
        try:
            packaged.PACKAGED[spec]()
        except Exception as exc:  # a model whose packages are not installed
            print(f"{spec}: skipped ({exc})")
            continue
        tf = load_transformers(spec, args.tf_dtype, args.tf_threads)
        prompt = loaded.render_prompt(tf.tokenizer, messages)
        llms = {f"llama.cpp {t}t": load_llama(spec, t) for t in threads}
        runs: dict[str, list[dict[str, float]]] = {"transformers": [], **{k: [] for k in llms}}
        loads = []
        for _ in range(args.reps):
            loads.append(load_avg())
            runs["transformers"].append(time_transformers(tf, prompt))
            for name, llm in llms.items():
                loads.append(load_avg())
                runs[name].append(time_llama(llm, prompt))
        a = best(runs["transformers"])
        show(f"transformers {spec}", a)
        for name in llms:
            b = best(runs[name])
            show(f"{name} {spec}", b)
            ratio = {k: b[k] / a[k] for k in ("prefill_tok_s", "decode_tok_s")}
            ratio["brief_speedup"] = a["brief_s"] / b["brief_s"]
            r = ratio
            print(f"{'  ratio to transformers':44} {'':>6} {r['prefill_tok_s']:>8.2f}x "
                  f"{r['decode_tok_s']:>8.2f}x {r['brief_speedup']:>7.2f}x")  # fmt: skip
            results["table"].setdefault(spec, {})[name + " ratio"] = ratio
        print(f"  (load averages during the runs: {'; '.join(loads)})", flush=True)
        results["table"].setdefault(spec, {}).update({**runs, "load": loads})
        del tf, llms
        models.unload()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
