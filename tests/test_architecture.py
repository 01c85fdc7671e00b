"""Import boundaries: store/search never reach train/; the hook, server and MCP paths never load
torch, transformers or sentence-transformers (a hook must start in milliseconds)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lmm"
HEAVY = ("torch", "transformers", "sentence_transformers")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def loaded_after(code: str) -> set[str]:
    """Module names loaded by a fresh interpreter after running `code`."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


@pytest.mark.parametrize(
    "module", ["store/db.py", "retrieve/search.py", "store/migrations.py", "records.py"]
)
def test_store_and_search_never_import_train(module: str) -> None:
    assert not [m for m in imported_modules(SRC / module) if m.startswith("lmm.train")]
    assert "lmm.train" not in imported_modules(SRC / module)
    assert not [
        m
        for m in loaded_after(f"import lmm.{module[:-3].replace('/', '.')}")
        if m.startswith("lmm.train")
    ]


@pytest.mark.parametrize(
    "module",
    [
        "serve/hooks.py",
        "serve/server.py",
        "serve/settings.py",
        "retrieve/recall.py",
        "retrieve/synth.py",
        "serve/mcp.py",
        "retrieve/act.py",
        "text/shell.py",
        "text/polarity.py",
    ],
)
def test_hook_side_modules_do_not_import_heavy_packages(module: str) -> None:
    imports = imported_modules(SRC / module)
    assert not [m for m in imports if m.split(".")[0] in HEAVY]
    assert not [m for m in imports if m.startswith(("lmm.train", "lmm.memory.extract_lm"))]


def test_importing_the_hook_server_and_mcp_paths_loads_no_heavy_package() -> None:
    loaded = loaded_after(
        "import lmm.serve.hooks, lmm.serve.server, lmm.serve.settings, lmm.cli\n"
        "import lmm.retrieve.recall, lmm.retrieve.synth\n"
        "import lmm.cli.recall_cmds, lmm.serve.mcp\n"
        "lmm.cli.build_parser()\n"
        "lmm.serve.mcp.build()"
    )
    assert {"lmm.serve.hooks", "lmm.serve.mcp"} <= loaded
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_import_lmm_stays_light_and_the_facade_resolves() -> None:
    """`import lmm` (every hook does it) loads none of the facade's modules; each public name
    resolves on first use, to the object its module defines."""
    import importlib

    import lmm

    facade = {module for module, _ in lmm._LAZY.values()}
    loaded = loaded_after("import lmm")
    assert not loaded & facade
    assert not [m for m in loaded if m.split(".")[0] in (*HEAVY, "numpy", "sqlite3")]
    for name in lmm.__all__:
        value = getattr(lmm, name)
        if name != "__version__":
            module, attr = lmm._LAZY[name]
            assert value is getattr(importlib.import_module(module), attr)
    assert set(lmm.__all__) == {"__version__", *lmm._LAZY}
    assert loaded_after("from lmm import *") >= facade
    assert lmm.ingest.__name__ == "lmm.ingest"  # the subpackage, not a facade name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        lmm.nothing  # noqa: B018
