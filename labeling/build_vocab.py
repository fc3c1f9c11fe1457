"""`curate build-vocab`: metadata captions -> WordNet class vocabulary and per-sample labels.

    curate build-vocab --root DIR [--min-count 2] [--max-classes K] [--cap T] [--seed 0]
                       [--source hashtags|caption|both] [--non-visual-dominance 8]
                       [--pos-dominance 5] [--sense-map FILE]
                       [--context-senses] [--engine arrays|sql]

reads  DIR/metadata/*.parquet  (uid, caption; `curate ingest` writes it)
writes DIR/vocab/vocab.parquet, DIR/vocab/hashtags.parquet, DIR/vocab/meta.json
       DIR/labels/part-*.parquet, DIR/labels/meta.json
(schemas: `labeling.vocab` writers and architecture.md). Both folders are staged and
renamed into place, labels first, so a complete `vocab/meta.json` means both are done.
meta.json counts: captions, captions_with_hashtag, captions_with_label,
samples_kept_after_cap, distinct_hashtags, hashtags_by_reason, classes_mapped,
classes_after_min_count, classes_after_max_classes, mean_labels_per_sample, vocab_hash,
seconds_by_step (wall); the array engine also cpu_seconds_by_step (all processes, by
pass); with --context-senses also ambiguous_hashtags, senses_moved_by_context; with
--sense-map also sense_map_words, sense_map_sha256 (its entries, `labeling.sense_map`).
With `--source caption|both` a caption's words count as its tags (captions_with_hashtag,
distinct_hashtags then include them; hashtags.parquet's `kind` tells them apart).

How hashtags become classes: `labeling.mapper` (rules, ambiguity, stoplist, visual filter);
caption words: `labeling.hashtags.words_sql` and `HashtagMapper.map_word`; the per-caption
context rule: `labeling.context`; how classes become labels, the cap and the weights:
`labeling.vocab`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from curation.errors import UsageError
from curation.layout import DatasetRoot, require_parquet, staged_dir, write_meta
from curation.options import parse_options

if TYPE_CHECKING:
    from labeling.sense_map import SenseMap

LABELS_PART = "part-00000.parquet"
SPILL = ".duckdb-tmp-build-vocab"  # DIR/SPILL-PID: one run's spill folder
EXIT_FAILURE = 1  # a runtime failure (a worker died), as opposed to bad input (exit 2)


@dataclass(frozen=True)
class BuildVocabOptions:
    """Map caption hashtags to WordNet noun classes; write DIR/vocab and DIR/labels."""

    root: str = field(metadata={"help": "dataset folder (reads ROOT/metadata)"})
    min_count: int = field(default=2, metadata={"help": "drop classes on fewer samples"})
    max_classes: int | None = field(
        default=None, metadata={"help": "keep only the K most frequent classes"}
    )
    cap: int | None = field(
        default=None, metadata={"help": "frequency cap: keep about T samples per head class"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the frequency cap's coin"})
    extra_stoplist: tuple[str, ...] = field(
        default=(), metadata={"help": "more meta tags to ignore (added to the built-in list)"}
    )
    sense_rule: str = field(
        default="frequent_visual",
        metadata={"choices": ("frequent_visual", "first_visual", "first"), "help": "which "
                  "noun sense of an ambiguous word becomes the class (see labeling/senses.py)"},
    )  # fmt: skip
    non_visual_dominance: float = field(
        default=8.0,
        metadata={"help": "a word whose most frequent sense is non-visual and outweighs its "
                  "visual senses this many times (tagged counts) is non_visual; 0: off"},
    )  # fmt: skip
    pos_dominance: float = field(
        default=5.0,
        metadata={"help": "a one-word tag used as an adjective this many times as often as "
                  "in its visual noun senses (SemCor) is not_noun (labeling/pos_dominance.py); "
                  "0: off"},
    )  # fmt: skip
    sense_map: str | None = field(
        default=None,
        metadata={"metavar": "FILE", "help": "your own word -> wnid decisions, one 'word "
                  "wnid' a line, over the sense rule (labeling/sense_map.py)"},
    )  # fmt: skip
    source: str = field(
        default="hashtags",
        metadata={"choices": ("hashtags", "caption", "both"), "help": "labels from the "
                  "caption's hashtags, from its words (corpora without hashtags), or both"},
    )  # fmt: skip
    context_senses: bool = field(
        default=False,
        metadata={"help": "choose an ambiguous tag's sense per caption from its other tags "
                  "and words (labeling/context.py)"},
    )  # fmt: skip
    memory_limit: str = field(default="4GB", metadata={"help": "DuckDB memory limit"})
    engine: str = field(
        default="arrays",
        metadata={"choices": ("arrays", "sql"), "help": "arrays: numpy over Arrow buffers "
                  "(hashtags without --context-senses; otherwise sql is used); sql: the "
                  "DuckDB path, same outputs (labels sorted by uid over the whole file)"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise UsageError(f"--min-count must be >= 1, got {self.min_count}")
        if self.max_classes is not None and self.max_classes < 1:
            raise UsageError(f"--max-classes must be >= 1, got {self.max_classes}")
        if self.cap is not None and self.cap < 1:
            raise UsageError(f"--cap must be >= 1, got {self.cap}")


def build_vocab(opts: BuildVocabOptions) -> dict:
    """Run the stage; return the counts written to both meta.json files.

    Hashtags alone without the context rule (the default) take the array path:
    `labeling.tag_pairs` scans the captions in worker processes while this one loads
    WordNet and maps each new tag as it turns up, then `labeling.label_arrays` builds
    classes and labels over integer pairs. Caption words (`--source caption|both`) and
    `--context-senses` take the SQL path of `labeling.vocab`; both write the same files.
    """
    import duckdb

    from labeling import vocab
    from labeling.sense_map import read_sense_map, sense_map_digest
    from labeling.vocab_file import vocab_hash

    started = time.time()
    root = DatasetRoot(opts.root)
    metadata_glob = require_parquet(root.metadata, "metadata", "curate ingest")
    sense_map = None if opts.sense_map is None else read_sense_map(opts.sense_map)
    remove_dead_spills(root.root)
    spill = root.root / f"{SPILL}-{os.getpid()}"  # DuckDB and the array path spill here
    shutil.rmtree(spill, ignore_errors=True)
    opened: list[Any] = []

    def connect() -> Any:
        con = duckdb.connect(
            config={"memory_limit": opts.memory_limit, "temp_directory": str(spill)}
        )
        con.execute("SET enable_progress_bar = false")
        opened.append(con)
        return con

    try:
        if engine_used(opts) == "arrays":
            # DuckDB opens after the last fork: its threads must not exist when workers fork
            counts, mapper, write_labels = _build_from_arrays(
                opts, sense_map, connect, metadata_glob, spill
            )
        else:
            counts, mapper, write_labels = _build_in_sql(opts, sense_map, connect(), metadata_glob)
        if sense_map is not None:
            counts["sense_map_words"] = len(sense_map.wnids)
            counts["sense_map_sha256"] = sense_map_digest(sense_map.wnids)
        config = dataclasses.replace(opts, engine=engine_used(opts))  # meta.json: what ran
        con = opened[0]
        clock, cpu_clock = time.perf_counter(), time.process_time()
        with staged_dir(root.vocab) as vocab_dir:
            with staged_dir(root.labels) as labels_dir:
                write_labels(labels_dir)
                wnids = vocab.write_vocab(con, mapper, vocab_dir / "vocab.parquet")
                counts["vocab_hash"] = vocab_hash(wnids)
                write_meta(labels_dir, config=config, counts=counts, started=started)
            vocab.write_hashtags(con, vocab_dir / "hashtags.parquet")
            write_meta(vocab_dir, config=config, counts=counts, started=started)
        counts["seconds_by_step"]["write"] = round(time.perf_counter() - clock, 3)
        if "cpu_seconds_by_step" in counts:
            counts["cpu_seconds_by_step"]["write"] = round(time.process_time() - cpu_clock, 3)
    finally:
        for con in opened:
            con.close()
        shutil.rmtree(spill, ignore_errors=True)
        gc.unfreeze()  # a caller that goes on (tests) gets its collector back as it was
    return counts


def engine_used(opts: BuildVocabOptions) -> str:
    """The engine that runs: `arrays` covers hashtags without the context rule; anything
    else takes the SQL path whatever --engine says. meta.json's config.engine records it."""
    if opts.engine == "arrays" and opts.source == "hashtags" and not opts.context_senses:
        return "arrays"
    return "sql"


