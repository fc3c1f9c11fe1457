from __future__ import annotations

import pytest

from labeling.mapper import DEFAULT_STOPLIST, REASONS, HashtagMapper, TagMapping

DOG = "n02084071"
GOLDEN_RETRIEVER = "n02099601"
BROWN_BEAR = "n02132136"


@pytest.mark.parametrize(
    ("tag", "canonical", "wnid"),
    [
        ("dog", "dog", DOG),
        ("dogs", "dog", DOG),  # plural through morphy
        ("#Dogs", "dog", DOG),
        ("ＤＯＧ", "dog", DOG),  # NFKC + casefold
        ("GoldenRetriever", "golden_retriever", GOLDEN_RETRIEVER),  # CamelCase
        ("golden_retriever", "golden_retriever", GOLDEN_RETRIEVER),
        ("golden-retriever", "golden_retriever", GOLDEN_RETRIEVER),
        ("goldenretriever", "golden_retriever", GOLDEN_RETRIEVER),  # concatenated multi-word
        ("goldenretrievers", "golden_retriever", GOLDEN_RETRIEVER),
        ("GOLDENRETRIEVER", "golden_retriever", GOLDEN_RETRIEVER),
        ("brownbear", "brown_bear", BROWN_BEAR),
        ("ursusarctos", "ursus_arctos", BROWN_BEAR),  # synonym: same synset, same class
        ("mice", "mouse", "n02330245"),  # irregular plural
        ("dogsofinstagram", "dog", DOG),  # meta suffix
        ("DogsOfInstagram", "dog", DOG),
        ("instacat", "cat", "n02121620"),  # meta prefix
        ("blackdog", "dog", DOG),  # segmentation, head-final
        ("cupofcoffee", "cup", "n03147509"),  # head before "of"
        ("soccerballs", "soccer_ball", "n04254680"),
    ],
)
def test_canonical_forms_map_to_first_noun_sense(mapper, tag, canonical, wnid):
    m = mapper.map(tag)
    assert (m.canonical, m.wnid, m.reason) == (canonical, wnid, None)


def test_synonyms_share_a_class(mapper):
    assert mapper.map("brownbear").wnid == mapper.map("ursusarctos").wnid == BROWN_BEAR
    assert mapper.synset(BROWN_BEAR).name() == "brown_bear.n.01"


@pytest.mark.parametrize(
    ("tag", "reason", "canonical"),
    [
        ("love", "stoplisted", "love"),
        ("InstaGood", "stoplisted", "instagood"),
        ("like4like", "stoplisted", "like4like"),  # stoplist is checked before numbers
        ("InstaLove", "stoplisted", "love"),  # resolves to a stoplisted noun
        ("2019", "numeric", "2019"),
        ("a" * 41, "too_long", "a" * 41),
        ("xyzzyqw", "no_match", "xyzzyqw"),
        ("кошка", "no_match", "кошка"),
        ("quickly", "not_noun", "quickly"),  # adverb only
        ("gorgeous", "not_noun", "gorgeous"),  # adjective only
        ("summer", "non_visual", "summer"),  # every noun sense is noun.time
        ("summerlovers", "non_visual", "summer"),
        ("happiness", "non_visual", "happiness"),  # noun.state / noun.feeling only
    ],
)
def test_reasons(mapper, tag, reason, canonical):
    m = mapper.map(tag)
    assert (m.reason, m.canonical) == (reason, canonical)
    assert m.reason in REASONS


def test_non_visual_keeps_its_wnid_and_lexname(mapper):
    m = mapper.map("summer")
    assert (m.wnid, m.lexname) == ("n15237250", "noun.time")
    assert mapper.map("tbt").wnid is None  # stoplisted tags are not looked up


def test_selfie_is_not_stoplisted():
    assert "selfie" not in DEFAULT_STOPLIST


def test_extra_stoplist_and_replacement(mapper):
    from labeling.wordnet import wordnet

    extra = HashtagMapper(wordnet(), extra_stoplist=["Beach"])
    assert extra.map("beaches").reason == "stoplisted"
    assert extra.map("love").reason == "stoplisted"
    bare = HashtagMapper(wordnet(), stoplist=[])
    assert bare.map("tbt").reason == "no_match"
    assert mapper.map("beach").reason is None


def test_cache_returns_the_same_object(mapper):
    assert mapper.map("Sailboats") is mapper.map("Sailboats")
    assert mapper.map_many(["dog", "cats"]) == [
        TagMapping("dog", DOG, None, "noun.animal"),
        TagMapping("cat", "n02121620", None, "noun.animal"),
    ]


