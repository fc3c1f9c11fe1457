"""Stream a split of the shards as `(images, targets, weights)` batches for training and eval.

    loader = make_loader(read_manifest("DIR/shards"), "train", batch_size=64, image_size=32,
                         train=True, seed=0, rank=0, world_size=1, start_batch=0)
    for images, targets, weights in itertools.islice(loader, steps): ...

Each batch holds
    images:  [B, 3, S, S] float32, normalised with the ImageNet mean and std; or, with
             `normalise=False` (the trainer), the uint8 pixels, which `device_batch` copies
             to the GPU (4x fewer bytes than float32) and normalises there
    targets: [B, K] float32 multi-hot over the manifest's K classes (`class_ids` of the json)
    weights: [B] float32, the sample's class-balancing weight (`weight` of the json)

Two modes, one pipeline:
- `train=True`: an endless stream per (rank, worker). Each stream draws shards with
  replacement, in proportion to their sample counts, from its own seeded RNG (resampled
  shards), so every rank runs for exactly as many steps as it is asked whatever the shards'
  sizes; `epoch_samples` (global) fixes an epoch at `epoch_samples // (B * world_size)`
  batches per rank. Random-resized crop and horizontal flip; full batches only.
  `balance=True` repeats each sample floor(w) or ceil(w) times at random, so that in
  expectation it is seen `weight` times: class-balanced resampling in a stream.
- `train=False`: one deterministic pass over every sample of the split, in shard order
  (shards split across workers); resize + centre crop; the last batch may be short.

Determinism and position: everything random in the train stream (shard draws, repeats,
shuffle buffer, crop and flip) comes from RNGs seeded by (seed, stream, ...), the crop's by
the sample's index in its stream. Stream id = rank * max(1, num_workers) + worker; the
DataLoader takes batches from its workers round-robin, so the rank's batch i is worker
i % W's batch i // W. A rank's position is therefore one number, the batches it has
consumed; `start_batch=n` continues the same sequence after n batches, skipping the raw
samples before decoding (cheap: no image is decoded for a skipped batch).

A corrupt sample (unreadable image, bad json) is skipped with a warning and the stream goes
on; a split with no shards is a `UsageError`.
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from curation.errors import UsageError
from shards.manifest import Manifest

IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SHUFFLE_BUFFER = 2000  # samples held for in-stream shuffling (after the shard draw)
CROP_RATIO = (3 / 4, 4 / 3)


def _worker() -> tuple[int, int]:
    """(this dataloader worker's id, number of workers); (0, 1) in the main process."""
    import torch.utils.data

    info = torch.utils.data.get_worker_info()
    return (info.id, info.num_workers) if info is not None else (0, 1)


@dataclass(frozen=True)
class StreamKey:
    """What makes a train stream reproducible: seed, rank, and the batches already consumed.

    The loader's worker k serves the rank's batches k, k + W, ... counted from `start_batch`,
    so it plays logical worker (k + start_batch) % W of the uninterrupted run.
    """

    seed: int
    rank: int
    start_batch: int = 0

    def logical_worker(self) -> tuple[int, int]:
        worker, workers = _worker()
        return (worker + self.start_batch) % workers, workers

    def stream(self) -> int:
        logical, workers = self.logical_worker()
        return self.rank * workers + logical

    def rng(self, salt: int) -> random.Random:
        """A RNG per stream and use; tuples of ints hash the same in every process."""
        return random.Random(hash((self.seed, salt, self.stream())))


def _resampled_shards(urls: list[str], counts: list[int], key: StreamKey) -> Iterator[dict]:
    """Shard urls forever, drawn with replacement in proportion to their sample counts."""
    rng = key.rng(0)
    weights = [max(c, 1) for c in counts]
    while True:
        yield {"url": rng.choices(urls, weights=weights)[0]}


def _read_tars(sources: Iterable[dict[str, str]], handler: Any) -> Iterator[dict[str, Any]]:
    """{"url": local tar path} -> samples {"__key__", "__url__", ext: bytes, ...}.

    Random-access tar reading (header, then one read per member) of local files: about 3x
    less Python work per sample than webdataset's streaming reader, which copies every
    byte through 512-byte records. Members group into a sample by the name before the
    first dot, as webdataset groups them.
    """
    import tarfile

    for source in sources:
        url = source["url"]
        try:
            with tarfile.open(url, mode="r:") as tar:
                sample: dict[str, Any] = {}
                for member in tar:
                    if not member.isfile():
                        continue
                    key, _, ext = member.name.partition(".")
                    if sample and key != sample["__key__"]:
                        yield sample
                        sample = {}
                    if not sample:
                        sample = {"__key__": key, "__url__": url}
                    sample[ext] = tar.extractfile(member).read()
                if sample:
                    yield sample
        except (OSError, tarfile.TarError) as err:
            if handler(err):
                continue
            raise


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


def _repeat_by_weight(
    samples: Iterable[dict[str, Any]], key: StreamKey
) -> Iterator[dict[str, Any]]:
    """Yield each sample k times, E[k] = its weight: floor(w), plus one with p = frac(w)."""
    rng = key.rng(1)
    for sample in samples:
        weight = max(float(sample["meta"].get("weight", 1.0)), 0.0)
        repeats = math.floor(weight) + (rng.random() < weight - math.floor(weight))
        for _ in range(repeats):
            yield sample


def _shuffle(samples: Iterable[Any], key: StreamKey, bufsize: int) -> Iterator[Any]:
    """Buffer shuffle with a seeded per-stream RNG (webdataset's own seeds from the clock)."""
    rng = key.rng(2)
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


def worker_skip(start_batch: int, worker: int, workers: int) -> int:
    """Batches worker `worker` of `workers` made among its rank's first `start_batch`."""
    return max(0, -(-(start_batch - worker) // workers))


def _position(
    samples: Iterable[dict[str, Any]], key: StreamKey, batch_size: int
) -> Iterator[dict[str, Any]]:
    """Skip the raw samples of batches already consumed; give each sample its crop RNG."""
    logical, workers = key.logical_worker()
    skip = worker_skip(key.start_batch, logical, workers) * batch_size
    stream = key.stream()
    for index, sample in enumerate(itertools.islice(samples, skip, None), start=skip):
        sample["__rng__"] = random.Random(hash((key.seed, 3, stream, index)))
        yield sample


def _to_tensors(
    samples: Iterable[dict[str, Any]], transform: Callable[..., Any], num_classes: int,
    handler: Any,
) -> Iterator[tuple[Any, Any, float]]:  # fmt: skip
    """Raw sample -> (image [3, S, S] uint8, multi-hot [K], weight). Bad samples: `handler`."""
    import torch
    from PIL import Image

    for sample in samples:
        try:
            ext = next(e for e in IMAGE_EXTENSIONS if e in sample)
            with Image.open(io.BytesIO(sample[ext])) as img:
                image = transform(img.convert("RGB"), sample.get("__rng__"))
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
    items: Iterable[tuple[Any, Any, float]], batch_size: int, partial: bool, normalise: bool
) -> Iterator[tuple[Any, Any, Any]]:
    """Stack `batch_size` items into (images [B,3,S,S], targets [B,K], weights [B]).

    images: float32 normalised when `normalise`, else the uint8 pixels.
    """
    import torch

    def stack(group: list[tuple[Any, Any, float]]) -> tuple[Any, Any, Any]:
        images, targets, weights = zip(*group, strict=True)
        pixels = torch.stack(images)
        pixels = normalise_batch(pixels) if normalise else pixels
        return pixels, torch.stack(targets), torch.tensor(weights)

    group: list[tuple[Any, Any, float]] = []
    for item in items:
        group.append(item)
        if len(group) == batch_size:
            yield stack(group)
            group = []
    if group and partial:
        yield stack(group)


def crop_box(
    width: int, height: int, scale: tuple[float, float], rng: random.Random
) -> tuple[int, int, int, int]:
    """Random-resized-crop box (top, left, h, w), torchvision's rule, drawn from `rng`."""
    area = width * height
    log_ratio = (math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]))
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target * aspect)))
        h = int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.randint(0, height - h), rng.randint(0, width - w), h, w
    # fallback: the whole image, centre-cropped to the allowed aspect range
    ratio = width / height
    if ratio < CROP_RATIO[0]:
        w, h = width, int(round(width / CROP_RATIO[0]))
    elif ratio > CROP_RATIO[1]:
        h, w = height, int(round(height * CROP_RATIO[1]))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def pil_to_uint8(img: Any) -> Any:
    """PIL RGB image -> [3, H, W] uint8 tensor (a view of one copy of the pixels)."""
    import numpy as np
    import torch

    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)