def remove_dead_spills(root: Path) -> list[Path]:
    """Remove the spill folders (root/SPILL-PID) of runs whose PID is gone, and the
    unsuffixed SPILL of older versions: a killed run cannot clean up after itself, and a
    run never reads another's folder. Folders of live runs stay. Returns what was removed."""
    from curation.layout import remove_dead_run_folders

    legacy = root / SPILL
    removed = [legacy] if legacy.is_dir() else []
    shutil.rmtree(legacy, ignore_errors=True)
    return removed + remove_dead_run_folders(sorted(root.glob(f"{SPILL}-*")))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while WordNet loads, and its objects frozen afterwards.

    Loading creates millions of objects that live as long as the process and hold no
    garbage: each full collection walks all of them (~0.1 s each, ~0.5-0.9 s a run), and in
    a forked worker the walk also writes to every shared page, copying it. Frozen objects
    are out of the collector's sight here and in every worker forked later;
    `build_vocab` unfreezes them when it ends."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.freeze()


def _new_mapper(opts: BuildVocabOptions, sense_map: SenseMap | None) -> Any:
    from labeling.mapper import HashtagMapper, UnknownWnid

    try:
        return HashtagMapper(
            extra_stoplist=opts.extra_stoplist, sense_rule=opts.sense_rule,
            non_visual_dominance=opts.non_visual_dominance, pos_dominance=opts.pos_dominance,
            sense_map=sense_map.wnids if sense_map else None,
        )  # fmt: skip
    except UnknownWnid as err:  # a wnid of the sense map that WordNet does not have
        assert sense_map is not None
        raise UsageError(
            f"{sense_map.where(err.word)} -> {err.wnid}: no WordNet 3.0 noun synset has this wnid"
        ) from None


