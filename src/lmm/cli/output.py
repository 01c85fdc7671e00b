"""Output helpers shared by the command modules: JSON or text on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson


def emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    """Print `obj` as JSON when `--json` was given, else `text`."""
    if getattr(args, "json", False):
        sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))


def progress_bar(
    total: int, desc: str, unit: str = "B"
) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm bar on stderr when it is a terminal; no-ops otherwise. Returns (update, close)."""
    if not sys.stderr.isatty():
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(
        total=total, unit=unit, unit_scale=unit == "B", desc=desc, file=sys.stderr, leave=False
    )
    return bar.update, bar.close
