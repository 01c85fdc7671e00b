"""A prompt about the present ('now', 'currently') lets the newer of two statements lead."""

from __future__ import annotations

import pytest

from lmm.retrieve.evidence import Unit, score_units
from lmm.retrieve.search import Hit, Source
from lmm.retrieve.synth import SynthConfig, asks_current, newness, select_evidence


def hit(id: int, text: str, score: float, when: str | None) -> Hit:
    return Hit(
        kind="turn",
        id=id,
        text=text,
        score=score,
        source=Source(session_id=f"s{id}", timestamp=when, project="/home/dev/tidepool"),
    )


@pytest.mark.parametrize(
    "prompt, current",
    [
        ("what's the binary called now?", True),
        ("which database do we use currently", True),
        ("how long does the sync take right now", True),
        ("why did we pick sqlite", False),
        ("what is the knowledge of the nowcast module", False),
    ],
)
def test_asks_current(prompt: str, current: bool) -> None:
    assert asks_current(prompt) is current


def test_newness_places_hits_in_time() -> None:
    hits = [
        hit(1, "a", 1.0, "2026-01-05T00:00:00Z"),
        hit(2, "b", 1.0, None),
        hit(3, "c", 1.0, "2026-02-05T00:00:00Z"),
        hit(4, "d", 1.0, "2026-01-20T00:00:00Z"),
    ]
    assert newness(hits) == [0.0, 0.5, 1.0, 0.5]
    assert newness(hits[:2]) == [0.5, 0.5]


OLD = hit(1, "The sync job runs on cron every 15 minutes.", 9.0, "2026-01-05T00:00:00Z")
NEW = hit(2, "The sync job runs on a systemd timer every 10 minutes.", 8.0, "2026-03-01T00:00:00Z")


def test_the_newer_statement_leads_when_the_prompt_asks_about_now() -> None:
    cfg = SynthConfig(recency=0.5)
    first = [select_evidence(q, [OLD, NEW], cfg)[0].hit.id for q in ("how does the sync job run",
             "how does the sync job run now", "how does the sync job run currently")]  # fmt: skip
    assert first == [1, 2, 2]
    assert (
        select_evidence("how does the sync job run now", [OLD, NEW], SynthConfig(recency=0))[
            0
        ].hit.id
        == 1
    )


def test_a_stem_joins_parsing_and_parse() -> None:
    units = [Unit(0, 0, "parse module", words=frozenset(["parse", "module"]))]
    score_units("parsing code", units)
    assert units[0].score > 0
