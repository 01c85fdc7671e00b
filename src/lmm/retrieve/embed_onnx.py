"""MiniLM through ONNX Runtime: the packaged all-MiniLM-L6-v2 without torch."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmm import config
from lmm.errors import LmmError, MissingExtra

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

GRAPH_VERSION = 1  # bump when `bert_graph` or the quantisation changes: the cache key holds it
OPSET = 17  # LayerNormalization
MAX_TOKENS = 4_096  # word pieces per run (rows x longest row): bounds a batch's memory
MAX_ROWS = 64
KEY_CHARS = 1_500  # MiniLM reads 256 word pieces; more text only costs tokenizer time


def cache_dir() -> Path:
    """`$LMM_CACHE`, else `$XDG_CACHE_HOME/lmm`, else ~/.cache/lmm: derived files, not data."""
    if env := config.settings().cache:
        return Path(env).expanduser()
    return Path(config.default_cache())


def _import(module: str, package: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra("embed", package) from exc


# ---- the weights and the graph


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a numpy array (F32, F16 and I64 only)."""
    np = _import("numpy", "numpy")
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in kinds:
            raise LmmError(f"{path}: tensor {name} has dtype {info['dtype']}, not F32/F16/I64")
        start, end = info["data_offsets"]
        arr = np.frombuffer(data[start:end], dtype=kinds[info["dtype"]]).reshape(info["shape"])
        out[name] = arr.astype(np.float32) if info["dtype"] == "F16" else arr.copy()
    return out


