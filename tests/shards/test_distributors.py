"""curate shard --distributor: pyspark in local mode gives the multiprocessing run's shards;
a distributor whose package is missing is refused in one line."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shards.build import main
from shards.serve import Route, serve_folder
from tests.shards.dataset import image_bytes, write_dataset, write_images
from tests.shards.test_build import check_shards

BUILD = ["--image-size", "24", "--samples-per-shard", "4", "--val-fraction", "0.25"]
FAST = ["--threads", "4", "--timeout", "5"]


def statuses(root: Path) -> dict[str, tuple[str, str | None]]:
    rows = pq.read_table(root / "shards/downloads.parquet").to_pylist()
    return {r["uid"]: (r["status"], r["error_message"]) for r in rows}


@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None,
    reason="pyspark is not installed (the optional `spark` extra)",
)
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")
def test_pyspark_local_mode_matches_multiprocessing(tmp_path: Path) -> None:
    """The same url list crawled by both distributors gives byte-identical shards. Spark
    runs `local[2]` with two img2dataset shards of 8 urls, so two Spark tasks do the work.
    About 40 s, most of it the JVM starting."""
    names = write_images(tmp_path / "site", 12)
    routes = {
        "/page.jpg": Route(body=b"<html>not an image</html>", content_type="text/html"),
        "/noai.jpg": Route(body=image_bytes(99), headers=(("X-Robots-Tag", "noai"),)),
    }
    multi, spark = tmp_path / "multi", tmp_path / "spark"
    with serve_folder(tmp_path / "site", routes) as base:
        urls = [f"{base}/{n}" for n in names]
        urls += [f"{base}/gone.jpg", f"{base}/page.jpg", f"{base}/noai.jpg", "ftp://x/y.jpg"]
        rows = write_dataset(multi, urls)
        shutil.copytree(multi, spark)
        assert main(["--root", str(multi), *BUILD, *FAST, "--processes", "1"]) == 0
        spark_argv = ["--distributor", "pyspark", "--processes", "2", "--crawl-shard-size", "8"]
        assert main(["--root", str(spark), *BUILD, *FAST, *spark_argv]) == 0
    counts = check_shards(spark / "shards", rows)
    assert counts["attempted"] == 16 and counts["success"] == 12
    assert counts["failed_by_status"] == {
        "failed_to_download": 2, "failed_to_resize": 1, "unsupported_url": 1,
    }  # fmt: skip
    # both img2dataset shards of the Spark run completed (a _stats.json each)
    assert len(list((spark / "crawl/http").glob("part-00000/*_stats.json"))) == 2
    multi_counts = json.loads((multi / "shards/meta.json").read_text())["counts"]
    assert {k: v for k, v in counts.items() if k != "crawl"} == {
        k: v for k, v in multi_counts.items() if k != "crawl"
    }
    assert (spark / "shards/manifest.json").read_bytes() == (
        multi / "shards/manifest.json"
    ).read_bytes()  # same uids in the same shards, same tar sha256
    assert statuses(spark) == statuses(multi)  # every failure with the same reason


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_missing_ray_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from curation.cli import main as curate

    root = tmp_path / "data"
    write_dataset(root, ["http://127.0.0.1:9/a.jpg"])
    assert curate(["shard", "--root", str(root), "--distributor", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install ray" in err
    assert not (root / "shards").exists() and not (root / "crawl").exists()
