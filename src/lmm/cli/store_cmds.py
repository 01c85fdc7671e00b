"""`lmm ingest | stats | search | export | import`: the store's commands."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from lmm import paths
from lmm.cli.output import emit, progress_bar
from lmm.errors import LmmError

# ---- ingest


def cmd_ingest(args: argparse.Namespace) -> int:
    from lmm.retrieve.embed import get_embedder
    from lmm.serve.learn import learn
    from lmm.store.db import open_store

    sources = [Path(p).expanduser() for p in args.paths]
    if not sources:
        default = paths.claude_projects()
        if default.exists() and next(default.rglob("*.jsonl"), None) is not None:
            sources = [default]
        elif not args.sample:  # never mix the sample into a real store unasked
            raise LmmError(
                f"no Claude Code history at {default}; pass a PATH, set LMM_SOURCE, or add "
                "--sample to try lmm on the bundled sample history"
            )
        else:
            sources = [paths.sample_projects()]
            print(
                f"lmm: no Claude Code history at {default}; ingesting the bundled sample history "
                "(--sample)",
                file=sys.stderr,
            )
    embedder = get_embedder() if args.embed else None  # fails before reading, not after
    bar: list[Any] = []  # (update, close), made once ingest knows how much it will read

    def on_plan(total: int) -> None:
        bar.extend(progress_bar(total, "ingest"))

    with open_store() as store:
        try:
            report = learn(
                store,
                sources,
                fmt=args.format,
                extract=not args.no_extract,
                embedder=embedder,
                progress=lambda n: bar[0](n),
                on_plan=on_plan,
            )
        finally:
            if bar:
                bar[1]()
    issues = report.ingest.issues
    for issue in issues:
        print(f"lmm: {issue.path}:{issue.line_no}: {issue.reason}", file=sys.stderr)
    if report.ingest.malformed > len(issues):
        print(f"lmm: ... and {report.ingest.malformed - len(issues)} more", file=sys.stderr)
    data = {
        **dataclasses.asdict(report.ingest),
        "extract": dataclasses.asdict(report.extract) if report.extract else None,
        "embed": dataclasses.asdict(report.embed) if report.embed else None,
    }
    emit(args, data, report.summary().replace("; ", "\n"))
    return 0


# ---- stats, search


def cmd_stats(args: argparse.Namespace) -> int:
    from lmm.store.db import open_store

    with open_store() as store:
        stats = store.stats()
    text = "\n".join(f"{k:>16}: {v}" for k, v in stats.items())
    emit(args, stats, text)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from lmm.store.db import MATCH_END, MATCH_START, open_store

    with open_store() as store:
        hits = store.search(args.query, project=args.project, limit=args.limit)
    bold = sys.stdout.isatty()
    start, end = ("\x1b[1m", "\x1b[0m") if bold else ("", "")
    lines = []
    for h in hits:
        when = (h.timestamp or "")[:16].replace("T", " ")
        snippet = h.snippet.replace(MATCH_START, start).replace(MATCH_END, end)
        lines.append(f"{when}  {h.session_id[:8]}  {h.role}: {snippet}")
    plain = [
        {
            **dataclasses.asdict(h),
            "snippet": h.snippet.replace(MATCH_START, "").replace(MATCH_END, ""),
        }
        for h in hits
    ]
    emit(args, plain, "\n".join(lines) or "no matches")
    return 0


# ---- export, import


def cmd_export(args: argparse.Namespace) -> int:
    from lmm.store.db import open_store
    from lmm.store.exchange import export_jsonl

    if args.file == "-":  # to stdout, for a pipe: `lmm export - | gzip > store.jsonl.gz`
        with open_store() as store:
            n = export_jsonl(store, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        print(f"lmm: exported {n} rows", file=sys.stderr)
        return 0
    out = Path(args.file)
    if not out.parent.is_dir():
        raise LmmError(f"there is no folder {out.parent}; create it or pass another path")
    if out.exists() and not args.force:
        raise LmmError(f"{out} exists; pass --force to replace it, or another path")
    tmp = out.with_name(out.name + ".partial")
    with open_store() as store, paths.open_private(tmp) as f:
        n = export_jsonl(store, f)
    tmp.replace(out)
    emit(args, {"file": str(out), "rows": n}, f"exported {n} rows to {out}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from lmm.store.db import open_store
    from lmm.store.exchange import import_jsonl
    from lmm.store.vectors import embedder_dims

    with open_store() as store:
        counts = import_jsonl(store, Path(args.file))
        embedded = len(embedder_dims(store))
    text = "imported " + ", ".join(f"{n} {t}" for t, n in counts.items())
    if counts.get("turns") or counts.get("cognitions"):
        # an export carries no vectors: without `lmm embed` recall of these rows is keyword-only
        text += (
            "\nvectors are not exported: run `lmm embed` so recall finds these rows by meaning"
            if embedded
            else "\nrecall is keyword-only until `lmm embed` (needs the embed extra)"
        )
    emit(args, counts, text)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--sample",
        action="store_true",
        help="with no PATH and no Claude Code history, ingest the bundled sample history (a demo)",
    )
    p.add_argument(
        "--no-extract",
        action="store_true",
        help="skip the rule extractor (by default it reads the new turns: `lmm extract`)",
    )
    p.add_argument(
        "--embed",
        action="store_true",
        help="also embed the new turns and memories with the packaged model (`lmm embed`)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("stats", parents=[common], help="what the store holds")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("search", parents=[common], help="keyword search over stored turns")
    p.add_argument("query", help="words to find in stored turns (keyword search)")
    p.add_argument("--project", help="only this project folder (and folders below it)")
    p.add_argument("-n", "--limit", type=int, default=10, help="at most this many hits")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("export", parents=[common], help="write the whole store to a JSONL file")
    p.add_argument("file", help="the JSONL file to write ('-': standard output)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", parents=[common], help="merge an `lmm export` file into the store")
    p.add_argument("file", help="a file written by `lmm export`")
    p.set_defaults(func=cmd_import)
