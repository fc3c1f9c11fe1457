"""`train mae`: MAE pre-pretraining of a ViT encoder on the train shards (labels unused).

    train mae --shards DIR/shards --out runs/mae-micro --model vit_micro_patch4 \
        --image-size 32 --steps 600 --batch-size 64 --decoder-depth 2 --decoder-dim 128 \
        --decoder-heads 4      # CPU demo size; README.md gives measured times

Writes `OUT/`: `checkpoint-NNNNNN.safetensors` (kind "mae": encoder keys as timm names
them + `decoder.*`), `log.jsonl` (see train.loop), `reconstructions.png` (per row: original
| masked input | reconstruction, from the val split when it has samples) and `meta.json`.
Peak lr = base_lr * batch_size / 256, AdamW betas (0.9, 0.95) as in MAE.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.options import parse_options
from train.models import MODEL_NAMES, parse_name
from train.recipe import TrainOptions

PREVIEW_SAMPLES = 8
ENCODER_PREFIX = "encoder."


@dataclass(frozen=True)
class MaeOptions(TrainOptions):
    """MAE pre-pretraining on the train shards (no labels)."""

    model: str = field(default="vit_tiny_patch16", metadata={"help": ", ".join(MODEL_NAMES)})
    base_lr: float = field(default=1.5e-4, metadata={"help": "peak lr = base_lr * batch / 256"})
    mask_ratio: float = 0.75
    decoder_depth: int = 8
    decoder_dim: int = 512
    decoder_heads: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        parse_name(self.model)
        if not 0.0 < self.mask_ratio < 1.0:
            raise UsageError(f"--mask-ratio must lie in (0, 1), got {self.mask_ratio}")
        if self.decoder_dim % self.decoder_heads or self.decoder_dim % 4:
            raise UsageError("--decoder-dim must be a multiple of --decoder-heads and of 4")
        if self.decoder_depth < 1:
            raise UsageError("--decoder-depth must be at least 1")


def build_mae(opts: MaeOptions, image_size: int) -> Any:
    from train.mae import MaskedAutoencoder
    from train.models import create_encoder

    return MaskedAutoencoder(
        create_encoder(opts.model, image_size),
        decoder_dim=opts.decoder_dim,
        decoder_depth=opts.decoder_depth,
        decoder_heads=opts.decoder_heads,
    )


def reconstructions(mae: Any, images: Any, mask_ratio: float) -> Any:
    """A PIL picture, one row per image: original | masked input (grey) | reconstruction.

    images: [N, 3, S, S] normalised, on the model's device. The reconstruction shows the
    visible patches as they were and the predicted pixels in the masked ones, as MAE does.
    """
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
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def save_png(picture: Any, path: Path) -> None:
    import os

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    picture.save(tmp, format="PNG")
    os.replace(tmp, path)


class MaeTask:
    """train.trainer.Task for MAE: file keys are the encoder's timm names + `decoder.*`."""

    kind = "mae"
    num_classes = 0
    class_wnids = None  # no head

    def __init__(self, opts: MaeOptions, manifest: Any) -> None:
        self.opts, self.manifest = opts, manifest
        self.model_name, self.image_size = opts.model, opts.image_size

    def build(self) -> Any:
        return build_mae(self.opts, self.image_size)

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        return model(batch[0], self.opts.mask_ratio)[0]  # labels are not used by MAE

    def create_optimizer(self, module: Any, lr: float) -> Any:
        from train.optim import create_optimizer

        return create_optimizer(
            module, lr=lr, weight_decay=self.opts.weight_decay, betas=(0.9, 0.95)
        )

    def to_file(self, state: dict[str, Any]) -> dict[str, Any]:
        return {k.removeprefix(ENCODER_PREFIX): v for k, v in state.items()}

    def from_file(self, state: dict[str, Any]) -> dict[str, Any]:
        return {k if k.startswith("decoder.") else ENCODER_PREFIX + k: v for k, v in state.items()}

    def create_ema(self, module: Any) -> Any:
        return None

    def at_checkpoint(self, module: Any, step: int, run_dir: Path | None) -> None:
        """reconstructions.png from the val split (train if val is empty), fixed masks.

        Called on every rank (an FSDP forward is collective); writes where run_dir is set."""
        import torch

        from shards.loader import device_batch, make_loader

        split = "val" if self.manifest.count("val") else "train"
        preview = make_loader(self.manifest, split, batch_size=PREVIEW_SAMPLES,
                              image_size=self.image_size, train=False, normalise=False)  # fmt: skip
        device = next(module.parameters()).device
        (images,) = device_batch(next(iter(preview))[:1], device)  # normalised on the device
        was_training = module.training
        with torch.random.fork_rng(devices=[]):  # the training RNG stream is left untouched
            torch.manual_seed(self.opts.seed)  # the same masks at every checkpoint
            picture = reconstructions(module, images, self.opts.mask_ratio)
        if run_dir is not None:
            save_png(picture, run_dir / "reconstructions.png")
        module.train(was_training)

    def counts(self, module: Any) -> dict[str, Any]:
        from train.models import count_parameters

        return {
            "parameters_encoder": count_parameters(module.encoder),
            "parameters_total": count_parameters(module),
        }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(MaeOptions, argv, prog="train mae")
    from shards.manifest import read_manifest
    from train.models import resolve_image_size
    from train.trainer import fit, print_summary

    manifest = read_manifest(opts.shards)
    image_size = resolve_image_size(opts.model, opts.image_size, manifest.image_size)
    opts = dataclasses.replace(opts, image_size=image_size)  # the resolved config is saved
    print_summary("mae", fit(opts, MaeTask(opts, manifest), manifest, desc="mae"), opts.out)
    return 0
