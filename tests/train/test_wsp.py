"""train.wsp and train.checkpoint: the normalised multi-hot loss; init from MAE, strictly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from curation.errors import UsageError
from shards.loader import make_loader
from shards.manifest import read_manifest
from train.checkpoint import read_info, save_checkpoint
from train.mae import MaskedAutoencoder
from train.models import create_encoder
from train.optim import create_optimizer
from train.wsp import create_wsp_model, multilabel_softmax_loss


def test_loss_spreads_one_unit_over_the_positives() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5], [0.0, 0.0, 0.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    loss = multilabel_softmax_loss(logits, targets)
    ce = torch.nn.functional.cross_entropy(logits[:1], torch.tensor([0]))
    assert loss[0] == pytest.approx(ce.item())  # one label: plain cross-entropy
    assert loss[1] == pytest.approx(math.log(4))  # -(0.5 log 1/4 + 0.5 log 1/4)
    smoothed = multilabel_softmax_loss(logits[1:], targets[1:], label_smoothing=0.2)
    assert smoothed[0] == pytest.approx(math.log(4))  # uniform logits: any target gives log K


def mae_checkpoint(path: Path, image_size: int = 32) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    mae = MaskedAutoencoder(create_encoder("vit_pico_patch4", image_size), 32, 1, 4)
    with torch.no_grad():  # make every tensor distinct from a fresh init
        for p in mae.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    save_checkpoint(path, mae.checkpoint_state(), kind="mae", model="vit_pico_patch4",
                    image_size=image_size, num_classes=0, config={"test": True})  # fmt: skip
    return mae.checkpoint_state()


def test_init_from_mae_is_bit_identical_and_head_fresh(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint-000010.safetensors"
    state = mae_checkpoint(path)
    info = read_info(path)
    assert (info.kind, info.model, info.image_size, info.config) == (
        "mae", "vit_pico_patch4", 32, {"test": True})  # fmt: skip
    model, fresh = create_wsp_model("vit_pico_patch4", 32, num_classes=5, init=path)
    assert fresh == ["head.bias", "head.weight"]
    loaded = model.state_dict()
    for key, value in state.items():
        if key.startswith("decoder."):
            assert key not in loaded
        else:
            assert torch.equal(loaded[key], value), key
    assert loaded["head.weight"].shape == (5, 48)


def test_init_resamples_pos_embed_for_another_resolution(tmp_path: Path) -> None:
    path = tmp_path / "mae.safetensors"
    state = mae_checkpoint(path, image_size=32)
    model, _ = create_wsp_model("vit_pico_patch4", 48, num_classes=5, init=path)
    assert model.pos_embed.shape == (1, 1 + 12 * 12, 48)
    assert torch.equal(model.pos_embed[0, 0], state["pos_embed"][0, 0])  # cls slot kept
    assert torch.equal(model.blocks[0].attn.qkv.weight, state["blocks.0.attn.qkv.weight"])


def test_init_refuses_missing_or_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "mae.safetensors"
    mae_checkpoint(path)
    tensors = load_file(str(path))
    del tensors["norm.weight"]
    broken = tmp_path / "broken.safetensors"
    save_file(tensors, str(broken), metadata={"kind": "mae", "model": "vit_pico_patch4",
                                              "image_size": "32"})  # fmt: skip
    with pytest.raises(UsageError, match="missing.*norm.weight"):
        create_wsp_model("vit_pico_patch4", 32, num_classes=5, init=broken)
    with pytest.raises(UsageError, match="shapes differ|missing"):
        create_wsp_model("vit_micro_patch4", 32, num_classes=5, init=path)


def test_foreign_file_is_a_usage_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain))
    with pytest.raises(UsageError, match="no mawskit metadata"):
        read_info(plain)
    with pytest.raises(UsageError, match="no checkpoint"):
        read_info(tmp_path / "nothing.safetensors")


def test_wsp_loss_falls(shards_dir: Path) -> None:
    torch.manual_seed(0)
    loader = make_loader(read_manifest(shards_dir), "train", batch_size=64, image_size=32,
                         train=False)  # fmt: skip
    images, targets, _ = next(iter(loader))
    model, _ = create_wsp_model("vit_pico_patch4", 32, num_classes=5)
    opt = create_optimizer(model, lr=1e-3, weight_decay=0.05)
    losses = []
    for _ in range(30):
        loss = multilabel_softmax_loss(model(images), targets).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.3  # about log 5 at the start
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0]
