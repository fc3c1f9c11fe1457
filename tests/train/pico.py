"""A 3-step pico training run, twice with different flags: the equality tests' set-up."""

from __future__ import annotations

import json
from pathlib import Path

from train.cli import main as train_cli

PICO = ["--model", "vit_pico_patch4", "--batch-size", "8", "--steps", "3", "--log-every", "1",
        "--warmup-steps", "1", "--base-lr", "0.01"]  # fmt: skip


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "log.jsonl").read_text().splitlines()]


def train_variants(
    task: str, shards_dir: Path, out: Path, variants: dict[str, list[str]], *extra: str
) -> dict[str, Path]:
    """`train TASK` on `shards_dir` with PICO + `extra` + each variant's flags, into
    out/NAME; returns {name: run folder}."""
    runs = {}
    for name, flags in variants.items():
        runs[name] = out / name
        argv = [task, "--shards", str(shards_dir), "--out", str(runs[name]), *PICO, *extra,
                *flags]  # fmt: skip
        assert train_cli(argv) == 0
    return runs
