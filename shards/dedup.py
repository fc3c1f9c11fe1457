"""Content dedup and evaluation-set decontamination of the fetched samples.

Both act on `shards.build`'s temp table `outcome` (one row per candidate) by turning a
`success` into a failure kind with a reason, so every dropped sample stays a row in
`downloads.parquet` and success + failed == attempted still holds:

    duplicate_image       another success has the same sha256 of its *original* bytes (as
                          downloaded, or as read from disk, before resizing); the group's
                          first in the shards' order (split, order_key, uid) is kept, so
                          the choice is the same on every run with the same seed, a train
                          copy wins over a val copy, and a local run that writes in that
                          order while it reads keeps the first copy it meets
    near_eval_duplicate   the 64-bit dHash of the *stored* (resized) image is within
                          `max_bits` Hamming distance of an image of the evaluation folder

dHash: the image in grayscale, resized to 9 x 8, one bit per horizontally adjacent pair
(left brighter than right), row-major, first pair in the most significant bit. It survives
resizing and re-encoding, which is what web copies of benchmark images go through.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from shards.manifest import SHARD_ORDER

DUPLICATE_IMAGE = "duplicate_image"
NEAR_EVAL_DUPLICATE = "near_eval_duplicate"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")
HASH_BATCH = 256  # stored images decoded per batch when hashing the samples


def dhash(data: bytes) -> int:
    """64-bit difference hash of an encoded image (see the module docstring)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.draft("L", (64, 64))  # JPEG: decode at 1/2..1/8 scale, plenty for 9 x 8
        small = img.convert("L").resize((9, 8), Image.Resampling.BOX)
        pixels = small.tobytes()  # 72 bytes, row-major
    value = 0
    for row in range(8):
        for col in range(8):
            left, right = pixels[row * 9 + col], pixels[row * 9 + col + 1]
            value = (value << 1) | int(left > right)
    return value


def folder_hashes(folder: Path) -> tuple[list[str], list[int]]:
    """(relative names, dHashes) of the decodable images under `folder`, in name order."""
    names, hashes = [], []
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        try:
            hashes.append(dhash(path.read_bytes()))
        except Exception:  # an unreadable eval image cannot leak into training; skip it  # noqa: BLE001
            continue
        names.append(str(path.relative_to(folder)))
    return names, hashes


def mark_content_duplicates(con: Any) -> int:
    """Turn every success whose sha256 a sample earlier in the shards' order (split,
    order_key, uid) already has into `duplicate_image`."""
    con.execute(
        f"""
        UPDATE outcome SET status = '{DUPLICATE_IMAGE}',
               error_message = 'same image bytes (sha256 ' || d.sha256 || ') as uid ' || d.first
        FROM (
            SELECT uid, sha256, first_value(uid) OVER (
                       PARTITION BY sha256 ORDER BY {", ".join(SHARD_ORDER)}) AS first
            FROM outcome WHERE status = 'success' AND sha256 IS NOT NULL
        ) AS d
        WHERE outcome.uid = d.uid AND d.uid <> d.first
        """
    ).fetchall()  # DuckDB: an UPDATE's row count must be read before the next query
    query = f"SELECT count(*) FROM outcome WHERE status = '{DUPLICATE_IMAGE}'"
    return int(con.execute(query).fetchall()[0][0])


def mark_near_eval_duplicates(
    con: Any, stored_sql: str, eval_folder: Path, max_bits: int
) -> dict[str, int]:
    """Turn successes within `max_bits` of an image under `eval_folder` into
    `near_eval_duplicate`. `stored_sql` selects the successes, in uid order, with `uid`,
    `jpg` and the `FileRef` columns (`shards.build.stored_images`): the stored image is the
    jpg, or the local bytes the ref points at. Returns {"eval_images": E,
    "near_eval_duplicates": n}."""
    import numpy as np
    import pyarrow as pa

    from shards.fileref import FileRefReader, stored_bytes

    names, hashes = folder_hashes(eval_folder)
    if not hashes:
        return {"eval_images": 0, "near_eval_duplicates": 0}
    reference = np.array(hashes, dtype=np.uint64)  # [E]
    hits: dict[str, str] = {}
    reader = con.sql(stored_sql).to_arrow_reader(HASH_BATCH)
    with FileRefReader() as refs:
        for batch in reader:
            rows = batch.to_pylist()
            uids = [r["uid"] for r in rows]
            sample = np.array([dhash(stored_bytes(r, refs)) for r in rows], dtype=np.uint64)
            distance = np.bitwise_count(sample[:, None] ^ reference[None, :])  # [B, E]
            nearest = distance.argmin(axis=1)  # [B]
            for i in np.flatnonzero(distance[np.arange(len(uids)), nearest] <= max_bits):
                bits = int(distance[i, nearest[i]])
                hits[uids[i]] = f"dHash within {bits} bits of eval image {names[nearest[i]]}"
    reader.close()  # DuckDB: the connection is busy until its streamed result is closed
    if hits:
        con.register("near_hits", pa.table({"uid": list(hits), "reason": list(hits.values())}))
        con.execute(
            f"UPDATE outcome SET status = '{NEAR_EVAL_DUPLICATE}', error_message = h.reason"
            " FROM near_hits AS h WHERE outcome.uid = h.uid"
        ).fetchall()
    return {"eval_images": len(hashes), "near_eval_duplicates": len(hits)}
