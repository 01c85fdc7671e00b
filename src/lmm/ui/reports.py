"""The reports page: docs/benchmarks.md and the newest evaluation output folder, plots included."""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmm import paths
from lmm.ui.layout import Links, esc

REPORT_SUFFIXES = (".md", ".json", ".png")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
SHOW_ORDER = (".md", ".png", ".json")
MAX_TEXT = 400_000  # characters of a report file shown; the rest is cut
MAX_JSON = 50_000_000  # bytes of a JSON report read to abridge it


@dataclass(frozen=True)
class ReportSources:
    """Where reports live. Paths may not exist; the page says what it found."""

    benchmarks: Path | None  # docs/benchmarks.md
    roots: tuple[Path, ...]  # evaluation output folders (the newest subfolder is shown)

    def allowed(self) -> list[Path]:
        dirs = [r.resolve() for r in self.roots]
        if self.benchmarks is not None:
            dirs.append(self.benchmarks.resolve().parent)
        return dirs


CHECKOUT = Path(__file__).resolve().parents[3]  # the source checkout, when lmm runs from one


def default_sources(cwd: Path | None = None, checkout: Path = CHECKOUT) -> ReportSources:
    """./docs/benchmarks.md (else the one of the checkout lmm runs from, so the page is not
    empty when `lmm ui` starts elsewhere); `lmm eval`'s default output ($LMM_HOME/evals/TASK),
    ./runs, ./out."""
    base = cwd or Path.cwd()
    roots = (paths.home() / "evals", base / "runs", base / "out")
    benchmarks = base / "docs" / "benchmarks.md"
    if not benchmarks.is_file() and (checkout / "docs" / "benchmarks.md").is_file():
        benchmarks = checkout / "docs" / "benchmarks.md"
    return ReportSources(benchmarks, roots)


def report_folders(roots: tuple[Path, ...]) -> list[Path]:
    """Folders holding report files (each root and the folders just below it), newest first."""
    found: dict[Path, float] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for folder in [root, *(p for p in root.iterdir() if p.is_dir())]:
            files = [f for f in folder.iterdir() if f.is_file() and f.suffix in REPORT_SUFFIXES]
            if files:
                found[folder.resolve()] = max(f.stat().st_mtime for f in files)
    return sorted(found, key=lambda f: (-found[f], str(f)))


def allowed_file(sources: ReportSources, raw: str) -> Path | None:
    """The image at `raw` if it lies inside a report folder, else None (no path escapes)."""
    path = Path(raw).resolve()
    if path.suffix.lower() not in IMAGE_TYPES or not path.is_file():
        return None
    return path if any(path.is_relative_to(d) for d in sources.allowed()) else None


# ---- markdown, escaped


_INLINE = re.compile(r"(`[^`]+`|!\[[^\]]*\]\([^)]+\)|\[[^\]]+\]\([^)]+\)|\*\*[^*]+\*\*)")


def _inline(text: str, base: Path, links: Links) -> str:
    out = []
    for part in _INLINE.split(text):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(f"<code>{esc(part[1:-1])}</code>")
        elif part.startswith("**") and part.endswith("**") and len(part) > 3:
            out.append(f"<b>{esc(part[2:-2])}</b>")
        elif m := re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", part):
            out.append(image(base / m.group(2), links, m.group(1)))
        elif m := re.fullmatch(r"\[([^\]]+)\]\(([^)]+)\)", part):
            out.append(f"{esc(m.group(1))} <span class='meta'>({esc(m.group(2))})</span>")
        else:
            out.append(esc(part))
    return "".join(out)


def image(path: Path, links: Links, alt: str = "") -> str:
    return (
        f'<img class="plot" alt="{esc(alt or path.name)}" '
        f'src="{links.href("/file", path=str(path.resolve()))}">'
    )


