"""Coverage-guided fuzzing (atheris / libFuzzer) of the transcript parser and the importers.

    python bench/fuzz_atheris.py -atheris_runs=20000      # a bounded run; prints libFuzzer stats
    python bench/fuzz_atheris.py -max_total_time=60

Each input is written as a file and read by `TranscriptReader`, `read_generic` and
`read_locomo`. A crash is any exception other than lmm's own `InputError` (which is the clear
"not a format lmm reads" answer for a whole file); per-line problems must come back as
`ParseIssue`s, never as exceptions.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from lmm.errors import InputError
    from lmm.ingest import importers, transcripts
    from lmm.records import Turn

WORK = Path(tempfile.mkdtemp(prefix="lmm-fuzz-"))
SEEDS = Path(__file__).resolve().parents[1] / "src" / "lmm" / "sample" / "projects"


def one_input(data: bytes) -> None:
    path = WORK / "s.jsonl"
    path.write_bytes(data)
    reader = transcripts.TranscriptReader(transcripts.TranscriptFile(path, "session", "s"))
    turns = [t for t in reader if isinstance(t, Turn)]
    transcripts.conversation_order(turns)
    for read in (importers.read_generic, importers.read_locomo):
        try:
            for _ in read(path):
                pass
        except InputError:
            pass


def main() -> None:
    corpus = WORK / "corpus"
    corpus.mkdir()
    for i, f in enumerate(sorted(SEEDS.rglob("*.jsonl"))[:8]):  # real shapes as seeds
        (corpus / f"seed{i}").write_bytes(f.read_bytes()[:4096])
    atheris.Setup([*sys.argv, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