def test_segment(mapper):
    assert mapper.segment("blackdogs") == ["black", "dogs"]
    assert mapper.segment("cupofcoffee") == ["cup", "of", "coffee"]
    assert mapper.segment("goldenretriever") == ["goldenretriever"]  # one multi-word lemma
    assert mapper.segment("qqqqzz") is None


@pytest.mark.parametrize("tag", ["", "#", "_", "😀", "ab" * 20, "\u0301", "x" * 100_000])
def test_odd_tags_do_not_crash(mapper, tag):
    assert mapper.map(tag).reason in (*REASONS, None)


@pytest.mark.parametrize(
    ("tag", "frequent_visual", "first_visual", "first"),
    [
        ("sunset", "sunset.n.02", "sunset.n.02", "sunset.n.01"),  # sky, sky, time of day
        ("sunsetlovers", "sunset.n.02", "sunset.n.02", "sunset.n.01"),
        # every sense has tagged count 0: the animal beats the toy by lexname preference
        ("kite", "kite.n.04", "kite.n.03", "kite.n.01"),
        # the poets and the constellation are `Crane` only; bird (animal) > machine
        ("crane", "crane.n.05", "crane.n.04", "crane.n.01"),
        # count 1 each for the audacious person and the cat: the animal wins the tie
        ("tiger", "tiger.n.02", "tiger.n.01", "tiger.n.01"),
        # the sun is an instance of star, but `sun` is also its common lemma: it stays
        ("sun", "sun.n.01", "sun.n.01", "sun.n.01"),
        ("java", "coffee.n.01", "coffee.n.01", "java.n.01"),
        ("dog", "dog.n.01", "dog.n.01", "dog.n.01"),
        ("man", "man.n.01", "man.n.01", "man.n.01"),  # count beats preference: no game piece
    ],
)
def test_sense_rules(tag, frequent_visual, first_visual, first):
    from labeling.wordnet import wordnet

    for rule, name in (("frequent_visual", frequent_visual), ("first_visual", first_visual),
                       ("first", first)):  # fmt: skip
        m = HashtagMapper(wordnet(), sense_rule=rule)
        got = m.map(tag)
        synset = m.synset(got.wnid)
        assert synset.name() == name, rule
        assert (got.lexname, got.reason) == (
            synset.lexname(),
            None if m.is_visual(synset) else "non_visual",
        )


def test_visual_filter_admits_physical_things_filed_as_communication(mapper):
    for tag, name in (("comicbook", "comic_book.n.01"), ("streetsign", "street_sign.n.01"),
                      ("trafficlight", "traffic_light.n.01")):  # fmt: skip
        got = mapper.map(tag)
        assert (mapper.synset(got.wnid).name(), got.lexname, got.reason) == (
            name,
            "noun.communication",
            None,
        )
    assert mapper.map("poem").reason == "non_visual"  # noun.communication, no physical ancestor


def test_unknown_sense_rule_is_refused():
    with pytest.raises(ValueError, match="sense_rule"):
        HashtagMapper(object(), sense_rule="random")


def test_non_visual_dominant_words_are_dropped(mapper):
    from labeling.wordnet import wordnet

    for tag in ("shapes", "action"):
        assert mapper.map(tag).reason == "non_visual"
    assert (mapper.map("fire").reason, mapper.map("table").lexname) == (None, "noun.artifact")
    lenient = HashtagMapper(wordnet(), non_visual_dominance=0)
    assert (lenient.map("shapes").reason, lenient.map("shapes").lexname) == (None, "noun.body")


@pytest.mark.parametrize(
    ("tag", "wnid"),
    [
        ("boxer", "n02108089"),  # boxer.n.04, the dog (ImageNet's class 242)
        ("Boxer", "n02108089"),
        ("monarch", "n02279972"),  # monarch.n.02, the butterfly (ImageNet's class 323)
        ("speaker", "n03691459"),  # loudspeaker.n.01 (ImageNet's class 632)
        ("painter", "n10391653"),  # painter.n.01, the artist: 15 uses outweigh the cougar
        ("radio", "n04043733"),  # radio_receiver.n.01 (8 uses), not the medium (9)
    ],
)
def test_depiction_dominance_in_the_mapper(mapper, tag, wnid):
    m = mapper.map(tag)
    assert (m.wnid, m.reason) == (wnid, None)


