"""curate shard over label files without `wnids` (what build-vocab writes now) and with them
(older files, and tests/shards/dataset.py): the same tars, sidecars, manifest and downloads,
byte for byte; each sample's wnids are its class ids' rows of vocab.parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.shards.dataset import WNIDS, run_shard, write_dataset, write_images
from tests.shards.test_build import check_shards, read_samples

ARGV = ["--image-size", "16", "--samples-per-shard", "4", "--val-fraction", "0.25"]


def relabel(root: Path, rows: list[dict], with_wnids: bool) -> None:
    """Give every 3rd sample a second class (dataset.py's samples have one), in `rows` and
    in the label file, which keeps its `wnids` column (with stale values a reader must not
    use: the shards take each class's wnid from vocab.parquet) or not."""
    import pyarrow as pa

    for i, row in enumerate(rows):
        row["class_ids"] = sorted({0, 2, i % 3}) if i % 3 == 1 else [i % 3]
        row["wnids"] = [WNIDS[c] for c in row["class_ids"]]
    path = root / "labels" / "part-0.parquet"
    table = pq.read_table(path)
    table = table.set_column(
        1, "class_ids", pa.array([r["class_ids"] for r in rows], pa.list_(pa.int32()))
    )
    stale = [["stale"] * len(r["class_ids"]) for r in rows]
    table = table.set_column(2, "wnids", pa.array(stale))
    pq.write_table(table, path)
    if not with_wnids:
        drop_wnids(root)


def drop_wnids(root: Path) -> None:
    """Rewrite root/labels/part-0.parquet in the current schema (no `wnids` column)."""
    path = root / "labels" / "part-0.parquet"
    table = pq.read_table(path)
    pq.write_table(table.drop_columns(["wnids"]), path)
    assert pq.read_schema(path).names == ["uid", "class_ids", "hashtags", "keep", "weight"]


@pytest.mark.parametrize("one_pass", [True, False], ids=["one_pass", "two_pass"])
def test_labels_without_wnids_make_the_same_shards(tmp_path: Path, one_pass: bool) -> None:
    names = write_images(tmp_path / "images", 10)
    urls = [(tmp_path / "images" / n).as_uri() for n in names]
    out = {}
    for schema in ("old", "new"):
        root = tmp_path / schema
        rows = write_dataset(root, urls, keep=[i != 2 for i in range(len(urls))])
        relabel(root, rows, with_wnids=schema == "old")
        assert run_shard(["--root", str(root), *ARGV], one_pass) == 0
        check_shards(root / "shards", rows)  # the json's wnids are the rows' (vocab order)
        files = sorted((root / "shards").iterdir())
        out[schema] = {p.name: p.read_bytes() for p in files if p.name != "meta.json"}
    assert out["old"] == out["new"] and len([n for n in out["new"] if n.endswith(".tar")]) == 3
    # sample i has classes {i % 3}, or {0, 2, i % 3} for i % 3 == 1: multi-label ones included
    labels = [json.loads(s["json"]) for split in read_samples(tmp_path / "new" / "shards").values()
              for s in split]  # fmt: skip
    assert len(labels) == 9 and any(len(label["class_ids"]) == 3 for label in labels)
    assert all(label["wnids"] == [WNIDS[c] for c in label["class_ids"]] for label in labels)
    sidecars = [r for p in sorted((tmp_path / "new" / "shards").glob("*-*.parquet"))
                for r in pq.read_table(p).to_pylist()]  # fmt: skip
    assert sorted((r["uid"], r["wnids"]) for r in sidecars) == sorted(
        (label["uid"], label["wnids"]) for label in labels
    )


def test_no_vocabulary_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = write_images(tmp_path / "images", 2)
    root = tmp_path / "data"
    write_dataset(root, [(tmp_path / "images" / n).as_uri() for n in names])
    drop_wnids(root)
    (root / "vocab" / "vocab.parquet").unlink()
    from curation.cli import main as curate

    assert curate(["shard", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "run `curate build-vocab` first" in err and err.count("\n") == 1
    assert not (root / "shards").exists()


@pytest.mark.parametrize("class_id", [2, -1, None])
def test_class_id_beyond_vocab_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], class_id: int | None
) -> None:
    """Labels naming a class the vocabulary lacks (labels and vocab of different
    build-vocab runs, or an edited vocab) are refused before anything is read or written:
    the wnid lookup would write null into the tars, sidecars and manifest-checked json."""
    names = write_images(tmp_path / "images", 6)
    root = tmp_path / "data"
    write_dataset(root, [(tmp_path / "images" / n).as_uri() for n in names])
    drop_wnids(root)
    path = root / "labels" / "part-0.parquet"
    if class_id == 2:  # a vocab of classes 0 and 1: samples 2 and 5 name class 2
        vocab = pq.read_table(root / "vocab" / "vocab.parquet")
        pq.write_table(vocab.slice(0, 2), root / "vocab" / "vocab.parquet")
    else:
        import pyarrow as pa

        table = pq.read_table(path)
        ids = [
            [class_id] if i == 3 else c for i, c in enumerate(table.column("class_ids").to_pylist())
        ]
        table = table.set_column(1, "class_ids", pa.array(ids, pa.list_(pa.int32())))
        pq.write_table(table, path)
    from curation.cli import main as curate

    assert curate(["shard", "--root", str(root), "--image-size", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run `curate build-vocab` again" in err
    if class_id is None:  # no class at all: it would fail when the json is written
        assert "labels name a null class_id" in err
    else:
        classes = 2 if class_id == 2 else 3
        assert f"labels name class_id {class_id} but " in err
        assert f"vocab.parquet has {classes} classes" in err
    assert not (root / "shards").exists() and not list(root.glob("shards*"))
    assert not (root / "crawl").exists()  # refused before any image was read


def test_labels_of_another_vocab_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """labels/meta.json's vocab_hash (written by build-vocab) must be vocab.parquet's:
    the same number of classes in another order would label every sample wrongly."""
    from curation.cli import main as curate
    from labeling.vocab_file import vocab_hash

    names = write_images(tmp_path / "images", 6)
    root = tmp_path / "data"
    write_dataset(root, [(tmp_path / "images" / n).as_uri() for n in names])
    argv = ["shard", "--root", str(root), "--image-size", "16", "--val-fraction", "0"]
    meta = root / "labels" / "meta.json"
    for wnids, code in ((list(reversed(WNIDS)), 2), (WNIDS, 0)):
        meta.write_text(json.dumps({"counts": {"vocab_hash": vocab_hash(wnids)}}))
        assert curate(argv) == code
        err = capsys.readouterr().err
        if code == 2:
            assert err.count("\n") == 1 and str(meta) in err
            assert f"vocabulary {vocab_hash(wnids)[:12]}, but " in err
            assert f" is {vocab_hash(WNIDS)[:12]}: run `curate build-vocab` again" in err
            assert not (root / "shards").exists() and not list(root.glob("shards*"))
    assert json.loads((root / "shards" / "meta.json").read_text())["counts"]["success"] == 6
