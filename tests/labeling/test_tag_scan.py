"""The compiled scanner against the DuckDB expression it replaces, on hostile captions."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from labeling.hashtags import extract_hashtags
from labeling.tag_scan import is_tag_char, scan_captions, trim_runs

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
    pieces = [captions[i : i + 7] for i in range(0, len(captions), 7)]
    chunked = pa.chunked_array([pa.array(piece, pa.string()) for piece in pieces])
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


def test_many_distinct_tags_grow_every_array_and_keep_first_appearance_order():
    """60,000 distinct tags (the kernel starts with 1,024 slots per array and a 4,096-slot
    table) in 20,000 captions, each repeated in its caption and in later captions: every
    growth and rehash keeps the numbering, values come in order of first appearance."""
    captions = [
        f"#t{3 * i} #t{3 * i + 1} x #t{3 * i + 2} #t{3 * i} #t{max(3 * i - 5, 0)}"
        for i in range(20_000)
    ]
    found = scan_captions(pa.array(captions, pa.string()))
    assert found.values.to_pylist() == [f"t{k}" for k in range(60_000)]
    assert scanned(captions[:300]) == extract_hashtags(captions[:300])
    assert len(found.rows) == 4 * 20_000 - 1  # caption 0's 4th distinct tag is t0 again


def test_equal_hashes_of_different_runs_are_told_apart(monkeypatch):
    """Runs are told apart by their bytes, not their hash: with every run hashed alike (a
    multiplier of 0 makes every hash 0), all tags still get their own ids: short runs
    (settled by the table entry and the 16-byte keys), runs sharing their first 16 bytes,
    and runs past 255 bytes (whose entries all hold length 255). The loop runs as Python
    (`py_func`), which reads the patched multiplier."""
    import numpy as np

    from labeling import tag_kernel

    p16, long = "abcdefghijklmnop", "x" * 300
    captions = [
        f"#ab #ba #abc #{p16}Q #{long}",
        f"#ba #b #ab #{p16}R #{long}y #{p16}Q",
        f"#abc #{long} #{long}y #{long}z #{p16}",
        "#abcdefghiX #abcdefghiY #abcdefghiX",  # 10 bytes: they differ in the second key
    ]
    expected = extract_hashtags(captions)
    data = np.frombuffer(" ".join(captions).encode(), np.uint8)
    ends = np.cumsum([len(c.encode()) + 1 for c in captions])
    offsets = np.r_[0, ends - 1].astype(np.int64)
    monkeypatch.setattr(tag_kernel, "_scan_from", tag_kernel._scan_from.py_func)
    for prime in (tag_kernel.FNV_PRIME, np.uint64(0)):
        monkeypatch.setattr(tag_kernel, "FNV_PRIME", prime)
        with np.errstate(over="ignore"):  # hashing wraps around modulo 2**64, as compiled
            rows, ids, starts, lengths, wide_hashes, wide = tag_kernel.scan_bytes.py_func(
                data, offsets, np.ones(4, np.bool_), np.zeros(0, np.int64), tag_kernel.TAG_BYTE
            )
        values = [bytes(data[s : s + n]).decode() for s, n in zip(starts, lengths, strict=True)]
        got: list[list[str]] = [[] for _ in captions]
        for row, i in zip(rows.tolist(), ids.tolist(), strict=True):
            got[row].append(values[i])
        assert got == expected
        assert values == [
            "ab", "ba", "abc", p16 + "Q", long, "b", p16 + "R", long + "y", long + "z", p16,
            "abcdefghiX", "abcdefghiY",
        ]  # fmt: skip
        assert len(wide_hashes) == 0 and not wide.any()


def test_hash_after_non_ascii_letter_scans_again_and_only_then(monkeypatch):
    """A `#` after a non-ASCII character is decided by RE2 (a letter blocks it, an emoji
    does not); the batch is scanned a second time only when one is blocked."""
    from labeling import tag_kernel

    calls: list[int] = []
    real = tag_kernel.scan_bytes

    def counting(data, offsets, valid, blocked, table):
        calls.append(len(blocked))
        return real(data, offsets, valid, blocked, table)

    monkeypatch.setattr(tag_kernel, "scan_bytes", counting)
    assert scanned(["🐶#dog #cat"]) == [["dog", "cat"]] and calls == [0]
    calls.clear()
    assert scanned(["猫#x #y", "é#z 🐶#w"]) == [["y"], ["w"]] and calls == [0, 2]


def test_wide_hashes_outnumbering_pairs_grow_the_outputs():
    """A `#` after a non-ASCII character is recorded whether or not it starts a tag, so
    captions of `🐶#` (a tag's start, an empty run) and `猫#x` (blocked) record far more of
    them than pairs: the outputs grow by them too, and each distinct character is looked
    up once."""
    captions = ["🐶#" * 3000, "猫#x" * 2000 + " #end", "é#a 🐶#b " * 500, None, "#z"]
    assert scanned(captions) == extract_hashtags(captions)
    assert scanned(captions)[1:3] == [["end"], ["b"]]


def test_a_long_caption_grows_the_arrays_by_its_hashes_not_its_bytes():
    """`_most`, the bound a caption adds to the table and the outputs: one per 2 bytes for a
    short caption, its `#` count for a long one (a 1 MB caption with 3 tags asks for 3)."""
    import numpy as np

    from labeling.tag_kernel import _most

    long = np.frombuffer(b"#a " + b"x" * 1_000_000 + b" #b #c", np.uint8)
    assert _most(long, 0, len(long)) == 3
    assert _most(long, 0, 1000) == 500  # short: the cheap bound
    found = scan_captions(pa.array([long.tobytes().decode()], pa.string()))
    assert found.values.to_pylist() == ["a", "b", "c"] and found.rows.tolist() == [0, 0, 0]


def test_kernels_compile_without_a_cache_folder(monkeypatch):
    """When numba finds no folder to cache machine code in (it raises at decoration), the
    kernel is compiled without one, with a warning, instead of failing the import."""
    from labeling import tag_kernel

    real = tag_kernel.njit

    def njit(**options):
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'add': no locator available for file")
        return real(**options)

    monkeypatch.setattr(tag_kernel, "njit", njit)
    with pytest.warns(UserWarning, match="compiling without a cache"):
        add = tag_kernel._compiled()(lambda x: x + 1)
    assert add(2) == 3 and hasattr(add, "py_func")  # a numba dispatcher, compiled
