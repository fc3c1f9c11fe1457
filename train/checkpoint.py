"""`RUN/checkpoint-NNNNNN.safetensors`: model weights plus what is needed to rebuild the model.

Tensors: the timm encoder's keys (`cls_token`, `pos_embed`, `patch_embed.*`, `blocks.*`,
`norm.*`), then `head.*` for WSP or `decoder.*` for MAE. Metadata (all strings, as
safetensors requires):

    kind        "mae" | "wsp"
    model       encoder name, e.g. "vit_tiny_patch16" (see train.models)
    image_size  training resolution in pixels
    num_classes "0" for MAE
    vocab_hash  the shards' vocabulary fingerprint (WSP; MAE records it too when known)
    class_wnids WSP: JSON list of the head's class wnids, in head (class_id) order, so that
                eval and export need no shards to name the classes; absent in MAE
                checkpoints and in WSP checkpoints written before it existed (readers then
                fall back to the training shards' manifest)
    config      the command's resolved options as JSON

Files are written under a temporary name and renamed, so a checkpoint that exists is whole.
`load_encoder` copies an encoder out of any checkpoint with a strict key check;
`head_classes` names a WSP head's classes (from the file, or an older file's shards).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.errors import UsageError

KINDS = ("mae", "wsp")
NON_ENCODER_PREFIXES = ("decoder.", "head.")


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    kind: str
    model: str
    image_size: int
    num_classes: int
    vocab_hash: str
    config: dict[str, Any]
    class_wnids: tuple[str, ...] | None = None  # None: MAE, or a WSP file that predates it


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step:06d}.safetensors"


def save_checkpoint(
    path: Path,
    state: dict[str, Any],
    *,
    kind: str,
    model: str,
    image_size: int,
    num_classes: int,
    config: Any,
    vocab_hash: str = "",
    class_wnids: Sequence[str] | None = None,
) -> None:
    """Write `state` (name -> tensor) and the metadata above to `path`, atomically.

    `class_wnids`: the head's classes in head order (WSP: exactly `num_classes` of them).
    """
    from safetensors.torch import save_file

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if class_wnids is not None and len(class_wnids) != num_classes:
        raise ValueError(f"{len(class_wnids)} class wnids for a head of {num_classes} classes")
    metadata = {
        "kind": kind,
        "model": model,
        "image_size": str(image_size),
        "num_classes": str(num_classes),
        "vocab_hash": vocab_hash,
        "config": json.dumps(asdict(config) if hasattr(config, "__dataclass_fields__") else config),
    }
    if class_wnids is not None:
        metadata["class_wnids"] = json.dumps(list(class_wnids))
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def read_info(path: str | Path) -> CheckpointInfo:
    """The metadata of a mawskit checkpoint; UsageError when missing or not ours."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no checkpoint at {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for foreign files
        raise UsageError(f"{path} is not a safetensors checkpoint ({err})") from err
    if meta.get("kind") not in KINDS or "model" not in meta:
        raise UsageError(f"{path} has no mawskit metadata (kind, model): not a `train` output")
    num_classes = int(meta.get("num_classes", "0"))
    class_wnids = None
    if "class_wnids" in meta:
        class_wnids = tuple(json.loads(meta["class_wnids"]))
        if len(class_wnids) != num_classes:
            raise UsageError(
                f"{path}: its metadata names {len(class_wnids)} classes for a head of "
                f"{num_classes}: the file is damaged"
            )
    return CheckpointInfo(
        path=path,
        kind=meta["kind"],
        model=meta["model"],
        image_size=int(meta["image_size"]),
        num_classes=num_classes,
        vocab_hash=meta.get("vocab_hash", ""),
        config=json.loads(meta.get("config", "{}")),
        class_wnids=class_wnids,
    )


def head_classes(info: CheckpointInfo, manifest: Any = None) -> list[str] | None:
    """The class wnids of a WSP head in head order, or None (MAE, or they cannot be known).

    The checkpoint's own `class_wnids` when it has them; for a file written before they
    were stored, the manifest's classes: `manifest` if given, else the shards the checkpoint
    was trained on (its config's `shards`), when still there with the same vocab hash.
    """
    from shards.manifest import read_manifest

    if info.kind != "wsp":
        return None
    if info.class_wnids is not None:
        return list(info.class_wnids)
    if manifest is None and info.config.get("shards"):
        try:
            manifest = read_manifest(info.config["shards"])
        except UsageError:
            return None
    if manifest is None or manifest.vocab_hash != info.vocab_hash:
        return None
    return [c["wnid"] for c in sorted(manifest.classes, key=lambda c: int(c["class_id"]))]


def read_state(path: str | Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(path))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = sorted(run_dir.glob("checkpoint-*.safetensors"))
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest one in a run folder."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise UsageError(f"no checkpoint-*.safetensors in {path}")
        return found
    return path


def load_encoder(encoder: Any, path: str | Path) -> list[str]:
    """Copy the encoder weights of checkpoint `path` into timm `encoder`; strict on keys.

    Every encoder key (head excluded) must be in the file with the same shape, except
    `pos_embed`, which is resampled (bicubic, cls slot kept) when the grid differs. Keys other
    than encoder, `decoder.*` and `head.*` are refused. Returns the keys left at their
    initial values (the head's).
    """
    from timm.layers import resample_abs_pos_embed

    state = read_state(path)
    own = encoder.state_dict()
    wanted = {k for k in own if not k.startswith("head.")}
    present = {k for k in state if not k.startswith(NON_ENCODER_PREFIXES)}
    missing, unexpected = sorted(wanted - present), sorted(present - wanted)
    if missing or unexpected:
        raise UsageError(
            f"{path} does not match the encoder: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]} (is --model the checkpoint's model?)"
        )
    weights = {k: state[k] for k in wanted}
    if weights["pos_embed"].shape != own["pos_embed"].shape:
        grid = encoder.patch_embed.grid_size
        weights["pos_embed"] = resample_abs_pos_embed(
            weights["pos_embed"], new_size=list(grid), num_prefix_tokens=1
        )
    wrong = [k for k in wanted if weights[k].shape != own[k].shape]
    if wrong:
        raise UsageError(
            f"{path}: shapes differ for {wrong[:5]} (a different model size or patch size?)"
        )
    result = encoder.load_state_dict(weights, strict=False)
    assert not result.unexpected_keys  # filtered to `wanted` above
    return sorted(result.missing_keys)
