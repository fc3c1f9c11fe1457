"""The two ways `curate shard` writes its tars, and the collector switch both run under.

Both write every sample of a split, in the shards' order (split, order_key, uid), into
that split's `shards.writer.ShardWriter` under a staging folder, and return
{split: [ShardInfo, ...]} for every split in `shards.manifest.SPLITS`:

    write_splits         the two-pass write: the fetched rows are staged and deduplicated
                         first (`shards.build`), then streamed here from DuckDB; a local
                         image's bytes are read again from its file by `FileRef` (checked
                         unchanged since hashing, else `SourceChanged`, exit 2)
    write_while_reading  the one pass of a local-only run: each file is read, hashed and
                         checked (`shards.local`) in the shards' order and written as soon
                         as it is read; a copy of an image already written is skipped

The content dedup keeps the first of each sha256 in that same order, so both write the
same tars, sidecars and manifest, byte for byte (tests/shards/test_build.py).
Each sample's json holds uid, url, caption, class_ids, wnids, hashtags and weight
(`ShardSample`); a null list is written as [], a null weight as 1.0.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from shards.crawl import ResizePolicy
from shards.manifest import SHARD_ORDER, SPLITS, ShardInfo

BATCH_ROWS = 256  # rows per Arrow batch streamed from DuckDB into the tar writer
LABEL_FIELDS = ("uid", "url", "caption", "class_ids", "wnids", "hashtags", "weight")


def labeled_sample(labels: Sequence[Any], image: Any, width: int, height: int) -> Any:
    """A `shards.writer.ShardSample` from a candidate's `LABEL_FIELDS` values, in that
    order (a null list as [], a null weight as 1.0)."""
    from shards.writer import ShardSample

    uid, url, caption, class_ids, wnids, hashtags, weight = labels
    return ShardSample(
        uid=uid,
        url=url,
        caption=caption,
        class_ids=class_ids or [],
        wnids=wnids or [],
        hashtags=hashtags or [],
        weight=1.0 if weight is None else weight,
        image=image,
        width=width,
        height=height,
    )


def write_by_split(writers: dict[str, Any], samples: Iterable[tuple[str, Any]]) -> None:
    """(split, sample) pairs, in order, written with one `write_many` per split: a few
    writev calls, not one a sample."""
    batches: dict[str, list[Any]] = {split: [] for split in writers}
    for split, sample in samples:
        batches[split].append(sample)
    for split, batch in batches.items():
        if batch:
            writers[split].write_many(batch)


class LabelBlocks:
    """Values of an Arrow table's columns by row, converted to Python a block of rows at a
    time as the rows are asked for in ascending order: all rows as Python objects would
    take ~650 bytes a row (6.5 GB for 10M local images), and converting each task's few
    rows on its own cost ~15% of the one pass's time."""

    BLOCK = 8192

    def __init__(self, table: Any) -> None:
        self._table, self._start, self._columns = table, -1, {}

    def value(self, column: str, row: int) -> Any:
        start = row - row % self.BLOCK
        if start != self._start:
            block = self._table.slice(start, self.BLOCK)
            self._columns = {n: block.column(n).to_pylist() for n in block.column_names}
            self._start = start
        return self._columns[column][row - start]


