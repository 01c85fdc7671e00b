"""Trained weights for inference: a `lmm train` run folder, a LoRA adapter folder or a model
folder, found (`find_weights`) and loaded over its base (`load_trained`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lmm.errors import LmmError, MissingExtra
from lmm.lm.loaded import LoadedModel, pick_device, transformers_module
from lmm.lm.packaged import PACKAGED

WEIGHT_DIRS = ("merged", "best", "adapter", "model")


def peft_module() -> Any:
    """The peft package, or MissingExtra saying which extra to install."""
    try:
        import peft
    except ImportError as exc:
        raise MissingExtra("train", "peft") from exc
    return peft


def resolve_source(name: str) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for a base given the way lmm takes models."""
    path = PACKAGED[name]() if name in PACKAGED else Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise LmmError(f"{path} is not a .gguf file; pass a model folder or a .gguf file")
        return str(path.parent), path.name
    return (str(path) if path.exists() else name), None


def load_base(name: str, dtype: torch.dtype, device: torch.device | str) -> tuple[Any, Any]:
    """(causal LM, tokenizer) of a base model, in `dtype` on `device`."""
    tf = transformers_module()
    where, gguf = resolve_source(name)
    kwargs: dict[str, Any] = {"gguf_file": gguf} if gguf else {}
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(where, **kwargs)
        model = tf.AutoModelForCausalLM.from_pretrained(where, dtype=dtype, **kwargs)
    except OSError as exc:
        raise LmmError(
            f"cannot load base model {name!r} ({str(exc)[:200]}). Pass a local folder, a .gguf "
            f"file or a packaged name, or download it while online: huggingface-cli download {name}"
        ) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.to(device), tokenizer


def find_weights(path: Path, *, adapter_first: bool = False) -> tuple[str, Path]:
    """("adapter" | "model", folder) of the weights to use from a run, adapter or model folder.

    In a run folder: merged/, then best/, then the final adapter/ or model/. `adapter_first`
    skips merged/ (to continue training an adapter rather than a merged copy)."""
    path = path.expanduser()
    if (path / "adapter_config.json").is_file():
        return "adapter", path
    if (path / "config.json").is_file() and not _is_run(path):
        return "model", path
    for name in WEIGHT_DIRS:
        if adapter_first and name == "merged":
            continue
        if (path / name).is_dir():
            return find_weights(path / name)
    raise LmmError(
        f"{path} holds no trained weights (adapter/, model/, best/ or merged/); pass a run folder "
        "written by `lmm train`, an adapter folder or a model folder"
    )


def _is_run(path: Path) -> bool:
    try:
        return bool(json.loads((path / "config.json").read_text()).get("lmm_run"))
    except (OSError, ValueError):
        return False


def is_trained_dir(path: Path) -> bool:
    """Whether `path` is a run folder or an adapter folder (what `load_trained` adds to
    `lmm.lm.models.load`, which reads plain model folders itself)."""
    return path.is_dir() and ((path / "adapter_config.json").is_file() or _is_run(path))


def adapter_base(adapter: Path) -> str:
    config = json.loads((adapter / "adapter_config.json").read_text())
    base = config.get("base_model_name_or_path")
    if not base:
        raise LmmError(f"{adapter}/adapter_config.json names no base model")
    return str(base)


def load_trained(path: str | Path, device: str = "auto") -> LoadedModel:
    """A trained run (or adapter, or model folder) as a `LoadedModel` for inference:
    an adapter is merged into its base in memory, so generation costs what the base costs."""
    device = pick_device(device)
    kind, where = find_weights(Path(path))
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    if kind == "model":
        model, tokenizer = load_base(str(where), dtype, device)
    else:
        lm, _ = load_base(adapter_base(where), dtype, device)
        model = peft_module().PeftModel.from_pretrained(lm, str(where)).merge_and_unload()
        tokenizer = transformers_module().AutoTokenizer.from_pretrained(str(where))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(model.eval(), tokenizer, str(path), device)
