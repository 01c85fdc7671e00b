"""LoCoMo harness: evidence recall of every memory configuration, and question answering with a
local reader over lmm's recall (F1 by the official scorer, per category)."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmm.evals import metrics as m
from lmm.evals.tasks import Example, Reference
from lmm.ingest.importers import locomo_questions, normalise_evidence
from lmm.text import timeref

if TYPE_CHECKING:
    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store

log = logging.getLogger(__name__)

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
RECALL_KS = (5, 10, 25, 50)
QA_CONFIGS = ("none", "full", "recall")
ANSWER_TOKENS = 32


@dataclass
class Question:
    """A LoCoMo QA item with its audit corrections (None where the audit has none)."""

    qid: str  # locomo_<conv index>_qa<qa index>
    sample_id: str
    question: str
    answer: str
    category: int
    evidence: list[str]
    corrected_evidence: list[str] | None = None
    corrected_answer: str | None = None
    audit_error: str | None = None

    @property
    def project(self) -> str:
        return f"locomo/{self.sample_id}"

    def gold(self, corrected: bool) -> str:
        return self.corrected_answer if corrected and self.corrected_answer else self.answer

    def evidence_for(self, corrected: bool) -> list[str]:
        if corrected and self.corrected_evidence is not None:
            return self.corrected_evidence
        return self.evidence


def dev_file(datasets: Path) -> Path:
    """The LoCoMo dev half in the datasets folder `datasets`."""
    return datasets / "locomo" / "locomo_dev.json"


def audit_file(datasets: Path) -> Path:
    """The audit's corrections of the dev half in the datasets folder `datasets`."""
    return datasets / "locomo" / "locomo_dev_audit_errors.json"


def load_questions(path: Path, audit: Path | None = None) -> list[Question]:
    """Every QA item of `path`, with the audit's corrected evidence and answers attached."""
    items = locomo_questions(path)
    order = list(dict.fromkeys(q.sample_id for q in items))
    fixes: dict[str, dict[str, Any]] = {}
    if audit is not None and Path(audit).is_file():
        fixes = {e["question_id"]: e for e in json.loads(Path(audit).read_text())}
    out = []
    for q in items:
        qid = f"locomo_{order.index(q.sample_id)}_qa{q.index}"
        fix = fixes.get(qid)
        out.append(
            Question(
                qid,
                q.sample_id,
                q.question,
                q.answer,
                q.category,
                q.evidence,
                normalise_evidence(fix["correct_evidence"]) if fix else None,
                str(fix["correct_answer"])
                if fix and fix.get("correct_answer") is not None
                else None,
                fix["error_type"] if fix else None,
            )
        )
    return out


def select(
    questions: list[Question],
    *,
    categories: set[int] | None = None,
    limit: int | None = None,
    seed: int = 0,
) -> list[Question]:
    """The first `limit` questions of `categories` in a seeded shuffle, returned in file order.
    A larger limit keeps every question of a smaller one (so cached answers carry over)."""
    pool = [q for q in questions if categories is None or q.category in categories]
    if limit is not None and limit < len(pool):
        order = list(range(len(pool)))
        random.Random(seed).shuffle(order)
        keep = set(order[:limit])
        pool = [q for i, q in enumerate(pool) if i in keep]
    return pool


def sources(q: Question, corrected: bool = False) -> list[tuple[str, str]]:
    """(session id, turn uuid) of each evidence dia_id, as the LoCoMo importer names them."""
    out = []
    for dia in q.evidence_for(corrected):
        session = dia.split(":")[0].lstrip("D")
        out.append((f"{q.sample_id}:session_{session}", f"{q.sample_id}:{dia}"))
    return out


def examples(questions: list[Question], corrected: bool = False) -> list[Example]:
    """Questions as memory-task examples: the reference is the gold answer, its sources the
    evidence turns (coverage = how much of the answer the memory output contains)."""
    return [
        Example(
            q.qid,
            q.question,
            [Reference(q.gold(corrected), CATEGORIES[q.category], sources(q, corrected), q.qid)],
            q.project,
            None,
            None,
            {"category": q.category},
        )
        for q in questions
    ]


def prepare_store(store: Store, path: Path, embedder: Embedder | None = None) -> None:
    """Ingest the LoCoMo file (a no-op when already read) and embed what lacks a vector."""
    from lmm.ingest.run import ingest

    ingest(store, [path], fmt="locomo")
    if embedder is not None:
        from lmm.retrieve.embed import embed_pending

        embed_pending(store, embedder)


# ---- QA


