"""The seam every text generator meets: chat messages in, a reply out (`TextGenerator`), and the
running totals a local model keeps of its calls (`GenerationStats`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class TextGenerator(Protocol):
    """Anything that turns chat messages into a reply."""

    @property
    def name(self) -> str: ...

    def generate(self, messages: list[Message], max_new_tokens: int = 256) -> str: ...


@dataclass
class GenerationStats:
    """Running totals over every `generate` call of one loaded model."""

    calls: int = 0
    prompt_tokens: int = 0
    new_tokens: int = 0
    seconds: float = 0.0
