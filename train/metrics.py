"""Multi-label scores and their chance levels, on tensors already in memory.

A sample of the shards carries one or more classes (its hashtags), so a top-k prediction
counts as correct when any of its k classes is among the sample's labels. Every score comes
with what guessing would get on the same samples, so a number can be read without context:

    prior   always predict the k most frequent train classes
    uniform predict k classes uniformly at random (expected hit rate, exact)
    mAP     a random ranking's expected average precision is the class's prevalence

Shapes: scores [N, K] float, targets [N, K] multi-hot (0/1), class_counts [K].
"""

from __future__ import annotations

import math
from typing import Any


def topk_hit_rate(scores: Any, targets: Any, k: int) -> float:
    """Fraction of samples whose top-k scored classes include at least one label."""
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices  # [N, k]
    hits = targets.gather(1, top).amax(dim=1)  # [N], 1 when any of the k is a label
    return float(hits.float().mean())


def average_precision(scores: Any, targets: Any) -> Any:
    """AP per class [K] (NaN where the class has no positive sample).

    AP = mean over the class's positives of the precision at that positive's rank.
    """
    import torch

    order = scores.argsort(dim=0, descending=True)  # [N, K], best first per class
    ranked = targets.gather(0, order).float()  # [N, K], 1 where the ranked sample is positive
    ranks = torch.arange(1, ranked.shape[0] + 1, device=ranked.device).unsqueeze(1)
    precision = ranked.cumsum(dim=0) / ranks  # precision at each cut-off
    positives = ranked.sum(dim=0)
    ap = (precision * ranked).sum(dim=0) / positives.clamp(min=1)
    return torch.where(positives > 0, ap, torch.full_like(ap, math.nan))


def mean_average_precision(scores: Any, targets: Any) -> float:
    """mAP over the classes that have at least one positive among the samples."""
    ap = average_precision(scores, targets)
    present = ~ap.isnan()
    return float(ap[present].mean()) if bool(present.any()) else math.nan


def chance_levels(targets: Any, class_counts: Any, ks: tuple[int, ...] = (1, 5)) -> dict:
    """Hit rates of guessing, for each k: `top{k}_prior` and `top{k}_uniform`; and `mAP`.

    targets: [N, K] of the scored samples; class_counts: [K] label counts of the train split.
    """
    num_classes = targets.shape[1]
    labels_per_sample = targets.sum(dim=1)  # [N]
    out: dict[str, float] = {}
    for k in ks:
        k_eff = min(k, num_classes)
        # prior: the k most frequent train classes, ties broken by class id (stable sort)
        top = class_counts.float().argsort(descending=True, stable=True)[:k_eff]
        out[f"top{k}_prior"] = float(targets[:, top].amax(dim=1).float().mean())
        # uniform: 1 - P(none of the k distinct guesses is a label) = 1 - C(K-n,k)/C(K,k)
        miss = [
            math.comb(num_classes - int(n), k_eff) / math.comb(num_classes, k_eff)
            for n in labels_per_sample.tolist()
        ]
        out[f"top{k}_uniform"] = 1.0 - sum(miss) / max(1, len(miss))
    prevalence = targets.float().mean(dim=0)  # [K]
    present = prevalence > 0
    out["mAP"] = float(prevalence[present].mean()) if bool(present.any()) else math.nan
    return out


def most_frequent_label(targets: Any, class_counts: Any) -> Any:
    """targets [N, K], class_counts [K] -> [N]: each sample's label most frequent in train.

    Ties go to the lower class id (class ids run by count, so that is the head class).
    """
    num_classes = targets.shape[1]
    rank = class_counts.double() * num_classes * 2 - targets.new_tensor(range(num_classes))
    masked = targets.double() * (rank - rank.min() + 1)  # > 0 exactly on the labels
    return masked.argmax(dim=1)
