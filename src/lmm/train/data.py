"""JSONL rows -> token examples -> batches."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmm.errors import LmmError
from lmm.train.loss import IGNORE

log = logging.getLogger(__name__)

Example = tuple[list[int], list[int]]  # (input ids, labels)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise LmmError(f"no training file {path}; run `lmm build-data --out {path.parent}` first")
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def stage_files(data: Path, stage: str, kinds: str, split: str) -> list[Path]:
    """The JSONL files a stage reads: cpt_<split>.jsonl, or <kind>_<split>.jsonl per SFT kind."""
    names = ["cpt"] if stage == "cpt" else [k.strip() for k in kinds.split(",") if k.strip()]
    return [data / f"{name}_{split}.jsonl" for name in names]


def data_hash(paths: list[Path]) -> str:
    """sha256 over the files' names and bytes: which data a run saw."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode() + b"\0")
        h.update(p.read_bytes() if p.is_file() else b"<missing>")
    return h.hexdigest()


# ---- CPT: packing


def pack(texts: list[str], tokenizer: Any, seq_len: int) -> list[Example]:
    """Concatenate documents (each followed by EOS) and cut the stream into `seq_len` blocks."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise LmmError(
            "the tokenizer has no EOS token; CPT packing needs one to separate documents"
        )
    stream: list[int] = []
    for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        stream += [*ids, eos]
    blocks = [stream[i : i + seq_len] for i in range(0, len(stream) - seq_len + 1, seq_len)]
    return [(b, list(b)) for b in blocks]


# ---- SFT: chat rendering with answer-only labels


def _render(tokenizer: Any, messages: list[dict[str, str]], prompt: bool) -> str:
    if getattr(tokenizer, "chat_template", None):
        # enable_thinking=False: Qwen3 renders an empty think block, as lmm.lm.models does at
        # inference; other templates ignore the flag.
        return str(
            tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=prompt, enable_thinking=False
            )
        )
    # No template: the plain transcript lmm.lm.loaded.render_prompt falls back to.
    text = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    if prompt:
        return text + "\nassistant:"
    last = messages[-1]
    head = "\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1])
    return (head + "\n" if head else "") + f"assistant: {last['content']}{tokenizer.eos_token}"


def encode_chat(tokenizer: Any, messages: list[dict[str, str]]) -> Example:
    """Token ids and labels of a conversation: labels are the ids inside every assistant
    message (through its end-of-turn token) and -100 elsewhere.

    Each piece is tokenised on its own, so the prompt tokens are exactly those the model sees at
    inference, where the prompt (ending with the generation prompt) is tokenised alone.
    """
    ids: list[int] = []
    labels: list[int] = []
    done = ""
    for k, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:k], prompt=True)
        full = _render(tokenizer, messages[: k + 1], prompt=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise LmmError(
                "this tokenizer's chat template does not render a conversation as a prefix of its "
                "continuation, so answer tokens cannot be located; use another base model"
            )
        ask = tokenizer(prompt[len(done) :], add_special_tokens=False)["input_ids"]
        answer = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
        ids += ask + answer
        labels += [IGNORE] * len(ask) + answer
        done = full
    return ids, labels


def sft_examples(rows: list[dict[str, Any]], tokenizer: Any, seq_len: int) -> list[Example]:
    """Encoded SFT rows; rows longer than `seq_len` or without an answer are dropped (logged)."""
    out = []
    too_long = 0
    for row in rows:
        msgs = row["messages"] if "messages" in row else chat_of(row)
        ids, labels = encode_chat(tokenizer, msgs)
        if len(ids) > seq_len:
            too_long += 1
        elif any(x != IGNORE for x in labels):
            out.append((ids, labels))
    if too_long:
        log.warning(
            "%d of %d rows are longer than seq_len %d and were dropped; raise --seq-len or "
            "lower `lmm build-data --max-context-chars`",
            too_long,
            len(rows),
            seq_len,
        )
    return out


def chat_of(row: dict[str, Any]) -> list[dict[str, str]]:
    """TRL's prompt-completion shape (conversational or plain text) as messages."""
    prompt, completion = row["prompt"], row["completion"]
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    if isinstance(completion, str):
        completion = [{"role": "assistant", "content": completion}]
    return [*prompt, *completion]


def examples(cfg: Any, tokenizer: Any, split: str) -> list[Example]:
    """The tokenised examples of `cfg.stage` for `split` (train or val)."""
    rows: list[dict[str, Any]] = []
    for path in stage_files(Path(cfg.data), cfg.stage, cfg.sft_files, split):
        if split == "val" and not path.is_file():
            continue
        rows += read_jsonl(path)
    if cfg.stage == "cpt":
        return pack([r["text"] for r in rows], tokenizer, cfg.seq_len)
    return sft_examples(rows, tokenizer, cfg.seq_len)


# ---- batches


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, T]
    attention_mask: torch.Tensor | None  # [B, T]; None when nothing is padded
    labels: torch.Tensor  # [B, T], -100 where no loss
    tokens: int  # real (unpadded) tokens
    targets: int  # positions carrying a loss

    def to(self, device: torch.device) -> Batch:
        mask = self.attention_mask
        return Batch(
            self.input_ids.to(device, non_blocking=True),
            None if mask is None else mask.to(device, non_blocking=True),
            self.labels.to(device, non_blocking=True),
            self.tokens,
            self.targets,
        )


def collate(items: list[Example], pad_id: int, multiple: int = 8) -> Batch:
    """Right-pad to the longest item (rounded up to `multiple` when padding is needed)."""
    longest = max(len(ids) for ids, _ in items)
    width = longest
    if any(len(ids) != longest for ids, _ in items):
        width = -(-longest // multiple) * multiple
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for i, (x, y) in enumerate(items):
        ids[i, : len(x)] = torch.tensor(x)
        labels[i, : len(y)] = torch.tensor(y)
        mask[i, : len(x)] = 1
    padded = bool((mask == 0).any())
    tokens = int(mask.sum())
    return Batch(
        ids, mask if padded else None, labels, tokens, int((labels[:, 1:] != IGNORE).sum())
    )


def batches(
    items: list[Example],
    batch_size: int,
    *,
    rank: int,
    world: int,
    seed: int,
    epoch: int,
    pad_id: int,
    skip: int = 0,
    shuffle: bool = True,
) -> Iterator[Batch]:
    """This rank's micro-batches of one epoch, after skipping the first `skip` (resume)."""
    from torch.utils.data import DistributedSampler

    sampler: Any = DistributedSampler(
        range(len(items)),  # type: ignore[arg-type]
        num_replicas=world,
        rank=rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=True,
    )
    sampler.set_epoch(epoch)
    order = list(sampler)
    groups = [order[i : i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
    for group in itertools.islice(groups, skip, None):
        yield collate([items[i] for i in group], pad_id)


def batches_per_epoch(n_items: int, batch_size: int, world: int) -> int:
    return (n_items // world) // batch_size
