"""The living loop: session-end hooks queue transcripts, one background job per store learns from
them (ingest with sub-agents, rule extraction, embedding), and `lmm ingest` extracts by default."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assets.hookproc import run_hook_command
from lmm import paths
from lmm.retrieve.embed import DEFAULT_MODEL, FakeEmbedder
from lmm.serve import background, hooklog, hooks, learn
from lmm.store.db import open_store

SAMPLE = paths.sample_projects() / "-home-dev-tidepool"
WITH_AGENT = "e3b8afa4-b77f-4150-a7f3-a1049b2966f7"  # has subagents/agent-a7c2e91f04b3d5a68.jsonl
OTHERS = (
    "1d0fc087-8764-4ca2-9ad8-4fd83b0eb742",
    "eddc9ef6-3a6b-4604-b7fa-a6447aca8142",
    "75725dcd-11e3-4d56-ba4d-8b0fe302b8b2",
)
JOB_TIMEOUT = 90.0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LMM_HOME", str(home))
    return home


def copy_session(root: Path, session: str) -> Path:
    """The sample session (and its sub-agent folder) under root/projects; its main file."""
    folder = root / "projects" / "-home-dev-tidepool"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLE / f"{session}.jsonl", folder)
    if (SAMPLE / session).is_dir():
        shutil.copytree(SAMPLE / session, folder / session)
    return folder / f"{session}.jsonl"


def stored(session: str) -> dict[str, int]:
    """Turns of the session (main and sub-agent) and cognitions sourced from it."""
    with open_store() as store:
        db = store.db
        main = db.execute(
            "SELECT count(*) FROM turns WHERE session_id = ? AND agent_id IS NULL", (session,)
        ).fetchone()[0]
        agent = db.execute(
            "SELECT count(*) FROM turns WHERE session_id = ? AND agent_id IS NOT NULL", (session,)
        ).fetchone()[0]
        cogs = db.execute(
            "SELECT count(DISTINCT cognition_id) FROM cognition_sources WHERE session_id = ?",
            (session,),
        ).fetchone()[0]
    return {"main": int(main), "agent": int(agent), "cognitions": int(cogs)}


def job_cmd() -> list[str]:
    return [sys.executable, "-m", "lmm.serve.background"]


def hook_end(home: Path, transcript: Path, event: str = "SessionEnd") -> Any:
    data = {
        "session_id": transcript.stem,
        "transcript_path": str(transcript),
        "cwd": "/home/dev/tidepool",
        "hook_event_name": event,
        "reason": "exit",
    }
    env = {**os.environ, "LMM_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lmm", "hook", event],
        input=json.dumps(data).encode(),
        capture_output=True,
        env=env,
        timeout=60,
    )


def log_text(home: Path) -> str:
    return (home / hooklog.LOG_NAME).read_text(errors="replace")


# ---- the queue and the lock


def test_entries_queue_in_order_and_a_held_lock_starts_no_job(home: Path, tmp_path: Path) -> None:
    a, b = copy_session(tmp_path, OTHERS[0]), copy_session(tmp_path, OTHERS[1])
    held = background._try_lock()  # a running job
    assert held is not None
    try:
        assert background.job_running()
        start = time.perf_counter()
        assert hooks.start_ingest(str(a)) is None  # queued for the running job
        assert hooks.start_ingest(str(b)) is None
        elapsed = time.perf_counter() - start
        assert hooks.start_ingest(str(tmp_path / "gone.jsonl")) is None  # not queued
        entries = background.pending()
        assert background._read_entries(entries) == [str(a), str(b)]
        assert not background.idle()
        assert background.run_job() == 0  # a second job leaves the queue to the holder
        assert len(background.pending()) == 2
    finally:
        background._unlock(held)
    assert elapsed < 0.5  # two queue files; no store, no process started
    assert not background.job_running()


def test_the_session_end_hook_stays_light(home: Path, tmp_path: Path) -> None:
    """Under `-X importtime`: the hook queues and starts the job, but reads no store itself."""
    transcript = copy_session(tmp_path, OTHERS[0])
    payload = {"session_id": OTHERS[0], "transcript_path": str(transcript), "cwd": "/x"}
    proc = run_hook_command(home, payload, event="SessionEnd")
    assert (proc.returncode, proc.stdout) == (0, b"")
    loaded = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()]
    assert "lmm.serve.background" in loaded
    heavy = ("lmm.store.db", "lmm.ingest.run", "lmm.serve.learn", "sqlite3", "dataclasses", "numpy")
    assert [m for m in loaded if m in heavy] == []
    assert background.wait_idle(JOB_TIMEOUT)
    assert stored(OTHERS[0])["main"] > 0


def test_many_hooks_at_once_lose_no_transcript(home: Path, tmp_path: Path) -> None:
    sessions = [WITH_AGENT, *OTHERS]
    transcripts = [copy_session(tmp_path, s) for s in sessions]
    results: list[Any] = []

    def fire(path: Path, event: str) -> None:
        results.append(hook_end(home, path, event))

    threads = [
        threading.Thread(target=fire, args=(path, event))
        for path in transcripts
        for event in ("PreCompact", "SessionEnd")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [(r.returncode, r.stdout, r.stderr) for r in results] == [(0, b"", b"")] * 8
    assert background.wait_idle(JOB_TIMEOUT), background.pending()
    for session in sessions:
        got = stored(session)
        assert got["main"] > 0 and got["cognitions"] > 0, (session, got)
    assert stored(WITH_AGENT)["agent"] == 5  # the sub-agent file beside the session
    log = log_text(home)
    assert "job: " in log and "Traceback" not in log
    assert "extracted rules:" in log
    assert "not embedded: the store holds no all-MiniLM-L6-v2 vectors" in log


def test_two_jobs_started_together_process_both_transcripts(home: Path, tmp_path: Path) -> None:
    a, b = copy_session(tmp_path, OTHERS[0]), copy_session(tmp_path, OTHERS[1])
    background.enqueue(str(a))
    background.enqueue(str(b))
    env = {**os.environ, "LMM_HOME": str(home)}
    procs = [subprocess.Popen(job_cmd(), env=env, stderr=subprocess.PIPE) for _ in range(2)]
    errors = [p.communicate(timeout=JOB_TIMEOUT)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0] and errors == [b"", b""]
    assert background.pending() == [] and not background.job_running()
    assert stored(OTHERS[0])["main"] > 0 and stored(OTHERS[1])["main"] > 0


KILLABLE_JOB = """
import sys, time
import lmm.serve.learn
from lmm.serve import background

