"""Bench: the trainer's batch hand-off, uint8 normalised on the device vs float32 from the CPU.

    .venv/bin/python -m bench.device_batch                  # CPU part: ~10 s
    .venv/bin/python -m bench.device_batch --batch 256 --image-size 224 --repeats 20

Two paths for one batch of `--batch` images at `--image-size` px, in one process:

    baseline  the old path: the loader worker normalises the stacked uint8 crops to float32
              (`shards.loader.normalise_batch` on the CPU), the float32 batch is copied
    device    the new path (`make_loader(normalise=False)` + `shards.loader.device_batch`):
              the worker only stacks, the uint8 batch is copied and normalised on the device

CPU (always, one torch thread): the worker's milliseconds per batch for each path (best of
`--repeats`, in process CPU time since the machine may be shared) and their ratio. With
CUDA, also: pinned host -> device copy (+ normalise) milliseconds per batch, best of
`--repeats`, each timed with a synchronize at both ends; whether the two paths give equal
bits on the GPU; and a host-sync census of `train.loop.run_steps` (ViT-Ti/16 WSP, bf16,
fused AdamW, uint8 batches): torch's sync debug mode counts the synchronising CUDA calls
made in logging steps and in the others (the hot loop should make none). Writes
bench/out/device_batch.json.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


def best_cpu_ms(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best * 1e3


def best_cuda_ms(fn: Any, repeats: int) -> float:
    import torch

    fn()  # warm-up: allocator, kernels
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        started = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def worker_costs(batch: int, size: int, repeats: int) -> dict[str, float]:
    """ms per batch in the loader worker: stack (+ normalise) of `batch` uint8 crops."""
    import torch

    from shards.loader import normalise_batch

    crops = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8) for _ in range(batch)]
    baseline = best_cpu_ms(lambda: normalise_batch(torch.stack(crops)), repeats)
    device = best_cpu_ms(lambda: torch.stack(crops), repeats)
    return {"baseline_worker_ms": baseline, "device_worker_ms": device}


def copy_costs(batch: int, size: int, repeats: int) -> dict[str, Any]:
    """ms per batch from pinned host memory to a normalised float32 batch on the GPU."""
    import torch

    from shards.loader import device_batch, normalise_batch

    gpu = torch.device("cuda")
    pixels = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8).pin_memory()
    floats = normalise_batch(pixels).pin_memory()
    baseline = best_cuda_ms(lambda: floats.to(gpu, non_blocking=True), repeats)
    device = best_cuda_ms(lambda: device_batch((pixels,), gpu), repeats)
    equal = torch.equal(device_batch((pixels,), gpu)[0].cpu(), floats)
    return {"baseline_copy_ms": baseline, "device_copy_ms": device, "gpu_bits_equal": equal,
            "baseline_bytes": floats.numel() * 4, "device_bytes": pixels.numel()}  # fmt: skip


def sync_census(steps: int, log_every: int, batch: int) -> dict[str, Any]:
    """Synchronising CUDA calls per step of run_steps, logging steps and the others apart."""
    import tempfile

    import torch

    from train.engine import init_distributed
    from train.loop import LoopPlan, run_steps
    from train.models import create_encoder
    from train.optim import CosineSchedule, create_optimizer
    from train.wsp import multilabel_softmax_loss

    classes = 1000
    model = create_encoder("vit_tiny_patch16", 224, num_classes=classes).cuda()
    optimizer = create_optimizer(model, lr=1e-4, weight_decay=0.05)
    pixels = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8).pin_memory()
    targets = torch.zeros(batch, classes)
    targets[torch.arange(batch), torch.randint(0, classes, (batch,))] = 1
    stream = [(pixels, targets.pin_memory(), torch.ones(batch).pin_memory())] * steps

    def step_loss(batch_: tuple[Any, ...]) -> Any:
        return multilabel_softmax_loss(model(batch_[0]), batch_[1]).mean()

    class MarkedSchedule:  # notes how many warnings came before each step began
        def __init__(self) -> None:
            self.schedule = CosineSchedule(1e-4, steps, 2)
            self.marks: list[int] = []

        def apply(self, optimizer_: Any, step: int) -> float:
            self.marks.append(len(seen))
            return self.schedule.apply(optimizer_, step)

    plan = LoopPlan(steps=steps, batch_size=batch, log_every=log_every, clip_grad=1.0)
    schedule = MarkedSchedule()
    with tempfile.TemporaryDirectory() as run_dir, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run_steps(iter(stream), step_loss, model, optimizer, schedule, plan, Path(run_dir),
                      lambda step: None, dist=init_distributed(),
                      params=list(model.parameters()))  # fmt: skip
        finally:
            torch.cuda.set_sync_debug_mode(0)
    bounds = [*schedule.marks, len(seen)]
    per_step = [
        [str(w.message) for w in seen[a:b] if "synchroniz" in str(w.message)]
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]
    logging = [(s + 1) % log_every == 0 or s + 1 == steps for s in range(steps)]
    return {
        "steps": steps,
        "logging_steps": sum(logging),
        "syncs_in_logging_steps": sum(
            len(w) for w, log in zip(per_step, logging, strict=True) if log
        ),
        "syncs_in_other_steps": sum(
            len(w) for w, log in zip(per_step, logging, strict=True) if not log
        ),
        "syncs_per_step": [len(w) for w in per_step],
        "sync_messages": sorted({m for w in per_step for m in w})[:5],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.device_batch")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--census-steps", type=int, default=20)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the worker is one process on one core
    result: dict[str, Any] = {"batch": args.batch, "image_size": args.image_size}
    result.update(worker_costs(args.batch, args.image_size, args.repeats))
    result["worker_ratio"] = result["baseline_worker_ms"] / result["device_worker_ms"]
    if torch.cuda.is_available():
        result["gpu"] = torch.cuda.get_device_name()
        result.update(copy_costs(args.batch, args.image_size, args.repeats))
        result["copy_ratio"] = result["baseline_copy_ms"] / result["device_copy_ms"]
        result.update(sync_census(args.census_steps, 10, 64))
    print(f"batch {args.batch} x 3 x {args.image_size}^2")
    print(f"{'path':<44} {'worker ms':>10} {'copy ms':>9} {'MB copied':>10}")
    for path, label in (("baseline", "float32 normalised in the worker (old)"),
                        ("device", "uint8, normalised on the device (new)")):  # fmt: skip
        copy, size = result.get(f"{path}_copy_ms"), result.get(f"{path}_bytes")
        copy_text = "-" if copy is None else f"{copy:.3f}"
        size_text = "-" if size is None else f"{size / 2**20:.1f}"
        worker = result[f"{path}_worker_ms"]
        print(f"{label:<44} {worker:>10.2f} {copy_text:>9} {size_text:>10}")
    print(f"worker time old / new: {result['worker_ratio']:.2f}x")
    if "copy_ratio" in result:
        print(f"copy time old / new on {result['gpu']}: {result['copy_ratio']:.2f}x; "
              f"equal bits on the GPU: {result['gpu_bits_equal']}")  # fmt: skip
        print(
            f"run_steps host syncs: {result['syncs_in_other_steps']} in "
            f"{result['steps'] - result['logging_steps']} non-logging steps, "
            f"{result['syncs_in_logging_steps']} in {result['logging_steps']} logging steps"
        )
    else:
        print("no CUDA: the copy and sync columns need a GPU")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "device_batch.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
