"""The cognition store: merge, supersede, revive, forget, remember, scopes, redaction."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmm.errors import CognitionError
from lmm.store import cognitions
from lmm.store.cognitions import Cognition, SourceRef
from lmm.store.db import Store


def said(
    text: str, when: str, turn: str, category: str = "preference", pid: int | None = 1
) -> Cognition:
    """A cognition stated in turn `turn` of session s1 at time `when`."""
    return Cognition(
        text=text,
        category=category,
        project_id=pid,
        sources=[SourceRef(session_id="s1", turn_key=turn, uuid=turn, timestamp=when, quote=text)],
    )


def row(store: Store, cog_id: int) -> Cognition:
    cog = cognitions.get(store, cog_id)
    assert cog is not None
    return cog


def test_paraphrases_merge_and_evidence_accumulates(store: Store) -> None:
    store.project_id("/p")
    a = cognitions.add(store, said("Use uv, not pip.", "2026-01-01T10:00:00Z", "t1"))
    b = cognitions.add(store, said("Please use uv instead of pip.", "2026-01-02T10:00:00Z", "t2"))
    c = cognitions.add(store, said("use uv, NOT pip", "2026-01-03T10:00:00Z", "t3"))
    d = cognitions.add(
        store, said("Run make test before every commit.", "2026-01-03T11:00:00Z", "t4")
    )
    e = cognitions.add(
        store, said("Always run make test before each commit.", "2026-01-04T11:00:00Z", "t5")
    )
    assert (b, c, e) == (a, a, d)
    first = row(store, a)
    assert (first.evidence, first.status, first.valid_from) == (3, "active", "2026-01-01T10:00:00Z")
    assert [s.turn_key for s in first.sources] == ["t1", "t2", "t3"]
    assert first.salience == cognitions.combined_salience(0.5, 3) == 0.875
    assert row(store, d).evidence == 2
    assert [c.text for c in cognitions.list_(store)] == [
        "Use uv, not pip.",
        "Run make test before every commit.",
    ]


def test_different_things_do_not_merge(store: Store) -> None:
    store.project_id("/p")
    ids = {
        cognitions.add(store, said(t, "2026-01-01T10:00:00Z", f"t{i}"))
        for i, t in enumerate(
            [
                "Always include assert statements in your functions.",
                "Always include assert statements in your methods.",
                "Always add the '@retry' decorator from the 'pedantic' module to all methods.",
                "Always add the '@timer' decorator from the 'pedantic' module to all methods.",
            ]
        )
    }
    assert len(ids) == 4
    assert {c.status for c in cognitions.list_(store, status=None)} == {"active"}


def test_newer_statement_supersedes_older(store: Store) -> None:
    store.project_id("/p")
    old = cognitions.add(
        store, said("For HTTP just use requests.", "2026-01-05T10:00:00Z", "t1", "decision")
    )
    new = cognitions.add(
        store,
        said("Let's drop requests and switch to httpx.", "2026-01-16T10:00:00Z", "t2", "decision"),
    )
    o, n = row(store, old), row(store, new)
    assert (o.status, o.superseded_by, o.valid_until) == ("superseded", new, "2026-01-16T10:00:00Z")
    assert (n.status, n.subject, n.extra["value"]) == ("active", "http client", "httpx")
    assert [c.id for c in cognitions.list_(store, status="superseded")] == [old]
    # an unrelated choice of another kind of tool replaces nothing
    cognitions.add(store, said("Use pnpm for the frontend.", "2026-01-17T10:00:00Z", "t3"))
    assert row(store, new).status == "active"


def test_older_statement_read_late_is_stored_superseded(store: Store) -> None:
    store.project_id("/p")
    new = cognitions.add(
        store, said("Start method names with 'md_'.", "2026-02-01T00:00:00Z", "t2")
    )
    old = cognitions.add(store, said("Start method names with 'x_'.", "2026-01-01T00:00:00Z", "t1"))
    assert (row(store, old).status, row(store, old).superseded_by) == ("superseded", new)
    assert row(store, new).status == "active"


def test_restated_old_value_becomes_current_again(store: Store) -> None:
    store.project_id("/p")
    a = cognitions.add(store, said("End variable names with '_x'.", "2026-01-01T00:00:00Z", "t1"))
    b = cognitions.add(store, said("End variable names with '_y'.", "2026-01-02T00:00:00Z", "t2"))
    again = cognitions.add(
        store, said("End variable names with '_x'.", "2026-01-03T00:00:00Z", "t3")
    )
    assert again == a
    assert (row(store, a).status, row(store, b).status) == ("active", "superseded")
    assert row(store, b).superseded_by == a


def test_scopes_do_not_mix(store: Store) -> None:
    p1, p2 = store.project_id("/one"), store.project_id("/two")
    a = cognitions.add(store, said("Use requests for HTTP.", "2026-01-01T00:00:00Z", "t1", pid=p1))
    b = cognitions.add(store, said("Use httpx for HTTP.", "2026-01-02T00:00:00Z", "t2", pid=p2))
    assert (row(store, a).status, row(store, b).status) == ("active", "active")
    wide = cognitions.remember(store, "Prefer small pull requests.")
    assert [c.id for c in cognitions.list_(store, project="/one")] == [wide, a]
    assert [c.id for c in cognitions.list_(store, project="/one", include_user_wide=False)] == [a]


def test_remember_and_forget(store: Store) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    cog_id = cognitions.remember(store, f"Never paste tokens like {token} into issues.")
    cog = row(store, cog_id)
    assert (cog.origin, cog.salience, cog.project_id, cog.category) == (
        "user",
        0.9,
        None,
        "preference",
    )
    assert token not in cog.text and "[REDACTED:github]" in cog.text
    assert [c.id for c in cognitions.search(store, "paste tokens")] == [cog_id]

    assert cognitions.forget(store, cog_id) is True
    gone = row(store, cog_id)
    assert (gone.status, gone.text, gone.keywords, gone.sources[0].quote) == (
        "forgotten",
        "",
        [],
        "",
    )
    assert cognitions.search(store, "paste tokens") == []
    assert cognitions.list_(store) == []
    # saying it again does not bring it back: the uid is kept
    assert cognitions.remember(store, f"Never paste tokens like {token} into issues.") == cog_id
    assert row(store, cog_id).status == "forgotten"
    assert cognitions.forget(store, cog_id) is False


def test_bad_category_is_refused(store: Store) -> None:
    with pytest.raises(CognitionError, match="category 'opinion' is not one of"):
        cognitions.add(store, Cognition(text="x", category="opinion"))


def test_cli_remember_memories_forget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from lmm.cli import main

    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    assert main(["remember", "Use uv, not pip.", "--project", str(tmp_path)]) == 0
    assert main(["remember", "Prefer small commits.", "--category", "workflow"]) == 0
    capsys.readouterr()
    assert main(["memories", "--project", str(tmp_path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(m["id"], m["text"], m["category"], m["origin"]) for m in shown] == [
        (2, "Prefer small commits.", "workflow", "user"),  # equal salience: newest first
        (1, "Use uv, not pip.", "preference", "user"),
    ]
    assert main(["forget", "1"]) == 0
    assert capsys.readouterr().out == "forgot #1\n"
    assert main(["memories"]) == 0
    out = capsys.readouterr().out
    assert "Use uv" not in out and "Prefer small commits. (all projects)" in out
    assert main(["forget", "7"]) == 2
    assert "no memory #7" in capsys.readouterr().err


def test_re_adding_merged_and_superseded_statements_changes_nothing(store: Store) -> None:
    store.project_id("/p")
    stated = [
        said("Use requests for HTTP.", "2026-01-01T00:00:00Z", "t1", "decision"),
        said("Please use the requests library.", "2026-01-02T00:00:00Z", "t2", "decision"),
        said("Switch to httpx, drop requests.", "2026-01-03T00:00:00Z", "t3", "decision"),
    ]
    ids = [cognitions.add(store, c) for c in stated]
    assert ids[0] == ids[1] != ids[2]
    assert row(store, ids[0]).status == "superseded" and row(store, ids[0]).evidence == 2
    before = cognitions.dump(store)
    again = [
        cognitions.put(
            store,
            said(c.text, c.sources[0].timestamp or "", c.sources[0].turn_key or "", c.category),
        )
        for c in stated
    ]
    assert [o.action for o in again] == ["unchanged", "unchanged", "unchanged"]
    assert cognitions.dump(store) == before


def test_statements_without_timestamps_settle(store: Store) -> None:
    """Sources with no time (generic imports) count as 'now'; re-adding them must not flip."""
    store.project_id("/p")
    first = [said("Use requests for HTTP.", "", "t1", "decision"), said("Use httpx.", "", "t2")]
    for c in first:
        cognitions.add(store, c)
    before = cognitions.dump(store)
    for c in first:
        assert cognitions.put(store, c).action == "unchanged"
    assert cognitions.dump(store) == before
    assert [c.text for c in cognitions.list_(store, status="superseded")] == [
        "Use requests for HTTP."
    ]
