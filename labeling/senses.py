"""Which noun sense of an ambiguous word becomes the class: the sense rules and the context rule.

A sense rule is a function `(senses, lemma, visual) -> synset` over the noun synsets of one
WordNet lemma in WordNet's order (`wn.synsets(lemma, "n")`), `visual` being the visual
filter (`is_visual`: a visual lexicographer file, or a hyponym of `VISUAL_ANCESTORS`:
`#comicbook` and `#streetsign` are filed under noun.communication but are things one
photographs); `SENSE_RULES` names them:

- `frequent_visual` (default). Drop the senses in which the word is only a proper name
  (every matching lemma capitalised: `Crane` the poet, `Java` the island; `sun`, whose
  synset also has the lemma `Sun`, stays), unless WordNet files it as a trademark (usage
  domain `TRADEMARK`, on the synset or on that lemma): `Loafer`, `Band_Aid`, `Caterpillar`
  the tractor name products one photographs. Among the visual senses (lexname in
  `visual`), take the one whose lemma has the highest tagged frequency (`Lemma.count()`,
  SemCor counts shipped with WordNet 3.0; a sense found only through the word's singular,
  eye.n.01 for `#eyes`, counts the singular's uses, on the plural's scale when the plural
  is a word of its own: see below); ties, which for most rare words are
  0 against 0, go to the more depictable lexicographer file by `LEXNAME_PREFERENCE`
  (animal > artifact > food > plant > object > person > location > phenomenon >
  substance > body; a sense filed under noun.animal or noun.artifact that its hypernyms
  make no organism or no artifact ranks after them all: `preference_rank`, see below),
  then to a kind of physical thing (`is_physical_kind`), then to the
  concept used more (`concept_uses`), then to the broader sense (`hyponym_count`: more
  synsets below it), then to a thing of today (`is_past`), then to WordNet's order. No
  visual sense: the first remaining sense (it is then dropped as `non_visual`).
  So `#tiger` is the cat (the "audacious person" sense has the same count, 1), `#crab` the
  animal rather than its meat, `#kite` and `#crane` the birds (every sense has count 0; the
  context rule below picks the toy or the machine when the caption says so).
  Why a kind of physical thing: the lexicographer file is the lexicographer's filing, the
  hypernyms are the definition. Some senses filed under a visual file are abstractions by
  their hypernyms (the wooden spoon that is a booby prize is an award, the luggage
  carousel a curve, railway.n.01 the company) or named individuals (instances); the sense
  that is a physical thing is the one a photo shows: `#woodenspoon` the spoon, `#carousel`
  the merry-go-round, `#railway` the track, `#pacifier` the dummy.
  Why the file must agree with the hypernyms (`preference_rank`, `FILE_KINDS`): for the
  same reason. The preference puts the animal and the artifact first because the organism
  and the made object are what a photo shows; but the lexicographers also filed under
  noun.animal animals' parts (quill.n.02 a porcupine's spine, syrinx.n.02 a bird's vocal
  organ, bobtail.n.01 a docked tail, fins, hides, yolk, roe) and zoology's genera, and
  under noun.artifact drugs (causal agents: cannabis.n.02, methamphetamine.n.01 as
  `#trash`), parts (handle.n.01), places (circus.n.05 the arena, a tract of land;
  traffic_circle.n.01, a junction), arrangements (formation.n.05) and things nobody made
  (spider_web.n.02, the web a spider spins). Such a sense ranks after every file of the
  preference: `#quill` is the pen, `#syrinx` the panpipe, `#bobtail` the Old English
  sheepdog, `#rattle` the baby's toy, `#marijuana` the plant, `#trash` rubbish, `#tonic`
  the drink, `#trifle` the pudding, `#split` the banana split, `#formation` the
  geological one. Of 16,633 lower-case noun lemmas with several senses 216 change; ImageNet
  gains 7 camel-case lemmas and loses none, two of them by accident (`spider web` and
  `spider's web`: ImageNet's class is spider_web.n.01, "a web resembling the webs spun by
  spiders", which now wins because the spider's own web is no artifact). Costs: `#circus`
  becomes the Roman stadium (the past cue no longer gets to decide), `#muzzle` the gun's
  muzzle rather than the snout, `#tusk` the ivory rather than the tooth, `#rotary` an
  electrical converter rather than the traffic circle, `#hold` a stronghold, and genera
  (`#aquila`, `#cygnus`) yield to the constellations. noun.food and noun.plant rank as
  filed: an edible nut is food whatever its hypernyms (they make it a seed), and their
  plant parts and woods (`#teak`) are what the lexicographers meant them to be.
  Why the concept used more: when the word itself has no SemCor use in either sense,
  the concept's uses under its other names and through its kinds (Resnik's concept
  frequency: the tagged counts of all lemmas of the synset and of every synset below it)
  still say which of the two English talks about. `#carrier` is the aircraft carrier (5
  uses) rather than carrier.n.02, "a self-propelled wheeled vehicle" (3), `#cot` the crib
  (3: `crib`) rather than the finger stall (0), `#file` the filing cabinet rather than the
  rasp, `#letterbox` the mailbox rather than the public postbox.
  Why the broader sense: WordNet orders a word's senses by tagged count, and those with
  no count in the order the lexicographers listed them, not by use. A sense that is a kind
  with kinds of its own is the general, basic-level use of the word; a leaf sharing its
  name is a narrower or regional use. `#hammer` is the hand tool (hammer.n.02, 9 synsets
  below it) rather than the gun part (hammer.n.01, none), `#van` the truck rather than
  the British railway van, `#jellyfish` the jellyfishes rather than the Portuguese
  man-of-war, `#tram` the streetcar rather than the aerial tramway, `#bike` the bicycle.
  Why a thing of today: when all else is equal, WordNet's order is the lexicographers'
  listing, and on ImageNet's lemmas it is wrong more often than right (36 of the 64
  camel-case tags it decided, shared tags included). A sense whose definition places its
  thing in the past (`PAST_WORDS`: "formerly", "ancient", "(antiquity)", "archaic",
  "obsolete", "medieval") is one that a photo posted today rarely shows: `#bobsled` is the
  racing sled rather than bobsled.n.01, "formerly two short sleds coupled together"
  (ImageNet's class 450, as `#bobsleigh`), `#visor` the cap's brim rather than the
  helmet's armor plate, `#iberia` the peninsula, `#stoup` the holy-water basin. Of 16,631
  lower-case noun lemmas with several senses 28 changed when it came in (1,187 synsets
  carry a past word), most between people, places or plants a photo hardly tells apart;
  costs: a place "formerly a kingdom" (`#leon`, the province) yields to its namesake city,
  `#claymore` becomes the mine rather than the Highlanders' sword ("formerly used by"),
  and `#galley` the ship's kitchen rather than the ancient ship.
  Domain pointers were measured for the same job and rejected: a sense with a topic, region
  or usage domain (`;c` `;r` `;u`, trademarks aside) ranking after one with none costs
  ImageNet 1 to 4 camel-case lemmas (by where the key goes among the tie-breaks); the topic
  domain alone nets none (`#barrow` the cart, `#assaultgun` lost) and sends `#server`,
  `#router` and `#firewall` (computer science) to the serving utensil, the carpenter's power
  tool and the fireproof wall, `#white` (board games) to white flannels.
  Depiction dominance: a *weakly visual* sense (`weakly_visual`: a noun.person sense, or
  one filed under a non-visual lexicographer file that the visual filter admits only
  through a physical ancestor, like notebook.n.01, noun.communication) comes first only
  when the word's weakly visual senses together (tagged counts summed) reach
  `DEPICTION_DOMINANCE` (4) times the count of its best other visual sense + 1; otherwise
  every other visual sense ranks before them. SemCor is running text, where words for
  people's roles and for media are frequent; but a person role is not a look (a photo
  tagged with the word shows a person whatever the role), and a medium or a text is not
  the object that carries it, while the animal or artifact sense is a thing a classifier
  can learn. So `#boxer` is the dog (the fighter's 1 use plus the packer's 0 is not 4 x 1),
  `#monarch` the butterfly (2 < 4), `#speaker` the loudspeaker (9 < 4 x 3; `Speaker` is a
  proper name, out), `#radio` the receiver (9 < 4 x (8 + 1)), `#notebook` the laptop (2 < 4);
  `#painter` stays the artist (15 >= 4 x 1), `#coach` the trainer (20 >= 4), `#pilot` the
  aviator (6 >= 4 x 1), `#book` the written work (46 >= 4 x (10 + 1)).
  Non-visual dominance: when the word's most frequent sense (highest tagged count) is not
  visual and its count is at least `NON_VISUAL_DOMINANCE` (8) times the summed counts of
  all its visual senses + 1, that non-visual sense is chosen (and the tag dropped as
  `non_visual`) rather than reaching for a rare visual sense: `#shapes` (shape.n.01, an
  attribute, 37, against human_body.n.01's 3) and `#action` (94 against a gun part's 1)
  are non-visual, while `#fire` (the event 43 against 4 + 3 for the fire and the flame),
  `#table` (the group 52 against the furniture's 25 + 5) and `#crane` (0 against 0) keep
  their visual sense. noun.Tops senses never count as dominant (`#food`: food.n.01, the
  category, 29, against the dish's 0). ImageNet lemmas this rule costs (bench
  mapping_accuracy): `rule` (the ruler), `vacuum` (the cleaner), `fig` (the fruit).
  Plurals (`plural_scale`): when a written plural names a visual sense of its own (WordNet
  lists `glasses` in spectacles.n.01, `shorts` in short_pants.n.01), that sense's count is
  of the plural alone, while the singular's counts hold both numbers; so in every sense that
  does not name the plural, the singular's uses (tagged count and concept uses) go on the
  plural's scale: divided by `PLURAL_SHARE` (4, a round estimate of the noun tokens per
  plural token in running English) and rounded down to whole uses, and none for a substance
  (`is_substance`: a kind of matter outside noun.food has no plural). `#glasses` is the
  spectacles (4 uses) rather than the drinking glass (12 // 4) or the material (none),
  `#shorts` the short pants (0 against the baseball position's 3 // 4; then breadth),
  `#sweats` the sweat suit rather than perspiration, while `#teeth` stays the tooth (38 // 4
  against dentition.n.02's 0), `#rails` the railing (5 // 4 against track.n.09's 0) and
  `#pants` the trousers (0 = 0 against bloomers; concept uses 11 // 4 against 0). A plural
  that names no visual sense (`#eyes`: eyes.n.01 is an opinion) keeps the singular's counts
  as they are. Of about 700 lower-case plural noun lemmas of WordNet some 30 change
  (ImageNet gains `#hooks`); costs:
  `#knuckles` the brass knuckles (3 // 4 = 0 against 0, then artifact before body), `#weeds`
  the widow's weeds, `#colors` the flag (the attribute's uses, scaled, no longer outweigh
  it).
- `first_visual`: the same, but WordNet's order instead of counts and preference.
- `first`: WordNet's first noun sense, whatever it is.

Why the preference: when a word names an organism and the food, plant or material made
from it, or an object and a person who handles it, the animal or object is what a photo
tagged with the bare word most often shows and what a detector can learn as one look.

Context rule (`choose_in_context`; `curate build-vocab --context-senses` applies it to
every caption at once, `labeling.context`): the caption's other words and hashtag words
(casefolded, 3+ letters) are compared with each candidate visual sense's signature: the
words of its lemmas, of the lemmas of its hypernym closure and of its direct hyponyms, and
the content words of its gloss. The sense sharing the most distinct words wins; no shared
word, or a tie at the top, keeps the sense rule's choice. `#crane #birdwatching` shares
`bird` with crane.n.05 (hypernym `wading_bird`, gloss "... wading bird ..."): the bird.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

# A word whose most frequent sense is not visual and outweighs all its visual senses
# together this many times (tagged counts, +1 on the visual side) is non-visual.
NON_VISUAL_DOMINANCE = 8.0

# A word's weakly visual senses (persons; abstract files admitted by ancestry), tagged counts
# summed, must outweigh its best other visual sense (+1) this many times to come first:
# `#painter` 15 >= 4 x (0 + 1).
DEPICTION_DOMINANCE = 4.0

LEXNAME_PREFERENCE = (
    "noun.animal", "noun.artifact", "noun.food", "noun.plant", "noun.object", "noun.person",
    "noun.location", "noun.phenomenon", "noun.substance", "noun.body",
)  # fmt: skip

# Gloss words that say nothing about a sense (plus anything shorter than 3 letters).
GLOSS_STOPWORDS = frozenset(
    "the and for with that from which used into its are was has have been any all other "
    "such some one two many more most very often usually especially etc".split()
)

# Physical things and signs that WordNet files under a non-visual lexname: comic_book and
# web_site (noun.communication, hyponyms of object.n.01), street_sign, traffic_light.
_RANK = {name: i for i, name in enumerate(LEXNAME_PREFERENCE)}

VISUAL_ANCESTORS = frozenset({"object.n.01", "sign.n.02", "visual_signal.n.01"})

# The usage domain of brand names that WordNet capitalises but that name products.
TRADEMARK = "trademark.n.02"

# A singular's SemCor uses per use of its plural, the scale of a written plural's own counts
# (`plural_scale`): a round estimate, about one noun token in four in running English is
# plural. The pins (tests/labeling/test_senses_plurals.py) hold for 4 and 5: 3 sends
# `#shorts` to the baseball position (3 // 3), `#cows` to cow.n.01 and `#eggs` to egg.n.01,
# 6 `#rails` to the bird (5 // 6 = 0).
PLURAL_SHARE = 4

# Mass nouns lie below it through hypernym pointers (`is_substance`).
MATTER = "matter.n.03"

# What a sense filed under these lexicographer files must be a kind of (through hypernym
# pointers alone) to rank as filed in LEXNAME_PREFERENCE (`preference_rank`).
FILE_KINDS = {"noun.animal": "organism.n.01", "noun.artifact": "artifact.n.01"}

# Kinds of physical things lie below it through hypernym pointers alone (`is_physical_kind`).
PHYSICAL = "physical_entity.n.01"

# Words by which a gloss places its thing in the past (`is_past`): "formerly two short sleds
# coupled together" (bobsled.n.01), "(antiquity) an open-air stadium" (circus.n.04).
PAST_WORDS = re.compile(r"\b(formerly|former|ancient|antiquity|archaic|obsolete|medieval)\b", re.I)

# (senses, lemma, visual, dominance=..., breadth=..., uses=..., physical=...) -> synset;
# only frequent_visual reads `dominance`, `breadth`, `uses` and `physical`
SenseRule = Callable[..., Any]


def is_visual(synset: Any, lexnames: frozenset[str]) -> bool:
    """The visual filter: lexname in `lexnames`, or a hyponym of a `VISUAL_ANCESTORS` synset."""
    if synset.lexname() in lexnames:
        return True
    return any(h.name() in VISUAL_ANCESTORS for h in _ancestors(synset))


@functools.cache
def _ancestors(synset: Any) -> tuple[Any, ...]:
    return tuple(synset.closure(lambda s: s.hypernyms() + s.instance_hypernyms()))


def hyponym_count(synset: Any) -> int:
    """How many synsets lie below an NLTK `synset`: its distinct hyponyms and instance
    hyponyms, transitively (hammer.n.02: 9, hammer.n.01: 0)."""
    return sum(1 for _ in synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms()))


def proper_name_of(synset: Any, lemma: str) -> bool:
    """True when `synset` names `lemma` only capitalised, i.e. as a proper name, and is no
    trademark (`is_trademark`: `Loafer` and `Band_Aid` name the products)."""
    names = [n for n in synset.lemma_names() if n.casefold() == lemma.casefold()]
    if not names or not all(n[:1].isupper() for n in names):
        return False
    return not is_trademark(synset, lemma)


def is_trademark(synset: Any, lemma: str) -> bool:
    """True when WordNet files `lemma` of `synset` under the usage domain `TRADEMARK`: the
    whole synset (83: loafer.n.02, band_aid.n.01, dumpster.n.01, frisbee.n.01) or that
    lemma alone (`Caterpillar` of caterpillar.n.02, `Ping-Pong` of table_tennis.n.01).

    `synset` is NLTK's or a `labeling.noun_index.NounRecord` (which knows its names)."""
    folded = lemma.casefold()
    own = getattr(synset, "trademarks", None)
    if own is not None:
        return any(n.casefold() == folded for n in own)
    if any(d.name() == TRADEMARK for d in synset.usage_domains()):
        return any(n.casefold() == folded for n in synset.lemma_names())
    return any(
        x.name().casefold() == folded
        and any(d.synset().name() == TRADEMARK for d in x.usage_domains())
        for x in synset.lemmas()
    )


