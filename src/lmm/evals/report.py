"""Run reports: `results.json` (everything), `summary.md` (tables) and PNG plots (per-category
bars, recall@k curves, loss curves) in a run's output folder; `compare` puts two runs side by side.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmm.errors import LmmError

log = logging.getLogger(__name__)

# (key in a config summary, column title) for the memory-task table
_RANK_AND_OUTPUT = [  # the columns after recall, in every memory-task table
    ("mrr", "MRR"),
    ("ndcg@10", "nDCG@10"),
    ("diversity", "diversity (J)"),
    ("length_tokens", "length"),
    ("seconds", "s/example"),
    ("examples", "n"),
    ("modes", "output modes"),
]
MEMORY_COLUMNS = [
    ("coverage", "coverage"),
    ("recall@5", "R@5"),
    ("recall@10", "R@10"),
    *_RANK_AND_OUTPUT,
]
LOCOMO_COLUMNS = [
    ("coverage", "coverage"),
    *((f"recall@{k}", f"R@{k}") for k in (5, 10, 25, 50)),
    *((f"recall@{k} (audit)", f"R@{k} audit") for k in (5, 10, 25, 50)),
    *_RANK_AND_OUTPUT,
]
QA_COLUMNS = [
    ("f1_cat1_4", "F1 cat 1-4"),
    ("f1_cat1_4_corrected", "F1 (audit gold)"),
    ("seconds_per_question", "s/question"),
    ("questions", "n"),
]


def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def new_results(eval_name: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "eval": eval_name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": git_sha(),
        "command": "lmm " + " ".join(sys.argv[1:]) if sys.argv else None,
        "settings": settings,
        "configs": {},
        "skipped": {},
        "rows": {},
    }


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def columns_of(results: dict[str, Any]) -> list[tuple[str, str]]:
    """The metrics a run reports: its own `columns`, else by kind (QA or memory task)."""
    if results.get("columns"):
        return [(k, k) for k in results["columns"]]
    kinds = {"qa": QA_COLUMNS, "locomo": LOCOMO_COLUMNS}
    return kinds.get(results.get("kind", ""), MEMORY_COLUMNS)


def table(results: dict[str, Any], columns: list[tuple[str, str]] | None = None) -> str:
    """A markdown table: one row per configuration, one column per metric."""
    columns = columns or columns_of(results)
    head = "| config | " + " | ".join(t for _, t in columns) + " |"
    lines = [head, "|" + "---|" * (len(columns) + 1)]
    for name, summary in results["configs"].items():
        lines.append(f"| {name} | " + " | ".join(fmt(summary.get(k)) for k, _ in columns) + " |")
    for name, why in results.get("skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} |" + " |" * (len(columns) - 1))
    return "\n".join(lines)


def category_table(results: dict[str, Any], key: str) -> str:
    """Configurations x categories of `key` (coverage_by_category or f1_by_category)."""
    cats: list[str] = []
    for s in results["configs"].values():
        cats += [c for c in s.get(key, {}) if c not in cats]
    if not cats:
        return ""
    lines = ["| config | " + " | ".join(cats) + " |", "|" + "---|" * (len(cats) + 1)]
    for name, s in results["configs"].items():
        lines.append(f"| {name} | " + " | ".join(fmt(s.get(key, {}).get(c)) for c in cats) + " |")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    parts = [
        f"# {results['eval']}",
        "",
        f"{results['created']}, git {str(results.get('git'))[:12]}",
        "",
        f"`{results.get('command')}`",
        "",
        table(results),
        "",
    ]
    for key, title in (
        ("coverage_by_category", "Keyword coverage by category"),
        ("f1_by_category", "F1 by category"),
    ):
        cat = category_table(results, key)
        if cat:
            parts += [f"## {title}", "", cat, ""]
    for name, extra in results.get("sections", {}).items():
        parts += [f"## {name}", "", extra, ""]
    parts += ["## Settings", "", "```json", json.dumps(results["settings"], indent=1), "```", ""]
    return "\n".join(parts)


# ---- plots


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_categories(results: dict[str, Any], key: str, path: Path, ylabel: str) -> bool:
    plt = _pyplot()
    configs = {n: s.get(key, {}) for n, s in results["configs"].items() if s.get(key)}
    if plt is None or not configs:
        return False
    cats = list(dict.fromkeys(c for v in configs.values() for c in v))
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(cats) * len(configs) / 2), 4))
    width = 0.8 / len(configs)
    for i, (name, values) in enumerate(configs.items()):
        xs = [j + i * width for j in range(len(cats))]
        ax.bar(xs, [values.get(c) or 0.0 for c in cats], width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(cats))], cats, rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{results['eval']}: {ylabel} by category")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _curve(summary: dict[str, Any], suffix: str) -> list[tuple[int, float]]:
    """(k, value) of keys 'recall@<k><suffix>' in a config summary, sorted by k."""
    found = (re.fullmatch(r"recall@(\d+)" + re.escape(suffix), key) for key in summary)
    return sorted((int(m.group(1)), summary[m.group(0)]) for m in found
                  if m and summary[m.group(0)] is not None)  # fmt: skip


def plot_recall(results: dict[str, Any], path: Path) -> bool:
    """recall@k against k per configuration; audited-evidence curves dashed."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    drawn = False
    for name, s in results["configs"].items():
        for suffix, style in (("", "-"), (" (audit)", "--")):
            points = _curve(s, suffix)
            if points and any(v for _, v in points):
                ax.plot([k for k, _ in points], [v for _, v in points], style, marker="o",
                        label=name + suffix)  # fmt: skip
                drawn = True
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1)
    ax.set_title(f"{results['eval']}: recall@k")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_losses(curves: dict[str, list[tuple[int, float]]], path: Path, title: str) -> bool:
    """Loss curves: name -> [(step, loss)]."""
    plt = _pyplot()
    if plt is None or not curves:
        return False
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in curves.items():
        ax.plot([s for s, _ in points], [v for _, v in points], label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: dict[str, Any], out: Path) -> list[Path]:
    """results.json, summary.md and the plots that apply; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "results.json", out / "summary.md"]
    files[0].write_text(json.dumps(results, indent=1, default=str))
    plots = [
        (
            out / "coverage_by_category.png",
            lambda p: plot_categories(results, "coverage_by_category", p, "keyword coverage"),
        ),
        (out / "f1_by_category.png", lambda p: plot_categories(results, "f1_by_category", p, "F1")),
        (out / "recall_at_k.png", lambda p: plot_recall(results, p)),
    ]
    if _pyplot() is None:
        log.warning("plots need matplotlib: pip install 'lmm[eval]'")
    files += [path for path, draw in plots if draw(path)]
    files[1].write_text(markdown(results))
    return files


# ---- comparing runs


def load(path: Path) -> dict[str, Any]:
    path = Path(path)
    file = path / "results.json" if path.is_dir() else path
    if not file.is_file():
        raise LmmError(f"no results at {file}; pass an `lmm eval` output folder or results.json")
    return dict(json.loads(file.read_text()))


def compare(a: dict[str, Any], b: dict[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """Configurations of both runs side by side: each metric as A | B | B - A."""
    columns = columns_of(a)
    head = ["config", "metric", names[0], names[1], "B - A"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for config in dict.fromkeys([*a["configs"], *b["configs"]]):
        sa, sb = a["configs"].get(config, {}), b["configs"].get(config, {})
        for key, title in columns:
            va, vb = sa.get(key), sb.get(key)
            delta = vb - va if isinstance(va, int | float) and isinstance(vb, int | float) else None
            lines.append(f"| {config} | {title} | {fmt(va)} | {fmt(vb)} | {fmt(delta)} |")
    return "\n".join(lines)
