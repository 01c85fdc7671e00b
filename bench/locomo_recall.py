"""LoCoMo turn-level evidence recall@k of lmm's retrieval, against baselines run in one process.

    .venv/bin/python bench/locomo_recall.py [FILE]            # lmm, BM25, MiniLM, their RRF
    .venv/bin/python bench/locomo_recall.py --ablate          # + lmm with each step changed
    .venv/bin/python bench/locomo_recall.py --fake --conversations 1   # smoke, no model

FILE defaults to ../shared/data/locomo/locomo_dev.json. The file is ingested with the generic
importer into a temporary store (project "locomo/<sample_id>" per conversation); each question
retrieves top-k TURNS within its conversation's project. Recall@k (the paper's definition):
the fraction of a question's evidence dia_ids among the top-k turns, averaged over questions;
evidence ids absent from the conversation are dropped, questions left without any are skipped
and counted. The last line is `LoCoMo R@5=.. R@10=.. R@25=.. R@50=..` for lmm's defaults.

Baselines: `bm25` = FTS5 BM25 over the turn text, stopwords dropped, terms OR-ed; `dense` =
MiniLM on "Speaker: text" keys with the raw question; `rrf` = the two fused by RRF (k=60).

Measured on the dev half (997 questions with evidence, 2 skipped; all-MiniLM-L6-v2, CPU;
`--cache FILE.npz` keeps every embedded text between runs, so only the first run embeds):

    system                          R@5   R@10  R@25  R@50
    bm25                            49.3  57.2  66.1  72.1
    dense (MiniLM)                  36.9  46.6  59.8  70.6
    rrf(bm25, dense)                48.8  58.8  74.9  81.0
    lmm (defaults)                  77.6  85.1  90.8  94.2
    -rank term (z fusion only)      77.7  84.6  90.0  94.0
    -asked->reply (both halves)     73.6  84.1  89.9  94.1
    -reply share (ask keep only)    75.7  84.9  90.7  94.1
    -ask keep (reply share only)    75.2  84.2  90.0  93.9
    -sentence vectors               76.7  84.7  90.9  94.2
    -keys (BM25 on turn text only)  72.8  81.0  88.3  92.1
    -participants                   75.8  83.8  89.4  92.8
    -speaker in dense key           77.8  84.8  90.1  94.1
    +context in dense key           77.4  85.4  91.0  94.3   (not kept: 2x key length)
    +date in dense key              76.5  84.7  89.7  93.6   (not kept)
    -window (neighbour context)     75.1  83.9  89.8  93.8
    -session                        77.0  84.4  90.6  94.0
    -recency                        77.5  85.1  90.8  94.2   (neutral here; kept for code)
    rrf fusion k=10 / k=60          75.2 / 68.0   84.8 / 78.4
    -dense                          72.4  81.1  87.9  91.5
    -keyword                        67.3  78.6  86.0  90.2
    tried, no gain: time-words bonus for when-questions (+0.0..0.4), name-free dense keys,
    question-word stripping and keyword-only dense queries (-1..-2), Rocchio feedback (0),
    session-centroid prior (-0.5), neighbour/session diversification (-0.4..-1); and with the
    asked->reply step: cognitions in the dense key (77.6/84.6), a dense list over 3-turn
    windows (R@10 +-0.1), related-terms query expansion (77.7/84.7; whole words from a words
    table, set on conv-26/30: 78.1/84.7, 77.3/83.7 on the other three), a speaker-match bonus,
    asymmetric or retuned window shares, per-session caps in the top k (R@10 +0.3 at best).
Parameters of the asked->reply step (reply_share 0.3, ask_keep 0.7) and of the rank term
(rank_weight 80, rank_k 5; 21-point grid, best R@5+R@10) were chosen on conv-26 and conv-30
(302 questions) and checked on the other three (695): R@5/R@10 there 74.4/82.7 before both,
77.3/83.6 with asked->reply, 76.5/84.3 with the rank term too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from lmm.ingest.importers import LocomoQuestion, locomo_questions
from lmm.ingest.run import ingest
from lmm.retrieve.embed import (
    DEFAULT_MODEL,
    Embedder,
    FakeEmbedder,
    KeyRecipe,
    SentenceTransformerEmbedder,
    embed_pending,
    get_embedder,
    packaged_minilm,
)
from lmm.retrieve.search import (
    dense_query,
    participants,
    retrieve,
    rrf,
    scope_projects,
)
from lmm.retrieve.search_config import SearchConfig
from lmm.store.db import Store

DEFAULT_FILE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo_dev.json"
)
KS = (5, 10, 25, 50)
CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}


@dataclass
class Space:
    """The model under another name (so several key recipes live in one store), remembering
    every text it embedded; `--cache` keeps that memory on disk between runs."""

    inner: Embedder
    name: str
    memory: dict[str, np.ndarray]
    dim: int = 0

    def __post_init__(self) -> None:
        self.dim = self.inner.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.memory))
        if missing:
            for text, vec in zip(missing, self.inner.embed(missing), strict=True):
                self.memory[text] = vec
        return np.stack([self.memory[t] for t in texts]) if texts else np.zeros((0, self.dim))


def load_memory(path: Path | None, model: str) -> dict[str, np.ndarray]:
    if path is None or not path.exists():
        return {}
    data = np.load(path, allow_pickle=False)
    if str(data["model"]) != model:
        return {}
    return dict(zip(data["texts"].tolist(), data["vecs"], strict=True))


def save_memory(path: Path | None, model: str, memory: dict[str, np.ndarray]) -> None:
    if path is not None and memory:
        texts = list(memory)
        np.savez(
            path, model=model, texts=np.array(texts), vecs=np.stack([memory[t] for t in texts])
        )


@dataclass
class Case:
    question: LocomoQuestion
    project: str
    evidence: set[int]  # turn ids


# ---- data


def load(store: Store, path: Path) -> tuple[list[Case], int]:
    """Ingest `path` and map each question's evidence dia_ids to turn ids in its conversation."""
    ingest(store, [path], fmt="locomo")
    by_dia: dict[tuple[str, str], int] = {}
    for r in store.db.execute(
        "SELECT t.id, t.dia_id, p.path FROM turns t JOIN projects p ON p.id = t.project_id"
    ):
        by_dia[(r["path"], r["dia_id"])] = r["id"]
    cases, skipped = [], 0
    for q in locomo_questions(path):
        project = f"locomo/{q.sample_id}"
        evidence = {by_dia[(project, d)] for d in q.evidence if (project, d) in by_dia}
        if evidence:
            cases.append(Case(q, project, evidence))
        else:
            skipped += 1
    return cases, skipped


