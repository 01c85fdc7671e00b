"""A trained LoRA adapter (PEFT format, from `lmm train`) as a GGUF LoRA adapter for llama.cpp."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from lmm.errors import LmmError, MissingExtra
from lmm.lm.packaged import PACKAGED

ADAPTER_GGUF = "adapter.gguf"
ADAPTER_DIRS = ("best", "adapter")  # in a run folder, in this order (merged/ is not a LoRA)
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise MissingExtra("llm", "gguf") from exc
    return gguf


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors file as float32 (F32, F16 or BF16), without torch."""
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    data = memoryview(raw)[8 + size :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise LmmError(f"{path}: tensor {name} is {info['dtype']}; expected F32, F16 or BF16")
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=_DTYPES[info["dtype"]])
        if info["dtype"] == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = array.astype(np.float32).reshape(info["shape"])
    return out


def permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order for the llama architecture (its converter's `permute`)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def base_info(base: Path) -> dict[str, Any]:
    """Architecture, block count and head counts of a GGUF base model."""
    reader = _gguf().GGUFReader(str(base))

    def field(key: str) -> Any:
        f = reader.fields.get(key)
        if f is None:
            return None
        value = f.parts[f.data[0]]
        return bytes(value).decode() if f.types[0].name == "STRING" else int(value[0])

    arch = field("general.architecture")
    return {
        "arch": arch,
        "blocks": field(f"{arch}.block_count"),
        "heads": field(f"{arch}.attention.head_count"),
        "kv_heads": field(f"{arch}.attention.head_count_kv")
        or field(f"{arch}.attention.head_count"),
    }


def convert(adapter: Path, out: Path, info: dict[str, Any]) -> Path:
    """Write the PEFT adapter folder `adapter` as a GGUF LoRA adapter `out` for a base described
    by `info` (`base_info`)."""
    gguf = _gguf()
    config = json.loads((adapter / "adapter_config.json").read_text())
    r, alpha = int(config["r"]), float(config.get("lora_alpha") or config["r"])
    if config.get("use_rslora"):
        alpha *= math.sqrt(r)  # llama.cpp scales by alpha / r
    weights_file = adapter / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise LmmError(
            f"{weights_file} is missing; save the adapter with safetensors (peft's default)"
        )
    tensors = read_safetensors(weights_file)
    arch = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(info["arch"])
    if arch is None:
        raise LmmError(f"llama.cpp does not know the base architecture {info['arch']!r}")
    names = gguf.get_tensor_name_map(arch, info["blocks"])
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, array in tensors.items():
        if ".lora_A." not in key and ".lora_B." not in key:
            raise LmmError(f"{weights_file}: {key} is not a LoRA A/B weight; only LoRA converts")
        module = key.removeprefix("base_model.model.").split(".lora_")[0]
        name = names.get_name(module + ".weight", try_suffixes=(".weight",))
        if name is None:
            raise LmmError(f"no llama.cpp tensor for {module} ({info['arch']})")
        pairs.setdefault(name, {})["a" if ".lora_A." in key else "b"] = array
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), info["arch"])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name, ab in sorted(pairs.items()):
        if set(ab) != {"a", "b"}:
            raise LmmError(f"{weights_file}: {name} lacks its lora_A or lora_B weight")
        b = ab["b"]
        if info["arch"] == "llama" and name.endswith(("attn_q.weight", "attn_k.weight")):
            b = permute(b, info["heads"] if "attn_q" in name else info["kv_heads"])
        writer.add_tensor(name + ".lora_a", np.ascontiguousarray(ab["a"]))
        writer.add_tensor(name + ".lora_b", np.ascontiguousarray(b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return out


def adapter_dir(path: Path) -> Path | None:
    """The PEFT adapter folder of a run folder (best/, then adapter/) or the folder itself."""
    for where in (path, *(path / d for d in ADAPTER_DIRS)):
        if (where / "adapter_config.json").is_file():
            return where
    return None


def base_gguf(adapter: Path) -> Path | None:
    """The adapter's base as a GGUF file (a packaged name or a .gguf path), else None."""
    base = str(
        json.loads((adapter / "adapter_config.json").read_text()).get("base_model_name_or_path")
        or ""
    )
    if base in PACKAGED:
        return PACKAGED[base]()
    path = Path(base).expanduser()
    return path if path.suffix == ".gguf" and path.is_file() else None


def for_llama_cpp(path: Path) -> tuple[Path, Path] | None:
    """(base GGUF, GGUF adapter) to run the LoRA run or adapter folder `path` in llama.cpp,
    converting the adapter on first use; None when it has no adapter or its base is no GGUF."""
    adapter = adapter_dir(path.expanduser())
    if adapter is None:
        return None
    base = base_gguf(adapter)
    if base is None:
        return None
    out = adapter / ADAPTER_GGUF
    source = adapter / "adapter_model.safetensors"
    if not out.is_file() or (source.is_file() and source.stat().st_mtime > out.stat().st_mtime):
        convert(adapter, out, base_info(base))
    return base, out
