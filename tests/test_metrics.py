"""Every metric of lmm.evals.metrics against values computed by hand (the arithmetic is in the
comments), plus the Porter port against known stems."""

from __future__ import annotations

import math

import pytest

from lmm.evals import metrics as m
from lmm.evals.porter import stem
from lmm.ingest.importers import normalise_evidence

# ---- keywords and coverage


def test_keywords_drop_stopwords_short_tokens_and_punctuation() -> None:
    text = "Use uv, not pip: never `pip install` in the tidepool repo; always `uv add` / `uv run`."
    # use/not/in/the: stopwords; uv: 2 chars; '/': punctuation only
    assert m.keywords(text) == {
        "pip",
        "never",
        "install",
        "tidepool",
        "repo",
        "always",
        "add",
        "run",
    }


def test_keywords_keep_code_like_tokens_whole() -> None:
    text = (
        "Run `uv run pytest -q` in src/tidepool/noaa.py with fetch_readings(); see --backfill 30."
    )
    # '-q' -> 'q' (short), '--backfill' -> 'backfill', '30.' -> '30' (short), 'see': stopword
    assert m.keywords(text) == {
        "run",
        "pytest",
        "src/tidepool/noaa.py",
        "fetch_readings",
        "backfill",
    }


def test_tokens_strip_edge_punctuation_only() -> None:
    assert m.tokens("Bump v0.3.0, then ./deploy.sh --now. A-OK") == [
        "bump",
        "v0.3.0",
        "then",
        "deploy.sh",
        "now",
        "a-ok",
    ]


def test_keyword_coverage_counts_whole_token_matches() -> None:
    reference = (
        "Use uv, not pip: never `pip install` in the tidepool repo; always `uv add` / `uv run`."
    )
    output = "In tidepool, always run `uv add`; never pip."
    # 8 reference keywords; present: pip, never, tidepool, always, add, run = 6 (not install, repo)
    assert m.keyword_coverage(reference, output) == 6 / 8


def test_keyword_coverage_code_token_needs_the_whole_token() -> None:
    # {edit, src/tidepool/noaa.py}: 'noaa.py' is another token, so only 'edit' is present
    assert m.keyword_coverage("edit src/tidepool/noaa.py", "edit noaa.py") == 0.5
    assert m.keyword_coverage("edit src/tidepool/noaa.py", "Edit src/tidepool/noaa.py.") == 1.0


def test_keyword_coverage_of_a_reference_without_keywords_is_none() -> None:
    assert m.keyword_coverage("it is on", "anything") is None


# ---- Jaccard and diversity


def test_jaccard() -> None:
    assert m.jaccard({"a", "b", "c"}, {"b", "c", "d"}) == 2 / 4
    assert m.jaccard(set(), set()) == 1.0
    assert m.jaccard({"a"}, set()) == 0.0


def test_diversity_is_mean_pairwise_jaccard_of_keyword_sets() -> None:
    outputs = ["alpha beta gamma", "alpha beta delta", "omega"]
    # pairs: {abg}/{abd} = 2/4, {abg}/{o} = 0, {abd}/{o} = 0 -> mean 0.5 / 3
    assert m.diversity(outputs) == pytest.approx(0.5 / 3)
    assert m.diversity(["same words here", "same words here"]) == 1.0
    assert m.diversity(["only one"]) is None


def test_length_tokens() -> None:
    assert m.length_tokens("  uv run  pytest -q\n") == 4
    assert m.length_tokens("") == 0


# ---- retrieval


def test_recall_at_k_with_malformed_locomo_evidence_ids() -> None:
    relevant = normalise_evidence(["D8:6; D9:17", "D30:05"])
    assert relevant == ["D8:6", "D9:17", "D30:5"]
    ranked = ["D30:5", "D1:1", "D8:6", "D8:6", "D9:17"]  # duplicates count once
    assert m.recall_at_k(ranked, relevant, 1) == 1 / 3
    assert m.recall_at_k(ranked, relevant, 2) == 1 / 3
    assert m.recall_at_k(ranked, relevant, 3) == 2 / 3
    assert m.recall_at_k(ranked, relevant, 4) == 1.0  # distinct top 4 reaches D9:17
    # an id left malformed can never be retrieved: it stays a miss
    assert m.recall_at_k(["D8:6", "D9:17"], ["D8:6; D9:17"], 10) == 0.0
    assert m.recall_at_k(ranked, [], 5) is None