def test_breadth_of_records_equals_nltk_closure(mapper):
    from labeling.senses import hyponym_count

    # dog.n.01 has multiple-inheritance descendants; tree.n.01 over a thousand
    for name in ("hammer.n.01", "hammer.n.02", "dog.n.01", "tree.n.01", "bicycle.n.01"):
        synset = mapper._wn.synset(name)
        record = mapper.record(f"n{synset.offset():08d}")
        assert mapper.breadth(record) == hyponym_count(synset) == mapper.breadth(synset)
    assert mapper.breadth(mapper.record("n03481172")) == 9  # hammer.n.02


@pytest.mark.parametrize(
    ("tag", "wnid"),
    [
        ("hammer", "n03481172"),  # hammer.n.02, the hand tool (ImageNet's class 587)
        ("Hammers", "n03481172"),
        ("van", "n04520170"),  # van.n.05, the truck
        ("tram", "n04335435"),  # streetcar.n.01 (ImageNet's class 829)
        ("jellyfish", "n01910747"),  # jellyfish.n.02 (ImageNet's class 107)
        ("redfox", "n02119022"),  # red_fox.n.03, Vulpes vulpes (ImageNet's class 277)
    ],
)
def test_ties_go_to_the_broader_sense_in_the_mapper(mapper, tag, wnid):
    m = mapper.map(tag)
    assert (m.wnid, m.reason) == (wnid, None)


def test_suffix_stripping_by_length_equals_trying_every_suffix():
    import random

    from labeling.mapper import META_SUFFIXES, MIN_PIECE_CHARS, _without_suffix

    def every_suffix(text):
        return [
            text[: -len(s)]
            for s in META_SUFFIXES
            if text.endswith(s) and len(text) - len(s) >= MIN_PIECE_CHARS
        ]

    rng = random.Random(2)
    pieces = [*META_SUFFIXES, "dog", "sun", "x", "ab"]
    texts = ["".join(rng.choices(pieces, k=rng.randint(1, 4))) for _ in range(20_000)]
    assert all(_without_suffix(t) == every_suffix(t) for t in texts)
    assert sum(len(every_suffix(t)) > 1 for t in texts) > 1000  # several suffixes at once
    assert _without_suffix("dogsofinstagram") == ["dogs", "dogsofin", "dogsofinsta"]


@pytest.mark.parametrize(
    ("tag", "bases", "canonical", "wnid"),
    [
        # saxe names only proper nouns (Saxony, the marshal): the instrument
        ("saxes", ["saxe", "sax"], "sax", "n04141076"),  # sax.n.02 (ImageNet's class 776)
        # the exception list's syrinx against the suffix rule's syringe, 0 uses each: the rule's
        ("syringes", ["syrinx", "syringe"], "syringe", "n04376876"),  # ImageNet's class 845
        ("synapses", ["synapsis", "synapse"], "synapse", "n05473928"),
        # the list's pelvis has a SemCor use, the rule's pelf none: the list's
        ("pelves", ["pelvis", "pelf"], "pelvis", "n05596651"),
        # axe (8 uses) over the list's first base ax (2), one synset; axis is listed second
        ("axes", ["ax", "axis", "axe"], "axe", "n02764044"),
        ("bases", ["base", "basis"], "base", "n02798290"),  # basis is listed second: unread
        ("mice", ["mouse"], "mouse", "n02330245"),
        ("glasses", ["glasses", "glass"], "glasses", "n04272054"),  # a lemma: itself
    ],
)
def test_a_written_form_with_several_noun_bases(mapper, tag, bases, canonical, wnid):
    assert mapper.noun_bases(tag) == bases
    m = mapper.map(tag)
    assert (m.canonical, m.wnid, m.reason) == (canonical, wnid, None)
    assert mapper.map_word(tag) == m  # caption words choose the same base
    assert mapper.map(f"{tag}ofinstagram").wnid == wnid  # and joined tags


def test_noun_bases_add_the_suffix_rules_to_nltks_morphy(mapper, wn):
    # NLTK stops at the exception list; the rules' bases follow it, each once
    assert wn._morphy("syringes", "n") == ["syrinx"]
    assert wn.morphy("saxes", "n") == "saxe"
    assert mapper.noun_bases("dogs") == wn._morphy("dogs", "n") == ["dog"]
    assert mapper.noun_bases("xyzzyqws") == []
    assert mapper.base("xyzzyqws") is None
