"""Run a training task end to end: one process or a `torchrun` job, fresh or resumed.

    return fit(opts, task, manifest)     # opts: a train.recipe.TrainOptions subclass

A `Task` (MAE or WSP) says how to build the model, compute a micro-batch's loss, name the
weights in the checkpoint file and what to do at a checkpoint; `fit` does the rest, the same
for both:

1. process group (train.engine), global batch -> per-rank micro-batch, length in steps;
2. run folder; `--resume auto|PATH` picks a complete checkpoint (train.state) and refuses
   one of another kind, model, image size or vocabulary;
3. the same seed on every rank builds the same model; weights (and, resuming, optimizer
   state, RNG, loader position, EMA) are restored before the loop; the per-rank RNG
   (MAE masks, drop path, mixup) is seeded by seed and rank;
4. the shared loop (train.loop); a checkpoint (weights + state, atomically, keep-last-N)
   every `save_every` steps and at the end; `meta.json` with per-rank step counts and
   weight digests (DDP replicas must agree bit for bit).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from curation.errors import UsageError
from curation.layout import write_meta
from shards.manifest import Manifest
from train.recipe import TrainOptions


class Task(Protocol):
    kind: str  # "mae" | "wsp"
    model_name: str
    image_size: int
    num_classes: int
    class_wnids: tuple[str, ...] | None  # the head's classes in head order (WSP); MAE: None

    def build(self) -> Any: ...  # the plain nn.Module, on the CPU

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any: ...  # scalar, micro-batch mean

    def create_optimizer(self, module: Any, lr: float) -> Any: ...

    def to_file(self, state: dict[str, Any]) -> dict[str, Any]: ...  # module -> file keys

    def from_file(self, state: dict[str, Any]) -> dict[str, Any]: ...  # file -> module keys

    def create_ema(self, module: Any) -> Any: ...  # a train.ema.ModelEma, or None

    def at_checkpoint(self, module: Any, step: int, run_dir: Path | None) -> None: ...

    def counts(self, module: Any) -> dict[str, Any]: ...  # for meta.json


def check_resumable(info: Any, task: Task, vocab_hash: str) -> None:
    """A checkpoint to continue must be of this kind, model, resolution and vocabulary."""
    theirs = (info.kind, info.model, info.image_size, info.num_classes)
    ours = (task.kind, task.model_name, task.image_size, task.num_classes)
    if theirs != ours:
        raise UsageError(
            f"--resume {info.path}: it is a {info.kind} {info.model} at {info.image_size}px "
            f"with {info.num_classes} classes, this run is a {task.kind} {task.model_name} at "
            f"{task.image_size}px with {task.num_classes}"
        )
    if task.kind == "wsp" and info.vocab_hash != vocab_hash:
        raise UsageError(
            f"--resume {info.path}: its head is over vocabulary {info.vocab_hash[:12]}, the "
            f"shards carry {vocab_hash[:12]}"
        )


def weights_digest(module: Any) -> str:
    """sha256 over every parameter's bytes, in name order (equal iff the weights are equal)."""
    digest = hashlib.sha256()
    for name, param in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(param.detach().cpu().float().numpy().tobytes())
    return digest.hexdigest()


