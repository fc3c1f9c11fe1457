"""A run killed mid-way and resumed with `--resume auto` logs exactly what an uninterrupted run
logs, and ends with the same weights, optimizer and EMA state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train.state
from train.checkpoint import read_state
from train.cli import main as train_cli


class Killed(Exception):
    """Stands in for the process dying right after a checkpoint was written."""


def log_losses(run: Path) -> list[tuple[int, float]]:
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return [(x["step"], x["loss"]) for x in lines]


def kill_after(monkeypatch: pytest.MonkeyPatch, step: int) -> None:
    original = train.state.prune

    def prune_then_die(run_dir: Path, keep_last: int) -> list[Path]:
        gone = original(run_dir, keep_last)
        if (run_dir / f"checkpoint-{step:06d}.safetensors").exists():
            raise Killed
        return gone

    monkeypatch.setattr(train.state, "prune", prune_then_die)


def interrupted_and_resumed(argv: list[str], out: Path, kill_step: int,
                            monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with monkeypatch.context() as patch:
        kill_after(patch, kill_step)
        with pytest.raises(Killed):
            train_cli([*argv, "--out", str(out)])
    # the dead run left its log beyond the checkpoint? cut it back like a real crash would not
    assert train_cli([*argv, "--out", str(out), "--resume", "auto"]) == 0


MAE = ["mae", "--model", "vit_pico_patch4", "--batch-size", "16", "--steps", "12",
       "--log-every", "2", "--save-every", "4", "--warmup-steps", "3", "--base-lr", "0.01",
       "--decoder-depth", "1", "--decoder-dim", "32", "--decoder-heads", "4",
       "--keep-last", "0"]  # fmt: skip


def test_mae_resume_matches_an_uninterrupted_run(
    shards_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [*MAE, "--shards", str(shards_dir)]
    assert train_cli([*argv, "--out", str(tmp_path / "whole")]) == 0
    interrupted_and_resumed(argv, tmp_path / "resumed", 8, monkeypatch)
    whole, resumed = log_losses(tmp_path / "whole"), log_losses(tmp_path / "resumed")
    assert [s for s, _ in resumed] == [2, 4, 6, 8, 10, 12]  # no duplicates, no gaps
    assert resumed == whole  # bit-identical losses after the resume
    a = read_state(tmp_path / "whole" / "checkpoint-000012.safetensors")
    b = read_state(tmp_path / "resumed" / "checkpoint-000012.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    meta = json.loads((tmp_path / "resumed" / "meta.json").read_text())
    assert meta["counts"]["steps_this_process"] == 4
    assert meta["counts"]["resumed_from"].endswith("checkpoint-000008.safetensors")


def test_wsp_resume_with_every_random_option(
    shards_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["wsp", "--shards", str(shards_dir), "--model", "vit_pico_patch4", "--steps", "6",
            "--batch-size", "16", "--accum-steps", "2", "--log-every", "1", "--save-every",
            "3", "--mixup", "0.8", "--drop-path", "0.1", "--label-smoothing", "0.1",
            "--ema", "0.9", "--layer-decay", "0.75", "--num-workers", "2"]  # fmt: skip
    assert train_cli([*argv, "--out", str(tmp_path / "whole")]) == 0
    interrupted_and_resumed(argv, tmp_path / "resumed", 3, monkeypatch)
    assert log_losses(tmp_path / "resumed") == log_losses(tmp_path / "whole")
    ema = [train.state.load_state(tmp_path / run / "checkpoint-000006.safetensors")["ema"]
           for run in ("whole", "resumed")]  # fmt: skip
    assert all(torch.equal(ema[0][k], ema[1][k]) for k in ema[0])
    state = train.state.load_state(tmp_path / "whole" / "checkpoint-000006.safetensors")
    assert state["step"] == 6 and state["loader_batch"] == 12  # 2 micro-batches per step
    assert len(state["rng"]) == 1 and state["config"]["micro_batch"] == 8


def test_keep_last_and_resume_refusals(
    shards_dir: Path, make_shards, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "run"
    argv = [*MAE[:-2], "--shards", str(shards_dir), "--out", str(out), "--keep-last", "2"]
    assert train_cli(argv) == 0
    names = sorted(p.name for p in out.glob("checkpoint-*"))
    assert names == ["checkpoint-000008.safetensors", "checkpoint-000008.state.pt",
                     "checkpoint-000012.safetensors", "checkpoint-000012.state.pt"]  # fmt: skip
    capsys.readouterr()
    # a finished run cannot be continued to the same length
    assert train_cli([*argv, "--resume", "auto"]) == 2
    # another model size
    other = [*argv, "--steps", "16", "--resume", "auto", "--model", "vit_micro_patch4"]
    assert train_cli(other) == 2
    assert "vit_pico_patch4" in capsys.readouterr().err
    # without --resume or --overwrite the folder is taken
    assert train_cli(argv) == 2
    assert "--resume auto" in capsys.readouterr().err
    # continued to a longer run: appends steps 14, 16 to the log
    assert train_cli([*argv, "--steps", "16", "--resume", "auto"]) == 0
    steps = [s for s, _ in log_losses(out)]
    assert steps == [2, 4, 6, 8, 10, 12, 14, 16]


def test_sigkill_at_any_moment_then_resume_auto(shards_dir: Path, tmp_path: Path) -> None:
    """A real SIGKILL (maybe mid-checkpoint-write): `--resume auto` still ends identical."""
    import os
    import signal
    import subprocess
    import sys
    import time

    argv = [*MAE, "--shards", str(shards_dir), "--steps", "120", "--save-every", "4",
            "--log-every", "4", "--threads", "1"]  # fmt: skip
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "train.cli", *argv, "--out", str(killed)],
        cwd=Path(__file__).resolve().parents[2], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if (killed / "checkpoint-000012.safetensors").exists():
                break
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "checkpoint-000120.safetensors").exists()
    assert train_cli([*argv, "--out", str(killed), "--resume", "auto"]) == 0
    assert train_cli([*argv, "--out", str(tmp_path / "whole")]) == 0
    whole, resumed = log_losses(tmp_path / "whole"), log_losses(killed)
    assert [s for s, _ in resumed] == list(range(4, 121, 4))  # no duplicates, no gaps
    assert resumed == whole
