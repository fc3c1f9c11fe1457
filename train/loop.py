"""The training loop MAE and WSP share: N optimizer steps over a stream of batches.

    summary = run_steps(batches, step_loss, model, optimizer, schedule, plan, run_dir, save)

Per step: set the lr from the schedule, loss = `step_loss(batch)` (bf16 autocast on GPU),
backward, gradient norm (clipped when `clip_grad > 0`), AdamW step. The loss and gradient
norm stay on the device between logging steps; only a logging step reads them back, so the
GPU is not synchronised every step.

`RUN/log.jsonl`, one JSON object per logging step (DuckDB reads it with `read_json_auto`):

    step          optimizer steps done (1-based)
    loss          mean training loss over the steps since the previous line
    lr            learning rate of the last step
    grad_norm     total gradient norm of the last step, before clipping
    images_per_s  throughput over the steps since the previous line
    samples       images seen so far
    seconds       wall time since the loop started

Checkpoints are written by the caller's `save(step)` every `save_every` steps and at the end.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG_NAME = "log.jsonl"


@dataclass(frozen=True)
class LoopPlan:
    steps: int
    batch_size: int
    log_every: int = 10
    save_every: int = 0  # 0: only the final checkpoint
    clip_grad: float = 0.0  # 0: no clipping (the norm is still logged)


def pick_device() -> Any:
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_steps(
    batches: Iterable[tuple[Any, ...]],
    step_loss: Callable[[tuple[Any, ...]], Any],
    model: Any,
    optimizer: Any,
    schedule: Any,
    plan: LoopPlan,
    run_dir: Path,
    save: Callable[[int], None],
    *,
    device: Any = None,
    desc: str = "train",
) -> dict[str, Any]:
    """Train for `plan.steps` steps; returns a summary (final loss, seconds, images/s).

    batches: an iterable (endless for training) of tensors tuples, moved to `device` here.
    step_loss: batch on device -> scalar loss tensor.
    Raises FloatingPointError when a logged loss is not finite (the run is diverging).
    """
    import torch
    from tqdm import tqdm

    device = device or pick_device()
    params = [p for p in model.parameters() if p.requires_grad]
    max_norm = plan.clip_grad if plan.clip_grad > 0 else math.inf
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    log_path = run_dir / LOG_NAME
    log_path.write_text("")  # a fresh run starts a fresh log

    model.train()
    started = window_start = time.perf_counter()
    window_loss = torch.zeros((), device=device)
    window_steps = 0
    lines: list[dict[str, Any]] = []
    stream = iter(batches)
    progress = tqdm(total=plan.steps, desc=desc, disable=None, dynamic_ncols=True)
    for step in range(plan.steps):
        batch = next(stream, None)
        if batch is None:
            raise RuntimeError(f"the batch stream ended after {step} of {plan.steps} steps")
        batch = tuple(t.to(device, non_blocking=True) for t in batch)
        lr = schedule.apply(optimizer, step)
        with autocast:
            loss = step_loss(batch)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        window_loss += loss.detach()
        window_steps += 1
        progress.update(1)

        done = step + 1
        if done % plan.log_every == 0 or done == plan.steps:
            now = time.perf_counter()
            line = {
                "step": done,
                "loss": (window_loss / window_steps).item(),  # the one sync per window
                "lr": lr,
                "grad_norm": float(grad_norm),
                "images_per_s": window_steps * plan.batch_size / max(now - window_start, 1e-9),
                "samples": done * plan.batch_size,
                "seconds": now - started,
            }
            if not math.isfinite(line["loss"]):
                raise FloatingPointError(f"loss is {line['loss']} at step {done}: lower the lr")
            with log_path.open("a") as log:
                log.write(json.dumps(line) + "\n")
            lines.append(line)
            progress.set_postfix(loss=f"{line['loss']:.4f}", lr=f"{lr:.2e}")
            window_loss.zero_()
            window_steps, window_start = 0, time.perf_counter()
        if (plan.save_every and done % plan.save_every == 0) or done == plan.steps:
            save(done)
    progress.close()
    seconds = time.perf_counter() - started
    return {
        "steps": plan.steps,
        "final_loss": lines[-1]["loss"] if lines else None,
        "first_loss": lines[0]["loss"] if lines else None,
        "seconds": round(seconds, 3),
        "images_per_s": round(plan.steps * plan.batch_size / max(seconds, 1e-9), 2),
    }


def prepare_run_dir(out: str | Path, overwrite: bool) -> Path:
    """The run folder, created; UsageError when it already holds a run (unless overwrite)."""
    from curation.errors import UsageError

    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder")
    taken = run_dir.is_dir() and any(run_dir.glob("checkpoint-*.safetensors"))
    if taken and not overwrite:
        raise UsageError(f"{run_dir} already holds a run: pick another --out or pass --overwrite")
    if taken:
        for old in run_dir.glob("checkpoint-*.safetensors"):
            old.unlink()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir
