"""MemoryCode: does extraction keep the latest version of every coding instruction active and
mark every replaced version superseded?

    python bench/memorycode.py --extractor rules            # all dialogues in shared/data
    python bench/memorycode.py --extractor lm --limit 10    # the LM extractor on 10 dialogues
    python bench/memorycode.py --show-failures 5            # why dialogues failed

Each dialogue goes into its own fresh store (project `memorycode/<dialogue>`), sessions as turns
(mentor = user, mentee = assistant), then `run_extraction`; `memorycode.check` judges it with the
dataset's own instruction ids and versions. Prints the share of dialogues fully correct and the
extraction speed (sessions/s, turns/s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from lmm.evals import memorycode
from lmm.memory.extract import get_extractor, run_extraction
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "memorycode"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--extractor", default="rules", choices=["rules", "lm"])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--limit", type=int, default=None, help="only the first N dialogues (by name)")
    ap.add_argument("--show-failures", type=int, default=0, help="print N failed dialogues")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per dialogue (stderr)")
    args = ap.parse_args()
    files = sorted(args.data.glob("dialogue_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    if not files:
        print(f"no MemoryCode dialogues in {args.data}", file=sys.stderr)
        return 1
    files = files[: args.limit] if args.limit else files
    extractor = get_extractor(args.extractor)
    correct = instructions = ok_instructions = sessions = turns = 0
    seconds = 0.0
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            dialogue = memorycode.load(path)
            with Store(Path(tmp) / f"{path.stem}.db") as store:
                memorycode.add_to_store(store, dialogue)
                t0 = time.perf_counter()
                report = run_extraction(store, extractor)
                seconds += time.perf_counter() - t0
                sessions += report.sessions
                turns += report.turns
                result = memorycode.check(store, dialogue)
            correct += result.correct
            instructions += result.instructions
            ok_instructions += result.ok
            if not result.correct:
                failures.append(result)
            if args.verbose:
                print(
                    f"{path.stem}: {result.ok}/{result.instructions} ({seconds:.1f} s)",
                    file=sys.stderr,
                )
    n = len(files)
    print(
        f"extractor={args.extractor} dialogues={n} fully_correct={correct} "
        f"({100 * correct / n:.1f}%) instructions_ok={ok_instructions}/{instructions} "
        f"({100 * ok_instructions / max(1, instructions):.1f}%) sessions={sessions} "
        f"turns={turns} extract_s={seconds:.2f} sessions_per_s={sessions / max(seconds, 1e-9):.0f} "
        f"turns_per_s={turns / max(seconds, 1e-9):.0f}"
    )
    for result in failures[: args.show_failures]:
        print(f"\n{result.name}: {result.ok}/{result.instructions}")
        for problem in result.problems:
            print(f"  {problem}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
