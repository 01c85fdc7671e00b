"""Cross-fitted reader data for LoCoMo QA: no question is answered by a reader trained on its
conversation, and the folds' answers score like `lmm eval locomo-qa`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripts import crossfit

from lmm.evals import locomo
from lmm.evals import metrics as m

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV, AUDIT = locomo.dev_file(DATASETS), locomo.audit_file(DATASETS)


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    if not DEV.is_file():
        pytest.skip(f"LoCoMo dev file not found at {DEV} (../shared/data is absent)")
    path = tmp_path / "prompts.jsonl"
    chosen = locomo.select(locomo.load_questions(DEV, AUDIT), categories={1, 2, 3, 4}, limit=60)
    with path.open("w") as f:
        for q in chosen:
            msgs = [{"role": "user", "content": f"Question: {q.question}"}]
            f.write(json.dumps({"qid": q.qid, "config": "recall", "messages": msgs}) + "\n")
    return path


def test_folds_never_train_on_the_conversations_they_answer(prompts: Path, tmp_path: Path) -> None:
    manifest = crossfit.build(prompts, tmp_path / "xfit", k=2, data=DEV)
    conv = {q.qid: q.sample_id for q in locomo.load_questions(DEV, AUDIT)}
    held = [set(f["held_out"]) for f in manifest["folds"]]
    assert held[0].isdisjoint(held[1]) and len(held[0] | held[1]) == 5
    answered = []
    for i in range(2):
        where = tmp_path / "xfit" / f"fold{i}"
        train = [json.loads(x) for x in (where / "sft_train.jsonl").read_text().splitlines()]
        val = [json.loads(x) for x in (where / "sft_val.jsonl").read_text().splitlines()]
        answer = [json.loads(x) for x in (where / "answer.jsonl").read_text().splitlines()]
        assert train and all(conv[r["qid"]] not in held[i] for r in train + val)
        assert all(conv[r["qid"]] in held[i] for r in answer)
        assert train[0]["messages"][-1]["role"] == "assistant"  # the gold answer is the target
        answered += [r["qid"] for r in answer]
    assert sorted(answered) == sorted(
        json.loads(x)["qid"] for x in prompts.read_text().splitlines()
    )


def test_score_matches_the_official_f1(prompts: Path, tmp_path: Path) -> None:
    questions = {q.qid: q for q in locomo.load_questions(DEV, AUDIT)}
    rows = [json.loads(x) for x in prompts.read_text().splitlines()]
    answers = tmp_path / "answers.jsonl"
    with answers.open("w") as f:  # half answered with the gold, half with nothing useful
        for n, r in enumerate(rows):
            pred = str(questions[r["qid"]].answer) if n % 2 == 0 else "zzz"
            f.write(json.dumps({**r, "prediction": pred, "category": questions[r["qid"]].category,
                                "seconds": 0.0}) + "\n")  # fmt: skip
    summary = crossfit.score([answers], data=DEV)["recall"]
    assert summary["questions"] == len(rows)
    exact = [m.locomo_f1(str(q.answer), q.answer, q.category) for q in
             (questions[r["qid"]] for r in rows[::2])]  # fmt: skip
    assert sum(exact) / len(exact) > 0.8  # the gold against itself (list and ";" rules aside)
    assert summary["f1_cat1_4"] == pytest.approx(100 * sum(exact) / len(rows))
    assert crossfit.score([answers], limit=10, data=DEV)["recall"]["questions"] == 10
