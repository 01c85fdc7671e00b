"""Transcripts the real Claude Code CLI 2.1.332 wrote (tests/assets/cli-2.1.332, made by
tests/assets/make_cli_fixtures.py with the real binary against the Messages-API stand-in):
what lmm stores of them, and that it stores it once, on the right branch, however the files
are read incrementally."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from lmm.conversation import main_branch
from lmm.ingest.run import ingest
from lmm.ingest.transcripts import TranscriptReader, classify
from lmm.records import Turn
from lmm.store.db import Store

FIXTURES = Path(__file__).parent / "assets" / "cli-2.1.332"
SCENARIOS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
BOILERPLATE = (
    "<lmm-memory",
    "[attachment:",
    "<task-notification>",
    "<fork-boilerplate>",
    "API Error",
    "[Request interrupted",
    "skill_listing",
    "dataviz",  # a skill of the CLI's skill listing
    "<system-reminder>",
    "local-command-caveat",
)


def files(scenario: str) -> list[Path]:
    return sorted((FIXTURES / scenario).rglob("*.jsonl"))


def records(scenario: str) -> list[dict]:
    return [json.loads(line) for p in files(scenario) for line in p.read_text().splitlines()]


def stored(store: Store) -> list[Turn]:
    sids = [r[0] for r in store.db.execute("SELECT id FROM sessions ORDER BY id")]
    return [t for sid in sids for t in store.session_turns(sid)]


def ingest_whole(tmp_path: Path, scenario: str) -> Store:
    store = Store(tmp_path / f"{scenario}.db")
    ingest(store, [FIXTURES / scenario])
    return store


def spoken(turns: list[Turn]) -> Counter[tuple[str, str, str]]:
    """(session, role, text) of every user prompt and assistant text stored."""
    return Counter(
        (t.session_id, t.role, t.text)
        for t in turns
        if t.kind == "message" and t.role in ("user", "assistant")
    )


def expected_texts(scenario: str) -> tuple[set[str], set[str]]:
    """User prompts and assistant texts as the CLI wrote them (what must be stored)."""
    prompts, answers = set(), set()
    for r in records(scenario):
        message = r.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if r.get("isCompactSummary"):
            continue
        typed = isinstance(content, str) and not content.startswith("<")
        if r.get("type") == "user" and typed and not r.get("origin") and not r.get("isMeta"):
            prompts.add(content)
        if r.get("type") == "attachment" and r["attachment"]["type"] == "queued_command":
            prompts.add(r["attachment"]["prompt"])
        if r.get("type") == "assistant" and message.get("model") != "<synthetic>":
            answers |= {b["text"] for b in content or [] if b.get("type") == "text"}
    return prompts, answers


# ---- nothing but conversation


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_attachment_boilerplate_or_lmm_injection_is_stored(
    tmp_path: Path, scenario: str
) -> None:
    store = ingest_whole(tmp_path, scenario)
    rows = store.db.execute("SELECT kind, role, text, thinking, extra FROM turns").fetchall()
    assert rows
    for kind, _role, text, thinking, extra in rows:
        assert kind in ("message", "tool_result", "compact_summary", "system"), (kind, text)
        assert not any(b in text or b in thinking for b in BOILERPLATE), text
        assert json.loads(extra).get("record_type") in (None, "queued_command")
    # the fixtures do hold lmm's injection: the hooks' context reached the transcript
    if scenario == "tools":
        assert any("<lmm-memory" in json.dumps(r) for r in records(scenario))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_prompt_and_answer_is_stored_once_on_the_main_branch(
    tmp_path: Path, scenario: str
) -> None:
    store = ingest_whole(tmp_path, scenario)
    turns = stored(store)
    prompts, answers = expected_texts(scenario)
    counts = spoken(turns)
    for text in prompts:
        assert sum(n for (_, role, t), n in counts.items() if role == "user" and t == text) == 1
    for text in answers:
        assert (
            sum(n for (_, role, t), n in counts.items() if role == "assistant" and text in t) == 1
        )
    by_session: dict[str, list[Turn]] = {}
    for t in turns:
        by_session.setdefault(t.session_id, []).append(t)
    for sid, session in by_session.items():
        main = main_branch(session)
        for t in session:
            if not t.is_sidechain and t.kind == "message":
                assert t.key in main, (sid, t.role, t.text)


# ---- one case each


def test_task_notifications_are_not_the_user_speaking(tmp_path: Path) -> None:
    turns = stored(ingest_whole(tmp_path, "agents"))
    said = [t.text for t in turns if t.role == "user" and t.kind == "message" and not t.agent_id]
    assert said == ["split the work in two"]
    # the agents' reports are kept where they belong: in the sub-agents' own turns
    reports = {t.text for t in turns if t.role == "assistant" and t.agent_id}
    assert {"Report one.", "Report two.", "Follow-up answered: one."} <= reports
    calls = [c.name for t in turns if not t.agent_id for c in t.tool_calls]
    assert calls == ["Agent", "Agent", "SendMessage"]


def test_a_prompt_queued_mid_turn_is_a_user_prompt(tmp_path: Path) -> None:
    turns = stored(ingest_whole(tmp_path, "queued"))
    said = [t.text for t in turns if t.role == "user" and t.kind == "message"]
    assert said == ["start the slow task", "queued follow-up please"]
    assert "queued follow-up please" in {t.text for t in turns if t.key in main_branch(turns)}


def test_synthetic_error_and_interruption_records_are_not_model_output(tmp_path: Path) -> None:
    error = stored(ingest_whole(tmp_path, "api_error"))
    assert [t.text for t in error if t.role == "assistant"] == ["First answer.", "Recovered."]
    said = [t.text for t in error if t.role == "user"]
    assert said == ["first question", "now overload", "retry please"]
    assert not [t for t in error if t.role == "system"]  # the retried 529's api_error record
    # the answer's parent is that api_error record: it hangs under the prompt instead
    (answer,) = [t for t in error if t.text == "Recovered."]
    assert answer.parent_uuid == next(t.uuid for t in error if t.text == "retry please")
    cut = stored(ingest_whole(tmp_path, "interrupt"))
    assert [(t.role, t.text) for t in cut] == [
        ("user", "stall please"),
        ("assistant", "Partial answer before the stall"),
    ]


def test_titles_come_from_custom_title_and_agent_name(tmp_path: Path) -> None:
    store = ingest_whole(tmp_path, "compact")
    assert [r[0] for r in store.db.execute("SELECT title FROM sessions")] == ["Fixture title"]


@pytest.mark.parametrize("main_first", [True, False])
def test_a_fork_sub_agent_leaves_the_parent_turn_alone(tmp_path: Path, main_first: bool) -> None:
    (main,) = [p for p in files("fork") if "subagents" not in p.parts]
    (sub,) = [p for p in files("fork") if "subagents" in p.parts]
    store = Store(tmp_path / "lmm.db")
    for path in [main, sub] if main_first else [sub, main]:
        ingest(store, [path])
    turns = stored(store)
    calls = [(t.key, c.name) for t in turns for c in t.tool_calls]
    assert [name for _, name in calls] == ["Agent"]  # once, in the parent
    (caller,) = [t for t in turns if t.tool_calls]
    assert (caller.is_sidechain, caller.agent_id) == (False, None)
    fork = [t for t in turns if t.agent_id]
    assert [(t.role, t.text) for t in fork] == [
        ("user", "FORKED-TASK look around"),
        ("assistant", "Fork report: nothing to see."),
    ]
    assert not any(t.tool_results for t in fork)  # "Fork started" is the parent's, not a result
    main_turns = [t for t in turns if not t.is_sidechain]
    assert "please explore in a fork" in {
        t.text for t in main_turns if t.key in main_branch(main_turns)
    }


@pytest.mark.parametrize("original_first", [True, False])
def test_fork_session_copies_are_stored_once(tmp_path: Path, original_first: bool) -> None:
    paths = files("resume")
    sizes = sorted(paths, key=lambda p: -len(p.read_text().splitlines()))
    original = next(p for p in paths if "fourth prompt" not in p.read_text())
    fork = next(p for p in paths if p != original)
    assert sizes  # two files: the resumed session and its fork
    store = Store(tmp_path / "lmm.db")
    reports = [
        ingest(store, [p]) for p in ([original, fork] if original_first else [fork, original])
    ]
    counts = spoken(stored(store))
    for word in ("first", "second", "third", "fourth"):
        assert (
            sum(n for (_, r, t), n in counts.items() if r == "user" and t == f"{word} prompt") == 1
        )
    assert sum(r.turns_copied for r in reports) == 6  # three prompts and their answers
    if original_first:  # the fork's session holds only what it added
        rows = store.db.execute("SELECT text FROM turns WHERE session_id = ?", (fork.stem,))
        assert [r[0] for r in rows] == ["fourth prompt", "Answer to the fourth prompt."]


def test_parallel_tool_results_all_stay_on_the_main_branch(tmp_path: Path) -> None:
    turns = stored(ingest_whole(tmp_path, "tools"))
    results = [t for t in turns if t.kind == "tool_result"]
    assert len(results) == 4  # Bash and Write in parallel, then Read, then Edit
    assert {t.key for t in results} <= main_branch(turns)


def test_a_half_written_last_line_leaves_no_malformed_count(tmp_path: Path) -> None:
    (src,) = files("interrupt")
    data = src.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    live = tmp_path / "proj" / src.name
    live.parent.mkdir()
    live.write_bytes(data[: last + 40])  # the last record half written
    store = Store(tmp_path / "lmm.db")
    first = ingest(store, [live])
    assert (first.malformed, first.partial_lines) == (0, 1)
    live.write_bytes(data)
    second = ingest(store, [live])
    assert (second.malformed, second.partial_lines) == (0, 0)
    assert store.stats()["malformed_lines"] == 0
    assert spoken(stored(store)) == spoken(stored(ingest_whole(tmp_path, "interrupt")))


def test_a_big_file_history_snapshot_first_line_is_still_a_transcript(tmp_path: Path) -> None:
    """Hand-built: the fixtures' sessions open with small records; a long interactive session
    opens with a file-history-snapshot that can be larger than the 64 KiB sniffed."""
    (src,) = files("interrupt")
    snapshot = {
        "type": "file-history-snapshot",
        "messageId": "m0",
        "snapshot": {
            "trackedFileBackups": {f"/home/user/work/f{i}.py": "x" * 200 for i in range(600)}
        },
        "isSnapshotUpdate": False,
    }
    path = tmp_path / src.name
    path.write_bytes(json.dumps(snapshot).encode() + b"\n" + src.read_bytes())
    assert path.stat().st_size > 1 << 17
    store = Store(tmp_path / "lmm.db")
    ingest(store, [path])
    assert ("user", "stall please") in [(t.role, t.text) for t in stored(store)]


# ---- incremental reads


def _grow(store: Store, sources: list[Path], dest: Path, schedule: list[int]) -> None:
    """Copy `sources` into `dest` a line at a time, the next line of file `i` for each `i` in
    `schedule`, ingesting after every line (and now and then mid-line)."""
    lines = [p.read_bytes().splitlines(keepends=True) for p in sources]
    targets = [dest / p.relative_to(FIXTURES) for p in sources]
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_bytes(b"")
    done = [0] * len(sources)
    for step, i in enumerate(schedule):
        line = lines[i][done[i]]
        done[i] += 1
        with targets[i].open("ab") as f:
            f.write(line[: len(line) // 2])
        if step % 7 == 3:
            ingest(store, [targets[i]])
        with targets[i].open("ab") as f:
            f.write(line[len(line) // 2 :])
        ingest(store, [targets[i]])


def _schedules(sources: list[Path]) -> dict[str, list[int]]:
    """File by file, in both orders, and all files a line each in turn."""
    counts = [len(p.read_bytes().splitlines()) for p in sources]
    forward = [i for i, n in enumerate(counts) for _ in range(n)]
    backward = [i for i, n in reversed(list(enumerate(counts))) for _ in range(n)]
    turns = [i for k in range(max(counts)) for i, n in enumerate(counts) if k < n]
    return {"forward": forward, "backward": backward, "interleaved": turns}


def _on_main(turns: list[Turn]) -> set[tuple[str, str]]:
    out = set()
    for sid in {t.session_id for t in turns}:
        session = [t for t in turns if t.session_id == sid]
        main = main_branch(session)
        out |= {(sid, t.text) for t in session if t.key in main}
    return out


@pytest.mark.parametrize("scenario", ["tools", "agents", "fork", "compact", "queued", "resume"])
def test_reads_at_every_line_boundary_in_any_file_order_store_the_same(
    tmp_path: Path, scenario: str
) -> None:
    whole = stored(ingest_whole(tmp_path, scenario))
    sources = files(scenario)
    for name, schedule in _schedules(sources).items():
        store = Store(tmp_path / f"{name}.db")
        _grow(store, sources, tmp_path / name, schedule)
        got = stored(store)
        assert store.stats()["malformed_lines"] == 0
        said = Counter({(r, t): n for (_, r, t), n in spoken(got).items()})
        assert said == Counter({(r, t): n for (_, r, t), n in spoken(whole).items()}), name
        assert max(said.values()) == 1, name
        if scenario == "resume" and name != "forward":
            continue  # the fork's lines read first keep the copied turns: once, under its id
        assert spoken(got) == spoken(whole), name
        assert _on_main(got) == _on_main(whole), name
        shutil.rmtree(tmp_path / name)


def test_reader_offsets_never_pass_a_left_out_record_before_its_kept_child() -> None:
    """Read from every line boundary: the turns a resumed read yields have the parents that a
    whole read gives them."""
    (path,) = files("tools")
    whole = {t.key: t.parent_uuid for t in TranscriptReader(classify(path)) if isinstance(t, Turn)}
    reader = TranscriptReader(classify(path))
    checkpoints = set()
    for _item in reader:
        checkpoints.add((reader.offset, reader.line_no))
    for offset, line_no in sorted(checkpoints):
        for t in TranscriptReader(classify(path), offset, line_no):
            if isinstance(t, Turn):
                assert t.parent_uuid == whole[t.key], (line_no, t.key)
