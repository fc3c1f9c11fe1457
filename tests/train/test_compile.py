"""`--compile` on CPU: torch.compile (inductor, C++ kernels built with the system compiler)
trains to the same losses and weights as eager mode.

The first run on a machine compiles the kernels (about a minute on two busy cores); later
runs take them from inductor's on-disk cache (seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.train.pico import PICO, losses, train_variants
from train.checkpoint import read_state
from train.cli import main as train_cli

# eager vs compiled to 1e-5 holds for fp32 CPU kernels; on a GPU (bf16, triton) it does not,
# and the compiler check is a CPU one
pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason="CPU-only: compares fp32 CPU kernels, checks g++"
)


def test_compiled_wsp_steps_match_eager(shards_dir: Path, tmp_path: Path) -> None:
    runs = train_variants("wsp", shards_dir, tmp_path, {"eager": [], "compiled": ["--compile"]})
    eager, compiled = losses(runs["eager"]), losses(runs["compiled"])
    assert len(eager) == 3 and eager[-1] < eager[0]  # it trains
    # same initial weights and batches: only the kernels' float rounding may differ
    assert compiled == pytest.approx(eager, rel=1e-5, abs=1e-6)
    meta = json.loads((runs["compiled"] / "meta.json").read_text())
    assert meta["config"]["compile"] is True
    ours = read_state(runs["compiled"] / "checkpoint-000003.safetensors")
    theirs = read_state(runs["eager"] / "checkpoint-000003.safetensors")
    assert ours.keys() == theirs.keys()  # no `_orig_mod.` prefixes in the file
    for key, value in theirs.items():
        assert torch.allclose(ours[key], value, rtol=1e-4, atol=1e-5), key


def test_compiled_mae_steps_match_eager(
    shards_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # inductor draws the masks' uniform noise from its own RNG unless told to call torch's;
    # with torch's, eager and compiled runs mask the same patches
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    # decoder blocks as wide as the encoder (65 tokens x 48): their kernels are the WSP test's
    decoder = ["--decoder-depth", "1", "--decoder-dim", "48", "--decoder-heads", "3"]
    variants = {"eager": [], "compiled": ["--compile"]}
    runs = train_variants("mae", shards_dir, tmp_path, variants, *decoder)
    eager, compiled = losses(runs["eager"]), losses(runs["compiled"])
    assert len(eager) == 3 and len(set(eager)) == 3
    assert compiled == pytest.approx(eager, rel=1e-5, abs=1e-6)


def test_compile_without_a_cpp_compiler_is_refused(
    shards_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import torch._inductor.config

    missing = str(tmp_path / "no-such-c++")  # as if CXX named a compiler that is not there
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, missing))
    run = tmp_path / "run"
    capsys.readouterr()
    argv = ["wsp", "--shards", str(shards_dir), "--out", str(run), *PICO, "--compile"]
    assert train_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --compile on CPU needs a C++ compiler"), err
    assert missing in err and err.count("\n") == 1
    assert not run.exists()
