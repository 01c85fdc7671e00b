"""Current over stale: a prompt about the present ('now', 'currently') lets the newer of two
statements lead, and a later decision that changed what an older line says leads the brief."""

from __future__ import annotations

import pytest

from builders import make_turn
from lmm.records import SessionInfo
from lmm.retrieve.changes import asks_changes, change_of
from lmm.retrieve.evidence import Unit, score_units
from lmm.retrieve.recall import RecallConfig, recall
from lmm.retrieve.search import Hit, Source
from lmm.retrieve.synth import SynthConfig, asks_current, newness, select_evidence
from lmm.store import cognitions
from lmm.store.cognitions import Cognition
from lmm.store.db import Store


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


# ---- a later decision that changed what an older line says leads the brief


@pytest.mark.parametrize(
    "text, change",
    [
        ("Let's move off chrono entirely to jiff.", ("chrono", "jiff")),
        ("Switch the benches to divan.", ("benches", "divan")),
        ("Rename the `parse` module to `ingest` — it reads terribly.", ("parse module", "ingest")),
        ("Use httpx instead of requests.", ("requests", "httpx")),
        ("We replaced the fixed window with GCRA.", ("fixed window", "GCRA")),
        ("port 8080 -> 9090", ("8080", "9090")),
        ("Bump MSRV to 1.80 and keep LazyLock", ("MSRV", "1.80")),
        ("Keep the config dir named logslice though, not lsl", None),
        ("Ship it as two commits.", None),
        ("Move the whole retry loop and its backoff and jitter helpers to utils", None),
    ],
)
def test_a_decision_that_changes_something_says_what_and_to_what(
    text: str, change: tuple[str, str] | None
) -> None:
    assert change_of(text) == change


DAY1, DAY2, DAY3 = (
    "2026-04-16T09:00:00.000Z",
    "2026-05-12T09:00:00.000Z",
    "2026-05-20T09:00:00.000Z",
)


@pytest.fixture
def bench_store(store: Store) -> Store:
    """tidepool: the benches were written with criterion on day 1; on day 2 the user switched
    them to divan."""
    store.add_session(SessionInfo("s1", "claude", project="/home/dev/tidepool"))
    store.add_turns([
        make_turn("s1", "a", "add a criterion benchmark for the sync path", timestamp=DAY1),
        make_turn("s1", "b", "Added benches/sync.rs with criterion; run it with cargo bench.",
                  role="assistant", timestamp=DAY1),
    ])  # fmt: skip
    project = store.project_id("/home/dev/tidepool")
    cognitions.add(store, Cognition("Switch the benches to divan.", "decision", project,
                                    valid_from=DAY2))  # fmt: skip
    return store


def brief_lines(store: Store, prompt: str) -> list[str]:
    cfg = RecallConfig(generate=False)
    text = recall(store, prompt, project="/home/dev/tidepool", config=cfg).brief.text or ""
    return text.splitlines()


def test_the_decision_that_replaced_what_a_line_says_leads_with_its_date(
    bench_store: Store,
) -> None:
    lines = brief_lines(bench_store, "what do the tidepool benchmarks run on?")
    assert lines[0] == "[1] Switch the benches to divan. (decision, 2026-05-12)"
    assert any("criterion" in line and "2026-04-16" in line for line in lines[1:])


def test_no_decision_leads_a_brief_about_something_else_or_already_current(
    bench_store: Store,
) -> None:
    assert not any(
        "divan" in x for x in brief_lines(bench_store, "how do I add a criterion sync path?")
    )
    project = bench_store.project_id("/home/dev/tidepool")
    bench_store.add_turns([make_turn("s1", "c", "The benchmarks run on divan since the switch.",
                                     role="assistant", timestamp=DAY3)])  # fmt: skip
    lines = brief_lines(bench_store, "what do the tidepool benchmarks run on?")
    assert project is not None and "divan" in lines[0]  # a newer line says how it is now
    assert not any(line.startswith("[1] Switch the benches") for line in lines)


@pytest.mark.parametrize(
    "prompt, asks",
    [
        ("list the library swaps we've made", True),
        ("how has time handling evolved?", True),
        ("give me the history of the quota algorithm", True),
        ("summarize every port-related change", False),  # "change" names one, not what changed
        ("what changed in the port over time?", True),
        ("what do the benchmarks run on?", False),
    ],
)
def test_asks_changes(prompt: str, asks: bool) -> None:
    assert asks_changes(prompt) is asks


@pytest.fixture
def swaps_store(bench_store: Store) -> Store:
    """bench_store, plus: chrono gave way to jiff, the port moved twice (stated twice the second
    time), and a decision that changes nothing."""
    project = bench_store.project_id("/home/dev/tidepool")
    for text, day in [
        ("Let's move off chrono entirely to jiff.", "2026-04-20T09:00:00.000Z"),
        ("Switch the port from 8080 to 9090.", "2026-04-29T09:00:00.000Z"),
        ("Bump the port to 9191.", "2026-05-03T09:00:00.000Z"),
        ("Commit it: `chore: bump the port to 9191`", "2026-05-03T10:00:00.000Z"),
        ("Keep the config dir named tidepool.", "2026-05-04T09:00:00.000Z"),
    ]:
        cognitions.add(bench_store, Cognition(text, "decision", project, valid_from=day))
    return bench_store


def test_a_question_about_what_changed_lists_the_changes_oldest_first(swaps_store: Store) -> None:
    listed = [
        ln for ln in brief_lines(swaps_store, "list the swaps in tidepool") if "decision" in ln
    ]
    assert [ln.split(" (decision")[0] for ln in listed] == [
        "[1] Let's move off chrono entirely to jiff.",
        "[2] Switch the port from 8080 to 9090.",
        "[3] Commit it: `chore: bump the port to 9191`",  # the same change: its latest wording
        "[4] Switch the benches to divan.",
    ]


def test_a_question_naming_what_changed_gets_only_those_changes_in_order(
    swaps_store: Store,
) -> None:
    lines = brief_lines(swaps_store, "how did the port change over time?")
    assert [ln.split(" (decision")[0] for ln in lines if "(decision" in ln] == [
        "[1] Switch the port from 8080 to 9090.",
        "[2] Bump the port to 9191.",
        "[3] Commit it: `chore: bump the port to 9191`",
    ]  # found by the search themselves, and put in the order they were decided
