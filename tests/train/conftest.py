"""Tiny webdataset shards written with tarfile, as `curate shard` writes them.

Each class draws a filled square of its own colour at its own place on a noisy grey
background; a sample with two labels carries both squares. A small ViT can learn that in a
few dozen steps, so tests can assert that losses fall and scores beat chance.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

import pytest

from shards.manifest import ShardInfo, manifest_dict

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 210, 20), (200, 40, 220)]
CORNERS = [(2, 2), (18, 2), (2, 18), (18, 18), (10, 10)]
WNIDS = ["n02084071", "n02121808", "n01503061", "n02958343", "n03001627"]
VOCAB_HASH = hashlib.sha256("\n".join(WNIDS).encode()).hexdigest()


@pytest.fixture(autouse=True, scope="session")
def _few_threads() -> None:
    import torch

    torch.set_num_threads(1)  # the test machine is shared; one core is ours


def draw(class_ids: list[int], rng: random.Random, size: int = 32) -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (size, size), (128, 128, 128))
    pixels = img.load()
    for y in range(size):
        for x in range(size):
            v = 128 + rng.randint(-30, 30)
            pixels[x, y] = (v, v, v)
    pen = ImageDraw.Draw(img)
    for c in class_ids:
        x, y = CORNERS[c]
        pen.rectangle([x, y, x + 11, y + 11], fill=COLOURS[c])
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def sample_labels(
    index: int, num_classes: int, rng: random.Random, two_label_rate: float = 0.3
) -> list[int]:
    first = index % num_classes
    if rng.random() < two_label_rate:  # some samples carry two classes
        return sorted({first, rng.randrange(num_classes)})
    return [first]


def write_tar(path: Path, samples: list[dict], corrupt_key: str | None = None) -> ShardInfo:
    with tarfile.open(path, "w") as tar:
        for s in samples:
            members = {
                "jpg": b"not a jpeg" if s["uid"] == corrupt_key else s["jpg"],
                "txt": s["caption"].encode(),
                "json": json.dumps({k: s[k] for k in ("uid", "url", "class_ids", "wnids",
                                                       "hashtags", "weight")}).encode(),
            }  # fmt: skip
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{s['uid']}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    data = path.read_bytes()
    return ShardInfo(path.name, len(samples), len(data), hashlib.sha256(data).hexdigest())


def write_shards(
    folder: Path,
    *,
    n_train: int = 192,
    n_val: int = 64,
    num_classes: int = 5,
    per_shard: int = 64,
    seed: int = 0,
    corrupt_key: str | None = None,
    vocab_hash: str = VOCAB_HASH,
    two_label_rate: float = 0.3,
) -> Path:
    """Write {train,val}-NNNNNN.tar + manifest.json into `folder`; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    splits: dict[str, list[ShardInfo]] = {}
    index = 0
    for split, n in (("train", n_train), ("val", n_val)):
        samples = []
        for _ in range(n):
            class_ids = sample_labels(index, num_classes, rng, two_label_rate)
            samples.append({
                "uid": f"{index:016x}",
                "url": f"file:///img/{index}.jpg",
                "caption": " ".join(f"#tag{c}" for c in class_ids),
                "class_ids": class_ids,
                "wnids": [WNIDS[c] for c in class_ids],
                "hashtags": [f"tag{c}" for c in class_ids],
                "weight": 1.0,
                "jpg": draw(class_ids, rng),
            })  # fmt: skip
            index += 1
        splits[split] = [
            write_tar(folder / f"{split}-{i:06d}.tar", samples[start : start + per_shard],
                      corrupt_key)
            for i, start in enumerate(range(0, n, per_shard))
        ]  # fmt: skip
    classes = [{"class_id": c, "wnid": WNIDS[c], "name": f"tag{c}"} for c in range(num_classes)]
    manifest = manifest_dict(32, vocab_hash, classes, splits)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="session")
def make_shards():
    """The shard writer itself, for tests that need shards of their own shape."""
    return write_shards


@pytest.fixture(scope="session")
def shards_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """192 train + 64 val samples over 5 classes, 3 + 1 shards, 32 px."""
    return write_shards(tmp_path_factory.mktemp("shards"))


COMMON = ["--model", "vit_pico_patch4", "--batch-size", "32", "--warmup-steps", "5",
          "--log-every", "5"]  # fmt: skip


@pytest.fixture(scope="session")
def mae_run(shards_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 MAE steps on `shards_dir`, checkpoints at 20 and 40."""
    from train.cli import main as train_cli

    out = tmp_path_factory.mktemp("runs") / "mae"
    argv = ["mae", "--shards", str(shards_dir), "--out", str(out), *COMMON, "--steps", "40",
            "--base-lr", "0.01", "--decoder-depth", "1", "--decoder-dim", "64",
            "--decoder-heads", "4", "--save-every", "20"]  # fmt: skip
    assert train_cli(argv) == 0
    return out


@pytest.fixture(scope="session")
def wsp_run(shards_dir: Path, mae_run: Path) -> Path:
    """40 WSP steps on `shards_dir` from the MAE run's encoder."""
    from train.cli import main as train_cli

    out = mae_run.parent / "wsp"
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(out), "--init", str(mae_run),
            *COMMON, "--steps", "40", "--base-lr", "0.01", "--min-scale", "0.5"]  # fmt: skip
    assert train_cli(argv) == 0
    return out
