"""Act-time recall (lmm.retrieve.act, the PreToolUse hook): what reaches the agent before a tool
call."""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.retrieve import act
from lmm.serve import claude_settings, ops
from lmm.serve.hooks import run_hook
from lmm.store.db import open_store
from lmm.text.polarity import read
from lmm.text.shell import Invocation, invocations

PROJECT = "/home/dev/tidepool"  # the bundled sample history


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample history, ingested and run through the rule extractor (no hand-made rows)."""
    home = tmp_path_factory.mktemp("act") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMM_HOME", str(home))
        with open_store() as store:
            ingest(store, [paths.sample_projects()])
            run_extraction(store, get_extractor("rules"))
    return home


@pytest.fixture
def lmm_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMM_HOME", str(home))
    return home


def recall(tool: str, tool_input: dict[str, Any], cwd: str = PROJECT) -> dict[str, Any]:
    with open_store() as store:
        args = {"tool_name": tool, "tool_input": tool_input, "cwd": cwd}
        return ops.dispatch(store, "act", args)


def texts(result: dict[str, Any]) -> list[str]:
    return [m["text"] for m in result["matches"]]


def test_invocations_read_through_wrappers_runners_and_pipes() -> None:
    line = "cd /x && sudo -E env A=1 uv run pytest -q tests/ | tail -5; npx tsc --noEmit"
    assert invocations(line) == [
        Invocation("cd", ("/x",)),
        Invocation("pytest", ("-q", "tests/"), runner="uv", env=("A=1",)),
        Invocation("tail", ("-5",)),
        Invocation("tsc", ("--noEmit",), runner="npx"),
    ]
    assert invocations("echo 'unclosed") == [Invocation("echo", ("'unclosed",))]
    assert invocations("") == []


def test_read_gives_the_templates_their_polarity() -> None:
    gotcha = read(
        "`pytest` fails here (No module named x); `uv run pytest` works instead.", "gotcha"
    )
    assert gotcha.commands == (
        (Invocation("pytest"), "bad"),
        (Invocation("pytest", (), "uv"), "good"),
    )
    assert gotcha.negated == frozenset()  # an error message's "No" says nothing
    rule = read("Pnpm only — never npm or yarn in my repos.", "preference")
    assert {"npm", "yarn"} <= rule.negated and "pnpm" not in rule.negated
    assert rule.prohibition


def test_a_command_the_user_forbade_asks_for_confirmation(lmm_home: Path) -> None:
    result = recall("Bash", {"command": "pip install requests"})
    assert result["decision"] == "ask"
    assert (
        texts(result)[0] == "Never `pip install` anything in this repo, always `uv add` / `uv run`."
    )
    assert "Ground rule number one: use uv, not pip." in texts(result)
    assert result["reason"].startswith("lmm: this may break a rule you stated earlier")
    assert result["context"].startswith("Before this call: notes from earlier sessions")


def test_repeating_a_failed_command_brings_its_lesson(lmm_home: Path) -> None:
    for command in (".venv/bin/python -m tidepool.cli --help", "python -m tidepool.cli --help"):
        result = recall("Bash", {"command": command})
        assert result["decision"] is None
        assert len(texts(result)) == 1
        assert texts(result)[0].startswith("`.venv/bin/python -m tidepool.cli --help` failed")
        assert "uv pip install -e ." in texts(result)[0]


@pytest.mark.parametrize(
    "command",
    [
        "uv add httpx",  # what the rules ask for
        "pytest -q",  # "Always run the tests with `pytest -q`"
        "make test",  # a lesson whose failure was fixed in the code, then `make test` passed
        "ls -la",
        "git status",
        "uv build",
        "git log --oneline | head",
    ],
)
def test_calls_that_follow_the_rules_or_touch_nothing_known_get_nothing(
    lmm_home: Path, command: str
) -> None:
    assert recall("Bash", {"command": command})["matches"] == []


def test_edits_with_nothing_relevant_get_nothing(lmm_home: Path) -> None:
    edit = {"file_path": f"{PROJECT}/tidepool/noaa.py", "old_string": "a", "new_string": "b"}
    assert recall("Edit", edit)["matches"] == []
    assert recall("Write", {"file_path": f"{PROJECT}/README.md", "content": "# x"})["matches"] == []


def test_another_project_gets_nothing_of_this_one(lmm_home: Path) -> None:
    assert recall("Bash", {"command": "pip install rich"})["decision"] == "ask"  # tidepool's rule
    assert recall("Bash", {"command": "pip install rich"}, cwd="/home/dev/other")["matches"] == []


def test_a_user_wide_rule_reaches_every_project(lmm_home: Path, tmp_path: Path) -> None:
    from lmm.store import cognitions

    with open_store() as store:
        rule = cognitions.remember(store, "Never use `docker compose`; podman compose only.")
    try:
        result = recall("Bash", {"command": "docker compose up -d"}, cwd="/home/dev/other")
        assert texts(result) == ["Never use `docker compose`; podman compose only."]
        assert recall("Bash", {"command": "podman compose up -d"})["matches"] == []
    finally:
        with open_store() as store:
            cognitions.forget(store, rule)


def test_an_edit_writing_what_the_user_forbade_asks(lmm_home: Path) -> None:
    from lmm.store import cognitions

    with open_store() as store:
        rule = cognitions.remember(
            store, "Keep tokens in sessionStorage, never localStorage.", project=PROJECT
        )
    try:
        edit = {
            "file_path": f"{PROJECT}/web/auth.ts",
            "old_string": "let token = ''",
            "new_string": "localStorage.setItem('token', token)",
        }
        result = recall("Edit", edit)
        assert result["decision"] == "ask"
        assert texts(result) == ["Keep tokens in sessionStorage, never localStorage."]
        edit["new_string"] = "sessionStorage.setItem('token', token)"
        assert recall("Edit", edit)["matches"] == []
    finally:
        with open_store() as store:
            cognitions.forget(store, rule)


# ---- the hook


def hook(payload: dict[str, Any]) -> str:
    out = io.StringIO()
    assert run_hook("PreToolUse", io.BytesIO(json.dumps(payload).encode()), out) == 0
    return out.getvalue()


def pre_tool_use(tool: str, tool_input: Any) -> dict[str, Any]:
    return {
        "session_id": str(uuid.uuid4()),  # a new session: nothing shown yet
        "transcript_path": "/nonexistent.jsonl",
        "cwd": PROJECT,
        "hook_event_name": "PreToolUse",
        "tool_name": tool,
        "tool_input": tool_input,
        "tool_use_id": "toolu_01",
    }


def test_the_hook_prints_context_and_asks_in_the_shape_the_cli_reads(lmm_home: Path) -> None:
    data = json.loads(hook(pre_tool_use("Bash", {"command": "pip install requests"})))
    out = data["hookSpecificOutput"]
    assert sorted(out) == [
        "additionalContext",
        "hookEventName",
        "permissionDecision",
        "permissionDecisionReason",
    ]
    assert out["hookEventName"] == "PreToolUse" and out["permissionDecision"] == "ask"
    assert out["additionalContext"].startswith('<lmm-memory kind="act">')
    assert "Never `pip install` anything in this repo" in out["additionalContext"]


def test_the_hook_is_silent_when_nothing_applies(lmm_home: Path) -> None:
    assert hook(pre_tool_use("Bash", {"command": "ls -la"})) == ""
    assert hook(pre_tool_use("Read", {"file_path": f"{PROJECT}/setup.py"})) == ""
    assert hook(pre_tool_use("Bash", "not an object")) == ""  # logged, never breaks the call


# ---- install


def test_install_act_adds_a_pre_tool_use_group_and_uninstall_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    report = claude_settings.install(path, act=True)
    assert report.events == [*claude_settings.HOOKS, "PreToolUse"]
    groups = json.loads(path.read_text())["hooks"]["PreToolUse"]
    assert groups == [
        {
            "matcher": "Bash|Edit|Write",
            "hooks": [
                {
                    "type": "command",
                    "command": claude_settings.hook_command("PreToolUse"),
                    "timeout": 10,
                }
            ],
        }
    ]
    assert claude_settings.install(path, act=True).changed is False
    again = claude_settings.install(path)  # without --act the act hook goes
    assert again.events == list(claude_settings.HOOKS)
    assert "PreToolUse" not in json.loads(path.read_text())["hooks"]
    claude_settings.install(path, act=True)
    claude_settings.uninstall(path)
    assert not path.exists()  # install created it; nothing else was in it


def test_the_pre_tool_use_command_never_imports_torch(lmm_home: Path) -> None:
    """The installed command under `-X importtime`: every module it loads is listed on stderr."""
    from assets.hookproc import run_hook_command

    body = pre_tool_use("Bash", {"command": "pip install requests"})
    proc = run_hook_command(lmm_home, body, event="PreToolUse")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["hookSpecificOutput"]["permissionDecision"] == "ask"
    loaded = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()]
    assert "lmm.retrieve.act" in loaded
    heavy = ("torch", "transformers", "sentence_transformers", "numpy")
    assert [m for m in loaded if m.split(".")[0] in heavy] == []


def test_each_note_is_shown_once_per_session_but_a_broken_rule_asks_every_time(
    lmm_home: Path,
) -> None:
    lesson = pre_tool_use("Bash", {"command": "python -m tidepool.cli --help"})
    lesson["session_id"] = "once-1"
    assert "uv pip install -e ." in hook(lesson)
    assert hook(lesson) == ""  # the conversation holds it already
    lesson["session_id"] = "once-2"
    assert "uv pip install -e ." in hook(lesson)  # another session is told again
    rule = pre_tool_use("Bash", {"command": "pip install requests"})
    rule["session_id"] = "once-1"
    first, again = (json.loads(hook(rule))["hookSpecificOutput"] for _ in range(2))
    assert again["permissionDecision"] == first["permissionDecision"] == "ask"
    assert again["permissionDecisionReason"] == first["permissionDecisionReason"]
    assert "Never `pip install` anything" in again["additionalContext"]
    assert {"once-1", "once-2"} <= {p.name for p in (lmm_home / act.SHOWN_DIR).iterdir()}


def bash(command: str) -> act.PendingCall:
    return act.tool_call("Bash", {"command": command}, "/home/dev/x")


def test_a_reason_that_names_the_forbidden_tool_again_still_forbids_it() -> None:
    rule = read("We use uv here, never pip install anything, pip breaks the lockfile.")
    points, _, breaks = act.score(bash("pip install structlog"), rule)
    assert points >= act.ASK_THRESHOLD and breaks
    assert act.score(bash("uv add structlog"), rule)[0] == 0.0


def test_a_command_without_the_environment_it_needs_gets_the_form_that_works() -> None:
    how = read("To build: `CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build`.", "workflow")
    assert act.score(bash("GOOS=linux GOARCH=arm64 go build -o dist/t ./cmd/t"), how)[0] >= 2.0
    assert act.score(bash("CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build ./cmd/t"), how)[0] == 0
    assert act.score(bash("go build ./..."), how)[0] < act.THRESHOLD  # a plain local build


def test_a_rule_against_one_subcommand_does_not_forbid_its_program() -> None:
    rule = read("I use cargo-nextest for everything, not plain cargo test.", "preference")
    assert act.score(bash("cargo build --release"), rule)[2] is False
    assert act.score(bash("cargo nextest run"), rule)[0] == 0.0  # it follows the rule
    assert act.score(bash("cargo test --workspace"), rule)[0] >= act.THRESHOLD


def test_an_error_fixed_once_is_no_reason_to_warn_at_every_build() -> None:
    lesson = read(
        "error[E0597]: `mmap` does not live long enough → `Source` owns the `Mmap`. "
        "(then `cargo build --release` passed)",
        "lesson",
    )
    failed = (Invocation("cargo", ("build", "--release")), "fixed")
    lesson = replace(lesson, commands=(*lesson.commands, failed))
    assert act.score(bash("cargo build --release"), lesson)[0] < act.THRESHOLD
    test = read("AssertionError → off by one. (then `pytest tests/test_a.py` passed)", "lesson")
    test = replace(
        test, commands=(*test.commands, (Invocation("pytest", ("tests/test_a.py",)), "fixed"))
    )
    same, other = bash("pytest tests/test_a.py"), bash("pytest tests/test_b.py")
    assert act.score(same, test)[0] > act.score(other, test)[0]  # the test it ran on counts


def test_an_opted_out_project_gets_nothing(lmm_home: Path) -> None:
    from lmm.ingest import privacy

    config = lmm_home / "config.toml"
    config.write_text(f'[privacy]\nexclude = ["{PROJECT}"]\n')
    privacy.reset_cache()
    try:
        assert hook(pre_tool_use("Bash", {"command": "pip install requests"})) == ""
        assert recall("Bash", {"command": "pip install requests"}).get("opted_out") is True
    finally:
        config.unlink()
        privacy.reset_cache()
    assert recall("Bash", {"command": "pip install requests"})["decision"] == "ask"


def test_editing_a_file_a_rule_names_brings_the_rule(lmm_home: Path) -> None:
    from lmm.store import cognitions

    text = "Never edit `tidepool/generated/stations.py` by hand; run `make stations` instead."
    with open_store() as store:
        rule = cognitions.remember(store, text, project=PROJECT)
    try:
        edit = {"file_path": f"{PROJECT}/tidepool/generated/stations.py", "content": "X = 1\n"}
        assert texts(recall("Write", edit)) == [text]
        other = {"file_path": f"{PROJECT}/tidepool/stations_view.py", "content": "X = 1\n"}
        assert recall("Write", other)["matches"] == []
    finally:
        with open_store() as store:
            cognitions.forget(store, rule)
