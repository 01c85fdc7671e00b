"""Where `lmm embed` spends its time, and the embedding before/after, in one process.

    PYTHONPATH=src .venv/bin/python bench/embed_speed.py [DIR] [--groups 4]

DIR defaults to ../shared/data/claude_sessions (real Claude Code transcripts). Two stores get the
same transcripts, group by group (the files split into --groups parts): after each group both
are embedded, `before` and `after` alternating which goes first, so both see the same machine
load. `before` is the previous recipe: float32 MiniLM, 64 texts per model call in turn order;
`after` is lmm's default: int8 Linear layers (`embed.quantize_linear`), 1,024 texts per call (the
model sorts them by length). Both embed the same texts. (A third variant, tool-call inputs cut
to their start in keys and left out of sentence vectors, was measured with this bench and
dropped: it cost CodeMem 3 points of answers.)

The profile first: texts per kind (turn keys, sentence parts), word pieces per text after the
tokenizer, padding (the share of a batch's word pieces that are padding, in turn order and
sorted by length), tokenizer time, and how the vectors of both agree (cosine of each turn key's
vector, before against after, and the same text through float32 and int8).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "claude_sessions"
sys.path.insert(0, str(ROOT / "src"))

from lmm import embed  # noqa: E402
from lmm.embed import (  # noqa: E402
    BATCH,
    CHUNK,
    DEFAULT_MODEL,
    KeyRecipe,
    SentenceTransformerEmbedder,
    embed_pending,
    packaged_minilm,
    pending_turn_keys,
    turn_parts,
)
from lmm.ingest import ingest  # noqa: E402
from lmm.store import Store  # noqa: E402


@contextlib.contextmanager
def before_recipe() -> Iterator[None]:
    """The previous texts: the same as today's (kept as a seam for a recipe that differs)."""
    yield


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
    args = ap.parse_args(argv)
    if not args.data.exists():
        print(f"no transcripts at {args.data}: the shared data is absent", file=sys.stderr)
        return 1
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, data {args.data}")  # fmt: skip
    # a group passes single files: those the folder ingest skips (not transcripts) then fail
    # loudly as generic JSON; the turn counts below are checked against the folder ingest
    logging.getLogger("lmm.ingest").setLevel(logging.CRITICAL)
    folder = str(packaged_minilm())
    old = SentenceTransformerEmbedder(folder, name=DEFAULT_MODEL)
    new = SentenceTransformerEmbedder(folder, name=DEFAULT_MODEL, quantize=True)
    files = sorted(args.data.rglob("*.jsonl"))
    groups = [files[i :: args.groups] for i in range(args.groups)]
    tmp = Path(tempfile.mkdtemp())
    try:
        # ---- profile on the whole set
        with Store(tmp / "all.db") as store:
            ingest(store, [args.data])
            with before_recipe():
                keys0, parts0 = texts_of(store)
            keys1, parts1 = texts_of(store)
        profile("before", keys0, parts0, old.model.tokenizer, BATCH)
        profile("after", keys1, parts1, new.model.tokenizer, CHUNK)
        sample = keys0[:128]
        print(f"before, 128 keys in one call: {forward_share(old, sample)}")
        print(f"after, 128 keys in one call: {forward_share(new, sample)}")
        same = (old.embed(sample) * new.embed(sample)).sum(1)
        print(f"same text, float32 vs int8: cosine mean {same.mean():.3f}, p5 "
              f"{np.percentile(same, 5):.3f}, min {same.min():.3f}")  # fmt: skip
        # ---- interleaved: both stores get the same files, then both embed
        seconds = {"before": 0.0, "after": 0.0}
        counts = {"before": [0, 0], "after": [0, 0]}
        stores = {n: Store(tmp / f"{n}.db") for n in seconds}
        for g, group in enumerate(groups):
            for store in stores.values():
                ingest(store, group)
            order = ["before", "after"] if g % 2 == 0 else ["after", "before"]
            for name in order:
                t = time.perf_counter()
                if name == "before":
                    with before_recipe():
                        r = embed_pending(stores[name], old, batch=BATCH)
                else:
                    r = embed_pending(stores[name], new)
                dt = time.perf_counter() - t
                seconds[name] += dt
                counts[name][0] += r.turns
                counts[name][1] += r.parts
                print(f"group {g + 1}/{len(groups)} {name:<6} {r.turns:>5} turns {r.parts:>5} "
                      f"parts {dt:7.1f} s  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        assert counts["before"][0] == counts["after"][0] == len(keys0), (counts, len(keys0))
        for name, s in seconds.items():
            turns, parts = counts[name]
            print(f"{name:<6} {turns} turns + {parts} parts in {s:.1f} s: {turns / s:.1f} turns/s, "
                  f"{(turns + parts) / s:.1f} texts/s")  # fmt: skip
        vecs = {}
        for name, store in stores.items():
            vecs[name] = dict(
                store.db.execute(
                    "SELECT t.session_id || '/' || t.key, v.vec FROM vectors v "
                    "JOIN turns t ON t.id = v.item_id WHERE v.item_kind = 'turn'"
                ).fetchall()
            )
            store.close()
        common = sorted(set(vecs["before"]) & set(vecs["after"]))
        a = np.stack([np.frombuffer(vecs["before"][k], "<f4") for k in common])
        b = np.stack([np.frombuffer(vecs["after"][k], "<f4") for k in common])
        cos = (a * b).sum(1)
        print(f"turn vectors, before vs after: cosine mean {cos.mean():.3f}, p5 "
              f"{np.percentile(cos, 5):.3f} ({len(common)} turns)")  # fmt: skip
        print(f"embed speed: {seconds['before'] / seconds['after']:.2f}x "
              f"(before {seconds['before']:.1f} s, after {seconds['after']:.1f} s, "
              f"load {os.getloadavg()[0]:.1f})")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
