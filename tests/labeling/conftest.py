"""Shared fixtures: real WordNet 3.0 and one HashtagMapper per test session (~5 s to load)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def wn():
    """NLTK's WordNet 3.0 reader, loaded once."""
    from labeling.wordnet import wordnet

    return wordnet()


@pytest.fixture(scope="session")
def mapper():
    from labeling.mapper import HashtagMapper

    return HashtagMapper()


@pytest.fixture(scope="session")
def write_metadata():
    """`write_metadata(folder, captions)`: ingest-shaped metadata parquet; returns the uids."""
    return _write_metadata


def _write_metadata(
    folder: Path, captions: list[str | None], part: str = "part-00000"
) -> list[str]:
    """Write `folder/metadata/<part>.parquet` in ingest's schema; return the uids in order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    urls = [f"http://127.0.0.1/{part}/{i}.jpg" for i in range(len(captions))]
    uids = [
        hashlib.md5(f"{u}\n{c or ''}".encode()).hexdigest()[:16]
        for u, c in zip(urls, captions, strict=True)
    ]
    (folder / "metadata").mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "uid": pa.array(uids, pa.string()),
            "url": pa.array(urls, pa.string()),
            "caption": pa.array(captions, pa.string()),
            "source": pa.array(["test.parquet"] * len(captions), pa.string()),
        }
    )
    pq.write_table(table, folder / "metadata" / f"{part}.parquet")
    return uids
