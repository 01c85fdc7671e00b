"""The CLI as a user and a script see it: `python -m lmm ...` in a subprocess, LMM_HOME isolated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lmm import paths


def lmm(
    home: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "LMM_HOME": str(home), "HOME": str(home / "user")}
    full_env.pop("LMM_SOURCE", None)  # the caller's own, not one set by `env`
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "lmm", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
    )


def test_ingest_without_claude_history_never_loads_the_sample_unasked(tmp_path: Path) -> None:
    done = lmm(tmp_path, "ingest")
    assert done.returncode == 2
    assert "no Claude Code history" in done.stderr and "--sample" in done.stderr
    assert json.loads(lmm(tmp_path, "stats", "--json").stdout)["turns"] == 0


def test_ingest_sample_without_claude_history_loads_the_sample(tmp_path: Path) -> None:
    first = lmm(tmp_path, "ingest", "--sample")
    assert first.returncode == 0, first.stderr
    assert "bundled sample history" in first.stderr
    assert "new turns" in first.stdout

    again = lmm(tmp_path, "ingest", "--sample", "--json")
    report = json.loads(again.stdout)
    assert report["turns_new"] == 0 and report["files_read"] == 0

    stats = json.loads(lmm(tmp_path, "stats", "--json").stdout)
    assert stats["sessions"] >= 7 and stats["turns"] > 100 and stats["projects"] >= 1
    assert stats["path"] == str(tmp_path / "lmm.db")


def test_source_env_var_and_explicit_paths(tmp_path: Path) -> None:
    sample = paths.sample_projects()
    via_env = lmm(tmp_path / "a", "ingest", "--json", env={"LMM_SOURCE": str(sample)})
    via_arg = lmm(tmp_path / "b", "ingest", "--json", str(sample))
    assert json.loads(via_env.stdout)["turns_new"] == json.loads(via_arg.stdout)["turns_new"] > 0


def test_search_finds_a_lesson_in_its_project(tmp_path: Path) -> None:
    lmm(tmp_path, "ingest", str(paths.sample_projects()))
    hits = json.loads(lmm(tmp_path, "search", "database is locked", "--json").stdout)
    assert "database is locked" in hits[0]["text"]
    assert {h["project"] for h in hits} == {"/home/dev/tidepool"}
    none = json.loads(lmm(tmp_path, "search", "locked", "--project", "/elsewhere", "--json").stdout)
    assert none == []


def test_export_import_round_trip_through_the_cli(tmp_path: Path) -> None:
    lmm(tmp_path / "a", "ingest", str(paths.sample_projects()))
    out = tmp_path / "memory.jsonl"
    assert lmm(tmp_path / "a", "export", str(out)).returncode == 0
    imported = lmm(tmp_path / "b", "import", str(out), "--json")
    assert imported.returncode == 0, imported.stderr
    a = json.loads(lmm(tmp_path / "a", "stats", "--json").stdout)
    b = json.loads(lmm(tmp_path / "b", "stats", "--json").stdout)
    keys = ("projects", "sessions", "turns", "subagents")
    assert [a[k] for k in keys] == [b[k] for k in keys]
    assert "lmm embed" in lmm(tmp_path / "c", "import", str(out)).stdout  # no vectors came along
    # an existing file is not replaced silently; '-' is standard output
    again = lmm(tmp_path / "a", "export", str(out))
    assert again.returncode == 2 and "pass --force" in again.stderr
    piped = lmm(tmp_path / "a", "export", "-")
    assert piped.returncode == 0 and not (Path.cwd() / "-").exists()
    assert piped.stdout.splitlines()[0].startswith('{"format"')
    assert len(piped.stdout.splitlines()) == len(out.read_text().splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "/no/such/folder"), "does not exist"),
        (("import", "{bad}"), "not an lmm export"),
    ],
)
def test_bad_input_is_a_clear_error_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"hello": 1}\n')
    args = tuple(str(bad) if a == "{bad}" else a for a in args)
    result = lmm(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_python_dash_m_and_version(tmp_path: Path) -> None:
    result = lmm(tmp_path, "--version")
    assert result.returncode == 0 and result.stdout.startswith("lmm ")


def test_exports_and_training_files_are_private_like_the_store(tmp_path: Path) -> None:
    sample = str(paths.sample_projects())
    assert lmm(tmp_path, "ingest", sample).returncode == 0
    (tmp_path / "old.jsonl").write_text("")
    (tmp_path / "old.jsonl").chmod(0o644)  # an export over an existing file gets 0600 too
    for name in ("new.jsonl", "old.jsonl"):
        assert lmm(tmp_path, "export", str(tmp_path / name), "--force").returncode == 0
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "lmm.db").stat().st_mode & 0o777 == 0o600


def test_an_open_store_folder_is_tightened_with_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o777)
    done = lmm(home, "stats")
    assert done.returncode == 0, done.stderr
    assert "was open to other users (mode 777); made it 0700" in done.stderr
    assert home.stat().st_mode & 0o777 == 0o700
    assert "open to other users" not in lmm(home, "stats").stderr
