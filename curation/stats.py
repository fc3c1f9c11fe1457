"""`curate stats`: where every sample went, stage by stage, as tables.

Reads each stage's `meta.json` counts and queries the DuckDB views of `curation.sql`:
classes by size, hashtag outcomes by reason, samples per split and download outcomes.
`--json FILE` also writes the same numbers as one JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.layout import DatasetRoot, write_json_atomic
from curation.options import parse_options
from curation.sql import connect, view_names

STAGES = ("metadata", "vocab", "labels", "shards")

# view -> (title, query); a query runs only when its view exists.
TABLES: dict[str, tuple[str, str]] = {
    "vocab": (
        "largest classes",
        "SELECT class_id, wnid, name, count, kept_count FROM vocab ORDER BY class_id LIMIT {top}",
    ),
    "hashtags": (
        "hashtag outcomes",
        "SELECT coalesce(reason, 'label') AS outcome, count(*) AS tags, sum(count) AS uses, "
        "arg_max(hashtag, count) AS most_used FROM hashtags GROUP BY ALL ORDER BY uses DESC",
    ),
    "labels": (
        "labels per sample",
        "SELECT keep, count(*) AS samples, round(avg(len(class_ids)), 3) AS labels_per_sample, "
        "round(avg(weight), 3) AS mean_weight FROM labels GROUP BY ALL ORDER BY keep DESC",
    ),
    "shards": (
        "shards",
        "SELECT split, count(DISTINCT shard) AS shards, count(*) AS samples, "
        "sum(image_bytes) AS image_bytes FROM shards GROUP BY ALL ORDER BY split",
    ),
    "downloads": (
        "downloads",
        "SELECT status, count(*) AS samples, any_value(error_message) AS example "
        "FROM downloads GROUP BY ALL ORDER BY samples DESC",
    ),
}


def collect_stats(root: str | Path, top: int = 20) -> dict[str, Any]:
    """Counts from every stage's meta.json plus the summary tables, as plain data."""
    dataset = DatasetRoot(root)
    stages = {}
    for stage in STAGES:
        meta = Path(getattr(dataset, stage)) / "meta.json"
        if meta.exists():
            stages[stage] = json.loads(meta.read_text()).get("counts", {})
    con = connect(root)
    present = set(view_names(con))
    tables = {}
    for view, (title, query) in TABLES.items():
        if view in present:
            rel = con.sql(query.format(top=top))
            tables[title] = {"columns": rel.columns, "rows": rel.fetchall()}
    return {"stages": stages, "tables": tables}


def _print_table(title: str, columns: list[str], rows: list[tuple]) -> None:
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    print(f"\n{title}")
    for n, row in enumerate(cells):
        print("  " + "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


@dataclass(frozen=True)
class StatsOptions:
    """Print the counts of every stage of a dataset folder."""

    root: str = field(metadata={"help": "dataset folder"})
    top: int = field(default=20, metadata={"help": "classes listed"})
    json: str | None = field(default=None, metadata={"help": "also write the stats here"})


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(StatsOptions, argv, prog="curate stats")
    stats = collect_stats(opts.root, opts.top)
    for stage, counts in stats["stages"].items():
        flat = {k: v for k, v in counts.items() if not isinstance(v, (dict, list))}
        _print_table(f"{stage} (meta.json)", ["count", "value"], list(flat.items()))
    for title, table in stats["tables"].items():
        _print_table(title, table["columns"], table["rows"])
    if opts.json:
        write_json_atomic(Path(opts.json), stats)
    return 0
