"""`curate sql`: DuckDB SQL over every output of a dataset folder (and training runs).

Views (each exists only once its stage has run):

    metadata   DIR/metadata/*.parquet        uid, url, caption, source
    vocab      DIR/vocab/vocab.parquet       class_id, wnid, name, lemmas, count, kept_count, ...
    hashtags   DIR/vocab/hashtags.parquet    hashtag, count, canonical, wnid, reason
    labels     DIR/labels/*.parquet          uid, class_ids, hashtags, keep, weight, wnids
    shards     DIR/shards/*-*.parquet        one row per sample in the tars (split, shard, key, ...)
    downloads  DIR/shards/downloads.parquet  uid, url, status, error_message
    logs       RUN/log.jsonl of each --runs folder (or DIR/runs/*), with a `run` column

    curate sql --root data "SELECT name, kept_count FROM vocab ORDER BY kept_count DESC LIMIT 5"

The label files hold class ids only; the `labels` view adds `wnids` (same order as
class_ids) from vocab.parquet, whose class_id c is its row c, when the vocabulary exists.
Older label files that store a `wnids` column get the looked-up one too. A vocabulary whose
ids do not run 0..K-1, or a label naming a class id outside [0, K), makes a query that
reads `wnids` fail with one line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import UsageError
from curation.options import parse_options

FORMATS = ("table", "csv", "json")


def sql_literal(value: str | Path) -> str:
    """A DuckDB string literal: `it's` -> `'it''s'` (paths and globs included)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Sequence[str | Path]) -> str:
    """A DuckDB list of string literals, e.g. the files of `read_parquet([...])`."""
    return "[" + ", ".join(sql_literal(v) for v in values) + "]"


def dataset_views(root: str | Path) -> dict[str, str]:
    """View name -> DuckDB relation over the files that exist under `root`."""
    root = Path(root)
    candidates = {
        "metadata": sorted((root / "metadata").glob("part-*.parquet")),
        "vocab": sorted((root / "vocab").glob("vocab.parquet")),
        "hashtags": sorted((root / "vocab").glob("hashtags.parquet")),
        "labels": sorted((root / "labels").glob("part-*.parquet")),
        "shards": sorted((root / "shards").glob("*-[0-9][0-9][0-9][0-9][0-9][0-9].parquet")),
        "downloads": sorted((root / "shards").glob("downloads.parquet")),
    }
    views = {
        name: f"read_parquet({sql_list(paths)}, union_by_name=true)"
        for name, paths in candidates.items()
        if paths
    }
    if "labels" in views and "vocab" in views:
        views["labels"] = labels_with_wnids(views["labels"], views["vocab"])
    return views


def labels_with_wnids(labels: str, vocab: str) -> str:
    """`labels` (a relation) with `wnids` list<string> looked up in `vocab` by class_id.

    A list index, not a join: the class's wnid is element class_id + 1 of the vocabulary's
    wnids in class_id order, checked to be 0..K-1, and every class id of a row to be in
    [0, K) and not null (a list index past the end is null, a negative one counts from the
    end; labels and vocab of different build-vocab runs give both). Either check fails with
    `error()`, raised only when a query reads `wnids`. A stored `wnids` column (older label
    files) is replaced.
    """
    outside = "list_filter(l.class_ids, lambda c: c IS NULL OR c < 0 OR c >= w.k)"
    return f"""(
        SELECT l.*,
               CASE WHEN NOT w.dense
                    THEN error('vocab.parquet: class_id must run 0..K-1 without gaps')
                    WHEN len({outside}) > 0
                    THEN error(concat('labels: uid ', coalesce(l.uid, 'null'),
                                      ' names class_id ', coalesce({outside}[1]::VARCHAR, 'null'),
                                      ' but vocab.parquet has ', w.k,
                                      ' classes: run `curate build-vocab` again'))
                    ELSE list_transform(l.class_ids, lambda c: w.wnids[c + 1]) END
                   AS wnids
        FROM (SELECT COLUMNS(lambda c: c != 'wnids') FROM {labels}) AS l,
             (SELECT list(wnid ORDER BY class_id) AS wnids, count(*) AS k,
                     coalesce(min(class_id) = 0 AND max(class_id) = count(*) - 1
                              AND count(DISTINCT class_id) = count(*), false) AS dense
              FROM {vocab}) AS w
    )"""


def log_view(runs: Sequence[str | Path]) -> str | None:
    logs = [Path(r) / "log.jsonl" for r in runs if (Path(r) / "log.jsonl").exists()]
    if not logs:
        return None
    return (
        f"(SELECT regexp_extract(filename, '([^/]+)/log.jsonl$', 1) AS run, * EXCLUDE (filename) "
        f"FROM read_json({sql_list(logs)}, format='newline_delimited', filename=true, "
        "union_by_name=true))"
    )


def connect(root: str | Path, runs: Sequence[str | Path] = ()):
    """A DuckDB connection with every available view of `root` (and `runs`) defined."""
    import duckdb

    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"dataset folder not found: {root}")
    con = duckdb.connect()
    for name, relation in dataset_views(root).items():
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM {relation}")
    runs = list(runs) or sorted(p for p in (root / "runs").glob("*") if p.is_dir())
    logs = log_view(runs)
    if logs:
        con.execute(f"CREATE VIEW logs AS SELECT * FROM {logs}")
    return con


def view_names(con) -> list[str]:
    return [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")
            .fetchall()]  # fmt: skip


@dataclass(frozen=True)
class SqlOptions:
    """Run a DuckDB query over the dataset's views (see the module docstring)."""

    query: str = field(metadata={"positional": True, "help": 'SQL, e.g. "SELECT * FROM vocab"'})
    root: str = field(metadata={"help": "dataset folder"})
    runs: list[str] = field(default_factory=list, metadata={"help": "training run folders"})
    format: str = field(default="table", metadata={"choices": FORMATS})
    max_rows: int = field(default=50, metadata={"help": "rows shown by --format table"})


def main(argv: Sequence[str] | None = None) -> int:
    import duckdb

    opts = parse_options(SqlOptions, argv, prog="curate sql")
    con = connect(opts.root, opts.runs)
    try:
        rel = con.sql(opts.query)
        if rel is None:
            return 0
        # executed here, inside the try: an error at run time (a cast, the labels view's
        # vocabulary check) is a user error too
        rows = None
        if opts.format == "table":
            rel.show(max_rows=opts.max_rows, max_width=200)
        else:
            rows = rel.fetchall()
    except duckdb.Error as err:
        views = ", ".join(view_names(con)) or "none yet"
        raise UsageError(f"{str(err).splitlines()[0]} (views: {views})") from err
    if opts.format == "csv":
        import csv
        import sys

        writer = csv.writer(sys.stdout)
        writer.writerow(rel.columns)
        writer.writerows(rows)
    elif opts.format == "json":
        import json

        for row in rows:
            print(json.dumps(dict(zip(rel.columns, row, strict=True)), default=str))
    return 0
