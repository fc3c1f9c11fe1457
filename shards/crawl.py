"""Crawl http(s) images with img2dataset into `DIR/crawl/http/`, resumably, as a *fetched table*.

A fetched table is what both image sources (this module and `shards.local`) produce and what
`shards.build` joins back to the labels: parquet files with one row per attempted sample,

    uid            string   the sample's uid (img2dataset carries it as an additional column)
    url            string
    status         string   "success" | "failed_to_download" | "failed_to_resize"
    error_message  string   null on success; e.g. "HTTP Error 404: File not found"
    width, height  int32    of the stored image (null unless success)
    sha256         string   hex sha256 of the *original* bytes as downloaded or read
                            (before resizing; null unless success): the content-dedup key
    jpg            binary   the re-encoded JPEG (null unless success)

img2dataset's own output (output_format="parquet": the same columns plus `key`,
`original_width`, `original_height`, and a `NNNNN_stats.json` per shard) *is* the fetched
table; nothing is copied. Both sources resize with img2dataset's `Resizer` under one
`ResizePolicy`, so a crawled image and a local one go through the same pixels path.

Resume. The crawl folder is a sequence of *crawl parts*, each one img2dataset run:

    crawl/http/policy.json            the ResizePolicy the cached pixels were made with
    crawl/http/part-NNNNN/input.parquet    uid, url handed to that run
    crawl/http/part-NNNNN/SSSSS.parquet    img2dataset's shard; complete iff
    crawl/http/part-NNNNN/SSSSS_stats.json exists (img2dataset writes it last)

A run keeps every *successful* row of the complete shards of earlier parts and hands only
the rest (failed before, or never reached because the run was killed) to a new part. An
incomplete shard (killed mid-write) is ignored, so its uids count as never attempted. A
changed ResizePolicy invalidates the cache (the folder is wiped). We keep our own
bookkeeping because img2dataset 1.47's `incremental_mode="overwrite"` deletes its own `_tmp`
folder and then fails, and its "incremental" mode keys on shard numbers, which shift when
the input changes.

Decompression bombs: OpenCV (img2dataset's decoder) refuses images over
`OPENCV_IO_MAX_IMAGE_PIXELS` before allocating; we set it to `MAX_IMAGE_PIXELS` (PIL's own
bomb limit) in the environment the crawl workers inherit, so a 30,000 x 30,000 PNG is a
`failed_to_resize` row instead of 2.7 GB of pixels per worker.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FETCHED_COLUMNS = ("uid", "url", "status", "error_message", "width", "height", "sha256", "jpg")
SUCCESS = "success"
# X-Robots-Tag values that forbid using an image for training (img2dataset's defaults).
DISALLOWED_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")
# Rows per img2dataset shard: the unit of parallelism (one worker task) and of resume.
CRAWL_SHARD_SIZE = 10_000
RESIZE_MODES = ("keep_ratio", "center_crop")
DISTRIBUTORS = ("multiprocessing", "pyspark", "ray")
MAX_IMAGE_PIXELS = 178_956_970  # PIL's DecompressionBombError threshold: 2 x 89,478,485


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
            ("sha256", pa.string()),
            ("jpg", pa.binary()),
        ]
    )


def prepare_image_env() -> None:
    """Environment for img2dataset and OpenCV, set before either is imported or spawned.

    albumentations (imported by img2dataset) otherwise asks PyPI for updates (no network);
    OpenCV reads its pixel limit from the environment on first decode.
    """
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))


@dataclass(frozen=True)
class ResizePolicy:
    """How every stored image is made: shorter side -> `image_size`, JPEG at `quality`.

    `keep_ratio` keeps the whole picture (the training loader crops); `center_crop` stores
    squares. Small images are upscaled too, so the manifest's `image_size` holds for all.
    The default 256 leaves a 224 random-resized crop (the ViT input) room to move.
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

    def keeps(self, width: int, height: int) -> bool:
        """True when resizing a `width` x `height` image would not change its size: the shorter
        side is already `image_size` (`keep_ratio`), or it is an `image_size` square
        (`center_crop`). Such JPEGs are stored as they are (`shards.local`)."""
        if self.resize_mode == "center_crop":
            return width == height == self.image_size
        return self.resize_mode == "keep_ratio" and min(width, height) == self.image_size

    def make_resizer(self) -> Any:
        """img2dataset's Resizer: `resizer(stream) -> (jpg, w, h, orig_w, orig_h, error)`."""
        prepare_image_env()
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
    disallowed_header_directives: tuple[str, ...] = DISALLOWED_DIRECTIVES
    distributor: str = "multiprocessing"  # or "pyspark" / "ray": img2dataset's distributors
    shard_size: int = CRAWL_SHARD_SIZE  # urls per img2dataset shard (the unit of resume)


@dataclass(frozen=True)
class CrawlResult:
    """What `crawl_images` did: the fetched-table parquets to read, and how many urls of this
    run's list were crawled now versus taken from earlier parts."""

    parts: tuple[Path, ...]
    crawled_now: int
    reused: int


def check_distributor(name: str) -> None:
    """ValueError unless `name` is an img2dataset distributor whose package is installed.

    img2dataset's ray distributor silently does nothing when ray is missing; we refuse.
    """
    import importlib.util

    if name not in DISTRIBUTORS:
        raise ValueError(f"unknown distributor {name!r}; one of {', '.join(DISTRIBUTORS)}")
    package = {"pyspark": "pyspark", "ray": "ray"}.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise ValueError(f"--distributor {name} needs the {package} package: pip install {package}")


