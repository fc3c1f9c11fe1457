"""Kill `curate shard` mid-crawl (SIGKILL to its whole process group, img2dataset's workers
included), re-run it, and get the same shards as an uninterrupted run; `--reshard`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shards.build import main
from shards.serve import Route, serve_folder
from tests.shards.dataset import pattern_image, write_dataset, write_images

REPO = Path(__file__).resolve().parents[2]
N = 12
ARGS = [
    "--image-size",
    "24",
    "--samples-per-shard",
    "4",
    "--val-fraction",
    "0.25",
    "--processes",
    "1",
    "--threads",
    "1",
    "--timeout",
    "5",
    "--crawl-shard-size",
    "3",
]  # fmt: skip  (4 img2dataset shards of 3 slow urls each)


def shard_files(shards: Path) -> dict[str, bytes]:
    names = [p for p in sorted(shards.iterdir()) if p.suffix in (".tar", ".json")]
    return {p.name: p.read_bytes() for p in names if p.name != "meta.json"}


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_killed_crawl_resumes_to_identical_shards(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    # Every image answers after 0.3 s: with one thread a crawl shard of 3 takes ~1 s.
    routes = {f"/img{i}.jpg": Route(body=pattern_image(i), delay_s=0.3) for i in range(N)}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    with serve_folder(site, routes) as base:
        urls = [f"{base}/img{i}.jpg" for i in range(N)]
        rows = write_dataset(killed, urls)
        write_dataset(clean, urls)
        # A dead run's staging folder, as a SIGKILL in the write stage would leave it.
        stale = killed / "shards.tmp-999999999"
        stale.mkdir()
        (stale / ".train-000000.tar.tmp-999999999").write_bytes(b"half a tar")

        cmd = [sys.executable, "-m", "curation.cli", "shard", "--root", str(killed), *ARGS]
        proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        part0 = killed / "crawl/http/part-00000"
        try:
            started = wait_for(lambda: any(part0.glob("*_stats.json")), timeout_s=120)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and every worker it spawned
            proc.wait()
        assert started, "the crawl never finished a shard"
        done_before = len(list(part0.glob("*_stats.json")))
        assert 1 <= done_before < 4 and not (killed / "shards").exists()

        assert main(["--root", str(killed), *ARGS]) == 0  # resume
        assert main(["--root", str(clean), *ARGS]) == 0  # uninterrupted
    assert shard_files(killed / "shards") == shard_files(clean / "shards")
    downloads = [pq.read_table(r / "shards/downloads.parquet").to_pylist() for r in (killed, clean)]
    assert downloads[0] == downloads[1]
    assert sorted(d["uid"] for d in downloads[0]) == sorted(r["uid"] for r in rows)
    counts = json.loads((killed / "shards/meta.json").read_text())["counts"]
    assert counts["success"] == N  # no gaps
    assert counts["crawl"]["reused"] == 3 * done_before  # only the rest was crawled again
    assert counts["crawl"]["crawled_now"] == N - 3 * done_before
    keys = [k for split in ("train", "val") for k in sidecar_keys(killed / "shards", split)]
    assert sorted(keys) == sorted(r["uid"] for r in rows)  # no duplicates
    assert not stale.exists()


def test_killed_local_run_resumes_to_identical_shards(tmp_path: Path) -> None:
    """SIGKILL during the one pass (it hashes each file and writes it into its tar
    together): once as its staging part appears (the pass has begun), once when a tar has
    been written; the rerun gives the shards of an uninterrupted run."""
    images = tmp_path / "images"
    images.mkdir()
    urls = []
    for i in range(300):  # JPEGs at the stored size: their own bytes go into the tars
        (images / f"{i:03d}.jpg").write_bytes(pattern_image(i, size=(24, 16)))
        urls.append((images / f"{i:03d}.jpg").as_uri())
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    rows = write_dataset(killed, urls)
    write_dataset(clean, urls)
    args = ["--image-size", "16", "--samples-per-shard", "1", "--val-fraction", "0.2"]
    cmd = [sys.executable, "-m", "curation.cli", "shard", "--root", str(killed), *args]
    staging = killed / "crawl/local"
    moments = {
        "hashing": lambda: any(staging.glob(".part-*.tmp")) or any(staging.glob("part-*")),
        "writing tars": lambda: any(killed.glob("shards.tmp-*/train-*.tar")),
    }
    for moment, reached in moments.items():
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            hit = wait_for(reached, timeout_s=120)
        finally:
            proc.kill()
            proc.wait()
        assert hit and proc.returncode == -signal.SIGKILL, moment
        assert not (killed / "shards").exists(), f"the run finished before the kill ({moment})"
    assert list(killed.glob("shards.tmp-*"))  # the dead run's staged folder, removed below

    assert main(["--root", str(killed), *args]) == 0  # resume
    assert main(["--root", str(clean), *args]) == 0  # uninterrupted
    assert shard_files(killed / "shards") == shard_files(clean / "shards")
    keys = [k for split in ("train", "val") for k in sidecar_keys(killed / "shards", split)]
    assert sorted(keys) == sorted(r["uid"] for r in rows)  # no duplicates, no gaps
    assert not list(killed.glob("shards.tmp-*"))


def sidecar_keys(shards: Path, split: str) -> list[str]:
    return [r["key"] for p in sorted(shards.glob(f"{split}-*.parquet"))
            for r in pq.read_table(p).to_pylist()]  # fmt: skip


def test_second_run_crawls_nothing_new(local_dataset: tuple[Path, list[dict]]) -> None:
    """file:// sources are re-read each run (cheap); the counts say nothing was crawled."""
    root, _ = local_dataset
    argv = ["--root", str(root), "--image-size", "16", "--samples-per-shard", "5"]
    assert main(argv) == 0
    counts = json.loads((root / "shards/meta.json").read_text())["counts"]
    assert counts["crawl"] == {"crawled_now": 0, "reused": 0, "parts": 0}


@pytest.mark.parametrize("size", [3, 7])
def test_reshard_equals_a_fresh_build(tmp_path: Path, size: int) -> None:
    images = tmp_path / "images"
    urls = [(images / n).as_uri() for n in write_images(images, 17)]
    root = tmp_path / "data"
    write_dataset(root, urls)
    argv = ["--root", str(root), "--image-size", "16", "--val-fraction", "0.3"]
    assert main([*argv, "--samples-per-shard", str(size)]) == 0
    fresh = shard_files(root / "shards")
    fresh_sidecars = {p.name: pq.read_table(p) for p in (root / "shards").glob("*-*.parquet")}
    assert main([*argv, "--samples-per-shard", "5"]) == 0
    assert main(["--root", str(root), "--reshard", str(size)]) == 0
    assert shard_files(root / "shards") == fresh  # tars and manifest, byte for byte
    for name, table in fresh_sidecars.items():
        assert pq.read_table(root / "shards" / name).equals(table)
    meta = json.loads((root / "shards/meta.json").read_text())
    assert meta["config"]["samples_per_shard"] == size
    assert meta["resharded_from"]["samples_per_shard"] == 5
