"""Distinct tags through the mapper in forked processes that share its loaded WordNet.

`HashtagMapper.map` is pure Python (~40-90 us a tag: splitting, morphy, segmentation, the
sense rule), so ~100k distinct tags cost seconds on one core. The mapper is built once in
this process; `MappingPool` then forks `workers` processes that inherit it (WordNet, the
noun index and the lexicon are not loaded again, the pages are shared copy-on-write) and
maps chunks of tags there, while this process goes on merging the scan.

    pool = MappingPool(mapper, workers=2)
    pool.submit(["dog", "GoldenRetriever"]); pool.submit([...])
    pool.columns()  # {"canonical": [...], "wnid": [...], "reason": [...], "lexname": [...]}
                    # one entry per submitted tag, in submission order

Where fork is not available, or with `workers <= 1`, tags are mapped here, in order.
A worker that dies raises `labeling.worker_pool.WorkerDied` from `columns()`.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

CHUNK = 2000  # tags per task: ~0.1 s of mapping, so both workers stay busy to the end
COLUMNS = ("canonical", "wnid", "reason", "lexname")

_MAPPER: Any = None  # set before the fork; the workers read it


def _map_chunk(tags: list[str]) -> list[tuple]:
    return [(m.canonical, m.wnid, m.reason, m.lexname) for m in map(_MAPPER.map, tags)]


class MappingPool:
    """Maps tags in forked workers; `columns()` waits for all and closes the pool."""

    def __init__(self, mapper: Any, workers: int) -> None:
        global _MAPPER
        _MAPPER = mapper
        self._pending: list[Any] = []
        self._pool = None
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            from labeling.worker_pool import forked_executor

            self._pool = forked_executor(workers)

    def submit(self, tags: list[str]) -> None:
        for start in range(0, len(tags), CHUNK):
            chunk = tags[start : start + CHUNK]
            if self._pool is None:
                self._pending.append(_map_chunk(chunk))
            else:
                self._pending.append(self._pool.submit(_map_chunk, chunk))

    def columns(self) -> dict[str, list]:
        from labeling.worker_pool import result

        rows: list[tuple] = []
        try:
            for item in self._pending:
                rows += item if isinstance(item, list) else result(item, "map hashtags")
        finally:
            self.close()
        return {name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # running chunks: ~0.1 s
            self._pool = None
