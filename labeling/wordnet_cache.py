"""What mawskit derives from WordNet's files, kept on disk between processes.

Contract: `cached(name, wn, build)` returns `build()`, from a pickle when one was written
for the same WordNet files and the same mawskit code, else built and written (atomically:
a temporary file renamed into place). The key is a SHA-256 over `name`, the path, size and
modification time of every file in `wn`'s WordNet folder, and the bytes of every module of
the `labeling` package, so a changed WordNet or a changed rule builds afresh; old entries
of a name are removed when a new one is written. A missing, unreadable or corrupt entry,
or a folder that cannot be written, just means building (a warning, never an error).

Where: `$MAWSKIT_CACHE`, else `$XDG_CACHE_HOME/mawskit`, else `~/.cache/mawskit`;
`MAWSKIT_CACHE=off` turns the cache off.

Why: a process that maps hashtags builds its noun index and lexicon from WordNet's text
files (~1.5 s of CPU, Python parsing); reading them back is ~4x cheaper. `curate
build-vocab` pays that on every run, while its scan workers need the same cores.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
OFF = "off"


def cache_dir() -> Path | None:
    """The cache folder (module docstring), or None when turned off."""
    chosen = os.environ.get("MAWSKIT_CACHE")
    if chosen == OFF:
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mawskit"


@functools.cache
def _code_digest() -> str:
    """SHA-256 of the `labeling` package's modules, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(name: str, wordnet_root: str) -> str:
    """The key of entry `name` for the WordNet folder `wordnet_root` (module docstring)."""
    digest = hashlib.sha256(f"{name}\0{_code_digest()}\0{wordnet_root}".encode())
    for entry in sorted(os.scandir(wordnet_root), key=lambda e: e.name):
        if entry.is_file():
            stat = entry.stat()
            digest.update(f"\0{entry.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def cached(name: str, wn: Any, build: Callable[[], T]) -> T:
    """`build()`, read from the cache when an entry for `name`, `wn`'s files and this code
    exists (module docstring); `wn` is NLTK's WordNet reader."""
    folder = cache_dir()
    if folder is None:
        return build()
    path = folder / f"{name}-{cache_key(name, wn._root.path)}.pickle"
    try:
        with open(path, "rb") as file:
            return pickle.load(file)
    except FileNotFoundError:
        pass
    except Exception as err:  # a truncated or foreign file: build and write it again
        warnings.warn(f"mawskit cache {path} unreadable ({err}); rebuilding", stacklevel=2)
    value = build()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        for old in folder.glob(f"{name}-*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(f"mawskit cache {folder} not written ({err})", stacklevel=2)
    return value