def test_reciprocal_rank() -> None:
    assert m.reciprocal_rank(["a", "b", "c"], {"c"}) == 1 / 3
    assert m.reciprocal_rank(["a", "a", "c"], {"c"}) == 1 / 2  # ranks of distinct items
    assert m.reciprocal_rank(["a", "b"], {"x"}) == 0.0
    assert m.reciprocal_rank(["a"], set()) is None


def test_ndcg_at_k() -> None:
    # relevant a (rank 1) and c (rank 3): DCG = 1/log2(2) + 1/log2(4) = 1.5
    # ideal: two relevant at ranks 1, 2: 1 + 1/log2(3)
    assert m.ndcg_at_k(["a", "b", "c"], {"a", "c"}, 3) == pytest.approx(
        1.5 / (1 + 1 / math.log2(3))
    )
    # k=2 cuts c off: DCG 1, ideal still two items within k
    assert m.ndcg_at_k(["a", "b", "c"], {"a", "c"}, 2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert m.ndcg_at_k(["c", "a"], {"a", "c"}, 5) == 1.0
    assert m.ndcg_at_k(["b"], {"a"}, 5) == 0.0
    assert m.ndcg_at_k(["b"], [], 5) is None


# ---- LoCoMo F1


def test_normalize_answer() -> None:
    assert m.normalize_answer("The cat, and a Dog!") == "cat dog"
    assert m.normalize_answer("  An apple-pie.  ") == "applepie"


def test_token_f1_normalises_and_stems() -> None:
    # pred: 7th of may 2023 (4 tokens), gold: 7 may 2023 (3); common may, 2023
    # P = 2/4, R = 2/3, F1 = 2PR/(P+R) = 4/7
    assert m.token_f1("The 7th of May, 2023", "7 May 2023") == pytest.approx(4 / 7)
    # pred stems: she was run marathon; gold: ran marathon ('a' dropped); common: marathon
    # P = 1/4, R = 1/2, F1 = 1/3
    assert m.token_f1("She was running marathons", "ran a marathon") == pytest.approx(1 / 3)
    assert m.token_f1("", "anything") == 0.0
    assert m.token_f1("Paris", "paris.") == 1.0


def test_multi_hop_rule_averages_best_f1_per_gold_part() -> None:
    pred, gold = "counseling certification, art", "Psychology, counseling certification"
    # gold parts: 'Psychology' (best 0), 'counseling certification' (best 1.0, from pred part 1)
    assert m.locomo_f1(pred, gold, 1) == 0.5
    # the same strings under single-hop scoring: 2 of 3 tokens each way -> 2/3
    assert m.locomo_f1(pred, gold, 4) == pytest.approx(2 / 3)


def test_open_domain_scores_against_the_first_semicolon_part() -> None:
    assert m.locomo_f1("transgender woman", "Transgender woman; also an activist", 3) == 1.0
    assert m.locomo_f1("transgender woman", "Transgender woman; also an activist", 4) < 1.0


def test_adversarial_category_needs_not_mentioned() -> None:
    assert m.locomo_f1("This is not mentioned in the conversation.", "adoption", 5) == 1.0
    assert m.locomo_f1("No information available.", "adoption", 5) == 1.0
    assert m.locomo_f1("Information not available", "adoption", 5) == 0.0
    assert m.locomo_f1("adoption", "adoption", 5) == 0.0


# ---- aggregation and the stemmer


def test_mean_and_by_category_skip_none() -> None:
    assert m.mean([1.0, None, 0.0]) == 0.5
    assert m.mean([None]) is None
    rows = [("b", 1.0), ("a", 0.0), ("a", None), ("a", 1.0)]
    assert m.by_category(rows) == {"a": 0.5, "b": 1.0, "all": 2 / 3}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("caresses", "caress"),
        ("ponies", "poni"),
        ("ties", "tie"),
        ("skies", "sky"),
        ("running", "run"),
        ("hopping", "hop"),
        ("filing", "file"),
        ("agreed", "agre"),
        ("troubled", "troubl"),
        ("sized", "size"),
        ("happiness", "happi"),
        ("relational", "relat"),
        ("generalization", "gener"),
        ("certification", "certif"),
        ("electricity", "electr"),
        ("adjustable", "adjust"),
        ("dying", "die"),
        ("news", "news"),
        ("is", "is"),
        ("Marathons", "marathon"),
    ],
)
def test_porter_matches_nltk(word: str, expected: str) -> None:
    assert stem(word) == expected
