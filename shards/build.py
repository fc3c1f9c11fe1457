"""`curate shard`: labeled, kept samples -> images -> `DIR/shards/` webdataset shards.

Reads `DIR/labels/*.parquet` (keep = true only: labels before pixels, so only images that
carry a vocabulary label are ever downloaded), joins `DIR/metadata/*.parquet` on uid for url
and caption, and `DIR/vocab/vocab.parquet` for the manifest's classes and `vocab_hash`.

Images come from two sources, both producing a fetched table (see `shards.crawl`):
http(s) urls are crawled with img2dataset into `DIR/crawl/http/` (resumable: a rerun crawls
only what failed or was never attempted), `file://` urls (and `file://...tar#member` tar
members) are read, hashed and checked from disk into `DIR/crawl/local/` unless
`--no-file-urls` (`shards.local`); any other scheme is recorded as `unsupported_url`.
A local image that is stored unchanged is staged as a file reference (`shards.fileref`:
path, offset, size, file size and mtime), not as bytes: the shuffle, dedup and split run on
small rows, and its bytes are copied from the source file straight into the tar, once. If
the file changed or vanished in between (only on the two-pass write), the command stops
with one line (exit 2) and writes nothing.

When every image is a local file (no http(s) url) and there is no `--decontaminate`, the
order of the shards is known before any image is read (split and order come from the
uid), so the files are read in that order and each is written into its tar as soon as it
is read and hashed (`shards.tar_write.write_while_reading`): one read per file, reading
and writing overlap. A copy of an image already written is skipped: the dedup keeps each
group's first in this same order, so those tars equal the two-pass tars (tested). Any
other run stages everything, then writes (`shards.tar_write.write_splits`).

Then, among the successes, in this order (each a status in downloads.parquet, so
success + failed == attempted still holds):

    duplicate_image       same sha256 of the original bytes as a sample before it in the
                          shards' order (`--dedup-content`, on by default)
    near_eval_duplicate   dHash (64 bit, of the stored image) within `--near-duplicate-bits`
                          of an image under `--decontaminate DIR` (an evaluation set)

Writes `DIR/shards/` atomically (the whole folder appears at once, or not at all):

    {train,val}-NNNNNN.tar (+ .parquet sidecar)   shards.writer
    downloads.parquet   uid, url, status ("success" or a failure kind), error_message:
                        one row per attempted sample, in uid order
    manifest.json       shards.manifest
    meta.json           config, versions and counts; success + failed == attempted

Split: a sample is val when int(md5(uid)[:8], 16) / 2**32 < val_fraction, so a uid keeps
its split as the data grows. Order within a split: by md5(f"{seed}:{uid}"), a shuffle that
is the same for the same seed on any machine.

Killed at any moment and re-run, it writes the same shards as an uninterrupted run: the
crawl resumes from its complete img2dataset shards, local images are staged again from
scratch (`DIR/crawl/local/` is rewritten whole, through a temporary name), the staged
`shards.tmp-PID` folder of the dead run is removed, and everything after the crawl is a
pure function of its rows and the unchanged source files.
`--reshard N` rewrites existing shards with N samples each (`shards.reshard`), no crawl.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.layout import (
    DatasetRoot,
    remove_dead_run_folders,
    require_parquet,
    staged_dir,
    write_json_atomic,
    write_meta,
)
from curation.options import parse_options
from curation.sql import sql_list, sql_literal
from labeling.vocab_file import LABEL_COLUMNS, vocab_hash
from shards.crawl import (
    CRAWL_SHARD_SIZE,
    DISALLOWED_DIRECTIVES,
    DISTRIBUTORS,
    RESIZE_MODES,
    SUCCESS,
    CrawlSettings,
    ResizePolicy,
    check_distributor,
    crawl_stats,
)
from shards.manifest import SHARD_ORDER, SPLITS, ShardInfo, manifest_dict
from shards.tar_write import write_splits, write_while_reading

METADATA_COLUMNS = ("uid", "url", "caption")
UNSUPPORTED_URL = "unsupported_url"
NOT_FETCHED = "not_fetched"  # the image source returned no row for this uid


@dataclass(frozen=True)
class ShardOptions:
    """Download or read the labeled images and write webdataset shards under DIR/shards."""

    root: str = field(metadata={"help": "dataset folder (holds labels/, metadata/, vocab/)"})
    image_size: int = field(
        default=256,
        metadata={"help": "shorter side of stored images; 256 leaves room for a 224 crop"},
    )
    resize_mode: str = field(
        default="keep_ratio",
        metadata={"help": "keep_ratio keeps the whole image; center_crop stores squares",
                  "choices": RESIZE_MODES},
    )  # fmt: skip
    samples_per_shard: int = 1000
    val_fraction: float = field(default=0.05, metadata={"help": "share of uids held out"})
    seed: int = field(
        default=0,
        metadata={"help": "order of samples within a split (and which copy of an image is kept)"},
    )
    processes: int = field(default=4, metadata={"help": "img2dataset download processes"})
    threads: int = field(default=64, metadata={"help": "download threads per process"})
    timeout: int = field(default=10, metadata={"help": "seconds per http request"})
    retries: int = field(default=0, metadata={"help": "extra tries per failed url"})
    user_agent_token: str = field(
        default="mawskit", metadata={"help": "User-Agent token; X-Robots-Tag rules for it apply"}
    )
    disallowed_header_directives: tuple[str, ...] = field(
        default=DISALLOWED_DIRECTIVES,
        metadata={"help": "X-Robots-Tag directives that refuse an image ('none': honour none)"},
    )
    distributor: str = field(
        default="multiprocessing",
        metadata={"help": "img2dataset distributor (pyspark/ray run on their cluster)",
                  "choices": DISTRIBUTORS},
    )  # fmt: skip
    crawl_shard_size: int = field(
        default=CRAWL_SHARD_SIZE, metadata={"help": "urls per img2dataset shard (unit of resume)"}
    )
    file_urls: bool = field(
        default=True,
        metadata={"help": "read file:// urls from this disk (--no-file-urls for web lists)"},
    )
    dedup_content: bool = field(
        default=True, metadata={"help": "drop images whose original bytes repeat (sha256)"}
    )
    decontaminate: str | None = field(
        default=None, metadata={"help": "folder of evaluation images: drop near-duplicates"}
    )
    near_duplicate_bits: int = field(
        default=4, metadata={"help": "max dHash Hamming distance (of 64) to an eval image"}
    )
    reshard: int = field(
        default=0, metadata={"help": "N > 0: rewrite the existing shards with N samples each"}
    )

    def __post_init__(self) -> None:
        positive = ("image_size", "samples_per_shard", "processes", "threads", "timeout",
                    "crawl_shard_size")  # fmt: skip
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
        for name in ("retries", "reshard"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 0")
        if not 0 <= self.near_duplicate_bits <= 64:
            raise UsageError("--near-duplicate-bits must be in [0, 64]")
        if not 0.0 <= self.val_fraction < 1.0:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.decontaminate is not None and not Path(self.decontaminate).is_dir():
            raise UsageError(f"--decontaminate: no such folder {self.decontaminate}")
        try:
            check_distributor(self.distributor)
        except ValueError as err:
            raise UsageError(str(err)) from err

    def header_directives(self) -> tuple[str, ...]:
        return tuple(d for d in self.disallowed_header_directives if d.lower() != "none")


def split_of(uid: str, val_fraction: float) -> str:
    """ "val" when the uid's stable hash falls under `val_fraction`, else "train"."""
    bucket = int(hashlib.md5(uid.encode()).hexdigest()[:8], 16) / 2**32
    return "val" if bucket < val_fraction else "train"


