"""References to image bytes on local disk, and reading them back only if nothing changed.

When `curate shard` writes its tars after the dedup (the two-pass write of any run with
http(s) urls or `--decontaminate`; a local-only run reads each file once and writes it as
it reads, see `shards.tar_write`), it reads a local image twice: once to hash and check it
(`shards.local`, into the staging table), once to copy it into its tar, after the shuffle,
dedup and split have run on small rows. Between the two reads the staging table holds a
`FileRef` instead of the bytes:

    ref_path        string   the file, or the tar that holds the member
    ref_offset      int64    where the image bytes start in that file (0 for a plain file)
    ref_size        int64    how many bytes the image has
    ref_file_bytes  int64    size of the whole file when it was hashed
    ref_mtime_ns    int64    its modification time (ns) when it was hashed

`FileRefReader.read` reads a ref back and raises `SourceChanged` (a `UsageError`: one
line, exit 2) when the file is gone or its size or mtime differ from what was recorded, so
an image replaced after it was hashed never reaches a tar under the old sha256; the
caller's staged folder is then removed and nothing half-written is left. Size + mtime is
the check `make` and `rsync` rely on; hashing again would cost as much as the first read.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from curation.errors import UsageError

REF_COLUMNS = ("ref_path", "ref_offset", "ref_size", "ref_file_bytes", "ref_mtime_ns")
OPEN_FILES = 64  # file descriptors kept open: members of one tar are read in shuffled order


class SourceChanged(UsageError):
    """A local image changed or disappeared between hashing and copying."""


@dataclass(frozen=True)
class FileRef:
    """`size` bytes at `offset` of `path`, whose whole file had `file_bytes` bytes and
    modification time `mtime_ns` when they were hashed."""

    path: str
    offset: int
    size: int
    file_bytes: int
    mtime_ns: int

    @classmethod
    def of(cls, fd: int, path: str, offset: int, size: int) -> FileRef:
        """A ref to `size` bytes at `offset` of the open file `fd` (stat taken now)."""
        stat = os.fstat(fd)
        return cls(path, offset, size, stat.st_size, stat.st_mtime_ns)

    def row(self) -> dict[str, Any]:
        """The staging-table columns (`REF_COLUMNS`)."""
        return dict(zip(REF_COLUMNS, (self.path, self.offset, self.size, self.file_bytes,
                                      self.mtime_ns), strict=True))  # fmt: skip


def ref_fields() -> list[Any]:
    """The pyarrow fields of `REF_COLUMNS`."""
    import pyarrow as pa

    return [pa.field(REF_COLUMNS[0], pa.string())] + [
        pa.field(name, pa.int64()) for name in REF_COLUMNS[1:]
    ]


def stored_bytes(row: dict[str, Any], reader: FileRefReader) -> bytes:
    """The image of a staging row (`jpg` plus `REF_COLUMNS`): its jpg when it has one, else
    the bytes its ref points at, read by `reader`."""
    if row["jpg"] is not None:
        return row["jpg"]
    return reader.read(FileRef(*(row[c] for c in REF_COLUMNS)))


class FileRefReader:
    """Reads `FileRef`s, keeping up to `OPEN_FILES` files open. The file's size and mtime,
    read once when it is opened, must equal every ref's record of them (refs to members of
    one tar hashed before and after a rewrite disagree). Use as a context manager."""

    def __init__(self) -> None:
        self._open: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # fd, size, mtime

    def read(self, ref: FileRef) -> bytes:
        fd = self._fd(ref)
        data = os.pread(fd, ref.size, ref.offset)
        if len(data) != ref.size:  # only if the size check raced with a writer
            raise SourceChanged(f"{ref.path} changed since curate shard hashed it; run it again")
        return data

    def _fd(self, ref: FileRef) -> int:
        opened = self._open.get(ref.path)
        if opened is None:
            opened = self._open_file(ref.path)
        else:
            self._open.move_to_end(ref.path)
        fd, size, mtime_ns = opened
        if (size, mtime_ns) != (ref.file_bytes, ref.mtime_ns):
            raise SourceChanged(
                f"{ref.path} changed since curate shard hashed it (size {ref.file_bytes} ->"
                f" {size}, mtime_ns {ref.mtime_ns} -> {mtime_ns}); run it again"
            )
        return fd

    def _open_file(self, path: str) -> tuple[int, int, int]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError as err:
            raise SourceChanged(
                f"{path} disappeared since curate shard hashed it"
                f" ({type(err).__name__}); run it again"
            ) from err
        stat = os.fstat(fd)
        self._open[path] = (fd, stat.st_size, stat.st_mtime_ns)
        if len(self._open) > OPEN_FILES:
            os.close(self._open.popitem(last=False)[1][0])
        return self._open[path]

    def close(self) -> None:
        while self._open:
            os.close(self._open.popitem()[1][0])

    def __enter__(self) -> FileRefReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
