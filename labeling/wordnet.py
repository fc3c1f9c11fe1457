"""WordNet 3.0 through NLTK: loaded once per process, lazily, with one clear line if missing.

`wordnet()` returns NLTK's `WordNetCorpusReader`. `ensure_wordnet()` is the set-up step
(`make setup` runs `python -m labeling.wordnet`): use WordNet if NLTK finds it; else
`nltk.download("wordnet")` when the internet answers; else Debian's `wordnet-base` and
`wordnet-sense-index` (installed with apt-get where that works) copied into
`<venv>/share/nltk_data/corpora/wordnet/` with the standard `lexnames` table, which Debian
does not ship. NLTK searches `<sys.prefix>/share/nltk_data` by itself.
"""

from __future__ import annotations

import collections
import functools
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from curation.errors import UsageError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
DEBIAN_PACKAGES = ("wordnet-base", "wordnet-sense-index")
LEXNAMES = Path(__file__).with_name("data") / "wordnet-lexnames.tsv"
HOW_TO_GET = (
    "WordNet 3.0 not found for NLTK: run `make setup`, or "
    "`python -c \"import nltk; nltk.download('wordnet')\"` where the internet answers, or "
    "`apt-get install wordnet-base wordnet-sense-index && python -m labeling.wordnet`"
)


def venv_nltk_data() -> Path:
    return Path(sys.prefix) / "share" / "nltk_data"


# Read front to back at load time: plain files are ~10x faster than NLTK's seekable reader.
_SEQUENTIAL = ("lexnames", "index.noun", "index.verb", "index.adj", "index.adv")


@functools.cache
def wordnet() -> Any:
    """NLTK's WordNet reader, loaded on first use (~2 s); UsageError when absent.

    A subclass of NLTK's `WordNetCorpusReader` that loads faster and answers the same:
    its load-time sequential reads (lemma indexes, exception lists, lexnames, the scan of
    adjective satellites) use plain files, and it skips `map_wn`, which in NLTK 3.9+
    re-reads `index.sense` twice to map WordNet 3.0 onto itself for multilingual data
    (unused here, and half of NLTK's load time).
    """
    import warnings

    nltk = _import_nltk()
    try:
        root = nltk.data.find("corpora/wordnet")
    except LookupError as err:
        raise UsageError(HOW_TO_GET) from err
    with warnings.catch_warnings():  # "multilingual functions are not available"
        warnings.simplefilter("ignore")
        wn = _fast_reader_class()(root, None)
    if wn.get_version() != "3.0":
        raise UsageError(f"WordNet {wn.get_version()} found; mawskit's wnids need WordNet 3.0")
    return wn


def _import_nltk() -> Any:
    """`import nltk` without SciPy (~0.2 s of CPU of its ~0.5 s import, numpy loaded):
    nltk reaches `scipy.stats` (collocation metrics) and `scipy.sparse` (the transition
    parser) only behind `except ImportError` fallbacks, and mawskit uses neither. Done only
    when neither nltk nor SciPy is imported yet; SciPy imports normally afterwards."""
    if "nltk" in sys.modules or "scipy" in sys.modules:
        import nltk

        return nltk
    sys.modules["scipy"] = None  # type: ignore[assignment]  # makes the import fail
    try:
        import nltk
    finally:
        del sys.modules["scipy"]
    return nltk


