"""The array path of build-vocab against the SQL path, file by file, and a killed run."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeling.build_vocab import main
from labeling.vocab_file import LABEL_SCHEMA

POOL = [
    "dog", "Dogs", "GoldenRetriever", "goldenretriever", "cat", "cats", "beach", "sunset",
    "brownbear", "ursusarctos", "crane", "love", "tbt", "instagood", "2019", "summer",
    "кошка", "猫", "happy", "sailboat", "blackdog", "cupofcoffee", "dogsofinstagram",
    "sunsetlovers", "xqzvbnm", "café", "golden_retriever", "Tiger", "tigers", "bridge",
]  # fmt: skip
TAIL = ["#", "&#39;", "http://x.com/#dog", "🐶", "#🐶", "a#cat", "\ufffd"]


def corpus(n: int, seed: int = 0) -> list[str | None]:
    """Captions with 0-6 tags drawn with a head-heavy law, plus hostile pieces."""
    rng = random.Random(seed)
    captions: list[str | None] = []
    for i in range(n):
        if i % 97 == 0:
            captions.append(None)
            continue
        tags = [POOL[min(len(POOL) - 1, int(len(POOL) ** rng.random()) - 1)]
                for _ in range(rng.randint(0, 6))]  # fmt: skip
        words = [f"#{t}" for t in tags] + rng.sample(TAIL, rng.randint(0, 2))
        rng.shuffle(words)
        captions.append("photo " + " ".join(words))
    return captions


def write_parts(
    root: Path, captions: list[str | None], files: int, row_group: int, sort_uids: bool = False
) -> None:
    """Metadata in several files of several row groups; uids in random order, or sorted
    within each file as `curate ingest` writes them (`sort_uids`)."""
    (root / "metadata").mkdir(parents=True)
    per = -(-len(captions) // files)
    for f in range(files):
        part = captions[f * per : (f + 1) * per]
        first = f * per
        uids = [f"{(first + i) * 0x9E3779B97F4A7C15 % 2**64:016x}" for i in range(len(part))]
        if sort_uids:
            uids.sort()
        table = pa.table(
            {
                "uid": uids,
                "url": [f"http://127.0.0.1/{first + i}.jpg" for i in range(len(part))],
                "caption": pa.array(part, pa.string()),
                "source": ["t"] * len(part),
            }
        )
        pq.write_table(table, root / "metadata" / f"part-{f:05d}.parquet", row_group_size=row_group)


def label_columns(part: Path) -> list[tuple[str, str]]:
    """(name, type) of a labels part, list element names left out (`element` or `item`)."""
    schema = pq.read_schema(part)
    return [(f.name, re.sub(r"<\w+: ", "<", str(f.type))) for f in schema]


def outputs(root: Path) -> dict:
    vocab = pq.read_table(root / "vocab" / "vocab.parquet").to_pylist()
    tags = pq.read_table(root / "vocab" / "hashtags.parquet").to_pylist()
    parts = sorted((root / "labels").glob("part-*.parquet"))
    labels = [row for part in parts for row in pq.read_table(part).to_pylist()]
    counts = json.loads((root / "vocab" / "meta.json").read_text())["counts"]
    counts.pop("seconds_by_step")
    counts.pop("cpu_seconds_by_step", None)  # the array engine's only
    return {"vocab": vocab, "hashtags": tags, "labels": labels, "counts": counts}


@pytest.mark.parametrize(
    "argv",
    [[], ["--cap", "40", "--seed", "3"], ["--max-classes", "7", "--min-count", "1"]],
    ids=["defaults", "cap", "max_classes"],
)
def test_array_path_equals_sql_path(tmp_path, mapper, argv):
    captions = corpus(3000)
    for engine in ("arrays", "sql"):
        write_parts(tmp_path / engine, captions, files=3, row_group=300)  # 12 scan tasks, 2 workers
        assert main(["--root", str(tmp_path / engine), "--engine", engine, *argv]) == 0
    fast, slow = outputs(tmp_path / "arrays"), outputs(tmp_path / "sql")
    assert fast["vocab"] == slow["vocab"] and fast["hashtags"] == slow["hashtags"]
    assert fast["counts"] == slow["counts"]
    assert fast["counts"]["captions_with_label"] > 1000 and len(fast["vocab"]) >= 7
    by_uid = {r["uid"]: r for r in slow["labels"]}
    assert len(fast["labels"]) == len(by_uid) == fast["counts"]["captions_with_label"]
    for row in fast["labels"]:
        ref = by_uid[row["uid"]]
        assert {k: row[k] for k in ("class_ids", "hashtags", "keep")} == {
            k: ref[k] for k in ("class_ids", "hashtags", "keep")
        }
        assert row["weight"] == pytest.approx(ref["weight"], rel=1e-6)
    if argv:  # the cap tosses coins: some samples must be dropped for this test to mean much
        assert "--cap" not in argv or 0 < fast["counts"]["samples_kept_after_cap"] < len(by_uid)
    # labels: one part per metadata row group, sorted by uid within each
    parts = sorted((tmp_path / "arrays" / "labels").glob("part-*.parquet"))
    assert [p.name for p in parts] == [f"part-{i:05d}.parquet" for i in range(12)]  # 3 x 4
    for part in parts:
        uids = pq.read_table(part, columns=["uid"]).column(0).to_pylist()
        assert uids == sorted(uids) and len(uids) > 0
        # uids are distinct: stored plain; the list columns through dictionaries
        chunks = pq.ParquetFile(part).metadata.row_group(0)
        encodings = {chunks.column(i).path_in_schema: chunks.column(i).encodings for i in range(5)}
        assert "RLE_DICTIONARY" not in encodings["uid"]
        assert "RLE_DICTIONARY" in encodings["hashtags.list.element"]
        assert "RLE_DICTIONARY" in encodings["class_ids.list.element"]
    # both engines write DESIGN.md's `uid -> class_ids, keep, weight` (+ hashtags): no wnids
    sql_part = tmp_path / "sql" / "labels" / "part-00000.parquet"
    for part in [*parts, sql_part]:
        assert label_columns(part) == list(LABEL_SCHEMA)


def test_uid_sorted_metadata_takes_no_sort_and_equals_sql_path(tmp_path, mapper, monkeypatch):
    """Metadata sorted by uid (what `curate ingest` writes): the array path skips its sort
    by uid and still writes the SQL path's rows."""
    from labeling import label_arrays

    def no_regroup(*args, **kwargs):
        raise AssertionError("rows were in uid order: nothing to sort and regroup")

    captions = corpus(2000, seed=5)
    for engine in ("arrays", "sql"):
        write_parts(tmp_path / engine, captions, files=2, row_group=250, sort_uids=True)
    monkeypatch.setattr(label_arrays, "_regroup", no_regroup)  # forked workers inherit it
    assert main(["--root", str(tmp_path / "arrays"), "--cap", "30"]) == 0
    monkeypatch.undo()
    assert main(["--root", str(tmp_path / "sql"), "--engine", "sql", "--cap", "30"]) == 0
    fast, slow = outputs(tmp_path / "arrays"), outputs(tmp_path / "sql")
    assert fast["vocab"] == slow["vocab"] and fast["counts"] == slow["counts"]
    by_uid = {r["uid"]: r for r in slow["labels"]}
    assert len(fast["labels"]) == len(by_uid) > 600
    for row in fast["labels"]:
        assert {k: v for k, v in row.items() if k != "weight"} == {
            k: v for k, v in by_uid[row["uid"]].items() if k != "weight"
        }
        assert row["weight"] == pytest.approx(by_uid[row["uid"]]["weight"], rel=1e-6)


