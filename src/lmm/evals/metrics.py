"""Scoring functions, each a plain function of plain values (tests/test_metrics.py computes every
one by hand)."""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from itertools import combinations

from lmm.evals.porter import stem

# ---- keywords

# Fixed English stopwords (the union of the common short lists); a token in here is never a
# keyword. Changing this list changes every keyword-coverage number: don't, or re-run them all.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren as at be because been
    before being below between both but by can cannot could couldn did didn do does doesn doing
    don done down during each either else even ever every few for from further get gets got had
    hadn has hasn have haven having he her here hers herself him himself his how however i if in
    into is isn it its itself just let like ll made make many may me might more most much must
    my myself need needs neither no nor not now of off on once one only or other our ours
    ourselves out over own per please put quite rather really said same say says see shall she
    should shouldn since so some still such sure take than that the their theirs them themselves
    then there these they thing things this those though through thus to too two under until up
    upon us use used uses using very via want was wasn way we well were weren what when where
    whether which while who whom whose why will with within without won would wouldn yes yet you
    your yours yourself yourselves okay ok going go let's""".split()  # noqa: SIM905
)
MIN_KEYWORD_CHARS = 3

# A token: a run of letters, digits and _ . - / (so `fetch_readings`, `src/tidepool/noaa.py`,
# `--backfill`, `9414290`, `v0.3.0` stay whole); everything else separates tokens.
_TOKEN = re.compile(r"[\w./-]+")
_EDGE = "./-"


def tokens(text: str) -> list[str]:
    """Lowercased tokens of `text` in order: runs of word characters and `_ . - /`, with `.`,
    `-` and `/` stripped from both ends ('end.' -> 'end', '--backfill' -> 'backfill')."""
    out = []
    for raw in _TOKEN.findall(text.lower()):
        tok = raw.strip(_EDGE)
        if tok:
            out.append(tok)
    return out


def keywords(text: str) -> set[str]:
    """The keyword set of `text`, exactly:

    1. lowercase; 2. tokenise with `tokens` (runs of [A-Za-z0-9_./-], `.`/`-`/`/` stripped from
    the ends; code-like tokens such as `fetch_readings` or `src/tidepool/noaa.py` stay whole);
    3. drop tokens shorter than 3 characters; 4. drop tokens in `STOPWORDS`; 5. drop tokens made
    only of punctuation. No stemming: 'locked' and 'lock' are different keywords.
    """
    return {
        t
        for t in tokens(text)
        if len(t) >= MIN_KEYWORD_CHARS and t not in STOPWORDS and not _only_punct(t)
    }


def _only_punct(tok: str) -> bool:
    return all(not c.isalnum() for c in tok)


def keyword_coverage(reference: str, output: str) -> float | None:
    """Share of the reference's keywords present in `output`; None when the reference has none.

    A keyword is present when it is one of the output's `tokens` (whole-token match after the
    same lowercasing and tokenisation, so 'noaa.py' does not match 'src/tidepool/noaa.py')."""
    ref = keywords(reference)
    if not ref:
        return None
    out = set(tokens(output))
    return len(ref & out) / len(ref)


def jaccard(a: set[str], b: set[str]) -> float:
    """|a & b| / |a | b|; two empty sets are identical (1.0)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def diversity(outputs: Sequence[str]) -> float | None:
    """Mean pairwise Jaccard similarity of the outputs' keyword sets (`keywords`), over every
    pair of outputs; lower = more diverse. None with fewer than two outputs. Pass one output per
    distinct context (e.g. per held-out session) so that repeats of one answer don't count."""
    sets = [keywords(o) for o in outputs]
    pairs = list(combinations(sets, 2))
    if not pairs:
        return None
    return sum(jaccard(a, b) for a, b in pairs) / len(pairs)


def length_tokens(text: str) -> int:
    """Output length in whitespace-separated tokens (tokenizer-independent)."""
    return len(text.split())


# ---- retrieval


def _dedup(ranked: Iterable[Hashable]) -> list[Hashable]:
    seen: dict[Hashable, None] = {}
    for item in ranked:
        seen.setdefault(item, None)
    return list(seen)


def recall_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float | None:
    """Fraction of `relevant` items among the first `k` distinct items of `ranked` (LoCoMo's
    definition); None when nothing is relevant. A relevant id that cannot be retrieved (e.g. a
    malformed evidence id) still counts in the denominator: it is a miss."""
    rel = set(relevant)
    if not rel:
        return None
    top = set(_dedup(ranked)[:k])
    return len(rel & top) / len(rel)


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Iterable[Hashable]) -> float | None:
    """1 / rank of the first relevant item (ranks of distinct items, from 1); 0.0 when none is
    retrieved; None when nothing is relevant. Averaged over queries it is MRR."""
    rel = set(relevant)
    if not rel:
        return None
    for rank, item in enumerate(_dedup(ranked), start=1):
        if item in rel:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[Hashable], relevant: Iterable[Hashable], k: int) -> float | None:
    """Binary-gain nDCG@k: DCG = sum over relevant items at rank r <= k of 1 / log2(r + 1),
    divided by the DCG of the ideal ranking (min(|relevant|, k) relevant items first)."""
    rel = set(relevant)
    if not rel:
        return None
    top = _dedup(ranked)[:k]
    dcg = sum(1.0 / math.log2(r + 1) for r, item in enumerate(top, start=1) if item in rel)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
    return dcg / ideal


# ---- LoCoMo answer F1 (snap-research/locomo task_eval/evaluation.py)

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
_PUNCT = frozenset(string.punctuation)
ADVERSARIAL_PHRASES = ("no information available", "not mentioned")


def normalize_answer(text: str) -> str:
    """LoCoMo's normalisation: drop commas, lowercase, drop punctuation, drop the words a, an,
    the and 'and', squeeze whitespace."""
    text = text.replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between normalised, Porter-stemmed tokens (official `f1_score`)."""
    pred = [stem(w) for w in normalize_answer(prediction).split()]
    ref = [stem(w) for w in normalize_answer(gold).split()]
    same = sum((Counter(pred) & Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def multi_hop_f1(prediction: str, gold: str) -> float:
    """Official multi-hop rule: split both on ',', take for each gold part the best F1 over the
    prediction parts, average over gold parts."""
    preds = [p.strip() for p in prediction.split(",")]
    golds = [g.strip() for g in gold.split(",")]
    return sum(max(token_f1(p, g) for p in preds) for g in golds) / len(golds)


def says_not_mentioned(prediction: str) -> bool:
    low = prediction.lower()
    return any(phrase in low for phrase in ADVERSARIAL_PHRASES)


def locomo_f1(prediction: str, gold: str, category: int) -> float:
    """The official per-question score: cat 1 multi-hop rule; cat 2 and 4 token F1; cat 3 token
    F1 against the gold's first ';' part; cat 5 (adversarial) 1.0 when the prediction says
    'no information available' or 'not mentioned', else 0.0."""
    if category == 5:
        return 1.0 if says_not_mentioned(prediction) else 0.0
    if category == 1:
        return multi_hop_f1(prediction, gold)
    if category == 3:
        gold = gold.split(";")[0].strip()
    return token_f1(prediction, gold)


# ---- aggregation


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def by_category(rows: Iterable[tuple[str, float | None]]) -> dict[str, float | None]:
    """(category, value) pairs -> mean per category, plus 'all' over every value."""
    groups: dict[str, list[float | None]] = {}
    everything: list[float | None] = []
    for category, value in rows:
        groups.setdefault(category, []).append(value)
        everything.append(value)
    out = {c: mean(v) for c, v in sorted(groups.items())}
    out["all"] = mean(everything)
    return out
