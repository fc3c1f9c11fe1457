"""The vocabulary and per-sample labels over integer arrays: `curate build-vocab`'s default path.

Same rules and outputs as the SQL path in `labeling.vocab` (class counts, min_count,
max_classes, class order, the cap coin, the weights; `tests/labeling/test_label_arrays.py`
runs both on the same captions), but every step after the scan works on the integer pairs
of `labeling.tag_pairs` (caption row, tag id) instead of strings:

    tag_sid    int32 [T]   tag id -> synset number (sid, wnid order) or -1 (no label)
    class_of   int32 [S]   sid -> class_id or -1
    per task   samples, class_ids, hashtag ids, keep: numpy arrays, spilled (`labeling.spill`)

Passes over the spilled pairs, each one task (metadata row group) at a time in forked
workers (`_per_task`): count samples per synset (and spill the pairs whose tag maps to a
synset); look classes up on those, toss the cap coins, count kept samples per class; sum
the raw weights (without `--cap` every sample is kept, the kept counts are known before,
and the assign pass sums them); weigh and write. Memory: one row group per worker plus
per-tag and per-class arrays. Only the writer touches strings again (uids, tags); labels
carry no wnids (a class's wnid is its row of vocab.parquet).

Differences from the SQL path, both stated in the output contract: labels are written as
one part per metadata row group (`part-NNNNN.parquet`, NNNNN the row group's task index),
in metadata order and sorted by uid within a part (the SQL path writes one part sorted by
uid); weights are summed in float64 in class order (the SQL path sums DECIMAL(38, 18)), so a
weight can differ in its last float32 bit.

The small tables `classes`, `kept_counts` and `tag_final` go to DuckDB (`register_tables`,
once every fork is done) so the vocabulary and hashtag writers of `labeling.vocab` serve
both paths.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from curation.errors import UsageError
from labeling.spill import load_arrays, save_arrays
from labeling.tag_pairs import TagPairs, read_column
from labeling.tag_scan import distinct_per_row
from labeling.vocab import cap_coin
from labeling.worker_pool import cpu_seconds


def synset_numbers(wnids: list[str | None], reasons: list[str | None]) -> tuple[np.ndarray, list]:
    """(tag_sid int32 [T], synsets: the wnids a label can come from, sorted; sid = index)."""
    synsets = sorted({w for w, r in zip(wnids, reasons, strict=True) if r is None})
    sid_of = {w: i for i, w in enumerate(synsets)}
    tag_sid = np.array(
        [sid_of[w] if r is None else -1 for w, r in zip(wnids, reasons, strict=True)], np.int32
    )
    return tag_sid, synsets


# What the per-task functions read; set before the pool forks (`_per_task`).
_STATE: dict[str, Any] = {}


def _per_task(
    function: Any, tasks: list, state: dict[str, Any], workers: int, stage: str = "labels"
) -> Iterator:
    """`function(task)` for every task, in order, in `workers` processes forked with `state`
    (the large arrays reach the workers through the fork, not through pickles). Results
    are yielded as they come, so per-task results never pile up. A dead worker raises
    `labeling.worker_pool.WorkerDied` naming `stage`."""
    import multiprocessing

    from labeling.worker_pool import forked_executor, ordered

    _STATE.clear()
    _STATE.update(state)
    if workers <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(function, tasks)
        return
    with forked_executor(min(workers, len(tasks))) as pool:
        yield from ordered(pool, stage, function, tasks)


def _mapped_path(pairs: TagPairs, task: Any) -> Path:
    return pairs.spill / f"{task.index:06d}.mapped"


def _count_task(task: Any) -> np.ndarray:
    pairs = _STATE["pairs"]
    rows, ids, to_global = pairs.batch_pairs(task)
    # synset per batch tag, then per pair: one gather over the pairs instead of two
    sids = _STATE["tag_sid"][to_global][ids]
    mapped = sids >= 0
    rows, ids, sids = rows[mapped], ids[mapped], sids[mapped]
    save_arrays(_mapped_path(pairs, task), rows=rows, tags=to_global[ids], sids=sids)
    first = distinct_per_row(rows, sids)
    return np.bincount(sids[first], minlength=_STATE["n_synsets"])


def count_synsets(
    pairs: TagPairs, tag_sid: np.ndarray, n_synsets: int, workers: int = 1
) -> np.ndarray:
    """Samples per synset (int64 [S]): a sample counts once per synset, through any tag.
    Also spills each task's mapped pairs (`NNNNNN.mapped`: rows, global tag ids, sids;
    ~1 in 4 pairs on the bench corpus), which `assign` reads instead of all pairs."""
    state = {"pairs": pairs, "tag_sid": tag_sid, "n_synsets": n_synsets}
    counts = np.zeros(n_synsets, np.int64)
    for partial in _per_task(_count_task, pairs.tasks, state, workers, "count synsets"):
        counts += partial
    return counts


def choose_classes(counts: np.ndarray, min_count: int, max_classes: int | None) -> np.ndarray:
    """The sids that become classes, in class_id order (count descending, then wnid)."""
    eligible = np.flatnonzero(counts >= min_count)
    order = eligible[np.lexsort((eligible, -counts[eligible]))]  # sid order is wnid order
    return order if max_classes is None else order[:max_classes]


def final_reasons(
    reasons: list[str | None], tag_sid: np.ndarray, synset_counts: np.ndarray,
    class_of: np.ndarray, min_count: int,
) -> list[str | None]:  # fmt: skip
    """Each tag's reason with `below_min_count` and `beyond_max_classes` added."""
    out = list(reasons)
    tags = np.flatnonzero(tag_sid >= 0)
    sids = tag_sid[tags]
    below = synset_counts[sids] < min_count
    for tag in tags[below].tolist():
        out[tag] = "below_min_count"
    for tag in tags[~below & (class_of[sids] < 0)].tolist():
        out[tag] = "beyond_max_classes"
    return out


