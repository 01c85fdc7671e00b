"""`lmm ingest-code`: what a repository says about itself, incrementally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmm import cognitions
from lmm.codebase import ingest_code
from lmm.codefacts import facts_of
from lmm.store import Store

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


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "lmm.db") as s:
        yield s


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
    assert facts[2].text == (
        "`class Counter` in tiny/__init__.py: Counts things. Methods: __init__(), bump()."
    )
    assert facts_of("notes.bin", b"\x00") is None


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
        "`class Counter` in tiny/__init__.py: Counts things. Methods: __init__(), bump().",
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
        t.startswith("src/lmm/codebase.py (lmm.codebase): `lmm ingest-code PATH`") for t in found
    )
    assert (
        "`def ingest_code(store: Store, root: Path) -> CodeReport` in src/lmm/codebase.py: "
        "Learn the repository at `root` (incremental: only new or changed files are read)." in found
    )
    again = ingest_code(store, root)  # others may be editing a file or two right now
    assert again.files_unchanged >= 0.9 * report.files
