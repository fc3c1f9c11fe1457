"""The byte loop under `labeling.tag_scan`: one pass over a batch's UTF-8 buffer, compiled.

Contract of `scan_bytes(data, offsets, valid, blocked) -> (rows, ids, starts, lengths,
wide_hashes, wide_values)`:

    data      uint8 [B]       the batch's caption bytes (read only up to offsets[N])
    offsets   int64 [N + 1]   caption r is data[offsets[r]:offsets[r + 1]]
    valid     bool [N]        False for a null caption (no tags)
    blocked   int64 [K]       ascending positions of `#` bytes that start no tag (below)

    rows      int32 [P]   caption of each (caption, tag) pair, ascending
    ids       int32 [P]   distinct run of each pair; distinct within a caption, in order of
                          first appearance in the caption
    starts, lengths  int64 [V]   run v is data[starts[v]:starts[v] + lengths[v]], the
                          distinct runs in order of first appearance in the batch
    wide_hashes  int64 [W]  positions of the `#` bytes right after a byte >= 0x80 inside
                          a caption: whether that character is a tag character is decided
                          by the caller (Unicode), which passes the ones that are not back
                          as `blocked` and scans again
    wide_values  bool [V]   run v holds a byte >= 0x80 (the caller trims it to tag chars)

A run is the maximal sequence of tag bytes after a `#`: ASCII letters, digits, `_`, and
every byte >= 0x80 (a UTF-8 sequence is all high bytes, so a run never splits a
character); it ends at the caption's end. The `#` starts a tag when it is the caption's
first byte or follows a byte that is no tag byte and not `/` or `&` (URL fragments,
`&#39;`), or follows a non-ASCII character that is no tag character (`wide_hashes`,
`blocked`). Equal runs are numbered once by an open-addressing hash table over FNV-1a
hashes of their bytes; a match is exact: an entry holds the hash's top bits, the length
and the run's id, and the run's first 16 bytes (`keys`, a small array the cache keeps)
settle runs up to 16 bytes, longer ones comparing their other bytes where they were first
seen. A caption's repeats are dropped through the last caption each run was seen in.
Everything is O(bytes + pairs): ~0.03 s for a 122,880-caption row group (7.6 MB).

Compiled with numba (`cache=True`: the machine code is kept beside this file, or in
numba's user cache when this folder is read-only, so only the first process compiles,
~2 s; with neither writable, every process compiles, with a warning); `warm()` compiles
or loads it before worker processes fork. A row group's arrays grow with its `#` bytes,
not with a caption's length.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from labeling.tag_scan import TAG_BYTE


def _compiled(**options: Any) -> Callable:
    """`numba.njit(cache=True, nogil=True, **options)`, or without `cache` when numba has no
    folder to keep the machine code in (this folder and the user's cache both read-only):
    then every process compiles it again (~2 s) rather than failing."""

    def wrap(function: Callable) -> Any:
        try:
            return njit(cache=True, nogil=True, **options)(function)
        except RuntimeError as err:  # "cannot cache function ...: no locator available"
            warnings.warn(f"{err}; compiling without a cache", stacklevel=2)
            return njit(nogil=True, **options)(function)

    return wrap


HASH, SLASH, AMPERSAND = 35, 47, 38
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
# A slot is the top bits of hash x GOLDEN (Fibonacci hashing), not FNV's low bits.
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
LOW32 = np.uint64(0xFFFFFFFF)


@_compiled()
def scan_bytes(data, offsets, valid, blocked, tag_byte):  # pragma: no cover - compiled
    """See the module docstring; `tag_byte` is `TAG_BYTE`."""
    n = len(offsets) - 1
    size = (offsets[n] - offsets[0]) // 16 + 1024  # a guess at the pairs; grown as needed
    rows, ids = np.empty(size, np.int32), np.empty(size, np.int32)
    starts, lengths = np.empty(size, np.int64), np.empty(size, np.int64)
    hashes, last_row = np.empty(size, np.uint64), np.empty(size, np.int32)
    keys = np.empty(2 * size, np.uint64)
    wide_values, wide_hashes = np.empty(size, np.bool_), np.empty(size, np.int64)
    counts = np.zeros(4, np.int64)  # pairs, distinct runs, wide hashes, next of `blocked`
    # The table starts small and doubles when half full, and the outputs double when they
    # might overflow, between captions: a table that fits the cache is ~2x faster than one
    # sized for the worst case, and rebinding arrays inside the byte loop would cost
    # numba's bookkeeping on every access there.
    bits = 10
    r = 0
    while True:
        table = _rehashed(hashes, lengths, counts[1], bits)
        r = _scan_from(
            r, data, offsets, valid, blocked, tag_byte, table, bits, counts,
            rows, ids, starts, lengths, hashes, keys, last_row, wide_values, wide_hashes,
        )  # fmt: skip
        if r == n:
            break
        most = _most(data, offsets[r], offsets[r + 1])
        while (1 << bits) < 2 * (counts[1] + most):
            bits += 1
        if max(counts[0], counts[2]) + most > len(rows):
            size = 2 * size + most
            rows, ids = _grown(rows, size), _grown(ids, size)
            starts, lengths = _grown(starts, size), _grown(lengths, size)
            hashes, last_row = _grown(hashes, size), _grown(last_row, size)
            keys = _grown(keys, 2 * size)
            wide_values, wide_hashes = _grown(wide_values, size), _grown(wide_hashes, size)
    pairs, distinct, wides = counts[0], counts[1], counts[2]
    return (
        rows[:pairs], ids[:pairs], starts[:distinct], lengths[:distinct],
        wide_hashes[:wides], wide_values[:distinct],
    )  # fmt: skip


@_compiled()
def _scan_from(
    r0, data, offsets, valid, blocked, tag_byte, table, bits, counts,
    rows, ids, starts, lengths, hashes, keys, last_row, wide_values, wide_hashes,
):  # fmt: skip  # pragma: no cover - compiled
    """`scan_bytes`'s loop from caption r0 on, into the output arrays and `counts`; returns
    the caption it stopped before: the end, or one that might fill `table` past half or
    the outputs past their end (all arrays but `table` have one length)."""
    n = len(offsets) - 1
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    pairs, distinct, wides, b = counts[0], counts[1], counts[2], counts[3]
    for r in range(r0, n):
        s = offsets[r]
        e = offsets[r + 1]
        # a caption adds at most one run and one pair per 2 bytes ("#a#b" one, "#a #b" two)
        most = (e - s + 1) // 2
        if 2 * (distinct + most) > (1 << bits) or max(pairs, wides) + most > len(rows):
            most = _most(data, s, e)  # for a long caption, its `#` bytes
            if 2 * (distinct + most) > (1 << bits) or max(pairs, wides) + most > len(rows):
                counts[0], counts[1], counts[2], counts[3] = pairs, distinct, wides, b
                return r
        if not valid[r]:
            continue
        i = s
        while i < e:
            if data[i] != HASH:
                i += 1
                continue
            ok = True
            if i > s:
                p = data[i - 1]
                if p >= 0x80:
                    wide_hashes[wides] = i
                    wides += 1
                    while b < len(blocked) and blocked[b] < i:
                        b += 1
                    ok = not (b < len(blocked) and blocked[b] == i)
                elif tag_byte[p] or p == SLASH or p == AMPERSAND:
                    ok = False
            j = i + 1
            h = FNV_OFFSET
            key = np.uint64(0)  # the run's first 8 bytes, little-endian
            key2 = np.uint64(0)  # its next 8
            high = False
            while j < e:
                c = data[j]
                if not tag_byte[c]:
                    break
                high |= c >= 0x80
                h = (h ^ np.uint64(c)) * FNV_PRIME
                if j - i <= 8:
                    key |= np.uint64(c) << np.uint64(8 * (j - i - 1))
                elif j - i <= 16:
                    key2 |= np.uint64(c) << np.uint64(8 * (j - i - 9))
                j += 1
            length = j - i - 1
            if ok and length > 0:
                tag = _tag(h, length)
                slot = np.int64((h * GOLDEN) >> shift)
                v = -1
                while True:
                    entry = table[slot]
                    if entry == 0:
                        break
                    held = np.int64(entry & LOW32) - 1
                    # the entry, then `keys` (small, cached) settle runs of up to 16 bytes;
                    # longer ones compare their other bytes where they were first seen
                    if (
                        (entry >> np.uint64(32)) == tag
                        and keys[2 * held] == key
                        and keys[2 * held + 1] == key2
                    ):
                        if length <= 16:  # the tag holds the length, the keys every byte
                            v = held
                            break
                        same = lengths[held] == length
                        a = starts[held]
                        for k in range(16, length if same else 0):
                            if data[a + k] != data[i + 1 + k]:
                                same = False
                                break
                        if same:
                            v = held
                            break
                    slot = (slot + 1) & mask
                if v < 0:
                    v = distinct
                    distinct += 1
                    starts[v] = i + 1
                    lengths[v] = length
                    hashes[v] = h
                    keys[2 * v] = key
                    keys[2 * v + 1] = key2
                    last_row[v] = -1
                    wide_values[v] = high
                    table[slot] = (tag << np.uint64(32)) | np.uint64(v + 1)
                if last_row[v] != r:
                    last_row[v] = r
                    rows[pairs] = r
                    ids[pairs] = v
                    pairs += 1
            i = j
    counts[0], counts[1], counts[2], counts[3] = pairs, distinct, wides, b
    return n


@_compiled()
def _most(data, s, e):  # pragma: no cover - compiled
    """The most runs, pairs or wide hashes caption data[s:e] can add: one per 2 bytes, or
    its count of `#` bytes when that is less than a short caption's bound (so a caption of
    100 MB grows nothing in proportion to its length unless it holds that many `#`)."""
    most = (e - s + 1) // 2
    if most <= 4096:
        return most
    hashes = 0
    for i in range(s, e):
        hashes += data[i] == HASH
    return hashes


@_compiled()
def _grown(array, size):  # pragma: no cover - compiled
    out = np.empty(size, array.dtype)
    out[: len(array)] = array
    return out


@_compiled(inline="always")
def _tag(h, length):  # pragma: no cover - compiled
    """A table entry's high 32 bits: the hash's top 24 bits and the length (255 for any
    longer run). An entry is (tag, run + 1), 0 when the slot is empty, so one read tells
    almost every other run apart."""
    return ((h >> np.uint64(40)) << np.uint64(8)) | np.uint64(min(length, 255))


@_compiled()
def _rehashed(hashes, lengths, count, bits):  # pragma: no cover - compiled
    """A table of 2**bits slots (`_scan_from`'s layout) holding runs 0..count-1."""
    table = np.zeros(1 << bits, np.uint64)
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    for v in range(count):
        h = hashes[v]
        slot = np.int64((h * GOLDEN) >> shift)
        while table[slot] != 0:
            slot = (slot + 1) & mask
        table[slot] = (_tag(h, lengths[v]) << np.uint64(32)) | np.uint64(v + 1)
    return table


@_compiled()
def gather_runs(data, starts, lengths):  # pragma: no cover - compiled
    """(offsets int64 [V + 1], bytes uint8) of the runs data[start:start + length]: an
    Arrow string array's buffers."""
    offsets = np.empty(len(starts) + 1, np.int64)
    offsets[0] = 0
    for v in range(len(starts)):
        offsets[v + 1] = offsets[v] + lengths[v]
    out = np.empty(offsets[-1], np.uint8)
    for v in range(len(starts)):
        a = starts[v]
        o = offsets[v]
        for k in range(lengths[v]):
            out[o + k] = data[a + k]
    return offsets, out


def warm() -> None:
    """Compile (or load from numba's cache) both kernels in this process: call it before
    forking workers, so that each does not compile them again."""
    data = np.frombuffer(b"#a\x00", np.uint8)
    offsets = np.array([0, 2], np.int64)
    rows, ids, starts, lengths, _, _ = scan_bytes(
        data, offsets, np.ones(1, np.bool_), np.zeros(0, np.int64), TAG_BYTE
    )
    gather_runs(data, starts, lengths)
