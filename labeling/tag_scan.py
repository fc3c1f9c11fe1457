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
caption: `#` bytes by comparison, the run after each `#` by stepping all runs at once
through a 256-entry byte class table (ASCII letters, digits, `_`, and every byte >= 0x80,
since a UTF-8 sequence is all high bytes and a run therefore never splits a character),
the caption of each `#` by `searchsorted` over the offsets, runs clipped at caption ends.
Runs become a string-view array that points into the buffer (no copy of the tag bytes) and
Arrow's hash kernel numbers them. Non-ASCII is decided exactly and only where it occurs:
a distinct run holding a non-ASCII character is cut at its first character that is no tag
character, and a `#` after a non-ASCII character looks that character up; both look-ups
use the same RE2 character class in DuckDB (`is_tag_char`), so Unicode tables cannot
drift from the SQL path. Those are per distinct run or character, not per caption.
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
# PAIR_STEP[b0 | b1 << 8]: how many of b0, b1 are tag bytes before the first that is not.
_LOW, _HIGH = TAG_BYTE[np.arange(1 << 16) & 0xFF], TAG_BYTE[np.arange(1 << 16) >> 8]
PAIR_STEP = (_LOW * (1 + _HIGH)).astype(np.uint8)
STEPS_IN_LOCKSTEP = 16  # x 4 bytes; longer runs (rare) finish one by one over their caption
INLINE = 12  # Arrow string views hold up to 12 bytes inline


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


def _run_ends(data: np.ndarray, starts: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """End of the tag-byte run beginning at each start, not past its limit (int64 [H]).

    All runs advance in lockstep up to four bytes per step: the 4-byte word at each run's
    end is split in two halves, and `PAIR_STEP` says how many bytes of a half are tag bytes
    before the first that is not (2, 1 or 0). A run that has stopped stays put (its next
    byte is no tag byte), so steps need no mask; finished runs are dropped every few steps.
    """
    words = _unaligned(data, np.uint32)
    ends = starts.copy()
    live = np.arange(len(starts))
    at, limit = ends.copy(), limits
    for step in range(STEPS_IN_LOCKSTEP):
        word = words[at]
        low = PAIR_STEP[word & 0xFFFF]
        advance = low + (low == 2) * PAIR_STEP[word >> 16]
        at += np.minimum(advance, limit - at)
        if step % 2 == 1:
            moving = (PAIR_STEP[words[at] & 0xFFFF] > 0) & (at < limit)
            ends[live] = at
            live, at, limit = live[moving], at[moving], limit[moving]
            if len(live) == 0:
                return ends
    ends[live] = at
    for i in live:  # long runs: one vectorised search each, bounded by the caption
        rest = ~TAG_BYTE[data[ends[i] : limits[i]]]
        ends[i] += int(np.argmax(rest)) if rest.any() else len(rest)
    return ends


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


def _views(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Arrow string-view structs (int32 [M, 4]) of the runs data[start:start+length]:
    length, then the bytes inline when <= 12, else a 4-byte prefix, buffer 0, offset."""
    words = _unaligned(data, np.uint32)
    views = np.zeros((len(starts), 4), np.int32)
    views[:, 0] = lengths
    for k in range(3):
        word = words[starts + 4 * k]
        keep = np.clip(lengths - 4 * k, 0, 4).astype(np.uint64)
        mask = ((np.uint64(1) << (keep * np.uint64(8))) - np.uint64(1)).astype(np.uint32)
        views[:, 1 + k] = (word & mask).view(np.int32)
    long = lengths > INLINE
    views[long, 2] = 0  # buffer index
    views[long, 3] = starts[long]
    # a long view's bytes 4..8 are its first four bytes: already in word 0 unmasked
    return views


def _distinct_per_row(rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
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
        captions = captions.combine_chunks()
    if not (pa.types.is_string(captions.type) or pa.types.is_large_string(captions.type)):
        captions = captions.cast(pa.string())
    offsets, data = _offsets_and_data(captions)
    body = data[: len(data) - 16]
    hashes = np.flatnonzero(body == HASH)
    rows = np.searchsorted(offsets, hashes, side="right") - 1
    ends = _run_ends(data, hashes + 1, offsets[rows + 1])
    lengths = ends - hashes - 1
    ok = (lengths > 0) & _prev_char_allows(data, hashes, hashes == offsets[rows])
    if captions.null_count:
        ok &= np.asarray(captions.is_valid())[rows]
    hashes, rows, lengths = hashes[ok], rows[ok], lengths[ok]
    empty = CaptionTags(np.zeros(0, np.int32), np.zeros(0, np.int32), pa.array([], pa.string()))
    if len(hashes) == 0:
        return empty
    views = _views(data, hashes + 1, lengths)
    runs = pa.Array.from_buffers(
        pa.string_view(), len(views), [None, pa.py_buffer(views), pa.py_buffer(data)]
    )
    encoded = pc.dictionary_encode(runs)
    raw = encoded.dictionary.cast(pa.string())
    run_ids = encoded.indices.to_numpy()
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
    rows = rows.astype(np.int32)
    run_ids = run_ids.astype(np.int32)
    first = _distinct_per_row(rows, run_ids)
    return CaptionTags(rows[first], run_ids[first], values)
