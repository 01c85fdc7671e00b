"""Claude Code JSONL transcripts -> `Turn`s, streaming.

API (used by `lmm.ingest`):
- `discover(paths) -> list[TranscriptFile]`: every transcript under the given files/folders, with
  its layout (main session file, sibling `agent-*.jsonl`, or `<session>/subagents/agent-*.jsonl`).
- `TranscriptReader(file, offset=0, line_no=0)`: iterate it to get `Turn`, `ParseIssue` and
  `SessionInfo` items in file order; reading starts at byte `offset` (a line boundary). After
  iteration `reader.offset` is the byte offset just past the last complete line consumed and
  `reader.line_no` its 1-based number; every `Turn.end_offset` is the offset just past its last line.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmm.records import ParseIssue, SessionInfo, Turn


@dataclass
class TranscriptFile:
    path: Path
    layout: str  # session | agent | subagent
    session_id: str | None = None  # from the file name where the layout tells it
    agent_id: str | None = None
    meta: dict[str, object] = field(default_factory=dict)  # <agent>.meta.json, when present


def discover(paths: Sequence[Path]) -> list[TranscriptFile]:
    raise NotImplementedError


class TranscriptReader:
    def __init__(self, file: TranscriptFile, offset: int = 0, line_no: int = 0) -> None:
        self.file = file
        self.offset = offset
        self.line_no = line_no
        self.skipped_reason: str | None = None  # e.g. "warmup probe": the whole file is dropped

    def __iter__(self) -> Iterator[Turn | ParseIssue | SessionInfo]:
        raise NotImplementedError
