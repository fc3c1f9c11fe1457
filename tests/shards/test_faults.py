"""The fault matrix: one real img2dataset crawl over a loopback server that misbehaves in
every way the web does, plus content duplicates and an evaluation-set near-duplicate.

Every url must end as exactly one row of downloads.parquet with the expected status and a
reason, the run must finish (exit 0), and success + failed == attempted.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from shards.build import main
from shards.serve import Route, serve_folder
from tests.shards.dataset import bomb_png, pattern_image, shard_order, write_dataset

N_GOOD = 5
# url name -> (expected status, a substring of the expected error message)
EXPECTED = {
    "404.jpg": ("failed_to_download", "404"),
    "500.jpg": ("failed_to_download", "500"),
    "reset.jpg": ("failed_to_download", "reset"),
    "stall.jpg": ("failed_to_download", "timed out"),
    "truncated.jpg": ("failed_to_resize", "decoding error"),
    "page.jpg": ("failed_to_resize", "decoding error"),
    "bomb.png": ("failed_to_resize", "CV_IO_MAX_IMAGE_PIXELS"),
    "loop.jpg": ("failed_to_download", "redirect"),
    "noai.jpg": ("failed_to_download", "X-Robots-Tag"),
    "noai-for-us.jpg": ("failed_to_download", "X-Robots-Tag"),
    "noai-for-others.jpg": ("success", None),  # a directive for another crawler only
    "good3.jpg": ("near_eval_duplicate", "eval image bench/cat.jpg"),
    "local.jpg": ("unsupported_url", "file only with --file-urls"),
    "y.jpg": ("unsupported_url", "no image source"),  # ftp://
}


@pytest.fixture(scope="module")
def fault_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("faults")
    site = tmp / "site"
    site.mkdir()
    for i in range(N_GOOD):
        (site / f"good{i}.jpg").write_bytes(pattern_image(i))
    (site / "local.jpg").write_bytes(pattern_image(50))
    jpeg = pattern_image(60)
    routes = {
        "/404.jpg": Route(status=404),
        "/500.jpg": Route(status=500),
        "/reset.jpg": Route(reset=True),
        "/stall.jpg": Route(body=pattern_image(61), delay_s=4.5),  # timeout is 2 s
        "/truncated.jpg": Route(body=jpeg[: len(jpeg) // 2], content_type="image/jpeg"),
        "/page.jpg": Route(body=b"<html><body>gone</body></html>", content_type="text/html"),
        "/bomb.png": Route(body=bomb_png(), content_type="image/png"),
        "/loop.jpg": Route(status=302, headers=(("Location", "/loop.jpg"),)),
        "/noai.jpg": Route(body=pattern_image(62), headers=(("X-Robots-Tag", "noai"),)),
        "/noai-for-us.jpg": Route(
            body=pattern_image(63), headers=(("X-Robots-Tag", "mawskit: noimageai"),)
        ),
        "/noai-for-others.jpg": Route(
            body=pattern_image(64), headers=(("X-Robots-Tag", "otherbot: noai"),)
        ),
        "/copy-of-good0.jpg": Route(body=pattern_image(0), content_type="image/jpeg"),
    }
    # The evaluation set holds a resized, re-encoded copy of good3.jpg.
    evals = tmp / "eval" / "bench"
    evals.mkdir(parents=True)
    copy = Image.open(io.BytesIO(pattern_image(3))).resize((150, 100))
    copy.save(evals / "cat.jpg", quality=60)
    (evals / "other.png").write_bytes(pattern_image(70, fmt="PNG"))
    root = tmp / "data"
    with serve_folder(site, routes) as base:
        urls = [f"{base}/good{i}.jpg" for i in range(N_GOOD)]
        urls += [f"{base}{path}" for path in routes]
        urls += [(site / "local.jpg").as_uri(), "ftp://example.org/y.jpg"]
        rows = write_dataset(root, urls)
        argv = ["--root", str(root), "--image-size", "32", "--samples-per-shard", "3",
                "--processes", "1", "--threads", "8", "--timeout", "2", "--no-file-urls",
                "--decontaminate", str(tmp / "eval")]  # fmt: skip
        assert main(argv) == 0  # nothing crashes
    return root, rows


def test_every_fault_is_a_row_with_its_reason(fault_build: tuple[Path, list[dict]]) -> None:
    root, rows = fault_build
    downloads = pq.read_table(root / "shards/downloads.parquet").to_pylist()
    assert sorted(d["uid"] for d in downloads) == sorted(r["uid"] for r in rows)  # one each
    by_name = {d["url"].rsplit("/", 1)[-1]: d for d in downloads}
    for name, (status, reason) in EXPECTED.items():
        got = by_name[name]
        assert got["status"] == status, (name, got)
        if reason is None:
            assert got["error_message"] is None
        else:
            assert reason.lower() in got["error_message"].lower(), (name, got)
    good = [f"good{i}.jpg" for i in range(1, N_GOOD) if f"good{i}.jpg" not in EXPECTED]
    assert all(by_name[n]["status"] == "success" for n in good)
    pair = sorted(["good0.jpg", "copy-of-good0.jpg"], key=lambda n: shard_order(by_name[n]["uid"]))
    assert [by_name[n]["status"] for n in pair] == ["success", "duplicate_image"]


def test_counts_add_up(fault_build: tuple[Path, list[dict]]) -> None:
    root, rows = fault_build
    counts = json.loads((root / "shards/meta.json").read_text())["counts"]
    assert counts["attempted"] == len(rows) == counts["candidates"]
    assert counts["success"] + counts["failed"] == counts["attempted"]
    assert counts["success"] == N_GOOD - 1 + 1  # good3 is an eval copy; noai-for-others
    assert counts["duplicate_images"] == 1
    assert counts["near_eval_duplicates"] == 1 and counts["eval_images"] == 2
    # http urls all reached img2dataset: its own tally agrees with ours
    assert counts["img2dataset"]["count"] == len(rows) - 2
    manifest = json.loads((root / "shards/manifest.json").read_text())
    assert manifest["totals"]["samples"] == counts["success"]
    sidecars = sorted((root / "shards").glob("*-*.parquet"))
    stored = {r["uid"] for p in sidecars for r in pq.read_table(p).to_pylist()}
    uid = {r["url"].rsplit("/", 1)[-1]: r["uid"] for r in rows}
    first_copy = min(uid["good0.jpg"], uid["copy-of-good0.jpg"], key=shard_order)
    names = ["good1.jpg", "good2.jpg", "good4.jpg", "noai-for-others.jpg"]
    assert stored == {uid[n] for n in names} | {first_copy}


def test_duplicate_keeps_the_first_in_shard_order(fault_build: tuple[Path, list[dict]]) -> None:
    root, rows = fault_build
    uid = {r["url"].rsplit("/", 1)[-1]: r["uid"] for r in rows}
    downloads = {d["uid"]: d for d in pq.read_table(root / "shards/downloads.parquet").to_pylist()}
    pair = sorted([uid["good0.jpg"], uid["copy-of-good0.jpg"]], key=shard_order)
    assert downloads[pair[0]]["status"] == "success"
    assert downloads[pair[1]]["status"] == "duplicate_image"
    assert downloads[pair[1]]["error_message"].endswith(f"as uid {pair[0]}")
