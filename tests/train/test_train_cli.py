"""`train mae`, `train wsp`, `train eval` end to end on tiny shards, through their main(argv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from shards.manifest import read_manifest
from tests.train.conftest import COMMON
from train.checkpoint import read_info, read_state
from train.cli import main as train_cli


def log_lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def falls(lines: list[dict]) -> bool:
    first = sum(x["loss"] for x in lines[:2]) / 2
    last = sum(x["loss"] for x in lines[-2:]) / 2
    return last < 0.85 * first


def test_mae_run_writes_its_files(mae_run: Path) -> None:
    names = sorted(p.name for p in mae_run.iterdir())
    assert names == ["checkpoint-000020.safetensors", "checkpoint-000020.state.pt",
                     "checkpoint-000040.safetensors", "checkpoint-000040.state.pt",
                     "log.jsonl", "meta.json", "reconstructions.png"]  # fmt: skip
    lines = log_lines(mae_run)
    assert [x["step"] for x in lines] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert set(lines[0]) >= {"step", "loss", "lr", "images_per_s", "grad_norm", "seconds"}
    assert falls(lines), [x["loss"] for x in lines]
    info = read_info(mae_run / "checkpoint-000040.safetensors")
    assert (info.kind, info.model, info.image_size) == ("mae", "vit_pico_patch4", 32)
    assert info.config["mask_ratio"] == 0.75 and info.config["image_size"] == 32
    meta = json.loads((mae_run / "meta.json").read_text())
    assert meta["counts"]["steps"] == 40 and meta["config"]["decoder_dim"] == 64
    with Image.open(mae_run / "reconstructions.png") as png:
        assert png.size == (3 * 96, 8 * 96)  # 8 rows of original | masked | reconstruction


def test_wsp_run_starts_from_the_mae_encoder(
    shards_dir: Path, mae_run: Path, wsp_run: Path
) -> None:
    lines = log_lines(wsp_run)
    assert falls(lines), [x["loss"] for x in lines]
    info = read_info(wsp_run / "checkpoint-000040.safetensors")
    assert (info.kind, info.num_classes, info.model) == ("wsp", 5, "vit_pico_patch4")
    assert info.vocab_hash == read_manifest(shards_dir).vocab_hash
    assert info.config["init"] == str(mae_run / "checkpoint-000040.safetensors")
    meta = json.loads((wsp_run / "meta.json").read_text())
    assert meta["counts"]["fresh_keys"] == ["head.bias", "head.weight"]
    state = read_state(wsp_run / "checkpoint-000040.safetensors")
    assert state["head.weight"].shape == (5, 48)
    assert not any(k.startswith("decoder.") for k in state)


def test_eval_of_wsp_scores_above_chance(shards_dir: Path, wsp_run: Path) -> None:
    assert train_cli(["eval", "--ckpt", str(wsp_run), "--shards", str(shards_dir),
                      "--probe-epochs", "20"]) == 0  # fmt: skip
    metrics = json.loads((wsp_run / "metrics.json").read_text())
    scores = ["top1", "top5", "mAP", "probe_top1", "probe_train_top1", "chance_top1_prior",
              "chance_top1_uniform", "chance_top5_prior", "chance_top5_uniform",
              "chance_mAP"]  # fmt: skip
    for key in scores:
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["val_samples"] == 64 and metrics["probe_train_samples"] == 192
    assert metrics["top5"] == 1.0  # 5 classes: the top 5 are all of them
    assert metrics["chance_top5_uniform"] == pytest.approx(1.0)
    assert metrics["top1"] > metrics["chance_top1_prior"] + 0.1
    assert metrics["probe_top1"] > metrics["chance_top1_uniform"]


def test_eval_of_mae_is_probe_only(shards_dir: Path, mae_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert train_cli(["eval", "--ckpt", str(mae_run / "checkpoint-000020.safetensors"),
                      "--shards", str(shards_dir), "--out", str(out),
                      "--probe-epochs", "5"]) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert metrics["kind"] == "mae" and "top1" not in metrics and "mAP" not in metrics
    assert 0.0 <= metrics["probe_top1"] <= 1.0


def test_eval_refuses_another_vocabulary(
    make_shards, wsp_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    other = make_shards(tmp_path / "other", n_train=8, n_val=8, vocab_hash="f" * 64)
    assert train_cli(["eval", "--ckpt", str(wsp_run), "--shards", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "vocabulary" in err and err.count("\n") == 1


def test_eval_refuses_empty_val_split(make_shards, wsp_run: Path, tmp_path: Path) -> None:
    empty = make_shards(tmp_path / "empty", n_train=8, n_val=0)
    assert train_cli(["eval", "--ckpt", str(wsp_run), "--shards", str(empty)]) == 2


def test_wsp_from_scratch_and_refusals(shards_dir: Path, mae_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "scratch"
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(out), *COMMON, "--steps", "5"]
    assert train_cli(argv) == 0
    assert read_info(out / "checkpoint-000005.safetensors").config["init"] is None
    assert train_cli(argv) == 2  # the folder holds a run now
    assert train_cli([*argv, "--overwrite"]) == 0
    mismatch = ["wsp", "--shards", str(shards_dir), "--out", str(tmp_path / "x"),
                "--init", str(mae_run), "--model", "vit_micro_patch4"]  # fmt: skip
    assert train_cli(mismatch) == 2
    assert train_cli(["mae", "--shards", str(shards_dir), "--out", str(tmp_path / "y"),
                      "--mask-ratio", "1.5"]) == 2  # fmt: skip
    assert train_cli(["mae", "--shards", str(tmp_path), "--out", str(tmp_path / "z")]) == 2