def stuck(*args, **kwargs):  # the job is mid-way: lock held, entries taken, nothing written
    print("learning", flush=True)
    time.sleep(600)

lmm.serve.learn.learn = stuck
background.run_job()
"""


def test_a_killed_job_leaves_its_entries_to_the_next(home: Path, tmp_path: Path) -> None:
    a, b = copy_session(tmp_path, OTHERS[0]), copy_session(tmp_path, OTHERS[1])
    background.enqueue(str(a))
    env = {**os.environ, "LMM_HOME": str(home)}
    job = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_JOB], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert job.stdout is not None and job.stdout.readline() == "learning\n"
        assert background.job_running()
        assert hooks.start_ingest(str(b)) is None  # queued behind the stuck job
    finally:
        job.send_signal(signal.SIGKILL)
        job.wait()
    assert len(background.pending()) == 2 and not background.job_running()
    assert stored(OTHERS[0])["main"] == 0
    pid = hooks.start_ingest(str(a))  # the next session end starts a job: it takes all three
    assert pid is not None
    assert background.wait_idle(JOB_TIMEOUT), background.pending()
    assert stored(OTHERS[0])["main"] > 0 and stored(OTHERS[1])["main"] > 0


def test_a_failing_round_is_retried_then_set_aside(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(learn, "learn", broken)
    background.enqueue(str(copy_session(tmp_path, OTHERS[0])))
    assert background.run_job() == background.ATTEMPTS
    assert len(calls) == background.ATTEMPTS
    assert background.pending() == []
    left = os.listdir(background.queue_dir())
    assert len(left) == 1 and left[0].endswith(".failed")


def test_a_vanished_transcript_is_logged_and_dropped(
    home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = copy_session(tmp_path, OTHERS[0])
    background.enqueue(str(gone))
    gone.unlink()
    with caplog.at_level(logging.WARNING, logger="lmm"):
        assert background.run_job() == 1
    assert background.pending() == []
    assert f"transcript {gone} does not exist" in caplog.text


# ---- what one round learns


def test_learn_ingests_subagents_extracts_and_embeds_only_what_is_new(
    home: Path, tmp_path: Path
) -> None:
    transcript = copy_session(tmp_path, WITH_AGENT)
    lines = transcript.read_bytes().splitlines(keepends=True)
    transcript.write_bytes(b"".join(lines[: len(lines) // 2]))
    files = learn.with_subagents([transcript, tmp_path / "gone.jsonl"])
    assert [f.name for f in files] == [transcript.name, "agent-a7c2e91f04b3d5a68.jsonl"]
    with open_store() as store:
        first = learn.learn(store, files, embedder=FakeEmbedder())
        assert first.ingest.subagents == 1 and first.extract is not None
        assert first.embed is not None and first.embed.turns > 0
        with transcript.open("ab") as f:
            f.writelines(lines[len(lines) // 2 :])
        second = learn.learn(store, files, embedder=FakeEmbedder())
        assert second.ingest.turns_new > 0
        assert second.extract is not None and second.extract.sessions == 1
        assert second.embed is not None
        assert 0 < second.embed.turns <= second.ingest.turns_new  # only the new turns
        vectors = store.db.execute(
            "SELECT count(*) FROM vectors WHERE item_kind = 'turn'"
        ).fetchone()[0]
        assert vectors == first.embed.turns + second.embed.turns
        assert "embedded" in second.summary() and "extracted rules" in second.summary()


def test_auto_embedder_needs_the_packaged_models_vectors(home: Path) -> None:
    with open_store() as store:
        embedder, why = learn.auto_embedder(store)
        assert embedder is None and why is not None and "lmm embed" in why
        store.db.execute("INSERT INTO embedders (model, dim) VALUES ('fake-hash', 64)")
        assert learn.auto_embedder(store)[0] is None  # another model's vectors: not ours to add
        store.db.execute(f"INSERT INTO embedders (model, dim) VALUES ('{DEFAULT_MODEL}', 384)")
        embedder, why = learn.auto_embedder(store)
    installed = why is None
    assert (embedder is not None) == installed
    if not installed:
        assert why is not None and "pip install" in why


# ---- the CLI


def lmm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LMM_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "lmm", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_ingest_extracts_by_default(tmp_path: Path) -> None:
    sample = str(paths.sample_projects())
    done = lmm(tmp_path / "a", "ingest", sample, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["turns_new"] > 100 and report["extract"]["added"] > 0 and report["embed"] is None
    memories = json.loads(lmm(tmp_path / "a", "memories", "--json").stdout)
    assert any("uv" in m["text"] for m in memories)

    skipped = lmm(tmp_path / "b", "ingest", sample, "--no-extract", "--json")
    assert json.loads(skipped.stdout)["extract"] is None
    assert json.loads(lmm(tmp_path / "b", "memories", "--json").stdout) == []
    later = json.loads(lmm(tmp_path / "b", "ingest", sample, "--json").stdout)
    assert later["turns_new"] == 0 and later["extract"]["added"] > 0  # turns read before


def test_older_layout_agent_files_beside_the_session_are_learned_too(tmp_path: Path) -> None:
    """Claude Code 1.x wrote sub-agents as <project>/agent-<id>.jsonl beside the session file."""
    import json as _json

    project = tmp_path / "-home-dev-app"
    project.mkdir()
    main = project / "s-main.jsonl"
    main.write_text(_json.dumps({"type": "user", "sessionId": "s-main", "uuid": "u1"}) + "\n")
    mine = project / "agent-aaa.jsonl"
    mine.write_text(_json.dumps({"type": "user", "sessionId": "s-main", "isSidechain": True,
                                 "agentId": "aaa", "uuid": "a1"}) + "\n")  # fmt: skip
    other = project / "agent-bbb.jsonl"
    other.write_text(_json.dumps({"type": "user", "sessionId": "s-other", "uuid": "b1"}) + "\n")
    assert learn.with_subagents([main]) == [main, mine]
