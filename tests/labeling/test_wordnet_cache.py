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
    # the files as imported, whatever is being edited in labeling/ while the tests run
    monkeypatch.setattr(wordnet_cache, "code_digest", wordnet_cache._code_digest)
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


def test_a_changed_wordnet_file_builds_afresh(fake_wn, tmp_path):
    build, calls = builder([1])
    cached("thing", fake_wn, build)
    data = os.path.join(fake_wn._root.path, "data.noun")
    with open(data, "a") as file:
        file.write("00000002 ...\n")  # size and mtime change
    cached("thing", fake_wn, build)
    assert len(calls) == 2
    assert len(list((tmp_path / "cache").glob("thing-*.pickle"))) == 2  # one per WordNet
    assert cached("other", fake_wn, builder(2)[0]) == 2  # names do not collide
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 3


def test_changed_code_builds_afresh(fake_wn, tmp_path, monkeypatch):
    build, calls = builder([1])
    cached("thing", fake_wn, build)
    for digest in ("code_digest", "_code_digest"):  # a process that imported other code
        monkeypatch.setattr(wordnet_cache, digest, lambda: "another version")
    cached("thing", fake_wn, build)
    cached("thing", fake_wn, build)
    assert len(calls) == 2
    assert len(list((tmp_path / "cache").glob("thing-*.pickle"))) == 2  # both versions kept


def test_files_changed_after_the_import_write_nothing(fake_wn, tmp_path, monkeypatch):
    """A process whose labeling/*.py changed on disk after it imported them (an edit, a
    pull) built the value with the old code: it must not file it under the new code."""
    monkeypatch.setattr(wordnet_cache, "code_digest", lambda: "edited since")
    build, calls = builder([1])
    cached("thing", fake_wn, build)
    cached("thing", fake_wn, build)
    assert len(calls) == 2 and not list((tmp_path / "cache").glob("*"))


def test_the_newest_entries_of_a_name_stay(fake_wn, tmp_path):
    """`KEEP` entries per name survive (two checkouts sharing the folder do not rebuild
    each other's), the oldest go; a name that starts another's is not touched."""
    cached("noun", fake_wn, builder(0)[0])
    data = os.path.join(fake_wn._root.path, "data.noun")
    written = []
    for version in range(wordnet_cache.KEEP + 2):
        with open(data, "a") as file:
            file.write(f"{version}\n")  # another WordNet: another key
        cached("noun-records", fake_wn, builder(version)[0])
        (entry,) = set((tmp_path / "cache").glob("noun-records-*.pickle")) - set(written)
        written.append(entry)
    left = set((tmp_path / "cache").glob("noun-records-*.pickle"))
    assert left == set(written[-wordnet_cache.KEEP :])
    assert len(list((tmp_path / "cache").glob("noun-[0-9a-f]*.pickle"))) == 1


def test_corrupt_entry_warns_and_rebuilds(fake_wn, tmp_path):
    build, calls = builder([1, 2, 3])
    cached("thing", fake_wn, build)
    (entry,) = (tmp_path / "cache").glob("thing-*.pickle")
    entry.write_bytes(entry.read_bytes()[:5])  # truncated
    with pytest.warns(UserWarning, match="unreadable"):
        assert cached("thing", fake_wn, build) == [1, 2, 3]
    assert len(calls) == 2 and cached("thing", fake_wn, build) == [1, 2, 3] and len(calls) == 2


def test_unwritable_folder_off_and_no_home_still_build(fake_wn, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MAWSKIT_CACHE", str(blocker / "cache"))  # under a file: cannot exist
    build, calls = builder("x")
    with pytest.warns(UserWarning, match="not written"):
        assert cached("thing", fake_wn, build) == "x"
    monkeypatch.setenv("MAWSKIT_CACHE", "off")
    assert cached("thing", fake_wn, build) == "x" and len(calls) == 2
    monkeypatch.delenv("MAWSKIT_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(wordnet_cache.Path, "home", staticmethod(no_home))
    assert wordnet_cache.cache_dir() is None
    assert cached("thing", fake_wn, build) == "x" and len(calls) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "wordnet"]


def test_a_value_pickle_cannot_write_leaves_no_temporary_file(fake_wn, tmp_path):
    with pytest.warns(UserWarning, match="not written"):
        value = cached("thing", fake_wn, lambda: lambda: 0)  # a lambda does not pickle
    assert callable(value) and list((tmp_path / "cache").iterdir()) == []


def test_real_lemma_map_read_back_equals_the_parse(wn, tmp_path, monkeypatch):
    """The reader's lemma map through the cache equals a fresh parse; of two loads only
    the first parses."""
    monkeypatch.setenv("MAWSKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(wordnet_cache, "code_digest", wordnet_cache._code_digest)
    parsed = wn._parse_lemmas()
    parses = []

    def counting():
        parses.append(1)
        return parsed

    monkeypatch.setattr(wn, "_parse_lemmas", counting)
    for _ in range(2):
        wn._load_lemma_pos_offset_map()
        assert wn._lemma_pos_offset_map == parsed
    assert len(parses) == 1 and wn._lemma_pos_offset_map is not parsed  # read back
    assert wn.synsets("dog", "n")[0].name() == "dog.n.01"
    assert len(list((tmp_path / "cache").glob("lemma-pos-offsets-*.pickle"))) == 1
