"""curate verify: clean shards pass; a flipped byte, a removed member, a stray tar fail."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from curation.cli import main as curate
from shards.build import main as shard


@pytest.fixture
def built(local_dataset: tuple[Path, list[dict]]) -> Path:
    root, _ = local_dataset
    argv = ["--root", str(root), "--image-size", "16", "--samples-per-shard", "5"]
    assert shard([*argv, "--val-fraction", "0.25"]) == 0
    return root


def first_train_shard(root: Path) -> tuple[Path, dict]:
    manifest = json.loads((root / "shards/manifest.json").read_text())
    info = manifest["splits"]["train"]["shards"][0]
    return root / "shards" / info["name"], info


def run_verify(root: Path, capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    code = curate(["verify", "--root", str(root)])
    out = capsys.readouterr()
    return code, (out.out + out.err).splitlines()


def test_clean_shards_pass(built: Path, capsys: pytest.CaptureFixture) -> None:
    code, lines = run_verify(built, capsys)
    assert code == 0
    manifest = json.loads((built / "shards/manifest.json").read_text())
    n_shards = sum(len(s["shards"]) for s in manifest["splits"].values())
    assert lines == [f"verify ok: 19 samples in {n_shards} shards, 0 problems ({built / 'shards'})"]


def test_flipped_byte_is_found(built: Path, capsys: pytest.CaptureFixture) -> None:
    path, info = first_train_shard(built)
    with tarfile.open(path) as tar:
        image = next(m for m in tar.getmembers() if m.name.endswith(".jpg"))
    data = bytearray(path.read_bytes())
    data[image.offset_data] ^= 0xFF  # the JPEG's SOI marker: no longer an image
    path.write_bytes(bytes(data))
    code, lines = run_verify(built, capsys)
    assert code == 1
    assert f"{info['name']}: sha256 differs from the manifest" in lines
    key = image.name.split(".")[0]
    assert any(line.startswith(f"{info['name']}: {key}: image does not decode") for line in lines)
    assert lines[-1].startswith("verify FAILED: 19 samples") and "2 problems" in lines[-1]


def test_removed_member_is_found(built: Path, capsys: pytest.CaptureFixture) -> None:
    path, info = first_train_shard(built)
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    dropped = members[2][0].name  # the first sample's .txt
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, data in members:
            if member.name != dropped:
                tar.addfile(member, io.BytesIO(data))
    code, lines = run_verify(built, capsys)
    assert code == 1
    key = dropped.split(".")[0]
    assert (
        f"{info['name']}: {key}: members ['jpg', 'json'], expected one image, json and txt" in lines
    )
    assert f"{info['name']}: sha256 differs from the manifest" in lines  # same size: padding


def test_missing_and_stray_shards(built: Path, capsys: pytest.CaptureFixture) -> None:
    path, info = first_train_shard(built)
    path.rename(path.with_name("train-999999.tar"))
    code, lines = run_verify(built, capsys)
    assert code == 1
    assert f"{info['name']}: missing" in lines
    assert "train-999999.tar: a tar that manifest.json does not list" in lines
    assert any(line.startswith(f"read {19 - info['count']} samples") for line in lines)


def test_no_manifest_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert curate(["verify", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "manifest.json" in err


def rewrite_member(path: Path, name: str, data: bytes) -> None:
    """Replace tar member `name` of `path` by `data` (the other members as they were)."""
    with tarfile.open(path) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for member, old in members:
            if member.name == name:
                member.size, old = len(data), data
            tar.addfile(member, io.BytesIO(old))


@pytest.mark.parametrize("class_id", [3, -1, "0"])
def test_class_not_in_the_manifest_is_found(
    built: Path, capsys: pytest.CaptureFixture, class_id: object
) -> None:
    """A json naming a class the manifest lacks, with a null wnid (what labels of another
    vocabulary once gave): reported as such, not matched as null == no wnid."""
    path, info = first_train_shard(built)
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        label = json.loads(tar.extractfile(member).read())
    label.update(class_ids=[*label["class_ids"], class_id], wnids=[*label["wnids"], None])
    rewrite_member(path, member.name, json.dumps(label).encode())
    code, lines = run_verify(built, capsys)
    assert code == 1
    key = member.name.split(".")[0]
    assert f"{info['name']}: {key}: class {class_id!r} is not one of the manifest's 3 classes" in (
        lines
    )
    assert f"{info['name']}: {key}: .json labels differ from the sidecar" in lines
    assert not any("manifest says" in line for line in lines)  # class 0..2's wnids still match


def test_null_wnids_are_a_problem_line(built: Path, capsys: pytest.CaptureFixture) -> None:
    """A json whose `wnids` is null (not a list): a problem line and exit 1, no traceback."""
    path, info = first_train_shard(built)
    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".json"))
        label = json.loads(tar.extractfile(member).read())
    label["wnids"] = None
    rewrite_member(path, member.name, json.dumps(label).encode())
    code, lines = run_verify(built, capsys)
    key = member.name.split(".")[0]
    assert code == 1
    assert f"{info['name']}: {key}: class_ids and wnids missing or of different lengths" in lines