def fit(opts: TrainOptions, task: Task, manifest: Manifest, desc: str) -> dict[str, Any]:
    """Train `task` as `opts` says; returns the counts written to meta.json, plus `rank`."""
    import torch

    from shards.loader import make_loader
    from train import engine, state
    from train.checkpoint import checkpoint_name, read_info, save_checkpoint
    from train.fast_vit import apply_speedups
    from train.loop import LOG_NAME, LoopPlan, prepare_run_dir, run_steps
    from train.optim import CosineSchedule, peak_lr
    from train.recipe import micro_batch_size, total_steps

    started = time.time()
    # before anything is written: a missing tensorboard package is a one-line refusal
    summary_writer = _summary_writer_class() if opts.tensorboard else None
    if opts.threads:
        torch.set_num_threads(opts.threads)
    train_samples = manifest.count("train")
    if not manifest.paths("train") or not train_samples:
        raise UsageError(f"{manifest.folder}: the train split has no shards to train on")
    dist = engine.init_distributed()
    try:
        micro = micro_batch_size(opts.batch_size, dist.world_size, opts.accum_steps)
        if opts.compile:
            engine.check_compile(dist.device)
        if opts.strategy == "fsdp" and _wants_ema(opts):
            raise UsageError("--ema is not supported with --strategy fsdp")
        steps = total_steps(opts, train_samples)
        run_dir = Path(opts.out)
        resume = state.find_resume(run_dir, opts.resume)
        if dist.is_main:
            prepare_run_dir(run_dir, opts.overwrite, resuming=resume is not None)
        engine.barrier(dist)
        saved: dict[str, Any] | None = None
        if resume is not None:
            check_resumable(read_info(resume), task, manifest.vocab_hash)
            saved = state.load_state(resume)
            if saved["step"] >= steps:
                raise UsageError(f"--resume {resume}: already at step {saved['step']} of {steps}")
            if len(saved["rng"]) != dist.world_size:
                raise UsageError(f"--resume {resume}: saved by {len(saved['rng'])} ranks, "
                                 f"now {dist.world_size}")  # fmt: skip
        start_step = saved["step"] if saved else 0
        if dist.is_main:
            if saved:
                state.truncate_log(run_dir / LOG_NAME, start_step)
            else:  # a fresh run starts a fresh log, and TensorBoard shows it alone
                (run_dir / LOG_NAME).write_text("")
                shutil.rmtree(run_dir / "tensorboard", ignore_errors=True)

        torch.manual_seed(opts.seed)  # the same initial weights on every rank
        module = task.build()
        if saved is not None:
            from train.checkpoint import read_state

            module.load_state_dict(task.from_file(read_state(resume)), strict=True)
        apply_speedups(module, bf16_residual=opts.bf16_residual, split_qkv=opts.split_qkv)
        module = module.to(dist.device)
        model = engine.wrap_model(
            module, dist, strategy=opts.strategy,
            activation_checkpointing=opts.activation_checkpointing, compile=opts.compile,
        )  # fmt: skip
        lr = peak_lr(opts.base_lr, opts.batch_size)  # e.g. 1.5e-4 * 4096 / 256 = 2.4e-3
        optimizer = task.create_optimizer(module, lr)
        schedule = CosineSchedule(peak=lr, total_steps=steps, warmup_steps=opts.warmup_steps,
                                  min_lr=opts.min_lr)  # fmt: skip
        ema = task.create_ema(module)
        torch.manual_seed(opts.seed * 1000 + 1 + dist.rank)  # masks, drop path, mixup per rank
        if saved is not None:
            engine.load_full_optimizer_state(model, optimizer, saved["optimizer"])
            state.set_rng_state(saved["rng"][dist.rank])
            if ema is not None and saved.get("ema") is not None:
                ema.load_state_dict(saved["ema"])
        batches = make_loader(
            manifest, "train", batch_size=micro, image_size=task.image_size, train=True,
            seed=opts.seed, num_workers=opts.num_workers, min_scale=opts.min_scale,
            balance=getattr(opts, "balance", False), rank=dist.rank,
            world_size=dist.world_size, start_batch=start_step * opts.accum_steps,
            normalise=False,  # uint8 to the device (4x fewer bytes), normalised there
        )  # fmt: skip
        tensorboard = None
        if summary_writer is not None and dist.is_main:
            # resuming: hide the events a killed run logged after this checkpoint, as the
            # log is cut back (TensorBoard drops steps >= purge_step of earlier files)
            purge = start_step + 1 if saved is not None else None
            tensorboard = summary_writer(str(run_dir / "tensorboard"), purge_step=purge)
        resolved = dataclasses.asdict(opts) | {"steps_total": steps, "micro_batch": micro,
                                               "world_size": dist.world_size}  # fmt: skip

        def save(step: int) -> None:
            weights = engine.full_model_state(model)  # collective under FSDP
            optim_state = engine.full_optimizer_state(model, optimizer)
            rngs = engine.all_gather_object(state.rng_state(), dist)
            if dist.is_main:
                write_checkpoint(step, weights, optim_state, rngs)
            task.at_checkpoint(module, step, run_dir if dist.is_main else None)

        def write_checkpoint(step: int, weights: Any, optim_state: Any, rngs: list) -> None:
            path = run_dir / checkpoint_name(step)
            state.save_state(path, {
                "step": step, "loader_batch": step * opts.accum_steps,
                "optimizer": optim_state, "schedule": dataclasses.asdict(schedule),
                "rng": rngs, "ema": ema.state_dict() if ema is not None else None,
                "config": resolved,
            })  # fmt: skip
            save_checkpoint(
                path, task.to_file(weights), kind=task.kind, model=task.model_name,
                image_size=task.image_size, num_classes=task.num_classes, config=resolved,
                vocab_hash=manifest.vocab_hash, class_wnids=task.class_wnids,
            )  # fmt: skip
            state.prune(run_dir, opts.keep_last)

        plan = LoopPlan(
            steps=steps, batch_size=opts.batch_size, log_every=opts.log_every,
            save_every=opts.save_every, clip_grad=opts.clip_grad,
            accum_steps=opts.accum_steps, start_step=start_step,
        )  # fmt: skip
        params = [p for p in model.parameters() if p.requires_grad]
        summary = run_steps(
            batches, lambda batch: task.loss(model, batch), model, optimizer, schedule, plan,
            run_dir, save, dist=dist, params=params, ema=ema, tensorboard=tensorboard,
            desc=desc,
        )  # fmt: skip
        ranks = engine.all_gather_object(
            {"steps": summary["steps_this_process"],
             "digest": weights_digest(module) if opts.strategy == "ddp" else None},
            dist,
        )  # fmt: skip
        counts = {
            **summary,
            **task.counts(module),
            "resumed_from": str(resume) if resume else None,
            "train_samples": train_samples,
            "epochs": round(steps * opts.batch_size / train_samples, 4),
            "world_size": dist.world_size,
            "micro_batch": micro,
            "rank_steps": [r["steps"] for r in ranks],
            "rank_weight_digests": [r["digest"] for r in ranks],
            "device": str(dist.device),
        }
        if dist.is_main:
            write_meta(run_dir, config=resolved, counts=counts, started=started)
            if tensorboard is not None:
                tensorboard.close()
        return counts | {"rank": dist.rank}
    finally:
        engine.shutdown(dist)


def _wants_ema(opts: TrainOptions) -> bool:
    return bool(getattr(opts, "ema", 0.0))


def _summary_writer_class() -> Any:
    """torch's tensorboard SummaryWriter; UsageError when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        raise UsageError(
            "--tensorboard needs the tensorboard package: pip install tensorboard"
        ) from err
    return SummaryWriter


def print_summary(kind: str, counts: dict[str, Any], out: str) -> None:
    """The one line `train mae|wsp` ends with (rank 0 only, once a loss was logged)."""
    if counts["first_loss"] is not None and counts["rank"] == 0:
        print(
            f"{kind}: {counts['steps']} steps, loss {counts['first_loss']:.4f} -> "
            f"{counts['final_loss']:.4f}, {counts['images_per_s']:.1f} images/s; wrote {out}"
        )
