"""`curate build-vocab --sense-map FILE`: a researcher's own word -> synset decisions.

The sense rule (`labeling.senses`) decides from WordNet's data alone, and for some words of
some corpora it is wrong: `#scooter` is the scoter duck (all five senses have no SemCor
use, and animals come before artifacts), `#monitor` the lizard, `#seal` sealing wax. The
context rule (`--context-senses`) fixes a caption at a time when its other words say so; a
sense map fixes a word for the whole run, without code. One line a word: the word, then
the wnid of the noun synset it is to name, separated by a tab or spaces; `#` followed by
a space starts a comment (a word may keep its `#`: `#selfie n00007846`).

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
words (`--source caption|both`) are matched the same way. A tag on the stoplist stays
stoplisted (`#love`), but an entry for the whole tag wins over the word the rules would
resolve it to, stoplisted or not (`instalove` maps `#InstaLove`, which the rules resolve
to `love`). The visual filter still applies (a word mapped to a non-visual synset is
`non_visual`); the context rule does not move a mapped word, and the context a mapped tag
gives other tags comes from the mapped synset alone. The synset need not name the word.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from curation.errors import UsageError
from labeling.mapper import WNID, separator_free

# `#` then a space, or `#` ending the line, starts a comment; `#selfie` is a word
COMMENT = re.compile(r"#(?=\s|$)")


@dataclass(frozen=True)
class SenseMap:
    """A read sense map: `wnids` {`separator_free(word)`: wnid}, what `HashtagMapper`
    takes; `lines` {same key: (line number, the word as written)}, for messages."""

    path: Path
    wnids: dict[str, str] = field(default_factory=dict)
    lines: dict[str, tuple[int, str]] = field(default_factory=dict)

    def where(self, key: str) -> str:
        """`--sense-map PATH, line N: 'Word As Written'` of an entry's key."""
        number, word = self.lines[key]
        return f"--sense-map {self.path}, line {number}: {word!r}"


def read_sense_map(path: str | Path) -> SenseMap:
    """The sense map in the file at `path` (module docstring).

    A UsageError names the file and line of: a missing or unreadable file, a line without
    a word and a wnid, a wnid that is not `n` and 8 digits (ASCII), a word with no letter
    or digit, one word given two wnids. Whether each wnid is a WordNet noun synset is
    checked when the mapper is built (`HashtagMapper(sense_map=...)` raises
    `mapper.UnknownWnid`, which `SenseMap.where` turns into the line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"--sense-map {path}: cannot read it ({err})") from None
    read = SenseMap(path)
    for number, line in enumerate(text.splitlines(), 1):
        body = COMMENT.split(line, maxsplit=1)[0].strip()
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
        if read.wnids.get(key, wnid) != wnid:
            raise UsageError(f"{where}: {word!r} is mapped to {read.wnids[key]} on line "
                             f"{read.lines[key][0]} already")  # fmt: skip
        read.wnids[key] = wnid
        read.lines.setdefault(key, (number, word))
    return read


def sense_map_digest(wnids: dict[str, str]) -> str:
    """sha256 of a map's entries (sorted `key<TAB>wnid` lines): meta.json records it, so
    two runs' labels can be told apart when their maps differ but the file name does not."""
    lines = "".join(f"{k}\t{v}\n" for k, v in sorted(wnids.items()))
    return hashlib.sha256(lines.encode()).hexdigest()
