"""`labeling.wordnet_cache`: built once, read back, rebuilt when WordNet or the code changes."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from labeling import wordnet_cache
from labeling.wordnet_cache import cached


@pytest.fixture
def fake_wn(tmp_path, monkeypatch):
    """A reader whose WordNet folder holds two small files; the cache in tmp_path/cache."""
    root = tmp_path / "wordnet"
    root.mkdir()
    (root / "index.noun").write_text("dog n 1\n")
    (root / "data.noun").write_text("00000001 ...\n")
    monkeypatch.setenv("MAWSKIT_CACHE", str(tmp_path / "cache"))
    return SimpleNamespace(_root=SimpleNamespace(path=str(root)))


def builder(value):
    calls = []

    def build():
        calls.append(1)
        return value

    return build, calls


def test_built_once_then_read_back(fake_wn, tmp_path):
    build, calls = builder({"dog": [1, 2], "cat": {"n": [3]}})
    first = cached("thing", fake_wn, build)
    second = cached("thing", fake_wn, build)
    assert first == second == {"dog": [1, 2], "cat": {"n": [3]}}
    assert len(calls) == 1 and second is not first  # the second came from the file
    assert [p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()] == ["thing"]


def test_a_changed_wordnet_file_builds_afresh_and_replaces_the_entry(fake_wn, tmp_path):
    build, calls = builder([1])
    cached("thing", fake_wn, build)
    data = os.path.join(fake_wn._root.path, "data.noun")
    with open(data, "a") as file:
        file.write("00000002 ...\n")  # size and mtime change
    cached("thing", fake_wn, build)
    assert len(calls) == 2
    assert len(list((tmp_path / "cache").glob("thing-*.pickle"))) == 1  # the old one removed
    cached("other", fake_wn, builder(2)[0])
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 2  # names do not collide


def test_changed_code_builds_afresh(fake_wn, monkeypatch):
    build, calls = builder([1])
    cached("thing", fake_wn, build)
    monkeypatch.setattr(wordnet_cache, "_code_digest", lambda: "another version")
    cached("thing", fake_wn, build)
    assert len(calls) == 2


def test_corrupt_entry_warns_and_rebuilds(fake_wn, tmp_path):
    build, calls = builder([1, 2, 3])
    cached("thing", fake_wn, build)
    (entry,) = (tmp_path / "cache").glob("thing-*.pickle")
    entry.write_bytes(entry.read_bytes()[:5])  # truncated
    with pytest.warns(UserWarning, match="unreadable"):
        assert cached("thing", fake_wn, build) == [1, 2, 3]
    assert len(calls) == 2 and cached("thing", fake_wn, build) == [1, 2, 3] and len(calls) == 2


def test_unwritable_folder_and_off_still_build(fake_wn, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MAWSKIT_CACHE", str(blocker / "cache"))  # under a file: cannot exist
    build, calls = builder("x")
    with pytest.warns(UserWarning, match="not written"):
        assert cached("thing", fake_wn, build) == "x"
    monkeypatch.setenv("MAWSKIT_CACHE", "off")
    assert cached("thing", fake_wn, build) == "x" and len(calls) == 2
    assert not (tmp_path / "cache").exists()


def test_real_lemma_map_read_back_equals_the_parse(wn, tmp_path, monkeypatch):
    """The reader's lemma map through the cache (written, then read) equals a fresh parse."""
    monkeypatch.setenv("MAWSKIT_CACHE", str(tmp_path / "cache"))
    parsed = wn._parse_lemmas()
    for _ in range(2):
        wn._load_lemma_pos_offset_map()
        assert wn._lemma_pos_offset_map == parsed and wn._lemma_pos_offset_map is not parsed
    assert wn.synsets("dog", "n")[0].name() == "dog.n.01"
    assert len(list((tmp_path / "cache").glob("lemma-pos-offsets-*.pickle"))) == 1
