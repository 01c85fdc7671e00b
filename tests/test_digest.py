"""Session digests: the reply parser, grounded lines kept as cognitions with their source turns,
invented lines dropped, the background step's switch, lock and once-per-session rule, and the
background job calling it last."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lmm import paths
from lmm.errors import LmmError
from lmm.lm.base import Message
from lmm.lm.models import ScriptedLM
from lmm.memory import digest
from lmm.memory.digest import DigestConfig, after_session_end, digest_session, parse
from lmm.store import cognitions
from lmm.store.db import Store

S2 = "1d0fc087-8764-4ca2-9ad8-4fd83b0eb742"  # the sample session that fixed "database is locked"
OTHER = "eddc9ef6-3a6b-4604-b7fa-a6447aca8142"


@pytest.fixture
def digest_store(sample_store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The sample store with digests on (no `LMM_DIGEST`) and `LMM_GPU=1` (no renicing)."""
    monkeypatch.setenv("LMM_GPU", "1")  # no renicing the test process
    monkeypatch.delenv("LMM_DIGEST", raising=False)
    return sample_store


def _number(messages: list[Message], needle: str) -> int:
    line = next(x for x in messages[-1]["content"].splitlines() if needle in x)
    return int(line[1 : line.index("]")])


def _digest_reply(messages: list[Message]) -> str:
    fix = _number(messages, "Fixed. `sqlite3.OperationalError")
    commit = _number(messages, "Committed on `feat/fetch`")
    return (
        f"Done:\n- Committed fetch_readings and sync on feat/fetch (3e1b7c2) [{commit}].\n"
        "Decided:\nnone\n"
        f"Failed and fixed:\n- sqlite3.OperationalError: database is locked; fixed with a "
        f"busy timeout and a commit per station [{fix}].\n"
        "- The moon landing was faked by the build server [2].\n"
        "- The manual tidepool sync crashed when cron started one.\n"  # no number: lmm cites
        f"- database is locked [{fix}].\n"  # grounded, but too short to say anything
        "Open:\n- Nothing cited here.\n"
    )


def test_parse_reads_headings_and_skips_none() -> None:
    reply = (
        "Here is the digest.\nDone: added X [1]\n* tested Y [2]\nDecided:\n- none\nOPEN:\nZ [3]\n"
        "FIXED: a test failed; Q fixed it [4]\nDone when ready [5]\nOPEN: assistant: W is next [6]"
    )
    assert parse(reply) == [
        ("done", "added X [1]"),
        ("done", "tested Y [2]"),
        ("open", "Z [3]"),
        ("fixed", "a test failed; Q fixed it [4]"),
        ("fixed", "Done when ready [5]"),  # no colon: not a heading
        ("open", "W is next [6]"),  # a copied turn's speaker is not part of the line
    ]


def test_digest_keeps_grounded_lines_as_cognitions_with_their_turns(digest_store: Store) -> None:
    lm = ScriptedLM(respond=_digest_reply)
    result = digest_session(digest_store, S2, lm)
    assert [(line.section, line.text[:30]) for line in result.lines] == [
        ("done", "Committed fetch_readings and s"),
        ("fixed", "sqlite3.OperationalError: data"),
        ("fixed", "The manual tidepool sync crash"),
    ]
    crash = _number(lm.calls[0], "cron kicked off a sync")
    assert result.lines[2].turns == [crash]
    assert len(result.dropped) == 3  # the invented line, one no turn supports, the short one
    cogs = [cognitions.get(digest_store, i) for i in result.stored]
    assert [(c.category, c.origin, c.extra["digest"]) for c in cogs if c] == [
        ("fact", "digest", "done"),
        ("lesson", "digest", "fixed"),
        ("lesson", "digest", "fixed"),
    ]
    lesson = cogs[1]
    assert lesson is not None and "[" not in lesson.text
    [source] = lesson.sources
    assert source.session_id == S2 and source.uuid and "busy" in source.quote.lower()
    turn = digest_store.db.execute(
        "SELECT text FROM turns WHERE session_id = ? AND key = ?", (S2, source.turn_key)
    ).fetchone()
    assert turn is not None and turn["text"].startswith("Fixed.")
    prompt = lm.calls[0][-1]["content"]
    assert prompt.count("\n[") >= 10 and "FIXED:" in prompt


