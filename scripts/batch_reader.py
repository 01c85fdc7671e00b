"""Answer exported reader prompts in batches on whatever device is there (a GPU, typically).

`lmm eval locomo-qa --export-prompts FILE` writes the prompts a CPU run has not answered yet;
on a GPU machine with torch and transformers (and `gguf` for a .gguf model):

    PYTHONPATH=src python scripts/batch_reader.py FILE --model MODEL.gguf --out ANSWERS.jsonl

then append ANSWERS.jsonl to the run's answers.jsonl and run the same `lmm eval locomo-qa`
command again: every answer is now cached, so it only scores and reports. Greedy decoding, left
padding, prompts sorted by length; each row records the backend that answered it. Imports only
json, torch and transformers (a trained run also peft and lmm.train), so it runs without the rest
of lmm's dependencies.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ANSWER_TOKENS = 32


def load(model: str, device: str) -> tuple[Any, Any]:
    import torch
    import transformers

    path = Path(model)
    if path.is_dir():
        from lmm.lm.trained import is_trained_dir, load_trained

        if is_trained_dir(path):  # an `lmm train` run or an adapter: merged into its base
            loaded = load_trained(path, device=device)
            tok = loaded.tokenizer
            tok.padding_side = "left"
            return tok, loaded.model.eval()
    kwargs: dict[str, Any] = {}
    where = model
    if path.suffix == ".gguf":
        where, kwargs = str(path.parent), {"gguf_file": path.name}
    tok = transformers.AutoTokenizer.from_pretrained(where, **kwargs)
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    lm: Any = transformers.AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    lm = lm.to(device)
    return tok, lm.eval()


def answer(rows: list[dict[str, Any]], tok: Any, lm: Any, batch: int) -> list[dict[str, Any]]:
    """`rows` (each with "messages") answered greedily, in their original order."""
    import torch

    texts = [tok.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
             for r in rows]  # fmt: skip
    order = sorted(range(len(rows)), key=lambda i: len(texts[i]))
    out: dict[int, dict[str, Any]] = {}
    backend = f"transformers-{lm.device.type}"
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True,
                  add_special_tokens=False).to(lm.device)  # fmt: skip
        t0 = time.perf_counter()
        with torch.inference_mode():
            gen = lm.generate(**enc, max_new_tokens=ANSWER_TOKENS, do_sample=False,
                              temperature=None, top_p=None, top_k=None,
                              pad_token_id=tok.pad_token_id)  # fmt: skip
        seconds = (time.perf_counter() - t0) / len(idx)
        for j, i in enumerate(idx):
            text = tok.decode(gen[j, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            row = {k: v for k, v in rows[i].items() if k != "messages"}
            out[i] = {**row, "prediction": text.strip(), "seconds": round(seconds, 3),
                      "backend": backend}  # fmt: skip
    return [out[i] for i in range(len(rows))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("prompts", type=Path)
    ap.add_argument(
        "--model", required=True, help="a .gguf file, a model folder or an `lmm train` run"
    )
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.prompts.read_text().splitlines() if line.strip()]
    tok, lm = load(args.model, args.device)
    t0 = time.perf_counter()
    answered = answer(rows, tok, lm, args.batch)
    with args.out.open("a") as f:
        for row in answered:
            f.write(json.dumps(row) + "\n")
    print(f"answered {len(rows)} prompts in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
