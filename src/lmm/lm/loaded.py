"""A transformers causal LM in memory (`LoadedModel`) and greedy generation with it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmm.errors import MissingExtra
from lmm.lm.base import GenerationStats, Message


@dataclass
class LoadedModel:
    """A causal LM and its tokenizer in memory. Satisfies `TextGenerator`."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    name: str
    device: str  # cpu | cuda
    load_seconds: float = 0.0
    stats: GenerationStats = field(default_factory=GenerationStats)

    def generate(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        return generate(self, messages, max_new_tokens=max_new_tokens)


def transformers_module() -> Any:
    """The transformers package (quiet), or MissingExtra saying which extra to install."""
    try:
        import transformers
    except ImportError as exc:
        raise MissingExtra("llm", "transformers") from exc
    transformers.logging.set_verbosity_error()
    return transformers


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def render_prompt(tokenizer: Any, messages: list[Message]) -> str:
    """The model's own chat template when it has one, else a plain `role: text` transcript.

    A final assistant message is a prefill: the reply continues it (e.g. `{"category": "` to
    hold a small model to JSON); the returned text does not repeat it.
    """
    prefill = bool(messages) and messages[-1]["role"] == "assistant"
    if getattr(tokenizer, "chat_template", None):
        # enable_thinking is read by Qwen3's template (no <think> block) and ignored by others.
        return str(
            tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=not prefill,
                continue_final_message=prefill,
                enable_thinking=False,
            )
        )
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join(lines if prefill else [*lines, "assistant:"])


def generate(
    lm: LoadedModel,
    messages: list[Message] | str,
    max_new_tokens: int = 256,
    temperature: float = 0.0,
    stop: Sequence[str] = (),
) -> str:
    """Reply to `messages` (or a bare user prompt); greedy, so deterministic, at temperature 0."""
    import torch

    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    prompt = render_prompt(lm.tokenizer, messages)
    enc = lm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(lm.device)
    start = time.perf_counter()
    if str(lm.device).startswith("cuda"):  # the whole decode step as one CUDA graph
        from lmm.lm import fastgen

        ids = fastgen.fast_generate(
            lm.model, lm.tokenizer, enc["input_ids"], max_new_tokens, temperature
        )
        new = torch.tensor(ids, dtype=torch.long)  # stop strings: cut below
    else:
        kwargs: dict[str, Any] = {"do_sample": temperature > 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
        else:  # clear sampling defaults from generation_config, or transformers warns about them
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=lm.tokenizer)
        with torch.inference_mode():
            out = lm.model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                pad_token_id=lm.tokenizer.pad_token_id,
                **kwargs,
            )
        new = out[0, enc["input_ids"].shape[1] :]
    lm.stats.calls += 1
    lm.stats.prompt_tokens += int(enc["input_ids"].shape[1])
    lm.stats.new_tokens += int(new.shape[0])
    lm.stats.seconds += time.perf_counter() - start
    text = str(lm.tokenizer.decode(new, skip_special_tokens=True))
    return cut_at_stop(text, stop)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the first stop string (which is dropped)."""
    cuts = [i for s in stop if s and (i := text.find(s)) >= 0]
    return text[: min(cuts)] if cuts else text
