"""Crawl http(s) images with img2dataset into `DIR/crawl/http/`, as a *fetched table*.

A fetched table is what both image sources (this module and `shards.local`) produce and what
`shards.build` joins back to the labels: parquet files with one row per attempted sample,

    uid            string   the sample's uid (img2dataset carries it as an additional column)
    url            string
    status         string   "success" | "failed_to_download" | "failed_to_resize"
    error_message  string   null on success; e.g. "HTTP Error 404: File not found"
    width, height  int32    of the stored image (null unless success)
    jpg            binary   the re-encoded JPEG (null unless success)

img2dataset's own output (output_format="parquet": the same columns plus `key`,
`original_width`, `original_height`, and a `NNNNN_stats.json` per shard) *is* the fetched
table; nothing is copied. Both sources resize with img2dataset's `Resizer` under one
`ResizePolicy`, so a crawled image and a local one go through the same pixels path.

The crawl folder is a cache, rebuilt from scratch on every run: img2dataset 1.47's
`incremental_mode="overwrite"` deletes its own `_tmp` folder and then fails, and its
"incremental" mode keys on shard numbers, which shift when the input grows.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FETCHED_COLUMNS = ("uid", "url", "status", "error_message", "width", "height", "jpg")
SUCCESS = "success"
# X-Robots-Tag values that forbid using an image for training (img2dataset's defaults).
DISALLOWED_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")
# Rows per img2dataset shard: one spawned worker per shard, so small inputs use one worker.
CRAWL_SHARD_SIZE = 10_000
RESIZE_MODES = ("keep_ratio", "center_crop")


def fetched_schema() -> Any:
    """The pyarrow schema of a fetched table (see the module docstring)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("uid", pa.string()),
            ("url", pa.string()),
            ("status", pa.string()),
            ("error_message", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("jpg", pa.binary()),
        ]
    )


def quiet_albumentations() -> None:
    """img2dataset imports albumentations, which otherwise asks PyPI for updates (no network)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


@dataclass(frozen=True)
class ResizePolicy:
    """How every stored image is made: shorter side -> `image_size`, JPEG at `quality`.

    `keep_ratio` keeps the whole picture (the training loader crops); `center_crop` stores
    squares. Small images are upscaled too, so the manifest's `image_size` holds for all.
    """

    image_size: int
    resize_mode: str = "keep_ratio"
    quality: int = 95

    def resizer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by `img2dataset.download` and `img2dataset.resizer.Resizer`."""
        return {
            "image_size": self.image_size,
            "resize_mode": self.resize_mode,
            "resize_only_if_bigger": False,
            "encode_format": "jpg",
            "encode_quality": self.quality,
        }

    def make_resizer(self) -> Any:
        """img2dataset's Resizer: `resizer(stream) -> (jpg, w, h, orig_w, orig_h, error)`."""
        quiet_albumentations()
        from img2dataset.resizer import Resizer

        return Resizer(**self.resizer_kwargs())


@dataclass(frozen=True)
class CrawlSettings:
    """Politeness and parallelism of the crawl (img2dataset's own knobs, same meaning)."""

    processes: int = 4
    threads: int = 64
    timeout: int = 10  # seconds per request
    retries: int = 0  # extra tries per url after a failure
    user_agent_token: str = "mawskit"  # appended to the User-Agent; matched in X-Robots-Tag


def crawl_images(
    uids: list[str],
    urls: list[str],
    crawl_dir: Path,
    policy: ResizePolicy,
    settings: CrawlSettings,
) -> list[Path]:
    """Download `urls` (http or https) with img2dataset; return the fetched-table parquets.

    Writes `crawl_dir/http-input.parquet` (uid, url) and img2dataset's output under
    `crawl_dir/http/`. Failures (404, timeouts, non-images, X-Robots-Tag refusals) are rows
    with a status, never exceptions. A uid that img2dataset lost entirely (a shard that
    crashed twice) has no row; the caller treats it as not fetched.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(uids) != len(urls):
        raise ValueError("uids and urls differ in length")
    out = crawl_dir / "http"
    shutil.rmtree(out, ignore_errors=True)
    if not uids:
        return []
    crawl_dir.mkdir(parents=True, exist_ok=True)
    url_list = crawl_dir / "http-input.parquet"
    pq.write_table(pa.table({"uid": uids, "url": urls}), url_list)

    quiet_albumentations()
    import img2dataset

    img2dataset.download(
        url_list=str(url_list),
        input_format="parquet",
        url_col="url",
        save_additional_columns=["uid"],
        output_folder=str(out),
        output_format="parquet",  # one row per url, success or not, image bytes inline
        number_sample_per_shard=CRAWL_SHARD_SIZE,
        # each spawned worker re-imports img2dataset (seconds); idle ones would only cost that
        processes_count=min(settings.processes, math.ceil(len(uids) / CRAWL_SHARD_SIZE)),
        thread_count=settings.threads,
        timeout=settings.timeout,
        retries=settings.retries,
        user_agent_token=settings.user_agent_token,
        disallowed_header_directives=list(DISALLOWED_DIRECTIVES),
        distributor="multiprocessing",
        incremental_mode="incremental",  # out/ is fresh, so this starts from shard 0
        extract_exif=False,
        compute_hash=None,
        enable_wandb=False,
        **policy.resizer_kwargs(),
    )
    return sorted(p for p in out.glob("*.parquet"))


def crawl_stats(crawl_dir: Path) -> dict[str, int]:
    """Sum of img2dataset's `_stats.json` counts over all crawl shards (for meta.json)."""
    import json

    totals = {"count": 0, "successes": 0, "failed_to_download": 0, "failed_to_resize": 0}
    for path in sorted((crawl_dir / "http").glob("*_stats.json")):
        stats = json.loads(path.read_text())
        for name in totals:
            totals[name] += int(stats.get(name, 0))
    return totals
