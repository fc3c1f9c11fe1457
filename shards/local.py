"""Read `file://` images from disk into the local staging table, without HTTP or img2dataset.

Writes `crawl_dir/local/part-000000.parquet`, a fetched table (`shards.crawl`: uid, url,
status, error_message, width, height, sha256, jpg) plus the `FileRef` columns of
`shards.fileref` (ref_path, ref_offset, ref_size, ref_file_bytes, ref_mtime_ns), one row per
url in input order. A success has either `jpg` (re-encoded bytes) or a ref (the bytes are
still where they were read, and are copied from there into the tar), never both. `sha256` is
of the file's bytes, as `shards.crawl` hashes the downloaded bytes. With `consume`, the
stored bytes of each success are also handed to the caller as they are read, so that
`shards.build` writes them into the tars in the same pass.

A url with a fragment names a member of a tar file: `file:///data/000001.tar#0042.jpg` is
member `0042.jpg` of `/data/000001.tar` (what `curate ingest` writes for existing
webdataset tars); its ref is the tar, the member's data offset and size. `Path.as_uri()`
escapes a literal `#` as `%23`, so a fragment is never part of a file name.

Pass-through: a file that is already an RGB JPEG of the stored size (`ResizePolicy.keeps`:
shorter side == `image_size` for `keep_ratio`, an `image_size` square for `center_crop`) is
stored byte for byte and staged as a ref only, with width and height from its frame
header, so a folder of images prepared at the target size costs a read (two when the
tars are written after the dedup, see `shards.build`) and a sha256 each: no decode, no
parquet holding the pixels. `shards.jpeg` walks the marker segments and
requires the EOI marker after the scan data, so a truncated file is `failed_to_resize`
here, as a full decode would make it (see `shards.jpeg` for what decoding would add).
What gets resized is unchanged: smaller images are still upscaled, larger ones shrunk, and
PNG, grayscale, CMYK, 12-bit, lossless or wrong-size images still go through img2dataset's
Resizer, which is imported only when the first such image turns up (it pulls in torch:
seconds); their new bytes are stored in `jpg`.

Failures are rows, as in img2dataset's vocabulary:

    failed_to_download   the file is missing or unreadable, or the uri is not a local path
    failed_to_resize     the bytes do not decode as an image (corrupt, truncated, not an image)
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from shards.crawl import FETCHED_COLUMNS, MAX_IMAGE_PIXELS, SUCCESS, ResizePolicy, fetched_schema
from shards.fileref import REF_COLUMNS, FileRef, ref_fields
from shards.jpeg import jpeg_frame

ROWS_PER_BATCH = 256  # staging rows per parquet row group
URLS_PER_TASK = 16  # urls per thread-pool task: a future per url would cost more than a hash
IN_FLIGHT = 8  # tasks queued or running at once: 128 images, each task's in one buffer
MIB = 1 << 20
STAGING_COLUMNS = (*FETCHED_COLUMNS, *REF_COLUMNS)
PASSTHROUGH_PROCESSES = (0, 1, 2)  # baseline, extended sequential, progressive Huffman


def staging_schema() -> Any:
    """The local staging table's schema: a fetched table plus the `FileRef` columns."""
    import pyarrow as pa

    return pa.schema([*fetched_schema(), *ref_fields()])


def split_file_uri(url: str) -> tuple[str, str]:
    """(path, tar member or "") of a file:// uri, each percent-decoded once:
    `file:///a/b%20c.tar#x%231.jpg` -> ("/a/b c.tar", "x#1.jpg"); ValueError for other
    schemes or hosts. The path is as `Path` would print it (`//` and `/./` collapsed)."""
    if url[:8].lower() == "file:///" and "?" not in url:  # what Path.as_uri writes
        path, _, member = url[7:].partition("#")
    else:  # a host, a query, or no file scheme: the general parse
        parts = urlsplit(url)
        if parts.scheme != "file":
            raise ValueError(f"not a file:// uri: {url}")
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file uri names a remote host {parts.netloc!r}: {url}")
        path, member = parts.path, parts.fragment
    path = unquote(path)
    if "//" in path or "/." in path or path.endswith("/"):
        path = str(Path(path))
    return path, unquote(member)


