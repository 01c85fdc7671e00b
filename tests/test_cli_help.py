"""Every command and option explains itself; `lmm` alone shows what it can do."""

from __future__ import annotations

import argparse

import pytest

from lmm.cli import build_parser, main


def _walk(parser: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                out.append((f"{path} {name}", argparse.Action([name], name, help=helps.get(name))))
                out += _walk(sub, f"{path} {name}")
        else:
            out.append((path, action))
    return out


def test_every_command_and_option_has_help() -> None:
    missing = [
        f"{path}: {action.dest}"
        for path, action in _walk(build_parser(), "lmm")
        if not action.help and action.dest != "help"
    ]
    assert missing == []


def test_lmm_alone_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lmm") and "doctor" in out and "recall" in out


def test_doctor_says_what_to_do_on_a_fresh_machine(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    from pathlib import Path

    root = Path(str(tmp_path))
    monkeypatch.setenv("LMM_HOME", str(root / "home"))
    monkeypatch.setenv("LMM_SOURCE", str(root / "none"))
    monkeypatch.setenv("HOME", str(root))
    monkeypatch.chdir(root)
    assert main(["doctor", "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["store"]["status"] == "warn" and checks["store"]["fix"] == "lmm ingest"
    assert checks["hooks"]["fix"] == "lmm install-hooks"
    assert main(["install-hooks"]) == 0
    capsys.readouterr()
    assert main(["doctor", "--json"]) == 0
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    assert checks["hooks (user)"]["status"] == "ok"
    assert "hooks" not in checks


def test_remember_refuses_a_project_that_does_not_exist(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    monkeypatch.setenv("LMM_HOME", str(Path(str(tmp_path)) / "home"))
    assert main(["remember", "Use uv.", "--project", "/no/such/path"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["remember", "Use uv.", "--project", str(tmp_path)]) == 0


def test_third_party_progress_bars_are_off_when_stderr_is_not_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    assert main([]) == 0
    import os

    assert os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") == "1"


def test_the_bad_inputs_a_new_user_tries_end_in_errors_not_tracebacks(tmp_path: object) -> None:
    """Each one: exit 0 or 2, and never a traceback (the inputs a demanding new user tried)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from lmm import paths

    root = Path(str(tmp_path))
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "LMM_HOME": str(root / "home"), "LMM_SOURCE": str(root / "none"),
           "HOME": str(root), "PYTHONPATH": src}  # fmt: skip
    (root / "exists.jsonl").write_text("")

    def lmm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lmm", *args], env=env, cwd=root,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    assert lmm("ingest", str(paths.sample_projects())).returncode == 0
    cases = [
        ("memories", "--since", "yesterday"),
        ("memories", "--since", "last tuesday"),
        ("remember", "Use uv.", "--project", "/no/such/path"),
        ("export", "-"),
        ("export", str(root / "exists.jsonl")),
        ("export", str(root / "missing" / "out.jsonl")),
        ("import", str(root / "exists.jsonl")),
        ("search", "\x1b[31mred"),
        ("recall", "anything", "--model", "nosuchmodel", "--generate"),
        ("forget", "999999"),
        ("scope", "999999", "user"),
        ("ingest", "/dev/null"),
        ("eval", "--help"),
        (),
    ]
    for args in cases:
        result = lmm(*args)
        assert result.returncode in (0, 1, 2), (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)  # (the data may say it)
