"""The class vocabulary and per-sample labels, built set-wise in DuckDB.

Only the distinct hashtags pass through Python (`HashtagMapper`); counting, filtering,
joining back to samples, the frequency cap and the weights are SQL over every caption.
The steps share one DuckDB connection and leave these temp tables behind:

    caption_tags   (uid, tags[])                 tagged captions, tags distinct (hashtags.py)
    tag_counts     (tag, count)                  captions per written tag
    tag_map        (tag, canonical, wnid, reason, lexname, sid)  the mapper's verdict per tag
    synsets        (sid, wnid)                   the wnids a label can come from, 0..S-1
    sense_override (uid, tag, wnid)              `--context-senses` (labeling/context.py)
    sample_synsets (uid, tags[], tag_sids[])     per sample its mappable tags and their sids
    class_counts   (sid, wnid, count)            samples per mappable synset
    classes        (class_id, wnid, count, sid)  the vocabulary, class_id 0..K-1
    tag_final      (tag, count, canonical, wnid, reason)  + below_min_count, beyond_max_classes
    sample_labels  (uid, class_ids[], hashtags[], kept[])  kept: each class's coin
    kept_counts    (class_id, kept_count)        samples per class among the kept
    labels         (uid, class_ids, hashtags, keep, weight)  no wnids: class_id indexes classes

Only `sample_synsets` is grouped by sample (one hash aggregate); the later steps are
row-wise list operations against small per-class lookup lists.

Rules. A class's `count` is the number of distinct samples carrying it (through any of its
tags). Classes with count < min_count are dropped, then only the `max_classes` most
frequent stay; class_id orders the survivors by count descending, then wnid.

Frequency cap (MetaCLIP-style): a (sample, class) pair survives when its coin
`cap_coin(seed, uid, wnid)` < min(1, cap / count); a sample is kept when any of its pairs
survives, so a head class keeps about `cap` samples (a little more through co-labels) and
a tail class keeps all of them. The coin is the first 52 bits of
md5("{seed}:{uid}:{wnid}") / 2**52: reproducible across machines and DuckDB versions, and
keyed by wnid rather than class_id so a sample's coin for a class survives a rebuild that
renumbers classes. Without a cap every sample is kept.

Weight: for a kept sample, the mean over its classes of 1 / sqrt(kept_count), scaled so
the mean over kept samples is 1 (class-balanced resampling, Mahajan et al. 2018); 0 for
samples the cap dropped.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from curation.errors import UsageError
from curation.sql import sql_literal
from labeling.hashtags import WORD_MARK, create_caption_tags, kind_of
from labeling.mapper import HashtagMapper

COIN_BITS = 52  # 13 hex digits: exact in a double, so SQL and Python agree bit for bit


def cap_coin(seed: int, uid: str, wnid: str) -> float:
    """The frequency cap's uniform [0, 1) draw for one (sample, class); same as the SQL."""
    digest = hashlib.md5(f"{seed}:{uid}:{wnid}".encode()).hexdigest()
    return int(digest[: COIN_BITS // 4], 16) / 2**COIN_BITS


def _coin_sql(seed: int) -> str:
    key = f"'{int(seed)}:' || uid || ':' || wnid"
    return f"('0x' || substr(md5({key}), 1, {COIN_BITS // 4}))::BIGINT / {2**COIN_BITS}.0"


def count_hashtags(con: Any, metadata_glob: str, source: str = "hashtags") -> dict[str, int]:
    """Create `caption_tags` and `tag_counts` from the metadata parquet parts; `source`:
    `hashtags`, `caption` (the caption's words) or `both` (`hashtags.create_caption_tags`)."""
    create_caption_tags(con, metadata_glob, source=source)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE tag_counts AS SELECT tag, count(*)::BIGINT AS count "
        "FROM (SELECT unnest(tags) AS tag FROM caption_tags) GROUP BY tag"
    )
    # uid is unique in metadata (ingest's contract), so rows are captions
    captions = con.execute(
        f"SELECT count(*) FROM read_parquet({sql_literal(metadata_glob)})"
    ).fetchone()[0]
    with_tag, distinct = con.execute(
        "SELECT (SELECT count(*) FROM caption_tags), (SELECT count(*) FROM tag_counts)"
    ).fetchone()
    return {"captions": captions, "captions_with_hashtag": with_tag, "distinct_hashtags": distinct}


def map_hashtags(con: Any, mapper: HashtagMapper, context: bool = False) -> dict[str, int]:
    """Run every distinct tag through `mapper` once; create `tag_map` and `synsets(sid, wnid)`,
    which numbers 0..S-1 the wnids a label can come from (mappable tags' senses, and with
    `context` every candidate sense of an ambiguous tag: `labeling.context`)."""
    import pyarrow as pa

    from labeling import context as context_rule

    tags = [tag for (tag,) in con.execute("SELECT tag FROM tag_counts ORDER BY tag").fetchall()]
    mark = len(WORD_MARK)
    mapped = [mapper.map_word(t[mark:]) if kind_of(t) == "word" else mapper.map(t) for t in tags]
    table = pa.table(
        {
            "tag": pa.array(tags, pa.string()),
            "canonical": pa.array([m.canonical for m in mapped], pa.string()),
            "wnid": pa.array([m.wnid for m in mapped], pa.string()),
            "reason": pa.array([m.reason for m in mapped], pa.string()),
            "lexname": pa.array([m.lexname for m in mapped], pa.string()),
        }
    )
    counts = {"hashtags_mapped": sum(m.reason is None for m in mapped)}
    candidates = "SELECT NULL::VARCHAR AS wnid WHERE false"
    if context:
        counts |= context_rule.create_context_tables(con, mapper, tags, mapped)
        candidates = "SELECT wnid FROM sense_candidates"
    con.register("tag_map_arrow", table)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE synsets AS
            SELECT (row_number() OVER (ORDER BY wnid) - 1)::INTEGER AS sid, wnid
            FROM (SELECT wnid FROM tag_map_arrow WHERE reason IS NULL UNION {candidates})"""
    )
    con.execute(
        """CREATE OR REPLACE TEMP TABLE tag_map AS
           SELECT t.*, s.sid FROM tag_map_arrow t
           LEFT JOIN synsets s ON t.reason IS NULL AND s.wnid = t.wnid"""
    )
    con.unregister("tag_map_arrow")
    if context:
        counts["senses_moved_by_context"] = context_rule.create_sense_override(con)
    else:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE sense_override (uid VARCHAR, tag VARCHAR, wnid VARCHAR)"
        )
    return counts


def _sample_synsets(con: Any) -> None:
    """Create `sample_synsets(uid, tags VARCHAR[], tag_sids INTEGER[])`: per tagged caption
    its mappable tags (sorted) and each one's synset number (the context rule's where it
    moved the sense); the one GROUP BY over samples. An unordered list of structs sorted
    per row is ~2x faster than `list(... ORDER BY ...)` aggregates."""
    overridden = con.execute("SELECT count(*) FROM sense_override").fetchone()[0] > 0
    sid = "coalesce(s.sid, m.sid)" if overridden else "m.sid"
    override = (
        """LEFT JOIN sense_override o ON o.uid = ct.uid AND o.tag = ct.tag
           LEFT JOIN synsets s ON s.wnid = o.wnid"""
        if overridden
        else ""
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE sample_synsets AS
        SELECT uid, list_transform(pairs, lambda p: p.tag) AS tags,
               list_transform(pairs, lambda p: p.sid) AS tag_sids
        FROM (
            SELECT ct.uid, list_sort(list({{'tag': ct.tag, 'sid': {sid}}})) AS pairs
            FROM (SELECT uid, unnest(tags) AS tag FROM caption_tags) ct
            JOIN tag_map m ON m.tag = ct.tag AND m.sid IS NOT NULL
            {override}
            GROUP BY ct.uid
        )
        """
    )