TAR_INDEX_LIMIT = 64  # tars whose member index is kept (an index: ~100 bytes per member)
_TAR_INDEX: OrderedDict[tuple[str, int, int], dict[str, tuple[int, int]]] = OrderedDict()
_TAR_INDEX_LOCK = threading.Lock()


def tar_member_index(path: str, fd: int) -> dict[str, tuple[int, int]]:
    """member name -> (data offset, size) of the regular files in the tar open as `fd`
    (indexed from that very file, not from `path` opened again), cached per (path, size,
    mtime_ns) for the `TAR_INDEX_LIMIT` most recent tars; a tar rewritten in place is
    indexed again and its old index dropped."""
    stat = os.fstat(fd)
    key = (path, stat.st_size, stat.st_mtime_ns)
    with _TAR_INDEX_LOCK:
        if key in _TAR_INDEX:
            _TAR_INDEX.move_to_end(key)
            return _TAR_INDEX[key]
        with os.fdopen(os.dup(fd), "rb") as file, tarfile.open(fileobj=file) as tar:
            index = {m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}
        for stale in [k for k in _TAR_INDEX if k[0] == path]:
            del _TAR_INDEX[stale]
        _TAR_INDEX[key] = index
        while len(_TAR_INDEX) > TAR_INDEX_LIMIT:
            _TAR_INDEX.popitem(last=False)
        return index


def open_source(url: str) -> tuple[int, FileRef] | str:
    """The file (or tar) of `url` opened, and the `FileRef` of its bytes there, or the
    reason it could not be opened (never raises for a bad path). The caller closes the
    descriptor. Size and mtime are of the open file, so they describe the bytes read."""
    try:
        path, member = split_file_uri(url)
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
    try:
        stat = os.fstat(fd)
        offset, size = 0, stat.st_size
        if member:
            index = tar_member_index(path, fd)
            if member not in index:
                os.close(fd)
                return f"KeyError: no member {member!r} in {path}"
            offset, size = index[member]
    except (OSError, tarfile.TarError) as err:
        os.close(fd)
        return f"{type(err).__name__}: {err}"
    return fd, FileRef(path, offset, size, stat.st_size, stat.st_mtime_ns)


def read_opened(fd: int, ref: FileRef, into: memoryview | None = None) -> bytes | memoryview | str:
    """`ref`'s bytes from the open `fd` (closed here): read into `into` (exactly
    `ref.size` bytes long) and returned as it when given, else as new bytes; or the reason
    they could not be read."""
    try:
        if into is None:
            data: bytes | memoryview = os.pread(fd, ref.size, ref.offset)
            got = len(data)
        else:
            data, got = into, os.preadv(fd, [into], ref.offset)
    except OSError as err:
        return f"{type(err).__name__}: {err}"
    finally:
        os.close(fd)
    if got != ref.size:
        return f"EOFError: read {got} of {ref.size} bytes of {ref.path}"
    return data


def read_source(url: str) -> tuple[bytes, FileRef] | str:
    """The file's (or tar member's) bytes and a `FileRef` to them, or the reason they could
    not be read (never raises for a bad path)."""
    opened = open_source(url)
    if isinstance(opened, str):
        return opened
    data = read_opened(*opened)
    return data if isinstance(data, str) else (bytes(data), opened[1])


def read_bytes(url: str) -> bytes | str:
    """The file's (or tar member's) bytes, or the reason they could not be read."""
    read = read_source(url)
    return read if isinstance(read, str) else read[0]


def passthrough_size(data: bytes, policy: ResizePolicy) -> tuple[int, int] | str | None:
    """(width, height) when `data` can be stored unchanged under `policy`; None when it must
    go through the Resizer; the reason when it is a JPEG of the right size that is cut
    short (no EOI marker after its scan data).

    Only 8-bit, 3-component (PIL mode RGB) baseline or progressive JPEGs qualify: the
    Resizer turns every other mode into 3-channel BGR, and the loader and `curate verify`
    should see the same kind of image either way. EXIF orientation is not applied on either
    path (OpenCV's IMREAD_UNCHANGED and PIL both ignore it).
    """
    frame = jpeg_frame(data)
    if frame is None or frame.process not in PASSTHROUGH_PROCESSES:
        return None  # no walkable header, or a coding PIL may not read: the Resizer decides
    if frame.components != 3 or frame.precision != 8:
        return None
    if frame.width * frame.height > MAX_IMAGE_PIXELS or not policy.keeps(frame.width, frame.height):
        return None
    if not frame.complete:
        return "Image decoding error: truncated JPEG (no EOI marker after the scan data)"
    return frame.width, frame.height


