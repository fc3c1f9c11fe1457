"""Session-wide set-up for every test folder."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_wordnet_cache():
    """The WordNet-derived cache (`labeling.wordnet_cache`) of this session, and of the
    commands its tests run, goes to a folder of its own, removed at the end, not to the
    user's ~/.cache/mawskit; a test of the cache sets its own."""
    folder = tempfile.mkdtemp(prefix="mawskit-test-cache-")
    before = os.environ.get("MAWSKIT_CACHE")
    os.environ["MAWSKIT_CACHE"] = folder
    yield folder
    if before is None:
        os.environ.pop("MAWSKIT_CACHE", None)
    else:
        os.environ["MAWSKIT_CACHE"] = before
    shutil.rmtree(folder, ignore_errors=True)