def select_classes(con: Any, min_count: int, max_classes: int | None) -> dict[str, int]:
    """Count samples per synset, apply min_count and max_classes; create `classes`."""
    _sample_synsets(con)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE class_counts AS
        WITH per_sid AS (
            SELECT sid, count(*)::BIGINT AS count
            FROM (SELECT unnest(list_distinct(tag_sids)) AS sid FROM sample_synsets)
            GROUP BY sid
        )
        SELECT p.sid, s.wnid, p.count FROM per_sid p JOIN synsets s USING (sid)
        """
    )
    limit = "" if max_classes is None else f"LIMIT {int(max_classes)}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE classes AS
        SELECT (row_number() OVER (ORDER BY count DESC, wnid) - 1)::INTEGER AS class_id,
               wnid, count, sid
        FROM (SELECT * FROM class_counts WHERE count >= {int(min_count)}
              ORDER BY count DESC, wnid {limit})
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE tag_final AS
        SELECT m.tag AS hashtag, tc.count, m.canonical, m.wnid,
               CASE WHEN m.reason IS NOT NULL THEN m.reason
                    WHEN cc.count < {int(min_count)} THEN 'below_min_count'
                    WHEN c.class_id IS NULL THEN 'beyond_max_classes' END AS reason
        FROM tag_map m JOIN tag_counts tc USING (tag)
        LEFT JOIN class_counts cc USING (wnid)
        LEFT JOIN classes c USING (wnid)
        """
    )
    before, after_min, after_max = con.execute(
        f"""SELECT (SELECT count(*) FROM class_counts),
                   (SELECT count(*) FROM class_counts WHERE count >= {int(min_count)}),
                   (SELECT count(*) FROM classes)"""
    ).fetchone()
    return {
        "classes_mapped": before,
        "classes_after_min_count": after_min,
        "classes_after_max_classes": after_max,
    }