def _row(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _is_rule(line: str) -> bool:
    """Whether `line` is a table's header rule, like |---|:--:|."""
    return "-" in line and set(line.replace(" ", "")) <= set("|:-")


def markdown(text: str, base: Path, links: Links) -> str:
    """A small Markdown subset to HTML; every piece of text is escaped."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(f"<pre>{esc(chr(10).join(lines[i + 1 : j]))}</pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            level = min(len(m.group(1)) + 1, 4)  # the page owns <h1>
            out.append(f"<h{level}>{_inline(m.group(2), base, links)}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _is_rule(lines[i + 1]):
            head = "".join(f"<th>{_inline(c, base, links)}</th>" for c in _row(line))
            body = []
            i += 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                cells = "".join(f"<td>{_inline(c, base, links)}</td>" for c in _row(lines[i]))
                body.append(f"<tr>{cells}</tr>")
                i += 1
            out.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")
        elif re.match(r"\s*([-*]|\d+\.)\s+", line):
            items = []
            while i < len(lines) and (m := re.match(r"\s*(?:[-*]|\d+\.)\s+(.*)", lines[i])):
                items.append(f"<li>{_inline(m.group(1), base, links)}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
        elif not line.strip():
            i += 1
        else:
            para = [line]
            i += 1
            while (
                i < len(lines) and lines[i].strip() and not re.match(r"[#|`]|\s*[-*]\s", lines[i])
            ):
                para.append(lines[i])
                i += 1
            out.append(f"<p>{_inline(' '.join(para), base, links)}</p>")
    return f"<div class='md'>{''.join(out)}</div>"


# ---- the page


def _read(path: Path, limit: int = MAX_TEXT) -> str:
    with path.open("rb") as f:
        return f.read(limit).decode("utf-8", errors="replace")


def abridge(value: Any, items: int = 8) -> Any:
    """`value` with every list cut to its first `items` (and a note of how many there were)."""
    if isinstance(value, dict):
        return {k: abridge(v, items) for k, v in value.items()}
    if isinstance(value, list):
        cut = [abridge(v, items) for v in value[:items]]
        return [*cut, f"... {len(value) - items} more"] if len(value) > items else cut
    return value


def _file_block(path: Path, links: Links) -> str:
    if path.suffix == ".png":
        return f"<h3>{esc(path.name)}</h3>{image(path, links)}"
    if path.suffix == ".md":
        rendered = markdown(_read(path), path.parent, links)
        return f"<h3>{esc(path.name)}</h3><div class='card'>{rendered}</div>"
    text = _read(path, MAX_JSON)
    with contextlib.suppress(ValueError):  # not JSON (or cut): shown as written
        text = json.dumps(abridge(json.loads(text)), indent=2, ensure_ascii=False)
    text = text[:MAX_TEXT]
    return (
        f"<details class='card'><summary>{esc(path.name)}</summary><pre>{esc(text)}</pre></details>"
    )


def reports_page(sources: ReportSources, links: Links, chosen: str = "") -> tuple[str, str]:
    """docs/benchmarks.md, then one evaluation folder: `chosen` if it is one, else the newest."""
    parts = ["<h1>Reports</h1><p class='sub'>The latest benchmark and evaluation results.</p>"]
    bench = sources.benchmarks
    if bench is not None and bench.is_file():
        rendered = markdown(_read(bench), bench.parent, links)
        parts.append(f"<h2>Benchmarks <span class='meta mono'>{esc(bench)}</span></h2>"
                     f"<div class='card'>{rendered}</div>")  # fmt: skip
    else:
        parts.append(f"<h2>Benchmarks</h2><p class='empty'>No benchmarks file at {esc(bench)}.</p>")
    folders = report_folders(sources.roots)
    if not folders:
        roots = ", ".join(str(r) for r in sources.roots) or "none given"
        parts.append(
            "<h2>Latest evaluation</h2><p class='empty'>No evaluation output in "
            f"{esc(roots)}. Point <code>lmm ui --reports DIR</code> at an eval output folder.</p>"
        )
        return "Reports", "".join(parts)
    folder = next((f for f in folders if str(f) == chosen), folders[0])
    files = sorted(
        (f for f in folder.iterdir() if f.is_file() and f.suffix in REPORT_SUFFIXES),
        key=lambda f: (SHOW_ORDER.index(f.suffix), f.name),
    )
    heading = "Latest evaluation" if folder == folders[0] else "Evaluation"
    chips = "".join(
        f'<a class="{"on" if f == folder else ""}" href="{links.href("/reports", folder=str(f))}">'
        f"{esc(f.name)}</a>"
        for f in folders
    )
    parts.append(f"<h2>{heading} <span class='meta mono'>{esc(folder)}</span></h2>")
    if len(folders) > 1:
        parts.append(f"<div class='chips'>{chips}</div>")
    parts += [_file_block(f, links) for f in files]
    return "Reports", "".join(parts)
