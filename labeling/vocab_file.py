"""Reading `DIR/vocab/vocab.parquet`, the vocabulary's fingerprint, and the labels' columns.

The fingerprint (`vocab_hash`) is the sha256 of the class wnids joined by newlines in
class_id order. Shards and WSP checkpoints carry it, so a head trained on one vocabulary is
never silently scored against another.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from curation.errors import UsageError

# DIR/labels/part-*.parquet (architecture.md): (column, type as pyarrow prints it; float is
# float32), in order: what `label_arrays.write_labels` (array engine) and `vocab.write_labels`
# (SQL engine) write, as tests/labeling/test_label_arrays.py checks for both; `curate shard`
# reads LABEL_COLUMNS. No wnids: class_id c is row c of vocab.parquet.
LABEL_SCHEMA = (
    ("uid", "string"), ("class_ids", "list<int32>"), ("hashtags", "list<string>"),
    ("keep", "bool"), ("weight", "float"),
)  # fmt: skip
LABEL_COLUMNS = tuple(name for name, _ in LABEL_SCHEMA)


def vocab_hash(wnids: list[str]) -> str:
    return hashlib.sha256("\n".join(wnids).encode()).hexdigest()


def read_vocab(vocab_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of vocab.parquet sorted by class_id; checks that ids run 0..K-1."""
    import pyarrow.parquet as pq

    path = Path(vocab_dir) / "vocab.parquet"
    if not path.exists():
        raise UsageError(f"no vocabulary at {path}: run `curate build-vocab` first")
    rows = sorted(pq.read_table(path).to_pylist(), key=lambda r: r["class_id"])
    if [r["class_id"] for r in rows] != list(range(len(rows))):
        raise UsageError(f"{path}: class_id must run 0..K-1 without gaps")
    return rows
