"""Hashtag extraction over Arrow string buffers: `hashtags_sql`'s tags, set-wise.

Contract: `scan_captions(captions)` returns, for a string array of captions, the distinct
hashtags of every caption as integer pairs over a batch dictionary:

    CaptionTags.rows    int32 [P]   caption index in `captions`, ascending
    CaptionTags.ids     int32 [P]   index into `values`; distinct within a caption
    CaptionTags.values  pa.string [V]   the batch's distinct tags, as written

The tags are exactly those of `labeling.hashtags.hashtags_sql` (`tests/labeling/
test_tag_scan.py` compares both on hostile captions): `#` followed by a maximal run of
`[\\pL\\pM\\pN_]` characters, the `#` at the caption's start or after a character that is
none of those and not `/` or `&`. Null captions have no tags.

How. One compiled pass over the batch's UTF-8 buffer (`labeling.tag_kernel.scan_bytes`)
finds each `#`, its run and its caption, numbers equal runs through a hash table and drops a
caption's repeats; no Python loop per caption or per tag. Non-ASCII is decided exactly and
only where it occurs: a distinct run holding a non-ASCII character is cut at its first
character that is no tag character, and a `#` after a non-ASCII character looks that
character up (a letter there blocks the tag, and the batch is scanned once more with the
blocked positions); both look-ups use the same RE2 character class in DuckDB
(`is_tag_char`), so Unicode tables cannot drift from the SQL path. Those are per distinct
run or character, not per caption.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Byte class: can this byte belong to a tag run? Bytes >= 0x80 are candidates, decided later.
TAG_BYTE = np.zeros(256, np.bool_)
_ASCII_TAG_BYTES = b"0123456789_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TAG_BYTE[np.frombuffer(_ASCII_TAG_BYTES, np.uint8)] = True
TAG_BYTE[0x80:] = True
STRING_BYTES = 2**31 - 1  # an Arrow string array's bytes end here (int32 offsets)


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
    """The offsets (int64 [N+1], positions in the data buffer) and UTF-8 bytes (uint8, the
    Arrow buffer itself, read-only, not copied) of a string or large_string array."""
    import pyarrow as pa

    n = len(captions)
    width = 8 if pa.types.is_large_string(captions.type) else 4
    _, offsets_buf, data_buf = captions.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32 if width == 4 else np.int64)
    offsets = offsets[captions.offset : captions.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    data.flags.writeable = False  # one type for every buffer: one compiled kernel
    return offsets, data


def _blocked_hashes(data: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Of the `#` positions that follow a non-ASCII byte, those after a tag character
    (`is_tag_char`): they start no tag. Each character is read back from its lead byte as
    its UTF-8 bytes packed in one integer, and only the distinct ones are decoded and
    looked up (a row group of `😍#love` captions holds one)."""
    starts = hashes - 1
    for _ in range(3):  # back over UTF-8 continuation bytes (10xxxxxx) to the lead byte
        cont = (data[starts] & 0xC0) == 0x80
        starts = np.where(cont, starts - 1, starts)
    packed = np.zeros(len(hashes), np.uint32)
    for k in range(4):  # a character is 2-4 bytes: byte k of each, while before its `#`
        at = np.minimum(starts + k, hashes - 1)
        packed = np.where(starts + k < hashes, packed << 8 | data[at], packed)
    _, first, back = np.unique(packed, return_index=True, return_inverse=True)
    chars = [bytes(data[starts[i] : hashes[i]]).decode("utf-8") for i in first]
    letters = np.array(is_tag_char(chars), dtype=np.bool_)
    return hashes[letters[back]]


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

    from labeling.tag_kernel import gather_runs, scan_bytes

    if isinstance(captions, pa.ChunkedArray):
        if captions.nbytes >= STRING_BYTES and pa.types.is_string(captions.type):
            # int32 offsets end at 2 GiB: past that, chunks combine only with int64 ones
            captions = captions.cast(pa.large_string())
        captions = captions.combine_chunks()
    if not (pa.types.is_string(captions.type) or pa.types.is_large_string(captions.type)):
        captions = captions.cast(pa.string())
    offsets, data = _offsets_and_data(captions)
    if captions.null_count:
        valid = np.array(captions.is_valid())
    else:
        valid = np.ones(len(captions), np.bool_)
    blocked = np.zeros(0, np.int64)
    rows, ids, starts, lengths, wide_hashes, wide = scan_bytes(
        data, offsets, valid, blocked, TAG_BYTE
    )
    if len(wide_hashes):  # a `#` after a non-ASCII character: scan again if it is a letter
        blocked = _blocked_hashes(data, wide_hashes)
        if len(blocked):
            rows, ids, starts, lengths, _, wide = scan_bytes(
                data, offsets, valid, blocked, TAG_BYTE
            )
    text_offsets, text = gather_runs(data, starts, lengths)
    raw = pa.LargeStringArray.from_buffers(
        len(starts), pa.py_buffer(text_offsets), pa.py_buffer(text)
    ).cast(pa.string())
    if not wide.any():
        return CaptionTags(rows, ids, raw)
    # Runs with non-ASCII bytes: cut at the first character that is no tag character.
    trimmed = raw.to_pylist()
    at = np.flatnonzero(wide)
    for i, run in zip(at, trim_runs([trimmed[i] for i in at]), strict=True):
        trimmed[i] = run or None
    final = pc.dictionary_encode(pa.array(trimmed, pa.string()))
    remap = final.indices.fill_null(-1).to_numpy().astype(np.int32)
    ids = remap[ids]
    tagged = ids >= 0
    rows, ids = rows[tagged], ids[tagged]
    first = distinct_per_row(rows, ids)
    return CaptionTags(rows[first], ids[first], final.dictionary)
