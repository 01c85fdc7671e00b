"""The training configuration: one frozen dataclass, resolved per stage (cpt or sft)."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm.errors import LmmError

STAGES = ("cpt", "sft")
METHODS = ("lora", "full")
PRECISIONS = ("auto", "bf16", "bf16-mixed", "fp32")


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """One stage of training. Every field is a `lmm train` flag (`lora_r` -> `--lora-r`)."""

    stage: str = _f("sft", "cpt: next-token loss on session documents; sft: on answers only")
    base: str = _f(
        "Qwen/Qwen3-1.7B",
        "base model: hub id, local folder, .gguf file or packaged name (smollm2, ...)",
    )
    data: str = _f("", "folder written by `lmm build-data` (default: $LMM_HOME/train-data)")
    out: str = _f("", "run folder (default: $LMM_HOME/runs/<stage>-<date>)")
    init_from: str = _f("", "start from a finished run's weights (a run, adapter or model dir)")
    resume: str = _f("", "continue an interrupted run from its folder (optimizer, step, RNG)")
    method: str = _f("lora", "lora (adapter on a frozen base) or full (every weight)")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA scale numerator (scale = alpha / r)")
    lora_dropout: float = _f(0.0, "dropout on LoRA inputs (0 is fastest)")
    lora_targets: str = _f("all-linear", "modules given adapters: all-linear or a,b,c names")
    seq_len: int = _f(
        2048, "tokens per sequence: CPT block size, SFT maximum (longer rows dropped)"
    )
    batch_size: int = _f(1, "sequences per micro-batch per device")
    grad_accum: int = _f(8, "micro-batches per optimizer step")
    lr: float = _f(0.0, "peak learning rate; 0 picks 2e-4 for LoRA, 1e-5 for full")
    min_lr_ratio: float = _f(0.1, "cosine decay ends at lr x this")
    warmup_steps: int = _f(10, "linear warm-up steps")
    weight_decay: float = _f(0.0, "AdamW weight decay (matrices only)")
    grad_clip: float = _f(1.0, "clip the gradient norm to this (0: off)")
    max_steps: int = _f(0, "optimizer steps; 0 runs --epochs over the data")
    epochs: float = _f(1.0, "passes over the training rows when --max-steps is 0")
    eval_every: int = _f(50, "validation loss every N steps (and at the end); 0: end only")
    eval_batches: int = _f(50, "validation micro-batches per evaluation (0: all)")
    save_every: int = _f(100, "resumable checkpoint every N steps (and at the end); 0: end only")
    log_every: int = _f(1, "a log line every N steps (each one waits for the device)")
    loss_chunk: int = _f(1024, "tokens per lm_head chunk of the loss (bounds logits memory)")
    grad_checkpointing: bool = _f(True, "recompute activations in backward (less memory)")
    compile: bool = _f(False, "torch.compile each decoder layer (GPU; first steps are slow)")
    precision: str = _f(
        "auto", "auto (CPU fp32; GPU: bf16 for LoRA, bf16-mixed for full), bf16, bf16-mixed, fp32"
    )
    device: str = _f("auto", "auto, cpu or cuda")
    fsdp: bool = _f(False, "shard full fine-tuning over the GPUs of a torchrun launch (FSDP2)")
    seed: int = _f(0, "seed of weights init, data order and dropout")
    sft_files: str = _f("sft,synthesis", "row kinds SFT trains on (files <kind>_train.jsonl)")
    merge: bool = _f(False, "also write <run>/merged: the best adapter merged into the base")
    tensorboard: bool = _f(True, "write TensorBoard events to <run>/tb when it is installed")
    wandb: bool = _f(False, "log to Weights & Biases when wandb is installed")

    def __post_init__(self) -> None:
        checks = [
            (self.stage in STAGES, "--stage must be cpt or sft"),
            (self.method in METHODS, "--method must be lora or full"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (self.device in ("auto", "cpu", "cuda"), "--device must be auto, cpu or cuda"),
            (self.seq_len >= 16, "--seq-len must be at least 16"),
            (self.batch_size >= 1 and self.grad_accum >= 1, "--batch-size, --grad-accum >= 1"),
            (self.lora_r >= 1 and self.lora_alpha >= 1, "--lora-r and --lora-alpha must be >= 1"),
            (0.0 <= self.lora_dropout < 1.0, "--lora-dropout must be in [0, 1)"),
            (
                self.lr >= 0 and 0.0 <= self.min_lr_ratio <= 1.0,
                "--lr >= 0, --min-lr-ratio in [0,1]",
            ),
            (self.max_steps >= 0 and self.epochs > 0, "--max-steps >= 0 and --epochs > 0"),
            (self.loss_chunk >= 1, "--loss-chunk must be >= 1"),
            (self.log_every >= 1, "--log-every must be >= 1"),
            (
                not (self.fsdp and self.method == "lora"),
                "--fsdp is for --method full; LoRA uses DDP under torchrun (drop --fsdp)",
            ),
            (not (self.init_from and self.resume), "give --from-checkpoint or --resume, not both"),
        ]
        for ok, message in checks:
            if not ok:
                raise LmmError(message)

    @property
    def peak_lr(self) -> float:
        return self.lr or (2e-4 if self.method == "lora" else 1e-5)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML config file as a dict; fails with the file and line on a syntax error."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise LmmError(f"no config file at {path}; see configs/*.toml for examples") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LmmError(f"{path} is not valid TOML: {exc}") from exc
    for key, value in data.items():
        if key in STAGES and isinstance(value, dict):
            unknown = set(value) - set(FIELDS)
        else:
            unknown = {key} - set(FIELDS)
        if unknown:
            raise LmmError(
                f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(FIELDS)}"
            )
    return data


def resolve(
    stage: str, file: dict[str, Any] | None = None, flags: dict[str, Any] | None = None
) -> TrainConfig:
    """The config of `stage`: defaults < `file` (top level, then its [stage] table) < `flags`
    (None values are flags not given)."""
    file = file or {}
    values = {k: v for k, v in file.items() if k not in STAGES}
    values.update(file.get(stage, {}))
    values.update({k: v for k, v in (flags or {}).items() if v is not None and k in FIELDS})
    values["stage"] = stage
    for key, value in values.items():
        want = type(FIELDS[key].default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            values[key] = float(value)
        elif not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise LmmError(f"{key} must be a {want.__name__}, got {value!r}")
    return TrainConfig(**values)
