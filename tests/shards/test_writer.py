"""shards.writer: fixed-size shards, sidecars that match the tars, reproducible bytes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from shards.writer import ShardSample, ShardWriter, shard_name
from tests.shards.dataset import image_bytes


def sample(i: int) -> ShardSample:
    return ShardSample(
        uid=f"{i:016x}",
        url=f"http://example.invalid/{i}.jpg",
        caption=f"caption {i} #dög",
        class_ids=[i % 2, 2],
        wnids=["n0000000" + str(i % 2), "n00000002"],
        hashtags=["dög", "cat"],
        weight=0.5 + i,
        image=image_bytes(i),
        width=48,
        height=32,
    )


def write(folder: Path, n: int, per_shard: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    with ShardWriter(folder, "train", per_shard) as writer:
        for i in range(n):
            writer.write(sample(i))
    return writer.shards


def test_round_trip_through_webdataset(tmp_path: Path) -> None:
    import webdataset as wds

    infos = write(tmp_path, 7, per_shard=3)
    assert [s.name for s in infos] == [shard_name("train", k) for k in range(3)]
    assert [s.count for s in infos] == [3, 3, 1]  # fixed size, the last one short
    paths = [str(tmp_path / s.name) for s in infos]
    got = list(wds.WebDataset(paths, shardshuffle=False))
    assert [g["__key__"] for g in got] == [f"{i:016x}" for i in range(7)]
    for i, g in enumerate(got):
        assert g["jpg"] == image_bytes(i)
        assert g["txt"].decode() == f"caption {i} #dög"
        label = json.loads(g["json"])
        assert label == {
            "uid": f"{i:016x}", "url": f"http://example.invalid/{i}.jpg",
            "class_ids": [i % 2, 2], "wnids": ["n0000000" + str(i % 2), "n00000002"],
            "hashtags": ["dög", "cat"], "weight": 0.5 + i,
        }  # fmt: skip
    for info in infos:
        data = (tmp_path / info.name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (info.bytes, info.sha256)
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_sidecar_rows_match_tar(tmp_path: Path) -> None:
    infos = write(tmp_path, 5, per_shard=2)
    rows = [
        r
        for s in infos
        for r in pq.read_table((tmp_path / s.name).with_suffix(".parquet")).to_pylist()
    ]
    assert [r["uid"] for r in rows] == [f"{i:016x}" for i in range(5)]
    assert [r["shard"] for r in rows] == ["train-000000.tar"] * 2 + ["train-000001.tar"] * 2 + [
        "train-000002.tar"
    ]
    assert rows[3]["class_ids"] == [1, 2] and rows[3]["weight"] == pytest.approx(3.5)
    assert rows[3]["image_bytes"] == len(image_bytes(3)) and rows[3]["split"] == "train"
    assert (rows[3]["width"], rows[3]["height"]) == (48, 32)


def test_same_samples_same_bytes(tmp_path: Path) -> None:
    first = write(tmp_path / "a", 4, per_shard=4)
    second = write(tmp_path / "b", 4, per_shard=4)
    assert [s.sha256 for s in first] == [s.sha256 for s in second]


def test_empty_split_writes_nothing(tmp_path: Path) -> None:
    assert write(tmp_path, 0, per_shard=3) == []
    assert list(tmp_path.iterdir()) == []


def test_bad_keys_rejected(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "val", 2)
    with pytest.raises(ValueError, match="free of"):
        writer.write(ShardSample(**{**vars(sample(0)), "uid": "a.b"}))
    writer.write(sample(1))
    with pytest.raises(ValueError, match="duplicate"):
        writer.write(sample(1))


def test_error_leaves_no_partial_shard(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ShardWriter(tmp_path, "train", 2) as writer:
        for i in range(3):
            writer.write(sample(i))
        raise RuntimeError("stop")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "train-000000.parquet",
        "train-000000.tar",
    ]


def test_failed_seal_stops_the_writer_and_no_seal_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    import shards.writer as writer_module

    seal = writer_module._seal

    def failing_seal(tar_path: Path, columns: dict) -> str:
        if tar_path.name == "train-000000.tar":
            raise OSError(28, "No space left on device")
        time.sleep(0.05)
        return seal(tar_path, columns)

    monkeypatch.setattr(writer_module, "_seal", failing_seal)
    with pytest.raises(OSError, match="No space"), ShardWriter(tmp_path, "train", 1) as writer:
        for i in range(50):
            writer.write(sample(i))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len([f for f in files if f.endswith(".tar")]) < 50  # stopped early, not at close
    time.sleep(0.3)
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # nothing written afterwards
    assert not [t for t in threading.enumerate() if t.name.startswith("shard-seal")]


@pytest.mark.parametrize(
    ("name", "size"),
    [("0123abcd.jpg", 0), ("k.txt", 511), ("k.json", 512), ("x" * 100, 70_000),
     ("x" * 101 + ".jpg", 5), ("dög.txt", 3), ("k.jpg", 8**11)],
)  # fmt: skip
def test_member_header_is_tarfiles(name: str, size: int) -> None:
    import tarfile

    from shards.writer import member_header

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid = size, 0o444, 0, 0, 0
    info.uname = info.gname = ""
    assert member_header(name, size) == info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def test_tar_bytes_are_tarfiles(tmp_path: Path) -> None:
    """The shard is exactly what tarfile writes for the same members (PAX format, fixed
    headers), so any tar reader reads it; a key past ustar's 100 bytes takes a PAX header."""
    import io
    import tarfile

    samples = [sample(i) for i in range(3)]
    samples.append(ShardSample(**{**vars(sample(3)), "uid": "dög" + "k" * 120}))
    with ShardWriter(tmp_path, "train", 10) as writer:
        for s in samples:
            writer.write(s)
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for s in samples:
            for name, data in ((f"{s.key}.jpg", s.image), (f"{s.key}.json", s.label_json()),
                               (f"{s.key}.txt", s.caption.encode())):  # fmt: skip
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o444, 0, 0, 0
                info.uname = info.gname = ""
                tar.addfile(info, io.BytesIO(data))
    got = (tmp_path / "train-000000.tar").read_bytes()
    assert got == expected.getvalue()
    assert writer.shards[0].bytes == len(got)
    assert writer.shards[0].sha256 == hashlib.sha256(got).hexdigest()


def test_write_many_writes_what_write_writes(tmp_path: Path) -> None:
    """Batches that cross shard boundaries, and one of 130 samples (1,170 buffers, past the
    1,024 a writev takes), give the tars and sidecars of one `write` per sample."""
    one = write(tmp_path / "one", 157, per_shard=60)
    folder = tmp_path / "many"
    folder.mkdir()
    with ShardWriter(folder, "train", 60) as writer:
        for start, stop in ((0, 7), (7, 137), (137, 150), (150, 157)):
            writer.write_many([sample(i) for i in range(start, stop)])
    assert writer.shards == one and [s.count for s in one] == [60, 60, 37]
    for info in one:
        sidecar = info.name.replace(".tar", ".parquet")
        assert (folder / info.name).read_bytes() == (tmp_path / "one" / info.name).read_bytes()
        assert pq.read_table(folder / sidecar) == pq.read_table(tmp_path / "one" / sidecar)


def test_write_many_checks_keys_before_writing(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "train", 10)
    writer.write_many([sample(0)])
    for batch in ([sample(1), sample(1)], [sample(2), sample(0)]):
        with pytest.raises(ValueError, match="duplicate key"):
            writer.write_many(batch)
    writer.write_many([sample(1), sample(2)])  # nothing of the refused batches was taken
    assert [s.count for s in writer.close()] == [3]
