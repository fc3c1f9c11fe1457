"""train.models: every registered size builds as a timm ViT; the big shapes count right."""

from __future__ import annotations

import pytest
import torch

from curation.errors import UsageError
from train.models import SIZES, count_parameters, create_encoder, parse_name, resolve_image_size

SMALL = ["vit_pico_patch4", "vit_micro_patch4", "vit_mini_patch4", "vit_tiny_patch8"]


@pytest.mark.parametrize("name", SMALL)
def test_small_encoders_build_and_run(name: str) -> None:
    from timm.models.vision_transformer import VisionTransformer

    shape, patch = parse_name(name)
    model = create_encoder(name, 32, num_classes=7)
    assert isinstance(model, VisionTransformer)
    assert model.embed_dim == shape.embed_dim and len(model.blocks) == shape.depth
    assert model.patch_embed.patch_size == (patch, patch)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 7)
        features = model.forward_features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 1 + (32 // patch) ** 2, shape.embed_dim)


@pytest.mark.parametrize(
    ("name", "millions"),
    [("vit_base_patch16", 85.8), ("vit_large_patch16", 303.3), ("vit_huge_patch14", 630.8),
     ("vit_2b_patch14", 1890.4), ("vit_6.5b_patch14", 6447.6)],
)  # fmt: skip
def test_parameter_counts_on_meta(name: str, millions: float) -> None:
    with torch.device("meta"):
        model = create_encoder(name, 224)
    assert count_parameters(model) / 1e6 == pytest.approx(millions, abs=0.1)


def test_every_size_parses() -> None:
    for size in SIZES:
        assert parse_name(f"vit_{size}_patch16")[1] == 16


@pytest.mark.parametrize("name", ["resnet50", "vit_gigantic_patch14", "vit_base_patch0"])
def test_unknown_model_is_a_usage_error(name: str) -> None:
    with pytest.raises(UsageError):
        parse_name(name)


def test_image_size_must_tile_into_patches() -> None:
    with pytest.raises(UsageError, match="multiple"):
        create_encoder("vit_pico_patch16", 40)
    assert resolve_image_size("vit_pico_patch16", None, 70) == 64
    assert resolve_image_size("vit_pico_patch4", 24, 70) == 24


def test_matmul_patch_embed_equals_timm_convolution() -> None:
    """Same weights, same output and weight gradient as timm's convolutional PatchEmbed."""
    import torch
    from timm.layers import PatchEmbed

    from train.patch_embed import MatmulPatchEmbed

    torch.manual_seed(0)
    ours = MatmulPatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=24)
    conv = PatchEmbed(img_size=32, patch_size=8, in_chans=3, embed_dim=24)
    conv.load_state_dict(ours.state_dict())  # same names and shapes
    x = torch.randn(5, 3, 32, 32, dtype=torch.float64)
    ours, conv = ours.double(), conv.double()
    out, ref = ours(x), conv(x)
    assert out.shape == ref.shape == (5, 16, 24)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    out.square().sum().backward()
    ref.square().sum().backward()
    torch.testing.assert_close(ours.proj.weight.grad, conv.proj.weight.grad, rtol=0, atol=1e-9)
    torch.testing.assert_close(ours.proj.bias.grad, conv.proj.bias.grad, rtol=0, atol=1e-9)


def test_encoder_uses_matmul_patch_embed_with_timm_keys() -> None:
    from timm.models.vision_transformer import VisionTransformer

    from train.models import create_encoder
    from train.patch_embed import MatmulPatchEmbed

    encoder = create_encoder("vit_pico_patch4", 32)
    assert isinstance(encoder.patch_embed, MatmulPatchEmbed)
    plain = VisionTransformer(img_size=32, patch_size=4, num_classes=0, embed_dim=48, depth=2,
                              num_heads=3)  # fmt: skip
    assert plain.load_state_dict(encoder.state_dict(), strict=True)


def test_encoder_pickles() -> None:
    import pickle

    import torch

    from train.models import create_encoder

    encoder = create_encoder("vit_pico_patch4", 32).eval()
    copy = pickle.loads(pickle.dumps(encoder))
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(copy(images), encoder(images))
