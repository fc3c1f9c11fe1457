"""One hashtag (as written) -> a WordNet 3.0 noun synset, or the reason it maps to none.

Contract of `HashtagMapper.map(tag) -> TagMapping(canonical, wnid, reason, lexname)`:

1. `too_long`: more than `hashtags.MAX_TAG_CHARS` characters after NFKC.
2. `stoplisted`: the casefolded tag (with or without `_`) is a meta tag (`DEFAULT_STOPLIST`:
   `#love`, `#instagood`, `#tbt`, `#like4like`, ...). Checked again on the noun it resolves
   to, so `#InstaLove` is stoplisted too.
3. `numeric`: no letters at all (`#2019`).
   Sense map (`sense_map`, `curate build-vocab --sense-map FILE`, `labeling.sense_map`):
   the user's word -> wnid decisions, matched separator-free against the tag's words
   joined (`#selfie`) and then against the noun lemma rule 4 resolves (`#scooters` ->
   scooter); a hit is the class, rules 4e and 5 skipped, rule 6 applied.
4. Resolution to a noun lemma, first hit wins (`hashtags.split_words` gives the words):
   a. the words joined by `_` as a WordNet lemma, plural/inflection removed by morphy
      (`GoldenRetriever`, `golden_retriever`, `golden_retrievers`);
   b. the words concatenated, as a lemma or as a lemma with its separators removed
      (`dogs` -> dog, `goldenretriever` -> golden_retriever, `ursusarctos` -> ursus_arctos);
   c. the same after removing hashtag affixes (`META_SUFFIXES`, `META_PREFIXES`:
      `sunsetlovers` -> sunset, `dogsofinstagram` -> dog, `instacat` -> cat);
   d. segmentation of the concatenation into WordNet words (fewest pieces, then the
      longest pieces); the head is the last noun piece, or the last noun before `of`
      (`blackdog` -> dog, `cupofcoffee` -> cup).
   Base choice (`base`), in a-c and for caption words: a written form that is no lemma can
   be an inflection of several nouns (`noun_bases`: WordNet's exception list, then its
   suffix rules, as WordNet's `morphstr` reads them; NLTK's morphy stops at the list).
   A base whose noun senses are all proper names loses (`saxes` is sax, not Saxe, i.e.
   Saxony); for a form of the exception list, the list's first base and the suffix rules'
   bases compete by the SemCor uses of the word (its tagged counts over its noun senses),
   a tie to the suffix rule's, the regular reading (`syringes` is syringe, not syrinx, the
   bird's vocal organ, 0 uses each; `synapses` synapse, not synapsis; `pelves` pelvis, 1
   use to pelf's 0); otherwise morphy's order (`crosses` stays crosse). Of the ~57k plural
   and exception forms of WordNet's one-word nouns 17 change as tags: ImageNet's `saxes`
   and `syringes`, `synapses`, `frijoles` (the food, not the plant), `fortes` (forte, not
   fort), `bunches` (Bunche the diplomat, now the non-visual bunch), the rest to the same
   synset (`axes`: axe) or between two dropped outcomes (`ellipses`, `his`).
   Nothing found: `not_noun` when WordNet knows the word as another part of speech
   (`#happy`), else `no_match`.
   e. Part-of-speech dominance (`labeling.pos_dominance`): a one-word noun lemma found as
   written (the whole tag, an affix-stripped rest or a segmentation piece; not a plural)
   that SemCor uses as an adjective `pos_dominance` (5) times as often as in all its
   visual noun senses (tagged counts, +1), and as a noun at least once, names a property:
   `not_noun`. `#red` (58 adjective uses against bolshevik.n.01's 1), `#white`, `#black`,
   `#blue`, `#green`, `#pink`, `#gray`, `#small`, `#clean` are properties; `#orange` (the
   fruit), `#gold` and `#silver` (the metals), `#metal`, `#glass` stay things, and so do
   words SemCor never tags as nouns (`#remote`, `#grand`, `#husky`: ImageNet classes).
5. Ambiguity rule (`sense_rule`, `labeling.senses.SENSE_RULES`): `frequent_visual`
   (default) takes, among the senses that are visual and not a proper name for the word,
   the one with the highest tagged frequency (unless the word's most frequent sense is
   non-visual and outweighs all its visual senses `non_visual_dominance` (8) times over:
   `#shapes`, `#action` are then `non_visual`), ties to the more depictable lexicographer
   file (animal > artifact > food > plant > ...; an animal's part or a drug filed there
   ranks last: `senses.preference_rank`), then to a kind of physical thing by its
   hypernyms (`senses.is_physical_kind`: `#woodenspoon` the spoon, not the booby prize),
   then to the concept with more SemCor uses under all its names and kinds
   (`senses.concept_uses`), then to the broader sense (more synsets below it), then to
   a thing of today over one its gloss places in the past (`senses.is_past`: `#bobsled`
   the racing sled, not "formerly two short sleds coupled together"): `#sunset`
   is the sky phenomenon (n11473954), not the time of day; `#tiger` the cat; `#hammer`
   the hand tool, not the gun part; `#cot` the crib. Trademarks are not proper names
   (`#loafer` the shoe), and a sense reached through the tag's singular counts the
   singular's uses (`#eyes` the organ). Person senses, and senses of abstract files
   admitted by the visual filter through a physical ancestor, come first
   only when their summed counts reach `senses.DEPICTION_DOMINANCE` (4) x (the best
   other visual sense's count + 1): `#boxer` is the dog, `#speaker` the loudspeaker,
   `#radio` the receiver, `#painter` the artist. `first_visual` takes the first such
   sense in WordNet's order, `first` WordNet's first noun sense. Synonyms merge because
   the class is the synset: `#brownbear` and `#ursusarctos` both give n02132136.
6. `non_visual`: the chosen sense's lexicographer file is not in `VISUAL_LEXNAMES`
   (animal, artifact, body, food, location, object, person, phenomenon, plant, substance)
   and it is no hyponym of `senses.VISUAL_ANCESTORS` (physical objects and signs filed
   elsewhere: `#comicbook`, `#streetsign`).
   Feelings, cognition, attributes, acts, time, states, communication etc. are dropped
   (`#summer`: every noun sense is noun.time).

Caption words (`map_word`, `--source caption|both`) take rules 1-3, 5 and 6, with rule 4
reduced to morphy's noun lemma of the whole word (no splitting, affixes or segmentation)
and 4e (the caption word `red` is `not_noun` like `#red`, `reds` is the Bolsheviks).

`wnid` is `'n%08d' % synset.offset()` (ImageNet's ids); it is set whenever a synset was
found (also for `non_visual`), `reason` is None iff the tag can become a label. The
vocabulary stage adds `below_min_count` and `beyond_max_classes`. Results are cached per
written tag: only distinct tags are mapped, so the mapper sees millions, not billions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from labeling.hashtags import is_too_long, normalized, split_words
from labeling.noun_index import NounRecord, noun_index
from labeling.pos_dominance import NO_USES, POS_DOMINANCE, names_property, pos_uses
from labeling.senses import (
    NON_VISUAL_DOMINANCE,
    SENSE_RULES,
    concept_uses,
    hyponym_count,
    is_physical_kind,
    is_visual,
    names_lemma,
    proper_name_of,
    tagged_count,
    visual_candidates,
)

REASONS = (
    "stoplisted", "numeric", "too_long", "no_match", "not_noun", "non_visual",
    "below_min_count", "beyond_max_classes",
)  # fmt: skip

VISUAL_LEXNAMES = frozenset({
    "noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.location", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.substance",
})  # fmt: skip

# Tags about the post, the platform or the poster's mood, not about what the image shows.
# `selfie` stays out on purpose: it says what the picture is.
DEFAULT_STOPLIST = frozenset({
    "love", "instagood", "photooftheday", "picoftheday", "tbt", "throwback",
    "throwbackthursday", "follow", "followme", "follow4follow", "followforfollow", "f4f",
    "like", "likes", "like4like", "likeforlike", "l4l", "tagsforlikes", "tflers", "nofilter",
    "instadaily", "instalike", "instamood", "instapic", "instacool", "instagram", "insta",
    "instagramers", "igers", "ig", "igdaily", "repost", "regram", "latergram", "webstagram",
    "bestoftheday", "potd", "photo", "photos", "pic", "pics", "picture", "image",
    "photography", "iphoneonly", "vsco", "vscocam", "me", "happy", "cute", "beautiful",
    "amazing", "fun", "smile", "day", "today", "life", "mood", "vibes", "goals", "blessed",
})  # fmt: skip

# Hashtag idioms glued to the word that names the thing (longest tried first).
META_SUFFIXES = tuple(sorted({
    "ofinstagram", "ofig", "oftheday", "oftheweek", "ofthemonth", "stagram", "gram",
    "lovers", "lover", "love", "life", "addict", "addicts", "daily", "photography", "photo",
    "photos", "pics", "pic", "time", "vibes", "goals", "porn", "gasm", "world", "squad",
    "nation", "everyday", "fam",
}, key=lambda s: (-len(s), s)))  # fmt: skip
META_PREFIXES = tuple(sorted({
    "insta", "ig", "ilove", "love", "my", "the", "cute", "best", "happy", "beautiful",
}, key=lambda s: (-len(s), s)))  # fmt: skip
# Short words allowed as segmentation pieces; never heads.
FUNCTION_WORDS = frozenset({"of", "the", "and", "my", "in", "on", "at", "for", "to"})
MIN_PIECE_CHARS = 3  # shorter WordNet entries are mostly abbreviations: "ab", "ad", "el"
MAX_PIECE_CHARS = 30
# Plural endings tried on separator-free keys, where morphy cannot see word boundaries.
_PLURAL_RULES = (("ies", "y"), ("es", ""), ("s", ""), ("men", "man"))


# A noun synset's id as ImageNet writes it: `n` and the 8-digit offset (ASCII digits).
WNID = re.compile(r"n[0-9]{8}")


class UnknownWnid(ValueError):
    """A sense map's wnid that names no WordNet 3.0 noun synset."""

    def __init__(self, word: str, wnid: str) -> None:
        super().__init__(f"{word!r} -> {wnid}: no WordNet 3.0 noun synset has this wnid")
        self.word, self.wnid = word, wnid


