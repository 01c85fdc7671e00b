"""Base models in, trained weights out: the model to train (a base, or a finished run's
weights), LoRA added, weights saved, an adapter merged into its base. Finding and loading a
trained run for inference is `lmm.lm.trained`'s, which describes the run folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from lmm.errors import LmmError
from lmm.lm.loaded import transformers_module
from lmm.lm.trained import adapter_base, find_weights, load_base, peft_module

log = logging.getLogger(__name__)


def add_lora(lm: Any, r: int, alpha: int, dropout: float, targets: str) -> Any:
    """`lm` with fresh LoRA adapters (a peft model whose base weights are frozen)."""
    peft = peft_module()
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
    peft = peft_module()
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
    merged = peft_module().PeftModel.from_pretrained(lm, str(where)).merge_and_unload()
    merged.save_pretrained(str(out))
    transformers_module().AutoTokenizer.from_pretrained(str(where)).save_pretrained(str(out))
    log.info("merged %s into %s", where, out)
    return out
