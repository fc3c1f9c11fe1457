"""`train eval`: kNN, WordNet zero-shot and image-folder data, through main(argv).

Uses the session's 40-step WSP run on the tiny shards (classes: dog, domestic cat, bird,
car, chair). Exact cross-checks: zero-shot onto the vocabulary itself, or onto one hypernym
per class, ranks exactly as the head does; an image folder of the val images scores exactly
as the val shards.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.train.conftest import WNIDS
from train.cli import main as train_cli

# one hypernym per class (canine, cat, bird, wheeled vehicle, furniture) and an unreachable
# target (airliner), in another order than the classes
HYPERNYMS = ["n04576211", "n02690373", "n02083346", "n03405725", "n01503061", "n02121620"]
TABBY = "n02123045"  # under domestic cat; not a class of the head


def run_eval(args: list[str], out: Path) -> dict:
    assert train_cli(["eval", *args, "--out", str(out), "--probe-epochs", "5"]) == 0
    return json.loads(out.read_text())


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def val_samples(shards: Path) -> list[tuple[str, bytes, list[int]]]:
    """(uid, jpeg bytes, class ids) of every val sample, read back from the tars."""
    found: dict[str, dict] = {}
    for tar_path in sorted(shards.glob("val-*.tar")):
        with tarfile.open(tar_path) as tar:
            for member in tar:
                uid, _, ext = member.name.partition(".")
                found.setdefault(uid, {})[ext] = tar.extractfile(member).read()
    return [(uid, s["jpg"], json.loads(s["json"])["class_ids"]) for uid, s in found.items()]


def test_knn_and_zero_shot_onto_the_vocabulary_itself(
    shards_dir: Path, wsp_run: Path, tmp_path: Path
) -> None:
    targets = write_lines(tmp_path / "targets.txt", WNIDS)
    metrics = run_eval(["--ckpt", str(wsp_run), "--shards", str(shards_dir),
                        "--target-wnids", str(targets)], tmp_path / "m.json")  # fmt: skip
    assert metrics["knn_k"] == 20 and metrics["knn_temperature"] == 0.07
    assert 0.0 <= metrics["knn_top1"] <= metrics["knn_top5"] == 1.0  # 5 classes
    assert metrics["knn_top1"] > metrics["chance_top1_uniform"]
    # each class supports only itself: the zero-shot ranking is the head's own
    assert (metrics["zeroshot_targets"], metrics["zeroshot_reachable"]) == (5, 5)
    assert metrics["zeroshot_samples"] == metrics["val_samples"] == 64
    assert metrics["zeroshot_top1"] == metrics["top1"]


def test_zero_shot_onto_hypernyms_relabels_the_head(
    shards_dir: Path, wsp_run: Path, tmp_path: Path
) -> None:
    targets = write_lines(tmp_path / "targets.txt", HYPERNYMS)
    plain = run_eval(["--ckpt", str(wsp_run), "--shards", str(shards_dir)], tmp_path / "a.json")
    metrics = run_eval(["--ckpt", str(wsp_run), "--shards", str(shards_dir),
                        "--target-wnids", str(targets)], tmp_path / "b.json")  # fmt: skip
    assert "zeroshot_top1" not in plain
    assert (metrics["zeroshot_targets"], metrics["zeroshot_reachable"]) == (6, 5)
    assert metrics["zeroshot_samples"] == 64
    # a one-to-one relabelling (plus a target no class reaches) ranks as the head does
    assert metrics["zeroshot_top1"] == metrics["top1"] == plain["top1"]
    assert metrics["zeroshot_chance_top1_uniform"] == pytest.approx(
        sum(len(c) for _, _, c in val_samples(shards_dir)) / 64 / 6
    )


def test_image_folder_scores_as_the_val_shards(make_shards, wsp_run: Path, tmp_path: Path) -> None:
    # single-label shards of the same vocabulary: each val image goes to its class's folder
    shards = make_shards(tmp_path / "single", n_train=64, n_val=40, two_label_rate=0.0)
    folder = tmp_path / "images"
    samples = val_samples(shards)
    for uid, jpeg, (class_id,) in samples:
        (folder / WNIDS[class_id]).mkdir(parents=True, exist_ok=True)
        (folder / WNIDS[class_id] / f"{uid}.jpg").write_bytes(jpeg)
    (folder / TABBY).mkdir()
    for uid, jpeg, _ in samples[:3]:  # images of a wnid the head lacks: zero-shot only
        (folder / TABBY / f"{uid}.JPEG").write_bytes(jpeg)
    (folder / TABBY / "notes.txt").write_text("not an image")
    targets = write_lines(tmp_path / "targets.txt", WNIDS)
    common = ["--ckpt", str(wsp_run), "--shards", str(shards), "--target-wnids", str(targets)]
    from_shards = run_eval(common, tmp_path / "a.json")
    from_folder = run_eval([*common, "--image-folder", str(folder)], tmp_path / "b.json")
    assert from_folder["data"] == str(folder) and from_shards["data"] == str(shards)
    assert from_folder["val_samples"] == 43 and from_folder["val_samples_in_vocab"] == 40
    assert from_shards["val_samples"] == from_shards["val_samples_in_vocab"] == 40
    for key in ("top1", "top5", "mAP", "probe_top1", "knn_top1", "knn_top5",
                "chance_top1_prior", "chance_mAP"):  # fmt: skip
        assert from_folder[key] == pytest.approx(from_shards[key], abs=1e-6), key
    # tabby falls under the target "domestic cat": its 3 images are scored zero-shot
    assert from_shards["zeroshot_samples"] == 40 and from_folder["zeroshot_samples"] == 43

    # without shards: head and zero-shot scores, no train split for the probe and kNN
    alone = run_eval(["--ckpt", str(wsp_run), "--image-folder", str(folder)], tmp_path / "c.json")
    assert alone["top1"] == from_folder["top1"] and alone["probe_train_samples"] == 0
    assert "knn_top1" not in alone and "probe_top1" not in alone


REFUSALS = ["no-data", "mae-zero-shot", "unknown-wnid", "no-wnids-file", "empty-folder",
            "not-a-wnid-folder", "foreign-folder"]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_refusals_are_one_line(
    case: str, shards_dir: Path, mae_run: Path, wsp_run: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    out = tmp_path / "metrics.json"
    ckpt = ["--ckpt", str(wsp_run)]
    folder = tmp_path / "images"
    folder.mkdir()
    args = {
        "no-data": ckpt,
        "mae-zero-shot": ["--ckpt", str(mae_run), "--shards", str(shards_dir),
                          "--target-wnids", str(write_lines(tmp_path / "t", WNIDS))],
        "unknown-wnid": [*ckpt, "--shards", str(shards_dir),
                         "--target-wnids", str(write_lines(tmp_path / "t", ["n99999999"]))],
        "no-wnids-file": [*ckpt, "--shards", str(shards_dir),
                          "--target-wnids", str(tmp_path / "absent.txt")],
        "empty-folder": [*ckpt, "--image-folder", str(folder)],
        "not-a-wnid-folder": [*ckpt, "--image-folder", str(folder)],
        "foreign-folder": [*ckpt, "--image-folder", str(folder)],
    }[case]  # fmt: skip
    if case == "not-a-wnid-folder":
        (folder / "dogs").mkdir()
    if case == "foreign-folder":  # images, but of no class the head knows
        (folder / TABBY).mkdir()
        (folder / TABBY / "a.jpg").write_bytes(val_samples(shards_dir)[0][1])
    capsys.readouterr()
    assert train_cli(["eval", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert not out.exists()


def test_image_folder_vocabulary_must_match(
    make_shards, wsp_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = make_shards(tmp_path / "other", n_train=8, n_val=8, vocab_hash="f" * 64)
    folder = tmp_path / "images" / WNIDS[0]
    folder.mkdir(parents=True)
    (folder / "a.jpg").write_bytes(val_samples(other)[0][1])
    args = ["eval", "--ckpt", str(wsp_run), "--shards", str(other), "--image-folder",
            str(folder.parent)]  # fmt: skip
    capsys.readouterr()
    assert train_cli(args) == 2
    assert "vocabulary" in capsys.readouterr().err
