"""Forked workers that die: an error within seconds instead of a hang; none outlive a parent.

Each case runs in a child Python with a timeout, since the failure being guarded against
is a wait that never ends."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
TIMEOUT = 60  # a hang shows as TimeoutExpired; the fixed code answers in about a second


def run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip


def test_mapping_worker_killed_raises_worker_died():
    child = run_child(
        """
        import os, signal
        from labeling.tag_map_pool import MappingPool
        from labeling.worker_pool import WorkerDied

        PARENT = os.getpid()

        class Mapped:
            def __init__(self, tag):
                self.canonical, self.wnid, self.reason, self.lexname = tag, None, "x", None

        class Mapper:
            def map(self, tag):
                if tag == "die" and os.getpid() != PARENT:
                    os.kill(os.getpid(), signal.SIGKILL)
                return Mapped(tag)

        pool = MappingPool(Mapper(), workers=2)
        pool.submit(["a", "b"]); pool.submit(["die"]); pool.submit(["c"])
        try:
            pool.columns()
        except WorkerDied as err:
            print("died:", err)
        """
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("died: map hashtags: a worker process died")
    assert len(child.stdout.splitlines()) == 1


def test_mapping_pool_without_deaths_keeps_submission_order():
    from labeling.tag_map_pool import CHUNK, MappingPool

    class Mapper:
        def map(self, tag):
            return type("M", (), {"canonical": tag.upper(), "wnid": None, "reason": None,
                                  "lexname": str(len(tag))})()  # fmt: skip

    tags = [f"t{i}" for i in range(CHUNK * 2 + 7)]
    pool = MappingPool(Mapper(), workers=2)
    pool.submit(tags[:5])
    pool.submit(tags[5:])
    columns = pool.columns()
    assert columns["canonical"] == [t.upper() for t in tags]
    assert columns["lexname"] == [str(len(t)) for t in tags]


@pytest.mark.parametrize("function", ["_per_task", "scan"])
def test_task_worker_killed_raises_worker_died(function):
    """label_arrays' ordered passes and tag_pairs' unordered scan."""
    call = {
        "_per_task": "list(_per_task(work, [0, 1, 2, 3], {}, 2, 'count synsets'))",
        "scan": "list(tag_pairs._results([0, 1, 2, 3], None, 2))",
    }[function]
    child = run_child(
        f"""
        import os, signal
        from labeling import tag_pairs
        from labeling.label_arrays import _per_task
        from labeling.worker_pool import WorkerDied

        def work(task, spill=None):
            if task == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return task

        tag_pairs.scan_task = work
        try:
            {call}
        except WorkerDied as err:
            print("died:", err)
        """
    )
    assert child.returncode == 0, child.stderr
    stage = "count synsets" if function == "_per_task" else "scan hashtags"
    assert child.stdout.startswith(f"died: {stage}: a worker process died")


def square(task: int) -> int:
    from labeling.label_arrays import _STATE

    return task * task + _STATE["add"]  # the state reaches the worker through the fork


def test_per_task_without_deaths_is_in_task_order():
    from labeling.label_arrays import _per_task

    assert list(_per_task(square, list(range(9)), {"add": 1}, 2)) == [t * t + 1 for t in range(9)]


def test_build_vocab_exits_1_with_one_line_when_a_worker_dies(tmp_path):
    root = tmp_path / "root"
    child = run_child(
        f"""
        import os, signal, sys
        sys.path.insert(0, "tests/labeling")
        from pathlib import Path
        from test_label_arrays import corpus, write_parts
        from labeling import build_vocab, label_arrays

        real = label_arrays._assign_task

        def assign(task):
            if task.index == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(task)

        label_arrays._assign_task = assign
        write_parts(Path({str(root)!r}), corpus(2000), files=2, row_group=500)
        sys.exit(build_vocab.main(["--root", {str(root)!r}]))
        """
    )
    assert child.returncode == 1
    assert child.stderr.splitlines() == [
        "error: curate build-vocab: assign labels: a worker process died (killed by a signal, "
        "most often the out-of-memory killer); free memory or run with fewer rows per metadata "
        "row group, then rerun"
    ]
    assert sorted(p.name for p in root.iterdir()) == ["metadata"]  # nothing half-written


def test_no_duckdb_connection_exists_when_the_array_path_forks(tmp_path, mapper, monkeypatch):
    """Forking while DuckDB's threads run can copy a held lock into the child."""
    import duckdb

    from labeling import build_vocab, worker_pool

    sys.path.insert(0, str(Path(__file__).parent))
    from test_label_arrays import corpus, write_parts

    events: list[str] = []
    real_connect, real_executor = duckdb.connect, worker_pool.forked_executor

    def connect(*args, **kwargs):
        events.append("connect")
        return real_connect(*args, **kwargs)

    def executor(workers):
        events.append("fork")
        return real_executor(workers)

    monkeypatch.setattr(duckdb, "connect", connect)
    monkeypatch.setattr(worker_pool, "forked_executor", executor)
    monkeypatch.setattr(build_vocab, "_new_mapper", lambda opts, sense_map: mapper)
    write_parts(tmp_path, corpus(2000), files=2, row_group=500)
    assert build_vocab.main(["--root", str(tmp_path)]) == 0
    # scan, mapping, count, assign (no cap: weights summed there), write; then DuckDB
    assert events == ["fork"] * 5 + ["connect"]


def test_scan_workers_run_while_on_start_works(tmp_path):
    """`on_start` (WordNet's load) overlaps the scan: the workers were forked, with their
    tasks, before it runs, and so they do not inherit what it loads."""
    import multiprocessing

    from labeling.tag_pairs import scan_metadata

    sys.path.insert(0, str(Path(__file__).parent))
    from test_label_arrays import corpus, write_parts

    write_parts(tmp_path, corpus(2000), files=2, row_group=250)
    workers: list[int] = []
    pairs = scan_metadata(
        sorted(map(str, (tmp_path / "metadata").glob("*.parquet"))), tmp_path / "spill", 2,
        on_start=lambda: workers.append(len(multiprocessing.active_children())),
    )  # fmt: skip
    assert workers == [2]
    assert pairs.captions == 2000 and len(pairs.tasks) == 8


def _burn(seconds: float) -> float:
    import time

    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return time.process_time() - start


def test_cpu_seconds_count_the_workers_of_a_finished_pool():
    """A pass's CPU over all processes: its workers' time shows once the pool is shut down
    (their 0.3 s, beyond what this process spent meanwhile)."""
    import time

    from labeling.worker_pool import cpu_seconds, forked_executor

    before, own = cpu_seconds(), time.process_time()
    with forked_executor(2) as pool:
        burnt = sum(pool.map(_burn, [0.15, 0.15]))
    spent = cpu_seconds() - before - (time.process_time() - own)
    assert burnt >= 0.3 and spent >= 0.9 * burnt
