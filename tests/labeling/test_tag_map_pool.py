"""Tags mapped in forked workers come back in order, equal to the mapper's own answers."""

from __future__ import annotations

import pytest

from labeling.tag_map_pool import CHUNK, MappingPool

TAGS = ["dog", "GoldenRetriever", "love", "2019", "кошка", "sunsetlovers", "xqzvbnm", "happy"]


@pytest.mark.parametrize("workers", [1, 2])
def test_pool_columns_equal_mapper_in_submission_order(mapper, workers):
    tags = [f"{t}{'s' * (i % 3)}" for i in range(CHUNK + 7) for t in TAGS[i % len(TAGS) :][:1]]
    pool = MappingPool(mapper, workers)
    pool.submit(tags[:100])  # two submissions, three chunks: order must survive
    pool.submit(tags[100:])
    columns = pool.columns()
    expected = [mapper.map(t) for t in tags]
    assert columns["canonical"] == [m.canonical for m in expected]
    assert columns["wnid"] == [m.wnid for m in expected]
    assert columns["reason"] == [m.reason for m in expected]
    assert columns["lexname"] == [m.lexname for m in expected]
    assert {m.reason for m in expected} >= {None, "stoplisted", "numeric", "no_match"}
