"""Bench: ViT-B/16 MAE and WSP training throughput and MFU on one GPU, plus the loader.

    python -m bench.gpu_throughput                 # every variant compiles afresh: minutes
    python -m bench.gpu_throughput --modes off --steps 10    # quicker look, no compile
    python -m bench.gpu_throughput --tasks wsp --modes default --profile
    python -m bench.gpu_throughput --tasks wsp --modes default --patch-embeds matmul \
        --speedups none,bf16-residual,split-qkv,both --batch-wsp 256,512

For each of MAE (mask 0.75, decoder 8 x 512) and WSP (head over `--classes` classes) at
224 px, bf16 autocast, fused AdamW, the trainer's step (loss, backward, clip, optimizer
step), with compile off (`off`) and each torch.compile mode in `--modes` (`--compile` in the
trainer is `default`), and with train.models' matmul patch embedding and timm's convolution
(`--patch-embeds`), with and without train.fast_vit's options (`--speedups`: the trainer's
`--bf16-residual`, `--split-qkv`, or both), under each attention backend in `--sdpa`, at each
batch size in `--batch-wsp` / `--batch-mae`: images/s over `--steps` timed steps after
warm-up, and model FLOPs utilisation. One H100 (torch 2.11): WSP batch 256, compile default,
36.1% MFU plain, 38.7% bf16-residual, 36.3% split-qkv, 39.0% both (39.3% with CUDA graphs,
`--modes reduce-overhead`), 40.6% both at batch 512. (`max-autotune` modes spend minutes
autotuning; on an H100 cuBLAS beat every Triton matmul template at ViT-B's shapes, and CUDA
graphs gained 1%.)

    MFU = (training FLOPs per image, counted by torch.utils.flop_counter on one fwd+bwd)
          x images/s / peak bf16 FLOP/s of the GPU (`--peak-tflops`; default by name:
          H100/H200 SXM 989 dense)

The model FLOPs count only the useful matmuls (no recompute). Data comes from GPU memory
(random tensors) so the model is measured alone; the loader is measured separately on the
same machine: `make_loader` over synthetic JPEG shards (288 px stored, 224 crop) with
`--loader-workers` workers, images/s. The baseline in the same run is the compile-off step.
`--profile` traces `--profile-steps` steps of the fastest WSP variant with torch.profiler and
prints where the GPU time goes (matmuls, attention, normalisation/elementwise, optimizer,
other) and the 15 costliest kernels, so a missed MFU target says what to attack next.
Needs CUDA: without a GPU it says so and exits 2. Writes bench/out/gpu_throughput.json.
"""

from __future__ import annotations

import argparse
import itertools
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


def use_conv_patch_embed(model: Any) -> None:
    """Back to timm's convolutional patch embedding (the baseline for train.models'
    matmul one): same weights, `PatchEmbed.forward` instead of the matmul."""
    import types

    from timm.layers import PatchEmbed

    for module in model.modules():
        if isinstance(module, PatchEmbed):
            module.forward = types.MethodType(PatchEmbed.forward, module)


SPEEDUPS = {  # --speedups name -> train.fast_vit.apply_speedups options
    "none": {},
    "bf16-residual": {"bf16_residual": True},
    "split-qkv": {"split_qkv": True},
    "both": {"bf16_residual": True, "split_qkv": True},
}
SDPA = {  # --sdpa name -> torch.nn.attention.SDPBackend names (auto: torch's own order)
    "auto": (),
    "cudnn": ("CUDNN_ATTENTION",),
    "flash": ("FLASH_ATTENTION",),
    "efficient": ("EFFICIENT_ATTENTION",),
}


def make_step(kind: str, classes: int, batch: int, variant: dict[str, str]) -> Any:
    """The training step as a no-argument callable (model, optimizer and batch inside).

    variant: mode (compile mode or off), patch_embed, speedups, sdpa (see the flags)."""
    import contextlib

    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from train.fast_vit import apply_speedups
    from train.optim import param_groups

    torch._dynamo.reset()  # each variant compiles afresh (no cache entry shared)
    torch.manual_seed(0)
    mode = variant["mode"]
    model, loss_fn = build(kind, classes)
    if variant["patch_embed"] == "conv":
        use_conv_patch_embed(model)
    apply_speedups(model, **SPEEDUPS[variant["speedups"]])
    backends = [getattr(SDPBackend, b) for b in SDPA[variant["sdpa"]]]
    optimizer = torch.optim.AdamW(param_groups(model.named_parameters(), 0.05), lr=1e-4,
                                  fused=True)  # fmt: skip
    params = [p for p in model.parameters() if p.requires_grad]
    step_model = model if mode == "off" else torch.compile(model, mode=mode)
    images = torch.randn(batch, 3, 224, 224, device="cuda")
    targets = torch.zeros(batch, classes, device="cuda")
    targets[torch.arange(batch), torch.randint(0, classes, (batch,))] = 1

    def step() -> None:
        attention = sdpa_kernel(backends) if backends else contextlib.nullcontext()
        with attention, torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(step_model, images, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def time_steps(step: Any, batch: int, steps: int, warmup: int) -> float:
    """Images/s of the training step (after warm-up), synchronised only at the ends."""
    import torch

    for _ in range(warmup):  # warm-up (and compilation, autotuning)
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - started)


CATEGORIES = (  # kernel-name fragments -> where the time goes (first match wins)
    ("attention", ("flash", "fmha", "attention", "sdpa", "compute_dot_do_o")),
    ("matmul", ("gemm", "nvjet", "sm90_xmma", "cutlass", "cublas", "triton_tem", "mm_")),
    ("optimizer", ("adam", "multi_tensor", "foreach", "norm_kernel_cuda", "l2norm")),
    ("convolution", ("conv2d", "convolution", "implicit_convolve", "wgrad", "dgrad")),
    ("fused elementwise/norm", ("triton_", "layer_norm", "elementwise", "reduce", "softmax",
                                "gelu", "copy", "cat", "fill")),
)  # fmt: skip