def order_key(uid: str, seed: int) -> str:
    """Sort key of a uid within its split: a seeded, machine-independent shuffle."""
    return hashlib.md5(f"{seed}:{uid}".encode()).hexdigest()


def url_source(url: str, file_urls: bool = True) -> str | None:
    """Which image source handles `url`: "http", "file", or None (unsupported)."""
    lowered = url.lower()
    if lowered.startswith(("http://", "https://")):
        return "http"
    if lowered.startswith("file://") and file_urls:
        return "file"
    return None


def _check_columns(con: Any, glob: str, needed: Sequence[str], what: str) -> None:
    cursor = con.execute(
        f"SELECT * FROM read_parquet({sql_literal(glob)}, union_by_name = true) LIMIT 0"
    )
    columns = [d[0] for d in cursor.description]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise UsageError(f"{what} lack column(s) {', '.join(missing)} ({glob})")


def load_candidates(
    con: Any, root: DatasetRoot, wnids: list[str], val_fraction: float, seed: int,
    file_urls: bool = True,
) -> Any:  # fmt: skip
    """Kept labeled samples joined to metadata, as an Arrow table with split and order.

    Columns: uid, url, caption, class_ids, wnids, hashtags, weight, split, order_key, source
    (source = "http" | "file" | null). One row per uid. wnids: each class_id's wnid in
    `wnids`, vocab.parquet's in class order (`read_vocab`; labels hold no wnids, and
    `check_labels_match_vocab` checks that every class id has one). Split and order
    key are `split_of` and `order_key` computed by DuckDB (its md5 is hashlib's; tested
    equal): two md5 per row in Python cost more than the whole join.
    """
    import pyarrow as pa

    labels = require_parquet(root.labels, "labels", "curate build-vocab")
    metadata = require_parquet(root.metadata, "metadata", "curate ingest")
    _check_columns(con, labels, LABEL_COLUMNS, "labels")  # a stored wnids column: unread
    _check_columns(con, metadata, METADATA_COLUMNS, "metadata")
    con.register("vocab_wnids", pa.table({"wnids": pa.array([wnids], pa.list_(pa.string()))}))
    table = con.sql(
        f"""
        SELECT l.uid, m.url, coalesce(m.caption, '') AS caption, l.class_ids,
               list_transform(l.class_ids, lambda c: w.wnids[c + 1]) AS wnids,
               l.hashtags, l.weight,
               CASE WHEN ('0x' || md5(l.uid)[1:8])::UBIGINT::DOUBLE / 4294967296.0::DOUBLE
                         < CAST({sql_literal(repr(float(val_fraction)))} AS DOUBLE)
                    THEN 'val' ELSE 'train' END AS split,
               md5({sql_literal(f"{seed}:")} || l.uid) AS order_key
        FROM read_parquet({sql_literal(labels)}, union_by_name = true) AS l
        JOIN read_parquet({sql_literal(metadata)}, union_by_name = true) AS m USING (uid)
        CROSS JOIN vocab_wnids AS w
        WHERE l.keep AND m.url IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY l.uid ORDER BY m.url) = 1
        ORDER BY l.uid
        """
    ).to_arrow_table()
    con.unregister("vocab_wnids")
    sources = [url_source(u, file_urls) for u in table.column("url").to_pylist()]
    return table.append_column("source", pa.array(sources, pa.string()))


