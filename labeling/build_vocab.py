"""`curate build-vocab`: metadata captions -> WordNet class vocabulary and per-sample labels.

    curate build-vocab --root DIR [--min-count 2] [--max-classes K] [--cap T] [--seed 0]
                       [--source hashtags|caption|both] [--non-visual-dominance 8]
                       [--context-senses]

reads  DIR/metadata/*.parquet  (uid, caption; `curate ingest` writes it)
writes DIR/vocab/vocab.parquet, DIR/vocab/hashtags.parquet, DIR/vocab/meta.json
       DIR/labels/part-00000.parquet, DIR/labels/meta.json
(schemas: `labeling.vocab` writers and architecture.md). Both folders are staged and
renamed into place, labels first, so a complete `vocab/meta.json` means both are done.
meta.json counts: captions, captions_with_hashtag, captions_with_label,
samples_kept_after_cap, distinct_hashtags, hashtags_by_reason, classes_mapped,
classes_after_min_count, classes_after_max_classes, mean_labels_per_sample, vocab_hash,
seconds_by_step; with --context-senses also ambiguous_hashtags, senses_moved_by_context.
With `--source caption|both` a caption's words count as its tags (captions_with_hashtag,
distinct_hashtags then include them; hashtags.parquet's `kind` tells them apart).

How hashtags become classes: `labeling.mapper` (rules, ambiguity, stoplist, visual filter);
caption words: `labeling.hashtags.words_sql` and `HashtagMapper.map_word`; the per-caption
context rule: `labeling.context`; how classes become labels, the cap and the weights:
`labeling.vocab`.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from curation.errors import UsageError
from curation.layout import DatasetRoot, require_parquet, staged_dir, write_meta
from curation.options import parse_options

LABELS_PART = "part-00000.parquet"


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

    def __post_init__(self) -> None:
        if self.min_count < 1:
            raise UsageError(f"--min-count must be >= 1, got {self.min_count}")
        if self.max_classes is not None and self.max_classes < 1:
            raise UsageError(f"--max-classes must be >= 1, got {self.max_classes}")
        if self.cap is not None and self.cap < 1:
            raise UsageError(f"--cap must be >= 1, got {self.cap}")


def build_vocab(opts: BuildVocabOptions) -> dict:
    """Run the stage; return the counts written to both meta.json files."""
    import duckdb

    from labeling import vocab
    from labeling.mapper import HashtagMapper
    from labeling.vocab_file import vocab_hash

    started = time.time()
    root = DatasetRoot(opts.root)
    metadata_glob = require_parquet(root.metadata, "metadata", "curate ingest")
    # UsageError here when WordNet is missing
    clock = time.perf_counter()
    mapper = HashtagMapper(
        extra_stoplist=opts.extra_stoplist, sense_rule=opts.sense_rule,
        non_visual_dominance=opts.non_visual_dominance,
    )  # fmt: skip
    load_seconds = round(time.perf_counter() - clock, 3)
    spill = root.root / ".duckdb-tmp-build-vocab"  # DuckDB spills here past memory_limit
    con = duckdb.connect(config={"memory_limit": opts.memory_limit, "temp_directory": str(spill)})
    con.execute("SET enable_progress_bar = false")
    try:
        counts = vocab.build_tables(
            con, metadata_glob, mapper, min_count=opts.min_count,
            max_classes=opts.max_classes, cap=opts.cap, seed=opts.seed, source=opts.source,
            context_senses=opts.context_senses,
        )  # fmt: skip
        counts["seconds_by_step"] = {"load_wordnet": load_seconds, **counts["seconds_by_step"]}
        clock = time.perf_counter()
        with staged_dir(root.vocab) as vocab_dir:
            with staged_dir(root.labels) as labels_dir:
                vocab.write_labels(con, labels_dir / LABELS_PART)
                wnids = vocab.write_vocab(con, mapper, vocab_dir / "vocab.parquet")
                counts["vocab_hash"] = vocab_hash(wnids)
                write_meta(labels_dir, config=opts, counts=counts, started=started)
            vocab.write_hashtags(con, vocab_dir / "hashtags.parquet")
            write_meta(vocab_dir, config=opts, counts=counts, started=started)
        counts["seconds_by_step"]["write"] = round(time.perf_counter() - clock, 3)
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(BuildVocabOptions, argv, prog="curate build-vocab")
    counts = build_vocab(opts)
    print(
        f"{counts['classes_after_max_classes']} classes from {counts['distinct_hashtags']} "
        f"distinct hashtags; {counts['captions_with_label']} of {counts['captions']} captions "
        f"labeled, {counts['samples_kept_after_cap']} kept after the cap -> "
        f"{DatasetRoot(opts.root).vocab}, {DatasetRoot(opts.root).labels}"
    )
    return 0
