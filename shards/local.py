"""Read `file://` images from disk into a fetched table, without HTTP or img2dataset workers.

Writes `crawl_dir/local/part-000000.parquet` with the fetched-table schema of `shards.crawl`
(uid, url, status, error_message, width, height, jpg), one row per url in input order. The
pixels go through the same `ResizePolicy` (img2dataset's `Resizer`) as crawled images.

Failures are rows, as in img2dataset's vocabulary:

    failed_to_download   the file is missing or unreadable, or the uri is not a local path
    failed_to_resize     the bytes do not decode as an image (corrupt, truncated, not an image)
"""

from __future__ import annotations

import io
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from shards.crawl import SUCCESS, ResizePolicy, fetched_schema

ROWS_PER_BATCH = 256  # images held in memory before a parquet row group is written


def file_uri_to_path(url: str) -> Path:
    """`file:///a/b%20c.jpg` -> Path('/a/b c.jpg'); ValueError for other schemes or hosts."""
    parsed = urlparse(url)
    if parsed.scheme != "file":
        raise ValueError(f"not a file:// uri: {url}")
    if parsed.netloc not in ("", "localhost"):
        raise ValueError(f"file uri names a remote host {parsed.netloc!r}: {url}")
    return Path(url2pathname(unquote(parsed.path)))


def read_bytes(url: str) -> bytes | str:
    """The file's bytes, or the reason they could not be read (never raises for a bad path)."""
    try:
        return file_uri_to_path(url).read_bytes()
    except (OSError, ValueError) as err:
        return f"{type(err).__name__}: {err}"


def fetched_row(uid: str, url: str, data: bytes | str, resizer: Any) -> dict[str, Any]:
    """One fetched-table row from `read_bytes`'s result, resized by `resizer`."""
    row: dict[str, Any] = {"uid": uid, "url": url, "status": SUCCESS, "error_message": None,
                           "width": None, "height": None, "jpg": None}  # fmt: skip
    if isinstance(data, str):
        row.update(status="failed_to_download", error_message=data)
        return row
    jpg, width, height, _, _, error = resizer(io.BytesIO(data))
    if error is not None:
        row.update(status="failed_to_resize", error_message=error)
        return row
    row.update(width=width, height=height, jpg=jpg)
    return row


def read_local_images(
    uids: list[str],
    urls: list[str],
    crawl_dir: Path,
    policy: ResizePolicy,
    threads: int = 4,
) -> list[Path]:
    """Read and resize `file://` `urls`; return the fetched-table parquet (or [] when none).

    Threads overlap the file reads; resizing stays on this thread because img2dataset's
    Resizer silences stdout/stderr by swapping file descriptors, which is not thread-safe
    (img2dataset itself resizes on one thread per process). Rows keep input order, so the
    output is the same on every run.
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
    resizer = policy.make_resizer()
    schema = fetched_schema()
    final = out / "part-000000.parquet"
    tmp = out / ".part-000000.parquet.tmp"
    with ThreadPoolExecutor(max_workers=threads) as pool, pq.ParquetWriter(tmp, schema) as sink:
        for start in range(0, len(uids), ROWS_PER_BATCH):
            stop = start + ROWS_PER_BATCH
            blobs = pool.map(read_bytes, urls[start:stop])
            rows = [
                fetched_row(uid, url, data, resizer)
                for uid, url, data in zip(uids[start:stop], urls[start:stop], blobs, strict=True)
            ]
            sink.write_table(pa.Table.from_pylist(rows, schema=schema))
    tmp.rename(final)
    return [final]
