"""`train`: MAE pre-pretraining, WSP and evaluation. Each subcommand is `main(argv) -> int`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from curation.cli import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "mae": ("train.run_mae", "MAE pre-pretraining of a ViT encoder on shards (no labels)"),
    "wsp": ("train.run_wsp", "weakly supervised multi-label pretraining from hashtag labels"),
    "eval": ("train.evaluate", "top-k, mAP, linear probe, kNN and WordNet zero-shot scores"),
    "export": ("train.export", "a checkpoint as a folder timm.create_model('local-dir:DIR') loads"),
}


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("train", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
