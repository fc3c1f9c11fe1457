"""`train eval`: score a checkpoint on val shards or an image folder; write `metrics.json`.

    train eval --ckpt runs/wsp-micro --shards DIR/shards      # newest checkpoint of the run
    train eval --ckpt RUN --shards DIR/shards --image-folder imagenet/val \
               --target-wnids imagenet_synsets.txt             # + WordNet zero-shot

Eval data: the val split of `--shards`, or `--image-folder DIR` (wnid subfolders, see
train.imagefolder), whose wnids are mapped onto the checkpoint's classes (stored in the
checkpoint; for older checkpoints, from `--shards` or the shards it was trained on); images
of wnids outside them count only for zero-shot. The train split of `--shards` is the bank
of the probe and kNN; without `--shards` they are skipped. Scores over the vocabulary use
the val samples with a label in it:

    top1, top5   WSP head: a top-k prediction is correct when any of its classes is a label
    mAP          WSP head: multi-label mean average precision over the classes present
    probe_top1   BatchNorm (no affine) + linear layer, trained on train-split features with
                 each sample's most frequent label as target, scored on val like top1
    knn_top1/5   cosine kNN on the cls features, train split as bank (see train.knn)
    zeroshot_*   `--target-wnids FILE`: the WSP head scored on another label set through
                 WordNet's hypernyms (rule and ground truth: see train.zeroshot)

Each score has its chance levels next to it (`chance_*`, see train.metrics): the hit rate of
always guessing the most frequent train classes (prior) and of uniform guessing.

`metrics.json` (written atomically; default: in the checkpoint's folder): checkpoint, kind, model,
image_size, data, num_classes, val_samples, val_samples_in_vocab, probe_train_samples, top1,
top5, mAP (WSP only), probe_top1, probe_train_top1, knn_top1, knn_top5, knn_k, knn_temperature
(with a train split), chance_top1_prior, chance_top1_uniform, chance_top5_prior,
chance_top5_uniform, chance_mAP, zeroshot_targets, zeroshot_reachable, zeroshot_samples,
zeroshot_top1, zeroshot_top5, zeroshot_chance_top1_uniform (with --target-wnids), seconds.
All scores lie in [0, 1].

Refused with one line (exit 2): a WSP head trained on another vocabulary (vocab_hash differs:
its class ids would mean other classes), an empty split or image folder, a wnids file that is
missing or holds a line that is not a WordNet 3.0 noun synset, --target-wnids for an MAE
checkpoint, an image folder none of whose wnids the checkpoint knows (without targets).
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
from train.knn import KNN_K, KNN_TEMPERATURE


@dataclass(frozen=True)
class EvalOptions:
    """Top-k, mAP, linear probe, kNN and WordNet zero-shot scores of a checkpoint."""

    ckpt: str = field(metadata={"help": "checkpoint file, or a run folder (its newest)"})
    shards: str | None = field(
        default=None,
        metadata={"help": "folder with manifest.json: val split scored, train split the bank"},
    )
    image_folder: str | None = field(
        default=None,
        metadata={"help": "eval images in wnid subfolders (ImageNet layout), instead of val"},
    )
    target_wnids: str | None = field(
        default=None,
        metadata={"help": "zero-shot: one target wnid per line, scored from the WSP head"},
    )
    out: str | None = field(
        default=None, metadata={"help": "metrics file; default: metrics.json beside --ckpt"}
    )
    batch_size: int = 256
    probe_epochs: int = 30
    probe_lr: float = 1e-3
    probe_batch_size: int = 256
    max_train_samples: int = field(
        default=50000, metadata={"help": "train samples whose features fit the probe and kNN"}
    )
    knn_k: int = KNN_K
    knn_temperature: float = KNN_TEMPERATURE
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.batch_size, self.probe_batch_size, self.max_train_samples) < 1:
            raise UsageError("--batch-size, --probe-batch-size, --max-train-samples must be >= 1")
        if self.probe_epochs < 0:
            raise UsageError("--probe-epochs must be >= 0")
        if self.knn_k < 1 or not self.knn_temperature > 0:
            raise UsageError("--knn-k must be >= 1 and --knn-temperature > 0")
        if self.shards is None and self.image_folder is None:
            raise UsageError("give --shards, --image-folder, or both (eval data)")


def extract_features(
    model: Any, batches: Any, limit: int | None, device: Any
) -> tuple[Any, Any, Any]:
    """One pass -> (cls features [N, D], head logits [N, K] or None, targets [N, K]) on CPU.

    batches: (images [B, 3, S, S] uint8 or normalised float32, targets [B, K], weights [B]).

    The cls feature is the final-norm cls token, what timm's head sees (pre_logits).
    """
    import torch

    from shards.loader import device_batch

    feats, logits, targets = [], [], []
    seen = 0
    model.eval()
    with torch.no_grad():
        for batch in batches:
            if not len(batch[0]):  # every image of the batch was undecodable
                continue
            (images,) = device_batch(batch[:1], device)  # uint8 normalised on the device
            batch_targets = batch[1]  # stays on the CPU, where the scores are computed
            cls = model.forward_head(model.forward_features(images), pre_logits=True)
            feats.append(cls.float().cpu())
            if model.num_classes:
                logits.append(model.head(cls).float().cpu())
            targets.append(batch_targets)
            seen += len(images)
            if limit is not None and seen >= limit:
                break
    if not feats:
        raise UsageError("no samples could be read from the eval data")
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


def load_model(info: Any, device: Any) -> Any:
    """The checkpoint's encoder (and its WSP head), strict on keys, in eval mode on `device`."""
    from train.checkpoint import load_encoder, read_state
    from train.models import create_encoder

    num_classes = info.num_classes if info.kind == "wsp" else 0
    model = create_encoder(info.model, info.image_size, num_classes=num_classes)
    fresh = load_encoder(model, info.path)  # strict on the encoder keys, with a clear error
    if num_classes:  # the head is part of a WSP checkpoint: load it too
        head = {k: v for k, v in read_state(info.path).items() if k.startswith("head.")}
        if sorted(head) != fresh:
            raise UsageError(f"{info.path}: head keys {sorted(head)} do not match {fresh}")
        model.load_state_dict(head, strict=False)
    return model.to(device).eval()


