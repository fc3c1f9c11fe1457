import gzip
import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curation import ingest
from curation.cli import main as curate


def uid_of(url: str, caption: str) -> str:
    return hashlib.md5(f"{url}\n{caption}".encode()).hexdigest()[:16]


def read_metadata(root):
    parts = sorted((root / "metadata").glob("part-*.parquet"))
    return [row for part in parts for row in pq.read_table(part).to_pylist()]


def test_every_input_kind_with_stable_uids_and_dedup(tmp_path):
    (tmp_path / "a.csv").write_text(
        'url,caption\nhttp://h/1.jpg,"a dog, #Dog"\nhttp://h/1.jpg,"a dog, #Dog"\n'
        "http://h/2.jpg,\n,no url here\n"
    )
    (tmp_path / "b.tsv").write_text("link\ttext\nhttp://h/3.jpg\tthe #sun\n")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.write(json.dumps({"url": "http://h/4.jpg", "caption": "#cat"}) + "\n")
        f.write(json.dumps({"url": "http://h/1.jpg", "caption": "a dog, #Dog"}) + "\n")
    pq.write_table(pa.table({"url": ["http://h/5.jpg"], "caption": [None]}), tmp_path / "d.parquet")
    images = tmp_path / "imgs"
    images.mkdir()
    Image.new("RGB", (4, 4)).save(images / "x.jpg")
    (images / "x.txt").write_text("a tiny #square\n")
    Image.new("RGB", (4, 4)).save(images / "y.png")  # no caption file: empty caption

    root = tmp_path / "ds"
    assert curate(["ingest", str(tmp_path / "a.csv"), str(tmp_path / "c.jsonl.gz"),
                   str(tmp_path / "d.parquet"), str(images), "--root", str(root)]) == 0  # fmt: skip
    assert curate(["ingest", str(tmp_path / "b.tsv"), "--root", str(tmp_path / "ds2"),
                   "--url-col", "link", "--caption-col", "text"]) == 0  # fmt: skip

    rows = read_metadata(root)
    expected = {
        ("http://h/1.jpg", "a dog, #Dog"),
        ("http://h/2.jpg", ""),
        ("http://h/4.jpg", "#cat"),
        ("http://h/5.jpg", ""),
        ((images / "x.jpg").resolve().as_uri(), "a tiny #square"),
        ((images / "y.png").resolve().as_uri(), ""),
    }
    assert {(r["url"], r["caption"]) for r in rows} == expected
    assert all(r["uid"] == uid_of(r["url"], r["caption"]) for r in rows)
    assert [r["uid"] for r in rows] == sorted(r["uid"] for r in rows)
    counts = json.loads((root / "metadata" / "meta.json").read_text())["counts"]
    assert counts == {"rows_read": 9, "dropped_empty_url": 1, "duplicates_dropped": 2,
                      "samples": 6, "parts": 1}  # fmt: skip
    assert read_metadata(tmp_path / "ds2")[0]["caption"] == "the #sun"


def test_parts_and_rerun_are_identical(tmp_path):
    urls = [f"http://h/{i}.jpg" for i in range(25)]
    pq.write_table(pa.table({"url": urls, "caption": ["c"] * 25}), tmp_path / "in.parquet")
    root = tmp_path / "ds"
    args = ["ingest", str(tmp_path / "in.parquet"), "--root", str(root), "--part-rows", "10"]
    assert curate(args) == 0
    parts = sorted((root / "metadata").glob("part-*.parquet"))
    assert [pq.read_metadata(p).num_rows for p in parts] == [10, 10, 5]
    first = [p.read_bytes() for p in parts]
    assert curate(args) == 0
    assert [p.read_bytes() for p in sorted((root / "metadata").glob("part-*.parquet"))] == first
    assert not list(tmp_path.glob("ds/*.tmp-*"))


@pytest.mark.parametrize(
    "setup, args, message",
    [
        (lambda d: None, ["missing.csv"], "input not found"),
        (lambda d: (d / "a.csv").write_text("link,caption\nx,y\n"), ["a.csv"], "no column 'url'"),
        (lambda d: (d / "a.csv").write_text("url,caption\n"), ["a.csv"], "no rows"),
        (lambda d: (d / "a.xml").write_text("<x/>"), ["a.xml"], "unknown input type"),
        (lambda d: (d / "empty").mkdir(), ["empty"], "holds no images"),
        (lambda d: None, ["a.csv", "--part-rows", "0"], "--part-rows"),
        (lambda d: None, ["a.csv", "--nope"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, setup, args, message):
    setup(tmp_path)
    argv = ["ingest", *[str(tmp_path / a) if not a.startswith("-") and not a.isdigit() else a
                        for a in args], "--root", str(tmp_path / "ds")]  # fmt: skip
    assert curate(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ds" / "metadata").exists()


def test_failed_rerun_keeps_previous_output(tmp_path):
    pq.write_table(pa.table({"url": ["http://h/1.jpg"]}), tmp_path / "ok.parquet")
    root = tmp_path / "ds"
    assert curate(["ingest", str(tmp_path / "ok.parquet"), "--root", str(root)]) == 0
    before = read_metadata(root)
    (tmp_path / "bad.csv").write_text("other\n1\n")
    assert curate(["ingest", str(tmp_path / "bad.csv"), "--root", str(root)]) == 2
    assert read_metadata(root) == before


def test_table_kind_handles_gzip_suffixes():
    assert ingest._table_kind(ingest.Path("x.jsonl.gz")) == "jsonl"
    assert ingest._table_kind(ingest.Path("x.TSV")) == "tsv"
    assert ingest._table_kind(ingest.Path("x.txt")) is None


def test_fsspec_urls_memory_and_file(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    with fs.open("memory://ingest-test/a.jsonl.gz", "wb") as f:
        f.write(gzip.compress(b'{"url": "http://h/1.jpg", "caption": "#cat"}\n'))
    (tmp_path / "b.csv").write_text("url,caption\nhttp://h/2.jpg,#dog\n")
    root = tmp_path / "ds"
    inputs = ["memory://ingest-test/a.jsonl.gz", (tmp_path / "b.csv").as_uri()]
    assert curate(["ingest", *inputs, "--root", str(root)]) == 0
    rows = {r["url"]: r for r in read_metadata(root)}
    assert set(rows) == {"http://h/1.jpg", "http://h/2.jpg"}
    assert rows["http://h/1.jpg"]["uid"] == uid_of("http://h/1.jpg", "#cat")
    assert rows["http://h/1.jpg"]["source"] == "memory://ingest-test/a.jsonl.gz"
    assert curate(["ingest", "memory://ingest-test/none.csv", "--root", str(root)]) == 2


def test_webdataset_tar_input_keeps_images(tmp_path):
    from shards.local import read_bytes
    from tests.shards.dataset import write_webdataset_tar

    images = write_webdataset_tar(tmp_path / "00000.tar")
    root = tmp_path / "ds"
    assert curate(["ingest", str(tmp_path / "00000.tar"), "--root", str(root)]) == 0
    rows = {r["url"].rsplit("#", 1)[1]: r for r in read_metadata(root)}
    assert {n: r["caption"] for n, r in rows.items()} == {
        "000000.jpg": "a red #square", "000001.png": "from #json", "000002.jpg": "",
    }  # fmt: skip
    for name, row in rows.items():
        assert row["url"] == f"{(tmp_path / '00000.tar').resolve().as_uri()}#{name}"
        assert read_bytes(row["url"]) == images[name]  # what curate shard will read
    assert read_bytes(rows["000000.jpg"]["url"].replace("000000.jpg", "nope.jpg")).startswith(
        "KeyError"
    )
