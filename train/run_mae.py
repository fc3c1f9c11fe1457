"""`train mae`: MAE pre-pretraining of a ViT encoder on the train shards (labels unused).

    train mae --shards DIR/shards --out runs/mae-micro --model vit_micro_patch4 \
        --image-size 32 --steps 600 --batch-size 64 --decoder-depth 2 --decoder-dim 128 \
        --decoder-heads 4      # CPU demo size; see the lead's README for measured times

Writes `OUT/`: `checkpoint-NNNNNN.safetensors` (kind "mae": encoder keys as timm names
them + `decoder.*`), `log.jsonl` (see train.loop), `reconstructions.png` (per row: original
| masked input | reconstruction, from the val split when it has samples) and `meta.json`.
Peak lr = base_lr * batch_size / 256, AdamW betas (0.9, 0.95) as in MAE.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.layout import write_meta
from curation.options import parse_options
from train.models import MODEL_NAMES, parse_name

PREVIEW_SAMPLES = 8


@dataclass(frozen=True)
class MaeOptions:
    """MAE pre-pretraining on the train shards (no labels)."""

    shards: str = field(metadata={"help": "folder with manifest.json (`curate shard` output)"})
    out: str = field(metadata={"help": "run folder to write"})
    model: str = field(default="vit_tiny_patch16", metadata={"help": ", ".join(MODEL_NAMES)})
    image_size: int | None = field(
        default=None, metadata={"help": "pixels; default: the shards' size in whole patches"}
    )
    steps: int = 1000
    batch_size: int = 64
    base_lr: float = field(default=1.5e-4, metadata={"help": "peak lr = base_lr * batch / 256"})
    weight_decay: float = 0.05
    warmup_steps: int = 100
    mask_ratio: float = 0.75
    decoder_depth: int = 8
    decoder_dim: int = 512
    decoder_heads: int = 16
    min_scale: float = field(default=0.2, metadata={"help": "random-resized-crop min area"})
    clip_grad: float = field(default=0.0, metadata={"help": "max gradient norm; 0: off"})
    seed: int = 0
    log_every: int = 10
    save_every: int = field(default=0, metadata={"help": "checkpoint every N steps; 0: at end"})
    num_workers: int = 0
    overwrite: bool = False

    def __post_init__(self) -> None:
        parse_name(self.model)
        if self.steps < 1 or self.batch_size < 1 or self.log_every < 1:
            raise UsageError("--steps, --batch-size and --log-every must be at least 1")
        if not 0.0 < self.mask_ratio < 1.0:
            raise UsageError(f"--mask-ratio must lie in (0, 1), got {self.mask_ratio}")
        if self.decoder_dim % self.decoder_heads or self.decoder_dim % 4:
            raise UsageError("--decoder-dim must be a multiple of --decoder-heads and of 4")
        if self.decoder_depth < 1 or self.warmup_steps < 0 or self.num_workers < 0:
            raise UsageError("--decoder-depth >= 1, --warmup-steps >= 0, --num-workers >= 0")


def build_mae(opts: MaeOptions, image_size: int) -> Any:
    from train.mae import MaskedAutoencoder
    from train.models import create_encoder

    return MaskedAutoencoder(
        create_encoder(opts.model, image_size),
        decoder_dim=opts.decoder_dim,
        decoder_depth=opts.decoder_depth,
        decoder_heads=opts.decoder_heads,
    )


def write_reconstructions(mae: Any, images: Any, mask_ratio: float, path: Path) -> None:
    """PNG grid, one row per image: original | masked input (grey) | reconstruction.

    images: [N, 3, S, S] normalised, on the model's device. The reconstruction shows the
    visible patches as they were and the predicted pixels in the masked ones, as MAE does.
    """
    import os

    import torch
    from PIL import Image

    from shards.loader import IMAGE_MEAN, IMAGE_STD

    mae.eval()
    with torch.no_grad():
        _, pred, mask = mae(images, mask_ratio)
        recon = mae.reconstruct(images, pred)  # [N, 3, S, S]
        p = mae.patch_size
        pixel_mask = mask.reshape(mask.shape[0], 1, *mae.encoder.patch_embed.grid_size)
        pixel_mask = pixel_mask.repeat_interleave(p, 2).repeat_interleave(p, 3)  # [N,1,S,S]
        mean = torch.tensor(IMAGE_MEAN, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGE_STD, device=images.device).view(1, 3, 1, 1)
        grey = torch.zeros_like(images)  # 0 in normalised units = the mean colour
        panels = [
            images,
            images * (1 - pixel_mask) + grey * pixel_mask,
            images * (1 - pixel_mask) + recon * pixel_mask,
        ]
        rows = torch.cat(panels, dim=3)  # [N, 3, S, 3S]: the three panels side by side
        grid = torch.cat(list(rows), dim=1)  # [3, N*S, 3S]
        grid = (grid * std[0] + mean[0]).clamp(0, 1).mul(255).byte().permute(1, 2, 0)
    picture = Image.fromarray(grid.cpu().numpy())
    scale = max(1, 96 // images.shape[-1])  # small demo images are enlarged to be seen
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    picture.save(tmp, format="PNG")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(MaeOptions, argv, prog="train mae")
    import torch

    from shards.loader import make_loader
    from shards.manifest import read_manifest
    from train.checkpoint import checkpoint_name, save_checkpoint
    from train.loop import LoopPlan, pick_device, prepare_run_dir, run_steps
    from train.models import count_parameters, resolve_image_size
    from train.optim import CosineSchedule, create_optimizer, peak_lr

    started = time.time()
    manifest = read_manifest(opts.shards)
    image_size = resolve_image_size(opts.model, opts.image_size, manifest.image_size)
    opts = dataclasses.replace(opts, image_size=image_size)  # the resolved config is saved
    batches = make_loader(
        manifest, "train", batch_size=opts.batch_size, image_size=image_size, train=True,
        seed=opts.seed, num_workers=opts.num_workers, min_scale=opts.min_scale,
    )  # fmt: skip
    run_dir = prepare_run_dir(opts.out, opts.overwrite)

    torch.manual_seed(opts.seed)
    device = pick_device()
    mae = build_mae(opts, image_size).to(device)
    lr = peak_lr(opts.base_lr, opts.batch_size)  # e.g. 1.5e-4 * 64 / 256 = 3.75e-5
    optimizer = create_optimizer(mae, lr=lr, weight_decay=opts.weight_decay, betas=(0.9, 0.95))
    schedule = CosineSchedule(peak=lr, total_steps=opts.steps, warmup_steps=opts.warmup_steps)

    def step_loss(batch: tuple[Any, ...]) -> Any:
        images = batch[0]  # labels are not used by MAE
        return mae(images, opts.mask_ratio)[0]

    def save(step: int) -> None:
        save_checkpoint(
            run_dir / checkpoint_name(step), mae.checkpoint_state(), kind="mae",
            model=opts.model, image_size=image_size, num_classes=0, config=opts,
            vocab_hash=manifest.vocab_hash,
        )  # fmt: skip

    plan = LoopPlan(
        steps=opts.steps, batch_size=opts.batch_size, log_every=opts.log_every,
        save_every=opts.save_every, clip_grad=opts.clip_grad,
    )  # fmt: skip
    summary = run_steps(
        batches, step_loss, mae, optimizer, schedule, plan, run_dir, save, device=device,
        desc="mae",
    )  # fmt: skip

    preview_split = "val" if manifest.count("val") else "train"
    preview = make_loader(
        manifest, preview_split, batch_size=PREVIEW_SAMPLES, image_size=image_size, train=False
    )
    images = next(iter(preview))[0].to(device)
    torch.manual_seed(opts.seed)  # the same masks every time for the same run
    write_reconstructions(mae, images, opts.mask_ratio, run_dir / "reconstructions.png")

    counts = {
        **summary,
        "parameters_encoder": count_parameters(mae.encoder),
        "parameters_total": count_parameters(mae),
        "train_samples": manifest.count("train"),
        "epochs": round(opts.steps * opts.batch_size / max(1, manifest.count("train")), 3),
        "device": str(device),
    }
    write_meta(run_dir, config=opts, counts=counts, started=started)
    print(
        f"mae: {opts.steps} steps, loss {summary['first_loss']:.4f} -> "
        f"{summary['final_loss']:.4f}, {summary['images_per_s']:.1f} images/s; wrote {run_dir}"
    )
    return 0
