"""Bench: the train loader's decoded + cropped images/s per worker vs PIL from memory.

    .venv/bin/python -m bench.loader                        # ~1 min on one CPU core
    .venv/bin/python -m bench.loader --images 2000 --stored-size 288 --image-size 224

Writes synthetic JPEG shards (`--stored-size` px on the shorter side, the way `curate shard`
stores them; drawn noise + shapes so JPEG has real work), then, in one process with one torch
thread:

    baseline  the same JPEG bytes held in a Python list: PIL decode + RGB + the loader's own
              random-resized crop + flip + ToTensor + Normalize, one image at a time (the
              classic per-image pipeline)
    crop only the same decode + crop + flip to a uint8 tensor, no normalising: the floor
    loader    `shards.loader.make_loader(train=True, num_workers=0)`: tar reading, json,
              shuffle buffer, the same decode and crop, batching

ratio = loader / baseline (target >= 0.85: the streaming machinery costs at most 15%); each
path runs `--rounds` times, alternating, and its best rate counts; rates are per second of
this process's CPU time (`time.process_time`), as the machine is shared with other jobs.
With num_workers=N the loader runs N such streams in parallel, so this per-worker rate times
the cores given to the loader is its ceiling. Writes bench/out/loader.json.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import random
import tarfile
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


def synthetic_jpeg(rng: random.Random, size: int) -> bytes:
    from PIL import Image, ImageDraw

    width = size + rng.randrange(0, size // 2)  # shorter side `size`, as stored
    img = Image.effect_noise((width, size), 40).convert("RGB")
    pen = ImageDraw.Draw(img)
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(size)
        colour = tuple(rng.randrange(256) for _ in range(3))
        pen.ellipse([x, y, x + rng.randrange(8, size // 2), y + rng.randrange(8, size // 2)],
                    fill=colour)  # fmt: skip
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_synthetic_shards(
    folder: Path, images: int, stored_size: int, per_shard: int = 500, classes: int = 100
) -> tuple[Path, list[bytes]]:
    """Shards + manifest.json as `curate shard` writes them; returns (folder, jpeg bytes)."""
    from shards.manifest import ShardInfo, manifest_dict

    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    jpegs = [synthetic_jpeg(rng, stored_size) for _ in range(images)]
    infos = []
    for shard, start in enumerate(range(0, images, per_shard)):
        path = folder / f"train-{shard:06d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(start, min(images, start + per_shard)):
                key = f"{i:016x}"
                meta = {"uid": key, "url": f"file:///{i}.jpg", "class_ids": [i % classes],
                        "wnids": [], "hashtags": [], "weight": 1.0}  # fmt: skip
                for ext, data in (("jpg", jpegs[i]), ("json", json.dumps(meta).encode())):
                    info = tarfile.TarInfo(f"{key}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        data = path.read_bytes()
        infos.append(ShardInfo(path.name, min(per_shard, images - start), len(data),
                               hashlib.sha256(data).hexdigest()))  # fmt: skip
    names = [{"class_id": c, "wnid": f"n{c:08d}", "name": f"c{c}"} for c in range(classes)]
    manifest = manifest_dict(stored_size, "synthetic", names, {"train": infos})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder, jpegs


def per_image_reference(image_size: int, min_scale: float) -> Any:
    """The classic per-image pipeline: crop + flip (the loader's rule), ToTensor, Normalize.

    What the loader did per image before it normalised per batch; kept as the baseline so
    that ratios stay comparable across loader changes.
    """
    from torchvision import transforms as T
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as F

    from shards.loader import IMAGE_MEAN, IMAGE_STD, crop_box

    to_tensor = T.Compose([T.ToTensor(), T.Normalize(IMAGE_MEAN, IMAGE_STD)])

    def transform(img: Any, rng: random.Random) -> Any:
        top, left, h, w = crop_box(img.width, img.height, (min_scale, 1.0), rng)
        img = F.resized_crop(img, top, left, h, w, [image_size, image_size],
                             InterpolationMode.BICUBIC)  # fmt: skip
        if rng.random() < 0.5:
            img = F.hflip(img)
        return to_tensor(img)

    return transform


def baseline_rate(jpegs: list[bytes], transform: Any) -> float:
    """Images/s: PIL decode + `transform(img, rng)`, one image at a time, bytes in memory."""
    from PIL import Image

    started = time.process_time()
    for index, data in enumerate(jpegs):
        with Image.open(io.BytesIO(data)) as img:
            transform(img.convert("RGB"), random.Random(index))
    return len(jpegs) / (time.process_time() - started)


def loader_rate(
    folder: Path, count: int, image_size: int, min_scale: float, batch_size: int,
    num_workers: int = 0,
) -> float:  # fmt: skip
    """Images/s of `make_loader` over `count` images (after one warm-up batch)."""
    from shards.loader import make_loader
    from shards.manifest import read_manifest

    loader = make_loader(read_manifest(folder), "train", batch_size=batch_size,
                         image_size=image_size, train=True, min_scale=min_scale,
                         num_workers=num_workers)  # fmt: skip
    stream = iter(loader)
    next(stream)  # workers started, shuffle buffer primed
    batches = max(1, count // batch_size)
    started = time.process_time()
    for _ in itertools.islice(stream, batches):
        pass
    return batches * batch_size / (time.process_time() - started)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import tempfile

    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--stored-size", type=int, default=288)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--min-scale", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="best of N, paths alternating")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a worker is one core; the machine is shared
    from shards.loader import TrainTransform

    reference = per_image_reference(args.image_size, args.min_scale)
    crop_only = TrainTransform(args.image_size, args.min_scale)  # uint8 out, no normalising
    rates: dict[str, list[float]] = {"baseline": [], "crop_only": [], "loader": []}
    with tempfile.TemporaryDirectory() as tmp:
        folder, jpegs = write_synthetic_shards(Path(tmp) / "shards", args.images,
                                               args.stored_size)  # fmt: skip
        for _ in range(args.rounds):  # alternating, so load from other jobs hits all paths
            rates["baseline"].append(baseline_rate(jpegs, reference))
            rates["crop_only"].append(baseline_rate(jpegs, crop_only))
            # the shuffle buffer holds up to 2000 samples: count past the priming batch
            rates["loader"].append(loader_rate(folder, args.images - args.batch_size,
                                               args.image_size, args.min_scale,
                                               args.batch_size))  # fmt: skip
    baseline, crop, ours = (max(rates[k]) for k in ("baseline", "crop_only", "loader"))
    result = {
        "images": args.images, "stored_size": args.stored_size,
        "image_size": args.image_size, "rounds": args.rounds,
        "baseline_images_per_s": round(baseline, 1),
        "crop_only_images_per_s": round(crop, 1),
        "loader_images_per_s": round(ours, 1), "ratio": round(ours / baseline, 3),
        "ratio_to_crop_only": round(ours / crop, 3), "target": 0.85,
        "loader_overhead_ms_per_image": round(1000 / ours - 1000 / crop, 3),
    }  # fmt: skip
    print(f"{'path (best of ' + str(args.rounds) + ')':<44} {'images/s':>10}")
    print(f"{'baseline: PIL decode + crop + per-image norm':<44} {baseline:>10.1f}")
    print(f"{'PIL decode + crop to uint8 only':<44} {crop:>10.1f}")
    print(f"{'make_loader, 1 worker (in-process)':<44} {ours:>10.1f}")
    print(f"ratio {result['ratio']:.3f} (target >= 0.85); vs decode + crop only "
          f"{result['ratio_to_crop_only']:.3f}, "
          f"{result['loader_overhead_ms_per_image']:.2f} ms/image beyond it")  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / "loader.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
