"""One repository file -> the facts `lmm.memory.codebase` stores about it (pure: bytes in, facts
out)."""

from __future__ import annotations

import ast
import re
import tomllib
from dataclasses import dataclass, field

import orjson

from lmm.text import consolidate

LINE_CHARS = 200  # a fact is one line: what a list of memories shows without burying the rest
SIGNATURE_CHARS = 100  # of a function's signature, before its docstring's first sentence


@dataclass
class Fact:
    key: str
    category: str  # fact | workflow
    text: str
    line: int  # 1-based
    quote: str
    salience: float = 0.4
    keywords: list[str] = field(default_factory=list)


KEYWORDS = 24  # content words of a section or docstring kept as keywords (search reads them)


def _words(text: str) -> list[str]:
    """The first `KEYWORDS` content words of `text`, in order: the one-line fact's text leaves
    the rest of its section out, its keywords keep it findable."""
    out: list[str] = []
    for word in text.split():
        for t in sorted(consolidate.tokens(word)):
            if t not in out and len(out) < KEYWORDS:
                out.append(t)
    return out


def _trim(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"


def _first_sentence(text: str) -> str:
    """The first sentence of a paragraph (its first line when a list or a table starts it)."""
    text = re.sub(r"\s+", " ", text).strip()
    m = re.search(r"(?<=[.!?])\s+(?=[A-Z`(\[*_])", text)
    return text[: m.start()] if m else text


def _line_of(head: str, body: str) -> str:
    """`head` and the first sentence of `body`, cut to one line."""
    said = f"{head}: {_first_sentence(body)}" if body.strip() else head
    return _trim(said, LINE_CHARS)


def facts_of(rel: str, data: bytes) -> list[Fact] | None:
    name = rel.rsplit("/", 1)[-1]
    lower = name.lower()
    text = data.decode("utf-8", errors="replace")
    if lower.endswith(".md") and (
        lower.startswith("readme") or rel.startswith("docs/") or "/" not in rel
    ):
        return markdown(rel, text)
    if lower.endswith(".py"):
        return python(rel, text) + (nox(rel, text) if lower == "noxfile.py" else [])
    if name in ("Makefile", "makefile", "GNUmakefile"):
        return makefile(rel, text)
    if name == "pyproject.toml":
        return pyproject(rel, text)
    if name == "package.json":
        return package_json(rel, text)
    if lower == "justfile":
        return justfile(rel, text)
    if name == "tox.ini":
        return tox(rel, text)
    if lower.rsplit(".", 1)[-1] in ("js", "ts", "tsx", "jsx", "mjs", "go", "rs"):
        return other_code(rel, text)
    return None


# ---- docs


def markdown(rel: str, text: str) -> list[Fact]:
    """One fact per heading section (code fences do not start sections)."""
    out: list[Fact] = []
    heading, start, fenced = "", 1, False
    body: list[str] = []
    path: list[str] = []

    def flush() -> None:
        content = re.sub(r"\s+", " ", " ".join(body)).strip()
        if content and len(content.split()) >= 4:
            title = " > ".join(path) if path else "(top)"
            out.append(
                Fact(
                    f"#{title}",
                    "fact",
                    _line_of(f"{rel} § {title}", content),
                    start,
                    heading or content[:120],
                    0.45,
                    _words(title + " " + content),
                )
            )

    for n, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"^(#{1,4})\s+(.*?)\s*#*\s*$", line)
        if m:
            flush()
            level = len(m.group(1))
            path = [*path[: level - 1], m.group(2)]
            heading, start, body = line.strip(), n, []
        else:
            body.append(line)
    flush()
    return out


# ---- Python


def python(rel: str, text: str) -> list[Fact]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out: list[Fact] = []
    module = rel[:-3].replace("/", ".").removeprefix("src.")
    doc = ast.get_docstring(tree)
    if doc:
        first = text.lstrip().splitlines()[0].strip()
        out.append(
            Fact(
                "module",
                "fact",
                _line_of(f"{rel} ({module})", doc),
                1,
                first,
                0.45,
                _words(module + " " + doc),
            )
        )
    if _is_test(rel):
        return out  # test functions name cases, not the project's API: the docstring says enough
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith(
            "_"
        ):
            out.append(_function(rel, node, text))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            out.append(_class(rel, node, text))
    return out


