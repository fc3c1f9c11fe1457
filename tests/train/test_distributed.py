"""`torchrun` with 2 CPU processes (gloo): DDP replicas stay identical and every rank runs the
same number of steps from uneven shards; FSDP2 with activation checkpointing trains the
same model to the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train.checkpoint import read_info, read_state


def torchrun(args: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", "-m", "train.cli", *args]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory, make_shards) -> Path:
    # shards of 40, 40 and 5 samples: split by shard, one rank would get 80 and the other 5
    return make_shards(tmp_path_factory.mktemp("uneven"), n_train=85, n_val=8, per_shard=40)


def run(uneven: Path, out: Path, *extra: str) -> dict:
    torchrun(["wsp", "--shards", str(uneven), "--out", str(out), "--model", "vit_pico_patch4",
              "--epochs", "1.5", "--batch-size", "16", "--accum-steps", "2", "--log-every",
              "2", "--warmup-steps", "2", "--base-lr", "0.01", "--keep-last", "1",
              "--num-workers", "0", *extra])  # fmt: skip
    return json.loads((out / "meta.json").read_text())


def test_ddp_and_fsdp_agree(uneven: Path, tmp_path: Path) -> None:
    ddp = run(uneven, tmp_path / "ddp")["counts"]
    steps = 8  # ceil(1.5 epochs * 85 samples / 16 per step)
    assert ddp["steps"] == steps and ddp["world_size"] == 2 and ddp["micro_batch"] == 4
    assert ddp["rank_steps"] == [steps, steps]
    digests = ddp["rank_weight_digests"]
    assert digests[0] is not None and digests[0] == digests[1]  # replicas bit-identical

    fsdp = run(uneven, tmp_path / "fsdp", "--strategy", "fsdp", "--activation-checkpointing")
    assert fsdp["counts"]["rank_steps"] == [steps, steps]
    a = read_state(tmp_path / "ddp" / f"checkpoint-{steps:06d}.safetensors")
    b = read_state(tmp_path / "fsdp" / f"checkpoint-{steps:06d}.safetensors")
    assert a.keys() == b.keys() and "head.weight" in a
    for key in a:  # same data, same init, fp32: equal up to reduction order
        assert torch.allclose(a[key], b[key], atol=1e-5, rtol=1e-4), key
    info = read_info(tmp_path / "fsdp" / f"checkpoint-{steps:06d}.safetensors")
    assert info.config["strategy"] == "fsdp" and info.config["world_size"] == 2
    losses = [json.loads(x)["loss"] for x in (tmp_path / "ddp" / "log.jsonl").open()]
    fsdp_losses = [json.loads(x)["loss"] for x in (tmp_path / "fsdp" / "log.jsonl").open()]
    assert len(losses) == 4 and fsdp_losses == pytest.approx(losses, rel=1e-4)
