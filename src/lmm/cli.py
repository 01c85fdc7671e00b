"""The `lmm` command line: thin calls into the library. Results on stdout, diagnostics on stderr.

Every command takes `--json` for scripts. `LMM_HOME` picks the store's folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from lmm import __version__, paths
from lmm.errors import LmmError

Handler = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, Handler] = {}


def _emit(args: argparse.Namespace, obj: Any, text: str) -> None:
    if args.json:
        sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    else:
        sys.stdout.write(text + ("\n" if text and not text.endswith("\n") else ""))


def _progress_bar(total: int, desc: str) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A tqdm bar on stderr when it is a terminal; a no-op otherwise."""
    if not sys.stderr.isatty():
        return (lambda n: None), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr, leave=False)
    return bar.update, bar.close


# ---- ingest


def cmd_ingest(args: argparse.Namespace) -> int:
    from lmm.ingest import ingest, total_bytes
    from lmm.store import open_store

    sources = [Path(p).expanduser() for p in args.paths]
    if not sources:
        default = paths.claude_projects()
        if default.exists():
            sources = [default]
        else:
            sources = [paths.sample_projects()]
            print(
                f"lmm: no Claude Code history at {default}; ingesting the bundled sample history "
                "instead (pass a PATH or set LMM_SOURCE to read yours)",
                file=sys.stderr,
            )
    update, close = _progress_bar(total_bytes(sources, args.format), "ingest")
    with open_store() as store:
        try:
            report = ingest(store, sources, fmt=args.format, progress=update)
        finally:
            close()
    for issue in report.issues:
        print(f"lmm: {issue.path}:{issue.line_no}: {issue.reason}", file=sys.stderr)
    if report.malformed > len(report.issues):
        print(f"lmm: ... and {report.malformed - len(report.issues)} more", file=sys.stderr)
    _emit(args, dataclasses.asdict(report), "ingested " + report.summary())
    return 0


# ---- stats, search


def cmd_stats(args: argparse.Namespace) -> int:
    from lmm.store import open_store

    with open_store() as store:
        stats = store.stats()
    text = "\n".join(f"{k:>16}: {v}" for k, v in stats.items())
    _emit(args, stats, text)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from lmm.store import open_store

    with open_store() as store:
        hits = store.search(args.query, project=args.project, limit=args.limit)
    lines = []
    for h in hits:
        when = (h.timestamp or "")[:16]
        lines.append(f"[{h.score:.2f}] {when} {h.session_id[:8]} {h.role}: {h.snippet}")
    _emit(args, [dataclasses.asdict(h) for h in hits], "\n".join(lines) or "no matches")
    return 0


# ---- export, import


def cmd_export(args: argparse.Namespace) -> int:
    from lmm.exchange import export_jsonl
    from lmm.store import open_store

    out = Path(args.file)
    tmp = out.with_name(out.name + ".partial")
    with open_store() as store, tmp.open("wb") as f:
        n = export_jsonl(store, f)
    tmp.replace(out)
    _emit(args, {"file": str(out), "rows": n}, f"exported {n} rows to {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from lmm.exchange import import_jsonl
    from lmm.store import open_store

    with open_store() as store:
        counts = import_jsonl(store, Path(args.file))
    text = "imported " + ", ".join(f"{n} {t}" for t, n in counts.items())
    _emit(args, counts, text)
    return 0


# ---- parser


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-v", "--verbose", action="store_true", help="log diagnostics to stderr")

    parser = argparse.ArgumentParser(
        prog="lmm",
        description="A local memory layer for coding agents. Store: $LMM_HOME/lmm.db "
        f"(now {paths.db_path()}).",
    )
    parser.add_argument("--version", action="version", version=f"lmm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[common], help="read transcripts into the store")
    p.add_argument(
        "paths",
        nargs="*",
        help="files or folders (default: $LMM_SOURCE or ~/.claude/projects)",
    )
    p.add_argument(
        "--format",
        choices=["auto", "claude", "generic", "locomo"],
        default="auto",
        help="input format (default: detect)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", parents=[common], help="what the store holds")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("search", parents=[common], help="keyword search over stored turns")
    p.add_argument("query")
    p.add_argument("--project", help="only this project folder (and folders below it)")
    p.add_argument("-n", "--limit", type=int, default=10)
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", parents=[common], help="write the whole store to a JSONL file")
    p.add_argument("file")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common], help="merge an `lmm export` file into the store")
    p.add_argument("file")
    p.set_defaults(func=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="lmm: %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except LmmError as exc:
        print(f"lmm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmm: interrupted; everything committed so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