def assign_labels(con: Any, cap: int | None, seed: int) -> dict[str, Any]:
    """Look classes up per sample, apply the frequency cap, weigh; create `labels`.

    Row-wise list operations against small lookup lists that the lambdas capture
    (`class_of[sid + 1]`, `wnid_of[class_id + 1]`, ...): no join or GROUP BY over samples.
    """
    threshold = "1.0" if cap is None else f"least(1.0, {int(cap)} / count)"
    coin = _coin_sql(seed).replace("wnid", "wnid_of[c + 1]")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE sample_labels AS
        WITH lookup AS (
            SELECT list(c.class_id ORDER BY s.sid) AS class_of
            FROM (SELECT range::INTEGER AS sid
                  FROM range((SELECT count(*) FROM synsets))) s
            LEFT JOIN classes c USING (sid)
        ), by_class AS (
            SELECT list(wnid ORDER BY class_id) AS wnid_of,
                   list({threshold} ORDER BY class_id) AS threshold_of
            FROM classes
        ), per_tag AS (
            SELECT uid, tags, list_transform(tag_sids, lambda x: class_of[x + 1]) AS tag_classes
            FROM sample_synsets, lookup
        ), labeled AS (
            SELECT uid, list_sort(list_distinct(tag_classes)) AS class_ids,
                   list_filter(tags, lambda t, i: tag_classes[i] IS NOT NULL) AS hashtags
            FROM per_tag
        )
        SELECT uid, class_ids, hashtags,
               list_transform(class_ids, lambda c: {coin} < threshold_of[c + 1]) AS kept
        FROM labeled, by_class
        WHERE len(class_ids) > 0
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE kept_counts AS
        SELECT class_id, count(*)::BIGINT AS kept_count
        FROM (SELECT unnest(class_ids) AS class_id FROM sample_labels
              WHERE list_contains(kept, true))
        GROUP BY class_id
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE labels AS
        WITH kept_of AS (
            SELECT list(coalesce(k.kept_count, 1) ORDER BY c.class_id) AS kept_of
            FROM classes c LEFT JOIN kept_counts k USING (class_id)
        ), per_sample AS (
            SELECT uid, class_ids, hashtags, list_contains(kept, true) AS keep,
                   -- DECIMAL sums are exact, so summation order cannot change bits
                   list_sum(list_transform(class_ids, lambda c:
                       (1.0 / sqrt(kept_of[c + 1]))::DECIMAL(38, 18)))::DOUBLE
                       / len(class_ids) AS raw_weight
            FROM sample_labels, kept_of
        )
        SELECT uid, class_ids, hashtags, keep,
               CASE WHEN keep THEN raw_weight::DOUBLE / (
                   SELECT sum(raw_weight::DECIMAL(38, 18))::DOUBLE / count(*)
                   FROM per_sample WHERE keep)
                    ELSE 0.0 END AS weight
        FROM per_sample
        """
    )
    with_label, kept, mean_labels = con.execute(
        "SELECT count(*), count(*) FILTER (keep), coalesce(avg(len(class_ids)), 0) FROM labels"
    ).fetchone()
    return {
        "captions_with_label": with_label,
        "samples_kept_after_cap": kept,
        "mean_labels_per_sample": round(float(mean_labels), 4),
    }


def build_tables(
    con: Any,
    metadata_glob: str,
    mapper: HashtagMapper,
    *,
    min_count: int,
    max_classes: int | None,
    cap: int | None,
    seed: int,
    source: str = "hashtags",
    context_senses: bool = False,
) -> dict[str, Any]:
    """All steps above; UsageError when no hashtag maps or no class survives min_count."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 3)
        clock = now

    counts: dict[str, Any] = count_hashtags(con, metadata_glob, source)
    lap("count_hashtags")
    counts |= map_hashtags(con, mapper, context_senses)
    lap("map_hashtags")
    if counts["hashtags_mapped"] == 0:
        raise UsageError(
            f"none of the {counts['distinct_hashtags']} distinct hashtags in "
            f"{counts['captions']} captions maps to a visual WordNet noun: nothing to label"
        )
    counts |= select_classes(con, min_count, max_classes)
    if counts["classes_after_max_classes"] == 0:
        raise UsageError(
            f"no class has at least {min_count} samples (of {counts['classes_mapped']} "
            "mapped classes): lower --min-count"
        )
    lap("select_classes")
    counts |= assign_labels(con, cap, seed)
    lap("assign_labels")
    counts["hashtags_by_reason"] = dict(
        con.execute(
            "SELECT coalesce(reason, 'label'), count(*) FROM tag_final GROUP BY ALL ORDER BY 1"
        ).fetchall()
    )
    counts["seconds_by_step"] = seconds
    return counts