def test_in_order():
    from labeling.label_arrays import in_order

    assert in_order(pa.array([], pa.string())) and in_order(pa.array(["b"]))
    assert in_order(pa.array(["a", "a", "b"])) and not in_order(pa.array(["a", "c", "b"]))


def _start_killable_run(tmp_path: Path, captions: list, row_group: int) -> tuple[Path, Any]:
    """The same metadata under tmp_path/killed and tmp_path/clean; `build-vocab` started on
    the first in a child process (to be killed). Returns (killed root, the child)."""
    for name in ("killed", "clean"):
        write_parts(tmp_path / name, captions, files=2, row_group=row_group)
    killed = tmp_path / "killed"
    code = f"from labeling.build_vocab import main; main(['--root', {str(killed)!r}])"
    return killed, subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])


def test_killed_run_then_rerun_equals_clean_run(tmp_path, mapper):
    """SIGKILL mid-run leaves no output; a rerun gives what an uninterrupted run gives."""
    captions = corpus(20_000, seed=1)
    killed, child = _start_killable_run(tmp_path, captions, row_group=1000)
    spill = killed / f".duckdb-tmp-build-vocab-{child.pid}" / "pairs"
    deadline = time.time() + 60
    while not spill.exists() and time.time() < deadline:  # the scan has begun
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (killed / "vocab").exists() and not (killed / "labels").exists()
    assert main(["--root", str(killed)]) == 0
    assert main(["--root", str(tmp_path / "clean")]) == 0
    assert outputs(killed) == outputs(tmp_path / "clean")
    assert sorted(p.name for p in killed.iterdir()) == ["labels", "metadata", "vocab"]


