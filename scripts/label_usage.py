"""Synthesis rows labelled by use (`lmm.train.usage`) from the store in $LMM_HOME, split or not.

    python scripts/label_usage.py --out DATA [--val-fraction 0.15] [--seed 0]
    LMM_HOME=<store> python scripts/label_usage.py --out R1 --tag cm: --rows-only --any-session
    python scripts/label_usage.py --out DATA --rows R1/rows.jsonl --rows R2/rows.jsonl

The evidence is what recall shows for a prompt; the target is the lines the agent's next turns
used (NONE when it used none). docs/experiments.md has the runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lmm.retrieve.recall import RecallConfig, default_embedder
from lmm.store.db import open_store
from lmm.train.usage import UsageConfig, rows_of, write


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder for usage_*.jsonl")
    ap.add_argument("--val-fraction", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tag", default="", help="prefix of session ids (several stores, one split)")
    ap.add_argument(
        "--rows-only",
        action="store_true",
        help="write every row to OUT/rows.jsonl unsplit (merge stores later)",
    )
    ap.add_argument(
        "--any-session",
        action="store_true",
        help="evidence from every other session, not only earlier ones",
    )
    ap.add_argument(
        "--open-gate", action="store_true", help="also anchors recall's answer gate refuses"
    )
    ap.add_argument("--rows", type=Path, action="append", default=[],
                    help="split these rows.jsonl files (of several stores) instead")  # fmt: skip
    args = ap.parse_args(argv)
    cfg = UsageConfig(causal=not args.any_session, open_gate=args.open_gate)
    rc = RecallConfig(generate=False)
    if args.rows:
        rows = [json.loads(line) for p in args.rows for line in p.read_text().splitlines()]
    else:
        with open_store() as store:
            rows = rows_of(store, cfg, rc.synth, rc.k, default_embedder(store), args.tag)
    if args.rows_only:
        args.out.mkdir(parents=True, exist_ok=True)
        with (args.out / "rows.jsonl").open("w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        print(f"{len(rows)} rows ({sum(1 for r in rows if r['cited'])} cite) -> {args.out}")
        return 0
    stats = write(rows, args.out, cfg, args.val_fraction, args.seed)
    print(json.dumps(stats, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