def profile_step(step: Any, steps: int) -> dict[str, Any]:
    """GPU time per step by category and the costliest kernels, from torch.profiler."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    kernels: dict[str, float] = {}
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            kernels[event.name] = kernels.get(event.name, 0.0) + event.device_time / 1000 / steps
    by_category: dict[str, float] = {}
    for name, ms in kernels.items():
        low = name.lower()
        cat = next((c for c, keys in CATEGORIES if any(k in low for k in keys)), "other")
        by_category[cat] = by_category.get(cat, 0.0) + ms
    top = sorted(kernels.items(), key=lambda kv: -kv[1])[:15]
    return {"gpu_ms_per_step": round(sum(kernels.values()), 2),
            "by_category_ms": {k: round(v, 2) for k, v in sorted(by_category.items())},
            "top_kernels_ms": [[name[:120], round(ms, 3)] for name, ms in top]}  # fmt: skip


def loader_images_per_s(workers: int, images: int) -> float:
    import tempfile

    from bench.loader import loader_rate, write_synthetic_shards

    with tempfile.TemporaryDirectory() as tmp:
        folder, _ = write_synthetic_shards(Path(tmp) / "shards", images, 288)
        return loader_rate(folder, images * 2, 224, 0.2, 64, num_workers=workers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-mae", default="256", help="comma list of batch sizes")
    parser.add_argument("--batch-wsp", default="256", help="comma list of batch sizes")
    parser.add_argument("--classes", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tasks", default="wsp,mae", help="comma list of wsp, mae")
    parser.add_argument("--modes", default="off,default",
                        help="comma list: off (eager) and torch.compile modes")  # fmt: skip
    parser.add_argument("--patch-embeds", default="matmul,conv",
                        help="comma list: matmul (train.models) and/or conv (timm's)")  # fmt: skip
    parser.add_argument("--speedups", default="none,both",
                        help=f"comma list of fast_vit sets: {', '.join(SPEEDUPS)}")  # fmt: skip
    parser.add_argument("--sdpa", default="auto",
                        help=f"comma list of attention backends: {', '.join(SDPA)}")  # fmt: skip
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-steps", type=int, default=5)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--loader-workers", type=int, default=8)
    parser.add_argument("--loader-images", type=int, default=2000)
    args = parser.parse_args(argv)
    choices = (("--speedups", args.speedups, SPEEDUPS), ("--sdpa", args.sdpa, SDPA))
    for flag, value, known in choices:
        unknown = sorted(set(value.split(",")) - set(known))
        if unknown:
            parser.error(f"{flag}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
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
    rows, profiled = [], {}
    batches = {"wsp": args.batch_wsp, "mae": args.batch_mae}
    axes = {"mode": args.modes, "patch_embed": args.patch_embeds, "speedups": args.speedups,
            "sdpa": args.sdpa}  # fmt: skip
    for kind in args.tasks.split(","):
        flops = training_flops(kind, args.classes, 8)  # per image: the same at any batch
        for batch in map(int, batches[kind].split(",")):
            best: tuple[float, Any] = (0.0, None)
            for values in itertools.product(*(v.split(",") for v in axes.values())):
                variant = dict(zip(axes, values, strict=True))
                started = time.perf_counter()
                step = make_step(kind, args.classes, batch, variant)
                rate = time_steps(step, batch, args.steps, 5 if variant["mode"] == "off" else 8)
                mfu = flops * rate / (peak * 1e12)
                seconds = round(time.perf_counter() - started, 1)
                rows.append({"task": kind, "batch": batch, **variant,
                             "images_per_s": round(rate, 1),
                             "gflops_per_image": round(flops / 1e9, 2), "mfu": round(mfu, 4),
                             "seconds_with_compile": seconds})  # fmt: skip
                print(rows[-1], flush=True)
                if args.profile and kind == "wsp" and rate > best[0]:
                    best = (rate, step)
                del step
                torch.cuda.empty_cache()
            if best[1] is not None:  # the fastest variant at this batch size
                profiled[f"{kind} batch {batch}"] = profile_step(best[1], args.profile_steps)
                print(json.dumps(profiled[f"{kind} batch {batch}"], indent=1), flush=True)
                torch.cuda.empty_cache()
    loader = 0.0
    if args.loader_workers > 0:  # 0: skip the loader
        loader = loader_images_per_s(args.loader_workers, args.loader_images)
    print(f"\n{name}, peak {peak} TFLOP/s bf16; ViT-B/16 at 224")
    print(f"{'task':<5} {'batch':>5} {'mode':>26} {'patches':>7} {'speedups':>13} {'sdpa':>9} "
          f"{'images/s':>9} {'GFLOP/img':>9} {'MFU':>6}")  # fmt: skip
    for r in rows:
        print(f"{r['task']:<5} {r['batch']:>5} {r['mode']:>26} {r['patch_embed']:>7} "
              f"{r['speedups']:>13} {r['sdpa']:>9} {r['images_per_s']:>9.1f} "
              f"{r['gflops_per_image']:>9.1f} {r['mfu']:>6.1%}")  # fmt: skip
    print(f"loader: {loader:.0f} images/s with {args.loader_workers} workers (288 -> 224 crop)")
    OUT.mkdir(exist_ok=True)
    result = {"device": name, "peak_tflops": peak, "rows": rows, "classes": args.classes,
              "loader_workers": args.loader_workers, "profiles": profiled,
              "loader_images_per_s": round(loader, 1)}  # fmt: skip
    (OUT / "gpu_throughput.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
