"""Bad input to `train mae|wsp`: one line on stderr, exit code 2, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train.cli import main as train_cli

PICO = ["--model", "vit_pico_patch4", "--batch-size", "16", "--log-every", "2"]


def refused(argv: list[str], capsys: pytest.CaptureFixture, *words: str) -> None:
    capsys.readouterr()
    assert train_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


def test_batch_that_does_not_divide(shards_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "r"
    argv = ["mae", "--shards", str(shards_dir), "--out", str(out), *PICO, "--accum-steps", "3"]
    refused(argv, capsys, "--batch-size 16", "multiple of 3")
    assert not out.exists()


def test_empty_train_split(make_shards, tmp_path: Path, capsys) -> None:
    folder = make_shards(tmp_path / "s", n_train=0, n_val=8)
    refused(["wsp", "--shards", str(folder), "--out", str(tmp_path / "r"), *PICO], capsys,
            "train split")  # fmt: skip


def test_length_given_twice(shards_dir: Path, tmp_path: Path, capsys) -> None:
    argv = ["mae", "--shards", str(shards_dir), "--out", str(tmp_path / "r"), "--steps", "2",
            "--epochs", "0.1"]  # fmt: skip
    refused(argv, capsys, "--steps, --epochs or --samples")


def test_resume_onto_shards_of_another_vocabulary(
    shards_dir: Path, make_shards, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "r"
    argv = ["wsp", "--out", str(out), *PICO, "--steps", "2"]
    assert train_cli([*argv, "--shards", str(shards_dir)]) == 0
    other = make_shards(tmp_path / "other", n_train=32, n_val=8, vocab_hash="e" * 64)
    refused([*argv, "--steps", "4", "--shards", str(other), "--resume", "auto"], capsys,
            "vocabulary")  # fmt: skip
    assert [json.loads(x)["step"] for x in (out / "log.jsonl").open()] == [2]


def test_epochs_set_the_length(shards_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    argv = ["mae", "--shards", str(shards_dir), "--out", str(out), *PICO, "--epochs", "0.1",
            "--decoder-depth", "1", "--decoder-dim", "32", "--decoder-heads", "4"]  # fmt: skip
    assert train_cli(argv) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["counts"]["steps"] == 2  # ceil(0.1 * 192 / 16)
    assert meta["config"]["steps_total"] == 2 and meta["counts"]["epochs"] == pytest.approx(
        2 * 16 / 192, abs=1e-4
    )
