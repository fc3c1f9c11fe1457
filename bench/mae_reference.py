"""Bench: our MAE forward+backward vs the reference facebookresearch/mae `models_mae.py`.

    .venv/bin/python -m bench.mae_reference --reference /path/to/mae/models_mae.py

The reference is read from a local copy that is not committed (no network at bench time);
without `--reference` (or when the file is absent) the bench says so and exits 0 having
measured nothing. Two shims let the 2021 file run on today's timm, without editing it:
`util.pos_embed.get_2d_sincos_pos_embed` (from our `train.mae.sincos_pos_embed`, as numpy)
and timm's `Block`, which no longer takes `qk_scale`.

Same config (default ViT-B/16 at 224, decoder 8 x 512 x 16 heads, norm-pix), our weights
copied into the reference, and identical masks (both draw `torch.rand(N, L)` for the
masking noise: the RNG is re-seeded before each forward). Reports |loss difference| (target:
identical up to float rounding) and time ratio ours / reference (target <= 1.05), the median
of `--steps` fwd+bwd steps after a warm-up, interleaved ABBA. Writes bench/out/mae_reference.json.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"

# our key prefix -> the reference's
DECODER_KEYS = {
    "decoder.embed.": "decoder_embed.", "decoder.mask_token": "mask_token",
    "decoder.pos_embed": "decoder_pos_embed", "decoder.blocks.": "decoder_blocks.",
    "decoder.norm.": "decoder_norm.", "decoder.pred.": "decoder_pred.",
}  # fmt: skip


def load_reference(path: Path) -> Any:
    """Import models_mae.py with the two shims above in place."""
    import numpy as np
    from timm.models.vision_transformer import Block

    from train.mae import sincos_pos_embed

    def get_2d_sincos_pos_embed(embed_dim: int, grid_size: int, cls_token: bool = False):
        return sincos_pos_embed(embed_dim, grid_size, cls_token).double().numpy().astype(np.float64)

    util = types.ModuleType("util")
    pos = types.ModuleType("util.pos_embed")
    pos.get_2d_sincos_pos_embed = get_2d_sincos_pos_embed
    util.pos_embed = pos
    sys.modules.setdefault("util", util)
    sys.modules["util.pos_embed"] = pos
    spec = importlib.util.spec_from_file_location("models_mae_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    def block(*args: Any, qk_scale: Any = None, **kwargs: Any) -> Any:
        return Block(*args, **kwargs)

    module.Block = block
    return module


def reference_key(ours: str) -> str:
    for prefix, theirs in DECODER_KEYS.items():
        if ours.startswith(prefix):
            return theirs + ours[len(prefix) :]
    return ours  # encoder keys are timm's in both


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", type=Path, default=None, help="path to models_mae.py")
    parser.add_argument("--model", default="vit_base_patch16")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.reference is None or not args.reference.is_file():
        print("skipped: pass --reference PATH to a local copy of facebookresearch/mae "
              f"models_mae.py (got {args.reference}); nothing measured")  # fmt: skip
        return 0
    import torch

    from train.mae import MaskedAutoencoder
    from train.models import create_encoder, parse_name

    torch.set_num_threads(args.threads)
    shape, patch = parse_name(args.model)
    torch.manual_seed(0)
    ours = MaskedAutoencoder(create_encoder(args.model, args.image_size))
    reference = load_reference(args.reference).MaskedAutoencoderViT(
        img_size=args.image_size, patch_size=patch, embed_dim=shape.embed_dim,
        depth=shape.depth, num_heads=shape.num_heads, decoder_embed_dim=512, decoder_depth=8,
        decoder_num_heads=16, mlp_ratio=shape.mlp_ratio, norm_pix_loss=True,
        norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6),  # as its factories do
    )  # fmt: skip
    state = {reference_key(k): v for k, v in ours.checkpoint_state().items()}
    missing = reference.load_state_dict(state, strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys
    imgs = torch.randn(args.batch_size, 3, args.image_size, args.image_size)

    def step(model: Any) -> float:
        torch.manual_seed(1)  # identical masking noise for both models
        for p in model.parameters():
            p.grad = None
        loss = model(imgs, mask_ratio=0.75)[0]
        loss.backward()
        return float(loss.detach())

    losses = {"ours": step(ours), "reference": step(reference)}  # warm-up, and the check
    samples: dict[str, list[float]] = {"ours": [], "reference": []}
    pair = (("ours", ours), ("reference", reference))
    for i in range(args.steps):  # interleaved ABBA, so drift in machine load hits both
        for name, model in pair if i % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            step(model)
            samples[name].append(time.perf_counter() - started)
    times = {name: statistics.median(values) for name, values in samples.items()}
    ratio = times["ours"] / times["reference"]
    result = {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "loss_ours": losses["ours"], "loss_reference": losses["reference"],
              "loss_abs_diff": abs(losses["ours"] - losses["reference"]),
              "seconds_ours": round(times["ours"], 4),
              "seconds_reference": round(times["reference"], 4),
              "ratio": round(ratio, 3)}  # fmt: skip
    print(f"{args.model} at {args.image_size}px, batch {args.batch_size}, fwd+bwd per step")
    print(f"{'implementation':<16} {'loss':>10} {'seconds':>8}")
    for name in ("reference", "ours"):
        print(f"{name:<16} {losses[name]:>10.6f} {times[name]:>8.3f}")
    print(f"ratio ours/reference {ratio:.3f} (target <= 1.05); "
          f"|loss diff| {result['loss_abs_diff']:.2e}")  # fmt: skip
    OUT.mkdir(exist_ok=True)
    (OUT / "mae_reference.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
