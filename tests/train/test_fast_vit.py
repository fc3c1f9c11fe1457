"""train.fast_vit: split q/k/v attention equals timm's; the bf16 residual cast only acts
under autocast; state dicts and timm loading are untouched."""

from __future__ import annotations

import pickle

import pytest
import torch
from timm.models.vision_transformer import Attention

from train.fast_vit import AutocastResidual, SplitQkvAttention, apply_speedups
from train.mae import MaskedAutoencoder
from train.models import create_encoder


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    plain = create_encoder("vit_micro_patch4", 32, num_classes=7).double()
    fast = create_encoder("vit_micro_patch4", 32, num_classes=7).double()
    fast.load_state_dict(plain.state_dict())
    apply_speedups(fast, bf16_residual=True, split_qkv=True)
    return plain, fast


def test_split_qkv_forward_and_gradients_equal_timm() -> None:
    plain, fast = _pair()
    assert sum(type(m) is SplitQkvAttention for m in fast.modules()) == 4
    assert not any(type(m) is Attention for m in fast.modules())
    images = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    called = []  # the split path reads qkv.weight's row blocks, never calls the qkv module
    for module in fast.modules():
        if type(module) is SplitQkvAttention:
            module.qkv.register_forward_hook(lambda m, i, o: called.append(m))
    out_plain, out_fast = plain(images), fast(images)
    assert called == []  # not timm's forward under another name
    torch.testing.assert_close(out_fast, out_plain, rtol=0, atol=1e-12)
    out_plain.square().sum().backward()
    out_fast.square().sum().backward()
    grads = dict(fast.named_parameters())
    for name, p in plain.named_parameters():
        torch.testing.assert_close(grads[name].grad, p.grad, rtol=0, atol=1e-10, msg=name)
    assert grads["blocks.0.attn.qkv.weight"].grad.abs().sum() > 0


def test_state_dict_names_unchanged_and_pickles() -> None:
    plain, fast = _pair()
    assert list(fast.state_dict()) == list(plain.state_dict())
    clone = pickle.loads(pickle.dumps(fast))
    assert type(clone.blocks[0].attn) is SplitQkvAttention
    assert isinstance(clone.norm_pre, AutocastResidual)


def test_residual_cast_only_under_autocast() -> None:
    _, fast = _pair()
    tokens = torch.randn(2, 5, 96)
    assert AutocastResidual()(tokens) is tokens  # fp32 training: untouched
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert AutocastResidual()(tokens).dtype == torch.bfloat16
    seen = []
    fast.float().blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast(torch.randn(2, 3, 32, 32))
    fast(torch.randn(2, 3, 32, 32))
    assert seen == [torch.bfloat16, torch.float32]


def test_mae_encoder_uses_the_residual_cast() -> None:
    torch.manual_seed(0)
    mae = MaskedAutoencoder(create_encoder("vit_micro_patch4", 32), decoder_dim=32,
                            decoder_depth=1, decoder_heads=2)  # fmt: skip
    apply_speedups(mae, bf16_residual=True, split_qkv=True)
    seen = []
    mae.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = mae(torch.randn(2, 3, 32, 32), 0.75)[0]
    loss.backward()
    assert seen == [torch.bfloat16]
    assert torch.isfinite(loss) and mae.encoder.blocks[0].attn.qkv.weight.grad is not None


@pytest.mark.parametrize("options", [{"split_qkv": True}, {"bf16_residual": True}])
def test_each_option_alone(options: dict[str, bool]) -> None:
    model = apply_speedups(create_encoder("vit_pico_patch4", 32), **options)
    split = any(type(m) is SplitQkvAttention for m in model.modules())
    assert split == options.get("split_qkv", False)
    assert isinstance(model.norm_pre, AutocastResidual) == options.get("bf16_residual", False)
