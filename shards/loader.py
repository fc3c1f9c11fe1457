"""Stream a split of the shards as `(images, targets, weights)` batches for training and eval.

    loader = make_loader(read_manifest("DIR/shards"), "train", batch_size=64, image_size=32,
                         train=True, seed=0)
    for images, targets, weights in itertools.islice(loader, steps): ...

Each batch holds
    images:  [B, 3, S, S] float32, normalised with the ImageNet mean and std
    targets: [B, K] float32 multi-hot over the manifest's K classes (`class_ids` of the json)
    weights: [B] float32, the sample's class-balancing weight (`weight` of the json)

Two modes, one pipeline:
- `train=True`: an endless stream. Shards are drawn with replacement by a seeded RNG
  (webdataset's resampled shards), so every process and worker runs for as many steps as it
  is asked, and the trainer decides the length (`itertools.islice`, or `epoch_samples` for a
  fixed number of batches). Random-resized crop and horizontal flip; full batches only.
  `balance=True` repeats each sample floor(w) or ceil(w) times at random, so that in
  expectation it is seen `weight` times: class-balanced resampling in a stream.
- `train=False`: one deterministic pass over every sample of the split, in shard order
  (shards split across workers); resize + centre crop; the last batch may be short.

A corrupt sample (unreadable image, bad json) is skipped with a warning and the stream goes
on; a split with no shards is a `UsageError`.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Iterable, Iterator
from typing import Any

from curation.errors import UsageError
from shards.manifest import Manifest

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SHUFFLE_BUFFER = 2000  # samples held for in-stream shuffling (after the shard shuffle)


def _worker_rng(seed: int, salt: int) -> random.Random:
    """A RNG distinct per dataloader worker (and per use `salt`), reproducible from `seed`."""
    import torch.utils.data

    info = torch.utils.data.get_worker_info()
    worker = info.id if info is not None else 0
    return random.Random(hash((seed, salt, worker)))


def _parse_json(samples: Iterable[dict[str, Any]], handler: Any) -> Iterator[dict[str, Any]]:
    """Decode the `.json` member first, so that resampling never decodes a dropped image."""
    for sample in samples:
        try:
            sample["meta"] = json.loads(sample["json"])
        except (KeyError, ValueError) as err:
            if handler(err):
                continue
            raise
        yield sample


def _repeat_by_weight(samples: Iterable[dict[str, Any]], seed: int) -> Iterator[dict[str, Any]]:
    """Yield each sample k times, E[k] = its weight: floor(w), plus one with p = frac(w)."""
    rng = _worker_rng(seed, salt=1)
    for sample in samples:
        weight = max(float(sample["meta"].get("weight", 1.0)), 0.0)
        repeats = math.floor(weight) + (rng.random() < weight - math.floor(weight))
        for _ in range(repeats):
            yield sample


def _shuffle(samples: Iterable[Any], seed: int, bufsize: int) -> Iterator[Any]:
    """Buffer shuffle with a seeded per-worker RNG (webdataset's own seeds from the clock)."""
    rng = _worker_rng(seed, salt=2)
    buffer: list[Any] = []
    for sample in samples:
        if len(buffer) < bufsize:
            buffer.append(sample)
            continue
        index = rng.randrange(len(buffer))
        buffer[index], sample = sample, buffer[index]
        yield sample
    rng.shuffle(buffer)
    yield from buffer


def _to_tensors(
    samples: Iterable[dict[str, Any]], transform: Any, num_classes: int, handler: Any
) -> Iterator[tuple[Any, Any, float]]:
    """Raw sample -> (image [3, S, S], multi-hot [K], weight). Bad samples go to `handler`."""
    import torch
    from PIL import Image

    for sample in samples:
        try:
            ext = next(e for e in IMAGE_EXTENSIONS if e in sample)
            with Image.open(io.BytesIO(sample[ext])) as img:
                image = transform(img.convert("RGB"))
            class_ids = [int(c) for c in sample["meta"]["class_ids"]]
            if any(c < 0 or c >= num_classes for c in class_ids):
                raise ValueError(f"{sample['__key__']}: class id outside 0..{num_classes - 1}")
        except (StopIteration, OSError, ValueError, KeyError) as err:
            if handler(err):
                continue
            raise
        target = torch.zeros(num_classes, dtype=torch.float32)
        target[class_ids] = 1.0
        yield image, target, float(sample["meta"].get("weight", 1.0))


def _batch(
    items: Iterable[tuple[Any, Any, float]], batch_size: int, partial: bool
) -> Iterator[tuple[Any, Any, Any]]:
    """Stack `batch_size` items into (images [B,3,S,S], targets [B,K], weights [B])."""
    import torch

    def stack(group: list[tuple[Any, Any, float]]) -> tuple[Any, Any, Any]:
        images, targets, weights = zip(*group, strict=True)
        return torch.stack(images), torch.stack(targets), torch.tensor(weights)

    group: list[tuple[Any, Any, float]] = []
    for item in items:
        group.append(item)
        if len(group) == batch_size:
            yield stack(group)
            group = []
    if group and partial:
        yield stack(group)


def image_transform(image_size: int, *, train: bool, min_scale: float = 0.2) -> Any:
    """PIL image -> [3, S, S] float32 normalised. Train: random-resized crop + flip."""
    from torchvision import transforms as T

    bicubic = T.InterpolationMode.BICUBIC
    if train:
        geometry = [
            T.RandomResizedCrop(image_size, scale=(min_scale, 1.0), interpolation=bicubic),
            T.RandomHorizontalFlip(),
        ]
    else:  # resize so the crop keeps the usual 224/256 border, then the centre
        geometry = [
            T.Resize(int(round(image_size * 256 / 224)), interpolation=bicubic),
            T.CenterCrop(image_size),
        ]
    return T.Compose([*geometry, T.ToTensor(), T.Normalize(IMAGE_MEAN, IMAGE_STD)])


def make_loader(
    manifest: Manifest,
    split: str,
    *,
    batch_size: int,
    image_size: int,
    train: bool,
    seed: int = 0,
    num_workers: int = 0,
    epoch_samples: int | None = None,
    balance: bool = False,
    min_scale: float = 0.2,
) -> Iterable[tuple[Any, Any, Any]]:
    """An iterable of `(images [B,3,S,S], targets [B,K], weights [B])` over `split`.

    train=True: endless (or `epoch_samples // batch_size` batches when given), shuffled by
    `seed`, augmented, full batches. train=False: every sample exactly once, in order.
    """
    import torch
    import webdataset as wds

    urls = manifest.paths(split)
    if not urls:
        raise UsageError(f"no {split} shards in {manifest.folder}/manifest.json")
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    transform = image_transform(image_size, train=train, min_scale=min_scale)
    skip = wds.warn_and_continue  # a bad sample is skipped; the stream goes on

    if train:
        stages: list[Any] = [
            # shard names, drawn with replacement forever; the seed fixes the order per worker
            wds.ResampledShards(urls, seed=seed, deterministic=True),
            # shard url -> {"__key__", "jpg": bytes, "json": bytes, "txt": bytes}
            wds.tarfile_to_samples(handler=skip),
            # "json" bytes -> sample["meta"] dict (class_ids, weight, ...)
            wds.pipelinefilter(_parse_json)(skip),
        ]
        if balance:  # a sample of weight w is kept floor(w) or ceil(w) times
            stages.append(wds.pipelinefilter(_repeat_by_weight)(seed))
        stages += [
            # mix samples from the shards in flight, so a batch is not one shard's run
            wds.pipelinefilter(_shuffle)(seed, SHUFFLE_BUFFER),
        ]
    else:
        num_workers = min(num_workers, len(urls))  # a worker with no shard would idle
        stages = [
            wds.SimpleShardList(urls),  # each shard once, in manifest order
            wds.split_by_worker,
            wds.tarfile_to_samples(handler=skip),
            wds.pipelinefilter(_parse_json)(skip),
        ]
    stages += [
        # bytes -> (image [3,S,S] normalised, multi-hot [K], weight): crop/flip or centre crop
        wds.pipelinefilter(_to_tensors)(transform, manifest.num_classes, skip),
        # -> (images [B,3,S,S], targets [B,K], weights [B]); train drops the short tail
        wds.pipelinefilter(_batch)(batch_size, not train),
    ]
    pipeline = wds.DataPipeline(*stages)
    # batches are made inside the workers; the loader only moves them (batch_size=None)
    loader = wds.WebLoader(
        pipeline,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )
    if train and epoch_samples is not None:
        loader = loader.with_epoch(max(1, epoch_samples // batch_size))
    return loader
