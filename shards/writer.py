"""Write webdataset shards: `{split}-NNNNNN.tar` plus a `{split}-NNNNNN.parquet` sidecar.

    with ShardWriter(folder, "train", samples_per_shard=1000) as writer:
        for sample in samples:              # ShardSample, in the order they should be read
            writer.write(sample)            # or writer.write_many(batch): fewer syscalls
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
The bytes are exactly those of `tarfile` in PAX format (plain ustar blocks for short ASCII
names), written directly, one `os.writev` per sample (per batch with `write_many`). A
finished tar's sidecar and sha256 (of the file as written, hashed from a read-only map of
it) are made on a background thread while the next shard is written;
`writer.shards` waits for them; a failed seal stops the writer (at the next shard, or at
`close`) and no seal runs on after the error. Each file is written under a temporary name
and renamed when complete, so a tar may stand complete before its sidecar does: the caller
publishes the folder (shards.build renames the staged folder) only after `close`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import mmap
import os
import tarfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from shards.manifest import ShardInfo

# json.dumps(fields, ensure_ascii=False, sort_keys=True) builds an encoder per call; one
# encoder made once writes the same bytes at a fraction of the cost (a call per sample).
_LABEL_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


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
        return _LABEL_ENCODER.encode(fields).encode()


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
    """sha256 of the file, hashed from a read-only map of it: one call that releases the
    GIL for the whole file, and no copy out of the page cache (reading it back in 1 MiB
    blocks cost a fifth of the hash itself)."""
    with path.open("rb") as f:
        if os.fstat(f.fileno()).st_size == 0:  # mmap refuses an empty file
            return hashlib.sha256().hexdigest()
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return hashlib.sha256(view).hexdigest()


# Every member header: mode 0444, owner 0:0 with empty names, mtime 0, so the same samples
# give the same bytes. These are the bytes tarfile writes for such a member in PAX format.
_MEMBER = tarfile.TarInfo()
_MEMBER.mode, _MEMBER.mtime, _MEMBER.uid, _MEMBER.gid = 0o444, 0, 0, 0
_MEMBER.uname = _MEMBER.gname = ""
_BLOCK = tarfile.BLOCKSIZE  # 512
_MAX_USTAR_SIZE = 8**11  # 11 octal digits in the ustar size field
_ZEROS = bytes(2 * tarfile.RECORDSIZE)  # the longest padding: end blocks + a record
_IOV_MAX = 1024  # buffers per os.writev: Linux's IOV_MAX


def _template() -> bytes:
    """A member header with empty name, size 0, and the checksum field as 8 spaces."""
    block = bytearray(_MEMBER.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
    block[148:156] = b" " * 8
    return bytes(block)


_TEMPLATE = _template()
_TEMPLATE_SUM = sum(_TEMPLATE) - sum(_TEMPLATE[124:136])  # without the name and size fields


def member_header(name: str, size: int) -> bytes:
    """The header block(s) tarfile would write (PAX format) for a regular member `name`.

    Short ASCII names (every uid-derived key in practice) take a ustar block patched from a
    template: tarfile's PAX mode writes exactly that when no extended header is needed, and
    building it field by field costs more than writing the member. Anything else (non-ASCII,
    over 100 bytes, a size past 8 GiB) goes through tarfile itself.
    """
    if name.isascii() and len(name) <= 100 and size < _MAX_USTAR_SIZE:
        block = bytearray(_TEMPLATE)
        encoded, size_field = name.encode("ascii"), b"%011o\0" % size
        block[: len(encoded)] = encoded
        block[124:136] = size_field
        # checksum: the byte sum of the block with the checksum field as spaces
        block[148:155] = b"%06o\0" % (_TEMPLATE_SUM + sum(encoded) + sum(size_field))
        return bytes(block)
    info = copy.copy(_MEMBER)
    info.name, info.size = name, size
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


class _TarStream:
    """Appends tar members to a new file, one `os.writev` per call of `add_many`.

    The output is byte for byte what `tarfile.open(mode="w", format=PAX_FORMAT)` + `addfile`
    writes for the same members (tests compare them), without tarfile's per-member TarInfo
    copies, header re-encoding and BytesIO round trip, which cost more than the disk writes.
    Headers, data and padding of a batch of samples go to the kernel in one call, straight
    from the bytes objects (no user-space buffer to copy them through).
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self.offset = 0

    def add(self, members: list[tuple[str, bytes]]) -> None:
        """Append `(name, data)` members."""
        self.add_many([members])

    def add_many(self, samples: list[list[tuple[str, bytes]]]) -> None:
        """Append the `(name, data)` members of several samples, in as few `os.writev` calls
        as the kernel's limit on buffers per call allows."""
        buffers: list[bytes] = []
        for members in samples:
            for name, data in members:
                buffers.append(member_header(name, len(data)))
                buffers.append(data)
                if pad := -len(data) % _BLOCK:
                    buffers.append(_ZEROS[:pad])
        for start in range(0, len(buffers), _IOV_MAX):
            self._writev(buffers[start : start + _IOV_MAX])

    def _writev(self, buffers: list[bytes]) -> None:
        total = sum(len(b) for b in buffers)
        written = os.writev(self._fd, buffers)
        if written < total:  # a short write (signal, full quota): finish it the slow way
            rest = b"".join(buffers)[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        self.offset += total

    def finish(self) -> None:
        """Two zero blocks, then zeros up to a whole 10240-byte record, as tarfile does."""
        end = self.offset + 2 * _BLOCK
        self._writev([_ZEROS[: 2 * _BLOCK + (-end % tarfile.RECORDSIZE)]])
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class ShardWriter:
    """Rolls `{split}-NNNNNN.tar` (+ sidecar) every `samples_per_shard` samples in `folder`."""

    def __init__(self, folder: str | Path, split: str, samples_per_shard: int) -> None:
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self.folder = Path(folder)
        self.split = split
        self.samples_per_shard = samples_per_shard
        # (name, count, bytes, sha256) of each finished tar; the sha256 comes from `_seal`
        self._done: list[tuple[str, int, int, Future[str]]] = []
        self._sealer: ThreadPoolExecutor | None = None  # seals finished shards (`_seal`)
        self._tar: _TarStream | None = None
        self._tmp: Path | None = None
        self._columns: dict[str, list[Any]] = {}  # the open shard's sidecar, column by column
        self._seen: set[str] = set()

    def write(self, sample: ShardSample) -> None:
        self.write_many([sample])

    def write_many(self, samples: list[ShardSample]) -> None:
        """`write` each of `samples` in order, with one `os.writev` per shard they fall in
        (up to 1024 buffers, ~110 samples) instead of one per sample: the calling thread
        gives up the GIL at each, and taking it back after another thread's turn cost more
        than the write itself (~0.2 s per 3,000 samples while the staging threads hashed).
        Keys are checked for the whole batch before any is written."""
        keys = [sample.key for sample in samples]
        for key in keys:
            if not key or "." in key or "/" in key:
                raise ValueError(f"shard keys must be non-empty and free of '.' and '/': {key!r}")
        if len(set(keys)) < len(keys) or not self._seen.isdisjoint(keys):
            # two samples with one key would merge into one in webdataset
            twice = next(k for i, k in enumerate(keys) if k in self._seen or k in keys[:i])
            raise ValueError(f"duplicate key {twice!r} in split {self.split!r}")
        self._seen.update(keys)
        pending: list[list[tuple[str, bytes]]] = []
        for key, sample in zip(keys, samples, strict=True):
            if self._tar is None:
                self._open()
            pending.append(
                [
                    (f"{key}.{sample.ext}", sample.image),
                    (f"{key}.json", sample.label_json()),
                    (f"{key}.txt", sample.caption.encode()),
                ]
            )
            row = (
                key, sample.uid, sample.url, sample.caption, [int(c) for c in sample.class_ids],
                list(sample.wnids), list(sample.hashtags), float(sample.weight),
                int(sample.width), int(sample.height), len(sample.image),
            )  # fmt: skip
            for column, value in zip(self._columns.values(), row, strict=True):
                column.append(value)
            if len(self._columns["key"]) == self.samples_per_shard:
                assert self._tar is not None
                self._tar.add_many(pending)
                pending = []
                self._finish()
        if pending:
            assert self._tar is not None
            self._tar.add_many(pending)

    @property
    def shards(self) -> list[ShardInfo]:
        """The finished shards of this split, in order (waits for their sha256)."""
        return [ShardInfo(name, count, size, sha.result()) for name, count, size, sha in self._done]

    def close(self) -> list[ShardInfo]:
        """Finish the last (short) shard; return all shards of this split in order."""
        failed = True
        try:
            if self._tar is not None:
                self._finish()
            shards = self.shards
            failed = False
        finally:  # no seal may run on after a failure (the folder is about to be removed)
            if self._sealer is not None:
                self._sealer.shutdown(wait=True, cancel_futures=failed)
        return shards

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
            return
        if self._tar is not None:  # leave no half-written shard behind
            assert self._tmp is not None
            self._tar.close()
            self._tmp.unlink(missing_ok=True)
            self._tar = None
        if self._sealer is not None:
            self._sealer.shutdown(cancel_futures=True)

    def _open(self) -> None:
        name = shard_name(self.split, len(self._done))
        self._tmp = self.folder / f".{name}.tmp-{os.getpid()}"
        self._tar = _TarStream(self._tmp)
        names = ("key", "uid", "url", "caption", "class_ids", "wnids", "hashtags", "weight")
        self._columns = {n: [] for n in (*names, "width", "height", "image_bytes")}

    def _finish(self) -> None:
        assert self._tar is not None and self._tmp is not None
        self._tar.finish()
        name = shard_name(self.split, len(self._done))
        tar_path = self.folder / name
        os.replace(self._tmp, tar_path)
        count = len(self._columns["key"])
        columns = {**self._columns, "split": [self.split] * count, "shard": [name] * count}
        # The sidecar and the sha256 (of the file as written, read back from the page cache)
        # are made on a thread of their own while the next shard is written: parquet and
        # hashlib release the GIL for most of their work.
        if self._sealer is None:
            self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard-seal")
        for *_, earlier in self._done:  # a failed seal (disk full…) stops the run here
            if earlier.done() and earlier.exception() is not None:
                raise earlier.exception()
        sha256 = self._sealer.submit(_seal, tar_path, columns)
        self._done.append((name, count, self._tar.offset, sha256))
        self._tar, self._tmp, self._columns = None, None, {}


def _seal(tar_path: Path, columns: dict[str, list[Any]]) -> str:
    """Write the sidecar of the finished tar at `tar_path` (through a temporary name);
    return the tar's sha256."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = sidecar_schema()
    table = pa.table({f.name: columns[f.name] for f in schema}, schema=schema)
    sidecar = tar_path.with_suffix(".parquet")
    tmp_sidecar = sidecar.with_name(f".{sidecar.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp_sidecar)
    os.replace(tmp_sidecar, sidecar)
    return file_sha256(tar_path)
