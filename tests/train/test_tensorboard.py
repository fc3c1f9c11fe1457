"""`--tensorboard`: event files hold the logged scalars; without the package, a one-line
refusal before anything is written."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from train.cli import main as train_cli

PICO = ["--model", "vit_pico_patch4", "--batch-size", "8", "--steps", "4", "--log-every", "2",
        "--warmup-steps", "1"]  # fmt: skip


def test_event_files_hold_the_logged_scalars(shards_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(run), *PICO, "--tensorboard"]
    assert train_cli(argv) == 0
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    keys = ("loss", "lr", "grad_norm", "images_per_s", "memory_gb")
    assert sorted(events.Tags()["scalars"]) == sorted(f"train/{k}" for k in keys)
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4]
    for key in keys:
        scalars = events.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [2, 4]
        # event files store float32
        assert [s.value for s in scalars] == pytest.approx([x[key] for x in lines], rel=1e-6)


def test_missing_package_is_refused(
    shards_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # `import tensorboard` now fails
    monkeypatch.delitem(sys.modules, "torch.utils.tensorboard", raising=False)
    run = tmp_path / "run"
    capsys.readouterr()
    argv = ["mae", "--shards", str(shards_dir), "--out", str(run), *PICO, "--tensorboard"]
    assert train_cli(argv) == 2
    err = capsys.readouterr().err
    assert err == "error: --tensorboard needs the tensorboard package: pip install tensorboard\n"
    assert not run.exists()


def test_resumed_run_hides_the_steps_it_logs_again(shards_dir: Path, tmp_path: Path) -> None:
    """Killed after logging step 4 but before its checkpoint: the resumed run logs 3 and 4
    again, and TensorBoard shows each step once, with the resumed run's values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(run), *PICO, "--log-every", "1",
            "--save-every", "2", "--keep-last", "0", "--tensorboard"]  # fmt: skip
    assert train_cli(argv) == 0
    for path in run.glob("checkpoint-000004.*"):
        path.unlink()
    assert train_cli([*argv, "--resume", "auto"]) == 0
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    scalars = events.Scalars("train/loss")
    assert [s.step for s in scalars] == [1, 2, 3, 4]
    assert [s.value for s in scalars] == pytest.approx([x["loss"] for x in lines], rel=1e-6)


def test_overwritten_run_shows_only_the_new_steps(shards_dir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(run), *PICO, "--log-every", "1",
            "--tensorboard"]  # fmt: skip
    assert train_cli(argv) == 0
    assert train_cli([*argv, "--steps", "2", "--overwrite"]) == 0
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("train/loss")] == [1, 2]
