"""Mixup for multi-label targets (Zhang et al. 2018), as a WSP option.

    images, targets_a, targets_b, lam = mixup(images, targets, alpha=0.8)
    loss = lam * loss_fn(logits, targets_a) + (1 - lam) * loss_fn(logits, targets_b)

One lam ~ Beta(alpha, alpha) per batch, drawn from torch's global RNG (so a resumed run
draws the same); each image is blended with the batch's reversed order. Because the WSP loss
is linear in its target distribution, mixing the two losses equals mixing the normalised
targets.
"""

from __future__ import annotations

from typing import Any


def mixup(images: Any, targets: Any, alpha: float) -> tuple[Any, Any, Any, float]:
    """images [N, 3, H, W], targets [N, K] -> (mixed images, targets, targets.flip(0), lam)."""
    import torch

    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    mixed = images.mul(lam).add_(images.flip(0), alpha=1 - lam)
    return mixed, targets, targets.flip(0), lam
