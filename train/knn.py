"""Weighted kNN classification on frozen features, as DINO and MAE-style evaluations run it.

    votes = knn_votes(bank_x, bank_t, query_x, k=20, temperature=0.07)   # [Q, K]
    top1 = train.metrics.topk_hit_rate(votes, query_t, 1)

Features are L2-normalised, so similarity is cosine. Each query takes its k most similar
bank samples; neighbour j votes with weight exp(sim_j / temperature) for its labels. A bank
sample with several labels splits its vote equally among them (its multi-hot target divided
by its label count, as WSP's targets are), so a sample with many hashtags does not outvote
one with a single label. Hits are then counted as for top-k: any of the query's labels.

Shapes: bank_x [N, D], bank_t [N, K] multi-hot, query_x [Q, D] -> votes [Q, K].
"""

from __future__ import annotations

from typing import Any

KNN_K = 20
KNN_TEMPERATURE = 0.07  # DINO's value for cosine similarities


def knn_votes(
    bank_x: Any,
    bank_t: Any,
    query_x: Any,
    *,
    k: int = KNN_K,
    temperature: float = KNN_TEMPERATURE,
    chunk: int = 1024,
) -> Any:
    """Temperature-weighted class votes [Q, K] of each query's k nearest bank samples.

    k is capped at the bank size. Queries go in chunks of `chunk`, so memory stays at
    chunk * N similarities whatever Q is.
    """
    import torch

    bank = torch.nn.functional.normalize(bank_x.float(), dim=1)  # [N, D]
    share = bank_t.float() / bank_t.float().sum(dim=1, keepdim=True).clamp(min=1)  # [N, K]
    k = min(k, len(bank))
    out = []
    for start in range(0, len(query_x), chunk):
        query = torch.nn.functional.normalize(query_x[start : start + chunk].float(), dim=1)
        sim, index = (query @ bank.T).topk(k, dim=1)  # [q, k] each
        weight = (sim / temperature).exp()  # [q, k]
        # votes[q, c] = sum_j weight[q, j] * share[index[q, j], c], one neighbour rank at a
        # time: share[index] at once would be [q, k, K], too big for a large vocabulary
        votes = torch.zeros(len(query), share.shape[1])
        for j in range(k):
            votes += weight[:, j : j + 1] * share[index[:, j]]
        out.append(votes)
    return torch.cat(out) if out else query_x.new_zeros(0, bank_t.shape[1])
