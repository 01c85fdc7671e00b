"""Evals as Task objects: one `MemoryTask` (examples + scoring) runs unchanged against every
memory configuration (a `System`), so the numbers of each configuration are side by side."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lmm.evals import metrics as m

if TYPE_CHECKING:
    from lmm.lm.base import TextGenerator
    from lmm.retrieve.embed import Embedder
    from lmm.retrieve.search import Hit
    from lmm.store.db import Store

log = logging.getLogger(__name__)

KS = (1, 3, 5, 10)
CONFIG_NAMES = ("none", "gen", "retrieval", "rag-base", "rag-trained")


@dataclass
class Reference:
    """One piece of memory the example needs: its text, category and source turns."""

    text: str
    category: str
    sources: list[tuple[str, str]]  # (session id, record uuid) of the turns that state it
    label: str = ""  # a human id ("D2", a cognition uid)


@dataclass
class Example:
    """What the agent is about to do (`query`) and the memory it needs (`references`)."""

    id: str
    query: str
    references: list[Reference]
    project: str | None = None
    date: str | None = None  # ISO date of the task, for prompts
    exclude_session: str | None = None  # a session retrieval must not return (the task's own)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def reference_text(self) -> str:
        return "\n".join(r.text for r in self.references)


@dataclass
class Output:
    """What one configuration produced for one example."""

    text: str
    turn_ids: list[int] = field(default_factory=list)  # ranked retrieved turns
    seconds: float = 0.0
    mode: str = ""


class System(Protocol):
    """A memory configuration: an example in, an output out."""

    name: str

    def answer(self, example: Example) -> Output: ...


# ---- mapping references and hits to turn rows


class TurnIndex:
    """Turn row ids of (session, uuid) pairs and of cognitions' sources, for one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cog: dict[int, list[int]] = {}

    def turn_of(self, session_id: str, uuid: str) -> int | None:
        from lmm.store import history

        return history.turn_id(self.store, session_id, uuid)

    def relevant(self, refs: list[Reference]) -> set[int | str]:
        """Turn ids of the references' sources; a source not in the store stays as its own
        string key, so it counts as a miss instead of vanishing from the denominator."""
        out: set[int | str] = set()
        for ref in refs:
            for sid, uuid in ref.sources:
                tid = self.turn_of(sid, uuid)
                out.add(tid if tid is not None else f"{sid}/{uuid}")
        return out

    def cognition_turns(self, cog_id: int) -> list[int]:
        if cog_id not in self._cog:
            from lmm.store import history

            self._cog[cog_id] = history.cognition_turn_ids(self.store, cog_id)
        return self._cog[cog_id]

    def ranked_turns(self, hits: list[Hit]) -> list[int]:
        """Hits in rank order as turn ids: a turn is itself, a cognition its source turns."""
        out: list[int] = []
        for h in hits:
            out += [h.id] if h.kind == "turn" else self.cognition_turns(h.id)
        return out


# ---- configurations


@dataclass
class NoMemory:
    """The agent gets nothing: the baseline every memory must beat."""

    name: str = "none"

    def answer(self, example: Example) -> Output:
        return Output("", [], 0.0, "none")


def memory_prompt(example: Example) -> list[dict[str, str]]:
    """The prompt a trained memory model saw in training (lmm.train.pairs' 'opening' contexts)."""
    from lmm.train.pairs import MEMORY_SYSTEM

    header = f"Project: {example.project}" if example.project else "No project"
    if example.date:
        header += f", date {example.date[:10]}"
    user = f"{header}\nA new session starts. The user asks: {example.query.strip()[:3000]}"
    return [{"role": "system", "content": MEMORY_SYSTEM}, {"role": "user", "content": user}]


@dataclass
class Generation:
    """`gen`: a (trained) model recalls from its weights; nothing is retrieved."""

    lm: TextGenerator
    name: str = "gen"
    max_new_tokens: int = 160

    def answer(self, example: Example) -> Output:
        start = time.perf_counter()
        text = self.lm.generate(memory_prompt(example), max_new_tokens=self.max_new_tokens)
        return Output(text.strip(), [], time.perf_counter() - start, "generated")


@dataclass
class Retrieval:
    """`retrieval` (lm None: extractive brief) and `rag-*` (an LM writes the brief)."""

    store: Store
    index: TurnIndex
    name: str = "retrieval"
    lm: TextGenerator | None = None
    embedder: Embedder | None = None
    k: int = max(KS)  # hits kept for the ranking metrics (recall@k needs k of them)

    def answer(self, example: Example) -> Output:
        from lmm.retrieve.recall import RecallConfig, recall

        cfg = RecallConfig(k=self.k, generate=self.lm is not None)
        start = time.perf_counter()
        result = recall(
            self.store,
            example.query,
            project=example.project,
            config=cfg,
            embedder=self.embedder,
            lm=self.lm,
            exclude_session=example.exclude_session,
        )
        seconds = time.perf_counter() - start
        turns = self.index.ranked_turns(result.hits)
        return Output(result.brief.text or "", turns, seconds, result.brief.mode)


def build_systems(
    names: list[str],
    store: Store,
    *,
    base: Callable[[], TextGenerator] | None = None,
    trained: Callable[[], TextGenerator] | None = None,
    embedder: Embedder | None = None,
    k: int = max(KS),
) -> tuple[list[System], dict[str, str]]:
    """The systems named, and for each one that cannot run, why (e.g. no trained model).

    `base` / `trained` are loaders, called only when a configuration needs that model."""
    index = TurnIndex(store)
    systems: list[System] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name == "none":
            systems.append(NoMemory())
        elif name == "retrieval":
            systems.append(Retrieval(store, index, "retrieval", None, embedder, k))
        elif name in ("gen", "rag-trained") and trained is None:
            skipped[name] = "no trained model: pass --trained-model (a run folder or model path)"
        elif name == "rag-base" and base is None:
            skipped[name] = "no base model: pass --base-model"
        elif name == "gen":
            assert trained is not None
            systems.append(Generation(trained(), "gen"))
        elif name in ("rag-base", "rag-trained"):
            loader = base if name == "rag-base" else trained
            assert loader is not None
            systems.append(Retrieval(store, index, name, loader(), embedder, k))
        else:
            from lmm.errors import LmmError

            raise LmmError(f"unknown configuration {name!r}; choose from {', '.join(CONFIG_NAMES)}")
    return systems, skipped


# ---- the task


@dataclass
class MemoryTask:
    """Examples that need memory, scored the same way for every configuration."""

    name: str
    examples: list[Example]
    store: Store
    ks: tuple[int, ...] = KS
    index: TurnIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = TurnIndex(self.store)

    def score(self, example: Example, out: Output) -> dict[str, Any]:
        relevant = self.index.relevant(example.references)
        row: dict[str, Any] = {
            "id": example.id,
            "coverage": m.keyword_coverage(example.reference_text, out.text),
            "per_reference": [
                {
                    "category": r.category,
                    "label": r.label,
                    "coverage": m.keyword_coverage(r.text, out.text),
                }
                for r in example.references
            ],
            "mrr": m.reciprocal_rank(out.turn_ids, relevant),
            "ndcg@10": m.ndcg_at_k(out.turn_ids, relevant, 10),
            **{f"recall@{k}": m.recall_at_k(out.turn_ids, relevant, k) for k in self.ks},
            "length_tokens": m.length_tokens(out.text),
            "seconds": round(out.seconds, 4),
            "mode": out.mode,
            "output": out.text,
        }
        return row


def summarise(task: MemoryTask, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over examples, diversity over outputs, coverage per reference category."""
    keys = [
        "coverage",
        "mrr",
        "ndcg@10",
        *(f"recall@{k}" for k in task.ks),
        "length_tokens",
        "seconds",
    ]
    out: dict[str, Any] = {k: m.mean(r[k] for r in rows) for k in keys}
    outputs = [r["output"] for r in rows if r["output"].strip()]
    out["diversity"] = m.diversity(outputs)
    out["empty_outputs"] = sum(1 for r in rows if not r["output"].strip())
    out["modes"] = dict(Counter(r["mode"] for r in rows))  # generated vs fallback briefs
    out["examples"] = len(rows)
    out["coverage_by_category"] = m.by_category(
        (p["category"], p["coverage"]) for r in rows for p in r["per_reference"]
    )
    return out


def answer_all(
    task: MemoryTask, system: System, progress: Callable[[int], None] | None = None
) -> list[Output]:
    """Every example of `task` through `system`, in order."""
    outputs = []
    for ex in task.examples:
        outputs.append(system.answer(ex))
        if progress:
            progress(1)
    log.info("%s on %s: %d examples", system.name, task.name, len(outputs))
    return outputs


def score_outputs(task: MemoryTask, name: str, outputs: list[Output]) -> dict[str, Any]:
    """Per-example rows and the summary of one configuration's outputs."""
    rows = [task.score(ex, out) for ex, out in zip(task.examples, outputs, strict=True)]
    return {"config": name, "summary": summarise(task, rows), "rows": rows}


def run_task(
    task: MemoryTask, system: System, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """`answer_all` then `score_outputs`."""
    return score_outputs(task, system.name, answer_all(task, system, progress))


def example_json(ex: Example) -> dict[str, Any]:
    return asdict(ex)


def example_from_json(obj: dict[str, Any]) -> Example:
    refs = [
        Reference(r["text"], r["category"], [tuple(s) for s in r["sources"]], r.get("label", ""))
        for r in obj["references"]
    ]
    return Example(
        obj["id"],
        obj["query"],
        refs,
        obj.get("project"),
        obj.get("date"),
        obj.get("exclude_session"),
        obj.get("meta", {}),
    )
