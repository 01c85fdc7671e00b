"""The `lmm` command line: thin calls into the library. Results on stdout, diagnostics on stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from lmm import __version__, paths
from lmm.cli import (
    doctor_cmds,
    embed_cmds,
    eval_cmds,
    memory_cmds,
    recall_cmds,
    store_cmds,
    team_cmds,
    train_cmds,
    ui_cmds,
)
from lmm.errors import LmmError

# Command groups, in the order `lmm --help` lists them.
GROUPS = [
    store_cmds, embed_cmds, memory_cmds, recall_cmds, team_cmds, ui_cmds, doctor_cmds, eval_cmds,
    train_cmds,
]  # fmt: skip


# Arguments that are text for the store, not paths: they must be valid UTF-8 (a path may not be).
_TEXT_ARGS = ("text", "query", "project", "category", "since", "extractor")


def _check_text(args: argparse.Namespace) -> None:
    """Refuse a text argument that is not valid UTF-8 (the shell passes raw bytes through)."""
    for name in _TEXT_ARGS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise LmmError(
                    f"the {name} argument is not valid UTF-8 text; pass it in UTF-8"
                ) from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")
    parser = argparse.ArgumentParser(
        prog="lmm",
        description="A local memory layer for coding agents. "
        f"Store: $LMM_HOME/lmm.db (now {paths.db_path()}).",
    )
    parser.add_argument("--version", action="version", version=f"lmm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        group.register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if not sys.stderr.isatty():  # no model-loading bars in logs and pipes (huggingface and
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers read this)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `lmm` alone: what it can do, not a usage error
        parser.print_help()
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="lmm: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        _check_text(args)
        return int(args.func(args))
    except LmmError as exc:
        print(f"lmm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmm: interrupted; everything committed so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
