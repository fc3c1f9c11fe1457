"""`train wsp`: weakly supervised multi-label pretraining on the hashtag labels of the shards.

    train wsp --shards DIR/shards --out runs/wsp-micro --init runs/mae-micro \
        --steps 600 --batch-size 64          # model and image size default to the MAE run's

The encoder starts from an MAE checkpoint (`--init`, a file or a run folder: its newest
checkpoint) with a strict key check: every encoder key must be there, the `decoder.*` keys
are dropped, the position embedding is resampled if the patch grid differs. The linear head
over the manifest's classes is fresh. Without `--init` the encoder is random (the
"WSP from scratch" baseline). Loss: softmax cross-entropy against the multi-hot target
divided by its positives (train.wsp). `--balance` resamples the stream by the samples'
class-balancing weights.

Writes `OUT/`: `checkpoint-NNNNNN.safetensors` (kind "wsp", timm keys incl. `head.*`,
metadata `vocab_hash` of the shards), `log.jsonl`, `meta.json`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from curation.errors import UsageError
from curation.layout import write_meta
from curation.options import parse_options
from train.models import MODEL_NAMES, parse_name

DEFAULT_MODEL = "vit_tiny_patch16"


@dataclass(frozen=True)
class WspOptions:
    """Weakly supervised pretraining on hashtag labels, from an MAE encoder or from scratch."""

    shards: str = field(metadata={"help": "folder with manifest.json (`curate shard` output)"})
    out: str = field(metadata={"help": "run folder to write"})
    init: str | None = field(
        default=None, metadata={"help": "MAE checkpoint (file or run folder) for the encoder"}
    )
    model: str | None = field(
        default=None,
        metadata={"help": f"default: --init's, else {DEFAULT_MODEL}; {', '.join(MODEL_NAMES)}"},
    )
    image_size: int | None = field(
        default=None, metadata={"help": "pixels; default: --init's, else the shards' size"}
    )
    steps: int = 1000
    batch_size: int = 64
    base_lr: float = field(default=1e-3, metadata={"help": "peak lr = base_lr * batch / 256"})
    weight_decay: float = 0.05
    warmup_steps: int = 100
    label_smoothing: float = 0.0
    drop_path: float = 0.0
    min_scale: float = field(default=0.08, metadata={"help": "random-resized-crop min area"})
    balance: bool = field(default=True, metadata={"help": "resample by class-balancing weights"})
    clip_grad: float = field(default=1.0, metadata={"help": "max gradient norm; 0: off"})
    seed: int = 0
    log_every: int = 10
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps; 0: at end"})
    num_workers: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.model is not None:
            parse_name(self.model)
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1:
            raise UsageError("--steps, --batch-size and --log-every must be at least 1")
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.drop_path < 1.0:
            raise UsageError("--label-smoothing and --drop-path must lie in [0, 1)")
        if self.warmup_steps < 0 or self.num_workers < 0:
            raise UsageError("--warmup-steps and --num-workers must be >= 0")


def resolve(opts: WspOptions, stored_image_size: int) -> WspOptions:
    """Fill `model` and `image_size` from `--init`'s metadata or the defaults."""
    from train.checkpoint import read_info, resolve_checkpoint
    from train.models import resolve_image_size

    model, image_size, init = opts.model, opts.image_size, opts.init
    if init is not None:
        info = read_info(resolve_checkpoint(init))
        init = str(info.path)
        if model is not None and model != info.model:
            raise UsageError(f"--model {model} differs from --init's model {info.model}")
        model = info.model
        image_size = image_size or info.image_size
    model = model or DEFAULT_MODEL
    image_size = resolve_image_size(model, image_size, stored_image_size)
    return dataclasses.replace(opts, model=model, image_size=image_size, init=init)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(WspOptions, argv, prog="train wsp")
    import torch

    from shards.loader import make_loader
    from shards.manifest import read_manifest
    from train.checkpoint import checkpoint_name, save_checkpoint
    from train.loop import LoopPlan, pick_device, prepare_run_dir, run_steps
    from train.models import count_parameters
    from train.optim import CosineSchedule, create_optimizer, peak_lr
    from train.wsp import create_wsp_model, multilabel_softmax_loss

    started = time.time()
    manifest = read_manifest(opts.shards)
    if manifest.num_classes < 2:
        raise UsageError(f"{manifest.folder}: WSP needs at least 2 classes in the manifest")
    opts = resolve(opts, manifest.image_size)
    assert opts.model is not None and opts.image_size is not None  # filled by resolve
    batches = make_loader(
        manifest, "train", batch_size=opts.batch_size, image_size=opts.image_size, train=True,
        seed=opts.seed, num_workers=opts.num_workers, balance=opts.balance,
        min_scale=opts.min_scale,
    )  # fmt: skip
    run_dir = prepare_run_dir(opts.out, opts.overwrite)

    torch.manual_seed(opts.seed)
    device = pick_device()
    model, fresh = create_wsp_model(
        opts.model, opts.image_size, manifest.num_classes, init=opts.init,
        drop_path=opts.drop_path,
    )  # fmt: skip
    model = model.to(device)
    lr = peak_lr(opts.base_lr, opts.batch_size)  # e.g. 1e-3 * 64 / 256 = 2.5e-4
    optimizer = create_optimizer(model, lr=lr, weight_decay=opts.weight_decay)
    schedule = CosineSchedule(peak=lr, total_steps=opts.steps, warmup_steps=opts.warmup_steps)

    def step_loss(batch: tuple[Any, ...]) -> Any:
        images, targets, _ = batch  # weights already acted through --balance resampling
        return multilabel_softmax_loss(model(images), targets, opts.label_smoothing).mean()

    def save(step: int) -> None:
        save_checkpoint(
            run_dir / checkpoint_name(step), model.state_dict(), kind="wsp", model=opts.model,
            image_size=opts.image_size, num_classes=manifest.num_classes, config=opts,
            vocab_hash=manifest.vocab_hash,
        )  # fmt: skip

    plan = LoopPlan(
        steps=opts.steps, batch_size=opts.batch_size, log_every=opts.log_every,
        save_every=opts.save_every, clip_grad=opts.clip_grad,
    )  # fmt: skip
    summary = run_steps(
        batches, step_loss, model, optimizer, schedule, plan, run_dir, save, device=device,
        desc="wsp",
    )  # fmt: skip
    counts = {
        **summary,
        "parameters": count_parameters(model),
        "initialised_from": opts.init,
        "fresh_keys": fresh if opts.init else "all",
        "num_classes": manifest.num_classes,
        "train_samples": manifest.count("train"),
        "epochs": round(opts.steps * opts.batch_size / max(1, manifest.count("train")), 3),
        "device": str(device),
    }
    write_meta(run_dir, config=opts, counts=counts, started=started)
    print(
        f"wsp: {opts.steps} steps, loss {summary['first_loss']:.4f} -> "
        f"{summary['final_loss']:.4f}, {summary['images_per_s']:.1f} images/s; wrote {run_dir}"
    )
    return 0
