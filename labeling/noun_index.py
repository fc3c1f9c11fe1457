"""WordNet 3.0 noun synsets as flat records, read once from `data.noun`: the sense rules' inputs.

NLTK parses a synset's line of `data.noun` on every first touch (~150 us each, plus the
hypernym lines the visual filter climbs), which made the sense rule the mapper's hot spot:
~100k distinct hashtags touch ~60k synsets. `NounIndex` reads the whole file in one pass
(~82k lines, well under a second) into `NounRecord`s that offer exactly what
`labeling.senses` needs from a synset: `offset()`, `lexname()`, `lemma_names()`,
`tagged_count(lemma)`, `trademarks` (`senses.is_trademark`) and `past` (`senses.is_past`);
it answers the visual filter for every synset from one memoised walk up the hypernym
graph, and what lies below a synset from walks down it: `below` (the breadth and
concept-use tie-breaks) and `kinds_below` (the kinds of matter, of organisms, of
artifacts, of physical things).

Equivalences with NLTK (tested over random lemmas): `senses(lemma)` is
`wn.synsets(lemma, "n")` in the same order (NLTK's `_morphy` forms of the lowercased lemma,
each form's offsets from `index.noun`); `NounRecord.tagged_count(lemma)` is the sum of
`cntlist.rev` counts over the synset's lemmas named `lemma` up to case (`senses.tagged_count`
of a lemma the synset has); `trademarks` are NLTK's usage domains; `past` is
`senses.is_past` of the synset (read from its definition: the gloss less its quoted
examples, as NLTK parses it); `is_visual(record)` is
`senses.is_visual` (lexname in the visual set, or an ancestor through hypernym and
instance-hypernym pointers named in `senses.VISUAL_ANCESTORS`).

Record of one `data.noun` line: `offset lex_filenum ss_type w_cnt(hex) {word lex_id(hex)}
p_cnt {symbol offset pos source/target} | gloss`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from labeling.senses import (
    PHYSICAL,
    TRADEMARK,
    VISUAL_ANCESTORS,
    _sense_key_counts,
    past_gloss,
)
from labeling.wordnet import wordnet_path


@dataclass(frozen=True, slots=True)
class NounRecord:
    """One noun synset: what the sense rules and the visual filter read."""

    offset_: int
    lexname_: str
    names: tuple[str, ...]  # lemma names as WordNet writes them (`Canis_familiaris`)
    counts: tuple[int, ...]  # tagged count of each name in this synset (cntlist.rev)
    hypernyms: tuple[int, ...]  # offsets of `@` and `@i` pointers
    # names with a `;u` (usage domain) pointer to `senses.TRADEMARK`: all of them when the
    # pointer is the synset's, one when it is the lemma's (`Ping-Pong` of table_tennis.n.01)
    trademarks: tuple[str, ...] = ()
    kind_of: tuple[int, ...] = ()  # offsets of `@` pointers alone (none for an instance)
    past: bool = False  # `senses.is_past`: the gloss places the thing in the past

    def offset(self) -> int:
        return self.offset_

    def lexname(self) -> str:
        return self.lexname_

    def lemma_names(self) -> list[str]:
        return list(self.names)

    def tagged_count(self, lemma: str) -> int:
        folded = lemma.casefold()
        return sum(
            c for n, c in zip(self.names, self.counts, strict=True) if n.casefold() == folded
        )

    @property
    def wnid(self) -> str:
        return f"n{self.offset_:08d}"


class NounIndex:
    """Every noun synset of the WordNet reader `wn` (NLTK's), keyed by offset."""

    def __init__(self, wn: Any) -> None:
        from labeling.wordnet_cache import cached

        self._wn = wn
        # ~0.9 s to parse data.noun, ~0.3 s to read back (`labeling.wordnet_cache`)
        self.records: dict[int, NounRecord] = cached("noun-records", wn, lambda: _records(wn))
        self._anchors = frozenset(wn.synset(name).offset() for name in VISUAL_ANCESTORS)
        self._under_anchor: dict[int, bool] = {}
        self._kinds_below: dict[str, frozenset[int]] = {}
        self._kinds: dict[int, list[int]] = {}  # offset -> what names it in `kind_of`
        self._children: dict[int, list[int]] = {}  # offset -> what names it in `hypernyms`
        self._below: dict[int, tuple[int, int]] = {}  # `below`'s memo
        self._physical = wn.synset(PHYSICAL).offset()

    def senses(self, lemma: str) -> list[NounRecord]:
        """`wn.synsets(lemma, "n")` as records, in NLTK's order."""
        form = lemma.lower().replace(" ", "_")
        index = self._wn._lemma_pos_offset_map
        return [
            self.records[offset]
            for base in self._wn._morphy(form, "n")
            for offset in index[base]["n"]
        ]

    def is_visual(self, record: NounRecord, lexnames: frozenset[str]) -> bool:
        """`senses.is_visual` on a record."""
        return record.lexname_ in lexnames or self._below_anchor(record.offset_)

    def is_physical_kind(self, record: NounRecord) -> bool:
        """`senses.is_physical_kind` on a record: `PHYSICAL` above it through `@` pointers
        alone (an instance, whose pointers are `@i`, is none)."""
        return record.offset_ != self._physical and record.offset_ in self.kinds_below(PHYSICAL)

    def below(self, record: NounRecord) -> tuple[int, int]:
        """(how many synsets lie below `record` through hypernym and instance-hypernym
        pointers, the tagged counts of its lemmas and of theirs): `senses.hyponym_count` and
        `senses.concept_uses` of a record, each synset counted once; memoised."""
        hit = self._below.get(record.offset_)
        if hit is None:
            if not self._children:  # offset -> its hyponyms and instance hyponyms (~0.1 s)
                self._children.update(_inverted(self.records, "hypernyms"))
            seen = _reach(self._children, self._children.get(record.offset_, ()))
            uses = sum(record.counts) + sum(sum(self.records[o].counts) for o in seen)
            hit = self._below[record.offset_] = (len(seen), uses)
        return hit

    def kinds_below(self, name: str) -> frozenset[int]:
        """Offsets of the synset `name` (`matter.n.03`) and of every synset below it through
        `@` pointers alone: its kinds, their kinds, and so on (no instances); one walk down
        the inverted `kind_of` graph per name, memoised."""
        hit = self._kinds_below.get(name)
        if hit is None:
            if not self._kinds:
                self._kinds.update(_inverted(self.records, "kind_of"))
            start = self._wn.synset(name).offset()
            hit = self._kinds_below[name] = frozenset(_reach(self._kinds, [start]))
        return hit

    def _below_anchor(self, offset: int) -> bool:
        """True when a proper ancestor of `offset` is one of `VISUAL_ANCESTORS`."""
        hit = self._under_anchor.get(offset)
        if hit is None:
            self._under_anchor[offset] = False  # WordNet's noun graph is acyclic; be safe
            hit = any(
                parent in self._anchors or self._below_anchor(parent)
                for parent in self.records[offset].hypernyms
            )
            self._under_anchor[offset] = hit
        return hit


def _inverted(records: dict[int, NounRecord], pointers: str) -> dict[int, list[int]]:
    """offset -> the offsets whose `pointers` field (`hypernyms`, `kind_of`) names it."""
    children: dict[int, list[int]] = {}
    for offset, record in records.items():
        for parent in getattr(record, pointers):
            children.setdefault(parent, []).append(offset)
    return children


def _reach(children: dict[int, list[int]], starts: Iterable[int]) -> set[int]:
    """`starts` and every offset below them in `children`, each once (WordNet's noun graph
    is acyclic, and a diamond is walked once)."""
    found: set[int] = set()
    todo = list(starts)
    while todo:
        offset = todo.pop()
        if offset not in found:
            found.add(offset)
            todo.extend(children.get(offset, ()))
    return found


def _records(wn: Any) -> dict[int, NounRecord]:
    """Every noun synset of `wn` as a `NounRecord`, from data.noun and cntlist.rev."""
    counts = _sense_key_counts(wn)
    lexnames = _lexnames(wn)
    trademark = wn.synset(TRADEMARK).offset()
    records: dict[int, NounRecord] = {}
    with open(wordnet_path(wn, "data.noun"), encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, filenum = int(fields[0]), int(fields[1])
            n_words = int(fields[3], 16)
            names, tallies = [], []
            for i in range(n_words):
                name, lex_id = fields[4 + 2 * i], int(fields[5 + 2 * i], 16)
                names.append(name)
                tallies.append(counts.get(f"{name.lower()}%1:{filenum:02d}:{lex_id:02d}::", 0))
            at = 4 + 2 * n_words
            pointers = [fields[at + 1 + 4 * p : at + 5 + 4 * p] for p in range(int(fields[at]))]
            hypernyms = tuple(int(o) for symbol, o, *_ in pointers if symbol in ("@", "@i"))
            kind_of = tuple(int(o) for symbol, o, *_ in pointers if symbol == "@")
            # source/target `sstt` (hex): 0000 the whole synset, else word ss to word tt
            sources = {
                int(st[:2], 16) for symbol, o, _, st in pointers
                if symbol == ";u" and int(o) == trademark
            }  # fmt: skip
            records[offset] = NounRecord(
                offset, lexnames[filenum], tuple(names), tuple(tallies), hypernyms,
                tuple(n for i, n in enumerate(names, 1) if {0, i} & sources), kind_of,
                past_gloss(gloss),
            )  # fmt: skip
    return records


@functools.cache
def noun_index(wn: Any) -> NounIndex:
    """The `NounIndex` of reader `wn`, built once per process."""
    return NounIndex(wn)


def _lexnames(wn: Any) -> dict[int, str]:
    with open(wordnet_path(wn, "lexnames"), encoding="utf-8") as lines:
        return {int(cols[0]): cols[1] for cols in (line.split() for line in lines) if cols}