def evaluate(opts: EvalOptions) -> dict[str, Any]:
    """Check, load, extract, score. Returns the metrics dict (see the module docstring)."""
    import torch

    from shards.loader import make_loader
    from shards.manifest import read_manifest
    from train.checkpoint import head_classes, read_info, resolve_checkpoint
    from train.imagefolder import ImageFolder
    from train.loop import pick_device

    started = time.time()
    info = read_info(resolve_checkpoint(opts.ckpt))
    manifest = read_manifest(opts.shards) if opts.shards else None
    if manifest is not None and info.kind == "wsp" and info.vocab_hash != manifest.vocab_hash:
        raise UsageError(
            f"{info.path} was trained on vocabulary {info.vocab_hash[:12]}, the shards carry "
            f"{manifest.vocab_hash[:12]}: evaluate on the shards it was trained for"
        )
    splits = ("train",) if opts.image_folder else ("train", "val")
    for split in splits if manifest is not None else ():
        if not manifest.count(split):
            raise UsageError(f"{manifest.folder}: the {split} split has no samples to evaluate")
    folder = ImageFolder.scan(opts.image_folder) if opts.image_folder else None
    targets = None
    if opts.target_wnids:
        if info.kind != "wsp":
            raise UsageError(f"--target-wnids needs a WSP checkpoint (a head); {info.path} is MAE")
        from train.zeroshot import read_target_wnids

        targets = read_target_wnids(opts.target_wnids)

    # label space: the head's classes (K of them), then the folder's wnids outside them (E)
    vocab = head_classes(info, manifest)  # WSP: the head's classes, in head order
    if vocab is None and manifest is not None:
        vocab = [c["wnid"] for c in sorted(manifest.classes, key=lambda c: int(c["class_id"]))]
    if vocab is None and info.kind == "wsp":
        raise UsageError(
            f"{info.path}: the class wnids of its head are unknown (an older checkpoint whose "
            "training shards are gone): pass --shards with its vocabulary"
        )
    vocab = vocab if vocab is not None else folder.wnids  # MAE on a folder alone
    space = vocab + ([w for w in folder.wnids if w not in set(vocab)] if folder else [])
    if folder and targets is None and not set(folder.wnids) & set(vocab):
        raise UsageError(
            f"--image-folder {folder.folder}: none of its {len(folder.wnids)} wnids is a class "
            "of the checkpoint (give --target-wnids to score it zero-shot)"
        )

    torch.manual_seed(opts.seed)
    device = pick_device()
    model = load_model(info, device)

    def shard_features(split: str, limit: int | None) -> tuple[Any, Any, Any]:
        batches = make_loader(
            manifest, split, batch_size=opts.batch_size, image_size=info.image_size,
            train=False, num_workers=opts.num_workers, normalise=False,
        )  # fmt: skip
        return extract_features(model, batches, limit, device)

    if folder is not None:
        batches = folder.batches(space, batch_size=opts.batch_size, image_size=info.image_size,
                                 num_workers=opts.num_workers)  # fmt: skip
        val_x, val_logits, val_space = extract_features(model, batches, None, device)
    else:
        val_x, val_logits, val_space = shard_features("val", None)
    bank = shard_features("train", opts.max_train_samples) if manifest is not None else None

    metrics: dict[str, Any] = {
        "checkpoint": str(info.path),
        "kind": info.kind,
        "model": info.model,
        "image_size": info.image_size,
        "data": str(folder.folder if folder else manifest.folder),
        "num_classes": len(vocab),
        "val_samples": len(val_space),
        "probe_train_samples": len(bank[2]) if bank else 0,
    }
    metrics.update(vocabulary_scores(opts, val_x, val_logits, val_space[:, : len(vocab)], bank))
    if targets is not None:
        from train.zeroshot import zero_shot_metrics

        labels = [[space[j] for j in row.nonzero().flatten().tolist()] for row in val_space]
        metrics.update(zero_shot_metrics(val_logits, labels, vocab, targets))
    metrics["seconds"] = round(time.time() - started, 3)
    return metrics


