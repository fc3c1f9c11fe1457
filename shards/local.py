"""Read `file://` images from disk into a fetched table, without HTTP or img2dataset workers.

Writes `crawl_dir/local/part-000000.parquet` with the fetched-table schema of `shards.crawl`
(uid, url, status, error_message, width, height, sha256, jpg), one row per url in input
order. The pixels go through the same `ResizePolicy` (img2dataset's `Resizer`) as crawled
images; `sha256` is of the file's bytes, as `shards.crawl` hashes the downloaded bytes.

A url with a fragment names a member of a tar file: `file:///data/000001.tar#0042.jpg` is
member `0042.jpg` of `/data/000001.tar` (what `curate ingest` writes for existing
webdataset tars). `Path.as_uri()` escapes a literal `#` as `%23`, so a fragment is never
part of a file name.

Pass-through: a file that is already an RGB JPEG of the stored size (`ResizePolicy.keeps`:
shorter side == `image_size` for `keep_ratio`, an `image_size` square for `center_crop`) is
stored byte for byte, with width and height from its header, so a folder of images prepared
at the target size costs a read and one decode instead of a decode, resize and re-encode.
What gets resized is unchanged: smaller images are still upscaled, larger ones shrunk, and
PNG, grayscale, CMYK or wrong-size images still go through img2dataset's Resizer, which is
imported only when the first such image turns up (importing it pulls in torch: seconds).
A pass-through JPEG is decoded once by PIL at 1/8 scale (`Image.draft`: every marker and
every Huffman-coded coefficient is still read, only the inverse DCT is reduced), so that a
corrupt or truncated file fails here, as it would in the Resizer, and not in training;
`curate verify` decodes every stored image at full size.

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
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from shards.crawl import MAX_IMAGE_PIXELS, SUCCESS, ResizePolicy, fetched_schema

ROWS_PER_BATCH = 256  # images held in memory before a parquet row group is written
JPEG_MAGIC = b"\xff\xd8\xff"  # SOI marker, then the first segment's marker


def file_uri_to_path(url: str) -> Path:
    """`file:///a/b%20c.jpg` -> Path('/a/b c.jpg'); ValueError for other schemes or hosts."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ValueError(f"not a file:// uri: {url}")
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"file uri names a remote host {parsed.netloc!r}: {url}")
    return Path(url2pathname(unquote(parsed.path)))


_TAR_INDEX: dict[Path, dict[str, tuple[int, int]]] = {}
_TAR_INDEX_LOCK = threading.Lock()


def tar_member_index(path: Path) -> dict[str, tuple[int, int]]:
    """member name -> (data offset, size) of the regular files in the tar at `path` (cached)."""
    with _TAR_INDEX_LOCK:
        if path not in _TAR_INDEX:
            with tarfile.open(path) as tar:
                _TAR_INDEX[path] = {
                    m.name: (m.offset_data, m.size) for m in tar.getmembers() if m.isfile()
                }
        return _TAR_INDEX[path]


def read_bytes(url: str) -> bytes | str:
    """The file's (or tar member's) bytes, or the reason they could not be read (never raises
    for a bad path)."""
    try:
        path = file_uri_to_path(url)
        member = unquote(urlparse(url).fragment)
        if not member:
            return path.read_bytes()
        offset, size = tar_member_index(path).get(member, (-1, 0))
        if offset < 0:
            return f"KeyError: no member {member!r} in {path}"
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(size)
    except (OSError, ValueError, tarfile.TarError) as err:
        return f"{type(err).__name__}: {err}"


