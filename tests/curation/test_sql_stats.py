import json

import pyarrow as pa
import pyarrow.parquet as pq

from curation.cli import main as curate
from curation.stats import collect_stats


def make_dataset(tmp_path):
    root = tmp_path / "ds"
    pq.write_table(
        pa.table({"url": [f"http://h/{i}.jpg" for i in range(6)], "caption": ["#dog"] * 6}),
        tmp_path / "in.parquet",
    )
    assert curate(["ingest", str(tmp_path / "in.parquet"), "--root", str(root)]) == 0
    (root / "vocab").mkdir()
    pq.write_table(
        pa.table({"class_id": pa.array([0, 1], pa.int32()), "wnid": ["n02084071", "n02121620"],
                  "name": ["dog", "cat"], "count": [4, 2], "kept_count": [3, 2]}),
        root / "vocab" / "vocab.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({"hashtag": ["dog", "love"], "count": [6, 2], "wnid": ["n02084071", None],
                  "reason": [None, "stoplisted"]}),
        root / "vocab" / "hashtags.parquet",
    )  # fmt: skip
    run = root / "runs" / "mae"
    run.mkdir(parents=True)
    run.joinpath("log.jsonl").write_text(
        "".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in (1, 2, 3))
    )
    return root


def test_sql_sees_every_view(tmp_path, capsys):
    root = make_dataset(tmp_path)
    capsys.readouterr()
    query = ("SELECT (SELECT count(*) FROM metadata) AS m,"
             " (SELECT sum(kept_count) FROM vocab) AS k,"
             " (SELECT count(*) FROM hashtags WHERE reason IS NULL) AS h,"
             " (SELECT max(step) FROM logs WHERE run = 'mae') AS s")  # fmt: skip
    assert curate(["sql", "--root", str(root), "--format", "json", query]) == 0
    assert json.loads(capsys.readouterr().out) == {"m": 6, "k": 5, "h": 1, "s": 3}


def test_sql_errors_name_the_views(tmp_path, capsys):
    root = make_dataset(tmp_path)
    capsys.readouterr()
    assert curate(["sql", "--root", str(root), "SELECT * FROM shards"]) == 2
    err = capsys.readouterr().err
    assert "views: hashtags, logs, metadata, vocab" in err and len(err.strip().splitlines()) == 1
    assert curate(["sql", "--root", str(tmp_path / "nope"), "SELECT 1"]) == 2


def test_stats_counts(tmp_path, capsys):
    root = make_dataset(tmp_path)
    stats = collect_stats(root)
    assert stats["stages"]["metadata"]["samples"] == 6
    outcomes = stats["tables"]["hashtag outcomes"]
    assert sorted(r[:3] for r in outcomes["rows"]) == [("label", 1, 6), ("stoplisted", 1, 2)]
    assert [r[2] for r in stats["tables"]["largest classes"]["rows"]] == ["dog", "cat"]
    out = tmp_path / "stats.json"
    assert curate(["stats", "--root", str(root), "--json", str(out)]) == 0
    assert "largest classes" in capsys.readouterr().out
    assert json.loads(out.read_text())["stages"]["metadata"]["duplicates_dropped"] == 0


