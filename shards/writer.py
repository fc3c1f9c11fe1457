"""Write webdataset shards: `{split}-NNNNNN.tar` plus a `{split}-NNNNNN.parquet` sidecar.

    with ShardWriter(folder, "train", samples_per_shard=1000) as writer:
        for sample in samples:              # ShardSample, in the order they should be read
            writer.write(sample)
    infos = writer.shards                   # [ShardInfo(name, count, bytes, sha256), ...]

Tar members per sample, key = uid (dot-free, so webdataset splits `key.ext` correctly):

    {key}.jpg    the image bytes, as given
    {key}.json   {"uid", "url", "class_ids", "wnids", "hashtags", "weight"}
    {key}.txt    the caption, UTF-8

Sidecar parquet, one row per sample in tar order:

    key string · uid string · url string · caption string · class_ids list<int32> ·
    wnids list<string> · hashtags list<string> · weight float32 · split string ·
    shard string (the tar's name, as in manifest.json) · width int32 · height int32 ·
    image_bytes int64

Every shard holds exactly `samples_per_shard` samples except the last. Tars are
byte-reproducible: fixed mtime, owner and mode, so the same samples give the same sha256.
Each file is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from shards.manifest import ShardInfo


@dataclass(frozen=True)
class ShardSample:
    """One labeled image, ready to store. `image` is encoded bytes of type `ext`."""

    uid: str
    url: str
    caption: str
    class_ids: list[int]
    wnids: list[str]
    hashtags: list[str]
    weight: float
    image: bytes
    width: int
    height: int
    ext: str = "jpg"

    @property
    def key(self) -> str:
        return self.uid

    def label_json(self) -> bytes:
        """The `{key}.json` member."""
        fields = {
            "uid": self.uid,
            "url": self.url,
            "class_ids": [int(c) for c in self.class_ids],
            "wnids": list(self.wnids),
            "hashtags": list(self.hashtags),
            "weight": float(self.weight),
        }
        return json.dumps(fields, ensure_ascii=False, sort_keys=True).encode()


def sidecar_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("key", pa.string()),
            ("uid", pa.string()),
            ("url", pa.string()),
            ("caption", pa.string()),
            ("class_ids", pa.list_(pa.int32())),
            ("wnids", pa.list_(pa.string())),
            ("hashtags", pa.list_(pa.string())),
            ("weight", pa.float32()),
            ("split", pa.string()),
            ("shard", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("image_bytes", pa.int64()),
        ]
    )


def shard_name(split: str, index: int) -> str:
    return f"{split}-{index:06d}.tar"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o444
    info.mtime = 0  # reproducible bytes: no wall-clock time, owner or group in the header
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


class _HashingFile(io.RawIOBase):
    """A write-only file that feeds sha256 as it writes: the tar's digest without a re-read."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("wb", buffering=1 << 20)
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def tell(self) -> int:  # tarfile asks where it starts
        return self._file.tell()

    def write(self, data: Any) -> int:
        self.digest.update(data)
        return self._file.write(data)

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


class ShardWriter:
    """Rolls `{split}-NNNNNN.tar` (+ sidecar) every `samples_per_shard` samples in `folder`."""

    def __init__(self, folder: str | Path, split: str, samples_per_shard: int) -> None:
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self.folder = Path(folder)
        self.split = split
        self.samples_per_shard = samples_per_shard
        self.shards: list[ShardInfo] = []
        self._tar: tarfile.TarFile | None = None
        self._file: _HashingFile | None = None
        self._tmp: Path | None = None
        self._rows: list[dict[str, Any]] = []
        self._seen: set[str] = set()

    def write(self, sample: ShardSample) -> None:
        key = sample.key
        if not key or "." in key or "/" in key:
            raise ValueError(f"shard keys must be non-empty and free of '.' and '/': {key!r}")
        if key in self._seen:  # two samples with one key would merge into one in webdataset
            raise ValueError(f"duplicate key {key!r} in split {self.split!r}")
        self._seen.add(key)
        if self._tar is None:
            self._open()
        assert self._tar is not None
        _add_member(self._tar, f"{key}.{sample.ext}", sample.image)
        _add_member(self._tar, f"{key}.json", sample.label_json())
        _add_member(self._tar, f"{key}.txt", sample.caption.encode())
        self._rows.append(
            {
                "key": key,
                "uid": sample.uid,
                "url": sample.url,
                "caption": sample.caption,
                "class_ids": [int(c) for c in sample.class_ids],
                "wnids": list(sample.wnids),
                "hashtags": list(sample.hashtags),
                "weight": float(sample.weight),
                "split": self.split,
                "shard": shard_name(self.split, len(self.shards)),
                "width": int(sample.width),
                "height": int(sample.height),
                "image_bytes": len(sample.image),
            }
        )
        if len(self._rows) == self.samples_per_shard:
            self._finish()

    def close(self) -> list[ShardInfo]:
        """Finish the last (short) shard; return all shards of this split in order."""
        if self._tar is not None:
            self._finish()
        return list(self.shards)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        elif self._tar is not None:  # leave no half-written shard behind
            self._tar.close()
            assert self._tmp is not None and self._file is not None
            self._file.close()
            self._tmp.unlink(missing_ok=True)
            self._tar = None

    def _open(self) -> None:
        name = shard_name(self.split, len(self.shards))
        self._tmp = self.folder / f".{name}.tmp-{os.getpid()}"
        self._file = _HashingFile(self._tmp)
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)

    def _finish(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._tar is not None and self._tmp is not None and self._file is not None
        self._tar.close()  # writes the end-of-archive blocks into the hashing file
        self._file.close()
        name = shard_name(self.split, len(self.shards))
        tar_path = self.folder / name
        os.replace(self._tmp, tar_path)
        sidecar = tar_path.with_suffix(".parquet")
        tmp_sidecar = sidecar.with_name(f".{sidecar.name}.tmp-{os.getpid()}")
        pq.write_table(pa.Table.from_pylist(self._rows, schema=sidecar_schema()), tmp_sidecar)
        os.replace(tmp_sidecar, sidecar)
        self.shards.append(
            ShardInfo(
                name=name,
                count=len(self._rows),
                bytes=tar_path.stat().st_size,
                sha256=self._file.digest.hexdigest(),
            )
        )
        self._tar, self._file, self._tmp, self._rows = None, None, None, []
