"""The whole pipeline through the CLI `main(argv)` functions, crawling over loopback.

curate ingest -> build-vocab -> shard (img2dataset, http://127.0.0.1) -> train mae ->
train wsp --init -> train eval, on a drawn corpus of 240 images; then `curate sql` over
every output. Asserts that the counts add up from stage to stage.
"""

import json

import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from curation.demo import write_served_captions
from curation.democorpus import generate_corpus
from shards.manifest import read_manifest
from shards.serve import serve_folder
from train.cli import main as train

N_IMAGES = 240
TRAIN = ["--model", "vit_pico_patch4", "--image-size", "32", "--batch-size", "16",
         "--log-every", "5", "--save-every", "20"]  # fmt: skip


def read_log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e")
    table = generate_corpus(out / "corpus", n_images=N_IMAGES, seed=3)
    corpus = pq.read_table(table).to_pylist()
    data = out / "data"
    with serve_folder(out / "corpus") as base_url:
        write_served_captions(table, base_url, out / "captions.parquet")
        assert curate(["ingest", str(out / "captions.parquet"), "--root", str(data)]) == 0
        assert curate(["build-vocab", "--root", str(data), "--min-count", "5"]) == 0
        assert curate(["shard", "--root", str(data), "--image-size", "32",
                       "--samples-per-shard", "64", "--val-fraction", "0.25"]) == 0  # fmt: skip
    shards = data / "shards"
    runs = out / "runs"
    mae = ["mae", "--shards", str(shards), "--out", str(runs / "mae"), *TRAIN, "--steps", "40",
           "--base-lr", "4e-3", "--warmup-steps", "4", "--decoder-depth", "1",
           "--decoder-dim", "64", "--decoder-heads", "2"]  # fmt: skip
    assert train(mae) == 0
    ckpt = runs / "mae" / "checkpoint-000040.safetensors"
    wsp = ["wsp", "--shards", str(shards), "--out", str(runs / "wsp"), *TRAIN, "--steps", "40",
           "--base-lr", "2e-3", "--warmup-steps", "4", "--init", str(ckpt)]  # fmt: skip
    assert train(wsp) == 0
    assert train(["eval", "--ckpt", str(runs / "wsp"), "--shards", str(shards)]) == 0
    return out, data, corpus


def test_counts_add_up_from_captions_to_shards(pipeline):
    out, data, corpus = pipeline
    meta = {s: json.loads((data / s / "meta.json").read_text())["counts"]
            for s in ("metadata", "vocab", "shards")}  # fmt: skip
    assert meta["metadata"]["samples"] == len({(r["url"], r["caption"]) for r in corpus})
    labels = [row for p in sorted((data / "labels").glob("*.parquet"))
              for row in pq.read_table(p).to_pylist()]  # fmt: skip
    kept = [r for r in labels if r["keep"]]
    manifest = read_manifest(data / "shards")
    downloads = pq.read_table(data / "shards" / "downloads.parquet").to_pylist()
    assert len(downloads) == len(kept)  # only labeled, kept samples are fetched
    ok = [d for d in downloads if d["status"] == "success"]
    assert manifest.totals["samples"] == len(ok) == manifest.count("train") + manifest.count("val")
    # the corpus serves some urls as 404 and some as non-images: each is a row with a reason
    by_url = {f"/{r['url']}": r["status"] for r in corpus}
    for d in downloads:
        served = by_url[d["url"][d["url"].index("/images/") :]]
        assert (d["status"] == "success") == (served == "ok"), d
    assert len(ok) < len(downloads)
    vocab = pq.read_table(data / "vocab" / "vocab.parquet").to_pylist()
    assert manifest.num_classes == len(vocab) >= 6
    assert meta["vocab"]["vocab_hash"] == manifest.vocab_hash


def test_training_learns_and_evaluates(pipeline):
    out, data, _ = pipeline
    mae = read_log(out / "runs" / "mae")
    assert [r["step"] for r in mae] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert mae[-1]["loss"] < mae[0]["loss"]
    assert (out / "runs" / "mae" / "reconstructions.png").stat().st_size > 0
    wsp = read_log(out / "runs" / "wsp")
    assert wsp[-1]["loss"] < wsp[0]["loss"]
    metrics = json.loads((out / "runs" / "wsp" / "metrics.json").read_text())
    for key in ("top1", "top5", "mAP", "probe_top1"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["top5"] >= metrics["top1"]


def test_sql_over_every_output(pipeline, capsys):
    out, data, _ = pipeline
    capsys.readouterr()
    query = (
        "SELECT (SELECT count(*) FROM shards) AS in_tars,"
        " (SELECT count(*) FROM downloads WHERE status = 'success') AS fetched,"
        " (SELECT count(*) FROM labels l JOIN metadata m USING (uid) WHERE keep) AS kept,"
        " (SELECT count(*) FROM downloads) AS attempted,"
        " (SELECT max(step) FROM logs WHERE run = 'wsp') AS wsp_steps"
    )
    argv = ["sql", "--root", str(data), "--runs", str(out / "runs" / "mae"),
            str(out / "runs" / "wsp"), "--format", "json", query]  # fmt: skip
    assert curate(argv) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["in_tars"] == row["fetched"] and row["kept"] == row["attempted"]
    assert row["wsp_steps"] == 40
