"""`curate ingest`: (url, caption) tables or image folders -> `DIR/metadata/part-*.parquet`.

Inputs, any mix of:
  - tables: `.parquet`, `.csv`, `.tsv`, `.jsonl`/`.ndjson`/`.json` (newline-delimited), each
    optionally `.gz`; the url and caption columns are named by `--url-col`/`--caption-col`;
    a local path or any fsspec URL (`file://`, `memory://`, `s3://` with s3fs installed...),
    read by DuckDB through the fsspec filesystem, streaming;
  - folders of images where `name.jpg` has its caption in `name.txt` (no `.txt`: empty
    caption); their url is the image's `file://` URI;
  - existing webdataset tars (`.tar`, e.g. img2dataset or LAION shards): one sample per key
    with an image member; caption from `key.txt`, else the `caption` field of `key.json`;
    url = `file:///abs/shard.tar#key.jpg`, a reference to the member, so `curate shard`
    reads the image from the tar instead of downloading it again.

Output schema (architecture.md): `uid` string (16 hex = first 64 bits of
md5(url + "\\n" + caption)), `url` string, `caption` string (empty, never null), `source`
string. Rows without a url are dropped and counted; exact duplicates (same uid) are dropped
and counted. Rows are written sorted by uid, so a re-run writes identical files.
All of it runs in DuckDB, set-wise and out of core.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse
from urllib.request import url2pathname

from curation.errors import UsageError
from curation.layout import DatasetRoot, staged_dir, write_meta
from curation.options import parse_options
from curation.sql import sql_literal

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
TABLE_SUFFIXES = (".parquet", ".csv", ".tsv", ".jsonl", ".ndjson", ".json")
TAR_SUFFIX = ".tar"


@dataclass(frozen=True)
class IngestOptions:
    """Read (url, caption) pairs from tables or image folders into DIR/metadata."""

    inputs: list[str] = field(metadata={"positional": True, "help": "tables or image folders"})
    root: str = field(metadata={"help": "dataset folder (writes ROOT/metadata)"})
    url_col: str = field(default="url", metadata={"help": "url column of table inputs"})
    caption_col: str = field(default="caption", metadata={"help": "caption column"})
    part_rows: int = field(default=1_000_000, metadata={"help": "rows per output part"})
    memory_limit: str = field(default="4GB", metadata={"help": "DuckDB memory limit"})

    def __post_init__(self) -> None:
        if self.part_rows < 1:
            raise UsageError(f"--part-rows must be >= 1, got {self.part_rows}")


def _table_kind(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in TABLE_SUFFIXES:
        if name.endswith(suffix):
            return suffix.lstrip(".")
    return None


def _table_relation(path: str, kind: str) -> str:
    p = sql_literal(str(path))
    if kind == "parquet":
        return f"read_parquet({p})"
    if kind in ("csv", "tsv"):
        delim = "\\t" if kind == "tsv" else ","
        return f"read_csv({p}, delim=E'{delim}', header=true, all_varchar=true)"
    return f"read_json({p}, format='newline_delimited')"


def _folder_table(folder: Path):
    """An Arrow table (url, caption, source) for the images under `folder`."""
    import pyarrow as pa

    urls, captions = [], []
    for image in sorted(folder.rglob("*")):
        if image.suffix.lower() not in IMAGE_SUFFIXES or not image.is_file():
            continue
        text = image.with_suffix(".txt")
        caption = (
            text.read_text(encoding="utf-8", errors="replace").strip() if text.exists() else ""
        )
        urls.append(image.resolve().as_uri())
        captions.append(caption)
    if not urls:
        raise UsageError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return pa.table({"url": urls, "caption": captions, "source": [str(folder)] * len(urls)})


def _tar_table(tar_path: Path):
    """An Arrow table (url, caption, source) for the samples of a webdataset tar."""
    import json
    import tarfile

    import pyarrow as pa

    images: dict[str, str] = {}
    texts: dict[str, bytes] = {}
    try:
        with tarfile.open(tar_path, "r|") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                base = member.name.rsplit("/", 1)[-1]
                key, dot, ext = base.partition(".")
                stem = member.name[: len(member.name) - len(base)] + key  # dir/key
                if "." + ext.lower() in IMAGE_SUFFIXES and stem not in images:
                    images[stem] = member.name
                elif ext in ("txt", "json"):
                    handle = tar.extractfile(member)
                    texts[f"{stem}.{ext}"] = handle.read() if handle is not None else b""
    except (tarfile.TarError, OSError) as err:
        raise UsageError(f"cannot read tar {tar_path}: {err}") from err
    if not images:
        raise UsageError(f"{tar_path} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    base_uri = tar_path.resolve().as_uri()
    urls, captions = [], []
    for stem, member in images.items():
        caption = texts.get(f"{stem}.txt", b"").decode("utf-8", errors="replace").strip()
        if not caption and f"{stem}.json" in texts:
            try:
                caption = str(json.loads(texts[f"{stem}.json"]).get("caption") or "").strip()
            except (ValueError, AttributeError):
                caption = ""
        urls.append(f"{base_uri}#{quote(member)}")
        captions.append(caption)
    return pa.table({"url": urls, "caption": captions, "source": [str(tar_path)] * len(urls)})


def _open_input(con, raw: str) -> tuple[Path | None, str]:
    """(local path or None, the path DuckDB reads) of an input; fsspec URLs get their
    filesystem registered with `con`. UsageError when the input does not exist."""
    if "://" not in raw or raw.startswith("file://"):
        path = Path(url2pathname(urlparse(raw).path)) if raw.startswith("file://") else Path(raw)
        if not path.exists():
            raise UsageError(f"input not found: {raw}")
        return path, str(path.resolve())
    import fsspec

    try:
        fs, _ = fsspec.core.url_to_fs(raw)
    except (ValueError, ImportError) as err:
        raise UsageError(f"cannot open {raw}: {err}") from err
    if not fs.exists(raw):
        raise UsageError(f"input not found: {raw}")
    con.register_filesystem(fs)
    return None, raw


def _check_columns(con, relation: str, path: Path, url_col: str, caption_col: str) -> bool:
    """True when the caption column exists; UsageError when the url column does not."""
    try:
        columns = [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]
    except Exception as err:  # duckdb raises its own error types for unreadable files
        raise UsageError(f"cannot read {path}: {str(err).splitlines()[0]}") from err
    if url_col not in columns:
        raise UsageError(f"{path} has no column {url_col!r} (columns: {', '.join(columns)}); "
                         f"name it with --url-col")  # fmt: skip
    return caption_col in columns


def ingest(opts: IngestOptions) -> dict[str, int]:
    """Write DIR/metadata/part-*.parquet and meta.json; return the counts."""
    import duckdb

    started = time.time()
    con = duckdb.connect()
    con.execute(f"SET memory_limit={sql_literal(opts.memory_limit)}")
    selects: list[str] = []
    for i, raw in enumerate(opts.inputs):
        path, readable = _open_input(con, raw)
        if path is not None and path.is_dir():
            con.register(f"folder_{i}", _folder_table(path))
            selects.append(f"SELECT url, caption, source FROM folder_{i}")
            continue
        if path is not None and path.name.lower().endswith(TAR_SUFFIX):
            con.register(f"tar_{i}", _tar_table(path))
            selects.append(f"SELECT url, caption, source FROM tar_{i}")
            continue
        kind = _table_kind(Path(raw))
        if kind is None:
            raise UsageError(f"{raw}: unknown input type; expected a folder, a .tar or one of "
                             f"{', '.join(TABLE_SUFFIXES)} (optionally .gz)")  # fmt: skip
        relation = _table_relation(readable, kind)
        has_caption = _check_columns(con, relation, Path(raw), opts.url_col, opts.caption_col)
        caption = f'CAST("{opts.caption_col}" AS VARCHAR)' if has_caption else "''"
        selects.append(
            f'SELECT CAST("{opts.url_col}" AS VARCHAR) AS url, {caption} AS caption, '
            f"{sql_literal(raw)} AS source FROM {relation}"
        )
    con.execute(
        "CREATE TEMP VIEW raw AS SELECT trim(url) AS url, coalesce(caption, '') AS caption, "
        "source FROM (" + " UNION ALL ".join(selects) + ")"
    )
    try:
        rows_read, no_url = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE url IS NULL OR url = '') FROM raw"
        ).fetchone()
    except duckdb.Error as err:
        raise UsageError(f"cannot read inputs: {str(err).splitlines()[0]}") from err
    if rows_read == 0:
        raise UsageError(f"no rows in {', '.join(opts.inputs)}")
    if rows_read == no_url:
        raise UsageError(f"every row of {', '.join(opts.inputs)} has an empty {opts.url_col!r}")
    dataset = DatasetRoot(opts.root)
    with staged_dir(dataset.metadata) as tmp:
        # The uid is over (url, caption): the same image with two captions is two samples.
        con.execute(
            "CREATE TEMP TABLE dedup AS SELECT"
            " substr(md5(url || chr(10) || caption), 1, 16) AS uid, url, caption,"
            " min(source) AS source"
            " FROM raw WHERE url IS NOT NULL AND url <> ''"
            " GROUP BY ALL"
        )
        samples = con.execute("SELECT count(*) FROM dedup").fetchone()[0]
        con.execute("CREATE TEMP TABLE ordered AS SELECT *, (row_number() OVER (ORDER BY uid) - 1)"
                    f" // {opts.part_rows} AS part FROM dedup")  # fmt: skip
        n_parts = max(1, -(-samples // opts.part_rows))
        for part in range(n_parts):
            con.execute(
                f"COPY (SELECT uid, url, caption, source FROM ordered WHERE part = {part} "
                "ORDER BY uid) "
                f"TO {sql_literal(str(tmp / f'part-{part:05d}.parquet'))} "
                "(FORMAT parquet, COMPRESSION zstd)"
            )
        counts = {
            "rows_read": rows_read,
            "dropped_empty_url": no_url,
            "duplicates_dropped": rows_read - no_url - samples,
            "samples": samples,
            "parts": n_parts,
        }
        write_meta(tmp, config=opts, counts=counts, started=started)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(IngestOptions, argv, prog="curate ingest")
    counts = ingest(opts)
    print(
        f"ingested {counts['samples']:,} samples from {counts['rows_read']:,} rows "
        f"({counts['duplicates_dropped']:,} duplicates, {counts['dropped_empty_url']:,} "
        f"without url) -> {DatasetRoot(opts.root).metadata}"
    )
    return 0