READER_PROMPTS = {
    # v1: the plain prompt of the measured oracle reference point (../shared/data/README.md)
    "v1": (
        "You answer questions about a long conversation between two people, using only the "
        "conversation excerpts given. Each excerpt starts with the date it was said; resolve "
        "relative times such as 'yesterday' or 'last year' against that date. Answer with a "
        "short phrase: a few words, a name, a date like '7 May 2023' or a number; no full "
        "sentence, no explanation. If the excerpts do not contain the answer, answer: Not "
        "mentioned."
    ),
    # v2: v1 plus: the conversation's own words, every item of a list, worked date examples
    "v2": (
        "You answer questions about a long conversation between two people, using only the "
        "conversation excerpts given. Each excerpt starts with the date it was said. Answer "
        "with a short phrase in the conversation's own words: a few words, a name, a number or "
        "a date; no full sentence, no explanation. When the question asks for several things, "
        "list every one of them, separated by commas. For when something happened, resolve "
        "relative times against the excerpt's date: 'yesterday' said on 8 May 2023 is 7 May "
        "2023, 'last year' is 2022, 'last week' is 'the week before 8 May 2023'. If the "
        "excerpts do not contain the answer, answer: Not mentioned."
    ),
    # v3: v2 over excerpts whose relative times are resolved by lmm (`lmm.text.timeref`)
    "v3": (
        "You answer questions about a long conversation between two people, using only the "
        "conversation excerpts given. Each excerpt starts with the date it was said, and a "
        "relative time in it is followed by its resolved date in brackets, as in 'last week "
        "[the week before 8 May 2023]'. Answer with a short phrase in the conversation's own "
        "words: a few words, a name, a number or a date; no full sentence, no explanation. "
        "When the question asks for several things, list every one of them, separated by "
        "commas. When asked when something happened, answer with the bracketed date of the "
        "excerpt that tells it, or else the excerpt's own date. If the excerpts do not contain "
        "the answer, answer: Not mentioned."
    ),
    # v4: v3 plus three worked examples from a made-up conversation
    "v4": (
        "You answer questions about a long conversation between two people, using only the "
        "conversation excerpts given. Each excerpt starts with the date it was said, and a "
        "relative time in it is followed by its resolved date in brackets. Answer with a short "
        "phrase in the conversation's own words: a few words, a name, a number or a date; no "
        "full sentence, no explanation. When the question asks for several things, list every "
        "one of them, separated by commas. When asked when something happened, answer with the "
        "bracketed date of the excerpt that tells it, or else the excerpt's own date. If the "
        "excerpts do not contain the answer, answer: Not mentioned.\n\n"
        "Example excerpts (another conversation):\n"
        "[3 June 2022] Ana: I finally adopted a puppy last weekend [the weekend before 3 June "
        "2022]! Her name is Pepper.\n"
        "[3 June 2022] Ben: Congrats! I've been learning the guitar, and I took up painting.\n"
        "[9 July 2022] Ben: My painting of the lake won second prize yesterday [8 July 2022].\n"
        "Question: When did Ana adopt a puppy?\nShort answer: the weekend before 3 June 2022\n"
        "Question: What is the name of Ana's puppy?\nShort answer: Pepper\n"
        "Question: What hobbies does Ben have?\nShort answer: guitar, painting\n"
        "Question: What did Ben's painting show?\nShort answer: the lake"
    ),
}
DEFAULT_PROMPT = "v3"
RESOLVED_TIMES = {"v3", "v4"}  # prompts whose excerpts carry `timeref.annotate`'s resolved dates


def turn_line(
    timestamp: str | None, speaker: str | None, text: str, resolve_times: bool = False
) -> str:
    """'[8 May 2023] Caroline: ...'; with `resolve_times`, relative times in the text resolved."""
    date = f"[{timeref.human_date(timestamp)}] " if timestamp else ""
    text = " ".join(text.split())
    if resolve_times:
        text = timeref.annotate(text, timestamp)
    return f"{date}{speaker or 'someone'}: {text}"


def qa_messages(
    lines: list[str], question: str, prompt: str = DEFAULT_PROMPT
) -> list[dict[str, str]]:
    """The reader's chat: excerpts first (a shared prefix across questions), question last."""
    body = "Conversation excerpts:\n" + "\n".join(lines) if lines else "No conversation excerpts."
    user = f"{body}\n\nQuestion: {question}\nShort answer:"
    return [
        {"role": "system", "content": READER_PROMPTS[prompt]},
        {"role": "user", "content": user},
    ]


def full_context(
    store: Store,
    q: Question,
    budget: int,
    count: Callable[[str], int],
    resolve_times: bool = False,
) -> list[str]:
    """The conversation's turns in time order; the latest that fit in `budget` tokens."""
    from lmm.store import history

    rows = history.project_turns(store, q.project)
    lines = [turn_line(r[0], r[1], r[2], resolve_times) for r in rows]
    kept: list[str] = []
    used = 0
    for line in reversed(lines):
        cost = count(line) + 1
        if used + cost > budget:
            break
        kept.append(line)
        used += cost
    return kept[::-1]


