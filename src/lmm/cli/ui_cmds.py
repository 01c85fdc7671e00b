"""`lmm ui`: the memory browser, a local web page to see, search and correct what lmm remembers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lmm.cli.output import emit

if TYPE_CHECKING:
    from lmm.retrieve.embed import Embedder


def cmd_ui(args: argparse.Namespace) -> int:
    from lmm.retrieve import recall as rc
    from lmm.store.db import open_store
    from lmm.ui import UIConfig, serve
    from lmm.ui.reports import ReportSources, default_sources

    found = default_sources()
    sources = ReportSources(
        Path(args.benchmarks).expanduser() if args.benchmarks else found.benchmarks,
        tuple(Path(d).expanduser() for d in args.reports) or found.roots,
    )

    def load_embedder() -> Embedder | None:  # on a background thread, after the URL is printed
        with open_store() as store:
            return rc.default_embedder(store, args.embedder)

    with open_store():  # a missing or unreadable store fails here, before the URL
        pass
    config = UIConfig(port=args.port, reports=sources, load_embedder=load_embedder)

    def ready(url: str) -> None:
        emit(args, {"url": url}, f"lmm ui: {url}")
        sys.stdout.flush()
        print("lmm: serving on 127.0.0.1 only; Ctrl-C stops", file=sys.stderr)

    serve(config, open_browser=args.open, ready=ready)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ui", parents=[common], help="browse, search and correct memory locally")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--open", action="store_true", help="open the page in your browser")
    p.add_argument(
        "--reports",
        action="append",
        default=[],
        metavar="DIR",
        help="evaluation output folder; the newest report in it is shown (repeatable; "
        "default ./runs and ./out)",
    )
    p.add_argument("--benchmarks", metavar="FILE", help="default ./docs/benchmarks.md")
    p.add_argument(
        "--embedder", help="embedding model for recall, or 'none' (default: the store's)"
    )
    p.set_defaults(func=cmd_ui)
