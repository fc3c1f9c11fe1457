"""`train export RUN`: a checkpoint as a timm model folder, loadable and uploadable as is.

    train export runs/wsp-base --out exported/wsp-base
    model = timm.create_model("local-dir:exported/wsp-base", pretrained=True)

Writes `OUT/` (staged, then renamed into place):

    model.safetensors   the encoder's timm keys (+ `head.*` for WSP; MAE's `decoder.*`
                        dropped), or the EMA weights with `--ema`
    config.json         timm's hub format: `architecture` (a registered timm ViT whose
                        arguments `model_args` override: img_size, patch_size, embed_dim,
                        depth, num_heads, mlp_ratio, num_classes, global_pool), `num_classes`,
                        `num_features`, `label_names` (the head's class wnids in
                        order, WSP: from the checkpoint, or from its training shards
                        for checkpoints older than that), and
                        `pretrained_cfg` (input size, mean/std, crop, interpolation)
    README.md           what the weights are and how they were trained (a model card)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.options import parse_options

# any registered timm ViT: its defaults are all overridden by model_args
TIMM_ARCHITECTURE = "vit_base_patch16_224"


@dataclass(frozen=True)
class ExportOptions:
    """Write a checkpoint as a folder `timm.create_model("local-dir:OUT")` loads."""

    run: str = field(metadata={"positional": True, "help": "run folder or checkpoint file"})
    out: str | None = field(default=None, metadata={"help": "default: RUN/export"})
    ema: bool = field(default=False, metadata={"help": "export the EMA weights (WSP --ema)"})
    overwrite: bool = False


def timm_config(info: Any, class_wnids: list[str] | None) -> dict[str, Any]:
    from shards.loader import IMAGE_MEAN, IMAGE_STD
    from train.models import parse_name

    shape, patch = parse_name(info.model)
    size = info.image_size
    config: dict[str, Any] = {
        "architecture": TIMM_ARCHITECTURE,
        "num_classes": info.num_classes,
        "num_features": shape.embed_dim,
        "global_pool": "token",
        "model_args": {
            "img_size": size,
            "patch_size": patch,
            "embed_dim": shape.embed_dim,
            "depth": shape.depth,
            "num_heads": shape.num_heads,
            "mlp_ratio": shape.mlp_ratio,
            "num_classes": info.num_classes,
            "global_pool": "token",
        },
        "pretrained_cfg": {
            "input_size": [3, size, size],
            "fixed_input_size": True,
            "interpolation": "bicubic",
            "crop_pct": 224 / 256,
            "crop_mode": "center",
            "mean": list(IMAGE_MEAN),
            "std": list(IMAGE_STD),
            "num_classes": info.num_classes,
            "pool_size": None,
            "first_conv": "patch_embed.proj",
            "classifier": "head",
        },
        "mawskit": {"kind": info.kind, "model": info.model, "vocab_hash": info.vocab_hash},
    }
    if class_wnids:
        config["label_names"] = class_wnids
    return config


def model_card(info: Any, ema: bool) -> str:
    cfg = info.config
    what = "MAE pre-pretrained encoder" if info.kind == "mae" else "WSP-pretrained ViT"
    return (
        f"# {info.model} ({what})\n\n"
        f"Trained with mawskit (`train {info.kind}`), {cfg.get('steps_total', '?')} steps at "
        f"batch {cfg.get('batch_size', '?')}, {info.image_size} px"
        f"{', EMA weights' if ema else ''}.\n\n"
        "```python\nimport timm\nmodel = timm.create_model('local-dir:THIS_FOLDER', "
        "pretrained=True)\n```\n\n"
        f"Classes: {info.num_classes} WordNet noun synsets (`label_names` in config.json), "
        f"vocabulary hash `{info.vocab_hash}`.\n"
    )


def export(opts: ExportOptions) -> Path:
    from safetensors.torch import save_file

    from curation.layout import staged_dir
    from train.checkpoint import (
        NON_ENCODER_PREFIXES,
        head_classes,
        read_info,
        read_state,
        resolve_checkpoint,
    )

    info = read_info(resolve_checkpoint(opts.run))
    out = Path(opts.out) if opts.out else info.path.parent / "export"
    if out.exists() and not opts.overwrite:
        raise UsageError(f"{out} exists: pass --overwrite or another --out")
    weights = read_state(info.path)
    if opts.ema:
        from train.state import load_state

        ema = load_state(info.path).get("ema")
        if not ema:
            raise UsageError(f"{info.path} has no EMA weights: train with --ema to get them")
        weights = ema
    drop = ("decoder.",) if info.kind == "wsp" else NON_ENCODER_PREFIXES
    weights = {k: v.contiguous() for k, v in weights.items() if not k.startswith(drop)}
    wnids = head_classes(info)
    with staged_dir(out) as tmp:
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(timm_config(info, wnids), indent=2))
        (tmp / "README.md").write_text(model_card(info, opts.ema))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(ExportOptions, argv, prog="train export")
    out = export(opts)
    print(f"wrote {out}: timm.create_model('local-dir:{out}', pretrained=True)")
    return 0
