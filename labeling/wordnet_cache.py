"""What mawskit derives from WordNet's files, kept on disk between processes.

Contract: `cached(name, wn, build)` returns `build()`, from a pickle when one was written
for the same WordNet files and the same mawskit code, else built and written (atomically:
a temporary file renamed into place). The key is a SHA-256 over `name`, the Python and NLTK
versions, the path, size and modification time of every file in `wn`'s WordNet folder, and
the bytes of every module of the `labeling` package as they were when this process
imported it (`labeling.CODE_DIGEST`); so a changed WordNet or a changed rule builds afresh,
and a process whose files changed under it after the import writes nothing. The `KEEP`
newest entries of a name stay (several checkouts can share the folder). A missing,
unreadable or corrupt entry, or a folder that cannot be written, just means building (a
warning, never an error).

Where: `$MAWSKIT_CACHE`, else `$XDG_CACHE_HOME/mawskit`, else `~/.cache/mawskit`;
`MAWSKIT_CACHE=off` turns the cache off.

Why: a process that maps hashtags builds its noun index and lexicon from WordNet's text
files (~1.5 s of CPU, Python parsing); reading them back is ~4x cheaper. `curate
build-vocab` pays that on every run, while its scan workers need the same cores.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
OFF = "off"
KEY_CHARS = 24  # hex digits of the key in an entry's file name
KEEP = 4  # entries kept per name


def cache_dir() -> Path | None:
    """The cache folder (module docstring), or None when turned off or when there is no
    home folder to put it in."""
    chosen = os.environ.get("MAWSKIT_CACHE")
    if chosen == OFF:
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no passwd entry (an arbitrary container uid)
            return None
    return Path(base) / "mawskit"


def code_digest() -> str:
    """SHA-256 of the `labeling` package's modules as they are on disk now, in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@functools.cache
def _code_digest() -> str:
    """`code_digest()` when this process imported the package (`labeling/__init__.py`
    records it), so entries are keyed by the code that runs even when the files change
    later on; a write checks the files again (`cached`)."""
    import labeling

    return labeling.CODE_DIGEST


def cache_key(name: str, wordnet_root: str) -> str:
    """The key of entry `name` for the WordNet folder `wordnet_root` (module docstring)."""
    import nltk

    versions = f"{sys.version_info[:2]}\0{nltk.__version__}"
    digest = hashlib.sha256(f"{name}\0{_code_digest()}\0{versions}\0{wordnet_root}".encode())
    for entry in sorted(os.scandir(wordnet_root), key=lambda e: e.name):
        if entry.is_file():
            stat = entry.stat()
            digest.update(f"\0{entry.name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:KEY_CHARS]


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
    except (FileNotFoundError, NotADirectoryError):
        pass
    except Exception as err:  # a truncated or foreign file: build and write it again
        warnings.warn(f"mawskit cache {path} unreadable ({err}); rebuilding", stacklevel=2)
    value = build()
    if code_digest() != _code_digest():  # the code changed on disk since it was imported
        return value
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        _forget_old(folder, name, keep=path)
    except Exception as err:  # no room, no rights, or a value pickle cannot write
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        warnings.warn(f"mawskit cache {folder} not written ({err})", stacklevel=2)
    return value


def _forget_old(folder: Path, name: str, keep: Path) -> None:
    """Remove entries of `name` beyond the `KEEP` newest (`keep` among them): checkouts or
    WordNet folders that share the cache each keep theirs, and it does not grow forever."""
    entry = re.compile(rf"{re.escape(name)}-[0-9a-f]{{{KEY_CHARS}}}\.pickle")
    entries = [p for p in folder.iterdir() if entry.fullmatch(p.name) and p != keep]
    entries.sort(key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in entries[KEEP - 1 :]:
        old.unlink(missing_ok=True)