def test_the_prompt_fits_its_budget(digest_store: Store) -> None:
    lm = ScriptedLM(default="none")
    small = digest_session(digest_store, S2, lm, DigestConfig(prompt_tokens=300))
    assert small.prompt_tokens <= 300 + 250  # the turns' budget + the instructions
    assert digest_session(digest_store, S2, lm).prompt_tokens > small.prompt_tokens
    with pytest.raises(LmmError, match="lmm ingest"):
        digest_session(digest_store, "no-such-session", lm)


def test_after_session_end_runs_once_and_can_be_switched_off(
    digest_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMM_DIGEST", "0")
    lm = ScriptedLM(respond=_digest_reply)
    assert after_session_end(digest_store, S2, lm=lm) is None and lm.calls == []
    monkeypatch.setenv("LMM_DIGEST", "1")
    result = after_session_end(digest_store, S2, lm=lm)
    assert result is not None and len(result.stored) == 3
    assert (paths.home() / digest.LOCK_FILE).is_file()
    assert after_session_end(digest_store, S2, lm=lm) is None  # digested already
    assert len(lm.calls) == 1
    quiet = ScriptedLM(default="none")  # a digest that keeps nothing counts as done too
    assert after_session_end(digest_store, OTHER, lm=quiet) is not None
    assert after_session_end(digest_store, OTHER, lm=quiet) is None and len(quiet.calls) == 1
    with digest_store.transaction():  # the session goes on after a compaction: digested again
        digest_store.db.execute(
            "INSERT INTO turns (session_id, key, role, kind, text, line_no) "
            "SELECT session_id, key || '-more', role, kind, text, line_no + 1000 FROM turns "
            "WHERE session_id = ? LIMIT 1",
            (OTHER,),
        )
    assert after_session_end(digest_store, OTHER, lm=quiet) is not None and len(quiet.calls) == 2


def test_after_learning_digests_known_sessions_once(
    digest_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm = ScriptedLM(respond=_digest_reply)
    files = [f"/x/{S2}.jsonl", "/x/not-a-session.jsonl"]
    [result] = digest.after_learning(digest_store, files, lm=lm)
    assert result.session_id == S2 and len(result.stored) == 3
    assert digest.after_learning(digest_store, files, lm=lm) == []  # digested already
    monkeypatch.setenv("LMM_DIGEST", "0")
    assert digest.after_learning(digest_store, [f"/x/{OTHER}.jsonl"], lm=lm) == []
    assert len(lm.calls) == 1


def test_after_learning_needs_a_fast_runtime(
    digest_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.lm import llamacpp, models

    monkeypatch.setenv("LMM_GPU", "0")
    monkeypatch.setattr(llamacpp, "available", lambda: False)

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(models, "generator", no_model)
    assert digest.after_learning(digest_store, [f"/x/{S2}.jsonl"]) == []


def test_the_background_job_digests_last_and_survives_its_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, digest_store: Store
) -> None:
    from lmm.serve import background

    digest_store.close()
    seen: list[list[str]] = []

    def fake(digest_store: Store, transcripts: list[str], lm: object = None) -> list[object]:
        seen.append(transcripts)
        raise RuntimeError("model on fire")

    monkeypatch.setattr(digest, "after_learning", fake)
    folder = tmp_path / "projects" / "-home-dev-tidepool"
    folder.mkdir(parents=True)
    transcript = folder / f"{S2}.jsonl"
    shutil.copy(paths.sample_projects() / "-home-dev-tidepool" / f"{S2}.jsonl", transcript)
    background.enqueue(str(transcript))
    assert background.run_job() == 1
    assert seen == [[str(transcript)]]
    assert background.pending() == []  # the failed digest sent nothing back to the queue
