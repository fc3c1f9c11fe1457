"""ViT encoder shapes by name, built as timm `VisionTransformer`s so checkpoints load in timm.

A name is `vit_{size}_patch{P}`: the size fixes (embed_dim, depth, heads), the patch size is
parsed from the name, so `vit_tiny_patch4` is ViT-Ti with 4x4 patches (for 32 px images).

    encoder = create_encoder("vit_base_patch16", image_size=224)   # ~86M parameters
    features = encoder.forward_features(images)   # images [N, 3, S, S] -> [N, 1 + L, D]

The MAWS shapes (ViT-2B, ViT-6.5B) are here as well; build them under
`torch.device("meta")` to count parameters without allocating memory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from curation.errors import UsageError


@dataclass(frozen=True)
class EncoderShape:
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float = 4.0


# size -> shape. tiny..huge as in ViT/DeiT; 2b and 6.5b as in MAWS (Singh et al. 2023,
# table 1: width 2560 / 4096, MLP 10240 / 16384). pico/micro/mini are CPU-sized for tests
# and demos: 32 px images at patch 4 give 64 tokens.
SIZES: dict[str, EncoderShape] = {
    "pico": EncoderShape(embed_dim=48, depth=2, num_heads=3),
    "micro": EncoderShape(embed_dim=96, depth=4, num_heads=3),
    "mini": EncoderShape(embed_dim=128, depth=6, num_heads=4),
    "tiny": EncoderShape(embed_dim=192, depth=12, num_heads=3),
    "small": EncoderShape(embed_dim=384, depth=12, num_heads=6),
    "base": EncoderShape(embed_dim=768, depth=12, num_heads=12),
    "large": EncoderShape(embed_dim=1024, depth=24, num_heads=16),
    "huge": EncoderShape(embed_dim=1280, depth=32, num_heads=16),
    "2b": EncoderShape(embed_dim=2560, depth=24, num_heads=32),
    "6.5b": EncoderShape(embed_dim=4096, depth=32, num_heads=32),
}

# the names `--model` suggests; any size with any `_patchN` is accepted
MODEL_NAMES = (
    "vit_pico_patch4", "vit_micro_patch4", "vit_mini_patch4", "vit_tiny_patch4",
    "vit_tiny_patch16", "vit_small_patch16", "vit_base_patch16", "vit_large_patch16",
    "vit_huge_patch14", "vit_2b_patch14", "vit_6.5b_patch14",
)  # fmt: skip

_NAME = re.compile(r"^vit_(?P<size>[a-z0-9.]+)_patch(?P<patch>\d+)$")


def parse_name(name: str) -> tuple[EncoderShape, int]:
    """`vit_{size}_patch{P}` -> (shape, patch size); UsageError for anything else."""
    match = _NAME.match(name)
    if match is None or match["size"] not in SIZES:
        raise UsageError(
            f"unknown model {name!r}: use vit_{{size}}_patch{{P}} with size one of "
            f"{', '.join(SIZES)} (e.g. {MODEL_NAMES[1]}, vit_base_patch16)"
        )
    patch = int(match["patch"])
    if patch < 1:
        raise UsageError(f"model {name!r}: patch size must be at least 1")
    return SIZES[match["size"]], patch


def patch_size_of(name: str) -> int:
    return parse_name(name)[1]


def check_image_size(name: str, image_size: int) -> None:
    """The image must tile into whole patches (MAE masks whole patches)."""
    patch = patch_size_of(name)
    if image_size < patch or image_size % patch:
        raise UsageError(
            f"image size {image_size} is not a multiple of {name}'s patch size {patch}"
        )


def create_encoder(name: str, image_size: int, num_classes: int = 0, drop_path: float = 0.0) -> Any:
    """A timm `VisionTransformer`: cls-token pooling, learnt-slot position embedding, the
    patch embedding as a matmul (train.patch_embed; same weights as timm's).

    num_classes=0 gives no head (`forward` returns the cls feature [N, D]); otherwise a
    linear head [D -> num_classes]. Built on the current default device (`meta` works).
    """
    from timm.models.vision_transformer import VisionTransformer

    from train.patch_embed import MatmulPatchEmbed

    shape, patch = parse_name(name)
    check_image_size(name, image_size)
    return VisionTransformer(
        img_size=image_size,
        patch_size=patch,
        embed_layer=MatmulPatchEmbed,
        num_classes=num_classes,
        global_pool="token",
        embed_dim=shape.embed_dim,
        depth=shape.depth,
        num_heads=shape.num_heads,
        mlp_ratio=shape.mlp_ratio,
        drop_path_rate=drop_path,
    )


def count_parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def resolve_image_size(name: str, requested: int | None, stored: int) -> int:
    """The training resolution: `requested`, or the shards' stored size rounded down to whole
    patches (the crop never upsamples beyond what the shards hold)."""
    patch = patch_size_of(name)
    size = requested if requested is not None else stored - stored % patch
    check_image_size(name, size)
    return size
