"""The QA reader for LoCoMo: a local LM behind lmm.models' `TextGenerator` seam.

A packaged GGUF model ("qwen2.5-coder-1.5b", "smollm2") runs through llama.cpp when
`llama-cpp-python` is installed: quantised weights, its own chat template, and reuse of the
longest common prompt prefix between calls, which makes the 'full context' configuration cost one
prompt evaluation per conversation instead of one per question. Anything else (or no llama.cpp)
goes to `lmm.models.generator`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm.errors import LmmError

log = logging.getLogger(__name__)

DEFAULT_READER = "qwen2.5-coder-1.5b"
DEFAULT_CONTEXT = 4096  # tokens the reader takes: prompt + answer


@dataclass
class LlamaCppLM:
    """A GGUF model in llama.cpp, greedy. Satisfies `lmm.models.TextGenerator`."""

    path: Path
    name: str
    n_ctx: int = DEFAULT_CONTEXT
    threads: int = 0  # 0: half the cores (llama.cpp's spinning threads fight other work badly)
    _llm: Any = field(default=None, repr=False)
    calls: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0

    def _load(self) -> Any:
        if self._llm is None:
            from llama_cpp import Llama

            threads = self.threads or max(1, (os.cpu_count() or 2) // 2)
            self._llm = Llama(
                model_path=str(self.path), n_ctx=self.n_ctx, n_threads=threads, verbose=False
            )
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self._load().tokenize(text.encode(), add_bos=False, special=True))

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str:
        llm = self._load()
        start = time.perf_counter()
        out = llm.create_chat_completion(
            messages=messages, max_tokens=max_new_tokens, temperature=0.0, top_k=1
        )
        self.calls += 1
        self.prompt_tokens += int(out["usage"]["prompt_tokens"])
        self.seconds += time.perf_counter() - start
        return str(out["choices"][0]["message"]["content"] or "")


def load_reader(spec: str = DEFAULT_READER, n_ctx: int = DEFAULT_CONTEXT) -> Any:
    """The reader named by `spec`: a packaged name or a .gguf path through llama.cpp when it is
    installed, else whatever `lmm.models.generator(spec)` gives."""
    from lmm import models

    path: Path | None = None
    if spec in models.PACKAGED:
        path = models.PACKAGED[spec]()
    elif spec.endswith(".gguf"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise LmmError(f"no model file {path}; pass a packaged name or an existing .gguf file")
    if path is not None and path.suffix == ".gguf" and importlib.util.find_spec("llama_cpp"):
        return LlamaCppLM(path, spec, n_ctx)
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
    from lmm.synth import approx_tokens

    return approx_tokens(text)