def recall_context(
    store: Store, q: Question, k: int, embedder: Embedder | None, resolve_times: bool = False
) -> tuple[list[str], list[str]]:
    """lmm recall's top-k hits for the question, in time order, and the dia_ids among them."""
    from lmm.retrieve.recall import RecallConfig, recall

    result = recall(
        store,
        q.question,
        project=q.project,
        config=RecallConfig(k=k, generate=False),
        embedder=embedder,
    )
    hits = sorted(result.hits[:k], key=lambda h: (h.source.timestamp or "", h.id))
    lines = [
        turn_line(h.source.timestamp, h.speaker or h.category, h.text, resolve_times) for h in hits
    ]
    return lines, [h.source.dia_id for h in result.hits[:k] if h.source.dia_id]


@dataclass
class AnswerCache:
    """Answers already computed, one JSON object per line, keyed by `key`."""

    path: Path
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[row["key"]] = row

    def add(self, row: dict[str, Any]) -> None:
        self.rows[row["key"]] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")


def answer_questions(
    store: Store,
    questions: list[Question],
    configs: list[str],
    reader: Any,
    cache: AnswerCache,
    *,
    k: int = 10,
    budget: int = 3600,
    embedder: Embedder | None = None,
    progress: Callable[[int], None] | None = None,
    export: Path | None = None,
    prompt: str = DEFAULT_PROMPT,
) -> list[dict[str, Any]]:
    """Answer each question under each configuration (config by config, questions grouped by
    conversation, so the reader's prompt cache is reused); cached answers are not recomputed.

    With `export`, nothing is generated: the prompts of uncached answers are appended to that
    JSONL file (rows of the cache plus "messages") for `scripts/batch_reader.py` on another
    machine; its output appended to the cache file completes the run."""
    from lmm.evals.reader import count_tokens

    def count(text: str) -> int:
        return count_tokens(reader, text)

    out = []
    for config in configs:
        if config not in QA_CONFIGS:
            from lmm.errors import LmmError

            raise LmmError(f"unknown QA configuration {config!r}; choose from {QA_CONFIGS}")
        for q in sorted(questions, key=lambda q: (q.sample_id, q.qid)):
            key = f"{reader.name}|{prompt}|{config}|{q.qid}"
            if key not in cache.rows:
                shown: list[str] = []
                if config == "full":
                    lines = full_context(store, q, budget, count, prompt in RESOLVED_TIMES)
                elif config == "recall":
                    lines, shown = recall_context(store, q, k, embedder, prompt in RESOLVED_TIMES)
                else:
                    lines = []
                row: dict[str, Any] = {
                    "key": key,
                    "config": config,
                    "qid": q.qid,
                    "category": q.category,
                    "question": q.question,
                    "context_turns": len(lines),
                    "shown_evidence": shown,
                }
                messages = qa_messages(lines, q.question, prompt)
                if export is not None:
                    with export.open("a") as f:
                        f.write(json.dumps({**row, "messages": messages}) + "\n")
                    continue
                start = time.perf_counter()
                pred = reader.generate(messages, max_new_tokens=ANSWER_TOKENS)
                seconds = round(time.perf_counter() - start, 3)
                cache.add({**row, "prediction": pred.strip(), "seconds": seconds})
            out.append(scored(dict(cache.rows[key]), q))
            if progress:
                progress(1)
    return out


def scored(row: dict[str, Any], q: Question) -> dict[str, Any]:
    """`row` (an answer with its "prediction") with the gold answer and the official F1, against
    the original and the audit's corrected gold."""
    row["gold"] = q.answer
    row["f1"] = m.locomo_f1(row["prediction"], q.answer, q.category)
    row["f1_corrected"] = m.locomo_f1(row["prediction"], q.gold(True), q.category)
    return row


def qa_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per configuration: F1 per category, weighted over categories 1-4, with the audit's
    corrected answers too, and seconds per question."""
    out: dict[str, Any] = {}
    for config in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == config]
        main = [r for r in mine if r["category"] in (1, 2, 3, 4)]
        out[config] = {
            "questions": len(mine),
            "f1_by_category": {
                CATEGORIES[c]: 100 * (m.mean(r["f1"] for r in mine if r["category"] == c) or 0.0)
                for c in sorted({r["category"] for r in mine})
            },
            "f1_cat1_4": 100 * (m.mean(r["f1"] for r in main) or 0.0),
            "f1_cat1_4_corrected": 100 * (m.mean(r["f1_corrected"] for r in main) or 0.0),
            "seconds_per_question": m.mean(r["seconds"] for r in mine),
            "count_by_category": {
                CATEGORIES[c]: sum(1 for r in mine if r["category"] == c)
                for c in sorted({r["category"] for r in mine})
            },
        }
    return out
