"""The demo's own plumbing; the whole pipeline run is the lead's end-to-end test."""

import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import demo
from curation.errors import UsageError, run_main
from shards.serve import serve_folder


def test_prepare_out_wipes_its_own_folder_and_refuses_a_foreign_one(tmp_path):
    ours, foreign = tmp_path / "ours", tmp_path / "foreign"
    ours.mkdir()
    (ours / demo.MARKER).write_text("{}")
    (ours / "old.txt").write_text("stale")
    demo.prepare_out(ours)
    assert ours.is_dir() and not any(ours.iterdir())
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="not made by the demo"):
        demo.prepare_out(foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    demo.prepare_out(tmp_path / "new" / "out")  # absent: created
    assert (tmp_path / "new" / "out").is_dir()


def test_served_captions_get_absolute_urls(tmp_path):
    corpus = tmp_path / "captions.parquet"
    pq.write_table(
        pa.table({"url": ["images/000000.jpg"], "caption": ["#tree"], "kinds": [["tree"]]}), corpus
    )
    dest = tmp_path / "served.parquet"
    assert demo.write_served_captions(corpus, "http://127.0.0.1:8000", dest) == 1
    assert pq.read_table(dest).to_pylist() == [
        {"url": "http://127.0.0.1:8000/images/000000.jpg", "caption": "#tree"}
    ]


def test_last_checkpoint_is_the_highest_step(tmp_path):
    for step in (100, 20, 300):
        (tmp_path / f"checkpoint-{step:06d}.safetensors").write_bytes(b"")
    assert demo.last_checkpoint(tmp_path).name == "checkpoint-000300.safetensors"
    with pytest.raises(UsageError):
        demo.last_checkpoint(tmp_path / "empty")


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--n-images", "5"], "--n-images must be >= 100"),
     (["--port", "70000"], "--port must be in 0..65535")],
)  # fmt: skip
def test_bad_options_exit_2_before_touching_out(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert run_main(demo.main, ["--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_corpus_server_takes_its_port_or_a_free_one_with_a_note(tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8abc")
    with serve_folder(tmp_path) as probe:
        port = int(probe.rsplit(":", 1)[1])
    with demo.serve_corpus(tmp_path, port) as base:
        assert base == f"http://127.0.0.1:{port}"  # the same urls, so uids, on every run
        assert capsys.readouterr().out == ""
        with demo.serve_corpus(tmp_path, port) as other:  # taken: a free port, said so
            assert other != base and other.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(f"{other}/a.jpg") as r:
                assert r.read() == b"\xff\xd8abc"
        assert f"port {port} is taken" in capsys.readouterr().out
