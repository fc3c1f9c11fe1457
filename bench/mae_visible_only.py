"""Bench: MAE step time with the visible-only encoder vs feeding mask tokens through it.

    .venv/bin/python -m bench.mae_visible_only                       # ~1-2 min, 1 CPU thread
    .venv/bin/python -m bench.mae_visible_only --model vit_large_patch16 --batch-size 4

Same model, same process, same batch: `train.mae.MaskedAutoencoder` (the encoder sees the 25%
visible patches) against the variant the MAE paper compares with, where masked patches are
replaced by a learnt mask token *in the encoder* and all L tokens go through every encoder
block (the decoder then needs no mask tokens of its own). Time = forward + backward, mean
of `--steps` steps after one warm-up. The MAE paper reports 2.8x (ViT-L, 128 TPU cores);
the ratio grows with encoder size, since the decoder's cost is the same in both.
Writes bench/out/mae_visible_only.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


def full_sequence_loss(mae: Any, mask_token: Any, imgs: Any, mask_ratio: float) -> Any:
    """The baseline: mask tokens go through the encoder. imgs [N, 3, H, W] -> scalar loss."""
    import torch

    enc = mae.encoder
    x = enc.patch_embed(imgs)  # [N, L, D]
    _, mask, _ = mae.random_masking(x, mask_ratio)  # mask [N, L], 1 = removed
    x = torch.where(mask.bool().unsqueeze(-1), mask_token.to(x.dtype), x) + enc.pos_embed[:, 1:]
    cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
    x = enc.norm(enc.blocks(enc.norm_pre(torch.cat([cls, x], dim=1))))  # [N, 1 + L, D]
    dec = mae.decoder
    y = dec.embed(x) + dec.pos_embed  # every position is already present: no mask tokens
    for block in dec.blocks:
        y = block(y)
    pred = dec.pred(dec.norm(y))[:, 1:]
    return mae.loss(imgs, pred, mask)


def mean_step_seconds(loss_fn: Any, params: list[Any], steps: int) -> float:
    loss_fn().backward()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        for p in params:
            p.grad = None
        loss_fn().backward()
    return (time.perf_counter() - started) / steps


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from train.mae import MaskedAutoencoder
    from train.models import create_encoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vit_base_patch16")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mae = MaskedAutoencoder(create_encoder(args.model, args.image_size))
    mask_token = torch.nn.Parameter(torch.zeros(1, 1, mae.encoder.embed_dim))
    imgs = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    params = [*mae.parameters(), mask_token]
    visible = mean_step_seconds(lambda: mae(imgs, 0.75)[0], params, args.steps)
    full = mean_step_seconds(lambda: full_sequence_loss(mae, mask_token, imgs, 0.75), params,
                             args.steps)  # fmt: skip
    result = {**vars(args), "visible_only_s": round(visible, 4),
              "mask_tokens_in_encoder_s": round(full, 4),
              "speedup": round(full / visible, 3)}  # fmt: skip
    print(f"{args.model} at {args.image_size}px, batch {args.batch_size}, "
          f"{args.threads} thread(s), fwd+bwd per step")  # fmt: skip
    print(f"{'encoder input':<28} {'seconds':>8}")
    print(f"{'mask tokens (all L tokens)':<28} {full:>8.3f}")
    print(f"{'visible only (L/4 tokens)':<28} {visible:>8.3f}")
    print(f"speedup {result['speedup']:.2f}x (MAE paper: 2.8x for ViT-L)")
    OUT.mkdir(exist_ok=True)
    (OUT / "mae_visible_only.json").write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
