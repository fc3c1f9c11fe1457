"""train.mae: shapes, exact mask ratio, fixed position embeddings, a loss that falls."""

from __future__ import annotations

import pytest
import torch

from shards.loader import make_loader
from shards.manifest import read_manifest
from train.mae import MaskedAutoencoder, sincos_pos_embed
from train.models import create_encoder
from train.optim import create_optimizer


def tiny_mae() -> MaskedAutoencoder:
    torch.manual_seed(0)
    return MaskedAutoencoder(create_encoder("vit_pico_patch4", 32), 64, 2, 4)


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.9])
def test_forward_shapes_and_exact_mask_ratio(ratio: float) -> None:
    mae = tiny_mae()
    imgs = torch.randn(4, 3, 32, 32)
    loss, pred, mask = mae(imgs, mask_ratio=ratio)
    assert loss.shape == () and loss.item() > 0
    assert pred.shape == (4, 64, 4 * 4 * 3) and mask.shape == (4, 64)
    removed = 64 - int(64 * (1 - ratio))
    assert torch.all(mask.sum(dim=1) == removed)
    assert not torch.equal(mask[0], mask[1])  # a fresh random subset per sample
    latent, _, _ = mae.forward_encoder(imgs, ratio)
    assert latent.shape == (4, 1 + 64 - removed, 48)  # visible-only encoder + cls


def test_patchify_round_trip_and_sincos() -> None:
    mae = tiny_mae()
    imgs = torch.randn(2, 3, 32, 32)
    assert torch.equal(mae.unpatchify(mae.patchify(imgs)), imgs)
    # the first patch is the top-left 4x4 block, pixels in (row, col, channel) order
    assert torch.equal(mae.patchify(imgs)[0, 0], imgs[0, :, :4, :4].permute(1, 2, 0).reshape(-1))
    emb = sincos_pos_embed(48, 8)
    assert emb.shape == (65, 48) and torch.all(emb[0] == 0)
    assert torch.allclose(emb[1:].norm(dim=1), torch.full((64,), 24**0.5), atol=1e-5)


def test_loss_falls_and_pos_embed_stays_fixed(shards_dir) -> None:
    mae = tiny_mae()
    loader = make_loader(read_manifest(shards_dir), "train", batch_size=32, image_size=32,
                         train=False)  # fmt: skip
    imgs = next(iter(loader))[0]
    pos_before = mae.encoder.pos_embed.detach().clone()
    opt = create_optimizer(mae, lr=2e-3, weight_decay=0.05, betas=(0.9, 0.95))
    losses = []
    for _ in range(30):
        loss, _, _ = mae(imgs, 0.75)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert torch.equal(mae.encoder.pos_embed, pos_before)
    assert torch.equal(pos_before[0, 1:], sincos_pos_embed(48, 8)[1:])


def test_checkpoint_state_uses_timm_keys() -> None:
    mae = tiny_mae()
    state = mae.checkpoint_state()
    encoder_keys = set(create_encoder("vit_pico_patch4", 32).state_dict())
    assert encoder_keys <= set(state)
    assert all(k.startswith("decoder.") for k in set(state) - encoder_keys)
    assert "decoder.mask_token" in state and "decoder.pred.weight" in state


def test_reconstruct_undoes_norm_pix() -> None:
    mae = tiny_mae()
    imgs = torch.randn(2, 3, 32, 32)
    target = mae.patchify(imgs)
    normed = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6) ** 0.5
    assert torch.allclose(mae.reconstruct(imgs, normed), imgs, atol=1e-4)
