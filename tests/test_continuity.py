"""Prompts about where the work stopped get the project's latest sessions: how the last one
began, what its last assistant turns left open, and what the session before it was about."""

from __future__ import annotations

import pytest

from lmm.retrieve.recall import (
    RecallConfig,
    SessionEnd,
    asks_continuity,
    closing_lines,
    continuity_block,
    recall,
)
from lmm.retrieve.synth import approx_tokens
from lmm.store.db import Store

PROJECT = "/home/dev/tidepool"
LAST = "eddc9ef6-3a6b-4604-b7fa-a6447aca8142"
EXTRACTIVE = RecallConfig(generate=False)


@pytest.mark.parametrize(
    "prompt",
    [
        "where did we leave off?",
        "what was I doing in this repo",
        "what's next for the parser?",
        "did we ever finish the migration?",
        "anything I left open in the exporter?",
        "which branch has the retry work?",
        "what did we change last session",
        "any TODOs in the importer?",
        "what's still pending on the release",
        "let's resume the migration",
        "what did I work on most recently",
        "what were we doing yesterday",
    ],
)
def test_prompts_about_the_work_itself_ask_for_continuity(prompt: str) -> None:
    assert asks_continuity(prompt)


@pytest.mark.parametrize(
    "prompt",
    [
        "how do I run the tests",
        "why did we pick sqlite",
        "what is the station id for Seattle",
        "the parser failed on quotes, what did we change?",
    ],
)
def test_prompts_about_a_topic_do_not(prompt: str) -> None:
    assert not asks_continuity(prompt)


def test_recall_leads_with_the_last_session(sample_store: Store) -> None:
    brief = recall(
        sample_store, "where did we leave off?", project=PROJECT, config=EXTRACTIVE
    ).brief
    assert brief.text is not None
    lines = brief.text.splitlines()
    assert lines[0].startswith("Last session (2026-01-26, branch fix/station-offline): began: Add")
    assert lines[1].startswith("ended: ") and "2d6e0b3" in lines[1]
    assert lines[2].startswith("Session before (2026-01-21): Let's cut 0.3.0.")
    assert approx_tokens(brief.text) <= EXTRACTIVE.synth.max_tokens


def test_the_current_session_is_not_the_last_one(sample_store: Store) -> None:
    result = recall(
        sample_store,
        "where did we leave off?",
        project=PROJECT,
        config=EXTRACTIVE,
        exclude_session=LAST,
    )
    assert result.brief.text is not None
    assert result.brief.text.startswith("Last session (2026-01-21, branch main)")


def test_a_topic_prompt_gets_no_session_block(sample_store: Store) -> None:
    brief = recall(
        sample_store, "sqlite3 database is locked", project=PROJECT, config=EXTRACTIVE
    ).brief
    assert brief.text is not None and "Last session" not in brief.text


def test_no_stored_session_no_block(sample_store: Store) -> None:
    assert (
        continuity_block(sample_store, "where did we stop", "/home/dev/elsewhere", None, 240)
        is None
    )


def test_closing_lines_keep_what_is_left_open() -> None:
    session = SessionEnd(
        "s1",
        "2026-05-01",
        "feat/x",
        "add the exporter",
        [
            "The exporter writes CSV now.\n**Not handled yet:**\n- gzip output\nAll tests pass.",
            "I left a `TODO(gzip)` in `export.rs`. Committed as wip.",
        ],
    )
    assert closing_lines(session, "what else is open") == [
        "**Not handled yet:**",
        "- gzip output",
        "I left a `TODO(gzip)` in `export.rs`. Committed as wip.",
    ]
    quiet = SessionEnd("s2", "2026-05-02", None, "rename it", ["Renamed.", "Done, all green."])
    assert closing_lines(quiet, "where did we stop") == ["Done, all green."]
