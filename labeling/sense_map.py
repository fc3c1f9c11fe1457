"""`curate build-vocab --sense-map FILE`: a researcher's own word -> synset decisions.

The sense rule (`labeling.senses`) decides from WordNet's data alone, and for some words of
some corpora it is wrong: `#scooter` is the scoter duck (all five senses have no SemCor
use, and animals come before artifacts), `#monitor` the lizard, `#seal` sealing wax. The
context rule (`--context-senses`) fixes a caption at a time when its other words say so; a
sense map fixes a word for the whole run, without code. One line a word: the word, then
the wnid of the noun synset it is to name, separated by a tab or spaces; `#` starts a
comment.

    # word            wnid
    scooter           n03791053   # motor_scooter.n.01
    monitor           n03782190   # monitor.n.04, the display
    seal              n02076196   # seal.n.09, the animal
    selfie            n00007846   # person.n.01 (no WordNet 3.0 lemma)
    golden retriever  n02099601

A word is matched separator-free and casefolded (`golden retriever`, `golden_retriever`
and `GoldenRetriever` are one key), twice per tag: first the tag's words joined (`#selfie`,
`#Selfie`), then the noun lemma the mapper's rules resolve the tag to, so that plurals,
CamelCase and segmentation heads follow (`#scooters`, `#RedScooter`); so write a noun as
its lemma, `scooter`, not `scooters` (which would match the tag `#scooters` alone). Caption
words (`--source caption|both`) are matched the same way. A stoplisted tag stays
stoplisted; the visual filter still applies (a word mapped to a non-visual synset is
`non_visual`); the context rule does not move a mapped word. The synset need not name the
word.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from curation.errors import UsageError
from labeling.mapper import separator_free

WNID = re.compile(r"n\d{8}")


def read_sense_map(path: str | Path) -> dict[str, str]:
    """{`separator_free(word)`: wnid} of the file at `path` (module docstring).

    A UsageError names the file and line of: a missing or unreadable file, a line without
    a word and a wnid, a wnid that is not `n` and 8 digits, a word with no letter or digit,
    one word given two wnids. Whether each wnid is a WordNet noun synset is checked when the
    mapper is built (`HashtagMapper(sense_map=...)`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--sense-map {path}: cannot read it ({err})") from None
    entries: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        body = line.split("#", 1)[0].strip()
        if not body:
            continue
        where = f"--sense-map {path}, line {number}"
        parts = body.rsplit(None, 1)
        if len(parts) != 2:
            raise UsageError(f"{where}: expected a word and a wnid, got {body!r}")
        word, wnid = parts
        if not WNID.fullmatch(wnid):
            raise UsageError(f"{where}: {wnid!r} is no noun wnid (n and 8 digits: n03791053)")
        key = separator_free(word)
        if not key:
            raise UsageError(f"{where}: {word!r} has no letter or digit")
        if entries.get(key, wnid) != wnid:
            raise UsageError(
                f"{where}: {word!r} is mapped to {entries[key]} on line {lines[key]} already"
            )
        entries[key], lines[key] = wnid, number
    return entries


def sense_map_digest(entries: dict[str, str]) -> str:
    """sha256 of the map's entries (sorted `key<TAB>wnid` lines): meta.json records it, so
    two runs' labels can be told apart when their maps differ but the file name does not."""
    lines = "".join(f"{k}\t{v}\n" for k, v in sorted(entries.items()))
    return hashlib.sha256(lines.encode()).hexdigest()
