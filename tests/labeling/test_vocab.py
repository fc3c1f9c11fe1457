from __future__ import annotations

import math

import duckdb
import pytest

from curation.errors import UsageError
from labeling.vocab import build_tables, cap_coin

DOG, CAT, BEACH, SAILBOAT = "n02084071", "n02121620", "n09217230", "n04128499"


def _build(tmp_path, write_metadata, mapper, captions, **options):
    uids = write_metadata(tmp_path, captions)
    con = duckdb.connect()
    settings = {"min_count": 1, "max_classes": None, "cap": None, "seed": 0} | options
    counts = build_tables(con, str(tmp_path / "metadata" / "*.parquet"), mapper, **settings)
    return con, uids, counts


def _labels(con):
    """uid -> (class_ids, wnids, hashtags, keep, weight); `labels` holds no wnids: a class's
    wnid comes from `classes`, whose ids run 0..K-1."""
    assert "wnids" not in [c[0] for c in con.execute("DESCRIBE labels").fetchall()]
    rows = con.execute(
        """SELECT uid, class_ids, list_transform(class_ids, lambda c: w.wnids[c + 1]), hashtags,
                  keep, weight
           FROM labels, (SELECT list(wnid ORDER BY class_id) AS wnids FROM classes) w"""
    )
    return {r[0]: r[1:] for r in rows.fetchall()}


def test_min_count_and_max_classes(tmp_path, write_metadata, mapper):
    captions = (
        ["#dog", "#dogs", "#Dogs #dog", "#DOG", "#puppy_dog"]  # puppy_dog: no such lemma
        + ["#cat #beach", "#cats", "#cat", "#beach", "#beaches"]
        + ["#sailboat #love", "#tbt", "no tag"]
    )
    con, uids, counts = _build(
        tmp_path, write_metadata, mapper, captions, min_count=2, max_classes=2
    )
    assert counts["captions"] == 13
    assert counts["captions_with_hashtag"] == 12
    assert (counts["classes_mapped"], counts["classes_after_min_count"]) == (4, 3)
    assert counts["classes_after_max_classes"] == 2
    # dog 5 samples (puppy_dog -> head "dog"), cat 3, beach 3 (tie broken by wnid), sailboat 1
    assert con.execute("SELECT class_id, wnid, count FROM classes ORDER BY 1").fetchall() == [
        (0, DOG, 5),
        (1, CAT, 3),
    ]
    reasons = dict(con.execute("SELECT hashtag, reason FROM tag_final").fetchall())
    assert reasons["beach"] == reasons["beaches"] == "beyond_max_classes"
    assert reasons["sailboat"] == "below_min_count"
    assert reasons["love"] == reasons["tbt"] == "stoplisted"
    assert reasons["Dogs"] is None and reasons["cats"] is None
    labels = _labels(con)
    assert counts["captions_with_label"] == len(labels) == 8
    assert labels[uids[2]][:3] == ([0], [DOG], ["Dogs", "dog"])
    assert labels[uids[5]][:3] == ([1], [CAT], ["cat"])  # beach dropped from this sample
    assert uids[8] not in labels  # only beach: no label left
    assert counts["mean_labels_per_sample"] == 1.0
    assert all(keep for *_, keep, _ in labels.values())
    assert labels[uids[0]][4] / labels[uids[5]][4] == pytest.approx(math.sqrt(3 / 5), rel=1e-6)


