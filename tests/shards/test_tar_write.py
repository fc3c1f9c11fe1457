"""shards.tar_write's helpers on their own: label rows read block by block."""

from __future__ import annotations

import pyarrow as pa

from shards.tar_write import LabelBlocks


def test_label_blocks_give_each_rows_values_across_blocks() -> None:
    """Rows asked for in ascending order, with gaps, repeats and block edges (20,000 rows,
    blocks of 8,192), give the table's own values, list columns included."""
    n = 20_000
    table = pa.table(
        {
            "uid": [f"u{i:05d}" for i in range(n)],
            "class_ids": [[i % 7, i % 11] for i in range(n)],
            "split": ["val" if i % 5 == 0 else "train" for i in range(n)],
        }
    )
    blocks = LabelBlocks(table)
    edges = [0, 1, 8191, 8191, 8192, 8193, 16383, 16384, 19999]
    for row in sorted({*edges, *range(0, n, 997)}):
        assert blocks.value("uid", row) == f"u{row:05d}"
        assert blocks.value("class_ids", row) == [row % 7, row % 11]
        assert blocks.value("split", row) == ("val" if row % 5 == 0 else "train")
