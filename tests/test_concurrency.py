"""Many lmm processes on one store at once: hooks, ingests and extractions, while sessions grow.

`run_load` copies the sample's tidepool sessions, each cut to its first 40% of lines, and for
`seconds` seconds a writer thread appends the rest line by line while 8 threads run
`python -m lmm hook UserPromptSubmit | SessionEnd | PreCompact` (SessionEnd and PreCompact queue
the transcript for the background job, which ingests, extracts and embeds while the others run)
and one thread runs `lmm ingest` (which extracts) then `lmm extract`, all on one LMM_HOME.
Afterwards each session ends once more (as Claude Code does), the job is waited for until the
queue is empty, and the store must equal a clean single ingest of the final files.

The server soak (bench/server_soak.py) gets a short run here too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.serve import background
from lmm.store.db import open_store

PROJECT = "/home/dev/tidepool"
HOOKS = 8
PROMPTS = (
    "The sync crashed with sqlite3.OperationalError: database is locked. Fix it?",
    "Add a --dry-run flag to the sync command",
    "which package manager do we use here?",
    "write tests for the tide table parser",
    "why is the CI failing on the migration step?",
)
BAD = ("database is locked", "Traceback")
TURN_COLUMNS = "session_id, key, role, kind, text, thinking, tools, uuids, timestamp, cwd"


def sessions_folder(root: Path) -> tuple[Path, dict[Path, list[bytes]]]:
    """Copies of the tidepool sessions cut short; returns the folder and each file's rest."""
    folder = root / "projects" / "-home-dev-tidepool"
    folder.mkdir(parents=True)
    rest = {}
    for src in sorted((paths.sample_projects() / "-home-dev-tidepool").glob("*-*-*.jsonl")):
        lines = src.read_bytes().splitlines(keepends=True)
        cut = max(1, int(len(lines) * 0.4))
        dst = folder / src.name
        dst.write_bytes(b"".join(lines[:cut]))
        rest[dst] = lines[cut:]
    return folder, rest


def append_lines(rest: dict[Path, list[bytes]], seconds: float) -> None:
    """Append every remaining line, one write each, spread over `seconds`."""
    queue = [(path, line) for path, lines in rest.items() for line in lines]
    random.Random(7).shuffle(queue)  # interleave files ...
    order: dict[Path, list[bytes]] = {p: list(lines) for p, lines in rest.items()}
    pause = seconds / max(1, len(queue))
    for path, _ in queue:  # ... but keep each file's own line order
        with path.open("ab") as f:
            f.write(order[path].pop(0))
        time.sleep(pause)


def hook_payload(event: str, path: Path, rng: random.Random) -> bytes:
    data = {
        "session_id": path.stem,
        "transcript_path": str(path),
        "cwd": PROJECT,
        "hook_event_name": event,
        "permission_mode": "default",
    }
    if event == "UserPromptSubmit":
        data["prompt"] = rng.choice(PROMPTS)
    if event == "SessionEnd":
        data["reason"] = "other"
    if event == "PreCompact":
        data.update(trigger="auto", custom_instructions="")
    return json.dumps(data).encode()


