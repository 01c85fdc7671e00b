"""Base models in, trained weights out: load a base, add LoRA, save, merge, load a trained run.

A run folder holds `adapter/` (LoRA, PEFT format) or `model/` (full fine-tuning), `best/` (the
weights with the lowest validation loss), optionally `merged/`, plus `config.json`. Every weights
folder also holds the tokenizer, and an adapter's `adapter_config.json` names its base the way
lmm does (hub id, folder, .gguf file or packaged name), so `load_trained(run)` needs nothing else.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from lmm.errors import LmmError, MissingExtra
from lmm.lm.models import transformers_module

log = logging.getLogger(__name__)

WEIGHT_DIRS = ("merged", "best", "adapter", "model")


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:
        raise MissingExtra("train", "peft") from exc
    return peft


def resolve_source(name: str) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for a base given the way lmm takes models."""
    from lmm.lm import models

    path = models.PACKAGED[name]() if name in models.PACKAGED else Path(name).expanduser()
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


def add_lora(lm: Any, r: int, alpha: int, dropout: float, targets: str) -> Any:
    """`lm` with fresh LoRA adapters (a peft model whose base weights are frozen)."""
    peft = _peft()
    modules: Any = "all-linear" if targets == "all-linear" else targets.split(",")
    config = peft.LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=modules, task_type="CAUSAL_LM"
    )
    return peft.get_peft_model(lm, config)


def no_input_casting(model: Any) -> None:
    """Under autocast, keep LoRA inputs in bf16: peft would copy every input to the adapter's
    fp32 dtype, and autocast would cast it straight back for the matmul."""
    for module in model.modules():
        if hasattr(module, "cast_input_dtype_enabled"):
            module.cast_input_dtype_enabled = False


# ---- finding and reading trained weights


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


def load_for_training(
    base: str, init_from: str, method: str, dtype: torch.dtype, device: torch.device
) -> tuple[Any, Any, str]:
    """(model, tokenizer, base name) to train: the base, or a finished run's weights.

    An adapter continues training as is (LoRA) or is merged into its base (full); a full model
    becomes the new base."""
    if not init_from:
        lm, tok = load_base(base, dtype, device)
        return lm, tok, base
    kind, where = find_weights(Path(init_from), adapter_first=True)
    if kind == "model":
        lm, tok = load_base(str(where), dtype, device)
        return lm, tok, str(where)
    base = adapter_base(where)
    lm, tok = load_base(base, dtype, device)
    peft = _peft()
    model = peft.PeftModel.from_pretrained(lm, str(where), is_trainable=method == "lora")
    log.info("starting from %s (%s)", where, kind)
    return (model if method == "lora" else model.merge_and_unload()), tok, base


def save_weights(
    model: Any, tokenizer: Any, out: Path, *, base: str, state_dict: dict[str, Any] | None = None
) -> None:
    """Write an adapter (peft model) or a whole model, plus the tokenizer, into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        model.save_pretrained(str(out))
        path = out / "adapter_config.json"
        config = json.loads(path.read_text())
        config["base_model_name_or_path"] = base  # lmm's name for it (packaged, .gguf, ...)
        path.write_text(json.dumps(config, indent=2) + "\n")
    else:
        model.save_pretrained(str(out), state_dict=state_dict)
    tokenizer.save_pretrained(str(out))


def merge(run: Path, out: Path | None = None, dtype: torch.dtype = torch.float32) -> Path:
    """Merge a run's best (else final) adapter into its base and save a plain model folder."""
    kind, where = find_weights(run, adapter_first=True)
    if kind != "adapter":
        raise LmmError(f"{where} is already a whole model (full fine-tuning); nothing to merge")
    out = out or run / "merged"
    lm, _ = load_base(adapter_base(where), dtype, "cpu")
    merged = _peft().PeftModel.from_pretrained(lm, str(where)).merge_and_unload()
    merged.save_pretrained(str(out))
    transformers_module().AutoTokenizer.from_pretrained(str(where)).save_pretrained(str(out))
    log.info("merged %s into %s", where, out)
    return out


def load_trained(path: str | Path, device: str = "auto") -> Any:
    """A trained run (or adapter, or model folder) as a `lmm.lm.models.LoadedModel` for inference:
    an adapter is merged into its base in memory, so generation costs what the base costs."""
    from lmm.lm import models

    device = models.pick_device(device)
    kind, where = find_weights(Path(path))
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    if kind == "model":
        model, tokenizer = load_base(str(where), dtype, device)
    else:
        lm, _ = load_base(adapter_base(where), dtype, device)
        model = _peft().PeftModel.from_pretrained(lm, str(where)).merge_and_unload()
        tokenizer = transformers_module().AutoTokenizer.from_pretrained(str(where))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
    return models.LoadedModel(model.eval(), tokenizer, str(path), device)
