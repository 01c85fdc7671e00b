"""The Porter stemmer as NLTK runs it by default (NLTK_EXTENSIONS), for LoCoMo's official F1."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

_VOWELS = frozenset("aeiou")
_IRREGULAR = {
    "sky": ["sky", "skies"],
    "die": ["dying"],
    "lie": ["lying"],
    "tie": ["tying"],
    "news": ["news"],
    "inning": ["innings", "inning"],
    "outing": ["outings", "outing"],
    "canning": ["cannings", "canning"],
    "howe": ["howe"],
    "proceed": ["proceed"],
    "exceed": ["exceed"],
    "succeed": ["succeed"],
}
_POOL = {form: stem for stem, forms in _IRREGULAR.items() for form in forms}

Rule = tuple[str, str, Callable[[str], bool] | None]


def _cons(word: str, i: int) -> bool:
    """Is word[i] a consonant? 'y' is one at the start and after a vowel."""
    if word[i] in _VOWELS:
        return False
    if word[i] == "y":
        return True if i == 0 else not _cons(word, i - 1)
    return True


def _measure(stem: str) -> int:
    """m in [C](VC)^m[V]: the number of vowel-consonant sequences."""
    seq = "".join("c" if _cons(stem, i) else "v" for i in range(len(stem)))
    return seq.count("vc")


def _positive(stem: str) -> bool:
    return _measure(stem) > 0


def _has_vowel(stem: str) -> bool:
    return any(not _cons(stem, i) for i in range(len(stem)))


def _double_cons(word: str) -> bool:
    return len(word) >= 2 and word[-1] == word[-2] and _cons(word, len(word) - 1)


def _cvc(word: str) -> bool:
    """*o: ends consonant-vowel-consonant, the last not w, x or y (NLTK: or a 2-letter 'vc')."""
    n = len(word)
    if n >= 3 and _cons(word, n - 3) and not _cons(word, n - 2) and _cons(word, n - 1):
        return word[-1] not in "wxy"
    return n == 2 and not _cons(word, 0) and _cons(word, 1)


def _apply(word: str, rules: list[Rule]) -> str:
    """The first rule whose suffix matches decides: applied if its condition holds, else none."""
    for suffix, repl, cond in rules:
        if suffix == "*d" and _double_cons(word):
            stem = word[:-2]
            return stem + repl if cond is None or cond(stem) else word
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)] if suffix else word
            return stem + repl if cond is None or cond(stem) else word
    return word


def _step1a(word: str) -> str:
    if word.endswith("ies") and len(word) == 4:
        return word[:-3] + "ie"
    return _apply(
        word, [("sses", "ss", None), ("ies", "i", None), ("ss", "ss", None), ("s", "", None)]
    )


def _step1b(word: str) -> str:
    if word.endswith("ied"):
        return word[:-3] + ("ie" if len(word) == 4 else "i")
    if word.endswith("eed"):
        stem = word[:-3]
        return stem + "ee" if _measure(stem) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
            stem = word[: -len(suffix)]
            break
    else:
        return word
    return _apply(
        stem,
        [
            ("at", "ate", None),
            ("bl", "ble", None),
            ("iz", "ize", None),
            ("*d", stem[-1], lambda s: stem[-1] not in "lsz"),
            ("", "e", lambda s: _measure(s) == 1 and _cvc(s)),
        ],
    )


def _step1c(word: str) -> str:
    return _apply(word, [("y", "i", lambda s: len(s) > 1 and _cons(s, len(s) - 1))])


def _step2(word: str) -> str:
    if word.endswith("alli") and _positive(word[:-4]):
        return _step2(word[:-4] + "al")
    rules: list[Rule] = [
        (suffix, repl, _positive)
        for suffix, repl in [
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("bli", "ble"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
            ("fulli", "ful"),
        ]
    ]
    rules.append(("logi", "log", lambda s: _positive(word[:-3])))
    return _apply(word, rules)


def _step3(word: str) -> str:
    pairs = [
        ("icate", "ic"),
        ("ative", ""),
        ("alize", "al"),
        ("iciti", "ic"),
        ("ical", "ic"),
        ("ful", ""),
        ("ness", ""),
    ]
    return _apply(word, [(s, r, _positive) for s, r in pairs])


def _step4(word: str) -> str:
    def big(s: str) -> bool:
        return _measure(s) > 1

    rules: list[Rule] = [
        (s, "", big)
        for s in ("al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent")
    ]
    rules.append(("ion", "", lambda s: _measure(s) > 1 and s[-1:] in ("s", "t")))
    rules += [(s, "", big) for s in ("ou", "ism", "ate", "iti", "ous", "ive", "ize")]
    return _apply(word, rules)


def _step5a(word: str) -> str:
    if word.endswith("e"):
        stem = word[:-1]
        m = _measure(stem)
        if m > 1 or (m == 1 and not _cvc(stem)):
            return stem
    return word


def _step5b(word: str) -> str:
    return _apply(word, [("ll", "l", lambda s: _measure(word[:-1]) > 1)])


@lru_cache(maxsize=65_536)
def stem(word: str) -> str:
    """The Porter stem of `word`, lowercased: 'running' -> 'run', 'happiness' -> 'happi'."""
    low = word.lower()
    if word in _POOL:
        return _POOL[low]
    if len(word) <= 2:
        return low
    for step in (_step1a, _step1b, _step1c, _step2, _step3, _step4, _step5a, _step5b):
        low = step(low)
    return low
