"""Whether a local model can write a brief within its budget here, and what it took last time."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lmm import config, paths

SPEED_FILE = "speed.json"
KEEP = 5  # brief times remembered per model; a new runtime's speed takes over quickly


@dataclass(frozen=True)
class Choice:
    """Whether to generate, and a short reason the user can act on."""

    generate: bool
    why: str


def gpu_available() -> bool:
    """Whether an NVIDIA GPU is usable, judged without importing torch: `LMM_GPU=0|1` decides when
    set; else torch's own answer when it is already imported; else the driver's device list."""
    if (gpu := config.settings().gpu) is not None:
        return gpu
    torch = sys.modules.get("torch")
    if torch is not None:
        return bool(torch.cuda.is_available())
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def _path() -> Path:
    return paths.home() / SPEED_FILE


def load_times() -> dict[str, list[float]]:
    """Model name -> its latest brief times in seconds; empty when none are recorded or the file
    is unreadable (it is a cache: a damaged one is rewritten on the next record)."""
    try:
        data = json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        str(k): [float(s) for s in v.get("seconds", []) if isinstance(s, int | float)]
        for k, v in data.items()
        if isinstance(v, dict)
    }


def brief_seconds(model: str) -> float | None:
    """The median of `model`'s recorded brief times here, or None."""
    times = load_times().get(model)
    return statistics.median(times) if times else None


def record(model: str, seconds: float) -> None:
    """Remember that `model` took `seconds` for one brief; best effort (a read-only home just
    means the next decision has no record)."""
    times = load_times()
    times[model] = [*times.get(model, []), round(seconds, 3)][-KEEP:]
    data = {k: {"seconds": v} for k, v in times.items()}
    path = _path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)
    except OSError:
        pass


def choose(model: str, budget: float) -> Choice:
    """Generate when `model` is an endpoint, a GPU is here, or its recorded briefs took at most
    `budget` seconds on this machine; else answer from the evidence."""
    if model.startswith(("http://", "https://")):
        return Choice(True, f"the endpoint {model} writes it")
    if gpu_available():
        return Choice(True, "a GPU is available")
    took = brief_seconds(model)
    if took is None:
        return Choice(False, f"no GPU here; --generate has {model} write one")
    if took <= budget:
        return Choice(True, f"{model} wrote briefs in {took:.1f} s here (budget {budget:.0f} s)")
    return Choice(
        False,
        f"{model} takes {took:.0f} s per brief here, over the {budget:.0f} s budget; "
        "--generate waits for one",
    )