def complete_shards(http_dir: Path) -> list[Path]:
    """The img2dataset shard parquets whose `_stats.json` exists, in part and shard order."""
    return sorted(
        p
        for p in http_dir.glob("part-*/*.parquet")
        if p.name != "input.parquet" and p.with_name(f"{p.stem}_stats.json").exists()
    )


def _done_uids(shards: Sequence[Path]) -> set[str]:
    """uids with a success row in `shards` (those are never crawled again)."""
    import pyarrow.parquet as pq

    done: set[str] = set()
    for path in shards:
        table = pq.read_table(path, columns=["uid", "status"])
        for uid, status in zip(
            table.column("uid").to_pylist(), table.column("status").to_pylist(), strict=True
        ):
            if status == SUCCESS:
                done.add(uid)
    return done


def _reset_if_policy_changed(http_dir: Path, policy: ResizePolicy) -> None:
    wanted = asdict(policy)
    path = http_dir / "policy.json"
    if path.exists() and json.loads(path.read_text()) == wanted:
        return
    shutil.rmtree(http_dir, ignore_errors=True)  # other pixels: nothing cached is usable
    http_dir.mkdir(parents=True)
    path.write_text(json.dumps(wanted, sort_keys=True) + "\n")


def crawl_images(
    uids: list[str],
    urls: list[str],
    crawl_dir: Path,
    policy: ResizePolicy,
    settings: CrawlSettings,
) -> CrawlResult:
    """Download those of `urls` (http or https) not yet fetched successfully; img2dataset.

    Returns every complete fetched-table parquet of `crawl_dir/http/` (earlier parts too).
    Failures (404, timeouts, non-images, X-Robots-Tag refusals, bombs) are rows with a
    status, never exceptions. A uid that img2dataset lost entirely (a shard that crashed
    twice) has no row; the caller treats it as not fetched.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(uids) != len(urls):
        raise ValueError("uids and urls differ in length")
    http_dir = crawl_dir / "http"
    if not uids:
        return CrawlResult(parts=(), crawled_now=0, reused=0)
    _reset_if_policy_changed(http_dir, policy)
    done = _done_uids(complete_shards(http_dir))
    todo = [(u, url) for u, url in zip(uids, urls, strict=True) if u not in done]
    if todo:
        numbers = [int(p.name.split("-")[1]) for p in http_dir.glob("part-*")]
        part = http_dir / f"part-{max(numbers, default=-1) + 1:05d}"
        part.mkdir()
        url_list = part / "input.parquet"
        pq.write_table(
            pa.table({"uid": [u for u, _ in todo], "url": [url for _, url in todo]}), url_list
        )
        _run_img2dataset(url_list, part, len(todo), policy, settings)
    wanted = set(uids)
    parts = tuple(p for p in complete_shards(http_dir) if _holds_any(p, wanted))
    return CrawlResult(parts=parts, crawled_now=len(todo), reused=len(uids) - len(todo))


def _holds_any(path: Path, uids: set[str]) -> bool:
    import pyarrow.parquet as pq

    return any(u in uids for u in pq.read_table(path, columns=["uid"]).column("uid").to_pylist())


def download_kwargs(
    url_list: Path, out: Path, n_urls: int, policy: ResizePolicy, settings: CrawlSettings
) -> dict[str, Any]:
    """The `img2dataset.download` arguments of one crawl part (`bench.crawl` reuses them)."""
    return {
        "url_list": str(url_list),
        "input_format": "parquet",
        "url_col": "url",
        "save_additional_columns": ["uid"],
        "output_folder": str(out),
        "output_format": "parquet",  # one row per url, success or not, image bytes inline
        "number_sample_per_shard": settings.shard_size,
        # each spawned worker re-imports img2dataset (seconds); idle ones would only cost that
        "processes_count": min(settings.processes, math.ceil(n_urls / settings.shard_size)),
        "thread_count": settings.threads,
        "timeout": settings.timeout,
        "retries": settings.retries,
        "user_agent_token": settings.user_agent_token,
        "disallowed_header_directives": list(settings.disallowed_header_directives),
        "distributor": settings.distributor,
        "incremental_mode": "incremental",  # a fresh part folder: starts from shard 0
        "extract_exif": False,
        "compute_hash": "sha256",  # of the original bytes: the content-dedup key
        "enable_wandb": False,
        **policy.resizer_kwargs(),
    }


def _run_img2dataset(
    url_list: Path, out: Path, n_urls: int, policy: ResizePolicy, settings: CrawlSettings
) -> None:
    prepare_image_env()
    if settings.distributor == "pyspark":
        # Spark starts its Python workers with `python3` from PATH, which lacks img2dataset
        # unless it is this interpreter; a cluster's own setting is kept.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    import img2dataset

    img2dataset.download(**download_kwargs(url_list, out, n_urls, policy, settings))


def crawl_stats(crawl_dir: Path) -> dict[str, int]:
    """Sum of img2dataset's `_stats.json` counts over all parts and shards (for meta.json)."""
    totals = {"count": 0, "successes": 0, "failed_to_download": 0, "failed_to_resize": 0}
    for path in sorted((crawl_dir / "http").glob("part-*/*_stats.json")):
        stats = json.loads(path.read_text())
        for name in totals:
            totals[name] += int(stats.get(name, 0))
    return totals