def bert_graph(weights: dict[str, np.ndarray], config: dict[str, Any]) -> Any:
    """An ONNX model: (input_ids, attention_mask) int64 [batch, seq] -> `embedding` float32
    [batch, hidden], the unit-length mean of the last layer's token states over the mask (what
    sentence-transformers' Transformer, Pooling(mean) and Normalize modules compute). Token type
    ids are all 0, as sentence-transformers passes them for single texts."""
    np = _import("numpy", "numpy")
    onnx = _import("onnx", "onnx")
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    if config.get("hidden_act", "gelu") != "gelu":
        raise LmmError(f"the ONNX path knows BERT with exact gelu, not {config['hidden_act']!r}")
    head_dim = hidden // heads
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def w(name: str) -> Any:
        return weights[prefix + name]

    inits: list[Any] = []
    nodes: list[Any] = []
    counter = iter(range(1_000_000))

    def const(name: str, value: Any) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = f"{op.lower()}_{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def linear(x: str, name: str) -> str:
        weight = const(name + ".weight", w(name + ".weight").T.astype(np.float32).copy())
        return node("Add", [node("MatMul", [x, weight]), const(name + ".bias", w(name + ".bias"))])

    def layer_norm(x: str, name: str) -> str:
        scale = const(name + ".weight", w(name + ".weight"))
        shift = const(name + ".bias", w(name + ".bias"))
        return node("LayerNormalization", [x, scale, shift], axis=-1, epsilon=eps)

    # embeddings: word + position + token type 0
    words = node(
        "Gather", [const("word_embeddings", w("embeddings.word_embeddings.weight")), "input_ids"]
    )
    zero, one, two = (const(f"i{n}", np.array([n])) for n in (0, 1, 2))
    seq = node("Slice", [node("Shape", ["input_ids"]), one, two])  # [t]
    table = w("embeddings.position_embeddings.weight")
    table = (table + w("embeddings.token_type_embeddings.weight")[0]).astype(np.float32)
    positions = node("Slice", [const("position_embeddings", table), zero, seq, zero])
    x = layer_norm(node("Add", [words, positions]), "embeddings.LayerNorm")

    # attention bias: 0 where the mask is 1, a large negative number where it is 0
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    f_one = const("f_one", np.float32(1.0))
    bias = node("Mul", [node("Sub", [f_one, mask]), const("neg", np.float32(-1e4))])
    bias = node("Unsqueeze", [bias, const("axes_1_2", np.array([1, 2]))])  # [b, 1, 1, t]
    split_shape = const("split_heads", np.array([0, 0, heads, head_dim]))
    merge_shape = const("merge_heads", np.array([0, 0, hidden]))
    scale = const("scale", np.float32(1.0 / np.sqrt(head_dim)))
    sqrt_half = const("sqrt_half", np.float32(1.0 / np.sqrt(2.0)))
    half = const("half", np.float32(0.5))

    for i in range(layers):
        p = f"encoder.layer.{i}."

        def heads_of(proj: str, perm: list[int], x: str = x, p: str = p) -> str:
            return node(
                "Transpose", [node("Reshape", [linear(x, p + proj), split_shape])], perm=perm
            )

        q = heads_of("attention.self.query", [0, 2, 1, 3])  # [b, h, t, d]
        k = heads_of("attention.self.key", [0, 2, 3, 1])  # [b, h, d, t]
        v = heads_of("attention.self.value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k]), scale]), bias])
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape])
        attn = linear(ctx, p + "attention.output.dense")
        x = layer_norm(node("Add", [attn, x]), p + "attention.output.LayerNorm")
        inner = linear(x, p + "intermediate.dense")
        erf = node("Erf", [node("Mul", [inner, sqrt_half])])  # exact gelu
        inner = node("Mul", [node("Mul", [inner, half]), node("Add", [erf, f_one])])
        x = layer_norm(node("Add", [linear(inner, p + "output.dense"), x]), p + "output.LayerNorm")

    # mean over the mask, then unit length
    weights_3d = node("Unsqueeze", [mask, const("axis_2", np.array([2]))])
    axis_1 = const("axis_1", np.array([1]))
    total = node("ReduceSum", [node("Mul", [x, weights_3d]), axis_1], keepdims=0)
    count = node("ReduceSum", [weights_3d, axis_1], keepdims=0)
    count = node("Max", [count, const("tiny", np.float32(1e-9))])
    mean = node("Div", [total, count])
    norm = node("ReduceL2", [mean], axes=[-1], keepdims=1)  # axes an attribute until opset 18
    norm = node("Max", [norm, const("eps", np.float32(1e-12))])
    nodes.append(helper.make_node("Div", [mean, norm], ["embedding"]))

    graph = helper.make_graph(
        nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = min(model.ir_version, 9)  # readable by older onnxruntime releases
    onnx.checker.check_model(model)
    return model


# ---- the cache


def cache_key(folder: Path, quantize: bool) -> str:
    """What the cached file depends on: the weights (size, mtime), graph, runtime version."""
    ort = _import("onnxruntime", "onnxruntime")
    st = (folder / "model.safetensors").stat()
    raw = f"{folder.resolve()}|{st.st_size}|{st.st_mtime_ns}|{GRAPH_VERSION}|{ort.__version__}"
    return hashlib.sha256(f"{raw}|{quantize}".encode()).hexdigest()[:16]


def cached_model(folder: Path, *, quantize: bool = False, cache: Path | None = None) -> Path:
    """The ONNX file of the model in `folder` (int8 MatMuls if `quantize`), built on first use
    and written atomically, so processes starting together never read half a file."""
    cache = cache or cache_dir()
    kind = "int8" if quantize else "f32"
    out = cache / "onnx" / f"{folder.name}-{kind}-{cache_key(folder, quantize)}.onnx"
    if out.exists():
        return out
    onnx = _import("onnx", "onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    log.info("building the ONNX model of %s in %s (once)", folder, out)
    config = json.loads((folder / "config.json").read_text())
    model = bert_graph(read_safetensors(folder / "model.safetensors"), config)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        f32 = Path(tmp) / "f32.onnx"
        onnx.save(model, str(f32))
        built = f32
        if quantize:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            built = Path(tmp) / "int8.onnx"
            logging.disable(logging.WARNING)  # the quantiser's advice to pre-process first
            try:
                quantize_dynamic(
                    str(f32),
                    str(built),
                    op_types_to_quantize=["MatMul"],
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                )
            finally:
                logging.disable(logging.NOTSET)
        os.replace(built, out)
    for old in out.parent.glob(f"{folder.name}-{kind}-*.onnx"):  # built for other weights
        if old != out:  # or another onnxruntime: a loaded session keeps its own copy
            old.unlink(missing_ok=True)
    return out


# ---- the embedder


class OnnxEmbedder:
    """Texts -> unit float32 rows through ONNX Runtime (see the module doc)."""

    def __init__(
        self,
        folder: Path,
        name: str,
        *,
        quantize: bool = False,
        threads: int | None = None,
        cache: Path | None = None,
    ) -> None:
        ort = _import("onnxruntime", "onnxruntime")
        tokenizers = _import("tokenizers", "tokenizers")
        self.name = name
        self.variant = "onnx-int8" if quantize else "onnx-f32"
        config = json.loads((folder / "config.json").read_text())
        self.dim = int(config["hidden_size"])
        st_config = folder / "sentence_bert_config.json"
        st = json.loads(st_config.read_text()) if st_config.exists() else {}
        self.max_len = int(st.get("max_seq_length", 256))
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.path = cached_model(folder, quantize=quantize, cache=cache)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or min(os.cpu_count() or 1, 4)
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: on a shared machine spinning threads steal the cores
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def embed(self, texts: list[str]) -> np.ndarray:
        np = _import("numpy", "numpy")
        cut = [t[:KEY_CHARS].strip() for t in texts]  # as sentence-transformers strips
        unique = list(dict.fromkeys(cut))  # a repeated text (a tool's stock reply) runs once
        out = np.zeros((len(unique), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(unique)
        ids = [e.ids for e in encodings]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < MAX_ROWS:
                if (end - start + 1) * len(ids[order[end]]) > MAX_TOKENS:
                    break
                end += 1
            rows = order[start:end]
            width = len(ids[rows[-1]])
            batch = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                batch[r, : len(ids[i])] = ids[i]
                mask[r, : len(ids[i])] = 1
            (vecs,) = self.session.run(["embedding"], {"input_ids": batch, "attention_mask": mask})
            out[rows] = vecs
            start = end
        if len(unique) == len(cut):
            return out
        row_of = {text: i for i, text in enumerate(unique)}
        return out[[row_of[t] for t in cut]]