def vocabulary_scores(
    opts: EvalOptions, val_x: Any, val_logits: Any, val_t: Any, bank: tuple | None
) -> dict[str, Any]:
    """Head top-k and mAP, probe and kNN top-k, chance levels: over the vocabulary's K classes.

    val_x [N, D], val_logits [N, K] or None, val_t [N, K]; bank = (train_x, _, train_t) or
    None (no train split: probe and kNN are skipped). Only val samples with a label in the
    vocabulary are scored (`val_samples_in_vocab`; all of them for shards).
    """
    import torch

    from train.knn import knn_votes
    from train.metrics import (
        chance_levels,
        mean_average_precision,
        most_frequent_label,
        topk_hit_rate,
    )

    labelled = val_t.sum(dim=1) > 0
    val_x, val_t = val_x[labelled], val_t[labelled]
    val_logits = val_logits[labelled] if val_logits is not None else None
    out: dict[str, Any] = {"val_samples_in_vocab": len(val_t)}
    if not len(val_t):
        return out
    # chance "prior" guesses the train split's most frequent classes (val's own without one)
    class_counts = (bank[2] if bank else val_t).sum(dim=0)  # [K]
    if val_logits is not None:
        out["top1"] = topk_hit_rate(val_logits, val_t, 1)
        out["top5"] = topk_hit_rate(val_logits, val_t, 5)
        out["mAP"] = mean_average_precision(val_logits, val_t)
    if bank is not None:
        train_x, _, train_t = bank
        probe = fit_linear_probe(
            train_x, most_frequent_label(train_t, class_counts), val_t.shape[1],
            epochs=opts.probe_epochs, lr=opts.probe_lr, batch_size=opts.probe_batch_size,
            seed=opts.seed,
        )  # fmt: skip
        with torch.no_grad():
            out["probe_top1"] = topk_hit_rate(probe(val_x), val_t, 1)
            out["probe_train_top1"] = topk_hit_rate(probe(train_x), train_t, 1)
        votes = knn_votes(train_x, train_t, val_x, k=opts.knn_k, temperature=opts.knn_temperature)
        out["knn_top1"] = topk_hit_rate(votes, val_t, 1)
        out["knn_top5"] = topk_hit_rate(votes, val_t, 5)
        out["knn_k"] = min(opts.knn_k, len(train_x))
        out["knn_temperature"] = opts.knn_temperature
    chance = chance_levels(val_t, class_counts)
    out.update({f"chance_{name}": value for name, value in chance.items()})
    return out


def print_table(metrics: dict[str, Any]) -> None:
    """metric | value | the prior and uniform guesses' values on the same samples."""
    rows = [("top1", "top1"), ("top5", "top5"), ("mAP", "mAP"), ("probe_top1", "top1"),
            ("knn_top1", "top1"), ("knn_top5", "top5")]  # fmt: skip
    rows_zs = [
        ("zeroshot_top1", None, "zeroshot_chance_top1_uniform"),
        ("zeroshot_top5", None, None),
    ]
    print(f"{metrics['kind']} {metrics['model']} on {metrics['val_samples']} val samples")
    print(f"{'metric':<14} {'value':>7} {'prior':>7} {'uniform':>8}")
    table = [(name, f"chance_{c}_prior" if c != "mAP" else "chance_mAP", f"chance_{c}_uniform")
             for name, c in rows] + rows_zs  # fmt: skip
    for name, prior_key, uniform_key in table:
        if name not in metrics:
            continue
        cells = [metrics.get(key) if key else None for key in (prior_key, uniform_key)]
        text = [f"{v:>7.3f}" if v is not None else f"{'':>7}" for v in cells]
        print(f"{name:<14} {metrics[name]:>7.3f} {text[0]} {text[1]:>8}")
    if "zeroshot_targets" in metrics:
        print(f"zero-shot: {metrics['zeroshot_reachable']} of {metrics['zeroshot_targets']} "
              f"targets reachable, {metrics['zeroshot_samples']} samples scored")  # fmt: skip


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