@dataclass(frozen=True)
class TagMapping:
    """What one hashtag became. `reason` None iff the tag can become a label."""

    canonical: str  # the form looked up: a WordNet lemma name when one was found
    wnid: str | None
    reason: str | None
    lexname: str | None = None


# META_SUFFIXES by length, longest first: at most one suffix of a length can end a text, so
# one slice and one set look-up per length give `META_SUFFIXES`' order
_SUFFIXES_BY_LENGTH = tuple(
    (n, frozenset(s for s in META_SUFFIXES if len(s) == n))
    for n in sorted({len(s) for s in META_SUFFIXES}, reverse=True)
)


def _without_suffix(text: str) -> list[str]:
    """`text` without each meta suffix it ends with, longest suffix first."""
    return [
        text[:-n]
        for n, suffixes in _SUFFIXES_BY_LENGTH
        if len(text) - n >= MIN_PIECE_CHARS and text[-n:] in suffixes
    ]


def separator_free(lemma: str) -> str:
    """A lemma name with its separators removed: `golden_retriever` -> `goldenretriever`."""
    return "".join(ch for ch in lemma.casefold() if ch.isalnum())


class HashtagMapper:
    """Maps written hashtags to WordNet noun synsets, with a per-tag cache.

    `wn` is NLTK's WordNet reader (default: `labeling.wordnet.wordnet()`); `stoplist`
    replaces `DEFAULT_STOPLIST` when given, `extra_stoplist` adds to it.
    """

    def __init__(
        self,
        wn: Any = None,
        stoplist: Iterable[str] | None = None,
        extra_stoplist: Iterable[str] = (),
        visual_lexnames: Iterable[str] = VISUAL_LEXNAMES,
        sense_rule: str = "frequent_visual",
        non_visual_dominance: float = NON_VISUAL_DOMINANCE,
        pos_dominance: float = POS_DOMINANCE,
        sense_map: Mapping[str, str] | None = None,
    ) -> None:
        if sense_rule not in SENSE_RULES:
            raise ValueError(f"sense_rule must be one of {tuple(SENSE_RULES)}, got {sense_rule!r}")
        self._sense_rule = SENSE_RULES[sense_rule]
        self._dominance = non_visual_dominance
        self._pos_dominance = pos_dominance
        if wn is None:
            from labeling.wordnet import wordnet

            wn = wordnet()
        self._wn = wn
        self._nouns = noun_index(wn)
        self._sense_map = {separator_free(k): v for k, v in (sense_map or {}).items()}
        for word, wnid in self._sense_map.items():
            if not WNID.fullmatch(wnid) or int(wnid[1:]) not in self._nouns.records:
                raise UnknownWnid(word, wnid)
        base = DEFAULT_STOPLIST if stoplist is None else stoplist
        self._stoplist = frozenset(normalized(s) for s in (*base, *extra_stoplist))
        self._visual = frozenset(visual_lexnames)
        self._cache: dict[str, TagMapping] = {}
        self._word_cache: dict[str, TagMapping] = {}
        self._senses: dict[str, tuple[str, str, bool]] = {}
        self._properties: dict[str, bool] = {}  # `names_property` per lemma
        self._pos_uses = pos_uses(wn)
        self._nouns_of: dict[str, str | None] = {}  # `_noun` of strings that are no key
        lexicon = _lexicon(wn)
        self._noun_keys: dict[str, str] = lexicon["noun_keys"]
        self._other_words: frozenset[str] = lexicon["other_words"]
        self._pieces: frozenset[str] = lexicon["pieces"]
        self._segment_pieces: frozenset[str] = lexicon["segment_pieces"]
        self._exceptions: frozenset[str] = lexicon["exceptions"]
        self._endings: tuple[str, ...] = lexicon["endings"]

    def map(self, tag: str) -> TagMapping:
        """The mapping of one hashtag as written (without or with its leading `#`)."""
        hit = self._cache.get(tag)
        if hit is None:
            hit = self._cache[tag] = self._map(tag)
        return hit

    def map_many(self, tags: Iterable[str]) -> list[TagMapping]:
        return [self.map(t) for t in tags]

    def synset(self, wnid: str) -> Any:
        """The NLTK synset of a noun wnid (`n02084071`)."""
        return self._wn.synset_from_pos_and_offset("n", int(wnid[1:]))

    def record(self, wnid: str) -> NounRecord:
        """The `NounRecord` of a noun wnid: lemma names and lexname without NLTK's parsing."""
        return self._nouns.records[int(wnid[1:])]

    # -- the rules, in the order of the module docstring -------------------------------

    def _map(self, tag: str) -> TagMapping:
        norm = normalized(tag)
        if is_too_long(tag):
            return TagMapping(norm, None, "too_long")
        if self._stoplisted(norm):
            return TagMapping(norm, None, "stoplisted")
        words = split_words(tag)
        if not words:
            return TagMapping(norm, None, "numeric")
        if self._stoplisted("".join(words)):
            return TagMapping(norm, None, "stoplisted")
        phrase = "_".join(words)
        mapped = self._from_sense_map(phrase)
        if mapped is not None:
            return mapped
        found = self._resolve(words)
        if found is None:
            joined = "".join(words)
            # == bool(wn.synsets(phrase) or wn.synsets(joined)), without building synsets
            forms = (phrase,) if phrase == joined else (phrase, joined)  # one word: once
            known = any(self._morphs(x, pos) for x in forms for pos in "nvar")
            return TagMapping(phrase, None, "not_noun" if known else "no_match")
        return self._as_class(*found)

    def map_word(self, word: str) -> TagMapping:
        """The mapping of one caption word (`--source caption|both`): rules 1-3, 5 and 6 as
        for a hashtag, but rule 4 is only morphy's noun lemma of the whole word (plurals and
        irregular forms: `dogs`, `geese`); no splitting, affixes or segmentation."""
        hit = self._word_cache.get(word)
        if hit is None:
            hit = self._word_cache[word] = self._map_word(word)
        return hit

    def _map_word(self, word: str) -> TagMapping:
        norm = normalized(word)
        if is_too_long(word):
            return TagMapping(norm, None, "too_long")
        if self._stoplisted(norm):
            return TagMapping(norm, None, "stoplisted")
        if not split_words(norm):
            return TagMapping(norm, None, "numeric")
        mapped = self._from_sense_map(norm)
        if mapped is not None:
            return mapped
        lemma = self.base(norm)
        if lemma is None:
            known = any(self._morphs(norm, pos) for pos in "nvar")
            return TagMapping(norm, None, "not_noun" if known else "no_match")
        return self._as_class(lemma, norm)

    def _as_class(self, lemma: str, written: str) -> TagMapping:
        """Rules 2 (again, on the lemma), 4e, 5 and 6 for a noun lemma resolved from the
        separator-free `written` form (the whole tag, an affix-stripped rest or a piece)."""
        if self._stoplisted(lemma):
            return TagMapping(lemma, None, "stoplisted")
        mapped = self._from_sense_map(lemma)
        if mapped is not None:
            return mapped
        if lemma == written and "_" not in lemma and self.names_property(lemma):
            return TagMapping(lemma, None, "not_noun")
        wnid, lexname, visual = self._sense_of(lemma)
        return TagMapping(lemma, wnid, None if visual else "non_visual", lexname)

    def maps_sense(self, canonical: str) -> bool:
        """True when the sense map (`labeling.sense_map`) decides the class of a tag or
        word whose mapping has this `canonical` form."""
        return separator_free(canonical) in self._sense_map

    def _from_sense_map(self, canonical: str) -> TagMapping | None:
        """The mapping the sense map gives `canonical` (a tag's joined words, a caption
        word or a resolved lemma), or None; the visual filter still applies."""
        wnid = self._sense_map.get(separator_free(canonical)) if self._sense_map else None
        if wnid is None:
            return None
        record = self.record(wnid)
        return TagMapping(
            canonical, wnid, None if self.is_visual(record) else "non_visual", record.lexname()
        )

    def _sense_of(self, lemma: str) -> tuple[str, str, bool]:
        """(wnid, lexname, visual) of `lemma`'s sense under the ambiguity rule (rule 5);
        cached per lemma, as many written tags share one lemma (`Dogs`, `dogs`, `dog`)."""
        hit = self._senses.get(lemma)
        if hit is None:
            senses = self._nouns.senses(lemma)
            # most lemmas have one noun sense, and every rule of SENSE_RULES returns it
            synset = senses[0] if len(senses) == 1 else self._sense_rule(
                senses, lemma, self.is_visual, dominance=self._dominance, breadth=self.breadth,
                uses=self.uses, physical=self.is_physical_kind,
            )  # fmt: skip
            hit = (synset.wnid, synset.lexname(), self.is_visual(synset))
            self._senses[lemma] = hit
        return hit

    def names_property(self, lemma: str) -> bool:
        """Rule 4e (`labeling.pos_dominance`): a one-word noun lemma that SemCor uses as an
        adjective `pos_dominance` times as often as in its visual senses (+1); memoised."""
        hit = self._properties.get(lemma)
        if hit is None:
            uses = self._pos_uses.get(lemma, NO_USES)
            hit = uses.adjective > 0 and names_property(
                uses, sum(tagged_count(r, lemma) for r in self.visual_senses(lemma)),
                self._pos_dominance,
            )  # fmt: skip
            self._properties[lemma] = hit
        return hit

    def visual_senses(self, lemma: str) -> list[NounRecord]:
        """The visual, non-proper-name senses of a noun lemma, best first
        (`senses.visual_candidates`): the context rule's candidates."""
        return visual_candidates(
            self._nouns.senses(lemma), lemma, self.is_visual, breadth=self.breadth,
            uses=self.uses, physical=self.is_physical_kind,
        )  # fmt: skip

    def breadth(self, synset: Any) -> int:
        """`senses.hyponym_count` of an NLTK synset or a `NounRecord` (a rule 5 tie-break)."""
        if not isinstance(synset, NounRecord):
            return hyponym_count(synset)
        return self._nouns.below(synset)[0]

    def uses(self, synset: Any) -> int:
        """`senses.concept_uses` of an NLTK synset or a `NounRecord` (a rule 5 tie-break)."""
        if not isinstance(synset, NounRecord):
            return concept_uses(synset)
        return self._nouns.below(synset)[1]

    def is_physical_kind(self, synset: Any) -> bool:
        """`senses.is_physical_kind` of an NLTK synset or a `NounRecord` (a rule 5 tie-break)."""
        if not isinstance(synset, NounRecord):
            return is_physical_kind(synset)
        return self._nouns.is_physical_kind(synset)

    def hypernym_words(self, lemma: str, wnid: str | None = None) -> list[str]:
        """Casefolded words of the lemmas of the direct hypernyms of `lemma`'s noun senses,
        or of the one synset `wnid` when given."""
        records = self._nouns.records
        senses = [self.record(wnid)] if wnid is not None else self._nouns.senses(lemma)
        return [
            word.casefold()
            for sense in senses
            for parent in sense.hypernyms
            for name in records[parent].names
            for word in name.split("_")
        ]

    def is_visual(self, synset: Any) -> bool:
        """The visual filter (rule 6); `synset` is NLTK's or a `NounRecord`."""
        if isinstance(synset, NounRecord):
            return self._nouns.is_visual(synset, self._visual)
        return is_visual(synset, self._visual)

    def _stoplisted(self, text: str) -> bool:
        return text in self._stoplist or text.replace("_", "") in self._stoplist

    def _resolve(self, words: list[str]) -> tuple[str, str] | None:
        """(the noun lemma a tag's words name, the form it was found from) (rules 4a-4d),
        or None."""
        if len(words) > 1:
            phrase = "_".join(words)
            lemma = self.base(phrase)
            if lemma is not None:
                return lemma, phrase
        joined = "".join(words)
        lemma = self._noun(joined)
        if lemma is not None:
            return lemma, joined
        for rest in self._strip_affixes(joined):
            lemma = self._noun(rest)
            found = (lemma, rest) if lemma is not None else self._segment_head(rest)
            if found is not None:
                return found
        return self._segment_head(joined)

    def _noun(self, text: str) -> str | None:
        """Noun lemma of a separator-free string: a key, a morphy base or a plural key."""
        if text in self._noun_keys:
            return self._noun_keys[text]
        hit = self._nouns_of.get(text, False)
        if hit is False:
            base = self.base(text)
            hit = self._nouns_of[text] = base if base is not None else self._plural_key(text)
        return hit

    def base(self, form: str) -> str | None:
        """The noun lemma a written `form` is (rule 4's base choice), or None: `form` itself
        when it is a noun lemma; else, of `noun_bases(form)`, a base whose noun senses are not
        all proper names before one whose are (`saxes` -> sax: saxe names only Saxony and
        the marshal); for a form of WordNet's exception list, its first listed base (what
        morphy answers) or a suffix rule's base, whichever has more SemCor uses of the word,
        a tie to the suffix rule's (`syringes` -> syringe, 0 uses each, rather than syrinx;
        `pelves` -> pelvis, 1 use to pelf's 0; `bases` stays base: basis is listed second);
        then morphy's order."""
        bases = self.noun_bases(form)
        if len(bases) < 2 or bases[0] == form:
            return bases[0] if bases else None
        listed = self._wn._exception_map["n"].get(form)
        if listed is not None:  # the list's first base and the rules' bases
            bases = [b for b in bases if b == bases[0] or b not in listed]
        return min(bases, key=lambda b: self._base_key(b, listed, bases.index(b)))

    def _base_key(self, base: str, listed: list[str] | None, order: int) -> tuple:
        """`base`'s sort key among a form's bases (`base`), smallest first."""
        senses = [r for r in self._nouns.senses(base) if names_lemma(r, base)]
        proper = all(proper_name_of(r, base) for r in senses)
        if listed is None:
            return (proper, 0, False, order)
        return (proper, -sum(r.tagged_count(base) for r in senses), base in listed, order)

    def noun_bases(self, form: str) -> list[str]:
        """Every noun lemma `form` can be an inflection of, in morphy's order: `form` itself
        when it is one, the exception list's bases (NLTK's `_morphy` stops there: `syringes`
        -> syrinx), then the suffix rules' bases (as WordNet's own `morphstr` goes on to
        them: syringe); `saxes` -> saxe, sax; `axes` -> ax, axis, axe."""
        found = self._morphs(form, "n")
        if form in self._exceptions:
            rules = self._wn._morphy(form, "n", check_exceptions=False)
            found = [*found, *(b for b in rules if b not in found)]
        return found

    def _morphs(self, form: str, pos: str) -> list[str]:
        """NLTK's `_morphy(form, pos)` (the lemmas `form` can be an inflection of), with a
        shortcut for the common miss: a form that is no lemma, no exception and has none of
        the inflection endings cannot be reduced to anything."""
        if (
            form not in self._wn._lemma_pos_offset_map
            and form not in self._exceptions
            and not form.endswith(self._endings)
        ):
            return []
        return self._wn._morphy(form, pos)

    def _plural_key(self, text: str) -> str | None:
        for ending, singular in _PLURAL_RULES:
            if text.endswith(ending):
                stem = text[: -len(ending)] + singular
                if len(stem) >= MIN_PIECE_CHARS and stem in self._noun_keys:
                    return self._noun_keys[stem]
        return None

    def _strip_affixes(self, text: str) -> list[str]:
        """`text` without one meta suffix, one meta prefix, or both (longest first)."""
        out = _without_suffix(text)
        for prefix in META_PREFIXES:
            if text.startswith(prefix) and len(text) - len(prefix) >= MIN_PIECE_CHARS:
                rest = text[len(prefix) :]
                out += [rest, *_without_suffix(rest)]
        return out

    def _is_piece(self, text: str) -> bool:
        """A function word, or a piece of `MIN_PIECE_CHARS`+ characters in the lexicon."""
        return text in self._segment_pieces

    def segment(self, text: str) -> list[str] | None:
        """Split a separator-free string into WordNet words: fewest pieces, then longest.

        Dynamic programme over prefixes, O(len * MAX_PIECE_CHARS) piece look-ups;
        `segment("blackdogs") == ["black", "dogs"]`; None when no split covers `text`.
        """
        n = len(text)
        # best[i]: (pieces, -sum of squared piece lengths, start of last piece) for text[:i]
        best: list[tuple[int, int, int] | None] = [None] * (n + 1)
        best[0] = (0, 0, 0)
        pieces_ok = self._segment_pieces  # `_is_piece`, inlined: ~450k look-ups a 100k tags
        for end in range(1, n + 1):
            for start in range(max(0, end - MAX_PIECE_CHARS), end):
                prev = best[start]
                if prev is None or text[start:end] not in pieces_ok:
                    continue
                cand = (prev[0] + 1, prev[1] - (end - start) ** 2, start)
                if best[end] is None or cand[:2] < best[end][:2]:
                    best[end] = cand
        if best[n] is None:
            return None
        pieces: list[str] = []
        end = n
        while end > 0:
            start = best[end][2]
            pieces.append(text[start:end])
            end = start
        return pieces[::-1]

    def _segment_head(self, text: str) -> tuple[str, str] | None:
        """(the noun lemma of the head piece of `text`'s segmentation, the piece), or None."""
        pieces = self.segment(text)
        if not pieces or len(pieces) < 2:
            return None
        if "of" in pieces[1:]:  # "cup of coffee": the head comes before "of"
            pieces = pieces[: pieces.index("of", 1)]
        for piece in reversed(pieces):  # English compounds are head-final
            if piece not in FUNCTION_WORDS:
                lemma = self._noun(piece)
                if lemma is not None:
                    return lemma, piece
        return None