def is_physical_kind(synset: Any) -> bool:
    """True when `PHYSICAL` is an ancestor of the NLTK `synset` through hypernym pointers
    alone: a kind of physical thing. False for an abstraction filed under a visual
    lexicographer file (wooden_spoon.n.01, the booby prize, is an award; carousel.n.01, the
    luggage carousel, a curve) and for an instance (a named individual). The mapper answers
    it for records (`NounIndex.is_physical_kind`)."""
    return any(h.name() == PHYSICAL for h in synset.closure(lambda s: s.hypernyms()))


def is_past(synset: Any) -> bool:
    """True when the definition of `synset` (NLTK's, or a record's `past`) places the thing
    in the past (`PAST_WORDS`): bobsled.n.01 ("formerly two short sleds coupled
    together"), circus.n.04 ("(antiquity) an open-air stadium ..."), visor.n.01 (armor)."""
    own = getattr(synset, "past", None)
    if own is not None:
        return own
    return bool(PAST_WORDS.search(synset.definition()))


def past_gloss(gloss: str) -> bool:
    """`is_past` of a `data.noun` gloss: its definition, the gloss less its quoted examples
    (NLTK's `Synset.definition()`), searched for `PAST_WORDS`."""
    return bool(PAST_WORDS.search(re.sub(r"[\"].*?[\"]", "", gloss)))


