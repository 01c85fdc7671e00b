"""Cross-fitted reader training data for LoCoMo QA: no question is answered by a reader that saw
its conversation.

The reader of `lmm eval locomo-qa` can be the packaged model as is, or the same model with a LoRA
adapter trained by `lmm train --stage sft` to answer from lmm recall's excerpts (what lmm's
synthesis pairs teach a memory model). Trained and scored on the same conversations, it would
learn their facts; so the conversations are split into folds, and fold k's questions are
answered by a reader trained only on the other folds' questions:

    lmm eval locomo-qa --out RUN --limit 5000 --category 1,2,3,4 --qa-configs recall \\
        --prompt v4 --export-prompts all.jsonl           # prompts of every question
    python scripts/crossfit.py build all.jsonl DATA    # DATA/fold0, DATA/fold1 (+ manifest)
    # per fold k (a GPU): lmm train --stage sft --data DATA/foldk ... --out RUNk, then
    # python scripts/batch_reader.py DATA/foldk/answer.jsonl --model RUNk --out Ak.jsonl
    python scripts/crossfit.py score A0.jsonl A1.jsonl --limit 200    # F1 per category

`foldk/sft_train.jsonl` and `sft_val.jsonl` hold the other folds' questions (prompt messages +
the gold answer as the assistant turn, TRL's conversational shape; validation: every 20th
question), and `foldk/answer.jsonl` the prompts of fold k's questions to answer.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from lmm.evals import locomo

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "data"  # the public datasets
DEV_FILE, AUDIT_FILE = locomo.dev_file(DATASETS), locomo.audit_file(DATASETS)


def folds(sample_ids: list[str], k: int) -> list[set[str]]:
    """Conversations dealt round-robin in sorted order into `k` folds."""
    ordered = sorted(set(sample_ids))
    return [set(ordered[i::k]) for i in range(k)]


def build(prompts: Path, out: Path, k: int = 2, data: Path = DEV_FILE) -> dict[str, Any]:
    """Write `out/fold<i>/{sft_train,sft_val,answer}.jsonl` from exported reader prompts; returns
    the manifest (also written to `out/manifest.json`)."""
    questions = {q.qid: q for q in locomo.load_questions(data, AUDIT_FILE)}
    rows = [json.loads(line) for line in prompts.read_text().splitlines() if line.strip()]
    unknown = [r["qid"] for r in rows if r["qid"] not in questions]
    if unknown:
        raise SystemExit(f"{len(unknown)} prompts name questions not in {data}: {unknown[:3]}")
    parts = folds([questions[r["qid"]].sample_id for r in rows], k)
    manifest: dict[str, Any] = {"prompts": str(prompts), "folds": []}
    for i, held in enumerate(parts):
        where = out / f"fold{i}"
        where.mkdir(parents=True, exist_ok=True)
        train: list[dict[str, Any]] = []
        val: list[dict[str, Any]] = []
        answer: list[dict[str, Any]] = []
        for n, r in enumerate(rows):
            q = questions[r["qid"]]
            if q.sample_id in held:
                answer.append(r)
                continue
            chat = [*r["messages"], {"role": "assistant", "content": str(q.answer)}]
            (val if n % 20 == 0 else train).append({"messages": chat, "qid": q.qid})
        for name, items in (("sft_train", train), ("sft_val", val), ("answer", answer)):
            with (where / f"{name}.jsonl").open("w") as f:
                f.writelines(json.dumps(item) + "\n" for item in items)
        manifest["folds"].append(
            {"held_out": sorted(held), "train": len(train), "val": len(val), "answer": len(answer)}
        )
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def score(answers: list[Path], limit: int | None = None, data: Path = DEV_FILE) -> dict[str, Any]:
    """`locomo.qa_summary` of batch_reader answer files (the folds' answers together), over the
    seeded `limit` questions of categories 1-4 that `lmm eval locomo-qa --limit` picks, or all."""
    questions = {q.qid: q for q in locomo.load_questions(data, AUDIT_FILE)}
    picked = locomo.select(list(questions.values()), categories={1, 2, 3, 4}, limit=limit)
    keep = {q.qid for q in picked}
    rows = []
    for path in answers:
        for line in path.read_text().splitlines():
            row = json.loads(line) if line.strip() else None
            if row is None or row["qid"] not in keep:
                continue
            rows.append(locomo.scored(row, questions[row["qid"]]))
    return locomo.qa_summary(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the folds' training and answer files")
    b.add_argument("prompts", type=Path, help="prompts from `lmm eval locomo-qa --export-prompts`")
    b.add_argument("out", type=Path, help="folder for fold0/, fold1/ ... and manifest.json")
    b.add_argument("--folds", type=int, default=2)
    s = sub.add_parser("score", help="F1 per category of the folds' answers")
    s.add_argument("answers", type=Path, nargs="+", help="batch_reader outputs, one per fold")
    s.add_argument("--limit", type=int, help="only the questions `lmm eval --limit N` picks")
    args = ap.parse_args(argv)
    if args.cmd == "build":
        print(json.dumps(build(args.prompts, args.out, args.folds), indent=2))
    else:
        print(json.dumps(score(args.answers, args.limit), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
