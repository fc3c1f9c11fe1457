"""`DIR/shards/manifest.json`: what the shards hold, exactly, so nothing has to re-read tars.

    {
      "format": "mawskit-shards/1",
      "image_size": 64,                       # shorter side of the stored images
      "vocab_hash": "sha256 of the class wnids in class_id order",
      "classes": [{"class_id": 0, "wnid": "n02084071", "name": "dog"}, ...],
      "splits": {
        "train": {"count": 900, "bytes": 1234567,
                  "shards": [{"name": "train-000000.tar", "count": 500,
                              "bytes": 685000, "sha256": "..."}, ...]},
        "val": {...}
      },
      "totals": {"samples": 1000, "bytes": ...}
    }

Shard names are relative to the manifest's folder. Each `X.tar` has a sidecar `X.parquet`
with one row per sample (see `shards.writer`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import UsageError

FORMAT = "mawskit-shards/1"
SPLITS = ("train", "val")
# The order of samples in the shards, and so which copy the content dedup keeps: the one-pass
# and two-pass writes and the dedup must all use it
SHARD_ORDER = ("split", "order_key", "uid")


@dataclass(frozen=True)
class ShardInfo:
    name: str
    count: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    folder: Path
    image_size: int
    vocab_hash: str
    classes: tuple[dict[str, Any], ...]
    splits: dict[str, tuple[ShardInfo, ...]]
    totals: dict[str, int]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def shards(self, split: str) -> tuple[ShardInfo, ...]:
        return self.splits.get(split, ())

    def count(self, split: str) -> int:
        return sum(s.count for s in self.shards(split))

    def paths(self, split: str) -> list[str]:
        return [str(self.folder / s.name) for s in self.shards(split)]


def manifest_dict(
    image_size: int,
    vocab_hash: str,
    classes: list[dict[str, Any]],
    splits: dict[str, list[ShardInfo]],
) -> dict[str, Any]:
    out_splits = {
        name: {
            "count": sum(s.count for s in shards),
            "bytes": sum(s.bytes for s in shards),
            "shards": [vars(s) for s in shards],
        }
        for name, shards in splits.items()
    }
    return {
        "format": FORMAT,
        "image_size": image_size,
        "vocab_hash": vocab_hash,
        "classes": classes,
        "splits": out_splits,
        "totals": {
            "samples": sum(v["count"] for v in out_splits.values()),
            "bytes": sum(v["bytes"] for v in out_splits.values()),
        },
    }


def read_manifest(folder: str | Path) -> Manifest:
    """Read and check `folder/manifest.json`; UsageError when it is missing or foreign."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    path = folder / "manifest.json"
    if not path.exists():
        raise UsageError(f"no manifest.json in {folder}: point at the folder `curate shard` wrote")
    data = json.loads(path.read_text())
    if data.get("format") != FORMAT:
        raise UsageError(f"{path} is not a {FORMAT} manifest (format={data.get('format')!r})")
    splits = {
        name: tuple(ShardInfo(**s) for s in split["shards"])
        for name, split in data["splits"].items()
    }
    return Manifest(
        folder=folder,
        image_size=int(data["image_size"]),
        vocab_hash=data["vocab_hash"],
        classes=tuple(data["classes"]),
        splits=splits,
        totals=data["totals"],
    )