def test_class_ids_ascending_and_weights_without_cap(tmp_path, write_metadata, mapper):
    captions = ["#dog"] * 4 + ["#cat"] + ["#cat #dog #beach"]
    con, uids, counts = _build(tmp_path, write_metadata, mapper, captions)
    labels = _labels(con)
    assert labels[uids[5]][:3] == ([0, 1, 2], [DOG, CAT, BEACH], ["beach", "cat", "dog"])
    assert counts["samples_kept_after_cap"] == 6  # no cap: every labeled sample is kept
    assert counts["mean_labels_per_sample"] == pytest.approx(8 / 6, abs=1e-4)
    kept = dict(con.execute("SELECT class_id, kept_count FROM kept_counts").fetchall())
    assert kept == {0: 5, 1: 2, 2: 1}
    raw = {
        uids[0]: 1 / math.sqrt(5),
        uids[4]: 1 / math.sqrt(2),
        uids[5]: (1 / math.sqrt(5) + 1 / math.sqrt(2) + 1) / 3,
    }
    mean_raw = (4 * raw[uids[0]] + raw[uids[4]] + raw[uids[5]]) / 6
    for uid, expected in raw.items():
        assert labels[uid][4] == pytest.approx(expected / mean_raw, rel=1e-5)
    weights = [w for *_, w in labels.values()]
    assert sum(weights) / len(weights) == pytest.approx(1.0, rel=1e-6)


def test_frequency_cap_is_seeded_and_keeps_about_cap_per_head_class(
    tmp_path, write_metadata, mapper
):
    captions = ["#dog"] * 400 + ["#cat"] * 200 + ["#beach"] * 10 + ["#dog #cat"] * 30
    cap, seed = 50, 7
    con, uids, counts = _build(tmp_path, write_metadata, mapper, captions, cap=cap, seed=seed)
    labels = _labels(con)
    count = {DOG: 430, CAT: 230, BEACH: 10}
    expected_keep = {
        uid: any(cap_coin(seed, uid, w) < min(1.0, cap / count[w]) for w in wnids)
        for uid, (_, wnids, *_) in labels.items()
    }
    assert {uid: row[3] for uid, row in labels.items()} == expected_keep  # SQL coin == Python
    assert counts["samples_kept_after_cap"] == sum(expected_keep.values())
    vocab = {w: (n, k) for w, n, k in con.execute(
        "SELECT wnid, count, kept_count FROM classes JOIN kept_counts USING (class_id)"
    ).fetchall()}  # fmt: skip
    assert {w: n for w, (n, _) in vocab.items()} == count
    assert vocab[BEACH][1] == 10  # a tail class keeps everything
    assert 35 <= vocab[DOG][1] <= 80 and 35 <= vocab[CAT][1] <= 80  # ~cap, plus co-labels
    kept_weights = [row[4] for row in labels.values() if row[3]]
    assert sum(kept_weights) / len(kept_weights) == pytest.approx(1.0, rel=1e-6)
    assert all(row[4] == 0.0 for row in labels.values() if not row[3])

    again, _, _ = _build(tmp_path, write_metadata, mapper, captions, cap=cap, seed=seed)
    assert _labels(again) == labels
    other, _, _ = _build(tmp_path, write_metadata, mapper, captions, cap=cap, seed=seed + 1)
    assert {u: r[3] for u, r in _labels(other).items()} != expected_keep


def test_cap_coin_is_uniform_and_stable():
    coins = [cap_coin(0, f"{i:016x}", DOG) for i in range(2000)]
    assert all(0.0 <= c < 1.0 for c in coins)
    assert 0.45 < sum(coins) / len(coins) < 0.55
    assert cap_coin(3, "00000000000000ab", DOG) == cap_coin(3, "00000000000000ab", DOG)
    assert cap_coin(3, "00000000000000ab", DOG) != cap_coin(4, "00000000000000ab", DOG)


def test_nothing_maps_is_a_usage_error(tmp_path, write_metadata, mapper):
    with pytest.raises(UsageError, match="maps to a visual WordNet noun"):
        _build(tmp_path, write_metadata, mapper, ["#love #tbt", "#2019", "#xyzzyqw", None])


def test_nothing_reaches_min_count_is_a_usage_error(tmp_path, write_metadata, mapper):
    with pytest.raises(UsageError, match="--min-count"):
        _build(tmp_path, write_metadata, mapper, ["#dog", "#cat"], min_count=2)
