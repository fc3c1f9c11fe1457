"""A WSP checkpoint names its head's classes itself: eval and export need no shards.

The run trains on shards whose manifest lists its classes out of class_id order, then the
shards are deleted: `train eval --image-folder` and `train export` still know the classes.
A checkpoint written before `class_wnids` existed (the same file without that metadata key)
falls back to the training shards' manifest, and is refused with one line once they are gone.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from tests.train.conftest import WNIDS, draw
from train.checkpoint import head_classes, read_info, save_checkpoint
from train.cli import main as train_cli

PICO = ["--model", "vit_pico_patch4", "--batch-size", "8", "--steps", "2", "--log-every", "1"]


def strip_class_wnids(src: Path, dst: Path) -> None:
    """Copy checkpoint `src` to `dst` as an older mawskit wrote it: no `class_wnids` key."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as handle:
        meta = dict(handle.metadata())
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    assert "class_wnids" in meta
    del meta["class_wnids"]
    save_file(tensors, str(dst), metadata=meta)


@pytest.fixture(scope="module")
def orphan(make_shards, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-step WSP run whose shards are gone, its copy without class_wnids, an image folder.

    The manifest lists the classes in reverse; class_id order (the head's) is WNIDS.
    """
    root = tmp_path_factory.mktemp("orphan")
    shards = make_shards(root / "shards", n_train=32, n_val=8)
    manifest = json.loads((shards / "manifest.json").read_text())
    manifest["classes"] = manifest["classes"][::-1]
    (shards / "manifest.json").write_text(json.dumps(manifest))
    run = root / "run"
    assert train_cli(["wsp", "--shards", str(shards), "--out", str(run), *PICO]) == 0
    old = root / "old"
    old.mkdir()
    strip_class_wnids(run / "checkpoint-000002.safetensors", old / "checkpoint-000002.safetensors")
    kept = root / "kept-shards"
    shutil.copytree(shards, kept)
    shutil.rmtree(shards)
    folder = root / "images"
    rng = random.Random(1)
    for class_id, wnid in enumerate(WNIDS):  # two images per class, drawn like the shards
        (folder / wnid).mkdir(parents=True)
        for i in range(2):
            (folder / wnid / f"{i}.jpg").write_bytes(draw([class_id], rng))
    return {"run": run, "old": old, "shards": shards, "kept": kept, "images": folder}


def test_wsp_checkpoint_stores_its_classes_in_head_order(orphan: dict[str, Path]) -> None:
    info = read_info(orphan["run"] / "checkpoint-000002.safetensors")
    assert info.class_wnids == tuple(WNIDS) and info.num_classes == 5
    assert head_classes(info) == WNIDS  # the shards are gone: from the file itself


def test_mae_checkpoint_has_no_classes(mae_run: Path) -> None:
    info = read_info(mae_run / "checkpoint-000040.safetensors")
    assert info.class_wnids is None and head_classes(info) is None


def test_eval_and_export_from_the_checkpoint_alone(orphan: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    argv = ["eval", "--ckpt", str(orphan["run"]), "--image-folder", str(orphan["images"]),
            "--out", str(out)]  # fmt: skip
    assert train_cli(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["num_classes"] == 5
    assert metrics["val_samples"] == metrics["val_samples_in_vocab"] == 10
    export = tmp_path / "export"
    assert train_cli(["export", str(orphan["run"]), "--out", str(export)]) == 0
    config = json.loads((export / "config.json").read_text())
    assert config["label_names"] == WNIDS
    assert (
        config["mawskit"]["vocab_hash"]
        == read_info(orphan["run"] / "checkpoint-000002.safetensors").vocab_hash
    )


def test_older_checkpoint_falls_back_to_the_manifest(
    orphan: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    old = orphan["old"] / "checkpoint-000002.safetensors"
    assert read_info(old).class_wnids is None
    images = ["--image-folder", str(orphan["images"])]
    # shards gone: eval cannot name the head's classes (one line, exit 2); export leaves
    # label_names out
    capsys.readouterr()
    assert train_cli(["eval", "--ckpt", str(old), *images, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "unknown" in err, err
    assert train_cli(["export", str(old), "--out", str(tmp_path / "e1")]) == 0
    assert "label_names" not in json.loads((tmp_path / "e1" / "config.json").read_text())
    # shards back where the run's config says: the manifest names them, in class_id order
    shutil.copytree(orphan["kept"], orphan["shards"])
    try:
        assert head_classes(read_info(old)) == WNIDS
        ours, theirs = tmp_path / "new.json", tmp_path / "old.json"
        new_ckpt = orphan["run"] / "checkpoint-000002.safetensors"
        assert train_cli(["eval", "--ckpt", str(old), *images, "--out", str(theirs)]) == 0
        assert train_cli(["eval", "--ckpt", str(new_ckpt), *images, "--out", str(ours)]) == 0
        drop = {"seconds", "checkpoint"}
        new_metrics, old_metrics = json.loads(ours.read_text()), json.loads(theirs.read_text())
        assert {k: v for k, v in old_metrics.items() if k not in drop} == {
            k: v for k, v in new_metrics.items() if k not in drop
        }
        assert train_cli(["export", str(old), "--out", str(tmp_path / "e2")]) == 0
        config = json.loads((tmp_path / "e2" / "config.json").read_text())
        assert config["label_names"] == WNIDS
    finally:
        shutil.rmtree(orphan["shards"])


def test_class_list_must_fit_the_head(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    path = tmp_path / "checkpoint-000001.safetensors"
    state = {"head.weight": torch.zeros(2, 4)}
    with pytest.raises(ValueError, match="3 class wnids for a head of 2"):
        save_checkpoint(path, state, kind="wsp", model="vit_pico_patch4", image_size=32,
                        num_classes=2, config={}, class_wnids=WNIDS[:3])  # fmt: skip
    assert not path.exists()
    save_checkpoint(path, state, kind="wsp", model="vit_pico_patch4", image_size=32,
                    num_classes=2, config={}, class_wnids=WNIDS[:2])  # fmt: skip
    assert read_info(path).class_wnids == tuple(WNIDS[:2])
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as handle:
        meta = dict(handle.metadata())
    save_file(state, str(path), metadata=meta | {"class_wnids": json.dumps(WNIDS[:1])})
    capsys.readouterr()
    assert train_cli(["export", str(path), "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "1 classes for a head of 2" in err and err.count("\n") == 1, err
    assert not (tmp_path / "e").exists()
