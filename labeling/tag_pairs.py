"""Every caption's distinct hashtags as (row, tag id) pairs, spilled to disk per row group.

Contract of `scan_metadata(paths, spill, workers, on_new_tags) -> TagPairs`:

    tasks              one per metadata row group, in file then row-group order
    spill/NNNNNN.scan       per task, written by its worker: rows int32 [P] (row in
                       the row group, ascending), ids int32 [P] (into the row group's own
                       tag dictionary), distinct within a row; offsets int32 [V + 1] and
                       data uint8 (that dictionary's strings, Arrow's buffers)
    spill/NNNNNN.global.npy   per task, written by the merge: int32 [V], that
                       dictionary -> tag id
    TagPairs.values    pa.string [T]   tag id -> the tag as written, in order of discovery
    TagPairs.counts    int64 [T]       captions carrying each tag (one count per caption)

Row groups are scanned by `labeling.tag_scan.scan_captions` in `workers` processes, which
write their results to the spill (NNNNNN.scan, with the captions per batch tag and the
number of captions with a tag) rather than send them, so results never pile up in memory
while this process is busy. It merges them by groups of `MERGE_GROUP` as they arrive,
reading only the batch dictionaries and their tallies (the pairs are neither read nor
written again, only `to_global` is added): the group's dictionaries are encoded together
and matched against the tags seen so far (Arrow's `index_in`, ~3x faster than a dict over
Python strings; it hashes the known tags on every call, hence the groups), new tags get
the next ids and are handed to `on_new_tags(first_id, values)` at once, so the caller can
map them while the scan goes on. Memory is bounded by one row group per worker plus the distinct
tags; the pairs themselves live on disk (8 bytes per (caption, tag), plus 12 per distinct
tag of a row group).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curation.errors import UsageError

MERGE_GROUP = 8  # scan results merged at once: ~40% less hashing than one by one


@dataclass(frozen=True)
class ScanTask:
    """One metadata row group: `rows` captions from global row `first_row` on."""

    index: int
    path: str
    row_group: int
    first_row: int
    rows: int


@dataclass
class TagPairs:
    """The scan's result (module docstring)."""

    tasks: list[ScanTask]
    spill: Path
    values: Any  # pa.StringArray
    counts: np.ndarray
    captions: int
    captions_with_hashtag: int

    def pairs(self, task: ScanTask) -> tuple[np.ndarray, np.ndarray]:
        """(rows, global tag ids) of one task, read back from the spill."""
        rows, ids, to_global = self.batch_pairs(task)
        return rows, to_global[ids]

    def batch_pairs(self, task: ScanTask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, batch tag ids, batch id -> global tag id) of one task: a caller that
        maps tags to something else composes its lookup with `to_global` first (one
        gather per pair instead of two)."""
        from labeling.spill import load_arrays

        to_global = np.load(self.spill / f"{task.index:06d}.global.npy")
        saved = load_arrays(self.spill / f"{task.index:06d}.scan")
        return saved["rows"], saved["ids"], to_global


def plan_tasks(paths: list[str]) -> list[ScanTask]:
    """One task per row group of each parquet file; UsageError without a caption column."""
    import pyarrow.parquet as pq

    tasks: list[ScanTask] = []
    first = 0
    for path in paths:
        meta = pq.ParquetFile(path).metadata
        names = set(meta.schema.names)
        if not {"uid", "caption"} <= names:
            raise UsageError(f"{path}: metadata needs columns uid and caption, has {sorted(names)}")
        for group in range(meta.num_row_groups):
            rows = meta.row_group(group).num_rows
            tasks.append(ScanTask(len(tasks), path, group, first, rows))
            first += rows
    return tasks


def read_column(task: ScanTask, column: str) -> Any:
    """One column of a task's row group as a pyarrow Array."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(task.path).read_row_group(task.row_group, columns=[column]).column(0)


def scan_task(task: ScanTask, spill: Path) -> tuple[int, Path]:
    """Worker: scan one row group; write its rows, batch ids and batch values (as Arrow's
    offsets and bytes) to spill/NNNNNN.scan (`labeling.spill`); return (task index, that path)."""
    from labeling.tag_scan import scan_captions

    found = scan_captions(read_column(task, "caption"))
    values = found.values
    _, offsets, data = values.buffers()
    from labeling.spill import save_arrays

    path = spill / f"{task.index:06d}.scan"
    save_arrays(
        path,
        rows=found.rows,
        ids=found.ids,
        tally=np.bincount(found.ids, minlength=len(values)),  # captions per batch tag
        tagged=np.count_nonzero(np.diff(found.rows)) + 1 if len(found.rows) else 0,
        offsets=np.frombuffer(offsets, np.int32)[values.offset : values.offset + len(values) + 1],
        data=np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8),
    )
    return task.index, path