def normalise_batch(images: Any) -> Any:
    """[B, 3, S, S] uint8 -> float32 normalised with the ImageNet mean and std, on its device.

    Once per batch rather than per image: one uint8 -> float conversion and two in-place
    passes (multiply, add), instead of ToTensor's divide and Normalize's subtract and divide
    on every image. The constants are made on the CPU, so every device multiplies and adds
    the same float32 numbers (bit-identical to the CPU result), and copied to a device once.
    """
    import torch

    scale, shift = _normalise_constants(str(images.device))
    return images.to(torch.float32).mul_(scale).add_(shift)  # (x - mean) / std


@functools.lru_cache(maxsize=8)
def _normalise_constants(device: str) -> tuple[Any, Any]:
    """(1 / std, -mean / std) in uint8 units, [1, 3, 1, 1] each, on `device`.

    Cached: a fresh copy per batch would be a pageable host-to-device copy, which
    synchronises the host with the GPU every step.
    """
    import torch

    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1) * 255
    shift = -torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1) * 255 / std
    return (1 / std).to(device), shift.to(device)


def device_batch(batch: tuple[Any, ...], device: Any) -> tuple[Any, ...]:
    """A loader batch on `device`, images normalised there: the trainer's host-to-device step.

    uint8 images (`make_loader(normalise=False)`) cross as a quarter of float32's bytes,
    asynchronously from pinned memory, and become float32 on the device; float images are
    taken as already normalised and only moved. Targets and weights are only moved.
    """
    import torch

    images, *rest = (t.to(device, non_blocking=True) for t in batch)
    if images.dtype == torch.uint8:
        images = normalise_batch(images)
    return (images, *rest)


