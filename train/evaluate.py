"""`train eval`: score a checkpoint on the val shards; write `metrics.json`.

    train eval --ckpt runs/wsp-micro --shards DIR/shards      # newest checkpoint of the run

For a WSP checkpoint (it has a head over the shards' classes):
    top1, top5   a top-k prediction is correct when any of its classes is a label
    mAP          multi-label mean average precision over the classes present in val
For every checkpoint (MAE too), a linear probe on the frozen cls feature:
    probe_top1   BatchNorm (no affine) + linear layer, trained on train-split features with
                 each sample's most frequent label as target, scored on val like top1
Each score has its chance levels next to it (`chance_*`, see train.metrics): the hit rate of
always guessing the most frequent train classes (prior) and of uniform guessing.

`metrics.json` (written atomically; default: in the checkpoint's folder): checkpoint, kind, model,
image_size, num_classes, val_samples, probe_train_samples, top1, top5, mAP (WSP only),
probe_top1, probe_train_top1, chance_top1_prior, chance_top1_uniform, chance_top5_prior,
chance_top5_uniform, chance_mAP, seconds. All scores lie in [0, 1].

A WSP head trained on another vocabulary (vocab_hash differs) is refused: its class ids would
mean other classes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.layout import write_json_atomic
from curation.options import parse_options


@dataclass(frozen=True)
class EvalOptions:
    """Top-k, mAP and a linear probe of a checkpoint on the val shards."""

    ckpt: str = field(metadata={"help": "checkpoint file, or a run folder (its newest)"})
    shards: str = field(metadata={"help": "folder with manifest.json (`curate shard` output)"})
    out: str | None = field(
        default=None, metadata={"help": "metrics file; default: metrics.json beside --ckpt"}
    )
    batch_size: int = 256
    probe_epochs: int = 30
    probe_lr: float = 1e-3
    probe_batch_size: int = 256
    max_train_samples: int = field(
        default=50000, metadata={"help": "train samples whose features fit the probe"}
    )
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.batch_size, self.probe_batch_size, self.max_train_samples) < 1:
            raise UsageError("--batch-size, --probe-batch-size, --max-train-samples must be >= 1")
        if self.probe_epochs < 0:
            raise UsageError("--probe-epochs must be >= 0")


def extract_features(
    model: Any, batches: Any, limit: int | None, device: Any
) -> tuple[Any, Any, Any]:
    """One pass -> (cls features [N, D], head logits [N, K] or None, targets [N, K]) on CPU.

    The cls feature is the final-norm cls token, what timm's head sees (pre_logits).
    """
    import torch

    feats, logits, targets = [], [], []
    seen = 0
    model.eval()
    with torch.no_grad():
        for images, batch_targets, _ in batches:
            cls = model.forward_head(model.forward_features(images.to(device)), pre_logits=True)
            feats.append(cls.float().cpu())
            if model.num_classes:
                logits.append(model.head(cls).float().cpu())
            targets.append(batch_targets)
            seen += len(images)
            if limit is not None and seen >= limit:
                break
    if not feats:
        raise UsageError("no samples could be read from the shards")
    feats_t, targets_t = torch.cat(feats)[:limit], torch.cat(targets)[:limit]
    logits_t = torch.cat(logits)[:limit] if logits else None
    return feats_t, logits_t, targets_t


def fit_linear_probe(
    train_x: Any, train_y: Any, num_classes: int, *, epochs: int, lr: float, batch_size: int,
    seed: int,
) -> Any:  # fmt: skip
    """BatchNorm1d(D, affine=False) + Linear(D, K) fitted with AdamW on frozen features.

    train_x: [N, D]; train_y: [N] class ids. Returns the fitted probe (eval mode).
    """
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    probe = nn.Sequential(
        nn.BatchNorm1d(train_x.shape[1], affine=False), nn.Linear(train_x.shape[1], num_classes)
    )
    nn.init.normal_(probe[1].weight, std=0.01, generator=generator)
    nn.init.zeros_(probe[1].bias)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=0.0)
    steps_per_epoch = max(1, -(-len(train_x) // batch_size))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    probe.train()
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(train_x), batch_size):
            index = order[start : start + batch_size]
            if len(index) < 2:  # BatchNorm needs two samples to estimate a variance
                continue
            loss = nn.functional.cross_entropy(probe(train_x[index]), train_y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return probe.eval()


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Load, check, extract, score. Returns the metrics dict (see the module docstring)."""
    import torch

    from shards.loader import make_loader
    from shards.manifest import read_manifest
    from train.checkpoint import load_encoder, read_info, read_state, resolve_checkpoint
    from train.loop import pick_device
    from train.metrics import (
        chance_levels,
        mean_average_precision,
        most_frequent_label,
        topk_hit_rate,
    )
    from train.models import create_encoder

    started = time.time()
    info = read_info(resolve_checkpoint(opts.ckpt))
    manifest = read_manifest(opts.shards)
    if info.kind == "wsp" and info.vocab_hash != manifest.vocab_hash:
        raise UsageError(
            f"{info.path} was trained on vocabulary {info.vocab_hash[:12]}, the shards carry "
            f"{manifest.vocab_hash[:12]}: evaluate on the shards it was trained for"
        )
    for split in ("train", "val"):
        if not manifest.count(split):
            raise UsageError(f"{manifest.folder}: the {split} split has no samples to evaluate")

    torch.manual_seed(opts.seed)
    device = pick_device()
    num_classes = info.num_classes if info.kind == "wsp" else 0
    model = create_encoder(info.model, info.image_size, num_classes=num_classes)
    fresh = load_encoder(model, info.path)  # strict on the encoder keys, with a clear error
    if num_classes:  # the head is part of a WSP checkpoint: load it too
        head = {k: v for k, v in read_state(info.path).items() if k.startswith("head.")}
        if sorted(head) != fresh:
            raise UsageError(f"{info.path}: head keys {sorted(head)} do not match {fresh}")
        model.load_state_dict(head, strict=False)
    model = model.to(device)

    def split_features(split: str, limit: int | None) -> tuple[Any, Any, Any]:
        batches = make_loader(
            manifest, split, batch_size=opts.batch_size, image_size=info.image_size,
            train=False, num_workers=opts.num_workers,
        )  # fmt: skip
        return extract_features(model, batches, limit, device)

    train_x, _, train_t = split_features("train", opts.max_train_samples)
    val_x, val_logits, val_t = split_features("val", None)
    class_counts = train_t.sum(dim=0)  # [K] label counts of the (probe's) train samples
    chance = chance_levels(val_t, class_counts)

    metrics: dict[str, Any] = {
        "checkpoint": str(info.path),
        "kind": info.kind,
        "model": info.model,
        "image_size": info.image_size,
        "num_classes": manifest.num_classes,
        "val_samples": len(val_t),
        "probe_train_samples": len(train_t),
    }
    if val_logits is not None:
        metrics["top1"] = topk_hit_rate(val_logits, val_t, 1)
        metrics["top5"] = topk_hit_rate(val_logits, val_t, 5)
        metrics["mAP"] = mean_average_precision(val_logits, val_t)
    probe = fit_linear_probe(
        train_x, most_frequent_label(train_t, class_counts), manifest.num_classes,
        epochs=opts.probe_epochs, lr=opts.probe_lr, batch_size=opts.probe_batch_size,
        seed=opts.seed,
    )  # fmt: skip
    with torch.no_grad():
        metrics["probe_top1"] = topk_hit_rate(probe(val_x), val_t, 1)
        metrics["probe_train_top1"] = topk_hit_rate(probe(train_x), train_t, 1)
    metrics.update({f"chance_{name}": value for name, value in chance.items()})
    metrics["seconds"] = round(time.time() - started, 3)
    return metrics


def print_table(metrics: dict[str, Any]) -> None:
    rows = [("top1", "top1"), ("top5", "top5"), ("mAP", "mAP"), ("probe_top1", "top1")]
    print(f"{metrics['kind']} {metrics['model']} on {metrics['val_samples']} val samples")
    print(f"{'metric':<12} {'value':>7} {'prior':>7} {'uniform':>8}")
    for name, chance in rows:
        if name not in metrics:
            continue
        prior = metrics.get(f"chance_{chance}_prior", metrics.get(f"chance_{chance}"))
        uniform = metrics.get(f"chance_{chance}_uniform")
        uniform_text = f"{uniform:>8.3f}" if uniform is not None else f"{'':>8}"
        print(f"{name:<12} {metrics[name]:>7.3f} {prior:>7.3f} {uniform_text}")


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(EvalOptions, argv, prog="train eval")
    from train.checkpoint import resolve_checkpoint

    metrics = evaluate(opts)
    out = Path(opts.out) if opts.out else resolve_checkpoint(opts.ckpt).parent / "metrics.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, metrics)
    print_table(metrics)
    print(f"wrote {out}")
    return 0