def concept_uses(synset: Any) -> int:
    """SemCor uses of the concept: the tagged counts of every lemma of `synset` and of the
    synsets below it (hyponyms and instance hyponyms, transitively), each synset once:
    Resnik's (1995) concept frequency (aircraft_carrier.n.01: 5, carrier.n.02: 3,
    crib.n.01: 3, fingerstall.n.01: 0). An NLTK synset; `HashtagMapper.uses` also takes
    records."""
    counts = _sense_key_counts(synset._wordnet_corpus_reader)
    below = {synset, *synset.closure(lambda s: s.hyponyms() + s.instance_hyponyms())}
    return sum(counts.get(x.key(), 0) for s in below for x in s.lemmas())


def tagged_count(synset: Any, lemma: str) -> int:
    """SemCor frequency of `lemma` in `synset` (0 for most rare words); `Lemma.count()`.

    When `synset` has no lemma named `lemma` (it is a sense of one of the word's base forms:
    `wn.synsets("eyes", "n")` holds eye.n.01 through `eye`), the counts of those base
    forms (`noun_bases`) in `synset`: `#eyes` is the organ (263 uses of `eye`), not the
    eye of a needle (0) that a count of the written plural would tie with it. The sense rule
    puts these on the plural's scale when the plural names a visual sense (`plural_scale`).

    `synset` is NLTK's or a `labeling.noun_index.NounRecord` (which knows its counts)."""
    if not names_lemma(synset, lemma):
        return sum(_count_of_name(synset, base) for base in noun_bases(lemma))
    return _count_of_name(synset, lemma)


