"""AdamW with the ViT recipe's parameter groups, and the per-step learning-rate schedule.

- No weight decay on 1-D parameters (norm scales, biases) and on tokens and position
  embeddings (`cls_token`, `pos_embed`, `mask_token`): decaying them only shrinks them.
- Frozen parameters (MAE's fixed sin-cos position embeddings) are left out.
- Layer-wise lr decay (optional, for fine-tuning from MAE weights as BEiT/MAE do): block i
  of a depth-L encoder gets lr_scale = decay ** (L - i), the patch embedding and tokens
  decay ** (L + 1), the final norm and head 1.
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


EMBEDDING_NAMES = ("cls_token", "pos_embed", "patch_embed", "reg_token", "mask_token")


def layer_id(name: str, num_layers: int) -> int:
    """0 for the embeddings, i + 1 for `blocks.i.*`, num_layers + 1 for the rest (norm, head)."""
    parts = name.replace("_checkpoint_wrapped_module.", "").split(".")
    if parts[0] in EMBEDDING_NAMES:
        return 0
    if parts[0] == "blocks" and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1]) + 1
    return num_layers + 1


def param_groups(
    named_parameters: Iterable[tuple[str, Any]],
    weight_decay: float,
    *,
    layer_decay: float = 1.0,
    num_layers: int = 0,
) -> list[dict]:
    """AdamW groups: `decay` (matrices) and `no_decay` (norms, biases, tokens); with
    `layer_decay` < 1, one such pair per layer, each with its `lr_scale`."""
    groups: dict[tuple[str, int], dict] = {}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        no_decay = param.ndim <= 1 or name.split(".")[-1] in NO_DECAY_NAMES
        kind = "no_decay" if no_decay else "decay"
        layer = layer_id(name, num_layers) if layer_decay != 1.0 else 0
        group = groups.setdefault((kind, layer), {
            "params": [], "weight_decay": 0.0 if no_decay else weight_decay,
            "name": kind if layer_decay == 1.0 else f"{kind}_layer{layer}",
            "lr_scale": layer_decay ** (num_layers + 1 - layer) if layer_decay != 1.0 else 1.0,
        })  # fmt: skip
        group["params"].append(param)
    if layer_decay == 1.0:  # always both groups, decay first, even when one is empty
        for kind, wd in (("decay", weight_decay), ("no_decay", 0.0)):
            groups.setdefault((kind, 0), {"params": [], "weight_decay": wd, "name": kind,
                                          "lr_scale": 1.0})  # fmt: skip
        return [groups[("decay", 0)], groups[("no_decay", 0)]]
    return [groups[key] for key in sorted(groups, key=lambda k: (k[1], k[0]))]


def create_optimizer(
    model: Any,
    *,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    layer_decay: float = 1.0,
    num_layers: int = 0,
) -> Any:
    import torch

    groups = param_groups(
        model.named_parameters(), weight_decay, layer_decay=layer_decay, num_layers=num_layers
    )
    # One fused kernel per step on GPU (what bench/gpu_throughput measures); CPU keeps foreach.
    fused = all(p.is_cuda for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=fused or None)


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
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
