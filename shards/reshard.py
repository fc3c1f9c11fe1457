"""`curate shard --reshard N`: rewrite existing shards with N samples per shard, no crawl.

Reads `DIR/shards/` (manifest, tars, sidecars) and writes a new `DIR/shards/` atomically
with the same samples in the same order per split, the same member bytes, and N samples
per shard (the last may be short). Because `ShardWriter` is byte-reproducible, the result
is identical, tar for tar, to a fresh `curate shard --samples-per-shard N` over the same
crawl. `downloads.parquet` is copied; `meta.json` keeps the original config and counts,
with `samples_per_shard` and the shard counts updated and `resharded_from` added.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.layout import staged_dir, write_json_atomic
from shards.manifest import SPLITS, ShardInfo, manifest_dict, read_manifest
from shards.writer import ShardSample, ShardWriter


def read_shard_samples(tar_path: Path, sidecar_rows: list[dict[str, Any]]) -> Iterator[ShardSample]:
    """The samples of one shard, in tar order, rebuilt from its members and sidecar rows."""
    members: dict[str, dict[str, bytes]] = {}
    order: list[str] = []
    with tarfile.open(tar_path, "r|") as tar:
        for member in tar:
            key, _, ext = member.name.partition(".")
            if key not in members:
                members[key] = {}
                order.append(key)
            handle = tar.extractfile(member)
            members[key][ext] = handle.read() if handle is not None else b""
    if order != [r["key"] for r in sidecar_rows]:
        raise UsageError(f"{tar_path} and its sidecar disagree; run `curate verify` first")
    for key, row in zip(order, sidecar_rows, strict=True):
        parts = members[key]
        label = json.loads(parts["json"])
        (ext,) = [e for e in parts if e not in ("json", "txt")]
        yield ShardSample(
            uid=label["uid"],
            url=label["url"],
            caption=parts["txt"].decode(),
            class_ids=label["class_ids"],
            wnids=label["wnids"],
            hashtags=label["hashtags"],
            weight=label["weight"],
            image=parts[ext],
            width=row["width"],
            height=row["height"],
            ext=ext,
        )


def reshard(shards_dir: Path, per_shard: int, *, config: Any, started: float) -> dict[str, int]:
    """Rewrite `shards_dir` with `per_shard` samples per shard; return samples and shards."""
    import pyarrow.parquet as pq

    manifest = read_manifest(shards_dir)
    meta = json.loads((shards_dir / "meta.json").read_text())
    old = json.loads((shards_dir / "manifest.json").read_text())
    with staged_dir(shards_dir) as folder:
        splits: dict[str, list[ShardInfo]] = {}
        for split in SPLITS:
            with ShardWriter(folder, split, per_shard) as writer:
                for info in manifest.shards(split):
                    tar_path = shards_dir / info.name
                    rows = pq.read_table(tar_path.with_suffix(".parquet")).to_pylist()
                    for sample in read_shard_samples(tar_path, rows):
                        writer.write(sample)
            splits[split] = writer.shards
        if (shards_dir / "downloads.parquet").exists():
            shutil.copyfile(shards_dir / "downloads.parquet", folder / "downloads.parquet")
        new = manifest_dict(old["image_size"], old["vocab_hash"], old["classes"], splits)
        if new["totals"]["samples"] != old["totals"]["samples"]:
            raise RuntimeError(f"resharding read {new['totals']} of {old['totals']} samples")
        write_json_atomic(folder / "manifest.json", new)
        meta["config"]["samples_per_shard"] = per_shard
        meta["counts"]["shards"] = {s: len(splits[s]) for s in SPLITS}
        meta["counts"]["bytes"] = new["totals"]["bytes"]
        meta["resharded_from"] = {
            "samples_per_shard": max((s.count for s in manifest.shards("train")), default=0),
            "seconds": round(time.time() - started, 3),
            "config": vars(config) if hasattr(config, "__dataclass_fields__") else config,
        }
        write_json_atomic(folder / "meta.json", meta)
    return {"samples": new["totals"]["samples"], "shards": sum(len(v) for v in splits.values())}