def names_lemma(synset: Any, lemma: str) -> bool:
    """True when `synset` has a lemma named `lemma` (up to case)."""
    folded = lemma.casefold()
    return any(n.casefold() == folded for n in synset.lemma_names())


# (synset, a number of the singular's uses in it) -> that number on the plural's scale
PluralScale = Callable[[Any, int], int]


def _as_counted(synset: Any, number: int) -> int:
    return number


def plural_scale(senses: list[Any], lemma: str, visual: Callable[[Any], bool]) -> PluralScale:
    """How `frequent_visual` weighs counts among `senses` of `lemma` (module docstring): when
    `lemma` is a plural (`noun_bases`) that names one of its visual, non-proper-name senses
    itself (`glasses`: spectacles.n.01), a number counted through the singular (tagged
    count, concept uses) in a sense that does not name `lemma` goes on the written plural's
    scale: divided by `PLURAL_SHARE` and rounded down, none for a substance
    (`is_substance`). Otherwise, and for the senses naming `lemma`, numbers stay as they
    are (`#eyes`: no visual sense is named `eyes`, eye.n.01 counts its 263 uses)."""
    lexicalised = bool(noun_bases(lemma)) and any(
        visual(s) and names_lemma(s, lemma) for s in common_senses(senses, lemma)
    )
    if not lexicalised:
        return _as_counted

    def scale(synset: Any, number: int) -> int:
        if names_lemma(synset, lemma):
            return number
        return 0 if is_substance(synset) else number // PLURAL_SHARE

    return scale


