"""curate shard end to end: real img2dataset against a loopback server, and file:// input."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from labeling.vocab_file import vocab_hash
from shards.build import main, split_of
from shards.serve import Route, serve_folder
from tests.shards.dataset import (
    WNIDS,
    image_bytes,
    run_shard,
    shard_order,
    write_dataset,
    write_images,
)

FAST = ["--processes", "1", "--threads", "4", "--timeout", "5"]


def read_samples(shards: Path) -> dict[str, list[dict]]:
    """Every split's samples read back with webdataset, in stream order."""
    import webdataset as wds

    manifest = json.loads((shards / "manifest.json").read_text())
    out = {}
    for split, info in manifest["splits"].items():
        paths = [str(shards / s["name"]) for s in info["shards"]]
        out[split] = list(wds.WebDataset(paths, shardshuffle=False)) if paths else []
    return out


def check_shards(shards: Path, rows: list[dict]) -> dict:
    """Assertions every successful build must pass; returns meta.json's counts."""
    manifest = json.loads((shards / "manifest.json").read_text())
    counts = json.loads((shards / "meta.json").read_text())["counts"]
    by_uid = {r["uid"]: r for r in rows}
    samples = read_samples(shards)
    for split, info in manifest["splits"].items():
        assert info["count"] == len(samples[split]) == counts["splits"][split]
        for shard in info["shards"]:
            data = (shards / shard["name"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"]
            assert len(data) == shard["bytes"]
            with tarfile.open(shards / shard["name"]) as tar:
                assert len(tar.getnames()) == 3 * shard["count"]
            sidecar = pq.read_table((shards / shard["name"]).with_suffix(".parquet")).to_pylist()
            assert len(sidecar) == shard["count"]
            assert {r["shard"] for r in sidecar} == {shard["name"]}
        for sample in samples[split]:
            label = json.loads(sample["json"])
            row = by_uid[sample["__key__"]]
            assert label["uid"] == row["uid"] and label["class_ids"] == row["class_ids"]
            assert label["wnids"] == row["wnids"] and label["url"] == row["url"]
            assert sample["txt"].decode() == row["caption"]
            assert sample["jpg"][:2] == b"\xff\xd8"  # re-encoded as JPEG, whatever came in
            assert split_of(row["uid"], 0.25) == split
    assert manifest["vocab_hash"] == vocab_hash(WNIDS)
    assert [c["wnid"] for c in manifest["classes"]] == WNIDS
    assert counts["success"] + counts["failed"] == counts["attempted"]
    assert manifest["totals"]["samples"] == counts["success"]
    downloads = pq.read_table(shards / "downloads.parquet").to_pylist()
    assert len(downloads) == counts["attempted"]
    assert sum(d["status"] == "success" for d in downloads) == counts["success"]
    return counts


@pytest.fixture(scope="module")
def http_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """Two real crawls (img2dataset spawns workers, ~10 s each), shared by the http tests."""
    tmp = tmp_path_factory.mktemp("http")
    names = write_images(tmp / "site", 12)
    routes = {
        "/page.jpg": Route(body=b"<html>not an image</html>", content_type="text/html"),
        "/noai.jpg": Route(body=image_bytes(99), headers=(("X-Robots-Tag", "noai"),)),
    }
    root = tmp / "data"
    with serve_folder(tmp / "site", routes) as base:
        urls = [f"{base}/{n}" for n in names]
        urls += [f"{base}/gone.jpg", f"{base}/page.jpg", f"{base}/noai.jpg", "ftp://x/y.jpg"]
        rows = write_dataset(root, urls)
        argv = ["--root", str(root), "--image-size", "24", "--samples-per-shard", "4"]
        argv += ["--val-fraction", "0.25", *FAST]
        assert main(argv) == 0
        first = (root / "shards/manifest.json").read_text()
        assert main(argv) == 0  # a rerun crawls only the failures again
    assert (root / "shards/manifest.json").read_text() == first  # same bytes, same sha256
    return root, rows


def test_http_crawl_counts_add_up(http_build: tuple[Path, list[dict]]) -> None:
    root, rows = http_build
    counts = check_shards(root / "shards", rows)
    assert counts["attempted"] == counts["candidates"] == 16
    # the ftp url never reaches the crawler; the rerun retried only the 3 failed urls
    assert counts["img2dataset"]["count"] == 15 + 3
    assert counts["crawl"] == {"crawled_now": 3, "reused": 12, "parts": 2}
    assert counts["img2dataset"]["successes"] == counts["success"]
    assert counts["success"] == 12
    assert counts["failed_by_status"] == {
        "failed_to_download": 2, "failed_to_resize": 1, "unsupported_url": 1,
    }  # fmt: skip
    manifest = json.loads((root / "shards/manifest.json").read_text())
    shard_counts = [s["count"] for s in manifest["splits"]["train"]["shards"]]
    assert all(c == 4 for c in shard_counts[:-1]) and 1 <= shard_counts[-1] <= 4


def test_http_failures_are_rows_with_reasons(http_build: tuple[Path, list[dict]]) -> None:
    root, _ = http_build
    downloads = pq.read_table(root / "shards/downloads.parquet").to_pylist()
    by_name = {d["url"].rsplit("/", 1)[-1]: d for d in downloads}
    assert by_name["gone.jpg"]["status"] == "failed_to_download"
    assert "404" in by_name["gone.jpg"]["error_message"]
    assert by_name["page.jpg"]["status"] == "failed_to_resize"
    assert by_name["noai.jpg"]["status"] == "failed_to_download"
    assert "X-Robots-Tag" in by_name["noai.jpg"]["error_message"]
    assert by_name["y.jpg"]["status"] == "unsupported_url"
    assert all(d["error_message"] is None for d in downloads if d["status"] == "success")


def test_http_images_resized_shorter_side(http_build: tuple[Path, list[dict]]) -> None:
    root, _ = http_build
    sidecars = sorted((root / "shards").glob("*-*.parquet"))
    rows = [r for p in sidecars for r in pq.read_table(p).to_pylist()]
    assert len(rows) == 12
    assert all(min(r["width"], r["height"]) == 24 for r in rows)  # originals are 40+ x 30
    assert all(r["image_bytes"] > 0 and r["key"] == r["uid"] for r in rows)


def test_local_files_without_http(local_dataset: tuple[Path, list[dict]]) -> None:
    root, rows = local_dataset
    argv = ["--root", str(root), "--image-size", "16", "--samples-per-shard", "5"]
    assert main([*argv, "--val-fraction", "0.25"]) == 0
    counts = check_shards(root / "shards", rows)
    assert counts["dropped_by_cap"] == 1
    assert counts["attempted"] == 21 and counts["success"] == 19
    assert counts["failed_by_status"] == {"failed_to_download": 1, "failed_to_resize": 1}
    downloads = {d["url"].rsplit("/", 1)[-1]: d for d in
                 pq.read_table(root / "shards/downloads.parquet").to_pylist()}  # fmt: skip
    assert "FileNotFoundError" in downloads["missing.jpg"]["error_message"]
    assert downloads["corrupt.jpg"]["status"] == "failed_to_resize"
    assert rows[3]["uid"] not in {d["uid"] for d in downloads.values()}  # keep = false


def test_deterministic_for_a_seed(local_dataset: tuple[Path, list[dict]]) -> None:
    root, _ = local_dataset
    argv = ["--root", str(root), "--image-size", "16", "--samples-per-shard", "5"]

    def shard_bytes(seed: int) -> dict[str, bytes]:
        assert main([*argv, "--seed", str(seed)]) == 0
        return {p.name: p.read_bytes() for p in sorted((root / "shards").glob("*.tar"))}

    def train_order() -> list[str]:
        return [s["__key__"] for s in read_samples(root / "shards")["train"]]

    first = shard_bytes(0)
    order0 = train_order()
    assert shard_bytes(0) == first  # a rerun replaces the folder with identical tars
    shard_bytes(1)
    assert train_order() != order0 and sorted(train_order()) == sorted(order0)


@pytest.mark.parametrize("copies", ["none", "smallest uid first", "larger uid first"])
def test_one_pass_writes_the_two_pass_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copies: str
) -> None:
    """Local-only runs write while they read; the shards, sidecars, manifest and downloads
    are byte for byte those of the two-pass path (stage everything, dedup, then write), with
    pass-through and resized images and failures. With three copies of an image, whether
    or not the group's smallest uid comes first in the shards' order (the seed picks it),
    both keep the first in that order and the one pass never hands over."""
    import shards.build

    images = tmp_path / "images"
    names = write_images(images, 16)  # JPEGs of width 40 + i (pass through at 30), PNGs
    (images / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    def smallest_first(group: list[str], seed: int) -> bool:
        first = min(group, key=lambda u: shard_order(u, seed, 0.25))
        return first == min(group)

    # the uids hash the urls, so tmp_path decides the copies' splits: with the smallest uid
    # in val and a copy in train no seed puts it first; other copy names then
    for attempt in range(100):
        copy_names = [f"copy{attempt}-a.jpg", f"copy{attempt}-b.jpg"] if copies != "none" else []
        urls = [(images / n).as_uri() for n in [*names, *copy_names, "corrupt.jpg", "missing.jpg"]]
        rows = write_dataset(tmp_path / "data-True", urls)
        group = [r["uid"] for r in rows if r["url"].endswith((names[4], *copy_names))]
        wanted = copies == "smallest uid first"
        seeds = (s for s in range(100) if copies == "none" or smallest_first(group, s) == wanted)
        seed = next(seeds, None)
        if seed is not None:
            break
    assert seed is not None
    for copy in copy_names:
        (images / copy).write_bytes((images / names[4]).read_bytes())
    argv = ["--image-size", "30", "--samples-per-shard", "3", "--val-fraction", "0.25"]
    write_splits = shards.build.write_splits
    calls = []
    monkeypatch.setattr(
        shards.build, "write_splits", lambda *a: calls.append(a) or write_splits(*a)
    )
    out = {}
    for one_pass in (True, False):
        root = tmp_path / f"data-{one_pass}"
        rows = write_dataset(root, urls)
        assert run_shard(["--root", str(root), *argv, "--seed", str(seed)], one_pass) == 0
        check_shards(root / "shards", rows)
        files = sorted((root / "shards").iterdir())
        out[one_pass] = {p.name: p.read_bytes() for p in files if p.name != "meta.json"}
        counts = json.loads((root / "shards/meta.json").read_text())["counts"]
        duplicates = 0 if copies == "none" else 2
        assert counts["failed_by_status"] == {
            "failed_to_download": 1, "failed_to_resize": 1,
            **({"duplicate_image": duplicates} if duplicates else {}),
        }  # fmt: skip
        assert counts["success"] == 16
    assert out[True] == out[False]
    assert len(calls) == 1  # the two-pass run's write; the one pass wrote its own tars
    if copies != "none":
        kept = min(group, key=lambda u: shard_order(u, seed, 0.25))
        downloads = pq.read_table(tmp_path / "data-True/shards/downloads.parquet").to_pylist()
        status = {d["uid"]: d["status"] for d in downloads if d["uid"] in group}
        assert status == {u: "success" if u == kept else "duplicate_image" for u in group}
    splits = json.loads(out[True]["manifest.json"])["splits"]
    assert sum(name.endswith(".tar") for name in out[True]) == sum(
        -(-info["count"] // 3) for info in splits.values()
    )


def test_candidates_split_and_order_are_the_python_functions(tmp_path: Path) -> None:
    """load_candidates computes split and order key in DuckDB: the same as split_of and
    order_key for every uid (300 uids, three fractions and seeds)."""
    import duckdb

    from curation.layout import DatasetRoot
    from shards.build import load_candidates, order_key

    rows = write_dataset(tmp_path, [f"http://example.invalid/{i}.jpg" for i in range(300)])
    for fraction, seed in ((0.3, 7), (0.05, 0), (0.0, 12345678901)):
        table = load_candidates(duckdb.connect(), DatasetRoot(tmp_path), WNIDS, fraction, seed)
        got = table.select(["uid", "split", "order_key"]).to_pylist()
        assert [r["uid"] for r in got] == sorted(r["uid"] for r in rows)
        assert [r["split"] for r in got] == [split_of(r["uid"], fraction) for r in got]
        assert [r["order_key"] for r in got] == [order_key(r["uid"], seed) for r in got]
    assert {"val", "train"} == {split_of(r["uid"], 0.3) for r in rows}


def test_val_split_stable_as_data_grows(tmp_path: Path) -> None:
    images = tmp_path / "images"
    names = write_images(images, 40)
    urls = [(images / n).as_uri() for n in names]
    root = tmp_path / "data"

    def val_uids(n: int) -> set[str]:
        write_dataset(root, urls[:n])
        assert main(["--root", str(root), "--image-size", "8", "--val-fraction", "0.3"]) == 0
        return {s["__key__"] for s in read_samples(root / "shards")["val"]}

    small, large = val_uids(20), val_uids(40)
    rows = write_dataset(root, urls)
    expected = {r["uid"] for r in rows if split_of(r["uid"], 0.3) == "val"}
    assert large == expected and len(large) >= 5  # about 0.3 * 40
    assert small == {r["uid"] for r in rows[:20]} & large  # old uids kept their split


def test_missing_labels_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from curation.cli import main as curate

    assert curate(["shard", "--root", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "curate build-vocab" in err


def test_no_success_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from curation.cli import main as curate

    root = tmp_path / "data"
    write_dataset(root, [(tmp_path / f"none{i}.jpg").as_uri() for i in range(3)])
    assert curate(["shard", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "failed_to_download 3" in err
    assert not (root / "shards").exists()
    assert not list(root.glob("shards*"))  # no staged leftovers either


def test_bad_option_is_a_usage_error(tmp_path: Path) -> None:
    from curation.errors import UsageError

    with pytest.raises(UsageError, match="val-fraction"):
        main(["--root", str(tmp_path), "--val-fraction", "1.5"])
