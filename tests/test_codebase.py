"""`lmm ingest-code`: what a repository says about itself, incrementally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmm.memory.codebase import ingest_code
from lmm.memory.codefacts import facts_of
from lmm.store import cognitions
from lmm.store.db import Store

README = """# tinyrepo

A tiny repository for tests.

## Install

Run `pip install -e .` inside a fresh virtual environment.

## Usage

Call `tiny.add(1, 2)` to add two numbers together.
"""

MODULE = '''"""Arithmetic helpers for tinyrepo."""


def add(a: int, b: int = 0) -> int:
    """Add two numbers.

    More detail here."""
    return a + b


def _private() -> None:
    pass


class Counter:
    """Counts things."""

    def __init__(self) -> None:
        self.n = 0

    def bump(self, by: int = 1) -> int:
        return self.n
'''

MAKEFILE = """## test: run the test suite quietly
test:
\tpytest -q

lint:
\truff check .
"""


def make_repo(root: Path) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "tiny").mkdir()
    (root / "README.md").write_text(README)
    (root / "docs" / "design.md").write_text("# Design\n\nEverything is a plain function here.\n")
    (root / "tiny" / "__init__.py").write_text(MODULE)
    (root / "Makefile").write_text(MAKEFILE)
    (root / "package.json").write_text(json.dumps({"scripts": {"build": "vite build"}}))
    (root / "pyproject.toml").write_text(
        '[project]\nname = "tiny"\n[project.scripts]\ntiny = "tiny:main"\n'
    )
    (root / "notes.bin").write_bytes(b"\x00\x01")
    return root


def texts(store: Store, root: Path, status: str | None = "active") -> set[str]:
    return {c.text for c in cognitions.list_(store, project=str(root), status=status)}


def test_facts_of_python_module() -> None:
    facts = facts_of("tiny/__init__.py", MODULE.encode())
    assert facts is not None
    assert [(f.key, f.category, f.line) for f in facts] == [
        ("module", "fact", 1),
        ("add", "fact", 4),
        ("Counter", "fact", 15),
    ]
    assert (
        facts[1].text == "`def add(a: int, b: int=0) -> int` in tiny/__init__.py: Add two numbers."
    )
    assert facts[2].text == "`class Counter` in tiny/__init__.py: Counts things."
    assert "bump" in facts[2].keywords  # its methods find it
    assert facts_of("notes.bin", b"\x00") is None


def test_a_fact_is_one_line_and_its_section_stays_findable() -> None:
    """A long README section or docstring becomes its first sentence, cut to one line; the words
    after it are keywords."""
    section = (
        "Run the server with `make serve`. It binds to 127.0.0.1:8080 and reads the config "
        "from ~/.config/tiny/config.toml. " + "The scheduler retries failed jobs. " * 20
    )
    doc = "Open a connection pool.\n\nUses pgbouncer in transaction mode. " + "x " * 300
    facts = facts_of("README.md", f"# tiny\n\n## Running\n\n{section}\n".encode())
    code = f'def connect(dsn: str, size: int = 4) -> None:\n    """{doc}"""\n'
    pyfacts = facts_of("tiny/db.py", code.encode())
    assert facts is not None and pyfacts is not None
    (running,) = [f for f in facts if f.key == "#tiny > Running"]
    assert running.text == "README.md § tiny > Running: Run the server with `make serve`."
    assert {"config", "127.0.0.1:8080"} & set(running.keywords)
    (connect,) = pyfacts
    assert connect.text == (
        "`def connect(dsn: str, size: int=4) -> None` in tiny/db.py: Open a connection pool."
    )
    long_section = "word " * 400 + "end."
    (only,) = facts_of("README.md", f"# t\n\n{long_section}\n".encode()) or []
    assert "\n" not in only.text and len(only.text) <= 200 and only.text.endswith("…")


def test_ingest_code_then_incremental_changes(tmp_path: Path, store: Store) -> None:
    root = make_repo(tmp_path / "repo")
    first = ingest_code(store, root)
    assert (first.files, first.files_read, first.files_unchanged) == (6, 6, 0)
    assert texts(store, root) == {
        "README.md § tinyrepo: A tiny repository for tests.",
        "README.md § tinyrepo > Install: Run `pip install -e .` inside a fresh virtual "
        "environment.",
        "README.md § tinyrepo > Usage: Call `tiny.add(1, 2)` to add two numbers together.",
        "docs/design.md § Design: Everything is a plain function here.",
        "tiny/__init__.py (tiny.__init__): Arithmetic helpers for tinyrepo.",
        "`def add(a: int, b: int=0) -> int` in tiny/__init__.py: Add two numbers.",
        "`class Counter` in tiny/__init__.py: Counts things.",
        "`make test`: run the test suite quietly",
        "`make lint`: runs `ruff check .`",
        "`npm run build` runs `vite build` (package.json).",
        "`tiny` is a command of this project (entry point tiny:main, from pyproject.toml).",
    }
    install = next(c for c in cognitions.list_(store) if "Install" in c.text)
    assert (install.origin, install.category, install.project) == ("code", "fact", str(root))
    assert [(s.file_path, s.line_no, s.quote) for s in install.sources] == [
        ("README.md", 5, "## Install")
    ]
    dump = cognitions.dump(store)

    again = ingest_code(store, root)
    assert (again.files_read, again.files_unchanged, again.added, again.superseded) == (0, 6, 0, 0)
    assert cognitions.dump(store) == dump

    # change one section, drop another, delete a file
    (root / "README.md").write_text(
        README.replace("fresh virtual environment", "uv venv").split("## Usage")[0]
    )
    (root / "docs" / "design.md").unlink()
    third = ingest_code(store, root)
    assert (third.files_read, third.files_unchanged, third.files_removed) == (1, 4, 1)
    assert third.superseded == 3
    old = next(c for c in cognitions.list_(store, status="superseded") if "fresh virtual" in c.text)
    new = next(c for c in cognitions.list_(store) if "uv venv" in c.text)
    assert old.superseded_by == new.id
    gone = {c.text for c in cognitions.list_(store, status="superseded") if c.superseded_by is None}
    assert gone == {
        "README.md § tinyrepo > Usage: Call `tiny.add(1, 2)` to add two numbers together.",
        "docs/design.md § Design: Everything is a plain function here.",
    }
    assert len(texts(store, root)) == 9


def test_ingest_code_on_this_repository(tmp_path: Path, store: Store) -> None:
    root = Path(__file__).resolve().parents[1]
    report = ingest_code(store, root)
    assert report.files_read > 20 and report.added > 100
    found = texts(store, root)
    assert any(t.startswith("`make test`:") for t in found)
    assert any(
        t.startswith("src/lmm/memory/codebase.py (lmm.memory.codebase): `lmm ingest-code PATH`")
        for t in found
    )
    assert (
        "`def ingest_code(store: Store, root: Path) -> CodeReport` in src/lmm/memory/codebase.py: "
        "Learn the repository at `root` (incremental: only new or changed files are read)." in found
    )
    again = ingest_code(store, root)  # others may be editing a file or two right now
    assert again.files_unchanged >= 0.9 * report.files


def test_test_files_give_their_docstring_only() -> None:
    code = '"""Tests of the parser."""\n\n\ndef test_parses() -> None:\n    pass\n'
    for rel in ("tests/test_parse.py", "src/pkg/test_parse.py", "pkg/tests/conftest.py"):
        facts = facts_of(rel, code.encode())
        assert [f.key for f in facts or []] == ["module"], rel
    assert [f.key for f in facts_of("src/pkg/parse.py", code.encode()) or []] == [
        "module",
        "test_parses",
    ]


def test_memories_by_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lmm memories --origin code` lists what `ingest-code` read, `--no-code` everything else."""
    from lmm.cli import main

    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    root = make_repo(tmp_path / "repo")
    assert main(["ingest-code", str(root)]) == 0
    assert main(["remember", "Use uv, not pip."]) == 0
    capsys.readouterr()
    assert main(["memories", "--origin", "code", "--json"]) == 0
    code = json.loads(capsys.readouterr().out)
    assert len(code) == 11 and {m["origin"] for m in code} == {"code"}
    assert main(["memories", "--no-code"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].endswith("Use uv, not pip. (all projects)")
    assert main(["memories"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 12