@functools.cache
def _fast_reader_class() -> type:
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class FastWordNetReader(WordNetCorpusReader):
        def open(self, fileid: str) -> Any:
            if fileid in _SEQUENTIAL or fileid.endswith(".exc"):
                return open(self._root.join(fileid).path, encoding="utf-8")  # noqa: SIM115
            return super().open(fileid)

        def _scan_satellites(self) -> None:
            with open(self._root.join("data.adj").path, encoding="utf-8") as lines:
                self.satellite_offsets = {
                    int(fields[0])
                    for fields in (line.split(maxsplit=3) for line in lines if line[:1] != " ")
                    if len(fields) >= 3 and fields[2] == "s"
                }

        def map_wn(self, version: str = "wordnet") -> None:
            return None

        def _load_lemma_pos_offset_map(self) -> None:
            from labeling.wordnet_cache import cached

            # ~0.45 s to parse, ~0.1 s to read back (`labeling.wordnet_cache`)
            self._lemma_pos_offset_map = cached("lemma-pos-offsets", self, self._parse_lemmas)

        def _parse_lemmas(self) -> Any:
            # NLTK's parse without its per-line closure and per-token calls (~3x faster);
            # same map, tested against NLTK's own method
            lemmas: dict[str, dict[str, list[int]]] = collections.defaultdict(dict)
            adj, adj_sat = "a", "s"
            for suffix in self._FILEMAP.values():
                with open(self._root.join(f"index.{suffix}").path, encoding="utf-8") as lines:
                    for line in lines:
                        if line[:1] == " ":
                            continue
                        fields = line.split()
                        lemma, pos, n_synsets = fields[0], fields[1], int(fields[2])
                        first = 6 + int(fields[3])
                        offsets = [int(x) for x in fields[first : first + n_synsets]]
                        lemmas[lemma][pos] = offsets
                        if pos == adj:
                            sat = self.satellite_offsets
                            lemmas[lemma][adj_sat] = [o for o in offsets if o in sat]
            return lemmas

    return FastWordNetReader


def wordnet_path(wn: Any, fileid: str) -> str:
    """The local path of one of WordNet's files, for plain sequential reads."""
    return wn._root.join(fileid).path


def _nltk_finds_wordnet() -> bool:
    code = "from nltk.corpus import wordnet as wn; wn.ensure_loaded(); print(wn.get_version())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return out.returncode == 0 and out.stdout.strip() == "3.0"


def _internet_answers(host: str = "raw.githubusercontent.com", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _apt_install() -> bool:
    if shutil.which("apt-get") is None:
        return False
    sudo = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if sudo is None:
        return False
    install = [*sudo, "apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode == 0:
        return True
    subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True)
    return subprocess.run(install, env=env, capture_output=True).returncode == 0


def copy_debian_wordnet(source: Path, nltk_data: Path) -> Path:
    """Copy Debian's WordNet files plus `lexnames` into `nltk_data/corpora/wordnet/`.

    NLTK refuses symlinks and paths outside its data folders, so these are real copies,
    written to a temporary folder and renamed into place.
    """
    final = nltk_data / "corpora" / "wordnet"
    tmp = final.with_name(f"wordnet.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for path in source.iterdir():
        if path.is_file():
            shutil.copyfile(path, tmp / path.name)
    lexnames = [line.split("\t") for line in LEXNAMES.read_text().splitlines() if line]
    (tmp / "lexnames").write_text("".join("\t".join(cols) + "\n" for cols in lexnames))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def ensure_wordnet() -> str:
    """Make WordNet 3.0 loadable by NLTK in this environment; return how it was found."""
    if _nltk_finds_wordnet():
        return "found by NLTK"
    target = venv_nltk_data()
    if _internet_answers():
        import nltk

        if nltk.download("wordnet", download_dir=str(target), quiet=True) and _nltk_finds_wordnet():
            return f"downloaded by NLTK into {target}"
    if not (DEBIAN_WORDNET / "data.noun").exists() or not (DEBIAN_WORDNET / "index.sense").exists():
        _apt_install()
    if (DEBIAN_WORDNET / "data.noun").exists() and (DEBIAN_WORDNET / "index.sense").exists():
        copy_debian_wordnet(DEBIAN_WORDNET, target)
        if _nltk_finds_wordnet():
            return f"copied from Debian's {' + '.join(DEBIAN_PACKAGES)} into {target}"
    raise UsageError(HOW_TO_GET)


def main(argv: list[str] | None = None) -> int:
    from curation.errors import run_main

    def _run(_: object) -> int:
        print(f"WordNet 3.0: {ensure_wordnet()}")
        return 0

    return run_main(_run, argv)


if __name__ == "__main__":
    sys.exit(main())
