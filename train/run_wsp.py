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
metadata `vocab_hash` of the shards and `class_wnids`, the head's classes in order),
`log.jsonl`, `meta.json`.
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

DEFAULT_MODEL = "vit_tiny_patch16"


@dataclass(frozen=True)
class WspOptions(TrainOptions):
    """Weakly supervised pretraining on hashtag labels, from an MAE encoder or from scratch."""

    init: str | None = field(
        default=None, metadata={"help": "MAE checkpoint (file or run folder) for the encoder"}
    )
    model: str | None = field(
        default=None,
        metadata={"help": f"default: --init's, else {DEFAULT_MODEL}; {', '.join(MODEL_NAMES)}"},
    )
    min_scale: float = field(default=0.08, metadata={"help": "random-resized-crop min area"})
    clip_grad: float = field(default=1.0, metadata={"help": "max gradient norm; 0: off"})
    label_smoothing: float = 0.0
    drop_path: float = 0.0
    mixup: float = field(default=0.0, metadata={"help": "mixup Beta(a, a) parameter; 0: off"})
    layer_decay: float = field(default=1.0, metadata={"help": "layer-wise lr decay; 1: off"})
    ema: float = field(default=0.0, metadata={"help": "EMA decay of the weights, e.g. 0.9999"})
    balance: bool = field(default=True, metadata={"help": "resample by class-balancing weights"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.model is not None:
            parse_name(self.model)
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.drop_path < 1.0:
            raise UsageError("--label-smoothing and --drop-path must lie in [0, 1)")
        if self.mixup < 0 or not 0.0 < self.layer_decay <= 1.0 or not 0.0 <= self.ema < 1.0:
            raise UsageError("--mixup >= 0, --layer-decay in (0, 1], --ema in [0, 1)")


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


class WspTask:
    """train.trainer.Task for WSP: file keys are timm's, `head.*` included."""

    kind = "wsp"

    def __init__(self, opts: WspOptions, manifest: Any) -> None:
        assert opts.model is not None and opts.image_size is not None  # filled by resolve
        self.opts, self.manifest = opts, manifest
        self.model_name, self.image_size = opts.model, opts.image_size
        self.num_classes = manifest.num_classes
        # head row i is class_id i: the wnids in that order go into every checkpoint
        by_id = sorted(manifest.classes, key=lambda c: int(c["class_id"]))
        self.class_wnids = tuple(str(c["wnid"]) for c in by_id)
        self.fresh: list[str] = []

    def build(self) -> Any:
        from train.wsp import create_wsp_model

        model, self.fresh = create_wsp_model(
            self.model_name, self.image_size, self.num_classes, init=self.opts.init,
            drop_path=self.opts.drop_path,
        )  # fmt: skip
        return model

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        from train.mixup import mixup
        from train.wsp import multilabel_softmax_loss

        images, targets, _ = batch  # weights already acted through --balance resampling
        smoothing = self.opts.label_smoothing
        if self.opts.mixup <= 0:
            return multilabel_softmax_loss(model(images), targets, smoothing).mean()
        images, targets_a, targets_b, lam = mixup(images, targets, self.opts.mixup)
        logits = model(images)
        loss_a = multilabel_softmax_loss(logits, targets_a, smoothing)
        loss_b = multilabel_softmax_loss(logits, targets_b, smoothing)
        return (lam * loss_a + (1 - lam) * loss_b).mean()

    def create_optimizer(self, module: Any, lr: float) -> Any:
        from train.optim import create_optimizer

        return create_optimizer(
            module, lr=lr, weight_decay=self.opts.weight_decay,
            layer_decay=self.opts.layer_decay, num_layers=len(module.blocks),
        )  # fmt: skip

    def to_file(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def from_file(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def create_ema(self, module: Any) -> Any:
        from train.ema import ModelEma

        return ModelEma(module, self.opts.ema) if self.opts.ema > 0 else None

    def at_checkpoint(self, module: Any, step: int, run_dir: Path | None) -> None:
        pass

    def counts(self, module: Any) -> dict[str, Any]:
        from train.models import count_parameters

        return {
            "parameters": count_parameters(module),
            "initialised_from": self.opts.init,
            "fresh_keys": self.fresh if self.opts.init else "all",
            "num_classes": self.num_classes,
        }


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(WspOptions, argv, prog="train wsp")
    from shards.manifest import read_manifest
    from train.trainer import fit, print_summary

    manifest = read_manifest(opts.shards)
    if manifest.num_classes < 2:
        raise UsageError(f"{manifest.folder}: WSP needs at least 2 classes in the manifest")
    opts = resolve(opts, manifest.image_size)
    print_summary("wsp", fit(opts, WspTask(opts, manifest), manifest, desc="wsp"), opts.out)
    return 0
