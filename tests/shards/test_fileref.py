"""shards.fileref and what `curate shard` does when a local image changes after hashing."""

from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path

import pytest

from shards.fileref import FileRefReader, SourceChanged
from shards.local import read_source
from tests.shards.dataset import image_bytes, run_shard, write_dataset, write_webdataset_tar


def test_ref_reads_back_file_and_tar_member(tmp_path: Path) -> None:
    (tmp_path / "a.jpg").write_bytes(image_bytes(1))
    members = write_webdataset_tar(tmp_path / "w.tar")
    file_read = read_source((tmp_path / "a.jpg").as_uri())
    member_read = read_source(f"{(tmp_path / 'w.tar').as_uri()}#000001.png")
    assert not isinstance(file_read, str) and not isinstance(member_read, str)
    (data, ref), (member, member_ref) = file_read, member_read
    assert data == image_bytes(1) and member == members["000001.png"]
    assert (ref.offset, ref.size, ref.file_bytes) == (0, len(data), len(data))
    with tarfile.open(tmp_path / "w.tar") as tar:
        info = tar.getmember("000001.png")
    assert (member_ref.offset, member_ref.size) == (info.offset_data, info.size)
    assert member_ref.file_bytes == (tmp_path / "w.tar").stat().st_size
    with FileRefReader() as reader:
        assert reader.read(ref) == data
        assert reader.read(member_ref) == member
        assert reader.read(member_ref) == member  # an open file is reused


@pytest.mark.parametrize("change", ["grown", "touched", "removed", "replaced"])
def test_changed_source_raises(tmp_path: Path, change: str) -> None:
    path = tmp_path / "a.jpg"
    path.write_bytes(image_bytes(1))
    read = read_source(path.as_uri())
    assert not isinstance(read, str)
    ref = read[1]
    if change == "grown":
        with path.open("ab") as f:
            f.write(b"more")
    elif change == "touched":  # same size, rewritten: only the mtime tells
        os.utime(path, ns=(ref.mtime_ns + 1_000_000, ref.mtime_ns + 1_000_000))
    elif change == "removed":
        path.unlink()
    else:
        path.unlink()
        path.write_bytes(image_bytes(2))
        os.utime(path, ns=(ref.mtime_ns - 5_000_000_000,) * 2)
    with FileRefReader() as reader, pytest.raises(SourceChanged, match=str(path)):
        reader.read(ref)


def test_every_ref_to_an_open_file_is_checked(tmp_path: Path) -> None:
    """Two members of one tar hashed before and after the tar was rewritten: whichever is
    read first, the other is refused (the open file's stat no longer matches its record)."""
    import dataclasses

    path = tmp_path / "a.jpg"
    path.write_bytes(image_bytes(1))
    read = read_source(path.as_uri())
    assert not isinstance(read, str)
    old = read[1]
    new = dataclasses.replace(old, mtime_ns=old.mtime_ns + 1_000_000)
    os.utime(path, ns=(new.mtime_ns,) * 2)
    with FileRefReader() as reader:
        assert reader.read(new) == image_bytes(1)
        with pytest.raises(SourceChanged, match="mtime_ns"):
            reader.read(old)


def test_a_reader_reopens_after_eviction(tmp_path: Path) -> None:
    from shards import fileref

    refs = []
    for i in range(fileref.OPEN_FILES + 3):
        path = tmp_path / f"{i}.jpg"
        path.write_bytes(image_bytes(i))
        read = read_source(path.as_uri())
        assert not isinstance(read, str)
        refs.append(read[1])
    with FileRefReader() as reader:
        assert [reader.read(r) for r in refs] == [image_bytes(i) for i in range(len(refs))]
        assert len(reader._open) == fileref.OPEN_FILES
        assert reader.read(refs[0]) == image_bytes(0)  # evicted, opened and checked again
    assert reader._open == {}  # closed on exit


@pytest.mark.parametrize("change", ["rewritten", "removed"])
def test_shard_refuses_a_source_changed_after_hashing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, change: str
) -> None:
    """A file rewritten (or deleted) between the staging read and the tar write: one line,
    exit 2, no shards folder and no staged leftovers; a rerun then succeeds. The two-pass
    write (what runs with http(s) urls or `--decontaminate`) is the one that reads a file
    twice; the one pass reads each file once."""
    import shards.build

    images = tmp_path / "images"
    images.mkdir()
    for i in range(6):
        (images / f"{i}.jpg").write_bytes(image_bytes(i, size=(16, 24)))  # pass through
    root = tmp_path / "data"
    write_dataset(root, [(images / f"{i}.jpg").as_uri() for i in range(6)])
    victim = images / "4.jpg"
    original = shards.build.filter_successes

    def change_then_filter(*args, **kwargs):
        if change == "removed":
            victim.unlink()
        else:
            victim.write_bytes(image_bytes(40, size=(16, 24)))
            stat = victim.stat()
            os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
        return original(*args, **kwargs)

    monkeypatch.setattr(shards.build, "filter_successes", change_then_filter)
    argv = ["--root", str(root), "--image-size", "16", "--samples-per-shard", "2"]
    assert run_shard(argv, one_pass=False) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(victim) in err
    assert ("disappeared" if change == "removed" else "changed since") in err
    assert not (root / "shards").exists() and not list(root.glob("shards*"))

    monkeypatch.setattr(shards.build, "filter_successes", original)
    assert run_shard(argv, one_pass=False) == 0
    counts = json.loads((root / "shards/meta.json").read_text())["counts"]
    assert counts["success"] == (5 if change == "removed" else 6)