def is_substance(synset: Any) -> bool:
    """True when `synset` (NLTK's or a record) is a kind of `MATTER` (through hypernym
    pointers alone) not filed under noun.food: a mass noun, which a written plural does not
    name (glass.n.01, perspiration.n.01, oxygen.n.01). Foods are matter too but are counted
    (`#eggs`, `#apples`)."""
    return synset.lexname() != "noun.food" and synset.offset() in _kinds_below(MATTER)


def is_kind_of_its_file(synset: Any) -> bool:
    """True when `synset` (NLTK's or a record) is, through hypernym pointers alone, a kind
    of what its lexicographer file stands for in `FILE_KINDS` (an organism for noun.animal,
    an artifact for noun.artifact), or its file is not one of them: the porcupine, not its
    quill (quill.n.02, noun.animal: a spine, a body part); the hammer, not cannabis.n.02
    (noun.artifact: a drug, a causal agent)."""
    kind = FILE_KINDS.get(synset.lexname())
    return kind is None or synset.offset() in _kinds_below(kind)


def preference_rank(synset: Any) -> int:
    """The position of `synset`'s lexicographer file in `LEXNAME_PREFERENCE`, smaller first;
    after all of them when the file is not there or the synset is no kind of what its file
    stands for (`is_kind_of_its_file`; module docstring)."""
    if not is_kind_of_its_file(synset):
        return len(_RANK)
    return _RANK.get(synset.lexname(), len(_RANK))