class TrainTransform:
    """PIL image + RNG -> [3, S, S] uint8: random-resized crop (bicubic), horizontal flip.

    Normalisation happens per batch (`normalise_batch`).
    """

    def __init__(self, image_size: int, min_scale: float) -> None:
        self.size = image_size
        self.scale = (min_scale, 1.0)

    def __call__(self, img: Any, rng: random.Random | None) -> Any:
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms import functional as F

        rng = rng or random.Random(0)
        top, left, h, w = crop_box(img.width, img.height, self.scale, rng)
        img = F.resized_crop(img, top, left, h, w, [self.size, self.size],
                             InterpolationMode.BICUBIC)  # fmt: skip
        if rng.random() < 0.5:
            img = F.hflip(img)
        return pil_to_uint8(img)


class EvalTransform:
    """PIL image -> [3, S, S] uint8: resize keeping the usual 224/256 border, centre crop."""

    def __init__(self, image_size: int) -> None:
        from torchvision import transforms as T

        bicubic = T.InterpolationMode.BICUBIC
        self.transform = T.Compose([
            T.Resize(int(round(image_size * 256 / 224)), interpolation=bicubic),
            T.CenterCrop(image_size),
        ])  # fmt: skip

    def __call__(self, img: Any, rng: random.Random | None = None) -> Any:
        return pil_to_uint8(self.transform(img))


def image_transform(image_size: int, *, train: bool, min_scale: float = 0.2) -> Any:
    """(PIL image, RNG or None) -> [3, S, S] uint8; `normalise_batch` makes the floats."""
    return TrainTransform(image_size, min_scale) if train else EvalTransform(image_size)


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
    rank: int = 0,
    world_size: int = 1,
    start_batch: int = 0,
    normalise: bool = True,
) -> Iterable[tuple[Any, Any, Any]]:
    """An iterable of `(images [B,3,S,S], targets [B,K], weights [B])` over `split`.

    `normalise=False` leaves the images uint8 (pinned when CUDA is there) for
    `device_batch` to normalise on the GPU: a quarter of the bytes to copy, the same numbers.

    train=True: endless (or `epoch_samples // (batch_size * world_size)` batches per rank),
    this rank's own stream (`batch_size` is the per-rank batch), resuming after
    `start_batch` batches. train=False: every sample exactly once, in order.
    """
    import torch
    import webdataset as wds

    urls = manifest.paths(split)
    if not urls:
        raise UsageError(f"no {split} shards in {manifest.folder}/manifest.json")
    if batch_size < 1:
        raise UsageError(f"batch size must be at least 1, got {batch_size}")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside world of {world_size}")
    transform = image_transform(image_size, train=train, min_scale=min_scale)
    skip = wds.warn_and_continue  # a bad sample is skipped; the stream goes on

    if train:
        counts = [s.count for s in manifest.shards(split)]
        key = StreamKey(seed, rank, start_batch)
        stages: list[Any] = [
            # shard urls drawn with replacement forever, from this stream's own RNG
            functools.partial(_resampled_shards, urls, counts, key),
            # shard path -> {"__key__", "jpg": bytes, "json": bytes, "txt": bytes}
            wds.pipelinefilter(_read_tars)(skip),
            # "json" bytes -> sample["meta"] dict (class_ids, weight, ...)
            wds.pipelinefilter(_parse_json)(skip),
        ]
        if balance:  # a sample of weight w is kept floor(w) or ceil(w) times
            stages.append(wds.pipelinefilter(_repeat_by_weight)(key))
        stages += [
            # mix samples from the shards in flight, so a batch is not one shard's run
            wds.pipelinefilter(_shuffle)(key, SHUFFLE_BUFFER),
            # drop what was consumed before a resume; attach each sample's crop RNG
            wds.pipelinefilter(_position)(key, batch_size),
        ]
    else:
        num_workers = min(num_workers, len(urls))  # a worker with no shard would idle
        stages = [
            wds.SimpleShardList(urls),  # each shard once, in manifest order
            wds.split_by_worker,
            wds.pipelinefilter(_read_tars)(skip),
            wds.pipelinefilter(_parse_json)(skip),
        ]
    stages += [
        # bytes -> (image [3,S,S] uint8, multi-hot [K], weight): crop/flip or centre crop
        wds.pipelinefilter(_to_tensors)(transform, manifest.num_classes, skip),
        # -> (images [B,3,S,S] float32 normalised here, once per batch, or uint8 for the
        # consumer's device, targets [B,K], weights [B]); train drops the short tail
        wds.pipelinefilter(_batch)(batch_size, not train, normalise),
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
        # its own generator: starting the workers must not draw from the global torch RNG,
        # whose state a resumed run restores (MAE masks, drop path, mixup come from it)
        generator=torch.Generator().manual_seed(seed),
    )
    if train and epoch_samples is not None:
        loader = loader.with_epoch(max(1, epoch_samples // (batch_size * world_size)))
    return loader
