"""The options `train mae` and `train wsp` share, and the arithmetic that turns them into steps.

Batch sizes are global: `--batch-size 4096` on 8 GPUs with `--accum-steps 2` gives each rank
micro-batches of 4096 / (8 * 2) = 256, and the lr scales with 4096 (lr = base_lr * 4096 /
256). The run's length is one of

    --steps N       optimizer steps
    --epochs E      E * (train samples) / batch, rounded up: `--epochs 0.1` is a tenth of an
                    epoch of MAE, as in MAWS
    --samples S     S / batch, rounded up

(default: 1000 steps). Every rank runs exactly that many steps: the loader's streams are
endless (resampled shards), so uneven shards never leave a rank short.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from curation.errors import UsageError
from train.engine import STRATEGIES

DEFAULT_STEPS = 1000


@dataclass(frozen=True)
class TrainOptions:
    """Options common to every training command (subclasses add their own)."""

    shards: str = field(metadata={"help": "folder with manifest.json (`curate shard` output)"})
    out: str = field(metadata={"help": "run folder to write"})
    image_size: int | None = field(
        default=None, metadata={"help": "pixels; default: the shards' size in whole patches"}
    )
    steps: int | None = field(
        default=None, metadata={"help": f"optimizer steps (default {DEFAULT_STEPS})"}
    )
    epochs: float | None = field(
        default=None, metadata={"help": "length in passes over the train split, e.g. 0.1"}
    )
    samples: int | None = field(default=None, metadata={"help": "length in samples"})
    batch_size: int = field(default=64, metadata={"help": "global batch (all ranks, all accum)"})
    accum_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    base_lr: float = field(default=1e-3, metadata={"help": "peak lr = base_lr * batch / 256"})
    min_lr: float = 0.0
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_scale: float = field(default=0.2, metadata={"help": "random-resized-crop min area"})
    clip_grad: float = field(default=0.0, metadata={"help": "max gradient norm; 0: off"})
    seed: int = 0
    log_every: int = 10
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps; 0: at end"})
    keep_last: int = field(default=2, metadata={"help": "checkpoints kept; 0: all"})
    resume: str | None = field(
        default=None,
        metadata={"help": "'auto' (newest complete checkpoint of --out, if any) or a file"},
    )
    num_workers: int = 0
    threads: int = field(
        default=0, metadata={"help": "torch CPU threads per process; 0: leave torch's setting"}
    )
    strategy: str = field(
        default="ddp", metadata={"choices": STRATEGIES, "help": "under torchrun: ddp or fsdp"}
    )
    activation_checkpointing: bool = False
    compile: bool = field(default=False, metadata={"help": "torch.compile the model"})
    bf16_residual: bool = field(
        default=False,
        metadata={"help": "GPU: keep the encoder's residual stream in bf16 (train.fast_vit)"},
    )
    split_qkv: bool = field(
        default=False,
        metadata={"help": "q, k, v from three matmuls, no permute copies (train.fast_vit)"},
    )
    tensorboard: bool = field(
        default=False,
        metadata={"help": "also log to OUT/tensorboard (needs the tensorboard package)"},
    )
    overwrite: bool = False

    def __post_init__(self) -> None:
        lengths = [x for x in (self.steps, self.epochs, self.samples) if x is not None]
        if len(lengths) > 1:
            raise UsageError("give the length once: --steps, --epochs or --samples")
        if any(x <= 0 for x in lengths):
            raise UsageError("--steps, --epochs and --samples must be positive")
        if min(self.batch_size, self.accum_steps, self.log_every) < 1:
            raise UsageError("--batch-size, --accum-steps and --log-every must be at least 1")
        if min(self.warmup_steps, self.num_workers, self.keep_last, self.save_every) < 0:
            raise UsageError(
                "--warmup-steps, --num-workers, --keep-last, --save-every must be >= 0"
            )
        if self.threads < 0 or not 0.0 < self.min_scale <= 1.0:
            raise UsageError("--threads must be >= 0 and --min-scale in (0, 1]")


def total_steps(opts: TrainOptions, train_samples: int) -> int:
    """Optimizer steps of the run: --steps, or --epochs / --samples over the global batch."""
    if opts.steps is not None:
        return opts.steps
    if opts.epochs is not None:
        return max(1, math.ceil(opts.epochs * train_samples / opts.batch_size))
    if opts.samples is not None:
        return max(1, math.ceil(opts.samples / opts.batch_size))
    return DEFAULT_STEPS


def micro_batch_size(batch_size: int, world_size: int, accum_steps: int) -> int:
    """Per-rank, per-micro-step batch; UsageError unless it divides exactly."""
    parts = world_size * accum_steps
    if batch_size % parts:
        raise UsageError(
            f"--batch-size {batch_size} does not divide by {world_size} ranks x "
            f"{accum_steps} accumulation steps: use a multiple of {parts}"
        )
    return batch_size // parts
