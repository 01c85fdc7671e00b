"""Where `lmm embed` spends its time, and the embedding before/after, in one process.

    PYTHONPATH=src .venv/bin/python bench/embed_speed.py [DIR] [--groups 4] [--no-torch]

DIR defaults to ../shared/data/claude_sessions (real Claude Code transcripts). Stores get the
same transcripts, group by group (the files split into --groups parts): after each group every
store is embedded, the variants' order reversed on every other group, so all see the same
machine load. Variants: `before`, the code before the speed work: float32 MiniLM through
sentence-transformers, 64 texts per model call in turn order; `torch`, the same model with 1,024
texts per call (sorted by length by sentence-transformers); `onnx`, lmm's default now: float32
MiniLM through ONNX Runtime (`embed_onnx`), 1,024 texts per call, run sorted by length, repeats
once; `int8`, the same with int8 MatMuls (LMM_EMBED_BACKEND=onnx-int8). All embed the same
texts. (Tool-call inputs cut to their start, and int8 Linear layers in torch, were measured
with this bench and dropped: docs/benchmarks.md.)

The profile first: texts per kind (turn keys, sentence parts), word pieces per text after the
tokenizer, padding (the share of a batch's word pieces that are padding, in turn order and
sorted by length), tokenizer time; at the end, how each variant's stored vectors agree with
before's, text by text (turn keys and sentence parts).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "claude_sessions"
sys.path.insert(0, str(ROOT / "src"))

from lmm.ingest.run import ingest  # noqa: E402
from lmm.retrieve import embed  # noqa: E402
from lmm.retrieve.embed import (  # noqa: E402
    BATCH,
    CHUNK,
    DEFAULT_MODEL,
    Embedder,
    KeyRecipe,
    SentenceTransformerEmbedder,
    embed_pending,
    packaged_minilm,
    pending_turn_keys,
    turn_parts,
)
from lmm.retrieve.embed_onnx import OnnxEmbedder  # noqa: E402
from lmm.store.db import Store  # noqa: E402


def texts_of(store: Store) -> tuple[list[str], list[str]]:
    """(turn keys, sentence parts) that `embed_pending` would embed in `store`."""
    keys = [k for _, k in pending_turn_keys(store, "nothing-yet", KeyRecipe())]
    rows = store.db.execute(
        "SELECT role, speaker, text FROM turns WHERE kind IN ('message', 'compact_summary', "
        "'summary') AND length(text) > 0 ORDER BY id"
    ).fetchall()
    parts = [embed._spoken(r, p, KeyRecipe()) for r in rows for p in turn_parts(r["text"] or "")]
    return keys, parts


def padding(lengths: list[int], batch: int, chunk: int) -> float:
    """Share of padded word pieces when `chunk` texts at a time are sorted by length and cut
    into batches of `batch` (chunk == batch: turn order)."""
    real = padded = 0
    for i in range(0, len(lengths), chunk):
        part = lengths[i : i + chunk]
        part = sorted(part) if chunk > batch else part
        for j in range(0, len(part), batch):
            b = part[j : j + batch]
            real += sum(b)
            padded += max(b) * len(b)
    return 1 - real / padded if padded else 0.0


def profile(name: str, keys: list[str], parts: list[str], tokenizer: Any, chunk: int) -> None:
    for kind, texts in (("turn keys", keys), ("parts", parts)):
        t = time.perf_counter()
        ids = tokenizer(texts, truncation=True, max_length=256)["input_ids"] if texts else []
        tok_s = time.perf_counter() - t
        lengths = [len(x) for x in ids]
        a = np.array(lengths or [0])
        print(
            f"{name:<7} {kind:<9} {len(texts):>6} texts  word pieces p50 {np.median(a):>4.0f} "
            f"p90 {np.percentile(a, 90):>4.0f} mean {a.mean():>5.1f} "
            f"at 256: {(a >= 256).mean():5.1%}"
            f"  total {a.sum():>8,}  padding {padding(lengths, BATCH, chunk):5.1%}"
            f"  tokenizer {tok_s:5.2f} s"
        )


def forward_share(model: SentenceTransformerEmbedder, texts: list[str]) -> str:
    """Tokenizer against model time for one call on `texts`."""
    st = model.model
    tokenize = getattr(st, "preprocess", None) or st.tokenize  # sentence-transformers >= 6
    t = time.perf_counter()
    tokenize(texts)
    tok = time.perf_counter() - t
    t = time.perf_counter()
    model.embed(texts)
    total = time.perf_counter() - t
    return f"tokenizer {tok:.2f} s of {total:.2f} s ({tok / total:.1%})"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", type=Path, default=DATA)
    ap.add_argument("--groups", type=int, default=4, help="ingest and embed in this many parts")
    ap.add_argument("--no-torch", action="store_true", help="before and onnx only")
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"no transcripts at {args.data}: the shared data is absent", file=sys.stderr)
        return 1
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, data {args.data}")  # fmt: skip
    # a group passes single files: those the folder ingest skips (not transcripts) then fail
    # loudly as generic JSON; the turn counts below are checked against the folder ingest
    logging.getLogger("lmm.ingest.run").setLevel(logging.CRITICAL)
    folder = packaged_minilm()
    f32 = SentenceTransformerEmbedder(str(folder), name=DEFAULT_MODEL)
    t = time.perf_counter()
    onnx = OnnxEmbedder(folder, DEFAULT_MODEL)  # lmm's default
    t1 = time.perf_counter()
    int8 = OnnxEmbedder(folder, DEFAULT_MODEL, quantize=True)  # LMM_EMBED_BACKEND=onnx-int8
    print(f"onnx models ready in {t1 - t:.1f} s (float32), {time.perf_counter() - t1:.1f} s "
          f"(int8): {onnx.path.parent}")  # fmt: skip
    # name -> (embedder, texts per embed call)
    variants: dict[str, tuple[Embedder, int]] = {
        "before": (f32, BATCH), "torch": (f32, CHUNK), "onnx": (onnx, CHUNK), "int8": (int8, CHUNK)
    }  # fmt: skip
    if args.no_torch:
        del variants["torch"]
    files = sorted(args.data.rglob("*.jsonl"))
    groups = [files[i :: args.groups] for i in range(args.groups)]
    tmp = Path(tempfile.mkdtemp())
    try:
        # ---- profile on the whole set
        with Store(tmp / "all.db") as store:
            ingest(store, [args.data])
            keys, parts = texts_of(store)
        profile("before", keys, parts, f32.model.tokenizer, BATCH)
        profile("after", keys, parts, f32.model.tokenizer, CHUNK)
        sample = keys[:128]
        print(f"float32 torch, 128 keys in one call: {forward_share(f32, sample)}")
        # ---- interleaved: every store gets the same files, then each embeds them
        seconds = dict.fromkeys(variants, 0.0)
        counts = {n: [0, 0] for n in variants}
        stores = {n: Store(tmp / f"{n}.db") for n in variants}
        for g, group in enumerate(groups):
            for store in stores.values():
                ingest(store, group)
            order = list(variants) if g % 2 == 0 else list(reversed(variants))
            for name in order:
                embedder, batch = variants[name]
                t = time.perf_counter()
                r = embed_pending(stores[name], embedder, batch=batch)
                dt = time.perf_counter() - t
                seconds[name] += dt
                counts[name][0] += r.turns
                counts[name][1] += r.parts
                print(f"group {g + 1}/{len(groups)} {name:<6} {r.turns:>5} turns {r.parts:>5} "
                      f"parts {dt:7.1f} s  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        assert all(c == counts["before"] for c in counts.values()), counts
        assert counts["before"][0] == len(keys), (counts, len(keys))
        for name, s in seconds.items():
            turns, n_parts = counts[name]
            print(f"{name:<6} {turns} turns + {n_parts} parts in {s:.1f} s: {turns / s:.1f} "
                  f"turns/s, {(turns + n_parts) / s:.1f} texts/s")  # fmt: skip
        vecs = {name: stored_vectors(store) for name, store in stores.items()}
        for store in stores.values():
            store.close()
        for name in variants:
            for kind in ("turn keys", "parts") if name != "before" else ():
                cos = (vecs["before"][kind] * vecs[name][kind]).sum(1)
                print(f"{name} vs before, {kind}: cosine mean {cos.mean():.4f}, p1 "
                      f"{np.percentile(cos, 1):.4f}, min {cos.min():.4f}, under 0.97: "
                      f"{int((cos < 0.97).sum())} of {len(cos)}")  # fmt: skip
        for name in variants:
            if name != "before":
                print(f"embed speed, {name} against before: "
                      f"{seconds['before'] / seconds[name]:.2f}x")  # fmt: skip
        if "torch" in variants:
            print(f"embed speed, onnx against torch: {seconds['torch'] / seconds['onnx']:.2f}x")
        print(f"embed speed, int8 against onnx: {seconds['onnx'] / seconds['int8']:.2f}x")
        print(f"(before {seconds['before']:.1f} s, onnx {seconds['onnx']:.1f} s, "
              f"load {os.getloadavg()[0]:.1f})")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def stored_vectors(store: Store) -> dict[str, np.ndarray]:
    """A store's turn-key vectors and sentence vectors, each in (session, turn key) order."""
    out = {}
    for kind, label in (("turn", "turn keys"), ("turn_parts", "parts")):
        rows = store.db.execute(
            "SELECT v.vec FROM vectors v JOIN turns t ON t.id = v.item_id "
            "WHERE v.item_kind = ? ORDER BY t.session_id, t.key",
            (kind,),
        ).fetchall()
        out[label] = np.frombuffer(b"".join(r[0] for r in rows), "<f4").reshape(-1, 384)
    return out


if __name__ == "__main__":
    sys.exit(main())
