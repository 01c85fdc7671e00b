"""Where a run's numbers go: `metrics.jsonl` always, TensorBoard and wandb when installed."""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Metrics:
    """Appends one JSON object per record to `<run>/metrics.jsonl` and mirrors scalars."""

    run: Path
    enabled: bool = True
    tensorboard: bool = True
    wandb: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    _writer: Any = None
    _wandb: Any = None

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        self.run.mkdir(parents=True, exist_ok=True)
        if self.tensorboard and importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run / "tb"))
        if self.wandb:
            if importlib.util.find_spec("wandb") is None:
                log.warning("--wandb given but wandb is not installed; logging locally only")
            else:
                import wandb

                self._wandb = wandb.init(
                    project="lmm", name=self.run.name, config=self.config, dir=str(self.run)
                )

    def write(self, record: dict[str, Any]) -> None:
        """Record `{"step": n, name: value, ...}`."""
        if not self.enabled:
            return
        with (self.run / "metrics.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")
        step = int(record["step"])
        scalars = {k: v for k, v in record.items() if k != "step" and isinstance(v, int | float)}
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log(scalars, step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._wandb is not None:
            self._wandb.finish()


def read(run: Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
