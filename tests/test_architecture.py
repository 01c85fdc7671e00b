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


@pytest.mark.parametrize("module", ["store.py", "search.py", "migrations.py", "records.py"])
def test_store_and_search_never_import_train(module: str) -> None:
    assert not [m for m in imported_modules(SRC / module) if m.startswith("lmm.train")]
    assert "lmm.train" not in imported_modules(SRC / module)
    assert not [m for m in loaded_after(f"import lmm.{module[:-3]}") if m.startswith("lmm.train")]


@pytest.mark.parametrize(
    "module",
    [
        "hooks.py",
        "server.py",
        "settings.py",
        "recall.py",
        "synth.py",
        "mcp_server.py",
        "act.py",
        "shell.py",
        "polarity.py",
    ],
)
def test_hook_side_modules_do_not_import_heavy_packages(module: str) -> None:
    imports = imported_modules(SRC / module)
    assert not [m for m in imports if m.split(".")[0] in HEAVY]
    assert not [m for m in imports if m.startswith(("lmm.train", "lmm.extract_lm"))]


def test_importing_the_hook_server_and_mcp_paths_loads_no_heavy_package() -> None:
    loaded = loaded_after(
        "import lmm.hooks, lmm.server, lmm.settings, lmm.recall, lmm.synth, lmm.cli\n"
        "import lmm.cli.recall_cmds, lmm.mcp_server\n"
        "lmm.cli.build_parser()\n"
        "lmm.mcp_server.build()"
    )
    assert {"lmm.hooks", "lmm.mcp_server"} <= loaded
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
