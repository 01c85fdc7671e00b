"""GGUF models through llama.cpp (the `cpu` extra: llama-cpp-python), the fast CPU runtime."""

from __future__ import annotations

import importlib.util
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm import config
from lmm.errors import MissingExtra
from lmm.lm.base import GenerationStats

DEFAULT_CONTEXT = 4096  # tokens: prompt + reply


def available() -> bool:
    """Whether llama-cpp-python is installed."""
    return importlib.util.find_spec("llama_cpp") is not None


def default_threads() -> int:
    """`$LMM_THREADS`, else all cores but one (at least one): llama.cpp's spinning threads fight
    other work on a loaded machine, and decode is bound by memory bandwidth, not cores."""
    if threads := int(config.settings().threads or 0):
        return threads
    return max(1, (os.cpu_count() or 2) - 1)


@dataclass
class LlamaCppLM:
    """A GGUF model in llama.cpp, greedy; `lora` a GGUF LoRA adapter applied on load.
    Satisfies `lmm.lm.base.TextGenerator`."""

    path: Path
    name: str
    lora: Path | None = None
    n_ctx: int = DEFAULT_CONTEXT
    threads: int = 0  # 0: default_threads()
    stats: GenerationStats = field(default_factory=GenerationStats)
    _llm: Any = field(default=None, repr=False)

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def model(self) -> Any:
        """The llama_cpp.Llama, loaded on first use."""
        if self._llm is None:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise MissingExtra("cpu", "llama_cpp") from exc
            self._llm = Llama(
                model_path=str(self.path),
                lora_path=str(self.lora) if self.lora else None,
                n_ctx=self.n_ctx,
                n_threads=self.threads or default_threads(),
                verbose=False,
            )
        return self._llm

    def count_tokens(self, text: str) -> int:
        return len(self.model().tokenize(text.encode(), add_bos=False, special=True))

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 256) -> str:
        llm = self.model()
        start = time.perf_counter()
        out = llm.create_chat_completion(
            messages=messages, max_tokens=max_new_tokens, temperature=0.0, top_k=1
        )
        self.stats.calls += 1
        self.stats.prompt_tokens += int(out["usage"]["prompt_tokens"])
        self.stats.new_tokens += int(out["usage"]["completion_tokens"])
        self.stats.seconds += time.perf_counter() - start
        return str(out["choices"][0]["message"]["content"] or "")


_LOADED: dict[
    tuple[str, str | None], LlamaCppLM
] = {}  # (model, lora) -> model; a server stays warm


def load(path: Path, name: str, lora: Path | None = None) -> LlamaCppLM:
    """The llama.cpp model for `path` (+ `lora`), once per process."""
    key = (str(path), str(lora) if lora else None)
    if key not in _LOADED:
        _LOADED[key] = LlamaCppLM(path, name, lora)
    return _LOADED[key]
