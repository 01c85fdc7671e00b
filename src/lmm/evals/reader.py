"""The QA reader for LoCoMo: a local LM behind lmm.lm.models' `TextGenerator` seam."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from lmm.errors import LmmError

log = logging.getLogger(__name__)

DEFAULT_READER = "qwen2.5-coder-1.5b"
DEFAULT_CONTEXT = 4096  # tokens the reader takes: prompt + answer (lmm.lm.llamacpp.LlamaCppLM)


def load_reader(spec: str = DEFAULT_READER, n_ctx: int = DEFAULT_CONTEXT) -> Any:
    """The reader named by `spec`: a packaged name or a .gguf path through llama.cpp when it is
    installed, else whatever `lmm.lm.models.generator(spec)` gives."""
    from lmm.lm import models, packaged

    path: Path | None = None
    if spec in packaged.PACKAGED:
        path = packaged.PACKAGED[spec]()
    elif spec.endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise LmmError(f"no model file {path}; pass a packaged name or an existing .gguf file")
    if path is not None and path.suffix == ".gguf" and importlib.util.find_spec("llama_cpp"):
        from lmm.lm.llamacpp import LlamaCppLM

        return LlamaCppLM(path, spec, n_ctx=n_ctx)
    if path is not None:
        log.warning(
            "llama-cpp-python is not installed: %s runs through transformers (slower); "
            "pip install llama-cpp-python",
            spec,
        )
    return models.generator(spec)


def count_tokens(reader: Any, text: str) -> int:
    """Tokens of `text` for `reader` when it can count them, else the lmm estimate."""
    if hasattr(reader, "count_tokens"):
        return int(reader.count_tokens(text))
    tok = getattr(reader, "tokenizer", None)
    if tok is not None:
        return len(tok(text, add_special_tokens=False)["input_ids"])
    from lmm.retrieve.synth import approx_tokens

    return approx_tokens(text)
