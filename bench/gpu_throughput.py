"""Bench: ViT-B/16 MAE and WSP training throughput and MFU on one GPU, plus the loader.

    python -m bench.gpu_throughput                 # one H100: ~5 min (compile included)
    python -m bench.gpu_throughput --no-compile --steps 10   # quicker look

For each of MAE (mask 0.75, decoder 8 x 512) and WSP (head over `--classes` classes) at
224 px, bf16 autocast, fused AdamW, the trainer's own step (train.loop's micro-step: loss,
backward, clip, optimizer step), compile off and on: images/s over `--steps` timed steps
after warm-up, and model FLOPs utilisation

    MFU = (training FLOPs per image, counted by torch.utils.flop_counter on one fwd+bwd)
          x images/s / peak bf16 FLOP/s of the GPU (`--peak-tflops`; default by name:
          H100/H200 SXM 989 dense)

The model FLOPs count only the useful matmuls (no recompute). Data comes from GPU memory
(random tensors) so the model is measured alone; the loader is measured separately on the
same machine: `make_loader` over synthetic JPEG shards (288 px stored, 224 crop) with
`--loader-workers` workers, images/s. The baseline in the same run is the compile-off step.
Needs CUDA: without a GPU it says so and exits 2. Writes bench/out/gpu_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16, SXM parts


def build(kind: str, classes: int) -> tuple[Any, Any]:
    """(model on cuda, loss fn(model, images, targets) -> scalar)."""
    from train.mae import MaskedAutoencoder
    from train.models import create_encoder
    from train.wsp import multilabel_softmax_loss

    if kind == "mae":
        model = MaskedAutoencoder(create_encoder("vit_base_patch16", 224)).cuda()
        return model, lambda m, x, t: m(x, 0.75)[0]
    model = create_encoder("vit_base_patch16", 224, num_classes=classes).cuda()
    return model, lambda m, x, t: multilabel_softmax_loss(m(x), t).mean()


def training_flops(kind: str, classes: int, batch: int) -> float:
    """fwd + bwd FLOPs per image of one training step, counted on the real model."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model, loss_fn = build(kind, classes)
    images = torch.randn(batch, 3, 224, 224, device="cuda")
    targets = torch.zeros(batch, classes, device="cuda")
    targets[:, 0] = 1
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cuda", dtype=torch.bfloat16):
        loss_fn(model, images, targets).backward()
    del model
    return counter.get_total_flops() / batch


def time_steps(kind: str, classes: int, batch: int, steps: int, compile: bool) -> float:
    """Images/s of the training step (after warm-up), synchronised only at the ends."""
    import torch

    from train.optim import param_groups

    torch.manual_seed(0)
    model, loss_fn = build(kind, classes)
    optimizer = torch.optim.AdamW(param_groups(model.named_parameters(), 0.05), lr=1e-4,
                                  fused=True)  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    step_model = torch.compile(model) if compile else model
    images = torch.randn(batch, 3, 224, 224, device="cuda")
    targets = torch.zeros(batch, classes, device="cuda")
    targets[torch.arange(batch), torch.randint(0, classes, (batch,))] = 1

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(step_model, images, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(5 if not compile else 8):  # warm-up (and compilation)
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


def loader_images_per_s(workers: int, images: int) -> float:
    import tempfile

    from bench.loader import loader_rate, write_synthetic_shards

    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = write_synthetic_shards(Path(tmp) / "shards", images, 288)
        return loader_rate(folder, images * 2, 224, 0.2, 64, num_workers=workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-mae", type=int, default=256)
    parser.add_argument("--batch-wsp", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--loader-workers", type=int, default=8)
    parser.add_argument("--loader-images", type=int, default=2000)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("error: bench.gpu_throughput needs a CUDA GPU; none is visible", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name()
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in name), None)
    if peak is None:
        print(f"error: unknown peak FLOP/s for {name}: pass --peak-tflops", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    rows = []
    for kind, batch in (("wsp", args.batch_wsp), ("mae", args.batch_mae)):
        flops = training_flops(kind, args.classes, batch)
        for compiled in (False, True) if args.compile else (False,):
            rate = time_steps(kind, args.classes, batch, args.steps, compiled)
            torch.cuda.empty_cache()
            mfu = flops * rate / (peak * 1e12)
            rows.append({"task": kind, "batch": batch, "compile": compiled,
                         "images_per_s": round(rate, 1), "gflops_per_image": round(flops / 1e9, 2),
                         "mfu": round(mfu, 4)})  # fmt: skip
            print(rows[-1], flush=True)
    loader = loader_images_per_s(args.loader_workers, args.loader_images)
    print(f"\n{name}, peak {peak} TFLOP/s bf16; ViT-B/16 at 224")
    print(f"{'task':<5} {'batch':>5} {'compile':>7} {'images/s':>9} {'GFLOP/img':>9} {'MFU':>6}")
    for r in rows:
        print(f"{r['task']:<5} {r['batch']:>5} {r['compile']!s:>7} {r['images_per_s']:>9.1f} "
              f"{r['gflops_per_image']:>9.1f} {r['mfu']:>6.1%}")  # fmt: skip
    print(f"loader: {loader:.0f} images/s with {args.loader_workers} workers (288 -> 224 crop)")
    OUT.mkdir(exist_ok=True)
    result = {"device": name, "peak_tflops": peak, "rows": rows, "classes": args.classes,
              "loader_workers": args.loader_workers,
              "loader_images_per_s": round(loader, 1)}  # fmt: skip
    (OUT / "gpu_throughput.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
