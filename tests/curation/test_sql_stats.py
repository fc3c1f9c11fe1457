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
