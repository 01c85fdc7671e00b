"""Act-time recall with the real Claude Code CLI against the Messages-API stand-in
(tests/assets/claude_cli.py): what `lmm install-hooks --act` puts in the next request to the
model. Skips when the binary is not installed (`make claude-cli`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets.claude_cli import MessagesStub, Reply, claude_bin, run_claude
from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.serve import claude_settings
from lmm.store.db import open_store

pytestmark = pytest.mark.skipif(
    claude_bin() is None,
    reason="the real Claude Code CLI is not installed: run `make claude-cli` or set LMM_CLAUDE_BIN",
)

SRC = Path(__file__).resolve().parents[1] / "src"
PROJECT = "/home/dev/tidepool"  # the sample history's project; the CLI runs in a folder below it


@pytest.fixture
def store_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lmm"
    monkeypatch.setenv("LMM_HOME", str(home))
    with open_store() as store:
        ingest(store, [paths.sample_projects()])
        run_extraction(store, get_extractor("rules"))
    return home


def act_settings(tmp_path: Path) -> dict[str, object]:
    """What `lmm install-hooks --act` writes, read back from a real settings file."""
    path = tmp_path / "settings.json"
    claude_settings.install(path, act=True)
    return json.loads(path.read_text())


def run(tmp_path: Path, store_home: Path, command: str) -> MessagesStub:
    stub = MessagesStub()
    stub.on("go on", Reply.tool("Bash", {"command": command}), Reply.text("Done."))
    cwd = tmp_path / "home" / "dev" / "tidepool"
    with stub:
        run_claude(
            ["-p", "go on"],
            stub=stub,
            home=tmp_path / "home",
            cwd=cwd,
            settings=act_settings(tmp_path),
            env={"LMM_HOME": str(store_home), "PYTHONPATH": str(SRC)},
        )
    return stub


@pytest.fixture
def project_cwd(store_home: Path, tmp_path: Path) -> None:
    """The stored project is /home/dev/tidepool; the CLI's cwd is a folder of this test, so
    the store learns that folder as the same project (what a user's own checkout would be)."""
    cwd = tmp_path / "home" / "dev" / "tidepool"
    cwd.mkdir(parents=True)
    with open_store() as store:
        store.db.execute("UPDATE projects SET path = ? WHERE path = ?", (str(cwd), PROJECT))
        store.db.commit()


def test_a_repeated_failure_brings_its_lesson_into_the_next_request(
    tmp_path: Path, store_home: Path, project_cwd: None
) -> None:
    stub = run(tmp_path, store_home, ".venv/bin/python -m tidepool.cli --help")
    last = stub.main_requests()[-1]
    assert "PreToolUse:Bash hook additional context" in last.all_text()
    assert "uv pip install -e ." in last.all_text()
    assert '<lmm-memory kind="act">' in last.all_text()


def test_a_forbidden_command_is_refused_in_print_mode_with_the_rule_as_the_reason(
    tmp_path: Path, store_home: Path, project_cwd: None
) -> None:
    stub = run(tmp_path, store_home, "pip install requests")
    text = stub.main_requests()[-1].all_text()
    # `permissionDecision: "ask"` in -p mode: the call does not run; the model reads the reason
    assert "lmm: this may break a rule you stated earlier" in text
    assert "Never `pip install` anything in this repo" in text


def test_an_unrelated_command_adds_nothing(
    tmp_path: Path, store_home: Path, project_cwd: None
) -> None:
    stub = run(tmp_path, store_home, "ls")
    last = stub.main_requests()[-1].all_text()
    assert len(stub.main_requests()) == 2  # the call ran and its result went back
    assert '<lmm-memory kind="project">' in last  # the other hooks still answer
    assert '<lmm-memory kind="act">' not in last
    assert "PreToolUse" not in last
