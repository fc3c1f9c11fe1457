"""Hashtag extraction over Arrow string buffers with numpy: `hashtags_sql`'s tags, set-wise.

Contract: `scan_captions(captions)` returns, for a string array of captions, the distinct
hashtags of every caption as integer pairs over a batch dictionary:

    CaptionTags.rows    int32 [P]   caption index in `captions`, ascending
    CaptionTags.ids     int32 [P]   index into `values`; distinct within a caption
    CaptionTags.values  pa.string [V]   the batch's distinct tags, as written

The tags are exactly those of `labeling.hashtags.hashtags_sql` (`tests/labeling/
test_tag_scan.py` compares both on hostile captions): `#` followed by a maximal run of
`[\\pL\\pM\\pN_]` characters, the `#` at the caption's start or after a character that is
none of those and not `/` or `&`. Null captions have no tags.

How. Everything is byte arithmetic over the batch's UTF-8 buffer, never a Python loop per
caption. One pass classes every byte (ASCII letters, digits, `_`, and every byte >= 0x80,
since a UTF-8 sequence is all high bytes and a run therefore never splits a character) and
lists the positions of the bytes that can end a run ("stops"); the `#` bytes are the stops
holding `#`; each run ends at the stop that follows its `#` in that list, clipped at its
caption's end (the caption of each `#` by `searchsorted` over the offsets). Runs of up to
16 bytes (94% of the throughput bench's tags) are numbered by Arrow's hash kernel over a
16-byte key: the run's bytes read as two little-endian words and zero-padded (no tag byte
is 0, so the key is the run); longer runs are copied out as strings and hashed as such.
Non-ASCII is decided exactly and only where it occurs: a distinct run holding a non-ASCII
character is cut at its first character that is no tag character, and a `#` after a
non-ASCII character looks that character up; both look-ups use the same RE2 character
class in DuckDB (`is_tag_char`), so Unicode tables cannot drift from the SQL path. Those
are per distinct run or character, not per caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

HASH, SLASH, AMPERSAND = ord("#"), ord("/"), ord("&")
# Byte class: can this byte belong to a tag run? Bytes >= 0x80 are candidates, decided later.
TAG_BYTE = np.zeros(256, np.bool_)
TAG_BYTE[np.frombuffer(b"0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)] = True  # fmt: skip  # noqa: E501
TAG_BYTE[0x80:] = True
STRING_BYTES = 2**31 - 1  # an Arrow string array's bytes end here (int32 offsets)
KEY_BYTES = 16  # runs up to this long are hashed as a fixed-size key, longer ones as strings
# WORD_MASK[k]: the low k bytes of a little-endian 64-bit word (k = 0..8)
WORD_MASK = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)


@dataclass(frozen=True)
class CaptionTags:
    """The distinct tags of each caption of one batch (module docstring)."""

    rows: np.ndarray
    ids: np.ndarray
    values: Any  # pa.StringArray


_TAG_CHAR_RE2 = r"[\pL\pM\pN_]"
_tag_char_cache: dict[str, bool] = {}


def is_tag_char(chars: list[str]) -> list[bool]:
    """Whether each character matches `[\\pL\\pM\\pN_]` in RE2, as DuckDB evaluates it."""
    missing = sorted({c for c in chars if c not in _tag_char_cache})
    if missing:
        import duckdb

        con = duckdb.connect()
        try:
            rows = con.execute(
                f"SELECT c, regexp_full_match(c, '{_TAG_CHAR_RE2}') FROM unnest(?::VARCHAR[]) t(c)",
                [missing],
            ).fetchall()
        finally:
            con.close()
        _tag_char_cache.update(rows)
    return [_tag_char_cache[c] for c in chars]


def trim_runs(runs: list[str]) -> list[str]:
    """Each byte run cut before its first non-tag character ('' when that is the first)."""
    is_tag_char([c for run in runs for c in run if not c.isascii()])  # one query for all
    out = []
    for run in runs:
        end = len(run)
        for i, c in enumerate(run):
            if not (TAG_BYTE[ord(c)] if c.isascii() else _tag_char_cache[c]):
                end = i
                break
        out.append(run[:end])
    return out


def _offsets_and_data(captions: Any) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (int64 [N+1]) and UTF-8 bytes (uint8, 16 zero bytes of padding) of a
    string or large_string array; the padding lets 4-byte words be read at any run start."""
    import pyarrow as pa

    n = len(captions)
    width = 8 if pa.types.is_large_string(captions.type) else 4
    _, offsets_buf, data_buf = captions.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32 if width == 4 else np.int64)
    offsets = offsets[captions.offset : captions.offset + n + 1].astype(np.int64)
    raw = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    data = np.zeros(int(offsets[-1] - offsets[0]) + 16, np.uint8)
    data[: len(data) - 16] = raw[offsets[0] : offsets[-1]]
    return offsets - offsets[0], data