def check_labels_match_vocab(candidates: Any, root: DatasetRoot, wnids: list[str]) -> None:
    """Refuse (one line, exit 2) labels made with another vocabulary than vocab.parquet's
    K classes `wnids`: a class id outside [0, K) (it has no wnid: the lookup would write
    null), or labels/meta.json's `counts.vocab_hash`, when there is one, not that of
    `wnids`. Both happen when labels and vocab come from different `curate build-vocab`
    runs, or when either was edited. A null class id is refused too (no class at all).
    The ids checked are those of `candidates`, the rows this run shards (kept, with a url);
    `curate sql`'s `labels` view checks every row it reads."""
    import pyarrow.compute as pc

    vocab = root.vocab / "vocab.parquet"
    again = "run `curate build-vocab` again"
    ids = pc.list_flatten(candidates.column("class_ids"))
    if ids.null_count:
        raise UsageError(f"labels name a null class_id (labels/part-*.parquet): {again}")
    if len(ids):
        low, high = pc.min_max(ids).values()
        bad = low.as_py() if low.as_py() < 0 else high.as_py()
        if not 0 <= bad < len(wnids):
            raise UsageError(
                f"labels name class_id {bad} but {vocab} has {len(wnids)} classes: {again}"
            )
    meta = root.labels / "meta.json"
    if meta.exists():
        labels_hash = json.loads(meta.read_text()).get("counts", {}).get("vocab_hash")
        expected = vocab_hash(wnids)
        if labels_hash is not None and labels_hash != expected:
            raise UsageError(
                f"{meta} was written with vocabulary {labels_hash[:12]}, but {vocab} is"
                f" {expected[:12]}: {again}"
            )


