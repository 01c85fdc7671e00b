"""The house plan, enforced: layers that import only downwards, no import cycles (function-level
imports count), SQL only in lmm.store, and a hook, server and MCP path that never loads torch,
transformers, sentence-transformers or numpy (a hook must start in milliseconds).

The checks are plain functions of a source tree, so each is also run on a small planted tree
to show that it fails where it should."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY = ("torch", "transformers", "sentence_transformers", "numpy")

# Bottom to top. A module imports only from its own layer or a lower one; within the top layer,
# the four packages may use each other (the CLI opens the browser, runs evals and training).
LAYERS: list[tuple[str, ...]] = [
    ("lmm", "lmm.errors", "lmm.paths", "lmm.records", "lmm.conversation", "lmm.config"),
    ("lmm.text",),
    ("lmm.store",),
    ("lmm.ingest",),
    ("lmm.lm",),
    ("lmm.retrieve",),
    ("lmm.memory",),
    ("lmm.serve",),
    ("lmm.ui", "lmm.cli", "lmm.train", "lmm.evals", "lmm.__main__"),
]
SQL_CALLS = {"execute", "executemany", "executescript"}


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST) -> set[int]:
    """Line numbers of imports inside `if TYPE_CHECKING:` blocks: types only, never run."""
    lines: set[int] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            for inner in n.body:
                lines |= {x.lineno for x in ast.walk(inner) if hasattr(x, "lineno")}
    return lines


def import_graph(root: Path, package: str = "lmm") -> dict[str, set[str]]:
    """Module -> the package's modules it imports at runtime, at any depth (lazy imports too)."""
    paths = {module_name(root, p): p for p in (root / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_only(tree)
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                # `from lmm.x import y, z`: y and z are modules where the package has them,
                # else names in lmm.x
                named = {f"{base}.{a.name}" for a in node.names} & paths.keys()
                targets = list(named) if named else [base]
            else:
                continue
            found |= {target for target in targets if target in paths}
        graph[name] = found - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in layer if p != "lmm"):
            return i
    if module == "lmm":
        return 0
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{src} -> {dst}"
        for src, targets in graph.items()
        for dst in targets
        if layer_of(dst) > layer_of(src)
    )


def stray_sql(root: Path, package: str = "lmm", allowed: str = "lmm.store") -> list[str]:
    """`.execute(` / `.executemany(` / `.executescript(` calls outside the store package."""
    stray = []
    for path in sorted((root / package).rglob("*.py")):
        name = module_name(root, path)
        if name == allowed or name.startswith(allowed + "."):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in SQL_CALLS
            ):
                stray.append(f"{name}:{node.lineno}")
    return stray


def loaded_after(code: str) -> set[str]:
    """Module names loaded by a fresh interpreter after running `code`."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


# -- the real tree ------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    assert cycles(import_graph(SRC)) == []


def test_layers_import_only_downwards() -> None:
    assert upward_imports(import_graph(SRC)) == []


def test_sql_is_written_only_in_the_store() -> None:
    assert stray_sql(SRC) == []


def test_every_module_belongs_to_a_layer() -> None:
    for module in import_graph(SRC):
        layer_of(module)


def test_importing_the_hook_server_and_mcp_paths_loads_no_heavy_package() -> None:
    loaded = loaded_after(
        "import lmm.serve.hooks, lmm.serve.server, lmm.serve.claude_settings, lmm.cli\n"
        "import lmm.retrieve.recall, lmm.retrieve.synth, lmm.retrieve.act\n"
        "import lmm.cli.recall_cmds, lmm.serve.mcp\n"
        "lmm.cli.build_parser()\n"
        "lmm.serve.mcp.build()"
    )
    assert {"lmm.serve.hooks", "lmm.serve.mcp", "lmm.retrieve.act"} <= loaded
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


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


@pytest.mark.parametrize(
    "module", ["store/db.py", "retrieve/search.py", "store/migrations.py", "records.py"]
)
def test_store_and_search_never_import_train(module: str) -> None:
    assert not [m for m in imported_modules(SRC / "lmm" / module) if m.startswith("lmm.train")]
    loaded = loaded_after(f"import lmm.{module[:-3].replace('/', '.')}")
    assert not [m for m in loaded if m.startswith("lmm.train")]


@pytest.mark.parametrize(
    "module",
    [
        "serve/hooks.py",
        "serve/server.py",
        "serve/claude_settings.py",
        "retrieve/recall.py",
        "retrieve/synth.py",
        "serve/mcp.py",
        "retrieve/act.py",
        "text/shell.py",
        "text/polarity.py",
    ],
)
def test_hook_side_modules_do_not_import_heavy_packages(module: str) -> None:
    """Not even lazily: these run inside a hook or the server's request loop."""
    imports = imported_modules(SRC / "lmm" / module)
    assert not [m for m in imports if m.split(".")[0] in HEAVY[:3]]
    assert not [m for m in imports if m.startswith(("lmm.train", "lmm.memory.extract_lm"))]


# -- each check fails on a planted tree ---------------------------------------------------------


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return _plant(
        tmp_path,
        {
            "lmm/__init__.py": "",
            "lmm/store/__init__.py": "",
            "lmm/store/db.py": "def rows(conn):\n    return conn.execute('SELECT 1')\n",
            "lmm/retrieve/__init__.py": "",
            "lmm/store/vectors.py": "",
            "lmm/retrieve/search.py": "from lmm.store import db, vectors\n",
            "lmm/retrieve/rank.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from lmm.retrieve import search\n"
            ),
        },
    )


def test_a_clean_planted_tree_passes(planted: Path) -> None:
    graph = import_graph(planted)
    assert graph["lmm.retrieve.search"] == {"lmm.store.db", "lmm.store.vectors"}
    assert graph["lmm.retrieve.rank"] == set()  # types only
    assert cycles(graph) == [] and upward_imports(graph) == [] and stray_sql(planted) == []


def test_a_planted_cycle_through_a_lazy_import_fails(planted: Path) -> None:
    _plant(planted, {"lmm/store/db.py": "def f():\n    from lmm.retrieve import search\n"})
    graph = import_graph(planted)
    assert cycles(graph) == [["lmm.retrieve.search", "lmm.store.db"]]
    assert upward_imports(graph) == ["lmm.store.db -> lmm.retrieve.search"]


def test_a_planted_stray_execute_fails(planted: Path) -> None:
    _plant(planted, {"lmm/retrieve/rank.py": "def f(store):\n    store.conn.execute('x')\n"})
    assert stray_sql(planted) == ["lmm.retrieve.rank:2"]


def test_a_module_outside_every_layer_fails() -> None:
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("lmm.somewhere.new")


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
