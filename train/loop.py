"""The training loop MAE and WSP share: optimizer steps `start_step..steps` over a batch stream.

    summary = run_steps(batches, step_loss, model, optimizer, schedule, plan, run_dir, save,
                        dist=dist, params=params)

Per optimizer step: set the lr from the schedule (times each group's `lr_scale`), then
`accum_steps` micro-batches, each copied to the device (uint8 images, normalised there:
shards.loader.device_batch), of forward (`step_loss`, under bf16 autocast on GPU) and
backward, the gradient all-reduce only on the last one; gradient norm (clipped when
`clip_grad > 0`); AdamW step; EMA update when given. Losses and gradient norms stay on the
device between logging steps; only a logging step reads them back (and averages the loss
over ranks), so the GPU is not synchronised every step.

`RUN/log.jsonl`, one JSON object per logging step, written by rank 0 (DuckDB reads it with
`read_json_auto`):

    step          optimizer steps done (1-based)
    loss          mean training loss over the steps since the previous line, all ranks
    lr            peak-group learning rate of the last step
    grad_norm     total gradient norm of the last step, before clipping
    images_per_s  global throughput over the steps since the previous line
    samples       images seen so far (all ranks)
    seconds       wall time since this process started the loop
    memory_gb     peak memory of rank 0 (CUDA allocator, or CPU resident set)

With `--tensorboard` (a `SummaryWriter` passed as `tensorboard`), rank 0 also writes the
scalars `train/loss`, `train/lr`, `train/grad_norm`, `train/images_per_s` and
`train/memory_gb` of each logging step to `RUN/tensorboard/events.out.tfevents.*`; a
resumed run adds a file that hides the steps after its checkpoint (the caller opens it with
`purge_step`), as `log.jsonl` is cut back.

Checkpoints are written by the caller's `save(step)` (called on every rank: FSDP gathers
collectively) every `save_every` steps and at the end. A resumed run passes `start_step` and
appends to the log, which the caller has cut back to that step.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shards.loader import device_batch
from train.engine import Dist, autocast, gradient_sync, mean_across_ranks, memory_gb

LOG_NAME = "log.jsonl"


@dataclass(frozen=True)
class LoopPlan:
    steps: int
    batch_size: int  # global: all ranks, all micro-steps
    log_every: int = 10
    save_every: int = 0  # 0: only the final checkpoint
    clip_grad: float = 0.0  # 0: no clipping (the norm is still logged)
    accum_steps: int = 1
    start_step: int = 0  # > 0 when resuming


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
    dist: Dist,
    params: list[Any],
    ema: Any = None,
    tensorboard: Any = None,
    desc: str = "train",
) -> dict[str, Any]:
    """Train steps `plan.start_step .. plan.steps - 1`; returns a summary of this process's part.

    batches: an endless iterable of tensor tuples (per-rank micro-batches; images uint8, or
        float32 already normalised), moved and normalised here.
    step_loss: micro-batch on device -> scalar loss tensor (mean over the micro-batch).
    params: the trainable parameters (clipped together).
    Raises FloatingPointError when a logged loss is not finite (the run is diverging).
    """
    import torch
    from tqdm import tqdm

    device = dist.device
    max_norm = plan.clip_grad if plan.clip_grad > 0 else math.inf
    log_path = run_dir / LOG_NAME

    model.train()
    started = window_start = time.perf_counter()
    window_loss = torch.zeros((), device=device)
    window_steps = 0
    lines: list[dict[str, Any]] = []
    stream = iter(batches)
    hide = None if dist.is_main else True  # None: tqdm shows itself only on a terminal
    progress = tqdm(total=plan.steps, initial=plan.start_step, desc=desc, disable=hide,
                    dynamic_ncols=True)  # fmt: skip
    for step in range(plan.start_step, plan.steps):
        lr = schedule.apply(optimizer, step)
        for micro in range(plan.accum_steps):
            batch = next(stream, None)
            if batch is None:
                raise RuntimeError(f"the batch stream ended at step {step} of {plan.steps}")
            batch = device_batch(batch, device)  # uint8 images normalised on the device
            with gradient_sync(model, micro == plan.accum_steps - 1), autocast(device):
                loss = step_loss(batch) / plan.accum_steps
            loss.backward()
            window_loss += loss.detach()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update()
        window_steps += 1
        progress.update(1)

        done = step + 1
        if done % plan.log_every == 0 or done == plan.steps:
            loss_value = mean_across_ranks(window_loss / window_steps, dist).item()  # one sync
            now = time.perf_counter()
            if hasattr(grad_norm, "full_tensor"):  # FSDP2: a DTensor
                grad_norm = grad_norm.full_tensor()
            line = {
                "step": done,
                "loss": loss_value,
                "lr": lr,
                "grad_norm": float(grad_norm),
                "images_per_s": window_steps * plan.batch_size / max(now - window_start, 1e-9),
                "samples": done * plan.batch_size,
                "seconds": now - started,
                "memory_gb": round(memory_gb(device), 4),
            }
            if not math.isfinite(line["loss"]):
                raise FloatingPointError(f"loss is {line['loss']} at step {done}: lower the lr")
            if dist.is_main:
                with log_path.open("a") as log:
                    log.write(json.dumps(line) + "\n")
                if tensorboard is not None:
                    for key in ("loss", "lr", "grad_norm", "images_per_s", "memory_gb"):
                        tensorboard.add_scalar(f"train/{key}", line[key], done)
            lines.append(line)
            progress.set_postfix(loss=f"{line['loss']:.4f}", lr=f"{lr:.2e}")
            window_loss.zero_()
            window_steps, window_start = 0, time.perf_counter()
        if (plan.save_every and done % plan.save_every == 0) or done == plan.steps:
            save(done)
    progress.close()
    seconds = time.perf_counter() - started
    ran = plan.steps - plan.start_step
    return {
        "steps": plan.steps,
        "steps_this_process": ran,
        "final_loss": lines[-1]["loss"] if lines else None,
        "first_loss": lines[0]["loss"] if lines else None,
        "seconds": round(seconds, 3),
        "images_per_s": round(ran * plan.batch_size / max(seconds, 1e-9), 2),
    }


def prepare_run_dir(out: str | Path, overwrite: bool, resuming: bool = False) -> Path:
    """The run folder, created; UsageError when it already holds a run (unless overwrite or
    resuming it)."""
    from curation.errors import UsageError

    run_dir = Path(out)
    if run_dir.exists() and not run_dir.is_dir():
        raise UsageError(f"--out {run_dir} is a file, not a folder")
    old = list(run_dir.glob("checkpoint-*")) if run_dir.is_dir() else []
    if old and not (overwrite or resuming):
        raise UsageError(
            f"{run_dir} already holds a run: pick another --out, pass --overwrite, "
            "or continue it with --resume auto"
        )
    if old and overwrite and not resuming:
        for path in old:
            path.unlink()
        (run_dir / LOG_NAME).unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir
