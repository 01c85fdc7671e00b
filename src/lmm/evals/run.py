"""One function per `lmm eval` task: build or reuse the data and store in the output folder, run
every configuration, write the report. Each is resumable: the store, the held-out set and the
LoCoMo answers are kept in the folder, so a second run only computes what is missing. The
caller names `datasets`, the folder of the public datasets (real history, LoCoMo)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmm.errors import LmmError
from lmm.evals import heldout as heldout_set
from lmm.evals import locomo, report
from lmm.evals.tasks import CONFIG_NAMES, MemoryTask, answer_all, build_systems, score_outputs

if TYPE_CHECKING:
    from lmm.lm.base import TextGenerator
    from lmm.retrieve.embed import Embedder

log = logging.getLogger(__name__)

REAL_HISTORY = Path(
    "claude_sessions", "claude-code-log-iansherr-fork", "test", "test_data", "real_projects"
)  # in the datasets folder
Progress = Callable[[int], None]


@dataclass(frozen=True)
class EvalSettings:
    """What `lmm eval` runs; each field is the flag of the same name."""

    configs: str = ",".join(CONFIG_NAMES)  # --configs: comma-separated
    source: str = "real"  # --source (heldout): real | sample | a Claude projects folder
    base_model: str | None = "smollm2"  # --base-model: the LM of rag-base
    trained_model: str | None = None  # --trained-model: the LM of gen and rag-trained
    embedder: str = "all-MiniLM-L6-v2"  # --embedder: a registered name, or none
    fraction: float = heldout_set.DEFAULT_FRACTION  # --fraction: share of sessions as memory
    limit: int | None = None  # --limit: questions / examples at most
    categories: str | None = None  # --category: e.g. "1,2,3,4" (LoCoMo)
    seed: int = 0  # --seed: question sample
    data: str | None = None  # --data: a LoCoMo file instead of the dev half
    reader: str = "qwen2.5-coder-1.5b"  # --reader (locomo-qa)
    qa_configs: str = ",".join(locomo.QA_CONFIGS)  # --qa-configs (locomo-qa)
    k: int = 10  # --k: hits shown to the reader (locomo-qa)
    budget: int = 3600  # --budget: context tokens of the full-context reader (locomo-qa)
    prompt: str = locomo.DEFAULT_PROMPT  # --prompt: reader prompt version (locomo-qa)

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise LmmError(f"--fraction must be within (0, 1) (got {self.fraction})")
        if self.prompt not in locomo.READER_PROMPTS:
            raise LmmError(f"--prompt must be one of {', '.join(locomo.READER_PROMPTS)}")
        if self.limit is not None and self.limit < 1:
            raise LmmError(f"--limit must be at least 1 (got {self.limit})")

    @property
    def config_list(self) -> list[str]:
        return [c.strip() for c in self.configs.split(",") if c.strip()]

    @property
    def category_set(self) -> set[int] | None:
        if not self.categories:
            return None
        try:
            return {int(c) for c in self.categories.split(",") if c.strip()}
        except ValueError as exc:
            raise LmmError(
                f"--category takes numbers 1-5, e.g. 1,2,3,4 (got {self.categories!r})"
            ) from exc


def load_embedder(name: str) -> Embedder | None:
    if name in ("", "none"):
        return None
    from lmm.retrieve.embed import get_embedder

    return get_embedder(name)


def load_model(spec: str) -> TextGenerator:
    """A trained run folder (lmm.lm.trained.load_trained), else `lmm.lm.models.generator(spec)`."""
    path = Path(spec).expanduser()
    if path.is_dir():
        from lmm.lm.trained import is_trained_dir, load_trained

        if is_trained_dir(path):
            return load_trained(path)
    from lmm.lm.models import generator

    return generator(spec)


def loaders(s: EvalSettings) -> tuple[Callable[[], TextGenerator] | None, ...]:
    """Lazy loaders of the base and trained models (None where not given)."""

    def make(spec: str | None) -> Callable[[], TextGenerator] | None:
        return None if not spec else (lambda: load_model(spec))

    return make(s.base_model), make(s.trained_model)


def _open(out: Path, fresh: bool) -> Any:
    from lmm.store.db import Store

    db = out / "store.db"
    if fresh:
        for p in out.glob("store.db*"):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return Store(db)


# ---- held-out set from history


def heldout(
    out: Path, s: EvalSettings, progress: Progress | None = None, *, datasets: Path
) -> dict[str, Any]:
    """The held-out comparison on real history (or the sample): every configuration. `datasets`:
    the folder of the public datasets, where the real history is."""
    set_file = out / "heldout.json"
    fresh = not set_file.is_file()
    store = _open(out, fresh)
    try:
        if fresh:
            if s.source == "sample":
                from lmm import paths

                sources, facts = [paths.sample_projects()], heldout_set.SAMPLE_FACTS
            else:
                real = datasets / REAL_HISTORY
                path = real if s.source == "real" else Path(s.source).expanduser()
                if not path.exists():
                    raise LmmError(f"no history at {path}; pass --source sample or a folder")
                sources, facts = [path], None
            held = heldout_set.build(
                store,
                sources,
                name=f"heldout-{Path(s.source).name}",
                sample_facts=facts,
                fraction=s.fraction,
            )
            import json

            set_file.write_text(json.dumps(held.to_json(), indent=1))
        else:
            held = heldout_set.read(set_file)
        examples = held.examples[: s.limit] if s.limit else held.examples
        task = MemoryTask(held.name, examples, store)
        results = report.new_results(
            held.name,
            {
                **asdict(s),
                "rule": held.rule,
                "memory_sessions": len(held.memory_sessions),
                "heldout_sessions": len(held.heldout_sessions),
                "skipped_sessions": held.skipped,
            },
        )
        _run_configs(task, store, s, results, progress)
    finally:
        store.close()
    report.write(results, out)
    return results


def _run_configs(
    task: MemoryTask,
    store: Any,
    s: EvalSettings,
    results: dict[str, Any],
    progress: Progress | None,
    also: MemoryTask | None = None,
) -> None:
    embedder = load_embedder(s.embedder)
    if embedder is not None:
        from lmm.retrieve.embed import embed_pending

        embed_pending(store, embedder)
    base, trained = loaders(s)
    systems, skipped = build_systems(
        s.config_list, store, base=base, trained=trained, embedder=embedder, k=max(task.ks)
    )
    results["skipped"] = skipped
    for system in systems:
        outputs = answer_all(task, system, progress)
        scored = score_outputs(task, system.name, outputs)
        summary = scored["summary"]
        if also is not None:  # the same outputs against corrected references
            fixed = score_outputs(also, system.name, outputs)["summary"]
            summary.update({f"{k} (audit)": fixed[k] for k in fixed if k.startswith("recall@")})
        results["configs"][system.name] = summary
        results["rows"][system.name] = scored["rows"]


# ---- LoCoMo


def _questions(
    s: EvalSettings, default_categories: set[int] | None, datasets: Path
) -> list[locomo.Question]:
    path = Path(s.data).expanduser() if s.data else locomo.dev_file(datasets)
    if not path.is_file():
        raise LmmError(f"no LoCoMo file at {path}; pass --data PATH")
    qs = locomo.load_questions(path, locomo.audit_file(datasets) if not s.data else None)
    return locomo.select(
        qs, categories=s.category_set or default_categories, limit=s.limit, seed=s.seed
    )


def locomo_table(
    out: Path, s: EvalSettings, progress: Progress | None = None, *, datasets: Path
) -> dict[str, Any]:
    """Evidence recall@k (original and audited evidence), keyword coverage of the gold answer,
    and the rest of the memory metrics, for every configuration, on LoCoMo (`--data`, else the
    dev half in `datasets`)."""
    qs = _questions(s, {1, 2, 3, 4}, datasets)
    store = _open(out, False)
    try:
        locomo.prepare_store(store, Path(s.data) if s.data else locomo.dev_file(datasets))
        task = MemoryTask("locomo", locomo.examples(qs), store, locomo.RECALL_KS)
        fixed = MemoryTask("locomo-audit", locomo.examples(qs, True), store, locomo.RECALL_KS)
        results = report.new_results("locomo", {**asdict(s), "questions": len(qs)})
        results["kind"] = "locomo"
        _run_configs(task, store, s, results, progress, also=fixed)
    finally:
        store.close()
    report.write(results, out)
    return results


def locomo_qa(out: Path, s: EvalSettings, progress: Progress | None = None,
              export: Path | None = None, *, datasets: Path) -> dict[str, Any]:  # fmt: skip
    """Reader F1 on LoCoMo questions: no memory vs full context vs lmm recall. With `export`,
    unanswered prompts go to that file (for scripts/batch_reader.py) instead of the reader."""
    from lmm.evals.reader import load_reader

    qs = _questions(s, {1, 2, 3, 4}, datasets)
    configs = [c.strip() for c in s.qa_configs.split(",") if c.strip()]
    store = _open(out, False)
    try:
        locomo.prepare_store(store, Path(s.data) if s.data else locomo.dev_file(datasets))
        embedder = load_embedder(s.embedder)
        if embedder is not None:
            from lmm.retrieve.embed import embed_pending

            embed_pending(store, embedder)
        reader = load_reader(s.reader)
        cache = locomo.AnswerCache(out / "answers.jsonl")
        rows = locomo.answer_questions(
            store,
            qs,
            configs,
            reader,
            cache,
            k=s.k,
            budget=s.budget,
            embedder=embedder,
            progress=progress,
            export=export,
            prompt=s.prompt,
        )
    finally:
        store.close()
    results = report.new_results("locomo-qa", {**asdict(s), "questions": len(qs)})
    results["kind"] = "qa"
    results["configs"] = locomo.qa_summary(rows)
    results["rows"] = {c: [r for r in rows if r["config"] == c] for c in configs}
    report.write(results, out)
    return results
