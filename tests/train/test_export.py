"""`train export`: the folder loads with timm.create_model("local-dir:...") and computes what
the checkpoint computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch

from shards.manifest import read_manifest
from train.checkpoint import read_state
from train.cli import main as train_cli
from train.models import create_encoder
from train.state import load_state


@pytest.fixture(scope="module")
def wsp_run(shards_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "wsp"
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(out), "--model", "vit_pico_patch4",
            "--steps", "3", "--batch-size", "16", "--ema", "0.5"]  # fmt: skip
    assert train_cli(argv) == 0
    return out


def test_export_loads_in_timm_with_the_same_outputs(
    shards_dir: Path, wsp_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "exported"
    assert train_cli(["export", str(wsp_run), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json",
                                                      "model.safetensors"]  # fmt: skip
    config = json.loads((out / "config.json").read_text())
    assert config["label_names"] == [c["wnid"] for c in read_manifest(shards_dir).classes]
    assert config["num_classes"] == 5
    loaded = timm.create_model(f"local-dir:{out}", pretrained=True).eval()
    ours = create_encoder("vit_pico_patch4", 32, num_classes=5).eval()
    ours.load_state_dict(read_state(wsp_run / "checkpoint-000003.safetensors"))
    images = torch.randn(4, 3, 32, 32)
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in loaded.state_dict().items())
    with torch.no_grad():  # timm convolves the patches, ours multiplies: equal up to rounding
        torch.testing.assert_close(loaded(images), ours(images), rtol=1e-5, atol=1e-6)
    assert train_cli(["export", str(wsp_run), "--out", str(out)]) == 2  # exists
    assert train_cli(["export", str(wsp_run), "--out", str(out), "--overwrite", "--ema"]) == 0
    ema = load_state(wsp_run / "checkpoint-000003.safetensors")["ema"]
    loaded = timm.create_model(f"local-dir:{out}", pretrained=True)
    assert torch.equal(loaded.state_dict()["head.weight"], ema["head.weight"])
    assert not torch.equal(ema["head.weight"], ours.state_dict()["head.weight"])


def test_export_of_mae_drops_the_decoder(shards_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "mae"
    assert train_cli(["mae", "--shards", str(shards_dir), "--out", str(run), "--model",
                      "vit_pico_patch4", "--steps", "1", "--batch-size", "8",
                      "--decoder-depth", "1", "--decoder-dim", "32",
                      "--decoder-heads", "4"]) == 0  # fmt: skip
    assert train_cli(["export", str(run)]) == 0
    loaded = timm.create_model(f"local-dir:{run / 'export'}", pretrained=True).eval()
    state = read_state(run / "checkpoint-000001.safetensors")
    encoder = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    assert loaded.num_classes == 0 and loaded.state_dict().keys() == encoder.keys()
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in encoder.items())
