"""shards.loader normalises once per batch (uint8 -> float): same pixels as per-image ToTensor."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import torch
from PIL import Image
from torchvision import transforms as T

from shards.loader import IMAGE_MEAN, IMAGE_STD, make_loader, normalise_batch
from shards.manifest import read_manifest


def test_normalise_batch_matches_to_tensor_and_normalize() -> None:
    pixels = torch.arange(256, dtype=torch.uint8).repeat(3, 1).view(1, 3, 16, 16)
    expected = T.Normalize(IMAGE_MEAN, IMAGE_STD)(pixels.float() / 255)
    out = normalise_batch(pixels)
    assert out.dtype == torch.float32 and out.shape == (1, 3, 16, 16)
    assert torch.allclose(out, expected, atol=1e-6)


def test_eval_batch_equals_the_per_image_torchvision_pipeline(shards_dir: Path) -> None:
    size = 24
    bicubic = T.InterpolationMode.BICUBIC
    reference = T.Compose([T.Resize(round(size * 256 / 224), interpolation=bicubic),
                           T.CenterCrop(size), T.ToTensor(),
                           T.Normalize(IMAGE_MEAN, IMAGE_STD)])  # fmt: skip
    with tarfile.open(shards_dir / "val-000000.tar") as tar:
        jpegs = [tar.extractfile(m).read() for m in tar if m.name.endswith(".jpg")][:8]
    expected = torch.stack([reference(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs])
    loader = make_loader(read_manifest(shards_dir), "val", batch_size=8, image_size=size,
                         train=False)  # fmt: skip
    images, _, _ = next(iter(loader))
    assert images.dtype == torch.float32 and images.is_contiguous()
    assert torch.allclose(images, expected, atol=1e-5)