# ---- systems: each maps a case to a ranked list of turn ids

Ranker = Callable[[Case], list[int]]


def lmm_ranker(store: Store, embedder: Embedder | None, cfg: SearchConfig) -> Ranker:
    def rank(case: Case) -> list[int]:
        hits = retrieve(store, case.question.question, project=case.project, k=max(KS),
                        embedder=embedder, config=cfg)  # fmt: skip
        return [h.id for h in hits]

    return rank


def fused(*rankers: Ranker) -> Ranker:
    def rank(case: Case) -> list[int]:
        scores = rrf([r(case) for r in rankers], k=60.0)
        return sorted(scores, key=lambda t: (-scores[t], t))[: max(KS)]

    return rank


# ---- scoring


def recall(cases: list[Case], ranker: Ranker) -> dict[Any, dict[int, float]]:
    """Per category (and "all"): k -> mean recall@k in percent."""
    sums: dict[Any, np.ndarray] = defaultdict(lambda: np.zeros(len(KS)))
    counts: dict[Any, int] = defaultdict(int)
    for case in cases:
        ranked = ranker(case)
        row = np.array([len(case.evidence & set(ranked[:k])) / len(case.evidence) for k in KS])
        for key in (case.question.category, "all"):
            sums[key] += row
            counts[key] += 1
    return {key: dict(zip(KS, 100 * sums[key] / counts[key], strict=True)) for key in sums}


def table(name: str, result: dict[Any, dict[int, float]], counts: dict[Any, int]) -> str:
    lines = []
    for key in [*sorted(k for k in result if k != "all"), "all"]:
        label = "all" if key == "all" else f"{key} {CATEGORIES.get(key, '')}"
        cells = " ".join(f"{result[key][k]:5.1f}" for k in KS)
        lines.append(f"{name:<26} {label:<14} {counts[key]:>5}  {cells}")
    return "\n".join(lines)


# ---- main

