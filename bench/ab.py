"""Two checkouts of lmm, one benchmark, interleaved: is a difference bigger than the spread?

    python bench/ab.py OLD NEW --rounds 3 --metric 'hook, warm\\s+(\\d+)\\s+(\\d+)' \\
        -- bench/recall_latency.py --runs 3 --models none

OLD and NEW are checkouts (a git worktree of the older commit, and this one). Round by round,
alternating which goes first, the benchmark script runs from each checkout with that
checkout's `src` on PYTHONPATH, so each side times its own code with its own benchmark. Each
--metric is a regular expression whose groups are numbers in the benchmark's output; for each
group the table shows every round of both sides, their medians and their ranges, and whether
the ranges overlap (within the run-to-run spread) or not. The load average is printed with
each round.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(checkout: Path, script: list[str]) -> str:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    proc = subprocess.run(
        [sys.executable, *script], cwd=checkout, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{checkout}: {' '.join(script)} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def labels(metrics: list[str]) -> list[str]:
    """A short name per number: the metric's literal start, and which group."""
    out = []
    for metric in metrics:
        literal = re.sub(r"\\[a-zA-Z]", " ", metric)  # \n, \s, \d: not part of the name
        start = re.split(r"\(|\[|\+|\*", literal, maxsplit=1)[0].replace("\\", "").strip()
        groups = re.compile(metric).groups
        out += [f"{start[:24]} #{g + 1}" if groups > 1 else start[:24] for g in range(groups)]
    return out


def numbers(output: str, metrics: list[str]) -> list[float]:
    found: list[float] = []
    for metric in metrics:
        m = re.search(metric, output)
        if not m:
            raise SystemExit(f"--metric {metric!r} matches nothing in:\n{output[-2000:]}")
        found += [float(g) for g in m.groups()]
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("old", type=Path, help="checkout of the older commit")
    ap.add_argument("new", type=Path, help="checkout of the newer commit")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--metric", action="append", required=True, help="regex, groups = numbers")
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        ap.error("give the benchmark after --: ... -- bench/SCRIPT.py [ARGS]")
    cut = argv.index("--")
    args = ap.parse_args(argv[:cut])
    script = argv[cut + 1 :]
    sides = {"old": args.old.resolve(), "new": args.new.resolve()}
    got: dict[str, list[list[float]]] = {"old": [], "new": []}
    for r in range(args.rounds):
        order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
        for side in order:
            values = numbers(run(sides[side], script), args.metric)
            got[side].append(values)
            load = os.getloadavg()[0]
            print(f"round {r + 1} {side}: {values} (load {load:.1f})", flush=True)
            time.sleep(1)
    head = ["old median", "old range", "new median", "new range"]
    print(f"\n{'value':<28} " + " ".join(f"{h:>{11 if 'median' in h else 17}}" for h in head))
    for i, name in enumerate(labels(args.metric)):
        old = [v[i] for v in got["old"]]
        new = [v[i] for v in got["new"]]
        overlap = min(max(old), max(new)) >= max(min(old), min(new))
        print(
            f"{name:<28} {statistics.median(old):>11.1f} {f'{min(old):.1f}-{max(old):.1f}':>17} "
            f"{statistics.median(new):>11.1f} {f'{min(new):.1f}-{max(new):.1f}':>17}  "
            + ("within spread" if overlap else "APART")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
