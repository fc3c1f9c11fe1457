"""Weakly supervised pretraining (WSP): a ViT with a linear head over the hashtag classes.

    model, fresh = create_wsp_model("vit_tiny_patch4", 32, num_classes=K, init="mae.safetensors")
    loss = multilabel_softmax_loss(model(images), targets)      # [N]

The loss is MAWS's (after Mahajan et al. 2018): softmax cross-entropy against the multi-hot
target divided by its number of positives, so a sample with three hashtags spreads one unit
of probability mass over three classes instead of claiming three units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train.checkpoint import load_encoder
from train.models import create_encoder


def multilabel_softmax_loss(logits: Any, targets: Any, label_smoothing: float = 0.0) -> Any:
    """Per-sample loss [N] = -sum_k t_k log softmax(logits)_k, with t = targets / #positives.

    logits: [N, K]; targets: [N, K] multi-hot (0/1). With label smoothing e the target is
    (1 - e) * t + e / K. A row without positives (never written by `curate shard`) counts as
    uniform rather than dividing by zero.
    """
    import torch

    targets = targets.float()
    positives = targets.sum(dim=1, keepdim=True)
    uniform = torch.full_like(targets, 1.0 / targets.shape[1])
    dist = torch.where(positives > 0, targets / positives.clamp(min=1.0), uniform)
    if label_smoothing > 0:
        dist = (1 - label_smoothing) * dist + label_smoothing / targets.shape[1]
    log_probs = torch.log_softmax(logits.float(), dim=1)
    return -(dist * log_probs).sum(dim=1)


def create_wsp_model(
    name: str,
    image_size: int,
    num_classes: int,
    *,
    init: str | Path | None = None,
    drop_path: float = 0.0,
) -> tuple[Any, list[str]]:
    """A timm ViT with a fresh linear head [D -> num_classes]; encoder from `init` if given.

    Returns (model, keys left at initialisation): with `init`, exactly the head's keys;
    the encoder (cls token and position embedding included) is the checkpoint's, bit for bit
    (the position embedding resampled when the patch grid differs).
    """
    model = create_encoder(name, image_size, num_classes=num_classes, drop_path=drop_path)
    if init is None:
        return model, sorted(model.state_dict())
    return model, load_encoder(model, init)