def test_labels_view_looks_wnids_up_in_the_vocab(tmp_path, capsys):
    """Label files hold class ids only; `curate sql` still answers `SELECT uid, wnids`."""
    root = tmp_path / "ds"
    captions = ["#dog #cat", "#dog", "#cats", "#beach #dog", "#love"]
    pq.write_table(
        pa.table({"url": [f"http://h/{i}.jpg" for i in range(5)], "caption": captions}),
        tmp_path / "in.parquet",
    )
    assert curate(["ingest", str(tmp_path / "in.parquet"), "--root", str(root)]) == 0
    assert curate(["build-vocab", "--root", str(root), "--min-count", "1"]) == 0
    part = pq.read_table(root / "labels" / "part-00000.parquet")
    assert part.column_names == ["uid", "class_ids", "hashtags", "keep", "weight"]
    capsys.readouterr()
    query = "SELECT uid, wnids FROM labels ORDER BY uid"
    assert curate(["sql", "--root", str(root), "--format", "json", query]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    wnid_of = {r["class_id"]: r["wnid"] for r in pq.read_table(root / "vocab" / "vocab.parquet")
               .to_pylist()}  # fmt: skip
    dog, cat, beach = "n02084071", "n02121620", "n09217230"
    assert sorted(wnid_of.values()) == sorted([dog, cat, beach])
    expected = {r["uid"]: [wnid_of[c] for c in r["class_ids"]] for r in part.to_pylist()}
    assert {r["uid"]: r["wnids"] for r in got} == expected
    labels = sorted(map(sorted, expected.values()))  # the captions' classes, each caption
    assert labels == sorted(map(sorted, [[dog, cat], [dog], [cat], [beach, dog]]))


def test_labels_view_over_old_label_files_and_a_broken_vocab(tmp_path, capsys):
    """Older label files store `wnids`: the view looks them up all the same (one column);
    a vocabulary whose ids have a gap fails a query that reads wnids with one line, exit 2,
    and leaves other queries alone."""
    root = make_dataset(tmp_path)  # vocab: 0 dog, 1 cat
    (root / "labels").mkdir()
    pq.write_table(
        pa.table({"uid": ["a", "b"], "class_ids": pa.array([[0, 1], [1]], pa.list_(pa.int32())),
                  "wnids": [["stale", "stale"], ["stale"]], "hashtags": [["dog", "cat"], ["cat"]],
                  "keep": [True, True], "weight": pa.array([1.0, 1.0], pa.float32())}),
        root / "labels" / "part-00000.parquet",
    )  # fmt: skip
    capsys.readouterr()
    query = "SELECT * FROM labels ORDER BY uid"
    assert curate(["sql", "--root", str(root), "--format", "json", query]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["uid"], r["wnids"]) for r in rows] == [
        ("a", ["n02084071", "n02121620"]), ("b", ["n02121620"])
    ]  # fmt: skip
    assert list(rows[0]) == ["uid", "class_ids", "hashtags", "keep", "weight", "wnids"]

    pq.write_table(
        pa.table({"class_id": pa.array([0, 2], pa.int32()), "wnid": ["n02084071", "n02121620"]}),
        root / "vocab" / "vocab.parquet",
    )
    assert (
        curate(["sql", "--root", str(root), "--format", "csv", "SELECT uid, wnids FROM labels"])
        == 2
    )
    err = capsys.readouterr().err
    assert "class_id must run 0..K-1" in err and len(err.strip().splitlines()) == 1
    assert (
        curate(["sql", "--root", str(root), "--format", "csv", "SELECT count(*) FROM labels"]) == 0
    )
    assert capsys.readouterr().out.splitlines() == ["count_star()", "2"]


def test_labels_view_refuses_a_class_id_beyond_the_vocab(tmp_path, capsys):
    """A label naming class 2 (or -1, or -2: a negative list index counts from the end)
    when vocab.parquet has classes 0 and 1: reading `wnids` fails with one line naming
    the uid and class, instead of showing null (or another class's wnid)."""
    root = make_dataset(tmp_path)  # vocab: 0 dog, 1 cat
    (root / "labels").mkdir()
    for bad in (2, -1, -2):
        pq.write_table(
            pa.table({"uid": ["a", "b"],
                      "class_ids": pa.array([[0, 1], [1, bad]], pa.list_(pa.int32())),
                      "hashtags": [["dog", "cat"], ["cat", "x"]], "keep": [True, True],
                      "weight": pa.array([1.0, 1.0], pa.float32())}),
            root / "labels" / "part-00000.parquet",
        )  # fmt: skip
        capsys.readouterr()
        query = "SELECT uid, wnids FROM labels ORDER BY uid"
        assert curate(["sql", "--root", str(root), "--format", "json", query]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1
        assert f"labels: uid b names class_id {bad} but vocab.parquet has 2 classes" in err
        assert "run `curate build-vocab` again" in err
        query = "SELECT uid, wnids FROM labels WHERE uid = 'a'"
        assert curate(["sql", "--root", str(root), "--format", "json", query]) == 0
        assert json.loads(capsys.readouterr().out) == {
            "uid": "a", "wnids": ["n02084071", "n02121620"]
        }  # fmt: skip
        assert curate(["sql", "--root", str(root), "--format", "csv", "SELECT * FROM labels"]) == 2
        capsys.readouterr()
        count = "SELECT count(*) FROM labels"
        assert curate(["sql", "--root", str(root), "--format", "csv", count]) == 0
        assert capsys.readouterr().out.splitlines() == ["count_star()", "2"]
    # a null class id, and a null uid (the message must not turn null and pass silently)
    cases = ((["a", "b"], [[0, 1], [1, None]], "uid b names class_id null"),
             ([None, "b"], [[0, 5], [1]], "uid null names class_id 5"))  # fmt: skip
    for uids, ids, named in cases:
        pq.write_table(
            pa.table({"uid": pa.array(uids, pa.string()),
                      "class_ids": pa.array(ids, pa.list_(pa.int32())),
                      "hashtags": [["dog"], ["cat"]], "keep": [True, True],
                      "weight": pa.array([1.0, 1.0], pa.float32())}),
            root / "labels" / "part-00000.parquet",
        )  # fmt: skip
        capsys.readouterr()
        assert curate(["sql", "--root", str(root), "SELECT uid, wnids FROM labels"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and named in err