def count_label_rows(con: Any, root: DatasetRoot) -> dict[str, int]:
    """Label rows before the join: all, dropped by the frequency cap, kept."""
    labels = sql_literal(root.labels / "*.parquet")
    total, kept = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE keep) FROM read_parquet({labels},"
        " union_by_name = true)"
    ).fetchone()
    return {"label_rows": int(total), "dropped_by_cap": int(total - kept), "kept": int(kept)}


def fetch_images(
    candidates: Any, root: DatasetRoot, opts: ShardOptions
) -> tuple[list[Path], dict[str, int]]:
    """Crawl the http(s) candidates and read the file:// ones; return the fetched-table
    parquets and the crawl's resume counts (crawled_now, reused, parts)."""
    from shards.crawl import crawl_images
    from shards.local import read_local_images

    policy = ResizePolicy(image_size=opts.image_size, resize_mode=opts.resize_mode)
    settings = CrawlSettings(
        processes=opts.processes,
        threads=opts.threads,
        timeout=opts.timeout,
        retries=opts.retries,
        user_agent_token=opts.user_agent_token,
        disallowed_header_directives=opts.header_directives(),
        distributor=opts.distributor,
        shard_size=opts.crawl_shard_size,
    )
    by_source: dict[str, tuple[list[str], list[str]]] = {"http": ([], []), "file": ([], [])}
    for uid, url, source in zip(
        candidates.column("uid").to_pylist(),
        candidates.column("url").to_pylist(),
        candidates.column("source").to_pylist(),
        strict=True,
    ):
        if source is not None:
            by_source[source][0].append(uid)
            by_source[source][1].append(url)
    crawl = crawl_images(*by_source["http"], root.crawl, policy, settings)
    parts = list(crawl.parts)
    parts += read_local_images(*by_source["file"], root.crawl, policy, threads=opts.threads)
    resume = {"crawled_now": crawl.crawled_now, "reused": crawl.reused, "parts": len(crawl.parts)}
    return parts, resume


def writes_while_reading(candidates: Any, opts: ShardOptions) -> bool:
    """Whether `write_while_reading` can write this run: every image is a local file (no
    http(s) url to crawl first), and no `--decontaminate` (its dHash check needs every
    stored image before the first is written)."""
    sources = set(candidates.column("source").to_pylist())
    return opts.decontaminate is None and "http" not in sources and "file" in sources


def fetched_relation(con: Any, parts: list[Path]) -> str:
    """SQL for the rows of every fetched parquet in `parts` (crawl parts and the local
    staging table) with the staging table's columns throughout (crawl rows have null refs)
    and a `filename` column naming the parquet each row came from."""
    from shards.local import staging_schema

    con.register("staging_columns", staging_schema().empty_table())
    empty = "SELECT *, NULL::VARCHAR AS filename FROM staging_columns"
    if not parts:
        return f"({empty})"
    files = f"read_parquet({sql_list(parts)}, union_by_name = true, filename = true)"
    return f"(SELECT * FROM {files} UNION ALL BY NAME {empty})"


