"""A tiny dataset folder as `curate ingest` and `curate build-vocab` would leave it.

Images are generated with PIL; metadata, labels and vocab parquets are written directly
with the schemas of architecture.md, so these tests depend on no labeling code beyond
`labeling.vocab_file`.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

WNIDS = ["n02084071", "n02121808", "n01503061"]
NAMES = ["dog", "cat", "bird"]


def make_uid(url: str, caption: str) -> str:
    return hashlib.md5(f"{url}\n{caption}".encode()).hexdigest()[:16]


def image_bytes(index: int, fmt: str = "JPEG", size: tuple[int, int] = (48, 32)) -> bytes:
    from PIL import Image

    img = Image.new("RGB", size, ((37 * index) % 256, (91 * index) % 256, 120))
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def write_images(folder: Path, n: int) -> list[str]:
    """n images, alternating JPEG and PNG; returns their file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        fmt, ext = ("PNG", "png") if i % 2 else ("JPEG", "jpg")
        name = f"img{i:03d}.{ext}"
        (folder / name).write_bytes(image_bytes(i, fmt, size=(40 + i, 30)))
        names.append(name)
    return names


def write_dataset(root: Path, urls: list[str], keep: list[bool] | None = None) -> list[dict]:
    """metadata/, labels/ and vocab/ for `urls`; sample i gets class i % 3. Returns the rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keep = keep if keep is not None else [True] * len(urls)
    rows = []
    for i, url in enumerate(urls):
        caption = f"photo {i} #{NAMES[i % 3]}"
        class_ids = sorted({i % 3, (i * 7) % 3}) if i % 4 == 0 else [i % 3]
        rows.append(
            {
                "uid": make_uid(url, caption),
                "url": url,
                "caption": caption,
                "source": "test",
                "class_ids": class_ids,
                "wnids": [WNIDS[c] for c in class_ids],
                "hashtags": [NAMES[c] for c in class_ids],
                "keep": keep[i],
                "weight": 1.0 + i / 100,
            }
        )
    for sub in ("metadata", "labels", "vocab"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    meta_cols = ["uid", "url", "caption", "source"]
    pq.write_table(
        pa.table({c: [r[c] for r in rows] for c in meta_cols}), root / "metadata/part-0.parquet"
    )
    labels = pa.table(
        {
            "uid": [r["uid"] for r in rows],
            "class_ids": pa.array([r["class_ids"] for r in rows], pa.list_(pa.int32())),
            "wnids": [r["wnids"] for r in rows],
            "hashtags": [r["hashtags"] for r in rows],
            "keep": [r["keep"] for r in rows],
            "weight": pa.array([r["weight"] for r in rows], pa.float32()),
        }
    )
    pq.write_table(labels, root / "labels/part-0.parquet")
    vocab = pa.table(
        {
            "class_id": pa.array(range(3), pa.int32()),
            "wnid": WNIDS,
            "name": NAMES,
            "lemmas": [[n] for n in NAMES],
            "lexname": ["noun.animal"] * 3,
            "count": pa.array([10, 5, 2], pa.int64()),
            "kept_count": pa.array([10, 5, 2], pa.int64()),
        }
    )
    pq.write_table(vocab, root / "vocab/vocab.parquet")
    return rows


@pytest.fixture
def local_dataset(tmp_path: Path) -> tuple[Path, list[dict]]:
    """20 file:// samples (one of them dropped by the cap) plus a missing and a corrupt file."""
    images = tmp_path / "images"
    names = write_images(images, 20)
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    urls = [(images / n).as_uri() for n in names]
    urls += [(images / "missing.jpg").as_uri(), (images / "corrupt.jpg").as_uri()]
    keep = [i != 3 for i in range(len(urls))]
    root = tmp_path / "data"
    return root, write_dataset(root, urls, keep)


def pattern_image(index: int, size: tuple[int, int] = (96, 64), fmt: str = "JPEG") -> bytes:
    """An image of 8 x 8 random colour blocks (seeded by `index`): unlike a flat colour, its
    dHash is distinct per index and survives resizing and re-encoding."""
    import random

    from PIL import Image

    rng = random.Random(index)
    small = Image.new("RGB", (8, 8))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(64)])
    buf = io.BytesIO()
    small.resize(size, Image.Resampling.NEAREST).save(buf, format=fmt)
    return buf.getvalue()


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid 1-bit grayscale PNG of `width` x `height` black pixels, built without ever
    holding the pixels: all-zero rows deflate ~1000x, so 900 M pixels take ~0.5 MB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    deflate = zlib.compressobj(1)
    rows_per_block = 1000
    idat = b"".join(deflate.compress(row * rows_per_block) for _ in range(height // rows_per_block))
    idat += deflate.compress(row * (height % rows_per_block)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def write_webdataset_tar(path: Path) -> dict[str, bytes]:
    """An img2dataset-style tar: captions in .txt, or only in .json, or nowhere."""
    import json
    import tarfile

    from PIL import Image

    def add(tar, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))

    images = {}
    with tarfile.open(path, "w") as tar:
        for i, fmt in enumerate(["JPEG", "PNG", "JPEG"]):
            buf = io.BytesIO()
            Image.new("RGB", (20 + i, 10), (i * 40, 0, 0)).save(buf, format=fmt)
            name = f"00000{i}.{'png' if fmt == 'PNG' else 'jpg'}"
            images[name] = buf.getvalue()
            add(tar, name, buf.getvalue())
            if i == 0:
                add(tar, "000000.txt", b"a red #square")
            if i == 1:
                add(tar, "000001.json", json.dumps({"caption": "from #json", "url": "x"}).encode())
        add(tar, "000009.json", b'{"caption": "no image"}')  # metadata without an image
    return images


def shard_order(uid: str, seed: int = 0, val_fraction: float = 0.05) -> tuple[str, str, str]:
    """A uid's place in the shards' order (split, order key, uid) under `curate shard`'s
    defaults: the content dedup keeps the first copy in this order."""
    from shards.build import order_key, split_of

    return split_of(uid, val_fraction), order_key(uid, seed), uid


def run_shard(argv: list[str], one_pass: bool = True) -> int:
    """`curate shard argv` as the CLI runs it (a `UsageError` is one stderr line, exit 2),
    with local-only runs through the one pass (`shards.tar_write.write_while_reading`) or,
    `one_pass=False`, through the two-pass write every other run takes."""
    from curation.errors import run_main
    from curation.options import parse_options
    from shards.build import ShardOptions, shard

    def main(args: list[str]) -> int:
        return shard(parse_options(ShardOptions, args, prog="curate shard"), one_pass=one_pass)

    return run_main(main, argv)
