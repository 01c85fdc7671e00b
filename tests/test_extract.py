"""Extraction: the seam and its validation, real transcripts, idempotence, increments, sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmm.ingest.run import ingest
from lmm.memory.extract import load_session, run_extraction
from lmm.memory.extract_rules import RuleExtractor
from lmm.memory.seam import Candidate, SessionView, validate
from lmm.records import SessionInfo, ToolCall, Turn
from lmm.store import cognitions
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = DATA / "claude_sessions/claude-code-log-iansherr-fork/test/test_data/real_projects"
SAMPLE = Path(__file__).resolve().parents[1] / "src/lmm/sample/projects"


def view(*turns: Turn) -> SessionView:
    return SessionView("s1", "/p", 1, list(turns))


def test_validate_names_what_is_wrong() -> None:
    t = Turn("s1", "k1", "user", "message", "Always use uv, not pip.")
    call = Turn(
        "s1",
        "k2",
        "assistant",
        "message",
        "",
        tool_calls=[ToolCall("c", "Bash", '{"command":"make test"}')],
    )
    v = view(t, call)
    ok = Candidate("preference", "Use uv, not pip.", "k1", "use uv,  NOT pip")
    assert validate(ok, v) is None
    assert validate(Candidate("workflow", "make test", "k2", "make test"), v) is None  # tool input
    cases = {
        "category 'opinion' is not one of": Candidate("opinion", "x", "k1", "use uv"),
        "empty text": Candidate("preference", "  ", "k1", "use uv"),
        "no source turn": Candidate("preference", "x", "", "use uv"),
        "source turn 'k9' is not in session s1": Candidate("preference", "x", "k9", "use uv"),
        "quote not found in turn 'k1'": Candidate("preference", "x", "k1", "use poetry"),
        "no quote from turn 'k1'": Candidate("preference", "x", "k1", " "),
        "quote not found in turn 'k2'": Candidate(
            "fact", "x", "k1", "use uv", more=[("k2", "npm")]
        ),
    }
    for reason, cand in cases.items():
        got = validate(cand, v)
        assert got is not None and got.startswith(reason), (reason, got)


class FakeExtractor:
    """A deterministic extractor through the real seam: one candidate per user turn, plus one
    that fails grounding."""

    name = "fake"

    def extract(self, session: SessionView) -> list[Candidate]:
        out = [
            Candidate("fact", f"said: {t.text}", t.key, t.text)
            for t in session.turns[session.first_new :]
            if t.role == "user"
        ]
        return [*out, Candidate("fact", "invented", session.turns[0].key, "never said")]


def _session(store: Store, sid: str, texts: list[str], start: int = 0) -> None:
    store.add_session(SessionInfo(sid, "generic", project="/p"))
    store.add_turns(
        Turn(sid, f"{sid}-{i}", "user", "message", text, timestamp=f"2026-01-0{i + 1}T00:00:00Z")
        for i, text in enumerate(texts, start=start)
    )


def test_run_extraction_is_incremental_and_validates(tmp_path: Path) -> None:
    with Store(tmp_path / "lmm.db") as store:
        _session(store, "a", ["one", "two"])
        first = run_extraction(store, FakeExtractor())
        assert (first.sessions, first.candidates, first.added, first.rejected) == (
            1,
            3,
            2,
            {"quote": 1},
        )
        again = run_extraction(store, FakeExtractor())
        assert (again.sessions, again.sessions_unchanged, again.candidates) == (0, 1, 0)
        _session(store, "a", ["three"], start=2)
        more = run_extraction(store, FakeExtractor())
        assert (more.sessions, more.candidates, more.added) == (1, 2, 1)
        assert load_session(store, "a", after_turn_id=2).first_new == 2
        texts = sorted(c.text for c in cognitions.list_(store))
        assert texts == ["said: one", "said: three", "said: two"]


def _dump(store: Store) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for table in ("cognitions", "cognition_sources", "extraction_state"):
        rows += [(table, *r) for r in store.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3")]
    return rows


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    if not REAL.exists():
        pytest.skip(f"real transcripts not found at {REAL} (shared data absent)")
    store = Store(tmp_path_factory.mktemp("real") / "lmm.db")
    ingest(store, [REAL])
    run_extraction(store, RuleExtractor())
    return store


def test_second_extraction_changes_nothing(real_store: Store) -> None:
    before = _dump(real_store)
    assert len(before) > 60
    report = run_extraction(real_store, RuleExtractor())
    assert (report.sessions, report.added, report.merged) == (0, 0, 0)
    full = run_extraction(real_store, RuleExtractor(), full=True)
    assert full.sessions == report.sessions_unchanged and full.candidates > 40
    assert (full.added, full.merged, full.superseded) == (0, 0, 0)
    assert _dump(real_store) == before


# (category, text fragment, session id, source turn key, source record uuid): read off the real
# sessions by hand. Keys of assistant turns are API message ids; other turns are keyed by uuid.
EXPECTED = [
    (
        "gotcha",
        "`pytest` fails here (/bin/bash: line 1: pytest: command not found); `source "
        ".venv/bin/activate && pytest` works instead.",
        "a7da6a22-facc-4fcd-8bab-f83c87862004",
        "84cd96f7-b2c8-4846-ab0f-4bab1aedfc8a",
        "84cd96f7-b2c8-4846-ab0f-4bab1aedfc8a",
    ),
    (
        "workflow",
        "To run the tests: `source .venv/bin/activate && pytest`.",
        "a7da6a22-facc-4fcd-8bab-f83c87862004",
        "msg_013x61A4RGQBhaEo6PPME6d3",
        "c9f8bb2e-f14a-42b8-bc7c-d2a7989fd72e",
    ),
    (
        "workflow",
        "To lint: `source .venv/bin/activate && ruff check`.",
        "a7da6a22-facc-4fcd-8bab-f83c87862004",
        "msg_01J7jYMRV7yFSWbMH4ALtTuj",
        "284edb4d-e0d7-4dce-9ab7-c0cffbc2e201",
    ),
    (
        "workflow",
        "A PostToolUse hook runs `uv run ruff format` after edits.",
        "0d3a8e6f-290f-4105-a327-a2496e5e2a83",
        "6a3d4d74-599e-48c1-aba4-d93c4aa3d87b",
        "6a3d4d74-599e-48c1-aba4-d93c4aa3d87b",
    ),
    (
        "workflow",
        "A Stop hook runs `uv run pyright`.",
        "0d3a8e6f-290f-4105-a327-a2496e5e2a83",
        "48dbd9b0-fce9-4938-beca-2d3cbaba4584",
        "48dbd9b0-fce9-4938-beca-2d3cbaba4584",
    ),
    (
        "workflow",
        "To type-check: `uv run ty check`.",
        "326189cf-5676-4237-8cde-1ce80aae4a9f",
        "msg_01EBZ2iipDbK9CDDJWALzTbC",
        "372810ff-a9c6-423a-80c4-034b2c93a1ec",
    ),
    (
        "workflow",
        "To run the tests: `uv run pytest`.",
        "07f2e15c-a38b-454b-9148-60edc06de401",
        "msg_01QWyPu4SkvPfJaf2dDm2Kw3",
        "439cdbb9-ce56-4bef-8490-8bbc3fa58cec",
    ),
    (
        "lesson",
        "TypeError: unsupported operand type(s) for /: 'str' and 'str' → I need to pass "
        "a Path object instead of a string.",
        "37f83ec9-f2ea-42a9-925e-0d5c105cb6e8",
        "659102c3-bc27-44de-94e1-5247f6d4985a",
        "659102c3-bc27-44de-94e1-5247f6d4985a",
    ),
    (
        "preference",
        "Use pnpm",
        "7acd37a8-2745-4b58-a8a9-46164b22ad9e",
        "01cc930d-253a-4632-831c-ee2567287ac8",
        "01cc930d-253a-4632-831c-ee2567287ac8",
    ),
    (
        "preference",
        "I don't want to make it only work for me or make assumptions about people's env.",
        "7acd37a8-2745-4b58-a8a9-46164b22ad9e",
        "4838f5cc-f8fc-4b0a-9d05-e12ccd7c8d42",
        "4838f5cc-f8fc-4b0a-9d05-e12ccd7c8d42",
    ),
    (
        "decision",
        "Fine, let's do vite",
        "7acd37a8-2745-4b58-a8a9-46164b22ad9e",
        "85db6bba-2474-4258-b94f-32e1d4195e0f",
        "85db6bba-2474-4258-b94f-32e1d4195e0f",
    ),
    (
        "decision",
        "Let's also Migrate to AudioWorklet",
        "7acd37a8-2745-4b58-a8a9-46164b22ad9e",
        "d1a5b534-335f-4f10-b472-d3d78362541b",
        "d1a5b534-335f-4f10-b472-d3d78362541b",
    ),
    (
        "decision",
        "Let's keep the name of the py file but change the pyproject script to reference it",
        "cb2e607c-c758-415a-8b45-c49e4631906a",
        "8f25a85d-06d8-44a7-bd36-20ecc95dfe38",
        "8f25a85d-06d8-44a7-bd36-20ecc95dfe38",
    ),
]


def test_real_sessions_yield_known_cognitions(real_store: Store) -> None:
    found = cognitions.list_(real_store, status=None)  # superseded ones keep their sources
    assert len({e[0] for e in EXPECTED}) >= 4 and len(EXPECTED) >= 12
    for category, fragment, session_id, turn_key, uuid in EXPECTED:
        matches = [c for c in found if c.category == category and fragment in c.text]
        assert len(matches) == 1, (category, fragment, [c.text for c in found])
        first = matches[0].sources[0]
        assert (first.session_id, first.turn_key, first.uuid) == (session_id, turn_key, uuid)
        assert first.quote and matches[0].origin == "rules"
        turn = load_session(real_store, session_id).turn(turn_key)
        assert turn is not None and turn.uuid == uuid


def test_real_sessions_have_no_chatter(real_store: Store) -> None:
    """Questions, task requests and pasted documentation are not knowledge."""
    texts = [c.text for c in cognitions.list_(real_store, status=None)]
    for noise in ("Can you please", "Tools can be invoked", "Does this doc page help", "?"):
        assert not any(t.startswith(noise) or t.endswith(noise) for t in texts), noise


def test_real_sessions_read_as_rules_and_lessons_not_session_logs(real_store: Store) -> None:
    """What a session edited is no memory; a newer command for one purpose supersedes the
    older; a test's own assertion or a mistyped path is no lesson."""
    found = cognitions.list_(real_store)
    assert not [c.text for c in found if "worked mainly on" in c.text]
    every = {c.text: c for c in cognitions.list_(real_store, status=None)}
    pyright, ty = (
        every["To type-check: `uv run pyright`."],
        every["To type-check: `uv run ty check`."],
    )
    assert (pyright.status, pyright.superseded_by, ty.status) == ("superseded", ty.id, "active")
    old_fmt, new_fmt = every["To format: `uv run ruff format`."], every["To format: `ruff format`."]
    assert (old_fmt.status, old_fmt.superseded_by) == ("superseded", new_fmt.id)
    hooks = [c.text for c in found if c.text.startswith("A Stop hook")]
    assert not any("`uv run pyright`" in t for t in hooks)
    assert "A Stop hook runs `uv run pytest`." in hooks  # a hook for another purpose stays
    lessons = [c.text for c in found if c.category == "lesson"]
    assert not [t for t in lessons if t.startswith(("AssertionError", "ERROR: file or directory"))]
    assert any(
        t.startswith("ValueError: Unable to determine which files to ship →") for t in lessons
    )


