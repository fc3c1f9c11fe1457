"""The numpy scanner against the DuckDB expression it replaces, on hostile captions."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from labeling.hashtags import extract_hashtags
from labeling.tag_scan import is_tag_char, rows_of, scan_captions, stop_bytes, trim_runs

HOSTILE = [
    "#dog on the #beach",
    "see http://x.com/#top and page#anchor and x/#y",  # URL fragments
    "it&#39;s a #cat &#x27;quoted&#x27; &#tag",  # HTML entities
    "##tag ###x a##b",
    "#dog! #cat, #sun. (#tree) #end",  # trailing punctuation, tag at the end
    "🐶#dog🐶 😍#cat #🐶 #dog🐶cat",  # emoji on both sides, emoji-only tag
    "#кошка #猫 #नमस्ते #ねこ #ÅSA #e\u0301té",  # other scripts, marks inside
    "é#z 猫#x \u0301#y ½#n ٣#d",  # non-ASCII letters, marks, numbers before '#'
    "\ufffd#ok #bad\ufffd #\ufffd",  # U+FFFD is no tag character
    "\u00a0#nbsp\u2003#emsp\u3000#ideo",  # non-ASCII spaces before '#'
    "#dog #dog #Dog #DOG",  # one per caption, case kept
    "#golden_retriever #2019 #_ #__x__",
    "a#b #c#d #e&#f",
    "# alone, #",
    "\n#nl\t#tab\r#cr",
    "#x\x00#y \x00#z",
    "#\U0001e4d0\U0001e4eb #\U00031350",  # Unicode 15 letters: whatever RE2 says
    "",
    None,
    "x" * 100_000 + " #cat",  # 100 kB caption
    "#" + "a" * 100_000 + " #b",  # a 100 kB tag
    " ".join(f"#t{i % 450}" for i in range(500)),  # 500 tags, 50 repeated
    "#" + "é" * 70 + "!",  # a long non-ASCII run
]


def scanned(captions: list[str | None]) -> list[list[str]]:
    """scan_captions' output as extract_hashtags' shape: tags per caption, in order."""
    found = scan_captions(pa.array(captions, pa.string()))
    values = found.values.to_pylist()
    out: list[list[str]] = [[] for _ in captions]
    for row, tag in zip(found.rows.tolist(), found.ids.tolist(), strict=True):
        out[row].append(values[tag])
    return out


@pytest.mark.parametrize("caption", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_caption_equals_duckdb(caption):
    assert scanned([caption]) == extract_hashtags([caption])


def test_hostile_batch_and_spot_values():
    got = scanned(HOSTILE)
    assert got == extract_hashtags(HOSTILE)
    assert got[1] == [] and got[2] == ["cat"] and got[3] == ["tag", "x", "b"]
    assert got[5] == ["dog", "cat"]  # '#🐶' and '#dog🐶cat' after the emoji: cut at the emoji
    assert got[8] == ["ok", "bad"]
    assert got[10] == ["dog", "Dog", "DOG"]
    assert len(got[21]) == 450 and got[20] == ["a" * 100_000, "b"]


def test_random_hostile_text_equals_duckdb():
    rng = random.Random(7)
    alphabet = "#a_B9 /&;.é猫\u0301🐶\n#\ufffd½\u00a0-"
    captions = ["".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(4000)]
    expected = extract_hashtags(captions)
    assert sum(len(t) for t in expected) > 1000  # the text does hold many hashtags
    assert scanned(captions) == expected


def test_sliced_large_and_chunked_arrays():
    captions = ["#a #b", None, "x #c", "#a", "", "#d#e #f"]
    expected = extract_hashtags(captions)
    sliced = pa.array(["#zz"] + captions, pa.string()).slice(1)  # offset 1 into the buffers
    large = pa.array(captions, pa.large_string())
    chunked = pa.chunked_array([captions[:3], captions[3:]], pa.string())
    for array in (sliced, large, chunked):
        found = scan_captions(array)
        values = found.values.to_pylist()
        got: list[list[str]] = [[] for _ in captions]
        for row, tag in zip(found.rows.tolist(), found.ids.tolist(), strict=True):
            got[row].append(values[tag])
        assert got == expected
        assert sorted(values) == ["a", "b", "c", "d", "f"]  # each once; "#e" follows "d"


def test_exact_unicode_classes_come_from_re2():
    assert is_tag_char(["é", "\u0301", "猫", "½", "🐶", "\ufffd", "\u00a0"]) == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip
    assert trim_runs(["dog🐶cat", "🐶", "e\u0301té\ufffd"]) == ["dog", "", "e\u0301té"]


@pytest.mark.parametrize("width", [3, 40], ids=["neighbours", "sort"])  # the two strategies
def test_distinct_per_row_marks_first_occurrences(width):
    import numpy as np

    from labeling.tag_scan import distinct_per_row

    rng = random.Random(width)
    pairs = sorted((r, rng.randrange(width)) for r in range(50) for _ in range(width))
    pairs = sorted(pairs, key=lambda p: p[0])  # rows ascending, ids in any order within
    rows = np.array([r for r, _ in pairs], np.int32)
    ids = np.array([i for _, i in pairs], np.int32)
    keep = distinct_per_row(rows, ids)
    seen: set = set()
    want = [p not in seen and not seen.add(p) for p in pairs]
    assert keep.tolist() == want
    assert sum(want) == len(set(pairs)) < len(pairs)
    assert distinct_per_row(rows[:0], ids[:0]).tolist() == []


def test_chunks_past_the_string_limit_combine_with_64_bit_offsets(monkeypatch):
    """A row group of more than 2 GiB of captions reads as several chunks, which combine
    into one string array only with int64 offsets; the limit is lowered to see it cheaply."""
    from labeling import tag_scan

    captions = HOSTILE * 3
    whole = scan_captions(pa.array(captions, pa.string()))
    chunked = pa.chunked_array([pa.array(captions[i : i + 7], pa.string()) for i in range(0, len(captions), 7)])  # fmt: skip  # noqa: E501
    widths: list[pa.DataType] = []
    real = tag_scan._offsets_and_data

    def spy(array):
        widths.append(array.type)
        return real(array)

    monkeypatch.setattr(tag_scan, "_offsets_and_data", spy)
    monkeypatch.setattr(tag_scan, "STRING_BYTES", chunked.nbytes)  # just at the limit
    found = scan_captions(chunked)
    monkeypatch.setattr(tag_scan, "STRING_BYTES", chunked.nbytes + 1)  # just below it
    below = scan_captions(chunked)
    assert widths == [pa.large_string(), pa.string()]
    for got in (found, below):
        assert got.rows.tolist() == whole.rows.tolist()
        assert (
            got.values.take(pa.array(got.ids)).to_pylist()
            == whole.values.take(pa.array(whole.ids)).to_pylist()
        )
    assert len(whole.rows) > 50


@pytest.mark.parametrize("per_row", [0.2, 3.0], ids=["few", "many"])
def test_rows_of_positions_by_either_search(per_row):
    """Both ways of `rows_of` (a search per position, a search per string) give each
    position's string, empty strings included."""
    import numpy as np

    rng = np.random.default_rng(1)
    lengths = rng.integers(0, 12, 5000) * (rng.random(5000) < 0.8)  # 1 in 5 empty
    offsets = np.r_[0, np.cumsum(lengths)]
    size = int(offsets[-1])
    positions = np.sort(rng.choice(size, int(per_row * 5000), replace=False))
    expected = [int(np.flatnonzero(offsets <= p)[-1]) for p in positions[:300]]
    expected = [r if offsets[r] < offsets[r + 1] else None for r in expected]
    got = rows_of(offsets, positions)
    assert got.dtype == np.int32 and len(got) == len(positions)
    assert got[:300].tolist() == expected  # never an empty string
    assert np.all((offsets[got] <= positions) & (positions < offsets[got + 1]))


def test_stop_bytes_is_the_byte_table():
    import numpy as np

    from labeling.tag_scan import TAG_BYTE

    every = np.arange(256, dtype=np.uint8)
    assert stop_bytes(every).tolist() == (~TAG_BYTE).tolist()
    assert stop_bytes(every).sum() == 256 - 10 - 52 - 1 - 128
