"""Validation loss and perplexity of a model over held-out rows; loss curves of training runs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from lmm.evals import report

log = logging.getLogger(__name__)

IGNORE = -100


def encode_row(
    tokenizer: Any, row: dict[str, Any], seq_len: int
) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) of one row; None when a chat row does not fit `seq_len`."""
    from lmm.train.data import chat_of, encode_chat

    if "text" in row:
        ids = tokenizer(row["text"], add_special_tokens=False)["input_ids"][:seq_len]
        return ids, list(ids)
    messages = row["messages"] if "messages" in row else chat_of(row)
    ids, labels = encode_chat(tokenizer, messages)
    return (ids, labels) if len(ids) <= seq_len else None


def validation_loss(lm: Any, rows: list[dict[str, Any]], *, seq_len: int = 1024) -> dict[str, Any]:
    """Token-weighted mean loss and perplexity of `lm` (a lmm.lm.loaded.LoadedModel) on `rows`."""
    import torch
    import torch.nn.functional as F

    total, tokens, skipped = 0.0, 0, 0
    with torch.inference_mode():
        for row in rows:
            enc = encode_row(lm.tokenizer, row, seq_len)
            if enc is None:
                skipped += 1
                continue
            ids, labels = enc
            x = torch.tensor([ids], device=lm.device)
            y = torch.tensor([labels[1:]], device=lm.device)  # position t predicts token t+1
            if int((y != IGNORE).sum()) == 0:
                continue
            logits = lm.model(input_ids=x).logits[:, :-1].float()
            loss = F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                y.reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
            total += float(loss)
            tokens += int((y != IGNORE).sum())
    mean = total / tokens if tokens else None
    return {
        "val_loss": mean,
        "perplexity": math.exp(mean) if mean is not None else None,
        "target_tokens": tokens,
        "rows": len(rows) - skipped,
        "rows_skipped": skipped,
    }


def read_rows(paths: list[Path], limit: int | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in paths:
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def loss_curves(metrics_files: list[Path]) -> dict[str, list[tuple[int, float]]]:
    """Training ('loss') and validation ('val_loss') curves of runs' metrics.jsonl files."""
    curves: dict[str, list[tuple[int, float]]] = {}
    for path in metrics_files:
        path = path / "metrics.jsonl" if path.is_dir() else path
        name = (
            "/".join(path.parts[-3:-1]) if path.parent.name in ("cpt", "sft") else path.parent.name
        )
        for line in path.read_text().splitlines():
            rec = json.loads(line) if line.strip() else {}
            for key in ("loss", "val_loss"):
                if isinstance(rec.get(key), int | float):
                    curves.setdefault(f"{name} {key}", []).append((int(rec["step"]), rec[key]))
    return curves


def run(
    out: Path,
    model: str,
    rows: list[Path],
    *,
    limit: int | None = None,
    seq_len: int = 1024,
    metrics: list[str] | None = None,
) -> dict[str, Any]:
    """`lmm eval loss`: the model's loss on the rows, and the runs' loss curves as a plot."""
    from lmm.evals.run import load_model

    lm = load_model(model)
    result = validation_loss(lm, read_rows(rows, limit), seq_len=seq_len)
    results = report.new_results(
        "loss", {"model": model, "rows": [str(p) for p in rows], "limit": limit, "seq_len": seq_len}
    )
    results["configs"] = {model: result}
    results["columns"] = ["val_loss", "perplexity", "target_tokens", "rows", "rows_skipped"]
    report.write(results, out)
    curves = loss_curves([Path(p) for p in metrics or []])
    if curves:
        report.plot_losses(curves, out / "loss_curves.png", "training and validation loss")
    return results
