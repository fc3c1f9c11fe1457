import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from curation.report import metric_rows, read_log, write_report


def make_run_outputs(out):
    vocab, shards = out / "data" / "vocab", out / "data" / "shards"
    vocab.mkdir(parents=True)
    shards.mkdir(parents=True)
    pq.write_table(
        pa.table({
            "class_id": pa.array([1, 0], pa.int32()),
            "wnid": ["n04128499", "n13104059"],
            "name": ["sailboat", "tree"],
            "lemmas": [["sailboat", "sailing_boat"], ["tree"]],
            "lexname": ["noun.artifact", "noun.plant"],
            "count": pa.array([211, 347], pa.int64()),
            "kept_count": pa.array([200, 250], pa.int64()),
        }),
        vocab / "vocab.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({
            "hashtag": ["trees", "SailBoat", "instagood", "zzqx", "tbt"],
            "count": pa.array([300, 150, 90, 7, 40], pa.int64()),
            "canonical": ["tree", "sailboat", "instagood", "zzqx", "tbt"],
            "wnid": ["n13104059", "n04128499", None, None, None],
            "reason": [None, None, "stoplisted", "no_match", "stoplisted"],
        }),
        vocab / "hashtags.parquet",
    )  # fmt: skip
    manifest = {
        "format": "mawskit-shards/1",
        "image_size": 32,
        "vocab_hash": "abcdef0123456789",
        "classes": [{"class_id": 0, "wnid": "n13104059", "name": "tree"}],
        "splits": {
            "train": {"count": 431, "bytes": 2_500_000, "shards": [{}, {}]},
            "val": {"count": 77, "bytes": 400_000, "shards": [{}]},
        },
        "totals": {"samples": 508, "bytes": 2_900_000},
    }
    (shards / "manifest.json").write_text(json.dumps(manifest))
    pq.write_table(
        pa.table({
            "uid": ["a", "b", "c"],
            "url": ["http://h/1.jpg", "http://h/gone.jpg", "http://h/bad.jpg"],
            "status": ["success", "http_404", "decode_error"],
            "error_message": [None, "HTTP Error 404: Not Found", "cannot identify image file"],
        }),
        shards / "downloads.parquet",
    )  # fmt: skip
    for name, start in (("mae", 1.25), ("wsp", 2.5)):
        run = out / "runs" / name
        run.mkdir(parents=True)
        lines = [
            json.dumps({"step": s, "loss": start - 0.01 * s, "lr": 1e-3, "images_per_s": 100.0})
            for s in range(0, 50, 10)
        ]
        lines.append('{"step": 50, "loss": ')  # a run killed mid-write
        (run / "log.jsonl").write_text("\n".join(lines) + "\n")
        (run / "checkpoint-000050.safetensors").write_bytes(b"")
    wsp_metrics = {
        "checkpoint": "runs/wsp/checkpoint-000050.safetensors", "kind": "wsp",
        "model": "vit_micro_patch4", "image_size": 32, "num_classes": 12, "val_samples": 77,
        "probe_train_samples": 431, "top1": 0.6125, "top5": 0.9375, "mAP": 0.5531,
        "probe_top1": 0.4875, "probe_train_top1": 0.55, "chance_top1_prior": 0.0833,
        "chance_top1_uniform": 0.0901, "chance_top5_prior": 0.4167,
        "chance_top5_uniform": 0.4502, "chance_mAP": 0.1021, "seconds": 3.2,
    }  # fmt: skip
    mae_metrics = {k: v for k, v in wsp_metrics.items() if k not in ("top1", "top5", "mAP")} | {
        "kind": "mae",
        "probe_top1": 0.3125,
    }
    for name, metrics in (("wsp", wsp_metrics), ("mae", mae_metrics)):
        (out / "runs" / name / "metrics.json").write_text(json.dumps(metrics))


def test_report_carries_every_number(tmp_path):
    out = tmp_path / "out"
    make_run_outputs(out)
    runs = out / "runs"
    metrics = {"MAE": runs / "mae/metrics.json", "WSP from MAE": runs / "wsp/metrics.json"}
    path = write_report(out, timings={"ingest": 1.25, "shard": 12.5}, metrics=metrics)
    assert path == out / "report.md"
    text = path.read_text()
    # vocabulary rows, in class_id order
    assert "| 0 | n13104059 | tree | 347 | 250 |" in text
    assert "| 1 | n04128499 | sailboat | 211 | 200 |" in text
    assert text.index("| 0 | n13104059") < text.index("| 1 | n04128499")
    # hashtag mapping: 2 of 5 mapped, 450 of 587 uses; reasons with examples
    assert "5 distinct hashtags (587 uses); 2 mapped to a class (450 uses, 77%)" in text
    assert "| stoplisted | 2 | 130 | #instagood → instagood, #tbt → tbt |" in text
    assert "| no_match | 1 | 7 |" in text
    # shards and downloads
    assert "| train | 2 | 431 | 2.50 |" in text and "| val | 1 | 77 | 0.40 |" in text
    assert "508 samples at 32 px" in text
    assert "3 attempted" in text and "http_404 1" in text
    assert "http://h/gone.jpg" in text and "HTTP Error 404" in text
    # training runs: loss from first to last complete line, curves written and linked
    assert "loss 1.2500 at step 0 → 0.8500 at step 40" in text
    assert "loss 2.5000 at step 0 → 2.1000 at step 40" in text
    for png in ("mae_loss.png", "wsp_loss.png"):
        assert f"]({png})" in text
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.size[0] > 100
    # evaluation: one column per run, next to both chance levels
    header = "| score | MAE | WSP from MAE | chance (prior) | chance (uniform) |"
    assert header in text
    assert "| top1 |  | 0.6125 | 0.0833 | 0.0901 |" in text
    assert "| mAP |  | 0.5531 | 0.1021 |  |" in text
    assert "| probe_top1 | 0.3125 | 0.4875 | 0.0833 | 0.0901 |" in text
    assert "num_classes 12, val_samples 77" in text
    assert "| ingest | 1.2 |" in text and "| **total** | 13.8 |" in text
    assert not list(out.glob(".*tmp*"))


def test_missing_inputs_give_a_partial_report(tmp_path):
    path = write_report(tmp_path, timings={"corpus": 2.0})
    text = path.read_text()
    assert "missing: `" in text and "vocab.parquet" in text and "metrics.json" in text
    assert "| corpus | 2.0 |" in text
    assert not (tmp_path / "mae_loss.png").exists()


def test_metric_rows_keep_unknown_scores_and_drop_nan():
    rows = metric_rows({"a": {"top1": 0.5, "chance_top1": 0.1, "knn_top1": 0.7, "mAP": math.nan}})
    assert ("top1", 0.5, 0.1, "") in rows
    assert ("mAP", "", "", "") in rows
    assert ("knn_top1", 0.7, "", "") in rows
    assert all("chance" not in row[0] and row[0] != "seconds" for row in rows)


def test_read_log_skips_rows_without_loss(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 0.5}\n{"step": 2, "eval": 1}\n\n{"step": 3, "loss": 0.4}\n')
    assert [r["step"] for r in read_log(log)] == [1, 3]
    assert read_log(tmp_path / "absent.jsonl") == []