def _is_test(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    in_tests = rel.startswith(("tests/", "test/")) or "/tests/" in rel or "/test/" in rel
    return (
        in_tests or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
    )


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    ret = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({ast.unparse(node.args)}){ret}"


def _line(text: str, n: int) -> str:
    lines = text.splitlines()
    return lines[n - 1].strip() if 0 < n <= len(lines) else ""


def _function(rel: str, node: ast.FunctionDef | ast.AsyncFunctionDef, text: str) -> Fact:
    doc = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
    sig = _trim(_signature(node), SIGNATURE_CHARS)
    said = _line_of(f"`{sig}` in {rel}", doc)
    return Fact(
        node.name,
        "fact",
        said,
        node.lineno,
        _line(text, node.lineno),
        0.3,
        _words(node.name.replace("_", " ") + " " + doc),
    )


def _class(rel: str, node: ast.ClassDef, text: str) -> Fact:
    doc = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
    bases = ", ".join(ast.unparse(b) for b in node.bases)
    methods = [
        n.name
        for n in node.body
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and (not n.name.startswith("_") or n.name == "__init__")
    ]
    head = f"`class {node.name}" + (f"({_trim(bases, 60)})" if bases else "") + f"` in {rel}"
    return Fact(
        node.name,
        "fact",
        _line_of(head, doc),
        node.lineno,
        _line(text, node.lineno),
        0.3,
        _words(node.name + " " + doc + " " + " ".join(methods)),  # its methods find it
    )


_TOP_DEF = re.compile(
    r"^(?:export\s+(?:default\s+)?)?(?:async\s+)?(?:function\*?|class|const|interface|type)\s+"
    r"([A-Za-z_$][\w$]*)|^func\s+(?:\([^)]*\)\s*)?([A-Z]\w*)|^pub\s+(?:async\s+)?(?:fn|struct|enum|"
    r"trait)\s+(\w+)",
    re.M,
)


def other_code(rel: str, text: str) -> list[Fact]:
    """Exported/public top-level definitions of JS/TS, Go and Rust files, by regex."""
    out = []
    for m in _TOP_DEF.finditer(text):
        name = next(g for g in m.groups() if g)
        if rel.endswith((".js", ".ts", ".tsx", ".jsx", ".mjs")) and "export" not in m.group(0):
            continue
        line = text.count("\n", 0, m.start()) + 1
        sig = _line(text, line).rstrip("{ ").strip()
        out.append(
            Fact(name, "fact", _trim(f"`{sig}` in {rel}", LINE_CHARS), line, sig, 0.3, _words(name))
        )
    return out


# ---- commands


def makefile(rel: str, text: str) -> list[Fact]:
    """Targets, with the `## target: help` comment or the recipe's first command."""
    out = []
    helps = dict(re.findall(r"^##\s*([\w.-]+)\s*:\s*(.+)$", text, re.M))
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        m = re.match(r"^([A-Za-z][\w.-]*)\s*:(?!=)", line)
        if not m or m.group(1).startswith(".") or m.group(1).upper() == m.group(1):
            continue
        target = m.group(1)
        recipe = next((r.strip() for r in lines[n : n + 3] if r.startswith("\t")), "")
        what = helps.get(target) or (f"runs `{_trim(recipe, 120)}`" if recipe else "")
        if not what:
            continue
        out.append(
            Fact(
                f"make {target}",
                "workflow",
                f"`make {target}`: {what}",
                n,
                line.strip(),
                0.6,
                ["make", target],
            )
        )
    return out


def pyproject(rel: str, text: str) -> list[Fact]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []
    out = []
    project = data.get("project", {})
    for name, target in (project.get("scripts") or {}).items():
        out.append(
            Fact(
                f"script {name}",
                "fact",
                f"`{name}` is a command of this project (entry point {target}, from {rel}).",
                _find(text, name),
                f"{name} =",
                0.5,
                [name],
            )
        )
    tool = data.get("tool", {})
    for runner in ("pytest", "ruff", "mypy"):
        if runner in tool:
            out.append(
                Fact(
                    f"tool {runner}",
                    "workflow",
                    f"{runner} is configured in {rel} ([tool.{runner}]).",
                    _find(text, f"[tool.{runner}"),
                    f"[tool.{runner}",
                    0.4,
                    [runner],
                )
            )
    return out


def _find(text: str, needle: str) -> int:
    at = text.find(needle)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def package_json(rel: str, text: str) -> list[Fact]:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    scripts = data.get("scripts") if isinstance(data, dict) else None
    if not isinstance(scripts, dict):
        return []
    return [
        Fact(
            f"npm {name}",
            "workflow",
            f"`npm run {name}` runs `{_trim(str(cmd), 160)}` ({rel}).",
            _find(text, f'"{name}"'),
            f'"{name}"',
            0.6,
            ["npm", name],
        )
        for name, cmd in scripts.items()
    ]


def justfile(rel: str, text: str) -> list[Fact]:
    out = []
    for m in re.finditer(r"^(?:#\s*(.+)\n)?([A-Za-z][\w-]*)(?:\s+[^:\n]*)?:(?!=)", text, re.M):
        line = text.count("\n", 0, m.start(2)) + 1
        what = m.group(1) or "a recipe"
        out.append(
            Fact(
                f"just {m.group(2)}",
                "workflow",
                f"`just {m.group(2)}`: {what}",
                line,
                _line(text, line),
                0.6,
                ["just", m.group(2)],
            )
        )
    return out


def tox(rel: str, text: str) -> list[Fact]:
    envs = re.findall(r"^\[testenv:([\w.-]+)\]", text, re.M)
    return [
        Fact(
            f"tox {e}",
            "workflow",
            f"`tox -e {e}` runs the {e} environment ({rel}).",
            _find(text, f"[testenv:{e}]"),
            f"[testenv:{e}]",
            0.5,
            ["tox", e],
        )
        for e in envs
    ]


def nox(rel: str, text: str) -> list[Fact]:
    out = []
    for m in re.finditer(r"@nox\.session[^\n]*\n\s*def\s+(\w+)", text):
        line = text.count("\n", 0, m.start()) + 1
        out.append(
            Fact(
                f"nox {m.group(1)}",
                "workflow",
                f"`nox -s {m.group(1)}` ({rel}).",
                line,
                "@nox.session",
                0.5,
                ["nox", m.group(1)],
            )
        )
    return out