def _coins(uids: Any, sample_rows: np.ndarray, cls: np.ndarray, wnids: list, seed: int) -> Any:
    """`vocab.cap_coin` of each (sample, class) pair (float64 [len(cls)])."""
    text = uids.to_pylist()
    return np.array(
        [cap_coin(seed, text[r], wnids[c]) for r, c in zip(sample_rows, cls, strict=True)],
        np.float64,
    )


def by_row_then_rank(rows: np.ndarray, ranks: np.ndarray) -> np.ndarray:
    """The order (int64 [P]) of pairs by row, then rank; `rows` int32 ascending, `ranks`
    below 2**31 (tag ids are int32). One int64 key: row << 32 | rank is below 2**63 for any
    int32 row (a 40-bit shift overflowed for row groups of 2**23 rows or more)."""
    key = rows.astype(np.int64) << 32 | ranks.astype(np.int64)
    return np.argsort(key, kind="stable")  # rows ascending already: timsort's best case


def _starts(sorted_rows: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values."""
    return (
        np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
        if len(sorted_rows)
        else np.zeros(0, np.int64)
    )


def _assign_task(task: Any) -> tuple[np.ndarray, int, int, int, tuple[float, int] | None]:
    """One task of `assign`: spill its labels; (kept per class, samples, kept, labels,
    `_weight_sum_task`'s result when the kept counts are known up front, else None)."""
    pairs, threshold = _STATE["pairs"], _STATE["threshold"]
    mapped = load_arrays(_mapped_path(pairs, task))
    rows, ids, cls = mapped["rows"], mapped["tags"], _STATE["class_of"][mapped["sids"]]
    hit = cls >= 0
    if not hit.all():  # synsets below --min-count or beyond --max-classes
        rows, ids, cls = rows[hit], ids[hit], cls[hit]
    # hashtags: the tags that gave a class, sorted by tag within a sample
    order = by_row_then_rank(rows, _STATE["tag_rank"][ids])
    tag_rows, tag_ids = rows[order], ids[order]
    # classes: distinct per sample, ascending
    key = np.sort(rows.astype(np.int64) << 32 | cls.astype(np.int64), kind="stable")
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    class_rows, classes = (key >> 32).astype(np.int32), (key & 0xFFFFFFFF).astype(np.int32)
    starts = _starts(class_rows)
    samples = class_rows[starts]
    won = np.ones(len(classes), np.bool_)
    tossed = threshold[classes] < 1.0
    if tossed.any():
        uids = read_column(task, "uid")
        coins = _coins(uids, class_rows[tossed], classes[tossed], _STATE["wnids"], _STATE["seed"])
        won[tossed] = coins < threshold[classes[tossed]]
    keep = np.logical_or.reduceat(won, starts) if len(starts) else np.zeros(0, np.bool_)
    pair_keep = np.repeat(keep, np.diff(np.r_[starts, len(classes)]))
    save_arrays(
        pairs.spill / f"labels-{task.index:06d}", samples=samples, starts=starts,
        classes=classes, keep=keep, tag_rows=tag_rows, tag_ids=tag_ids,
    )  # fmt: skip
    kept = np.bincount(classes[pair_keep], minlength=len(threshold))
    inverse_sqrt = _STATE.get("inverse_sqrt")
    weights = None
    if inverse_sqrt is not None:  # no cap: the weights' sum needs no pass of its own
        raw = _raw_weights({"starts": starts, "classes": classes}, inverse_sqrt)[keep]
        weights = (math.fsum(raw.tolist()), len(raw))
    return kept, len(samples), int(keep.sum()), len(classes), weights


def assign(
    pairs: TagPairs, tag_sid: np.ndarray, class_of: np.ndarray, class_counts: np.ndarray,
    wnids: list[str], tag_rank: np.ndarray, cap: int | None, seed: int, workers: int = 1,
) -> tuple[np.ndarray, dict[str, Any], list[tuple[float, int]] | None]:  # fmt: skip
    """Per task: labeled samples, their classes (ascending), their hashtags (by tag), the
    cap's keep flag; spilled as labels-NNNNNN. Returns kept samples per class, the
    label counts, and without a cap (every sample kept: kept counts = `class_counts`) the
    per-task weight sums that `write_labels` would otherwise compute in a pass of its own."""
    n_classes = len(class_counts)
    threshold = np.ones(n_classes) if cap is None else np.minimum(1.0, cap / class_counts)
    state = {
        "pairs": pairs, "tag_sid": tag_sid, "class_of": class_of, "threshold": threshold,
        "wnids": wnids, "tag_rank": tag_rank, "seed": seed,
    }  # fmt: skip
    if cap is None:
        state["inverse_sqrt"] = _inverse_sqrt(class_counts)
    kept_counts = np.zeros(n_classes, np.int64)
    labeled = kept = labels = 0
    sums: list[tuple[float, int]] | None = [] if cap is None else None
    for partial, samples, kept_samples, pair_count, weights in _per_task(
        _assign_task, pairs.tasks, state, workers, "assign labels"
    ):
        kept_counts += partial
        labeled, kept, labels = labeled + samples, kept + kept_samples, labels + pair_count
        if sums is not None:
            sums.append(weights)
    if sums is not None and not np.array_equal(kept_counts, class_counts):
        sums = None  # cannot happen (each sample counts once per class); then the pass runs
    return (
        kept_counts,
        {
            "captions_with_label": labeled,
            "samples_kept_after_cap": kept,
            "mean_labels_per_sample": round(labels / labeled, 4) if labeled else 0.0,
        },
        sums,
    )


def _inverse_sqrt(kept_counts: np.ndarray) -> np.ndarray:
    """1 / sqrt(kept samples) per class (float64 [C]); 1 for a class with none kept."""
    return 1.0 / np.sqrt(np.where(kept_counts > 0, kept_counts, 1))


def _raw_weights(saved: Any, inverse_sqrt: np.ndarray) -> np.ndarray:
    """Mean over a sample's classes of 1 / sqrt(kept samples of the class) (float64 [N])."""
    starts, classes = saved["starts"], saved["classes"]
    if len(starts) == 0:
        return np.zeros(0)
    return np.add.reduceat(inverse_sqrt[classes], starts) / np.diff(np.r_[starts, len(classes)])


# Parquet dictionary pages for the columns whose values repeat: not `uid` (distinct, so a
# dictionary only costs hashing until it outgrows its page and falls back; plain is ~5%
# smaller too) nor `weight` (hashing it cost ~5 ms a 80k-row part for no smaller file).
DICT_COLUMNS = ["class_ids.list.element", "hashtags.list.element", "keep"]
# Min/max statistics where a reader can use them (uid ranges: parts are sorted by uid); the
# string lists' min/max cost ~3 ms a part and answer no query.
STATISTICS_COLUMNS = ["uid", "class_ids.list.element", "keep", "weight"]


def _weight_sum_task(task: Any) -> tuple[float, int]:
    saved = load_arrays(_STATE["pairs"].spill / f"labels-{task.index:06d}")
    raw = _raw_weights(saved, _STATE["inverse_sqrt"])[saved["keep"]]
    return math.fsum(raw.tolist()), len(raw)


def _regroup(offsets: np.ndarray, values: np.ndarray, order: np.ndarray) -> tuple:
    """Lists (offsets [N+1], values) in a new row order: (offsets, values) permuted."""
    lengths = np.diff(offsets)[order]
    new_offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
    shift = np.repeat(offsets[:-1][order] - new_offsets[:-1], lengths)
    return new_offsets, values[np.arange(new_offsets[-1]) + shift]


def _write_task(task: Any) -> int:
    """Write one labels part (module docstring of `write_labels`); return its rows.
    Rows are put in uid order on the integer arrays, before any string list is built."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pairs = _STATE["pairs"]
    saved = load_arrays(pairs.spill / f"labels-{task.index:06d}")
    samples, starts, classes = saved["samples"], saved["starts"], saved["classes"]
    keep, tag_rows, tag_ids = saved["keep"], saved["tag_rows"], saved["tag_ids"]
    weight = np.where(keep, _raw_weights(saved, _STATE["inverse_sqrt"]) / _STATE["mean"], 0.0)
    uids = read_column(task, "uid").take(pa.array(samples, pa.int32())).cast(pa.string())
    class_offsets = np.r_[starts, len(classes)].astype(np.int32)
    tag_offsets = np.searchsorted(tag_rows, np.r_[samples, samples[-1] + 1] if len(samples) else 0)
    tag_offsets = np.atleast_1d(tag_offsets).astype(np.int32)
    # `curate ingest` writes metadata sorted by uid, so rows usually are in uid order already
    # (~18 ms a 80k-row part saved: the string sort and the list regrouping)
    if not in_order(uids):
        order = pc.sort_indices(uids).to_numpy()
        uids, keep, weight = uids.take(pa.array(order)), keep[order], weight[order]
        class_offsets, classes = _regroup(class_offsets, classes, order)
        tag_offsets, tag_ids = _regroup(tag_offsets, tag_ids, order)
    table = pa.table(
        {
            "uid": uids,
            "class_ids": pa.ListArray.from_arrays(class_offsets, pa.array(classes, pa.int32())),
            "hashtags": pa.ListArray.from_arrays(tag_offsets, pairs.values.take(tag_ids)),
            "keep": pa.array(keep, pa.bool_()),
            "weight": pa.array(weight.astype(np.float32)),
        }
    )
    pq.write_table(
        table, _STATE["folder"] / f"part-{task.index:05d}.parquet", use_dictionary=DICT_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
    )  # fmt: skip
    return len(table)


def in_order(uids: Any) -> bool:
    """Whether a string array is sorted (ties allowed: a stable sort would keep them)."""
    import pyarrow.compute as pc

    if len(uids) < 2:
        return True
    return bool(pc.all(pc.less_equal(uids.slice(0, len(uids) - 1), uids.slice(1))).as_py())


def write_labels(
    pairs: TagPairs, folder: Path, kept_counts: np.ndarray, workers: int = 1,
    weight_sums: list[tuple[float, int]] | None = None,
) -> None:  # fmt: skip
    """Write folder/part-NNNNN.parquet, one per metadata row group (NNNNN its task index),
    rows sorted by uid within a part.

    Columns: `vocab_file.LABEL_SCHEMA`; class_ids ascending, hashtags sorted (the tags that
    gave those classes), weight mean 1 over kept samples and 0 when not kept. No wnids:
    class_id c is row c of vocab.parquet (a list<string> of wnids per row cost about as
    much as the rest of the part). `weight_sums`: per task, (fsum of raw weights, kept
    samples) when `assign` computed them; else a pass does.
    """
    folder.mkdir(parents=True, exist_ok=True)
    state = {"pairs": pairs, "inverse_sqrt": _inverse_sqrt(kept_counts)}
    sums = weight_sums
    if sums is None:
        tasks = _per_task(_weight_sum_task, pairs.tasks, state, workers, "sum weights")
        sums = list(tasks)  # 2 numbers a task
    n_kept = sum(n for _, n in sums)
    state["mean"] = math.fsum(s for s, _ in sums) / n_kept if n_kept else 1.0
    state["folder"] = folder
    for _ in _per_task(_write_task, pairs.tasks, state, workers, "write labels"):
        pass


def build_arrays(
    pairs: TagPairs, mapped: dict[str, list], labels_folder: Path, *,
    min_count: int, max_classes: int | None, cap: int | None, seed: int, workers: int = 1,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Everything after the scan and the mapping: classes and labels (written to
    `labels_folder`). Returns (meta.json counts, the Arrow tables `classes`, `kept_counts`,
    `tag_final` for `register_tables`). No DuckDB here: its threads must not exist while
    the passes fork their workers, so the caller connects only afterwards."""
    import pyarrow as pa
    import pyarrow.compute as pc

    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    tag_sid, synsets = synset_numbers(mapped["wnid"], mapped["reason"])
    if len(synsets) == 0:
        raise UsageError(
            f"none of the {len(pairs.values)} distinct hashtags in {pairs.captions} "
            "captions maps to a visual WordNet noun: nothing to label"
        )
    cpu_clock = cpu_seconds()
    synset_counts = count_synsets(pairs, tag_sid, len(synsets), workers)
    cpu = {"count_synsets": round(cpu_seconds() - cpu_clock, 3)}
    chosen = choose_classes(synset_counts, min_count, max_classes)
    counted = int(np.count_nonzero(synset_counts))
    counts: dict[str, Any] = {
        "classes_mapped": counted,
        "classes_after_min_count": int(np.count_nonzero(synset_counts >= min_count)),
        "classes_after_max_classes": len(chosen),
    }
    if len(chosen) == 0:
        raise UsageError(
            f"no class has at least {min_count} samples (of {counted} mapped classes): "
            "lower --min-count"
        )
    class_of = np.full(len(synsets), -1, np.int32)
    class_of[chosen] = np.arange(len(chosen), dtype=np.int32)
    wnids = [synsets[s] for s in chosen]
    reasons = final_reasons(mapped["reason"], tag_sid, synset_counts, class_of, min_count)
    seconds["select_classes"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    tag_rank = np.empty(len(pairs.values), np.int64)
    # Arrow's stable sort by UTF-8 bytes is Python's order by code points (UTF-8 keeps it),
    # without a Python string per tag
    order = pc.sort_indices(pairs.values).to_numpy()
    tag_rank[order] = np.arange(len(pairs.values))
    cpu_clock = cpu_seconds()
    kept_counts, label_counts, weight_sums = assign(
        pairs, tag_sid, class_of, synset_counts[chosen], wnids, tag_rank, cap, seed, workers
    )
    cpu["assign_labels"] = round(cpu_seconds() - cpu_clock, 3)
    counts |= label_counts
    cpu_clock = cpu_seconds()
    write_labels(pairs, labels_folder, kept_counts, workers, weight_sums)
    cpu["write_labels"] = round(cpu_seconds() - cpu_clock, 3)
    seconds["assign_labels"] = round(time.perf_counter() - clock, 3)
    tables = {
        "classes": pa.table({
            "class_id": pa.array(np.arange(len(chosen), dtype=np.int32)),
            "wnid": pa.array(wnids, pa.string()), "count": pa.array(synset_counts[chosen]),
            "sid": pa.array(chosen.astype(np.int32)),
        }),
        "kept_counts": pa.table({
            "class_id": pa.array(np.arange(len(chosen), dtype=np.int32)),
            "kept_count": pa.array(kept_counts),
        }),
        "tag_final": pa.table({
            "hashtag": pairs.values, "count": pa.array(pairs.counts),
            "canonical": pa.array(mapped["canonical"], pa.string()),
            "wnid": pa.array(mapped["wnid"], pa.string()), "reason": pa.array(reasons, pa.string()),
        }),
    }  # fmt: skip
    by_reason: dict[str, int] = {}
    for reason in reasons:
        key = reason or "label"
        by_reason[key] = by_reason.get(key, 0) + 1
    counts["hashtags_by_reason"] = dict(sorted(by_reason.items()))
    counts["seconds_by_step"] = seconds
    counts["cpu_seconds_by_step"] = cpu
    return counts, tables


def register_tables(con: Any, tables: dict[str, Any]) -> None:
    """`build_arrays`' tables as DuckDB temp tables of the same names, which
    `vocab.write_vocab` and `vocab.write_hashtags` read."""
    for name, table in tables.items():
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")
