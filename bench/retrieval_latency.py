"""Retrieval latency of `lmm.retrieve.search.retrieve` on synthetic stores of 10k, 100k (and 1M)
chunks.

    .venv/bin/python bench/retrieval_latency.py                     # 10k and 100k
    .venv/bin/python bench/retrieval_latency.py --sizes 1000000 --keep /tmp/lmm-latency
    .venv/bin/python bench/retrieval_latency.py --fake --sizes 2000  # smoke, no model

Each store is built through `Store.add_turns` (redaction, FTS5 and turn_keys triggers included):
sessions of 200 turns in 24 projects (some nested, as in a monorepo), text drawn word by word
from the word frequencies of Python's standard library sources, so common words are common. The
dense side holds RANDOM unit vectors of dim 384 (embedding 1M chunks with MiniLM on 2 cores would
take a day); queries are embedded by the real MiniLM, so query-embedding time is real and the
matrix work is the same as with real vectors. Times: `embed` (the query vector alone),
`search` (retrieve with the query vector already known), `total` (retrieve with the model), and
`search` split into its keyword-only and dense-only runs; p50/p95 over --queries queries, each
scoped to one project (1/24 of the store) and unscoped.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmm.records import SessionInfo, Turn
from lmm.retrieve.embed import Embedder, FakeEmbedder, get_embedder
from lmm.retrieve.search import dense_query, participants, retrieve, scope_projects
from lmm.retrieve.search_config import SearchConfig
from lmm.store.db import Store

DIM = 384
SPACE = "random-384"
SESSION_TURNS = 200
PROJECTS = [f"/home/dev/app{i}" for i in range(16)] + [
    f"/home/dev/mono/{p}" for p in ("api", "web", "cli", "docs", "infra", "sdk", "ml", "ops")
]


@dataclass
class Memo:
    """The query model under the store's vector-space name, optionally remembering vectors."""

    inner: Embedder
    remember: bool
    name: str = SPACE
    dim: int = DIM
    memory: dict[str, np.ndarray] = field(default_factory=dict)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not self.remember:
            return self.inner.embed(texts)
        missing = [t for t in texts if t not in self.memory]
        if missing:
            self.memory.update(zip(missing, self.inner.embed(missing), strict=True))
        return np.stack([self.memory[t] for t in texts])


def vocabulary(limit: int = 30_000) -> tuple[list[str], np.ndarray]:
    """Words of the standard library's sources and their frequencies (a Zipf-like law)."""
    counts: Counter[str] = Counter()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:400]:
        counts.update(re.findall(r"[a-z]{2,}", path.read_text(errors="ignore").lower()))
    words, freq = zip(*counts.most_common(limit), strict=True)
    p = np.array(freq, dtype=np.float64)
    return list(words), p / p.sum()


def build(path: Path, n: int, rng: np.random.Generator) -> float:
    """A store of `n` turns with random vectors; returns seconds taken."""
    start = time.perf_counter()
    words, p = vocabulary()
    store = Store(path)
    lengths = rng.integers(8, 60, size=n)
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=p)
    cuts = np.concatenate([[0], np.cumsum(lengths)])
    batch: list[Turn] = []
    with store.transaction():
        for s in range((n + SESSION_TURNS - 1) // SESSION_TURNS):
            sid = f"s{s:06d}"
            store.add_session(SessionInfo(sid, "claude", project=PROJECTS[s % len(PROJECTS)]))
    for i in range(n):
        sid = f"s{i // SESSION_TURNS:06d}"
        text = " ".join(words[w] for w in drawn[cuts[i] : cuts[i + 1]])
        role = "user" if i % 2 == 0 else "assistant"
        stamp = f"2025-{1 + (i * 12) // n:02d}-{1 + i % 28:02d}T10:00:00.000Z"
        batch.append(Turn(session_id=sid, key=f"t{i}", role=role, kind="message", text=text,
                          uuid=f"u{i}", timestamp=stamp))  # fmt: skip
        if len(batch) == 20_000 or i == n - 1:
            with store.transaction():
                store.add_turns(batch)
            batch = []
    with store.transaction() as db:
        db.execute("INSERT INTO embedders (model, dim) VALUES (?, ?)", (SPACE, DIM))
        for lo in range(1, n + 1, 50_000):
            hi = min(n, lo + 49_999)
            vecs = rng.standard_normal((hi - lo + 1, DIM)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            db.executemany(
                "INSERT INTO vectors (item_kind, item_id, model, dim, vec) VALUES "
                "('turn', ?, ?, ?, ?)",
                [(lo + j, SPACE, DIM, v.tobytes()) for j, v in enumerate(vecs)],
            )
    store.close()
    return time.perf_counter() - start


def queries(count: int, rng: np.random.Generator) -> list[str]:
    """Prompts of 4-14 words from the same word law (stopwords are dropped by retrieve)."""
    words, p = vocabulary()
    return [" ".join(words[w] for w in rng.choice(len(words), size=rng.integers(4, 15), p=p))
            for _ in range(count)]  # fmt: skip


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else 0


def measure(path: Path, model: Embedder, texts: list[str], rng: np.random.Generator) -> None:
    store = Store(path)
    scopes: dict[str, str | None] = {"scoped": None, "unscoped": None}
    memo, live = Memo(model, remember=True), Memo(model, remember=False)
    t = time.perf_counter()
    retrieve(store, texts[0], embedder=memo)  # loads the matrix and the turn layout
    print(f"  cold start (load vectors and layout): {time.perf_counter() - t:.2f} s")
    keyword_only, dense_only = SearchConfig(dense=False), SearchConfig(keyword=False)
    for mode in scopes:
        embed_ms, search_ms, total_ms, kw_ms, dense_ms = [], [], [], [], []
        for q in texts:
            project = PROJECTS[int(rng.integers(len(PROJECTS)))] if mode == "scoped" else None
            names = participants(store, q, scope_projects(store, project))
            t = time.perf_counter()
            memo.memory[dense_query(q, names)] = model.embed([dense_query(q, names)])[0]
            embed_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            retrieve(store, q, project=project, k=10, embedder=memo)
            search_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            retrieve(store, q, project=project, k=10, embedder=live)
            total_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            retrieve(store, q, project=project, k=10, config=keyword_only)
            kw_ms.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            retrieve(store, q, project=project, k=10, embedder=memo, config=dense_only)
            dense_ms.append(1000 * (time.perf_counter() - t))
        parts = (("embed", embed_ms), ("search", search_ms), ("total", total_ms),
                 ("keyword-only", kw_ms), ("dense-only", dense_ms))  # fmt: skip
        cells = "  ".join(f"{name} {pct(v, 50):.1f}/{pct(v, 95):.1f}" for name, v in parts)
        print(f"  {mode:<9} p50/p95 ms: {cells}", flush=True)
    store.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", type=Path, help="folder keeping built stores for later runs")
    ap.add_argument("--fake", action="store_true", help="hash embedder for queries (smoke)")
    args = ap.parse_args(argv)
    model: Embedder = FakeEmbedder(dim=DIM) if args.fake else get_embedder()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="lmm-latency-"))
    folder.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        rng = np.random.default_rng(n)
        path = folder / f"store-{n}.db"
        if not path.exists():
            seconds = build(path, n, rng)
            mb = path.stat().st_size / 1e6
            print(f"{n} chunks: built in {seconds:.0f} s ({mb:.0f} MB)", flush=True)
        else:
            print(f"{n} chunks: reusing {path}")
        measure(path, model, queries(args.queries, rng), rng)
        if args.keep is None:
            for f in folder.glob(f"store-{n}.db*"):
                f.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