def _kinds_below(name: str) -> frozenset[int]:
    """`NounIndex.kinds_below(name)` of the process's reader (`labeling.wordnet.wordnet()`)."""
    from labeling.noun_index import noun_index
    from labeling.wordnet import wordnet

    return noun_index(wordnet()).kinds_below(name)


def _count_of_name(synset: Any, lemma: str) -> int:
    own = getattr(synset, "tagged_count", None)
    if own is not None:
        return own(lemma)
    counts = _sense_key_counts(synset._wordnet_corpus_reader)
    return sum(
        counts.get(x.key(), 0) for x in synset.lemmas() if x.name().casefold() == lemma.casefold()
    )


@functools.lru_cache(maxsize=1 << 16)
def noun_bases(lemma: str) -> tuple[str, ...]:
    """The noun lemmas `lemma` is an inflection of, itself excluded (WordNet's morphy
    through the process's reader, `labeling.wordnet.wordnet()`: `eyes` -> `eye`, `teeth`
    -> `tooth`, `glasses` -> `glass`)."""
    from labeling.wordnet import wordnet

    form = lemma.lower().replace(" ", "_")
    return tuple(b for b in wordnet()._morphy(form, "n") if b != form)


@functools.cache
def _sense_key_counts(wn: Any) -> dict[str, int]:
    """WordNet's `cntlist.rev` (sense key -> tagged count) read once: NLTK's `Lemma.count()`
    binary-searches the file on every call, ~1 ms each."""
    from labeling.wordnet import wordnet_path

    counts = {}
    with open(wordnet_path(wn, "cntlist.rev"), encoding="utf-8") as lines:
        for line in lines:
            key, _, count = line.split()
            counts[key] = int(count)
    return counts


