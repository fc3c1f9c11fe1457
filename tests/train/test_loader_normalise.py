"""shards.loader normalises once per batch (uint8 -> float): same pixels as per-image ToTensor;
the trainer's uint8 hand-off (normalised after the device copy) gives the same bits."""

from __future__ import annotations

import io
import itertools
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

from shards.loader import IMAGE_MEAN, IMAGE_STD, device_batch, make_loader, normalise_batch
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


@pytest.mark.parametrize("train", [True, False])
def test_uint8_batches_normalised_on_the_device_equal_the_cpu_path(
    shards_dir: Path, train: bool
) -> None:
    manifest = read_manifest(shards_dir)
    args = {"batch_size": 16, "image_size": 24, "train": train, "seed": 3}
    cpu = list(itertools.islice(make_loader(manifest, "val", **args), 3))
    raw = list(itertools.islice(make_loader(manifest, "val", **args, normalise=False), 3))
    assert len(cpu) == len(raw) == 3
    for floats, pixels in zip(cpu, raw, strict=True):
        assert pixels[0].dtype == torch.uint8 and pixels[0].shape == (16, 3, 24, 24)
        moved = device_batch(pixels, torch.device("cpu"))
        assert moved[0].dtype == torch.float32
        for ours, theirs in zip(moved, floats, strict=True):
            assert torch.equal(ours, theirs)  # bit for bit, targets and weights too


def test_training_loop_sees_the_normalised_batch(shards_dir: Path, tmp_path: Path) -> None:
    """run_steps takes the uint8 stream the trainer builds and hands the model the floats."""
    from train.engine import Dist
    from train.loop import LoopPlan, run_steps
    from train.optim import CosineSchedule

    manifest = read_manifest(shards_dir)
    args = {"batch_size": 8, "image_size": 16, "train": True, "seed": 1}
    expected = list(itertools.islice(make_loader(manifest, "train", **args), 2))
    model = torch.nn.Linear(3 * 16 * 16, 5)
    seen: list[torch.Tensor] = []

    def step_loss(batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        seen.append(batch[0].clone())
        return model(batch[0].flatten(1)).logsumexp(dim=1).mean()

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    plan = LoopPlan(steps=2, batch_size=8, log_every=1)
    run_steps(make_loader(manifest, "train", **args, normalise=False), step_loss, model,
              optimizer, CosineSchedule(0.1, 2, 0), plan, tmp_path, lambda step: None,
              dist=Dist(0, 1, 0, torch.device("cpu")), params=list(model.parameters()))  # fmt: skip
    assert len(seen) == 2
    for ours, (theirs, _, _) in zip(seen, expected, strict=True):
        assert ours.dtype == torch.float32 and torch.equal(ours, theirs)