def register_outcomes(con: Any, candidates: Any, parts: list[Path]) -> None:
    """Register `candidates` in DuckDB and build the temp table `outcome`: one row per
    candidate with uid, url, status, error_message, width, height, sha256, split, order_key,
    part (the fetched parquet that holds its row, null unless fetched) and the `FileRef`
    columns (set when the bytes are still on local disk, not in `part`'s jpg). A uid with
    rows in several parts (failed, then retried) takes its success, else its latest row."""
    from shards.fileref import REF_COLUMNS

    con.register("candidates", candidates)
    refs = ", ".join(f"f.{c}" for c in REF_COLUMNS)
    con.execute(
        f"""
        CREATE TEMP TABLE outcome AS
        WITH f AS (
            SELECT * EXCLUDE (url, jpg) FROM {fetched_relation(con, parts)}
            QUALIFY row_number() OVER (
                PARTITION BY uid ORDER BY status <> 'success', filename DESC) = 1
        )
        SELECT c.uid, c.url,
               coalesce(f.status, CASE WHEN c.source IS NULL THEN '{UNSUPPORTED_URL}'
                                       ELSE '{NOT_FETCHED}' END) AS status,
               CASE WHEN f.status IS NOT NULL THEN f.error_message
                    WHEN c.source IS NULL THEN 'no image source for this url scheme'
                         || ' (http, https; file only with --file-urls)'
                    ELSE 'the image source returned no row for this uid' END AS error_message,
               f.width, f.height, f.sha256, c.split, c.order_key, f.filename AS part, {refs}
        FROM candidates AS c LEFT JOIN f USING (uid)
        """
    )


def stored_images(con: Any, parts: list[Path], where: str) -> str:
    """SQL: the `outcome` rows matching `where` (over alias o) with `jpg`, the stored bytes
    when a parquet holds them (null when a `FileRef` points at them instead)."""
    return f"""
        SELECT o.*, p.jpg
        FROM outcome AS o
        LEFT JOIN {fetched_relation(con, parts)} AS p
          ON p.uid = o.uid AND p.filename = o.part AND p.status = 'success'
             AND o.ref_path IS NULL
        WHERE {where}
        """


def splits_query(con: Any, parts: list[Path]) -> str:
    """SQL for `shards.tar_write.write_splits`: every successful sample (not dropped by the
    dedup or decontamination) with its candidate's labels, in the shards' order."""
    return f"""
        SELECT c.uid, c.url, c.caption, c.class_ids, c.wnids, c.hashtags, c.weight,
               s.* EXCLUDE (uid, url)
        FROM ({stored_images(con, parts, "o.status = 'success'")}) AS s
        JOIN candidates AS c USING (uid)
        ORDER BY {", ".join(f"s.{c}" for c in SHARD_ORDER)}
        """


def outcome_counts(con: Any) -> dict[str, Any]:
    """Counts for meta.json: attempted, success, failed (total, by status, top messages)."""
    by_status = dict(
        con.execute("SELECT status, count(*) FROM outcome GROUP BY 1 ORDER BY 1").fetchall()
    )
    messages = con.execute(
        "SELECT status || ': ' || coalesce(error_message, '') AS m, count(*) AS n FROM outcome"
        " WHERE status <> 'success' GROUP BY 1 ORDER BY n DESC, m LIMIT 20"
    ).fetchall()
    success = int(by_status.pop(SUCCESS, 0))
    return {
        "attempted": success + sum(by_status.values()),
        "success": success,
        "failed": sum(by_status.values()),
        "failed_by_status": {k: int(v) for k, v in by_status.items()},
        "top_errors": {m: int(n) for m, n in messages},
    }


def failure_summary(counts: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in counts["failed_by_status"].items()) or "none"
    top = " ".join(next(iter(counts["top_errors"]), "").split())  # stays one line
    return f"{counts['attempted']} attempted, failed: {kinds}; most common: {top!r}"


def remove_dead_staging(final: Path) -> list[Path]:
    """Remove `final.tmp-PID` folders (and `final.old-PID`) left by runs whose PID is gone:
    a killed `curate shard` cannot clean up after itself. Returns what was removed."""
    return remove_dead_run_folders(
        sorted(final.parent.glob(f"{final.name}.tmp-*"))
        + sorted(final.parent.glob(f"{final.name}.old-*"))
    )


def filter_successes(con: Any, parts: list[Path], opts: ShardOptions) -> dict[str, int]:
    """Content dedup and decontamination (`shards.dedup`) over `outcome`; their counts."""
    from shards.dedup import mark_content_duplicates, mark_near_eval_duplicates

    counts = {"duplicate_images": mark_content_duplicates(con) if opts.dedup_content else 0}
    if opts.decontaminate is not None and parts:
        query = stored_images(con, parts, "o.status = 'success'") + " ORDER BY o.uid"
        counts.update(
            mark_near_eval_duplicates(
                con, query, Path(opts.decontaminate), opts.near_duplicate_bits
            )
        )
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    return shard(parse_options(ShardOptions, argv, prog="curate shard"))