def common_senses(senses: list[Any], lemma: str) -> list[Any]:
    """`senses` without proper-name senses of `lemma` (all of them if every one is)."""
    return [s for s in senses if not proper_name_of(s, lemma)] or senses


def _first(
    senses: list[Any],
    lemma: str,
    visual: Callable[[Any], bool],
    dominance: float = 0.0,
    breadth: Callable[[Any], int] | None = None,
    uses: Callable[[Any], int] | None = None,
    physical: Callable[[Any], bool] | None = None,
) -> Any:
    return senses[0]


def _first_visual(
    senses: list[Any],
    lemma: str,
    visual: Callable[[Any], bool],
    dominance: float = 0.0,
    breadth: Callable[[Any], int] | None = None,
    uses: Callable[[Any], int] | None = None,
    physical: Callable[[Any], bool] | None = None,
) -> Any:
    common = common_senses(senses, lemma)
    return next((s for s in common if visual(s)), common[0])


def _frequent_visual(
    senses: list[Any],
    lemma: str,
    visual: Callable[[Any], bool],
    dominance: float = NON_VISUAL_DOMINANCE,
    breadth: Callable[[Any], int] | None = None,
    uses: Callable[[Any], int] | None = None,
    physical: Callable[[Any], bool] | None = None,
) -> Any:
    candidates = visual_candidates(
        senses, lemma, visual, breadth=breadth, uses=uses, physical=physical
    )
    common = common_senses(senses, lemma)
    if not candidates:
        return common[0]
    dominant = non_visual_dominant(common, lemma, visual, candidates, dominance)
    return candidates[0] if dominant is None else dominant


def non_visual_dominant(
    common: list[Any],
    lemma: str,
    visual: Callable[[Any], bool],
    visual_senses: list[Any],
    ratio: float = NON_VISUAL_DOMINANCE,
) -> Any | None:
    """The non-visual sense that outweighs all `visual_senses`, or None (module docstring):
    the most frequent sense (first in WordNet's order on a tie) when it is not visual and
    its tagged count >= `ratio` x (the visual senses' counts summed + 1); 0 turns it off."""
    if ratio <= 0:
        return None
    # noun.Tops senses are categories (food.n.01, "any substance that can be metabolized")
    # whose members are visual: they never outweigh a visual sense.
    pool = [s for s in common if s.lexname() != "noun.Tops"]
    if not pool:
        return None
    scale = plural_scale(common, lemma, visual)

    def count(synset: Any) -> int:
        return scale(synset, tagged_count(synset, lemma))

    top = max(pool, key=count)  # max keeps the first on a tie
    if visual(top):
        return None
    visual_uses = sum(count(s) for s in visual_senses)
    return top if count(top) >= ratio * (visual_uses + 1) else None


SENSE_RULES: dict[str, SenseRule] = {
    "frequent_visual": _frequent_visual,
    "first_visual": _first_visual,
    "first": _first,
}