def _build_in_sql(
    opts: BuildVocabOptions, sense_map: SenseMap | None, con: Any, metadata_glob: str
) -> tuple:
    """The SQL path: (counts, mapper, write_labels(folder)); one part, sorted by uid."""
    from labeling import vocab

    clock = time.perf_counter()
    mapper = _new_mapper(opts, sense_map)  # UsageError here when WordNet is missing
    load_seconds = round(time.perf_counter() - clock, 3)
    counts = vocab.build_tables(
        con, metadata_glob, mapper, min_count=opts.min_count, max_classes=opts.max_classes,
        cap=opts.cap, seed=opts.seed, source=opts.source, context_senses=opts.context_senses,
    )  # fmt: skip
    counts["seconds_by_step"] = {"load_wordnet": load_seconds, **counts["seconds_by_step"]}
    return counts, mapper, lambda folder: vocab.write_labels(con, folder / LABELS_PART)


def _build_from_arrays(
    opts: BuildVocabOptions,
    sense_map: SenseMap | None,
    connect: Any,
    metadata_glob: str,
    spill: Path,
) -> tuple:
    """The array path: (counts, mapper, write_labels(folder)); one part per metadata row
    group (`label_arrays.write_labels`).

    Timeline: the scan workers start; meanwhile this process loads WordNet
    (`load_wordnet`) and forks a `MappingPool` that maps each batch of new tags while the
    scan goes on. `count_hashtags` is the scan's wall time (the load included);
    `map_hashtags` only the wait for the mapping after the scan ended. `connect()` opens
    DuckDB only after `label_arrays.build_arrays` (whose passes fork too) has returned, so
    no DuckDB thread exists when any of those workers fork."""
    import glob

    from labeling import label_arrays, tag_pairs
    from labeling.tag_map_pool import MappingPool
    from labeling.worker_pool import cpu_seconds

    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    seconds: dict[str, float] = {"load_wordnet": 0.0}
    cpu: dict[str, float] = {"load_wordnet": 0.0}
    state: dict[str, Any] = {"mapper": None, "pool": None}

    def load() -> Any:
        if state["mapper"] is None:
            clock, cpu_clock = time.perf_counter(), time.process_time()
            with _collector_paused():
                state["mapper"] = _new_mapper(opts, sense_map)  # UsageError: no WordNet
            seconds["load_wordnet"] = round(time.perf_counter() - clock, 3)
            cpu["load_wordnet"] = round(time.process_time() - cpu_clock, 3)
            state["pool"] = MappingPool(state["mapper"], workers)
        return state["mapper"]

    def on_new_tags(first: int, values: Any) -> None:
        load()
        state["pool"].submit(values.to_pylist())

    try:
        clock, cpu_clock = time.perf_counter(), cpu_seconds()
        paths = sorted(glob.glob(metadata_glob))
        pairs = tag_pairs.scan_metadata(paths, spill / "pairs", workers, on_new_tags, load)
        seconds["count_hashtags"] = round(time.perf_counter() - clock, 3)
        clock = time.perf_counter()
        mapper = load()
        mapped = state["pool"].columns()
        seconds["map_hashtags"] = round(time.perf_counter() - clock, 3)
    finally:
        if state["pool"] is not None:
            state["pool"].close()
    # scan workers, merges here, mapping workers (the WordNet load apart): all joined now
    cpu["scan_and_map"] = round(cpu_seconds() - cpu_clock - cpu["load_wordnet"], 3)
    labels = spill / "labels"
    counts: dict[str, Any] = {
        "captions": pairs.captions,
        "captions_with_hashtag": pairs.captions_with_hashtag,
        "distinct_hashtags": len(pairs.values),
        "hashtags_mapped": sum(r is None for r in mapped["reason"]),
    }
    built, tables = label_arrays.build_arrays(
        pairs, mapped, labels, min_count=opts.min_count,
        max_classes=opts.max_classes, cap=opts.cap, seed=opts.seed, workers=workers,
    )  # fmt: skip
    counts |= built
    label_arrays.register_tables(connect(), tables)  # every fork is done: DuckDB may start
    counts["seconds_by_step"] = {**seconds, **counts["seconds_by_step"]}
    counts["cpu_seconds_by_step"] = {**cpu, **counts["cpu_seconds_by_step"]}

    def move_labels(folder: Path) -> None:
        for part in sorted(labels.iterdir()):
            os.replace(part, folder / part.name)

    return counts, mapper, move_labels


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0; 2 on bad input (`UsageError`, via the caller); 1 with one line on stderr when
    a worker process died (`WorkerDied`: a runtime failure, typically out of memory)."""
    from labeling.worker_pool import WorkerDied

    opts = parse_options(BuildVocabOptions, argv, prog="curate build-vocab")
    try:
        counts = build_vocab(opts)
    except WorkerDied as err:
        print(f"error: curate build-vocab: {err}", file=sys.stderr)
        return EXIT_FAILURE
    print(
        f"{counts['classes_after_max_classes']} classes from {counts['distinct_hashtags']} "
        f"distinct hashtags; {counts['captions_with_label']} of {counts['captions']} captions "
        f"labeled, {counts['samples_kept_after_cap']} kept after the cap -> "
        f"{DatasetRoot(opts.root).vocab}, {DatasetRoot(opts.root).labels}"
    )
    return 0