def run(cmd: list[str], env: dict[str, str], stdin: bytes = b"") -> dict[str, Any]:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env=env, timeout=120)
    return {"cmd": cmd[3:], "rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}


def hook_cmd(event: str) -> list[str]:
    return [sys.executable, "-m", "lmm", "hook", event]


def wait_jobs(timeout: float = 120.0) -> None:
    """Wait until the background job (of $LMM_HOME) has drained the hooks' queue and exited."""
    assert background.wait_idle(timeout), f"queue not drained: {background.pending()}"


def run_load(root: Path, seconds: float) -> dict[str, Any]:
    """The load above, on the store at $LMM_HOME; returns every command's result and its path."""
    folder, rest = sessions_folder(root)
    home = paths.home()
    env = {**os.environ, "LMM_HOME": str(home)}
    files = sorted(rest)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def hooks(n: int) -> None:
        rng = random.Random(n)
        while time.monotonic() < end:
            event = rng.choice(("UserPromptSubmit", "UserPromptSubmit", "SessionEnd", "PreCompact"))
            res = run(hook_cmd(event), env, hook_payload(event, rng.choice(files), rng))
            res["event"] = event
            with lock:
                results.append(res)

    def direct() -> None:
        lmm = [sys.executable, "-m", "lmm"]
        while time.monotonic() < end:
            for cmd in ([*lmm, "ingest", str(folder.parent)], [*lmm, "extract"]):
                res = run(cmd, env)
                with lock:
                    results.append(res)

    threads = [threading.Thread(target=hooks, args=(n,)) for n in range(HOOKS)]
    threads += [
        threading.Thread(target=direct),
        threading.Thread(target=append_lines, args=(rest, seconds * 0.8)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_jobs()
    for path in files:  # every session ends, as in Claude Code
        results.append(
            run(hook_cmd("SessionEnd"), env, hook_payload("SessionEnd", path, rng=random.Random(0)))
        )
    wait_jobs()
    results.append(run([sys.executable, "-m", "lmm", "extract"], env))
    return {"results": results, "db": home / "lmm.db", "folder": folder, "home": home}


def turns(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in db.execute(f"SELECT {TURN_COLUMNS} FROM turns"))


def check_load(load: dict[str, Any], tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = load["results"]
    hooks = [r for r in results if r["cmd"][:1] == ["hook"]]
    assert len(hooks) >= HOOKS and {r["cmd"][1] for r in hooks} >= {
        "UserPromptSubmit",
        "SessionEnd",
    }
    for r in results:
        assert r["rc"] == 0, r
        for bad in BAD:
            # a hook's answer may quote the sample's own "database is locked" history
            seen = r["err"] if r["cmd"][:1] == ["hook"] else r["out"] + r["err"]
            assert bad.encode() not in seen, r
    for r in hooks:
        assert r["err"] == b"", r
        if r["out"]:  # an answer is exactly one JSON object (none when late or nothing to say)
            assert r["cmd"][1] == "UserPromptSubmit"
            data = json.loads(r["out"])
            assert list(data) == ["hookSpecificOutput"]
    log = (load["home"] / "hooks.log").read_text(errors="replace")
    assert "INFO lmm.serve.background: job: " in log  # the hooks' job learned while the others ran
    assert "ERROR" not in log
    for bad in BAD:
        assert bad not in log, re.findall(f".*{bad}.*", log)[:5]

    # a clean single ingest of the final files
    monkeypatch.setenv("LMM_HOME", str(tmp / "clean"))
    with open_store() as clean:
        ingest(clean, [load["folder"].parent])
        run_extraction(clean, get_extractor("rules"))
        expected = turns(clean.db)
    db = sqlite3.connect(load["db"])
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    got = turns(db)
    assert len(got) == len(expected)
    assert got == expected
    uuids = [r[0] for r in db.execute("SELECT j.value FROM turns, json_each(turns.uuids) j")]
    assert len(uuids) == len(set(uuids))  # no record stored twice
    active = db.execute(
        "SELECT uid, project_id, category, lower(trim(text)) FROM cognitions "
        "WHERE status = 'active'"
    ).fetchall()
    assert active
    assert len({a[0] for a in active}) == len(active)
    norm = [(a[1], a[2], " ".join(a[3].split())) for a in active]
    assert len(set(norm)) == len(norm)


def test_hooks_ingest_and_extract_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    check_load(run_load(tmp_path, seconds=15), tmp_path, monkeypatch)


@pytest.mark.slow
def test_hooks_ingest_and_extract_at_once_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    check_load(run_load(tmp_path, seconds=120), tmp_path, monkeypatch)


def load_bench() -> Any:
    path = Path(__file__).resolve().parents[1] / "bench" / "server_soak.py"
    spec = importlib.util.spec_from_file_location("server_soak", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_server_soak_short(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    soak = load_bench()
    home = tmp_path / "home"
    monkeypatch.setenv("LMM_HOME", str(home))
    soak.prepare(home)
    result = soak.soak(home, requests=500, clients=8)
    assert sum(result["counts"].values()) == 500
    assert all(result["counts"][k] > 0 for k in ("not_json", "oversize", "no_token", "wrong_token"))
    assert result["valid_ok"] == result["counts"]["valid"]
    assert (result["valid_errors"], result["invalid_unclear"]) == (0, 0), result
    assert result["server_alive_at_end"]
    assert result["p99_ms"] < 5_000
    assert not (home / "server.json").exists()  # the server cleaned up on SIGTERM


def test_concurrent_ingests_count_only_their_own_new_turns(tmp_path: Path) -> None:
    """Two `lmm ingest` of the same history at once: each turn is new to exactly one of them."""
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("bench_ingest", root / "bench" / "ingest.py")
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    history = tmp_path / "projects"
    bench.synthesize(history, 8, seed=3)  # big enough that the two runs overlap
    env = {**os.environ, "LMM_HOME": str(tmp_path / "home"), "PYTHONPATH": str(root / "src")}
    command = [sys.executable, "-m", "lmm", "ingest", "--json", "--no-extract", str(history)]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        reports.append(json.loads(out))
    with open_store(tmp_path / "home" / "lmm.db") as store:
        total = store.db.execute("SELECT count(*) FROM turns").fetchone()[0]
    assert total > 400
    assert sum(r["turns_new"] for r in reports) == total