def _children(pid: int) -> set[int]:
    """The live child processes of `pid` (every thread's children)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def _alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's parent may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_workers_die_with_a_killed_parent_and_a_rerun_with_other_options_is_clean(tmp_path, mapper):
    """SIGKILL while the scan workers run: they are gone within seconds, their run's spill
    folder is removed by the next run, which (with another --cap) equals a clean run."""
    captions = corpus(20_000, seed=2)
    killed, child = _start_killable_run(tmp_path, captions, row_group=500)
    spill = killed / f".duckdb-tmp-build-vocab-{child.pid}"
    workers: set[int] = set()
    deadline = time.time() + 60
    while len(workers) < 2 and time.time() < deadline:  # both scan workers have forked
        time.sleep(0.005)
        workers = _children(child.pid) if (spill / "pairs").exists() else set()
    assert len(workers) >= 2
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    deadline = time.time() + 3
    while any(map(_alive, workers)) and time.time() < deadline:
        time.sleep(0.02)
    assert not any(map(_alive, workers)), "workers outlived their parent"
    assert spill.exists()  # the killed run could not clean up; the next run does
    assert main(["--root", str(killed), "--cap", "30"]) == 0
    assert main(["--root", str(tmp_path / "clean"), "--cap", "30"]) == 0
    assert outputs(killed) == outputs(tmp_path / "clean")
    assert 0 < outputs(killed)["counts"]["samples_kept_after_cap"]
    assert sorted(p.name for p in killed.iterdir()) == ["labels", "metadata", "vocab"]


def test_spill_folders_of_live_runs_are_kept(tmp_path):
    from labeling.build_vocab import SPILL, remove_dead_spills

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for name in (SPILL, f"{SPILL}-{dead.pid}", f"{SPILL}-{live.pid}", f"{SPILL}-{os.getpid()}"):
            (tmp_path / name).mkdir()
        removed = remove_dead_spills(tmp_path)
    finally:
        live.kill()
        live.wait()
    assert [p.name for p in removed] == sorted([SPILL, f"{SPILL}-{dead.pid}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{SPILL}-{live.pid}", f"{SPILL}-{os.getpid()}"]
    )


def test_row_group_without_labels_writes_an_empty_part(tmp_path, mapper):
    unlabeled = ["no tags here", None, "#love #2019", "a#cat"] * 100
    captions = corpus(400) + unlabeled  # files of 400: the second has no label
    write_parts(tmp_path, captions, files=2, row_group=400)
    assert main(["--root", str(tmp_path)]) == 0
    assert gc.get_freeze_count() == 0  # WordNet was frozen for the run only
    parts = sorted((tmp_path / "labels").glob("part-*.parquet"))
    rows = [pq.read_table(p).num_rows for p in parts]
    assert len(parts) == 2 and rows[0] > 200 and rows[1] == 0
    assert pq.read_table(parts[1]).schema == pq.read_table(parts[0]).schema


def test_arrow_string_order_is_python_order():
    """Tags are ranked with Arrow's stable sort (UTF-8 bytes): the order Python's sorted()
    gives (code points), ties kept in place, across scripts, marks and emoji."""
    import numpy as np
    import pyarrow.compute as pc

    rng = random.Random(0)
    tags = ["".join(rng.choices("aAzZ_09éß猫🐶\u0301", k=rng.randint(0, 6))) for _ in range(20_000)]
    arrow = pc.sort_indices(pa.array(tags)).to_numpy()
    python = sorted(range(len(tags)), key=tags.__getitem__)
    assert arrow.tolist() == python
    assert len(set(tags)) < len(tags) and not np.array_equal(arrow, np.arange(len(tags)))


def test_weights_summed_in_the_assign_pass_equal_the_weight_pass(tmp_path, mapper, monkeypatch):
    """Without --cap the assign pass sums the raw weights; the same parts, bit for bit, as
    when `write_labels` runs its own pass (forced by dropping the sums)."""
    from labeling import label_arrays

    captions = corpus(3000, seed=4)
    for name in ("fused", "pass"):
        write_parts(tmp_path / name, captions, files=2, row_group=500)
    assert main(["--root", str(tmp_path / "fused")]) == 0
    assign = label_arrays.assign
    calls = []

    def without_sums(*args, **kwargs):
        kept, counts, sums = assign(*args, **kwargs)
        calls.append(sums)
        return kept, counts, None

    monkeypatch.setattr(label_arrays, "assign", without_sums)
    assert main(["--root", str(tmp_path / "pass")]) == 0
    assert len(calls) == 1 and len(calls[0]) == 6  # the sums existed: one per task
    fused, separate = outputs(tmp_path / "fused"), outputs(tmp_path / "pass")
    assert fused["labels"] == separate["labels"] and len(fused["labels"]) > 1000
    assert len({row["weight"] for row in fused["labels"]}) > 5  # weights do differ by sample


def test_tag_order_holds_past_2_to_the_23_rows():
    """Rows of a large row group around 2**23 (a 40-bit shift overflowed there) and the
    largest tag ranks: the order is by row, then rank."""
    import numpy as np

    from labeling.label_arrays import by_row_then_rank

    rows = np.array([5, 2**23 - 1, 2**23 - 1, 2**23, 2**23, 2**31 - 1], np.int32)
    ranks = np.array([7, 2**31 - 1, 0, 3, 1, 2**31 - 2], np.int64)
    order = by_row_then_rank(rows, ranks).tolist()
    assert order == [0, 2, 1, 4, 3, 5]
    pairs = list(zip(rows.tolist(), ranks.tolist(), strict=True))
    assert [pairs[i] for i in order] == sorted(pairs)
