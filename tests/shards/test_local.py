"""shards.local: file:// images resized like crawled ones; bad files become rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shards.crawl import ResizePolicy
from shards.local import (
    read_bytes,
    read_local_images,
    split_file_uri,
    staging_schema,
)
from tests.shards.dataset import image_bytes, shard_order


@pytest.mark.parametrize("name", ["a b#c.jpg", "100%25 off;x?.jpg", "50% ü.jpg", "plain.jpg"])
def test_file_uri_round_trips_a_path(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert split_file_uri(path.as_uri()) == (str(path), "")  # decoded once: %25 stays
    path.write_bytes(name.encode())
    assert read_bytes(path.as_uri()) == name.encode()


def test_split_file_uri_forms() -> None:
    assert split_file_uri("file:///d/x.tar#m%231.jpg") == ("/d/x.tar", "m#1.jpg")
    assert split_file_uri("FILE:///d//./a%20b.jpg") == ("/d/a b.jpg", "")
    assert split_file_uri("file://localhost/d/a.jpg?q") == ("/d/a.jpg", "")
    assert split_file_uri("file:/d/a.jpg") == ("/d/a.jpg", "")


def test_file_uri_errors() -> None:
    with pytest.raises(ValueError):
        split_file_uri("http://example.invalid/a.jpg")
    with pytest.raises(ValueError, match="remote host"):
        split_file_uri("file://server/share/a.jpg")


def test_read_local_images_rows(tmp_path: Path) -> None:
    (tmp_path / "big.png").write_bytes(image_bytes(1, "PNG", size=(60, 30)))
    (tmp_path / "small.jpg").write_bytes(image_bytes(2, size=(10, 20)))
    (tmp_path / "bad.jpg").write_bytes(b"GIF89a but truncated")
    names = ["big.png", "small.jpg", "bad.jpg", "gone.jpg"]
    urls = [(tmp_path / n).as_uri() for n in names]
    uids = [f"u{i}" for i in range(4)]
    parts = read_local_images(uids, urls, tmp_path / "crawl", ResizePolicy(image_size=16))
    table = pq.read_table(parts[0])
    assert table.schema == staging_schema()
    rows = table.to_pylist()
    assert [r["uid"] for r in rows] == uids  # input order
    assert [r["status"] for r in rows] == [
        "success", "success", "failed_to_resize", "failed_to_download",
    ]  # fmt: skip
    assert (rows[0]["width"], rows[0]["height"]) == (32, 16)  # shorter side -> 16
    assert (rows[1]["width"], rows[1]["height"]) == (16, 32)  # small images are upscaled
    assert rows[0]["jpg"][:2] == b"\xff\xd8"
    assert rows[2]["jpg"] is None and rows[2]["error_message"]
    assert "FileNotFoundError" in rows[3]["error_message"]


def test_center_crop_policy(tmp_path: Path) -> None:
    (tmp_path / "wide.jpg").write_bytes(image_bytes(3, size=(80, 40)))
    policy = ResizePolicy(image_size=20, resize_mode="center_crop")
    parts = read_local_images(["u"], [(tmp_path / "wide.jpg").as_uri()], tmp_path / "c", policy)
    row = pq.read_table(parts[0]).to_pylist()[0]
    assert (row["width"], row["height"]) == (20, 20)


def test_shard_reads_tar_members_without_download(tmp_path: Path) -> None:
    import json

    from shards.build import main
    from tests.shards.dataset import write_dataset, write_webdataset_tar

    write_webdataset_tar(tmp_path / "00000.tar")
    base = (tmp_path / "00000.tar").resolve().as_uri()
    urls = [f"{base}#000000.jpg", f"{base}#000001.png", f"{base}#000002.jpg", f"{base}#gone.jpg"]
    root = tmp_path / "data"
    write_dataset(root, urls)
    assert main(["--root", str(root), "--image-size", "8", "--val-fraction", "0"]) == 0
    counts = json.loads((root / "shards/meta.json").read_text())["counts"]
    assert counts["success"] == 3 and counts["failed_by_status"] == {"failed_to_download": 1}
    assert counts["crawl"]["crawled_now"] == 0  # nothing went over http


def test_passthrough_keeps_source_bytes(tmp_path: Path) -> None:
    """A JPEG already at the stored size is stored byte for byte; anything else is resized."""
    import json
    import tarfile

    from shards.build import main
    from tests.shards.dataset import write_dataset

    at_size = image_bytes(5, size=(24, 16))  # shorter side 16 == --image-size
    files = {
        "at_size.jpg": at_size,
        "wide.jpg": image_bytes(6, size=(40, 20)),  # JPEG, shorter side 20: shrunk
        "at_size.png": image_bytes(7, "PNG", size=(24, 16)),  # right size, not JPEG
        "gray.jpg": _gray_jpeg((16, 16)),  # JPEG of the right size, mode L
        "truncated.jpg": at_size[: len(at_size) // 2],  # header says 24 x 16
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    urls = [(tmp_path / name).as_uri() for name in files]
    root = tmp_path / "data"
    rows = write_dataset(root, urls)
    assert main(["--root", str(root), "--image-size", "16", "--val-fraction", "0"]) == 0
    stored = {}
    for tar_path in sorted((root / "shards").glob("*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".jpg"):
                    stored[member.name.split(".")[0]] = tar.extractfile(member).read()
    uid = {Path(r["url"]).name: r["uid"] for r in rows}
    fetched = {
        r["url"].rsplit("/", 1)[1]: r for r in pq.read_table(root / "crawl/local").to_pylist()
    }
    assert stored[uid["at_size.jpg"]] == files["at_size.jpg"]  # byte-identical, not re-encoded
    assert (fetched["at_size.jpg"]["width"], fetched["at_size.jpg"]["height"]) == (24, 16)
    for name in ("wide.jpg", "at_size.png", "gray.jpg"):  # through the Resizer: new bytes
        assert stored[uid[name]][:2] == b"\xff\xd8" and stored[uid[name]] != files[name]
    assert (fetched["wide.jpg"]["width"], fetched["wide.jpg"]["height"]) == (32, 16)
    assert fetched["truncated.jpg"]["status"] == "failed_to_resize"
    assert "decoding error" in fetched["truncated.jpg"]["error_message"]
    assert uid["truncated.jpg"] not in stored
    counts = json.loads((root / "shards/meta.json").read_text())["counts"]
    assert counts["success"] == 4 and counts["failed_by_status"] == {"failed_to_resize": 1}


def _gray_jpeg(size: tuple[int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size, 90).save(buf, format="JPEG")
    return buf.getvalue()


def test_passthrough_does_not_import_img2dataset(tmp_path: Path) -> None:
    """Only JPEGs at the stored size: img2dataset (and torch behind it) is never imported."""
    import subprocess
    import sys

    for i in range(3):
        (tmp_path / f"{i}.jpg").write_bytes(image_bytes(i, size=(16, 30)))
    script = (
        "import sys; from pathlib import Path; import pyarrow.parquet as pq\n"
        "from shards.crawl import ResizePolicy; from shards.local import read_local_images\n"
        f"d = Path({str(tmp_path)!r}); urls = [(d / f'{{i}}.jpg').as_uri() for i in range(3)]\n"
        "parts = read_local_images(['a', 'b', 'c'], urls, d / 'crawl', ResizePolicy(16))\n"
        "print(pq.read_table(parts[0]).column('status').to_pylist(), 'img2dataset' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["['success',", "'success',", "'success']", "False"]


def test_decontaminate_reads_passthrough_images_from_their_files(tmp_path: Path) -> None:
    """Pass-through images are staged as refs (no jpg in the staging table); the dHash of
    `--decontaminate` reads them from disk, and duplicates are found among refs too."""
    import json

    from shards.build import main
    from tests.shards.dataset import pattern_image, write_dataset

    images, evals = tmp_path / "images", tmp_path / "eval"
    images.mkdir()
    evals.mkdir()
    for i in range(6):
        (images / f"{i}.jpg").write_bytes(pattern_image(i, size=(24, 16)))
    (images / "copy.jpg").write_bytes(pattern_image(1, size=(24, 16)))  # same bytes as 1.jpg
    # 4.jpg, larger and as PNG: its dHash is 3 bits from 4.jpg's, >= 24 from the others'
    (evals / "benchmark.png").write_bytes(pattern_image(4, size=(72, 48), fmt="PNG"))
    names = [*(f"{i}.jpg" for i in range(6)), "copy.jpg"]
    root = tmp_path / "data"
    rows = write_dataset(root, [(images / n).as_uri() for n in names])
    argv = ["--root", str(root), "--image-size", "16", "--decontaminate", str(evals)]
    assert main(argv) == 0
    staged = pq.read_table(root / "crawl/local").to_pylist()
    assert all(r["jpg"] is None and r["ref_size"] > 0 for r in staged)  # all refs
    status = {
        Path(r["url"]).name: r["status"]
        for r in pq.read_table(root / "shards/downloads.parquet").to_pylist()
    }
    uid = {Path(r["url"]).name: r["uid"] for r in rows}
    first, second = sorted(["1.jpg", "copy.jpg"], key=lambda n: shard_order(uid[n]))
    assert status[first] == "success" and status[second] == "duplicate_image"
    assert status["4.jpg"] == "near_eval_duplicate"
    assert sum(s == "success" for s in status.values()) == 5
    counts = json.loads((root / "shards/meta.json").read_text())["counts"]
    assert counts["near_eval_duplicates"] == 1 and counts["duplicate_images"] == 1


def test_tar_member_index_follows_a_rewritten_tar_and_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import os
    import tarfile

    from shards import local

    def write_tar(path: Path, payload: bytes, mtime_ns: int) -> None:
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo("a.jpg")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        os.utime(path, ns=(mtime_ns, mtime_ns))

    monkeypatch.setattr(local, "_TAR_INDEX", local.OrderedDict())
    monkeypatch.setattr(local, "TAR_INDEX_LIMIT", 3)
    path = tmp_path / "w.tar"
    write_tar(path, b"first", 1_000_000_000)
    assert local.read_bytes(f"{path.as_uri()}#a.jpg") == b"first"
    write_tar(path, b"second one", 2_000_000_000)  # rewritten in place
    assert local.read_bytes(f"{path.as_uri()}#a.jpg") == b"second one"
    assert [key[0] for key in local._TAR_INDEX] == [str(path)]  # the old index is gone
    for i in range(5):
        write_tar(tmp_path / f"{i}.tar", bytes([i]) * 3, 1_000_000_000)
        assert local.read_bytes(f"{(tmp_path / f'{i}.tar').as_uri()}#a.jpg") == bytes([i]) * 3
    assert [Path(key[0]).name for key in local._TAR_INDEX] == ["2.tar", "3.tar", "4.tar"]


@pytest.mark.parametrize("fails", ["take", "check"])
def test_a_failing_task_leaves_no_descriptor_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: str
) -> None:
    """A task opens its files before it takes one buffer for all of them: when taking the
    buffer (or checking a file read into it) raises, every descriptor is closed."""
    import os

    from shards import local

    urls = []
    for i in range(local.URLS_PER_TASK):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(image_bytes(i, size=(16, 24)))
        urls.append(path.as_uri())
    urls[3] = (tmp_path / "missing.jpg").as_uri()  # no descriptor for this one

    class NoRoom(local.ReadBuffers):
        def take(self, size: int) -> bytearray:
            raise MemoryError(f"no room for {size} bytes")

    real_check, checked = local.check_read, []

    def check_then_fail(*args: object) -> object:
        checked.append(args)
        if len(checked) == 2:
            raise RuntimeError("a check that fails")
        return real_check(*args)

    monkeypatch.setattr(local, "check_read", check_then_fail)
    buffers = NoRoom() if fails == "take" else local.ReadBuffers()
    policy = ResizePolicy(image_size=16, resize_mode="keep_ratio")
    before = sorted(os.listdir("/proc/self/fd"))
    with pytest.raises(MemoryError if fails == "take" else RuntimeError):
        local.read_and_check_many(urls, policy, True, buffers)
    assert sorted(os.listdir("/proc/self/fd")) == before  # 15 were open before the raise
    assert len(checked) == (0 if fails == "take" else 2)
    monkeypatch.setattr(local, "check_read", real_check)
    reads, _ = local.read_and_check_many(urls, policy, True, local.ReadBuffers())
    assert [r.data is None or isinstance(r.data, str) for r in reads] == [
        i == 3 for i in range(len(urls))
    ]  # the missing file's reason, the others' bytes
    assert sorted(os.listdir("/proc/self/fd")) == before