TURNS = SearchConfig(kinds=("turn",))
PLAIN: dict[str, Any] = dict(
    participants=False,
    window=0,
    session=0.0,
    recency=0.0,
    reply_share=0.0,
    ask_keep=1.0,
    parts=False,
)
BASELINES = {  # name: (config, key recipe)
    "bm25": (replace(TURNS, dense=False, keys=False, **PLAIN), None),
    "dense": (replace(TURNS, keyword=False, **PLAIN), KeyRecipe()),
}
ABLATIONS = {  # name: (config, key recipe): lmm with one step changed
    "-keys (bm25 on text)": (replace(TURNS, keys=False), KeyRecipe()),
    "-participants": (replace(TURNS, participants=False), KeyRecipe()),
    "-speaker in dense key": (TURNS, KeyRecipe(speaker=False)),
    "+context in dense key": (TURNS, KeyRecipe(context=True)),
    "+date in dense key": (TURNS, KeyRecipe(date=True)),
    "-asked->reply": (replace(TURNS, reply_share=0.0, ask_keep=1.0), KeyRecipe()),
    "-reply share": (replace(TURNS, reply_share=0.0), KeyRecipe()),
    "-ask keep": (replace(TURNS, ask_keep=1.0), KeyRecipe()),
    "-sentence vectors": (replace(TURNS, parts=False), KeyRecipe()),
    "-window": (replace(TURNS, window=0), KeyRecipe()),
    "-session": (replace(TURNS, session=0.0), KeyRecipe()),
    "-recency": (replace(TURNS, recency=0.0), KeyRecipe()),
    "-rank term (z only)": (replace(TURNS, rank_weight=0.0), KeyRecipe()),
    "rrf fusion (k=10)": (replace(TURNS, fusion="rrf", rrf_k=10.0), KeyRecipe()),
    "rrf fusion (k=60)": (replace(TURNS, fusion="rrf", rrf_k=60.0), KeyRecipe()),
    "-dense": (replace(TURNS, dense=False), None),
    "-keyword": (replace(TURNS, keyword=False), KeyRecipe()),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT_FILE)
    ap.add_argument("--model", default=None, help="embedder name or folder (default MiniLM)")
    ap.add_argument("--fake", action="store_true", help="hash embedder instead of a model")
    ap.add_argument("--conversations", type=int, default=0, help="only the first N (0: all)")
    ap.add_argument("--samples", default="", help="only these sample ids (comma-separated)")
    ap.add_argument(
        "--float32", action="store_true", help="MiniLM through sentence-transformers (torch)"
    )
    ap.add_argument("--ablate", action="store_true", help="also run lmm with each step changed")
    ap.add_argument("--cache", type=Path, help="an .npz keeping embeddings between runs")
    args = ap.parse_args(argv)
    if not args.file.exists():
        print(f"no LoCoMo file at {args.file}", file=sys.stderr)
        return 1
    path = args.file
    if args.conversations or args.samples:
        convs = json.loads(path.read_text())
        if args.samples:
            convs = [c for c in convs if c["sample_id"] in args.samples.split(",")]
        tmp = Path(tempfile.mkdtemp()) / path.name
        tmp.write_text(json.dumps(convs[: args.conversations or None]))
        path = tmp
    model: Embedder
    if args.fake:
        model = FakeEmbedder()
    elif args.float32:
        model = SentenceTransformerEmbedder(str(packaged_minilm()), name=DEFAULT_MODEL)
    else:
        model = get_embedder(args.model)
    cache_id = model.name + getattr(model, "variant", "")  # int8 and float32 vectors differ
    print(f"embedder {model.name} {getattr(model, 'variant', '') or 'sentence-transformers'}",
          file=sys.stderr)  # fmt: skip
    memory = load_memory(args.cache, cache_id)
    with tempfile.TemporaryDirectory() as tmpdir:
        store = Store(Path(tmpdir) / "lmm.db")
        t0 = time.perf_counter()
        cases, skipped = load(store, path)
        counts: dict[Any, int] = defaultdict(int)
        for c in cases:
            counts[c.question.category] += 1
            counts["all"] += 1
        print(f"{len(cases)} questions with evidence, {skipped} skipped without valid evidence; "
              f"ingest {time.perf_counter() - t0:.1f} s", file=sys.stderr)  # fmt: skip
        spaces: dict[KeyRecipe, Space] = {}

        def space(recipe: KeyRecipe | None) -> Space | None:
            if recipe is None:
                return None
            if recipe not in spaces:
                named = Space(model, f"{model.name}#{len(spaces)}", memory)
                t = time.perf_counter()
                report = embed_pending(store, named, recipe=recipe)
                print(f"embedded {report.turns} turns and {report.parts} sentences for {recipe} in "
                      f"{time.perf_counter() - t:.1f} s", file=sys.stderr)  # fmt: skip
                spaces[recipe] = named
            return spaces[recipe]

        t = time.perf_counter()
        queries = [c.question.question for c in cases]
        queries += [
            dense_query(c.question.question, participants(store, c.question.question, scope))
            for c in cases
            for scope in [scope_projects(store, c.project)]
        ]
        Space(model, "", memory).embed(queries)
        print(f"embedded {len(queries)} queries in {time.perf_counter() - t:.1f} s",
              file=sys.stderr)  # fmt: skip
        systems: dict[str, Ranker] = {
            name: lmm_ranker(store, space(recipe), cfg) for name, (cfg, recipe) in BASELINES.items()
        }
        systems["rrf"] = fused(systems["bm25"], systems["dense"])
        systems["lmm"] = lmm_ranker(store, space(KeyRecipe()), TURNS)
        if args.ablate:
            for name, (cfg, recipe) in ABLATIONS.items():
                systems[name] = lmm_ranker(store, space(recipe), cfg)
        results = {}
        print(f"{'system':<26} {'category':<14} {'n':>5}  " + " ".join(f"R@{k:<3}" for k in KS))
        for name, ranker in systems.items():
            t = time.perf_counter()
            results[name] = recall(cases, ranker)
            ms = 1000 * (time.perf_counter() - t) / len(cases)
            print(table(name, results[name], counts) + f"   ({ms:.1f} ms/question)", flush=True)
        store.close()
    save_memory(args.cache, cache_id, memory)
    lmm = results["lmm"]["all"]
    print("LoCoMo " + " ".join(f"R@{k}={lmm[k]:.1f}" for k in KS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
