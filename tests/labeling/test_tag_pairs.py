"""labeling.tag_pairs: the scan's merge of batch dictionaries, by groups or one by one."""

from __future__ import annotations

import numpy as np
import pytest

from labeling import tag_pairs, tag_scan
from tests.labeling.test_label_arrays import corpus, write_parts


def scan(tmp_path, name, workers=2):
    return tag_pairs.scan_metadata(
        sorted(str(p) for p in (tmp_path / "metadata").glob("*.parquet")),
        tmp_path / name,
        workers,
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_grouped_merge_equals_one_by_one(tmp_path, monkeypatch, workers):
    """Tag ids, counts and every task's pairs are the same whether scan results are merged
    in groups, one at a time, or split again because a group's strings pass 2 GiB."""
    write_parts(tmp_path, corpus(4000, seed=2), files=3, row_group=250)  # 18 tasks
    grouped = scan(tmp_path, "grouped", workers)
    monkeypatch.setattr(tag_pairs, "MERGE_GROUP", 1)
    single = scan(tmp_path, "single", workers)
    monkeypatch.setattr(tag_pairs, "MERGE_GROUP", 8)
    monkeypatch.setattr(tag_scan, "STRING_BYTES", 64)  # every group splits
    split = scan(tmp_path, "split", workers)
    assert len(grouped.tasks) == 18 and len(grouped.values) > 20
    for other in (single, split):
        if workers == 1:  # results arrive in task order: the ids are the same too
            assert grouped.values.equals(other.values)
            assert np.array_equal(grouped.counts, other.counts)
        by_tag = dict(zip(grouped.values.to_pylist(), grouped.counts.tolist(), strict=True))
        assert by_tag == dict(zip(other.values.to_pylist(), other.counts.tolist(), strict=True))
        assert (grouped.captions, grouped.captions_with_hashtag) == (
            other.captions,
            other.captions_with_hashtag,
        )
        for task in grouped.tasks:
            rows, ids = grouped.pairs(task)
            other_rows, other_ids = other.pairs(task)
            assert np.array_equal(rows, other_rows)
            assert grouped.values.take(ids).equals(other.values.take(other_ids))
    # counts are captions per tag: recount from the pairs
    recount = np.zeros(len(grouped.values), np.int64)
    for task in grouped.tasks:
        np.add.at(recount, grouped.pairs(task)[1], 1)
    assert np.array_equal(recount, grouped.counts) and grouped.counts.sum() > 4000
