"""Forked worker processes for build-vocab that fail loudly and die with their parent.

Contract:

    with forked_executor(workers) as pool:   # fork context, workers >= 2
        for result in ordered(pool, "scan", function, tasks): ...   # in task order
        for result in unordered(pool, "scan", function, tasks): ... # as they finish

A worker killed while it holds a task (the out-of-memory killer, SIGKILL) raises
`WorkerDied` ("<stage>: a worker process died ...", one line) instead of waiting forever:
`multiprocessing.Pool` replaces a dead worker but never completes its task, while
`ProcessPoolExecutor` marks itself broken and fails every pending future. `WorkerDied` is a
runtime failure, not bad input: `build_vocab.main` prints it as one line and exits 1.

Every worker runs `_die_with_parent`: on Linux the kernel sends it SIGKILL when the process
that forked it ends (`prctl(PR_SET_PDEATHSIG)`), elsewhere a thread polls `os.getppid()`.
So a SIGKILLed `curate build-vocab` leaves no worker finishing tasks into its spill folder.
The death signal follows the *thread* that forked: forks happen on the first `submit`,
which every caller here makes from the thread that also waits for the results.

The fork happens on the first submit (Python forks every worker at once for the fork
context), so module state the workers read must be set before it.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_SECONDS = 0.5  # how often a worker without prctl looks for its parent


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its task; the message is one line."""


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when `parent` (the pid that forked it) ends."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before prctl took effect
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def forked_executor(workers: int) -> ProcessPoolExecutor:
    """A `ProcessPoolExecutor` of `workers` forked processes that die with this one."""
    import multiprocessing

    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that ended and were
    waited for. Every build-vocab pool is shut down (its workers joined) when its pass
    returns, so the difference across a pass is that pass's CPU over all processes."""
    import resource

    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def died(stage: str) -> WorkerDied:
    """The one-line error for a broken pool in `stage`."""
    return WorkerDied(
        f"{stage}: a worker process died (killed by a signal, most often the out-of-memory "
        "killer); free memory or run with fewer rows per metadata row group, then rerun"
    )


def result(future: Future, stage: str) -> Any:
    """`future.result()`, with a dead worker raised as `WorkerDied`."""
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as err:
        raise died(stage) from err


def ordered(
    pool: ProcessPoolExecutor, stage: str, function: Callable, tasks: Iterable
) -> Iterator[Any]:
    """`function(task)` for every task in the pool, yielded in task order. Every task is
    submitted (and the workers forked) here, before the first result is asked for."""
    futures = [pool.submit(function, task) for task in tasks]
    return _in_order(futures, stage)


def unordered(
    pool: ProcessPoolExecutor, stage: str, function: Callable, tasks: Iterable
) -> Iterator[Any]:
    """`function(task)` for every task in the pool, yielded as each finishes. Every task is
    submitted (and the workers forked) here: the caller may work while they run."""
    pending = {pool.submit(function, task) for task in tasks}
    return _as_finished(pending, stage)


def _in_order(futures: list[Future], stage: str) -> Iterator[Any]:
    try:
        for future in futures:
            yield result(future, stage)
    finally:
        for future in futures:
            future.cancel()


def _as_finished(pending: set[Future], stage: str) -> Iterator[Any]:
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield result(future, stage)
    finally:
        for future in pending:
            future.cancel()
