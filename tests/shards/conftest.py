"""Fixtures of the shards tests; the data builders live in `tests.shards.dataset`."""

from tests.shards.dataset import local_dataset  # noqa: F401 (a fixture, found by name)
