"""`lmm embed [--model M]`: embed the turns and cognitions that have no vector for M yet."""

from __future__ import annotations

import argparse
import dataclasses

from lmm.cli.output import emit, progress_bar
from lmm.retrieve.embed import CHUNK


def cmd_embed(args: argparse.Namespace) -> int:
    from lmm.retrieve.embed import embed_pending, get_embedder
    from lmm.store.db import open_store
    from lmm.store.vectors import count_pending

    embedder = get_embedder(args.model)
    with open_store() as store:
        update, close = progress_bar(count_pending(store, embedder.name), "embed", unit="item")
        try:
            report = embed_pending(store, embedder, batch=args.batch, progress=update)
        finally:
            close()
    text = (
        f"embedded {report.turns} turns and {report.cognitions} cognitions with "
        f"{report.model} in {report.seconds:.1f} s"
    )
    emit(args, dataclasses.asdict(report), text)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "embed", parents=[common], help="embed new turns and cognitions for dense search"
    )
    p.add_argument(
        "--model",
        default=None,
        help="registered name (all-MiniLM-L6-v2, fake-hash) or a local sentence-transformers "
        "folder (default: all-MiniLM-L6-v2, packaged)",
    )
    p.add_argument("--batch", type=int, default=CHUNK, help="texts per model call and commit")
    p.set_defaults(func=cmd_embed)