class LazyResizer:
    """img2dataset's Resizer for `policy`, imported and built on the first call only."""

    def __init__(self, policy: ResizePolicy) -> None:
        self.policy = policy
        self._resizer: Any = None

    def __call__(self, stream: io.BytesIO) -> tuple[Any, ...]:
        if self._resizer is None:
            self._resizer = self.policy.make_resizer()
        return self._resizer(stream)


class Read(NamedTuple):
    """What a pool thread found for one url: the bytes to resize (a view of the task's read
    buffer; None when they pass through, unless asked to keep them; the reason when
    unreadable), their sha256, `passthrough_size`'s verdict (None: resize) and the ref to
    the bytes on disk."""

    data: memoryview | str | None
    sha256: str | None
    kept: tuple[int, int] | str | None
    ref: FileRef | None


class ReadBuffers:
    """Buffers that the pool's tasks read their files into, handed back once this thread
    has written or resized what a task read, then reused: with a new bytes object per file
    the allocator kept handing out fresh pages (page faults per `curate shard` run over
    3,000 files, 180 MB: ~18k, ~12k with these buffers). Thread-safe."""

    def __init__(self) -> None:
        self._free: deque[bytearray] = deque()  # append/pop are atomic

    def take(self, size: int) -> bytearray:
        """A buffer of at least `size` bytes: a used one when it is big enough, else a new
        one with a MiB to spare, so that the next tasks' files (whose sizes vary) fit it."""
        try:
            buffer = self._free.pop()
        except IndexError:
            buffer = bytearray()
        if len(buffer) < size:
            buffer = bytearray((size // MIB + 2) * MIB)
        return buffer

    def give(self, buffer: bytearray) -> None:
        self._free.append(buffer)


def check_read(data: bytes | memoryview, ref: FileRef, policy: ResizePolicy, keep: bool) -> Read:
    """Hash `data` (read for `ref`) and check it for pass-through. The bytes of a
    pass-through image are dropped unless `keep`: the tar writer reads them again by ref."""
    kept = passthrough_size(data, policy)
    digest = hashlib.sha256(data).hexdigest()
    return Read(None if isinstance(kept, tuple) and not keep else data, digest, kept, ref)


def read_and_check_many(
    urls: list[str], policy: ResizePolicy, keep: bool, buffers: ReadBuffers
) -> tuple[list[Read], bytearray]:
    """`urls` opened, read into one buffer from `buffers`, hashed and checked for
    pass-through; the reads (their bytes are views of the buffer) and the buffer, to give
    back once the reads are used. Thread-safe, and mostly off the GIL: the reads and
    hashlib release it, so the pool's threads work in parallel. Whatever it raises (no
    memory for the buffer, say), it leaves no descriptor open."""
    opened: list[tuple[int, FileRef] | str] = []
    handed = 0  # opened[:handed] went to read_opened, which closes its descriptor
    try:
        opened.extend(open_source(url) for url in urls)
        sizes = [0 if isinstance(o, str) else o[1].size for o in opened]
        buffer = buffers.take(sum(sizes))
        view = memoryview(buffer)
        reads, start = [], 0
        for item, size in zip(opened, sizes, strict=True):
            if isinstance(item, str):
                handed += 1
                reads.append(Read(item, None, None, None))
                continue
            into = view[start : start + size]
            handed += 1
            data = read_opened(*item, into)
            start += size
            if isinstance(data, str):
                reads.append(Read(data, None, None, None))
            else:
                reads.append(check_read(data, item[1], policy, keep))
    finally:
        for item in opened[handed:]:
            if not isinstance(item, str):
                os.close(item[0])
    return reads, buffer


def fetched_row(uid: str, url: str, read: Read, resizer: Any) -> dict[str, Any]:
    """One staging-table row from `read_and_check_many`'s result: a ref when the bytes pass
    through, else the bytes resized by `resizer`."""
    row: dict[str, Any] = dict.fromkeys(STAGING_COLUMNS)
    row.update(uid=uid, url=url, status=SUCCESS)
    if isinstance(read.data, str):
        row.update(status="failed_to_download", error_message=read.data)
        return row
    if isinstance(read.kept, str):
        row.update(status="failed_to_resize", error_message=read.kept)
        return row
    if read.kept is not None:
        assert read.ref is not None
        row.update(width=read.kept[0], height=read.kept[1], **read.ref.row())
    else:
        assert read.data is not None
        jpg, width, height, _, _, error = resizer(io.BytesIO(read.data))
        if error is not None:
            row.update(status="failed_to_resize", error_message=error)
            return row
        row.update(width=width, height=height, jpg=jpg)
    row.update(sha256=read.sha256)
    return row


def read_local_images(
    uids: list[str],
    urls: list[str],
    crawl_dir: Path,
    policy: ResizePolicy,
    threads: int = 4,
    consume: Callable[[list[tuple[int, dict[str, Any], memoryview | bytes]]], None] | None = None,
) -> list[Path]:
    """Read, hash and check (pass through or resize) `file://` `urls`; return the staging
    table's parquet (or [] when none).

    `consume(successes)`, when given, is called on this thread, in input order, once per
    task of `URLS_PER_TASK` urls, with a `(i, row, image)` for each success among them:
    `i` indexes `urls`, `row` is its staging row, `image` the stored bytes (the file's own
    when they pass through, as a view of a read buffer that is reused once `consume`
    returns; else the resized JPEG), so a caller can write them while the next files are
    read (`shards.build`'s one pass) instead of reading them again by ref.

    Threads overlap the file reads, hashes and header checks; resizing stays on this
    thread because img2dataset's Resizer silences stdout/stderr by swapping file
    descriptors, which is not thread-safe (img2dataset itself resizes on one thread per
    process). Rows keep input order, so the output is the same on every run.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(uids) != len(urls):
        raise ValueError("uids and urls differ in length")
    out = crawl_dir / "local"
    shutil.rmtree(out, ignore_errors=True)
    if not uids:
        return []
    out.mkdir(parents=True)
    resizer = LazyResizer(policy)
    schema = staging_schema()
    final = out / "part-000000.parquet"
    tmp = out / ".part-000000.parquet.tmp"
    # Reading local files is hash-bound, not wait-bound: more threads than cores only
    # adds switching (the `threads` default is sized for HTTP).
    workers = max(1, min(threads, os.cpu_count() or 1))
    from shards.tar_write import collector_paused

    with (
        collector_paused(),
        ThreadPoolExecutor(max_workers=workers) as pool,
        pq.ParquetWriter(tmp, schema) as sink,
    ):
        # A sliding window of tasks, consumed in order: the threads keep reading while this
        # one resizes and writes row groups, and at most IN_FLIGHT tasks' bytes are held.
        starts = iter(range(0, len(urls), URLS_PER_TASK))
        window: deque[tuple[int, Future[tuple[list[Read], bytearray]]]] = deque()
        buffers, keep = ReadBuffers(), consume is not None

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                chunk = urls[start : start + URLS_PER_TASK]
                task = pool.submit(read_and_check_many, chunk, policy, keep, buffers)
                window.append((start, task))

        for _ in range(IN_FLIGHT):
            submit()
        rows: list[dict[str, Any]] = []
        while window:
            start, task = window.popleft()
            reads, buffer = task.result()
            submit()
            stop = start + len(reads)
            new_rows = [fetched_row(uid, url, read, resizer)
                        for uid, url, read in zip(uids[start:stop], urls[start:stop], reads,
                                                  strict=True)]  # fmt: skip
            if consume is not None:
                consume([(i, row, read.data if row["jpg"] is None else row["jpg"])
                         for i, (row, read) in enumerate(zip(new_rows, reads, strict=True), start)
                         if row["status"] == SUCCESS])  # fmt: skip
            del reads  # views of `buffer`, which the next task may now fill
            buffers.give(buffer)
            rows += new_rows
            if len(rows) >= ROWS_PER_BATCH or not window:
                sink.write_table(pa.Table.from_pylist(rows, schema=schema))
                rows = []
    tmp.rename(final)
    return [final]