def test_sample_history_supersedes_reversed_decisions(tmp_path: Path) -> None:
    with Store(tmp_path / "lmm.db") as store:
        ingest(store, [SAMPLE])
        report = run_extraction(store, RuleExtractor())
        assert report.superseded == 2
        by_text = {c.text: c for c in cognitions.list_(store, status=None)}
        requests = by_text["For HTTP just use requests, it's the simplest thing."]
        httpx = by_text["Let's drop requests and switch to httpx everywhere."]
        cron = by_text["Cron is fine for now."]
        apscheduler = next(
            t for t in by_text if t.startswith("Let's switch the scheduler from cron")
        )
        assert (requests.status, requests.superseded_by) == ("superseded", httpx.id)
        assert (cron.status, cron.superseded_by) == ("superseded", by_text[apscheduler].id)
        assert requests.valid_until == httpx.valid_from
        assert {by_text[apscheduler].status, httpx.status} == {"active"}
        active = [c.text for c in cognitions.list_(store, category="preference")]
        assert "Ground rule number one: use uv, not pip." in active
        assert "Please don't add comments that just restate the code." in active
        lesson = next(c for c in cognitions.list_(store, category="lesson") if "tidepool" in c.text)
        assert lesson.text == (
            "`.venv/bin/python -m tidepool.cli --help` failed (ModuleNotFoundError: No module "
            "named 'tidepool'); running `uv pip install -e .` fixed it."
        )
        assert lesson.sources[0].turn_key == "daac0594-8492-4c6c-b749-03a16d7fc2be"
