"""Prompts that ask for everything on a topic (all, list, over time, how it evolved) take one
line from each session before a second from any, each line short, the retriever's order aside."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lmm.retrieve.evidence import query_terms
from lmm.retrieve.search import Hit, Source
from lmm.retrieve.synth import SynthConfig, approx_tokens, asks_gathering, select_evidence


def hit(id: int, session: str, text: str, score: float, day: str = "07") -> Hit:
    return Hit(
        kind="turn",
        id=id,
        text=text,
        score=score,
        source=Source(
            session_id=session,
            timestamp=f"2026-01-{day}T10:00:00Z",
            project="/home/dev/tidepool",
            file_path=f"/home/dev/.claude/projects/x/{session}.jsonl",
        ),
    )


@pytest.mark.parametrize(
    "prompt",
    [
        "list every preference I have stated",
        "how has the fetch latency changed over time?",
        "how did error handling evolve",
        "summarize the release setup",
        "compare the two exporters",
    ],
)
def test_gathering_prompts(prompt: str) -> None:
    assert asks_gathering(prompt)


@pytest.mark.parametrize("prompt", ["why is the database locked", "what port does it use"])
def test_single_fact_prompts(prompt: str) -> None:
    assert not asks_gathering(prompt)


def test_gathering_words_name_no_topic() -> None:
    assert query_terms("list the library swaps so far") == ["library", "swaps"]
    assert query_terms("how has fetch latency changed over time") == ["fetch", "latency"]


FETCH = [
    hit(1, "s-one", "Fetch latency was 900 ms per station before the cache.", 9.0, "05"),
    hit(2, "s-one", "Fetch latency 900 ms measured again with the profiler on.", 8.0, "05"),
    hit(3, "s-one", "Fetch latency stays 900 ms with gzip off as well.", 7.0, "05"),
    hit(4, "s-two", "Fetch latency is 120 ms now that the cache is in.", 1.0, "20"),
]


def test_each_session_first_then_more_of_one() -> None:
    gathered = select_evidence("how has fetch latency changed over time?", FETCH)
    sessions = [e.hit.source.session_id for e in gathered]
    assert sessions[:2] == ["s-one", "s-two"]
    single = select_evidence("what is the fetch latency per station", FETCH)
    assert [e.hit.id for e in single][:2] == [1, 2]


def test_gathered_lines_are_short() -> None:
    long = "Fetch latency notes: " + "the cache holds readings per station and day. " * 20
    hits = [replace(FETCH[0], text=long), FETCH[3]]
    cfg = SynthConfig()
    for ev in select_evidence("list all fetch latency notes", hits, cfg):
        assert len(ev.text) <= cfg.gather_chars + 2
        assert approx_tokens(ev.text) < 100