def shard(opts: ShardOptions, *, one_pass: bool = True) -> int:
    """Run `curate shard` with `opts`. `one_pass=False` sends a run that could write while
    it reads (`writes_while_reading`) through the two-pass write that every other run
    takes, so that tests can compare the two."""
    import duckdb

    started = time.time()
    root = DatasetRoot(opts.root)
    remove_dead_staging(root.shards)
    if opts.reshard:
        from shards.reshard import reshard

        counts = reshard(root.shards, opts.reshard, config=opts, started=started)
        print(f"resharded {counts['samples']} samples into {counts['shards']} -> {root.shards}")
        return 0
    with duckdb.connect() as con:  # closed however the run ends
        return write_shards(con, opts, root, started, one_pass=one_pass)


def write_shards(
    con: Any, opts: ShardOptions, root: DatasetRoot, started: float, *, one_pass: bool
) -> int:
    """`shard`'s run after the set-up, on the DuckDB connection `con`."""
    from labeling.vocab_file import read_vocab

    vocab = read_vocab(root.vocab)
    wnids = [r["wnid"] for r in vocab]
    candidates = load_candidates(con, root, wnids, opts.val_fraction, opts.seed, opts.file_urls)
    check_labels_match_vocab(candidates, root, wnids)
    if candidates.num_rows == 0:
        raise UsageError(f"no kept labeled sample has a url in {root.metadata}; nothing to shard")
    with staged_dir(root.shards) as folder:
        splits: dict[str, list[ShardInfo]] | None = None
        if one_pass and writes_while_reading(candidates, opts):
            policy = ResizePolicy(image_size=opts.image_size, resize_mode=opts.resize_mode)
            parts, splits = write_while_reading(
                candidates, root.crawl, folder, policy, per_shard=opts.samples_per_shard,
                dedup_content=opts.dedup_content, threads=opts.threads,
            )  # fmt: skip
            resume = {"crawled_now": 0, "reused": 0, "parts": 0}  # nothing to crawl
        else:
            parts, resume = fetch_images(candidates, root, opts)
        register_outcomes(con, candidates, parts)
        filtered = filter_successes(con, parts, opts)
        counts = {**count_label_rows(con, root), "candidates": candidates.num_rows}
        counts.update(outcome_counts(con))
        counts.update(filtered)
        counts["crawl"] = resume
        counts["img2dataset"] = crawl_stats(root.crawl)  # its own tallies, over all crawl parts
        if counts["success"] == 0:
            raise UsageError(f"no image could be fetched ({failure_summary(counts)})")
        if splits is None:  # not a local-only run: stage everything, then write
            query = splits_query(con, parts)
            splits = write_splits(con, query, folder, opts.samples_per_shard)
        con.execute(
            f"COPY (SELECT uid, url, status, error_message FROM outcome ORDER BY uid)"
            f" TO {sql_literal(folder / 'downloads.parquet')} (FORMAT parquet)"
        )
        classes = [{"class_id": r["class_id"], "wnid": r["wnid"], "name": r["name"]} for r in vocab]
        manifest = manifest_dict(opts.image_size, vocab_hash(wnids), classes, splits)
        write_json_atomic(folder / "manifest.json", manifest)
        counts["splits"] = {s: manifest["splits"][s]["count"] for s in SPLITS}
        counts["shards"] = {s: len(splits[s]) for s in SPLITS}
        counts["bytes"] = manifest["totals"]["bytes"]
        if sum(counts["splits"].values()) != counts["success"]:  # the counts must add up
            raise RuntimeError(
                f"wrote {counts['splits']} samples for {counts['success']} successes"
            )
        write_meta(folder, config=opts, counts=counts, started=started)
    print(
        f"shards: {counts['success']} of {counts['attempted']} images "
        f"(train {counts['splits']['train']}, val {counts['splits']['val']}) -> {root.shards}"
    )
    return 0