def write_while_reading(
    candidates: Any,
    crawl_dir: Path,
    folder: Path,
    policy: ResizePolicy,
    *,
    per_shard: int,
    dedup_content: bool,
    threads: int,
) -> tuple[list[Path], dict[str, list[ShardInfo]]]:
    """One pass over local images: read, hash and check each file (`shards.local`) in the
    order the shards hold them (split, order_key, uid) and write it into its tar under
    `folder` as soon as it is read, so each file's bytes are read once and the writing
    overlaps the reading. `candidates`: `shards.build.load_candidates`'s table; only its
    rows with source "file" are read. Returns the staging parquet(s) under `crawl_dir` and
    {split: [ShardInfo, ...]}.

    With `dedup_content` a copy of an image already written is skipped: the content dedup
    keeps the first of each sha256 in this same order, so the tars are the ones
    `write_splits` writes after the dedup, byte for byte.
    """
    import pyarrow.compute as pc

    from shards.local import read_local_images
    from shards.writer import ShardWriter

    local = candidates.filter(pc.equal(candidates.column("source"), "file"))
    local = local.sort_by([(c, "ascending") for c in SHARD_ORDER])
    labels = LabelBlocks(local.select([*LABEL_FIELDS, "split"]))
    written: set[str] = set()  # the sha256 of every image written

    def first_copy(sha256: str) -> bool:
        """False for a copy of an image written before it: the dedup drops it."""
        if not dedup_content:
            return True
        if sha256 in written:
            return False
        written.add(sha256)
        return True

    with ExitStack() as stack:
        stack.enter_context(collector_paused())
        writers = {s: stack.enter_context(ShardWriter(folder, s, per_shard)) for s in SPLITS}

        def write(successes: list[tuple[int, dict[str, Any], Any]]) -> None:
            """Write one task's successes (a few splits' worth at most)."""
            samples = []
            for i, row, image in successes:
                if first_copy(row["sha256"]):
                    values = [labels.value(f, i) for f in LABEL_FIELDS]
                    sample = labeled_sample(values, image, row["width"], row["height"])
                    samples.append((labels.value("split", i), sample))
            write_by_split(writers, samples)

        uids, urls = local.column("uid").to_pylist(), local.column("url").to_pylist()
        parts = read_local_images(uids, urls, crawl_dir, policy, threads=threads, consume=write)
    return parts, {split: writer.shards for split, writer in writers.items()}


def write_splits(con: Any, query: str, folder: Path, per_shard: int) -> dict[str, list[ShardInfo]]:
    """Stream the rows of `query` (DuckDB SQL over `con`: uid, url, caption, class_ids,
    wnids, hashtags, weight, split, width, height, jpg and the `FileRef` columns, one row
    per sample to write, ordered by split, order_key, uid) into each split's `ShardWriter`
    under `folder`.

    Local images are copied from their files here, the one time their bytes move after
    hashing. A thread reads the next batch's files (os.pread releases the GIL) while this
    one writes the current batch (`ShardWriter.write_many`: a few writev calls a batch),
    and each writer seals its finished tars (sidecar, sha256) on a thread of its own, so
    reading, writing and hashing overlap.
    """
    from concurrent.futures import Future, ThreadPoolExecutor

    from shards.fileref import FileRefReader, stored_bytes
    from shards.writer import ShardWriter

    def with_images(batch: Any) -> tuple[list[dict[str, Any]], list[bytes]]:
        rows = batch.to_pylist()
        return rows, [stored_bytes(row, refs) for row in rows]

    with ExitStack() as stack:
        stack.enter_context(collector_paused())
        writers = {s: stack.enter_context(ShardWriter(folder, s, per_shard)) for s in SPLITS}
        refs = stack.enter_context(FileRefReader())
        pool = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="read-refs"))
        batches = iter(con.sql(query).to_arrow_reader(BATCH_ROWS))

        def read_next() -> Future[tuple[list[dict[str, Any]], list[bytes]]] | None:
            batch = next(batches, None)
            return None if batch is None else pool.submit(with_images, batch)

        pending = read_next()
        while pending is not None:
            rows, images = pending.result()
            pending = read_next()  # read the next batch's files while this one is written
            samples = []
            for row, image in zip(rows, images, strict=True):
                labels = [row[f] for f in LABEL_FIELDS]
                sample = labeled_sample(labels, image, row["width"], row["height"])
                samples.append((row["split"], sample))
            write_by_split(writers, samples)
    return {split: writer.shards for split, writer in writers.items()}


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the block, as it was after. Staging and writing
    local files make a few dicts and tuples per sample, none in a cycle, so every collection
    they trigger finds nothing; they triggered ~20 ms of collections per 3,000 samples.
    Used around those loops only (`read_local_images`, the two writes), not the http crawl,
    which runs img2dataset's own machinery in this process."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