def visual_candidates(
    senses: list[Any],
    lemma: str,
    visual: Callable[[Any], bool],
    weak_dominance: float = DEPICTION_DOMINANCE,
    breadth: Callable[[Any], int] | None = None,
    uses: Callable[[Any], int] | None = None,
    physical: Callable[[Any], bool] | None = None,
) -> list[Any]:
    """The visual, non-proper-name senses, best first under `frequent_visual`'s order:
    tagged count, then `LEXNAME_PREFERENCE`, then `tie_key` (`physical`, `uses`, `breadth`;
    defaults `is_physical_kind`, `concept_uses` and `hyponym_count`, a `NounRecord` needs
    the mapper's), then WordNet's order; then depiction dominance (module docstring) moves the
    `weakly_visual` senses behind the others unless they outweigh the best of them
    `weak_dominance` times (0 turns it off)."""
    pool = [s for s in common_senses(senses, lemma) if visual(s)]
    scale = plural_scale(senses, lemma, visual)

    def count(synset: Any) -> int:
        return scale(synset, tagged_count(synset, lemma))

    def plural_uses(synset: Any) -> int:
        return scale(synset, (uses or concept_uses)(synset))

    if len(pool) > 1:
        # (count, lexname rank, WordNet order); the tie-breaks only decide among equal
        # (count, rank), so they are computed only there (a walk down the hyponyms each)
        keys = [(-count(s), preference_rank(s)) for s in pool]
        tied = {k for k in keys if keys.count(k) > 1}
        ranked = [
            s
            for *_, s in sorted(
                (*k, *(tie_key(s, breadth, plural_uses, physical) if k in tied else _NO_TIE), i, s)
                for i, (k, s) in enumerate(zip(keys, pool, strict=True))
            )
        ]
    else:
        ranked = pool
    if weak_dominance <= 0 or not ranked or not weakly_visual(ranked[0]):
        return ranked
    weak = [s for s in ranked if weakly_visual(s)]
    strong = [s for s in ranked if not weakly_visual(s)]
    if not strong:
        return ranked
    weak_uses = sum(count(s) for s in weak)
    if weak_uses >= weak_dominance * (count(strong[0]) + 1):
        return ranked
    return strong + weak


_NO_TIE = (0, 0, 0, 0)


def tie_key(
    synset: Any,
    breadth: Callable[[Any], int] | None = None,
    uses: Callable[[Any], int] | None = None,
    physical: Callable[[Any], bool] | None = None,
) -> tuple[int, int, int, int]:
    """Sort key among senses of equal (tagged count, lexname rank), smallest first: a kind
    of physical thing (`is_physical_kind`) before an abstraction or an instance, then the
    higher `uses` (`concept_uses`), then the higher `breadth` (`hyponym_count`), then a
    thing of today before one the gloss places in the past (`is_past`)."""
    return (
        0 if (physical or is_physical_kind)(synset) else 1,
        -(uses or concept_uses)(synset),
        -(breadth or hyponym_count)(synset),
        1 if is_past(synset) else 0,
    )


def weakly_visual(synset: Any) -> bool:
    """A visual sense that shows no object of its own: a noun.person sense, or one filed
    outside `LEXNAME_PREFERENCE` (noun.communication, noun.shape, ...) that the visual
    filter admits through a physical ancestor. noun.Tops is not weak: animal.n.01 and
    plant.n.02 are the organisms themselves."""
    lexname = synset.lexname()
    return lexname == "noun.person" or lexname not in (*LEXNAME_PREFERENCE, "noun.Tops")


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z]+", text.casefold()) if len(w) >= 3}


def signature(synset: Any) -> frozenset[str]:
    """Words that speak for `synset` in a caption (see the module docstring)."""
    related = [synset, *synset.closure(lambda s: s.hypernyms()), *synset.hyponyms()]
    words = {w for s in related for name in s.lemma_names() for w in _words(name)}
    words |= _words(synset.definition()) - GLOSS_STOPWORDS
    return frozenset(words)


def choose_in_context(candidates: Iterable[Any], default: Any, context: set[str]) -> Any:
    """The candidate sharing the most words with `context`; `default` when none or a tie."""
    scored = sorted(
        ((len(signature(s) & context), i, s) for i, s in enumerate(candidates)),
        key=lambda t: (-t[0], t[1]),
    )
    if not scored or scored[0][0] == 0:
        return default
    if len(scored) > 1 and scored[1][0] == scored[0][0]:
        return default
    return scored[0][2]