def _unaligned(data: np.ndarray, dtype: type) -> np.ndarray:
    """`data` read as little-endian words of `dtype` starting at every byte (a view)."""
    size = np.dtype(dtype).itemsize
    return np.ndarray((len(data) - size + 1,), dtype, buffer=data, strides=(1,))


def stop_bytes(body: np.ndarray) -> np.ndarray:
    """~`TAG_BYTE[body]`, the bytes that end a run, by SIMD comparisons written into three
    buffers made once per call and reused by every step (a 256-entry table look-up per byte
    is ~2x slower, a fresh temporary per step ~30%): not a letter (ASCII case folded by
    `| 0x20`), not a digit, not `_`, below 0x80."""
    shifted = np.empty(len(body), np.uint8)
    stop = np.empty(len(body), np.bool_)
    other = np.empty(len(body), np.bool_)
    np.bitwise_or(body, np.uint8(0x20), out=shifted)
    np.subtract(shifted, np.uint8(ord("a")), out=shifted)
    np.greater_equal(shifted, np.uint8(26), out=stop)  # no letter
    np.subtract(body, np.uint8(ord("0")), out=shifted)
    np.greater_equal(shifted, np.uint8(10), out=other)  # no digit
    np.logical_and(stop, other, out=stop)
    np.not_equal(body, np.uint8(ord("_")), out=other)
    np.logical_and(stop, other, out=stop)
    np.less(body, np.uint8(0x80), out=other)
    np.logical_and(stop, other, out=stop)
    return stop


def rows_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """The string (row) of each byte position (int32 [H]); `positions` ascending, each
    below offsets[-1]. With at least one position per string on average, each string's
    positions are found by one search per string in `positions` (fewer searches than one
    per position in `offsets`); otherwise by one search per position."""
    n = len(offsets) - 1
    if len(positions) < n:
        return (np.searchsorted(offsets, positions, side="right") - 1).astype(np.int32)
    bounds = np.searchsorted(positions, offsets)  # positions in [offsets[r], offsets[r + 1])
    return np.repeat(np.arange(n, dtype=np.int32), np.diff(bounds))


def _short_keys(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Any:
    """Runs of <= `KEY_BYTES` bytes as a pa.binary(16) array: their bytes, zero-padded."""
    import pyarrow as pa

    words = _unaligned(data, np.dtype("<u8"))
    keys = np.empty((len(starts), 2), np.dtype("<u8"))
    np.bitwise_and(words[starts], WORD_MASK[np.minimum(lengths, 8)], out=keys[:, 0])
    np.bitwise_and(words[starts + 8], WORD_MASK[np.clip(lengths - 8, 0, 8)], out=keys[:, 1])
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(KEY_BYTES), len(keys), [None, pa.py_buffer(keys)]
    )


def _key_strings(keys: Any) -> Any:
    """A pa.binary(16) array of zero-padded runs back to a pa.string array."""
    import pyarrow as pa

    raw = np.frombuffer(keys.buffers()[1], np.uint8)
    raw = raw[keys.offset * KEY_BYTES : (keys.offset + len(keys)) * KEY_BYTES]
    filled = raw.reshape(-1, KEY_BYTES) != 0  # a run's bytes, then zeros
    offsets = np.zeros(len(keys) + 1, np.int32)
    np.cumsum(filled.sum(axis=1), out=offsets[1:])
    text = raw[filled.ravel()]
    return pa.StringArray.from_buffers(len(keys), pa.py_buffer(offsets), pa.py_buffer(text))


