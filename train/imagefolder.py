"""Eval images from a folder laid out as ImageNet's: one subfolder per WordNet synset.

    DIR/n02084071/any-name.jpg
    DIR/n02121808/...

Subfolder names must be wnids (`n########`); files with an image extension (jpg, jpeg, png,
webp, any case) are the samples, read in (wnid, file name) order. A sample's label is its
folder's wnid, mapped onto `class_wnids` (the checkpoint's vocabulary, then any wnid of the
folder outside it), so batches look like the shard loader's:

    images:  [B, 3, S, S] uint8, resize + centre crop (as for val shards); the consumer
             normalises them on its device (shards.loader.device_batch)
    targets: [B, len(class_wnids)] float32 one-hot
    weights: [B] float32 ones

An image that cannot be decoded is skipped with a warning. An empty folder, or a subfolder
that is not a wnid, is a UsageError.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from train.zeroshot import WNID

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass(frozen=True)
class ImageFolder:
    folder: Path
    samples: tuple[tuple[Path, str], ...]  # (image path, wnid), in reading order

    @classmethod
    def scan(cls, folder: str | Path) -> ImageFolder:
        folder = Path(folder)
        if not folder.is_dir():
            raise UsageError(f"--image-folder {folder}: no such folder")
        samples = []
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            if not WNID.fullmatch(sub.name):
                raise UsageError(
                    f"--image-folder {folder}: subfolder {sub.name!r} is not a wnid (n########)"
                )
            images = sorted(p for p in sub.iterdir() if p.suffix.lower() in EXTENSIONS)
            samples += [(p, sub.name) for p in images]
        if not samples:
            raise UsageError(f"--image-folder {folder}: no images in wnid subfolders")
        return cls(folder, tuple(samples))

    @property
    def wnids(self) -> list[str]:
        """The folder's wnids, sorted, each once."""
        return sorted({wnid for _, wnid in self.samples})

    def batches(
        self, class_wnids: list[str], *, batch_size: int, image_size: int, num_workers: int = 0
    ) -> Iterable[tuple[Any, Any, Any]]:
        """`(images, targets, weights)` batches over every sample once, in reading order."""
        import torch

        from shards.loader import image_transform

        index = {w: i for i, w in enumerate(class_wnids)}
        missing = sorted(set(self.wnids) - index.keys())
        if missing:
            raise ValueError(f"class_wnids lacks the folder's {missing[:3]}")
        dataset = _Images(self.samples, index, image_transform(image_size, train=False))
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
            collate_fn=_collate_decoded, pin_memory=torch.cuda.is_available(),
        )  # fmt: skip


class _Images:
    """Map-style dataset: i -> (image [3,S,S] uint8, one-hot [K], 1.0), None if undecodable."""

    def __init__(self, samples: tuple[tuple[Path, str], ...], index: dict, transform: Any):
        self.samples, self.index, self.transform = samples, index, transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[Any, Any, float] | None:
        import torch
        from PIL import Image

        path, wnid = self.samples[i]
        try:
            with Image.open(path) as img:
                image = self.transform(img.convert("RGB"))
        except OSError as err:
            warnings.warn(f"{path}: skipped, not a readable image ({err})", stacklevel=1)
            return None
        target = torch.zeros(len(self.index))
        target[self.index[wnid]] = 1.0
        return image, target, 1.0


def _collate_decoded(items: list) -> tuple[Any, Any, Any]:
    """Stack the decoded items of a batch, dropping the undecodable (None) ones."""
    import torch

    kept = [item for item in items if item is not None]
    if not kept:
        return torch.zeros(0, 3, 1, 1, dtype=torch.uint8), torch.zeros(0, 0), torch.zeros(0)
    images, targets, weights = zip(*kept, strict=True)
    return torch.stack(images), torch.stack(targets), torch.tensor(weights)