def passthrough_size(data: bytes, policy: ResizePolicy) -> tuple[int, int] | str | None:
    """(width, height) when `data` can be stored unchanged under `policy`; None when it must
    go through the Resizer; the decoding error when it is a JPEG of the right size that does
    not decode (truncated, corrupt entropy data).

    Only RGB JPEGs qualify: the Resizer turns every other mode into 3-channel BGR, and the
    loader and `curate verify` should see the same kind of image either way. EXIF orientation
    is not applied on either path (OpenCV's IMREAD_UNCHANGED and PIL both ignore it).
    """
    if not data.startswith(JPEG_MAGIC):
        return None
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data), formats=["JPEG"])  # reads the header only
    except (OSError, ValueError, SyntaxError):
        return None  # no readable header: let the Resizer say what is wrong
    with img:
        width, height = img.size
        if img.mode != "RGB" or width * height > MAX_IMAGE_PIXELS:
            return None
        if not policy.keeps(width, height):
            return None
        # Decode every entropy-coded block at 1/8 scale: libjpeg still parses all markers
        # and Huffman-decodes every coefficient, so a truncated or corrupt stream fails as in
        # a full decode; only the inverse DCT is cheaper (half the cost of `load()` at full
        # size, measured by bench.shard_write). The header alone says nothing of truncation.
        img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        try:
            img.load()
        except (OSError, ValueError, SyntaxError) as err:
            return f"Image decoding error: {type(err).__name__}: {err}"
    return width, height


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
    """What a pool thread found for one url: `read_bytes`'s result, its sha256 (None when
    unread) and `passthrough_size`'s verdict (None: resize it)."""

    data: bytes | str
    sha256: str | None
    kept: tuple[int, int] | str | None


def read_and_check(url: str, policy: ResizePolicy) -> Read:
    """`read_bytes(url)`, hashed and checked for pass-through. Thread-safe, and mostly off
    the GIL: hashlib and PIL's decoder release it, so the pool's threads work in parallel."""
    data = read_bytes(url)
    if isinstance(data, str):
        return Read(data, None, None)
    return Read(data, hashlib.sha256(data).hexdigest(), passthrough_size(data, policy))


def fetched_row(uid: str, url: str, read: Read, resizer: Any) -> dict[str, Any]:
    """One fetched-table row from `read_and_check`'s result: the bytes themselves when they
    pass through, else resized by `resizer`."""
    row: dict[str, Any] = {"uid": uid, "url": url, "status": SUCCESS, "error_message": None,
                           "width": None, "height": None, "sha256": None,
                           "jpg": None}  # fmt: skip
    if isinstance(read.data, str):
        row.update(status="failed_to_download", error_message=read.data)
        return row
    if isinstance(read.kept, str):
        row.update(status="failed_to_resize", error_message=read.kept)
        return row
    if read.kept is not None:
        jpg, (width, height) = read.data, read.kept
    else:
        jpg, width, height, _, _, error = resizer(io.BytesIO(read.data))
        if error is not None:
            row.update(status="failed_to_resize", error_message=error)
            return row
    row.update(width=width, height=height, jpg=jpg, sha256=read.sha256)
    return row


def read_local_images(
    uids: list[str],
    urls: list[str],
    crawl_dir: Path,
    policy: ResizePolicy,
    threads: int = 4,
) -> list[Path]:
    """Read and resize (or pass through) `file://` `urls`; return the fetched-table parquet
    (or [] when none).

    Threads overlap the file reads and the pass-through checks; resizing stays on this
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
    schema = fetched_schema()
    final = out / "part-000000.parquet"
    tmp = out / ".part-000000.parquet.tmp"
    # Reading local files is decode-bound, not wait-bound: more threads than cores only
    # adds switching (the `threads` default is sized for HTTP).
    workers = max(1, min(threads, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool, pq.ParquetWriter(tmp, schema) as sink:
        for start in range(0, len(uids), ROWS_PER_BATCH):
            stop = start + ROWS_PER_BATCH
            blobs = pool.map(partial(read_and_check, policy=policy), urls[start:stop])
            rows = [
                fetched_row(uid, url, read, resizer)
                for uid, url, read in zip(uids[start:stop], urls[start:stop], blobs, strict=True)
            ]
            sink.write_table(pa.Table.from_pylist(rows, schema=schema))
    tmp.rename(final)
    return [final]