def _read_scan(path: Path) -> tuple[Any, np.ndarray, int]:
    """(batch tags pa.string [V], captions per batch tag int64 [V], captions with a tag);
    the pairs themselves are not read here."""
    import pyarrow as pa

    from labeling.spill import load_arrays

    saved = load_arrays(path, names=("tally", "tagged", "offsets", "data"))
    offsets, data = saved["offsets"], saved["data"]
    values = pa.StringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets - offsets[0]), pa.py_buffer(data[offsets[0] :])
    )
    return values, saved["tally"], int(saved["tagged"])


def _results(tasks: list[ScanTask], spill: Path, workers: int) -> Iterator[tuple | None]:
    """None once the workers run, then (task index, scan file) per task as they finish.
    Workers write their results to disk, so nothing queues up in this process while it
    is busy (loading WordNet)."""
    import functools

    scan = functools.partial(scan_task, spill=spill)
    if workers <= 1 or len(tasks) <= 1:
        yield None
        yield from map(scan, tasks)
        return
    import multiprocessing

    from labeling.worker_pool import forked_executor, unordered

    if "fork" not in multiprocessing.get_all_start_methods():
        yield None
        yield from map(scan, tasks)
        return
    # fork: workers start in milliseconds, before this process loads WordNet (spawn
    # re-imports everything, 1-3 s per worker). Workers use numpy and Arrow only (Arrow
    # re-creates its thread pools after a fork); DuckDB only in a fresh connection.
    # A dead worker raises `WorkerDied` (labeling.worker_pool).
    from labeling.tag_kernel import warm

    warm()  # compile (or load) the scanner once, here, rather than in every worker
    with forked_executor(min(workers, len(tasks))) as pool:
        results = unordered(pool, "scan hashtags", scan, tasks)
        yield None
        yield from results


class _Merge:
    """The tags seen so far (`known`: tag id -> tag), captions per tag and captions with a
    tag, grown by groups of scan results."""

    def __init__(self, spill: Path, on_new_tags: Callable[[int, Any], None] | None) -> None:
        import pyarrow as pa

        self.spill, self.on_new_tags = spill, on_new_tags
        # pa.nulls, not pa.array: pyarrow's first pa.array in a process imports pandas
        # (~0.25 s), which here would delay the fork of the scan workers
        self.known = pa.nulls(0, pa.string())
        self.counts = np.zeros(0, np.int64)
        self.with_tag = 0

    def add(self, group: list[tuple[int, Path]]) -> None:
        """Merge the scan results (task index, scan file) of `group`: their dictionaries
        are encoded together, then matched against the known tags once (one hash table of
        the known tags a group instead of one a task); new tags get the next ids in order of
        first appearance (as merging them one by one would), written per task as
        NNNNNN.global.npy."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from labeling.tag_scan import STRING_BYTES

        if not group:
            return
        scans = [_read_scan(path) for _, path in group]
        if len(group) > 1 and sum(values.nbytes for values, _, _ in scans) >= STRING_BYTES:
            for item in group:  # together they would pass a string array's 2 GiB
                self.add([item])
            return
        encoded = pc.dictionary_encode(pa.concat_arrays([values for values, _, _ in scans]))
        distinct = encoded.dictionary
        found = pc.index_in(distinct, value_set=self.known).fill_null(-1)
        to_global = found.to_numpy(zero_copy_only=False).astype(np.int32)
        new = np.flatnonzero(to_global < 0)
        if len(new):
            first = len(self.known)
            to_global[new] = np.arange(first, first + len(new))
            fresh = distinct.take(pa.array(new))
            self.known = pa.concat_arrays([self.known, fresh])
            self.counts = np.concatenate([self.counts, np.zeros(len(new), np.int64)])
            if self.on_new_tags is not None:
                self.on_new_tags(first, fresh)
        indices = encoded.indices.to_numpy()
        start = 0
        for (index, _), (values, tally, tagged) in zip(group, scans, strict=True):
            task_global = to_global[indices[start : start + len(values)]]
            start += len(values)
            self.counts[task_global] += tally  # one-to-one within a task: no repeated index
            self.with_tag += tagged
            np.save(self.spill / f"{index:06d}.global.npy", task_global)


def scan_metadata(
    paths: list[str],
    spill: Path,
    workers: int | None = None,
    on_new_tags: Callable[[int, Any], None] | None = None,
    on_start: Callable[[], None] | None = None,
) -> TagPairs:
    """Scan every caption of `paths` (module docstring); `workers` defaults to the cores.
    `on_start()` runs here once the workers have their tasks (work to overlap the scan)."""
    tasks = plan_tasks(paths)
    spill.mkdir(parents=True, exist_ok=True)
    merged = _Merge(spill, on_new_tags)
    group: list[tuple[int, Path]] = []
    for result in _results(tasks, spill, workers or os.cpu_count() or 1):
        if result is None:
            if on_start is not None:
                on_start()
            continue
        group.append(result)
        if len(group) >= MERGE_GROUP:
            merged.add(group)
            group = []
    merged.add(group)
    known, counts, with_tag = merged.known, merged.counts, merged.with_tag
    return TagPairs(
        tasks=tasks,
        spill=spill,
        values=known,
        counts=counts,
        captions=sum(t.rows for t in tasks),
        captions_with_hashtag=with_tag,
    )