def write_vocab(con: Any, mapper: HashtagMapper, path: Path) -> list[str]:
    """Write vocab.parquet; return the wnids in class_id order.

    Schema: class_id int32 · wnid string · name string (first lemma, spaces) ·
    lemmas list<string> · lexname string · count int64 · kept_count int64.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = con.execute(
        "SELECT c.class_id, c.wnid, c.count, coalesce(k.kept_count, 0) FROM classes c "
        "LEFT JOIN kept_counts k USING (class_id) ORDER BY c.class_id"
    ).fetchall()
    synsets = [mapper.record(wnid) for _, wnid, _, _ in rows]
    lemmas = [s.lemma_names() for s in synsets]
    table = pa.table(
        {
            "class_id": pa.array([r[0] for r in rows], pa.int32()),
            "wnid": pa.array([r[1] for r in rows], pa.string()),
            "name": pa.array([names[0].replace("_", " ") for names in lemmas], pa.string()),
            "lemmas": pa.array(lemmas, pa.list_(pa.string())),
            "lexname": pa.array([s.lexname() for s in synsets], pa.string()),
            "count": pa.array([r[2] for r in rows], pa.int64()),
            "kept_count": pa.array([r[3] for r in rows], pa.int64()),
        }
    )
    pq.write_table(table, path)
    return [r[1] for r in rows]


def write_hashtags(con: Any, path: Path) -> None:
    """Write hashtags.parquet, most frequent first.

    Schema: hashtag string · kind string (`hashtag`, or `word` for a caption word under
    `--source caption|both`) · count int64 · canonical string · wnid string|null ·
    reason string|null (null iff the tag became a label).
    """
    con.execute(
        f"""COPY (SELECT {_unmarked("hashtag")} AS hashtag,
                         CASE WHEN starts_with(hashtag, '{WORD_MARK}') THEN 'word'
                              ELSE 'hashtag' END AS kind,
                         count, canonical, wnid, reason FROM tag_final
                  ORDER BY count DESC, hashtag)
            TO {sql_literal(str(path))} (FORMAT parquet)"""
    )


def write_labels(con: Any, path: Path) -> None:
    """Write one labels part, sorted by uid.

    Schema: uid string · class_ids list<int32> ascending · hashtags list<string> (sorted;
    the tags, and caption words under `--source caption|both`, that gave those classes) ·
    keep bool · weight float32 (mean 1 over kept samples, 0 when not kept). No wnids:
    class_id c is row c of vocab.parquet (`curate sql`'s labels view adds them).
    """
    con.execute(
        f"""COPY (SELECT uid, class_ids::INTEGER[] AS class_ids,
                         list_transform(hashtags, lambda h: {_unmarked("h")}) AS hashtags, keep,
                         weight::FLOAT AS weight FROM labels ORDER BY uid)
            TO {sql_literal(str(path))} (FORMAT parquet)"""
    )


def _unmarked(column: str) -> str:
    """SQL: `column` without the caption-word mark."""
    return f"CASE WHEN starts_with({column}, '{WORD_MARK}') THEN {column}[2:] ELSE {column} END"
