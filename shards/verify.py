"""`curate verify --root DIR`: re-read every shard and check it against the manifest.

For each shard of `DIR/shards/manifest.json`, in order:

    file       the tar exists; its size and sha256 are the manifest's
    members    regular files named `{key}.{ext}`, each key with exactly one image, one
               `.json` and one `.txt`, keys dot-free and unique across all shards
    count      samples in the tar == manifest count == sidecar rows, in the same key order
    image      decodes (PIL, full decode) to the sidecar's width x height
    labels     the `.json` is the sidecar row's uid/url/class_ids/wnids; every class_id is
               in the vocabulary and its wnid is the manifest's wnid for it; the `.txt` is
               the sidecar caption; the split is the uid's hash split (meta.json's
               val_fraction)

plus: no tar in the folder that the manifest does not list; split and total counts add up.
Prints one line per problem (at most `--max-problems`, then a count) and a summary line.
Exit code 0 when clean, 1 when any check failed, 2 for a usage error (no manifest).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.layout import DatasetRoot
from curation.options import parse_options
from shards.manifest import Manifest, ShardInfo, read_manifest

EXIT_MISMATCH = 1


@dataclass(frozen=True)
class VerifyOptions:
    """Re-read every shard under DIR/shards and check it against manifest.json."""

    root: str = field(metadata={"help": "dataset folder (reads ROOT/shards)"})
    decode: bool = field(default=True, metadata={"help": "fully decode every image"})
    max_problems: int = field(default=50, metadata={"help": "problem lines printed"})


def _decoded_size(data: bytes) -> tuple[int, int] | str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return img.size
    except Exception as err:  # noqa: BLE001 (any decoder error is a finding, not a crash)
        return f"{type(err).__name__}: {err}"


def _read_tar(path: Path) -> tuple[list[str], dict[str, dict[str, bytes]], list[str]]:
    """(keys in order, key -> ext -> bytes, problems) of one tar."""
    keys: list[str] = []
    members: dict[str, dict[str, bytes]] = {}
    problems: list[str] = []
    try:
        with tarfile.open(path, "r|") as tar:
            for member in tar:
                if not member.isfile():
                    problems.append(f"{path.name}: {member.name} is not a regular file")
                    continue
                key, dot, ext = member.name.partition(".")
                if not dot or "/" in member.name or "." in ext:
                    problems.append(f"{path.name}: member name {member.name!r} is not key.ext")
                    continue
                if key not in members:
                    keys.append(key)
                    members[key] = {}
                handle = tar.extractfile(member)
                members[key][ext] = handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError, EOFError) as err:
        problems.append(f"{path.name}: unreadable tar ({type(err).__name__}: {err})")
    return keys, members, problems


def verify_shard(
    folder: Path,
    info: ShardInfo,
    split: str,
    manifest: Manifest,
    val_fraction: float | None,
    decode: bool,
) -> tuple[list[str], list[str]]:
    """(problems, keys) of one shard."""
    import pyarrow.parquet as pq

    from shards.build import split_of

    path = folder / info.name
    if not path.exists():
        return [f"{info.name}: missing"], []
    problems = []
    data = path.read_bytes()
    if len(data) != info.bytes:
        problems.append(f"{info.name}: {len(data)} bytes, manifest says {info.bytes}")
    if hashlib.sha256(data).hexdigest() != info.sha256:
        problems.append(f"{info.name}: sha256 differs from the manifest")
    keys, members, tar_problems = _read_tar(path)
    problems += tar_problems
    if len(keys) != info.count:
        problems.append(f"{info.name}: {len(keys)} samples, manifest says {info.count}")
    sidecar = path.with_suffix(".parquet")
    rows = pq.read_table(sidecar).to_pylist() if sidecar.exists() else []
    if not sidecar.exists():
        problems.append(f"{sidecar.name}: missing sidecar")
    elif [r["key"] for r in rows] != keys:
        problems.append(f"{info.name}: keys differ from its sidecar ({len(rows)} rows)")
    wnids = {int(c["class_id"]): c["wnid"] for c in manifest.classes}
    by_key = {r["key"]: r for r in rows}
    for key in keys:
        problems += _check_sample(info.name, key, members[key], by_key.get(key), wnids, decode)
        if val_fraction is not None and split_of(key, val_fraction) != split:
            problems.append(f"{info.name}: {key} belongs to the other split")
    return problems, keys


def _check_sample(
    shard: str,
    key: str,
    parts: dict[str, bytes],
    row: dict[str, Any] | None,
    wnids: dict[int, str],
    decode: bool,
) -> list[str]:
    where = f"{shard}: {key}"
    images = [e for e in parts if e not in ("json", "txt")]
    if len(images) != 1 or "json" not in parts or "txt" not in parts:
        return [f"{where}: members {sorted(parts)}, expected one image, json and txt"]
    problems = []
    try:
        label = json.loads(parts["json"])
    except ValueError:
        return [f"{where}: .json does not parse"]
    label_wnids = label.get("wnids") or []
    for i, class_id in enumerate(label.get("class_ids") or []):
        # a class the manifest lacks is a problem of its own: its wnid (null, when the
        # labels came from another vocabulary) must not be compared with a missing one
        if type(class_id) is not int or class_id not in wnids:
            problems.append(
                f"{where}: class {class_id!r} is not one of the manifest's {len(wnids)} classes"
            )
        elif i < len(label_wnids) and label_wnids[i] != wnids[class_id]:
            problems.append(
                f"{where}: class {class_id} is {label_wnids[i]}, manifest says {wnids[class_id]}"
            )
    if not label.get("class_ids") or len(label["class_ids"]) != len(label_wnids):
        problems.append(f"{where}: class_ids and wnids missing or of different lengths")
    if label.get("uid") != key:
        problems.append(f"{where}: .json uid is {label.get('uid')!r}")
    if row is not None:
        fields = ("uid", "url", "class_ids", "wnids")
        if any(label.get(f) != row[f] for f in fields):
            problems.append(f"{where}: .json labels differ from the sidecar")
        if parts["txt"].decode(errors="replace") != row["caption"]:
            problems.append(f"{where}: .txt differs from the sidecar caption")
        size_bytes = len(parts[images[0]])
        if size_bytes != row["image_bytes"]:
            problems.append(f"{where}: image is {size_bytes} bytes, sidecar: {row['image_bytes']}")
    if decode:
        size = _decoded_size(parts[images[0]])
        if isinstance(size, str):
            problems.append(f"{where}: image does not decode ({size})")
        elif row is not None and size != (row["width"], row["height"]):
            problems.append(
                f"{where}: image is {size}, sidecar says {(row['width'], row['height'])}"
            )
    return problems


def verify(shards: Path, decode: bool = True) -> tuple[list[str], dict[str, int]]:
    """All problems of the shards under `shards`, and the counts that were checked."""
    manifest = read_manifest(shards)
    meta_path = shards / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    val_fraction = meta.get("config", {}).get("val_fraction")
    problems: list[str] = []
    seen: dict[str, str] = {}
    counts = {"shards": 0, "samples": 0}
    for split, infos in manifest.splits.items():
        for info in infos:
            found, keys = verify_shard(shards, info, split, manifest, val_fraction, decode)
            problems += found
            for key in keys:
                if key in seen:
                    problems.append(f"{info.name}: {key} also in {seen[key]}")
                seen[key] = info.name
            counts["shards"] += 1
            counts["samples"] += len(keys)
    listed = {s.name for infos in manifest.splits.values() for s in infos}
    for stray in sorted(p.name for p in shards.glob("*.tar") if p.name not in listed):
        problems.append(f"{stray}: a tar that manifest.json does not list")
    if counts["samples"] != manifest.totals.get("samples"):
        problems.append(f"read {counts['samples']} samples, manifest totals say {manifest.totals}")
    return problems, counts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(VerifyOptions, argv, prog="curate verify")
    shards = DatasetRoot(opts.root).shards
    problems, counts = verify(shards, decode=opts.decode)
    for line in problems[: opts.max_problems]:
        print(line)
    if len(problems) > opts.max_problems:
        print(f"... and {len(problems) - opts.max_problems} more problems")
    status = "FAILED" if problems else "ok"
    summary = f"verify {status}: {counts['samples']} samples in {counts['shards']} shards"
    print(f"{summary}, {len(problems)} problems ({shards})", file=sys.stderr if problems else None)
    return EXIT_MISMATCH if problems else 0
