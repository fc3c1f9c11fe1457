"""The dataset folder (`--root DIR`) and the rules every stage writes by.

    DIR/metadata/part-*.parquet   curate ingest
    DIR/vocab/{vocab,hashtags}.parquet, DIR/labels/part-*.parquet   curate build-vocab
    DIR/crawl/                    img2dataset's own output for http(s) urls
    DIR/shards/{train,val}-NNNNNN.tar (+ .parquet sidecar), manifest.json   curate shard

Each stage folder holds a `meta.json` (resolved config, package versions, counts, timing).
Nothing half-written is taken as done: a stage writes into `<folder>.tmp-<pid>` and renames
it into place only when complete (`staged_dir`).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from curation.errors import UsageError

TRACKED_PACKAGES = (
    "mawskit", "torch", "timm", "img2dataset", "webdataset", "nltk", "spacy", "duckdb",
    "pyarrow",
)  # fmt: skip


def package_versions() -> dict[str, str]:
    """Installed versions of the packages whose behaviour shapes our outputs."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to `path` through a temporary name and a rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_meta(folder: Path, *, config: Any, counts: dict[str, Any], started: float) -> None:
    """Write `folder/meta.json`: resolved config, package versions, counts and timing."""
    cfg = asdict(config) if is_dataclass(config) else dict(config)
    write_json_atomic(
        folder / "meta.json",
        {
            "config": cfg,
            "counts": counts,
            "seconds": round(time.time() - started, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": package_versions(),
            "argv": sys.argv,
        },
    )


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    if not path.exists():
        raise UsageError(f"{folder} has no meta.json: run the stage that writes it first")
    return json.loads(path.read_text())


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield a fresh temporary folder next to `final`; on success it replaces `final`.

    On any exception the temporary folder is removed and `final` is left as it was.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f"{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (another user's counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, and belongs to another user
        pass
    return True


def remove_dead_run_folders(paths: list[Path]) -> list[Path]:
    """Remove each folder named `…-PID` whose process is gone (never this process's): a
    killed run cannot clean up after itself. Returns what was removed."""
    removed = []
    for path in paths:
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def require_parquet(folder: Path, what: str, command: str) -> str:
    """The glob of a stage's parquet parts, or a UsageError naming the command to run."""
    parts = sorted(folder.glob("*.parquet"))
    if not parts:
        raise UsageError(f"no {what} under {folder}: run `{command}` first")
    return str(folder / "*.parquet")


class DatasetRoot:
    """Paths of one dataset folder. Creating it does not touch the disk."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @property
    def metadata(self) -> Path:
        return self.root / "metadata"

    @property
    def vocab(self) -> Path:
        return self.root / "vocab"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def crawl(self) -> Path:
        return self.root / "crawl"

    @property
    def shards(self) -> Path:
        return self.root / "shards"
