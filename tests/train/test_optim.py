"""train.optim: parameter groups and the warmup + cosine schedule."""

from __future__ import annotations

import pytest

from train.mae import MaskedAutoencoder
from train.models import create_encoder
from train.optim import CosineSchedule, create_optimizer, param_groups, peak_lr


def test_no_decay_on_norms_biases_tokens_and_frozen_left_out() -> None:
    mae = MaskedAutoencoder(create_encoder("vit_pico_patch4", 32), 32, 1, 4)
    names = {id(p): n for n, p in mae.named_parameters()}
    decay, no_decay = param_groups(mae.named_parameters(), 0.05)
    decay_names = {names[id(p)] for p in decay["params"]}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    assert "encoder.cls_token" in no_decay_names and "decoder.mask_token" in no_decay_names
    assert "encoder.blocks.0.norm1.weight" in no_decay_names
    assert "encoder.blocks.0.attn.qkv.bias" in no_decay_names
    assert "encoder.blocks.0.attn.qkv.weight" in decay_names
    assert "encoder.patch_embed.proj.weight" in decay_names
    # the fixed sin-cos embeddings are not trained at all
    assert "encoder.pos_embed" not in decay_names | no_decay_names
    assert "decoder.pos_embed" not in decay_names | no_decay_names
    trainable = {n for n, p in mae.named_parameters() if p.requires_grad}
    assert decay_names | no_decay_names == trainable
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.05, 0.0)
    opt = create_optimizer(mae, lr=1e-3, weight_decay=0.05, betas=(0.9, 0.95))
    assert opt.defaults["betas"] == (0.9, 0.95)


def test_schedule_warms_up_then_follows_a_cosine() -> None:
    lr = peak_lr(1.5e-4, 512)
    assert lr == pytest.approx(3e-4)
    s = CosineSchedule(peak=lr, total_steps=110, warmup_steps=10)
    assert s.lr_at(0) == pytest.approx(lr / 10)
    assert s.lr_at(9) == pytest.approx(lr)
    assert s.lr_at(10) == pytest.approx(lr)
    assert s.lr_at(60) == pytest.approx(lr / 2)
    assert s.lr_at(110) == pytest.approx(0.0, abs=1e-12)
    values = [s.lr_at(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