def _copied_strings(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> Any:
    """The runs data[start:start+length] copied into a pa.string array."""
    import pyarrow as pa

    offsets = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    shift = np.repeat(starts - offsets[:-1], lengths)
    text = data[np.arange(offsets[-1]) + shift]
    return pa.LargeStringArray.from_buffers(
        len(starts), pa.py_buffer(offsets), pa.py_buffer(text)
    ).cast(pa.string())


def _number_runs(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple:
    """(run ids int64 [M], distinct runs pa.string [V]): equal runs share an id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    short = lengths <= KEY_BYTES
    ids = np.empty(len(starts), np.int64)
    encoded = pc.dictionary_encode(_short_keys(data, starts[short], lengths[short]))
    ids[short] = encoded.indices.to_numpy()
    values = [_key_strings(encoded.dictionary)]
    if not short.all():
        long = ~short
        more = pc.dictionary_encode(_copied_strings(data, starts[long], lengths[long]))
        ids[long] = more.indices.to_numpy() + len(values[0])
        values.append(more.dictionary)
    return ids, pa.concat_arrays(values) if len(values) > 1 else values[0]


def _prev_char_allows(data: np.ndarray, hashes: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The `#` rule: at the caption's start, or after a character that is no tag character
    and not `/` or `&`. Non-ASCII characters before `#` are decoded and looked up."""
    prev = data[np.maximum(hashes - 1, 0)]
    ok = first | (~TAG_BYTE[prev] & (prev != SLASH) & (prev != AMPERSAND))
    wide = np.flatnonzero(~first & (prev >= 0x80))
    if len(wide):
        ends = hashes[wide]
        starts = ends - 1
        for _ in range(3):  # back over UTF-8 continuation bytes (10xxxxxx) to the lead byte
            cont = (data[starts] & 0xC0) == 0x80
            starts = np.where(cont, starts - 1, starts)
        chars = [bytes(data[s:e]).decode("utf-8") for s, e in zip(starts, ends, strict=True)]
        ok[wide] = ~np.array(is_tag_char(chars), dtype=np.bool_)
    return ok


def distinct_per_row(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Mask of each (row, id) pair's first occurrence; `rows` ascending."""
    if len(rows) == 0:
        return np.ones(0, np.bool_)
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    widest = int(np.diff(np.r_[starts, len(rows)]).max())
    if widest > 32:  # a caption with many tags: sort instead of comparing neighbours
        key = rows.astype(np.int64) << 32 | ids.astype(np.int64)
        _, first = np.unique(key, return_index=True)
        keep = np.zeros(len(rows), np.bool_)
        keep[first] = True
        return keep
    keep = np.ones(len(rows), np.bool_)
    for lag in range(1, widest):
        same = (rows[lag:] == rows[:-lag]) & (ids[lag:] == ids[:-lag])
        keep[lag:] &= ~same
    return keep


def scan_captions(captions: Any) -> CaptionTags:
    """The distinct hashtags of each caption of a pyarrow string array (module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(captions, pa.ChunkedArray):
        if captions.nbytes >= STRING_BYTES and pa.types.is_string(captions.type):
            # int32 offsets end at 2 GiB: past that, chunks combine only with int64 ones
            captions = captions.cast(pa.large_string())
        captions = captions.combine_chunks()
    if not (pa.types.is_string(captions.type) or pa.types.is_large_string(captions.type)):
        captions = captions.cast(pa.string())
    offsets, data = _offsets_and_data(captions)
    size = len(data) - 16
    # the first padding byte (0) is a stop too: every run ends at a stop
    stops = np.flatnonzero(stop_bytes(data[: size + 1]))
    at = np.flatnonzero(data[stops[:-1]] == HASH)  # a `#` is a stop: the next stop ends its run
    hashes = stops[at]
    rows = rows_of(offsets, hashes)
    ends = np.minimum(stops[at + 1], offsets[rows + 1])
    lengths = ends - hashes - 1
    ok = (lengths > 0) & _prev_char_allows(data, hashes, hashes == offsets[rows])
    if captions.null_count:
        ok &= np.asarray(captions.is_valid())[rows]
    hashes, rows, lengths = hashes[ok], rows[ok], lengths[ok]
    # pa.nulls, not pa.array: pyarrow's first pa.array in a process imports pandas (~0.25 s)
    empty = CaptionTags(np.zeros(0, np.int32), np.zeros(0, np.int32), pa.nulls(0, pa.string()))
    if len(hashes) == 0:
        return empty
    run_ids, raw = _number_runs(data, hashes + 1, lengths)
    # Runs with non-ASCII bytes: cut at the first character that is no tag character.
    wide = np.flatnonzero(~pc.string_is_ascii(raw).to_numpy(zero_copy_only=False))
    if len(wide):
        trimmed = raw.to_pylist()
        for i, run in zip(wide, trim_runs([trimmed[i] for i in wide]), strict=True):
            trimmed[i] = run or None
        final = pc.dictionary_encode(pa.array(trimmed, pa.string()))
        values = final.dictionary
        remap = final.indices.fill_null(-1).to_numpy().astype(np.int32)
        run_ids = remap[run_ids]
        tagged = run_ids >= 0
        rows, run_ids = rows[tagged], run_ids[tagged]
    else:
        values = raw
    run_ids = run_ids.astype(np.int32)
    first = distinct_per_row(rows, run_ids)
    return CaptionTags(rows[first], run_ids[first], values)
