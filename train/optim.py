"""AdamW with the ViT recipe's parameter groups, and the per-step learning-rate schedule.

- No weight decay on 1-D parameters (norm scales, biases) and on tokens and position
  embeddings (`cls_token`, `pos_embed`, `mask_token`): decaying them only shrinks them.
- Frozen parameters (MAE's fixed sin-cos position embeddings) are left out.
- Peak lr = base_lr * batch_size / 256 (the linear scaling rule MAE and MAWS use).
- Per step: linear warmup from 0 to the peak over `warmup_steps`, then half a cosine down to
  `min_lr`. `lr_at(step)` is a pure function, so resuming at step s needs nothing stored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

NO_DECAY_NAMES = ("cls_token", "pos_embed", "mask_token")


def peak_lr(base_lr: float, batch_size: int) -> float:
    return base_lr * batch_size / 256


def param_groups(named_parameters: Iterable[tuple[str, Any]], weight_decay: float) -> list[dict]:
    """Two AdamW groups: `decay` (matrices) and `no_decay` (norms, biases, tokens)."""
    decay, no_decay = [], []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        if param.ndim <= 1 or name.split(".")[-1] in NO_DECAY_NAMES:
            no_decay.append(param)
        else:
            decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "name": "decay"},
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
    ]


def create_optimizer(
    model: Any,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
) -> Any:
    import torch

    groups = param_groups(model.named_parameters(), weight_decay)
    return torch.optim.AdamW(groups, lr=lr, betas=betas)


@dataclass(frozen=True)
class CosineSchedule:
    """Linear warmup to `peak` over `warmup_steps`, then cosine to `min_lr` at `total_steps`."""

    peak: float
    total_steps: int
    warmup_steps: int
    min_lr: float = 0.0

    def lr_at(self, step: int) -> float:
        """Learning rate for optimizer step `step` (0-based)."""
        if step < self.warmup_steps:
            return self.peak * (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.min_lr + (self.peak - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))

    def apply(self, optimizer: Any, step: int) -> float:
        lr = self.lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
