"""Which of the user's sentences are remembered, as what, and with which sentence before them."""

from __future__ import annotations

import pytest

from lmm.memory.cues import classify
from lmm.memory.extract_rules import statements
from lmm.records import Turn


@pytest.mark.parametrize(
    ("sentence", "category"),
    [
        ("No unwrap() / expect() in library code please, I've been burned before.", "preference"),
        ("Keep rust-version at 1.74, that's what the jump host has pinned.", "preference"),
        ("Anyhow only in main.rs, thiserror for the library error type.", "preference"),
        ("In general ask me before pulling in new crates, I want the dependency tree small.",
         "preference"),
        ("Output has to be deterministic, I snapshot-test this stuff.", "preference"),
        ("Use the `notify` crate for file events rather than polling.", "preference"),
        ("I use cargo-nextest for everything, not plain cargo test.", "preference"),
        ("Let's move off chrono entirely to jiff.", "decision"),
        ("Switch the benches to divan.", "decision"),
        ("Keep the config dir named logslice though, not lsl.", "decision"),
        ("Bump MSRV to 1.80 and keep LazyLock.", "decision"),
        ("keep the endpoints thin, the logic goes in services/, routers only respond.",
         "preference"),
        ("Tests go under tests/, one file per module.", "preference"),
        ("Rename the `parse` module to `ingest`, it's not just parsing anymore.", "decision"),
        ("rename the binary to `lsl` but keep the crate name.", "decision"),
    ],
)  # fmt: skip
def test_standing_rules_said_in_passing_are_kept(sentence: str, category: str) -> None:
    found = classify(sentence)
    assert found is not None and found[0] == category, sentence


@pytest.mark.parametrize(
    "sentence",
    [
        "No worries, that was my mistake.",
        "Can you add a --json flag to the list command?",
        "Please add the percentile columns to the table.",
        "Nice, the numbers look right.",
        "Can you rename foo to bar in this test?",
        "The jump host got upgraded last week.",
        "keep it short",
        "The new file goes in src/harbor/ for now.",
    ],
)
def test_requests_and_chatter_are_not(sentence: str) -> None:
    assert classify(sentence) is None


def _said(text: str) -> list[str]:
    return [c.text for c in statements(Turn("s", "k", "user", "message", text), text)]


def test_that_goes_for_carries_the_rule_before_it() -> None:
    said = _said(
        "nice. commit it. conventional commits style btw — `feat: ...`, lowercase, no trailing "
        "period. that goes for all my repos"
    )
    assert said == [
        "Conventional commits style btw — `feat: ...`, lowercase, no trailing period. that goes "
        "for all my repos"
    ]


def test_a_pronoun_inside_a_complete_rule_borrows_nothing() -> None:
    said = _said(
        "let's get tests going for the parsers. I use cargo-nextest for everything, not plain "
        "cargo test — it's way faster on this laptop."
    )
    assert said == [
        "I use cargo-nextest for everything, not plain cargo test — it's way faster on this laptop."
    ]


def test_a_condition_or_a_lead_in_still_points_back() -> None:
    said = _said(
        "Another aspect is the use of the '@count_calls' decorator. Whenever you're working on a "
        "method, add this decorator from the 'pedantic' module."
    )
    assert said == [
        "Another aspect is the use of the '@count_calls' decorator. Whenever you're working on a "
        "method, add this decorator from the 'pedantic' module."
    ]
    said = _said(
        "I want you to adopt a new convention for your attribute names. From now on, include "
        "the string 'chx' in them."
    )
    assert said[-1].startswith("I want you to adopt a new convention for your attribute names.")


def test_moving_away_from_a_window_is_no_decision() -> None:
    assert classify("You may be told to move away from windows or evacuate the building.") is None


def test_a_short_rule_before_its_reason_stands_alone() -> None:
    said = _said(
        "And no unwrap() in library code please. Keep rust-version at 1.74, that's what the "
        "jump host has pinned."
    )
    assert said == [
        "No unwrap() in library code please.",
        "Keep rust-version at 1.74, that's what the jump host has pinned.",
    ]


def test_a_list_items_marker_is_not_part_of_the_memory() -> None:
    said = _said("two things today. 1) rename the `parse` module to `ingest`. 2) support .gz")
    assert said == ["Rename the `parse` module to `ingest`."]
