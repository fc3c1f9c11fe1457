"""`--bf16-residual` and `--split-qkv` on the trainer: recorded in meta.json, and on CPU
(fp32, no autocast) the runs train to the losses and weights of a plain run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import train.fast_vit
from tests.train.pico import losses, train_variants
from train.checkpoint import read_state

# on a GPU the trainer runs bf16 autocast, where --bf16-residual changes the losses
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="CPU fp32 equality test")


@pytest.mark.parametrize("task", ["wsp", "mae"])
def test_speed_flags_keep_fp32_cpu_training(
    task: str, shards_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = []  # the flags reach the model, not only meta.json
    real = train.fast_vit.apply_speedups

    def spy(model, **options):
        applied.append(options)
        return real(model, **options)

    monkeypatch.setattr(train.fast_vit, "apply_speedups", spy)
    variants = {"plain": [], "fast": ["--bf16-residual", "--split-qkv"]}
    runs = train_variants(task, shards_dir, tmp_path, variants)
    assert {"bf16_residual": True, "split_qkv": True} in applied
    plain, fast = losses(runs["plain"]), losses(runs["fast"])
    assert len(plain) == 3 and plain[-1] < plain[0]
    assert fast == pytest.approx(plain, rel=1e-5, abs=1e-6)  # matmul split: rounding only
    config = json.loads((runs["fast"] / "meta.json").read_text())["config"]
    assert config["bf16_residual"] is True and config["split_qkv"] is True
    ours = read_state(runs["fast"] / "checkpoint-000003.safetensors")
    theirs = read_state(runs["plain"] / "checkpoint-000003.safetensors")
    assert ours.keys() == theirs.keys()  # same names: the checkpoint loads in timm as before
    for key, value in theirs.items():
        mine = ours[key]
        if key.endswith("qkv.bias"):
            # the key bias's true gradient is 0 (softmax ignores a shift of all scores), so
            # AdamW turns either path's rounding noise into +-lr steps: compare q and v only
            third = len(value) // 3
            rows = [*range(third), *range(2 * third, 3 * third)]
            mine, value = mine[rows], value[rows]
        assert torch.allclose(mine, value, rtol=1e-4, atol=1e-5), key