@functools.cache
def _lexicon(wn: Any) -> dict[str, Any]:
    """Look-up structures over all of WordNet's lemmas, built once per reader (~0.6 s; ~0.2 s
    read back from `labeling.wordnet_cache`) and shared by every mapper: noun_keys,
    other_words, pieces, segment_pieces (pieces and function words), exceptions, endings."""
    from labeling.wordnet_cache import cached

    return cached("lexicon", wn, lambda: _build_lexicon(wn))


def _build_lexicon(wn: Any) -> dict[str, Any]:
    exceptions = frozenset(f for m in wn._exception_map.values() for f in m)
    endings = tuple({e for rules in wn.MORPHOLOGICAL_SUBSTITUTIONS.values() for e, _ in rules})
    # separator-free key -> noun lemma; a lemma that is its own key wins a collision
    noun_keys: dict[str, str] = {}
    for name in sorted(wn.all_lemma_names(pos="n")):
        key = separator_free(name)
        held = noun_keys.get(key)
        if key and (held is None or (name == key and held != key)):
            noun_keys[key] = name
    other_words = frozenset(
        name for pos in ("a", "s", "r", "v") for name in wn.all_lemma_names(pos=pos)
        if name.isalpha()
    )  # fmt: skip
    # every string `_is_piece` accepts besides function words: a noun key, another
    # part of speech's word, or a plural of a noun key (`_plural_key`'s inverse)
    plurals = {
        key[: len(key) - len(singular)] + ending
        for key in noun_keys
        for ending, singular in _PLURAL_RULES
        if key.endswith(singular) and len(key) >= MIN_PIECE_CHARS
    }
    pieces = frozenset(p for p in (*noun_keys, *other_words, *plurals) if len(p) >= MIN_PIECE_CHARS)
    return {
        "noun_keys": noun_keys, "other_words": other_words, "pieces": pieces,
        "segment_pieces": pieces | FUNCTION_WORDS, "exceptions": exceptions, "endings": endings,
    }  # fmt: skip
