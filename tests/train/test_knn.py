"""train.knn: DINO-style weighted kNN votes, checked against hand-built banks and a loop."""

from __future__ import annotations

import math

import torch

from train.knn import knn_votes


def test_votes_are_temperature_weighted_cosine_neighbours() -> None:
    bank_x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    bank_t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    query = torch.tensor([[2.0, 0.0], [-3.0, 0.0]])  # lengths differ: only the angle counts
    votes = knn_votes(bank_x, bank_t, query, k=2, temperature=0.5)
    # query 0: bank 0 (cos 1) and bank 1 (cos 0.8), both label 0
    assert torch.allclose(votes[0], torch.tensor([math.exp(1 / 0.5) + math.exp(0.8 / 0.5), 0.0]))
    # query 1: bank 3 (cos 1, two labels: half a vote each) and bank 2 (cos 0)
    half = 0.5 * math.exp(1 / 0.5)
    assert torch.allclose(votes[1], torch.tensor([half, half + math.exp(0.0)]))


def test_votes_match_a_plain_loop_and_do_not_depend_on_chunking() -> None:
    gen = torch.Generator().manual_seed(0)
    bank_x, query = torch.randn(50, 8, generator=gen), torch.randn(7, 8, generator=gen)
    bank_t = (torch.rand(50, 4, generator=gen) < 0.4).float()
    k, temperature = 5, 0.1
    expected = torch.zeros(7, 4)
    for q in range(7):
        sims = [float(torch.cosine_similarity(query[q], b, dim=0)) for b in bank_x]
        for j in sorted(range(50), key=lambda j: -sims[j])[:k]:
            labels = float(bank_t[j].sum())
            if labels:
                expected[q] += math.exp(sims[j] / temperature) * bank_t[j] / labels
    for chunk in (1, 3, 1024):
        votes = knn_votes(bank_x, bank_t, query, k=k, temperature=temperature, chunk=chunk)
        assert torch.allclose(votes, expected, rtol=1e-4)


def test_k_is_capped_at_the_bank_size() -> None:
    bank_x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bank_t = torch.eye(2)
    votes = knn_votes(bank_x, bank_t, torch.tensor([[1.0, 0.0]]), k=20, temperature=1.0)
    assert torch.allclose(votes, torch.tensor([[math.e, 1.0]]))
