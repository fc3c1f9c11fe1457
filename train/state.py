"""`RUN/checkpoint-NNNNNN.state.pt`: what a run needs besides its weights to continue exactly.

A checkpoint is a pair written in this order, each to a temporary name and renamed:

    checkpoint-NNNNNN.state.pt       torch.save of the dict below (weights_only-loadable)
    checkpoint-NNNNNN.safetensors    the weights (train.checkpoint), written last

so a `.safetensors` whose `.state.pt` exists is a complete checkpoint; `--resume auto` takes
the newest complete one. State dict:

    format        "mawskit-train-state/1"
    step          optimizer steps done
    loader_batch  micro-batches each rank has consumed (= step * accum_steps)
    optimizer     full (unsharded) AdamW state, keyed by parameter name
    schedule      {"peak", "total_steps", "warmup_steps", "min_lr"} (lr_at is pure)
    rng           one entry per rank: {"python", "torch", "cuda"} generator states
    ema           EMA weights by name, or None
    config        the resolved options

After a save, all but the newest `keep_last` checkpoints (both files) are deleted.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

from curation.errors import UsageError

FORMAT = "mawskit-train-state/1"
_STEP = re.compile(r"^checkpoint-(\d+)\.safetensors$")


def state_path(weights: Path) -> Path:
    return weights.with_name(weights.name.replace(".safetensors", ".state.pt"))


def rng_state() -> dict[str, Any]:
    import torch

    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(weights: Path, state: dict[str, Any]) -> None:
    """Write the state file of checkpoint `weights` atomically (before the weights)."""
    import torch

    path = state_path(weights)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({"format": FORMAT, **state}, tmp)
    os.replace(tmp, path)


def load_state(weights: Path) -> dict[str, Any]:
    import torch

    path = state_path(weights)
    if not path.is_file():
        raise UsageError(f"{weights} has no {path.name}: it holds weights only, not a run state")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise UsageError(f"{path} is not a {FORMAT} file")
    return state


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Weights files with their state file, oldest first."""
    found = [p for p in run_dir.glob("checkpoint-*.safetensors") if _STEP.match(p.name)]
    return sorted(p for p in found if state_path(p).is_file())


def find_resume(run_dir: Path, resume: str | None) -> Path | None:
    """The checkpoint to continue from: None (fresh), `auto` (newest complete), or a path."""
    if resume is None:
        return None
    if resume == "auto":
        found = complete_checkpoints(run_dir) if run_dir.is_dir() else []
        return found[-1] if found else None
    path = Path(resume)
    if path.is_dir():
        found = complete_checkpoints(path)
        if not found:
            raise UsageError(f"--resume {path}: no complete checkpoint in that folder")
        return found[-1]
    if not path.is_file():
        raise UsageError(f"--resume {path}: no such checkpoint")
    return path


def prune(run_dir: Path, keep_last: int) -> list[Path]:
    """Delete all but the newest `keep_last` checkpoints (0 keeps all); returns the deleted."""
    if keep_last <= 0:
        return []
    found = sorted(p for p in run_dir.glob("checkpoint-*.safetensors") if _STEP.match(p.name))
    gone = found[:-keep_last]
    for weights in gone:
        weights.unlink()
        state_path(weights).unlink(missing_ok=True)
    return gone


def truncate_log(log_path: Path, step: int) -> None:
    """Keep the log lines up to `step`: a resumed run re-logs what came after, once."""
    import json

    if not log_path.exists():
        return
    kept = [line for line in log_path.read_text().splitlines()
            if line.strip() and json.loads(line)["step"] <= step]  # fmt: skip
    tmp = log_path.with_name(f".{log_path.name}.tmp-{os.getpid()}")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, log_path)
