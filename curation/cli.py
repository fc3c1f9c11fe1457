"""`curate`: the data side of mawskit. Each subcommand is `main(argv) -> int` in its module.

The registry maps names to modules; a module is imported only when its command runs, so
`curate --help` stays instant (no torch, duckdb or spacy import).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from curation.errors import EXIT_USAGE, run_main

# name -> (module with main(argv), one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("curation.ingest", "(url, caption) tables or image folders -> metadata parquet"),
    "build-vocab": ("labeling.build_vocab", "hashtags -> WordNet classes, vocab and labels"),
    "shard": ("shards.build", "download or read the labeled images -> webdataset shards"),
    "verify": ("shards.verify", "re-read every shard: counts, sha256, images, labels"),
    "stats": ("curation.stats", "counts of every stage, as tables"),
    "sql": ("curation.sql", "DuckDB SQL over every output (views: metadata, vocab, ...)"),
}


def dispatch(prog: str, commands: dict[str, tuple[str, str]], argv: Sequence[str] | None) -> int:
    """Run `commands[argv[0]]`'s `main(argv[1:])`, or print the command list."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(f"usage: {prog} COMMAND [options]   ({prog} COMMAND --help for its options)\n")
        for name, (_, summary) in commands.items():
            print(f"  {name:<12} {summary}")
        return 0 if args else EXIT_USAGE
    name, rest = args[0], args[1:]
    if name not in commands:
        print(f"error: {prog}: unknown command {name!r}; one of: {', '.join(commands)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    module = importlib.import_module(commands[name][0])
    return run_main(module.main, rest)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch("curate", COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
