"""Plural hashtags map to the sense a web user means, with real WordNet 3.0: when the written
plural names a visual sense of its own, the singular's uses go on the plural's scale
(`senses.plural_scale`: // `PLURAL_SHARE`, none for a substance)."""

from __future__ import annotations

import pytest

from labeling.senses import (
    LEXNAME_PREFERENCE,
    PLURAL_SHARE,
    concept_uses,
    is_substance,
    noun_bases,
    plural_scale,
    tagged_count,
)


@pytest.mark.parametrize(
    ("tag", "want"),
    [
        # pluralia tantum: WordNet names the plural in a sense of its own
        ("glasses", "spectacles.n.01"),  # 4 uses; the drinking glass 12 // 4; the material none
        ("shorts", "short_pants.n.01"),  # 0 = 3 // 4 (the baseball position); broader
        ("spectacles", "spectacles.n.01"),  # 1 against the lavish display's 2 // 4
        ("sweats", "sweat_suit.n.01"),  # perspiration is a substance
        ("pants", "trouser.n.01"),  # 0 = 0 against bloomers; 11 // 4 concept uses
        ("jeans", "jean.n.01"),  # not a lemma: the singular, "close-fitting trousers"
        ("sunglasses", "sunglasses.n.01"),
        ("binoculars", "binoculars.n.01"),
        ("scissors", "scissors.n.01"),
        ("tights", "tights.n.01"),
        ("stairs", "stairs.n.01"),
        ("clothes", "apparel.n.01"),
        ("trousers", "trouser.n.01"),
        ("goggles", "goggles.n.01"),
        ("pliers", "pliers.n.01"),
        ("os", "os.n.01"),  # the opening (1 use), not oxygen (`O`, a substance)
        # the singular's sense, which outweighs the plural's own on the same scale
        ("eyes", "eye.n.01"),  # 263 // 4; eyes.n.01 (opinion) is not visual
        ("teeth", "tooth.n.01"),  # 38 // 4 against dentition.n.02's 0
        ("hands", "hand.n.01"),  # 215 // 4
        ("rails", "railing.n.01"),  # 5 // 4 against track.n.09's 0
        ("bones", "bone.n.01"),  # 10 // 4 against the castanets' 0
        ("arms", "arm.n.01"),
        ("rooms", "room.n.01"),
        # WordNet's own plural senses: a photo of cows shows cattle, one of eggs hen's eggs
        ("cows", "cattle.n.01"),  # `cows` 5 uses against cow.n.01's 20 // 4 = 5: broader
        ("eggs", "egg.n.02"),  # `eggs` 6 uses against egg.n.01's 19 // 4
        # plain plurals resolve to the singular lemma
        ("headphones", "earphone.n.01"),
        ("leggings", "legging.n.01"),
        ("boots", "boot.n.01"),
        ("shoes", "shoe.n.01"),
        ("flowers", "flower.n.01"),
        ("cats", "cat.n.01"),
        ("dogs", "dog.n.01"),
    ],
)
def test_plural_hashtags(mapper, tag, want):
    mapping = mapper.map(tag)
    assert mapping.reason is None
    assert mapper.synset(mapping.wnid).name() == want


def _visual(synset):
    return synset.lexname() in LEXNAME_PREFERENCE


def _scaled_counts(wn, lemma):
    senses = wn.synsets(lemma, "n")
    scale = plural_scale(senses, lemma, _visual)
    return {s.name(): scale(s, tagged_count(s, lemma)) for s in senses}


def test_singular_uses_on_the_plural_scale(wn):
    assert PLURAL_SHARE == 4
    assert noun_bases("glasses") == ("glass",)
    counts = _scaled_counts(wn, "glasses")
    # spectacles.n.01 names `glasses`: its own 4 uses
    assert counts["spectacles.n.01"] == tagged_count(wn.synset("spectacles.n.01"), "glasses") == 4
    # the drinking glass through `glass`: 12 // 4
    assert tagged_count(wn.synset("glass.n.02"), "glasses") == 12
    assert counts["glass.n.02"] == 3
    # the material: 22 uses of `glass`, a substance, none of them a plural
    assert tagged_count(wn.synset("glass.n.01"), "glasses") == 22
    assert counts["glass.n.01"] == 0
    # no visual sense is named `eyes` (eyes.n.01, opinion, is noun.cognition): as counted
    eyes = _scaled_counts(wn, "eyes")
    assert eyes["eye.n.01"] == tagged_count(wn.synset("eye.n.01"), "eyes") == 263
    # a singular has no base form: as counted
    assert _scaled_counts(wn, "glass")["glass.n.01"] == 22
    # concept uses go on the same scale (the `uses` tie-break): trouser.n.01 has 11
    pants = wn.synsets("pants", "n")
    scale = plural_scale(pants, "pants", _visual)
    assert concept_uses(wn.synset("trouser.n.01")) == 11
    assert scale(wn.synset("trouser.n.01"), 11) == 2
    assert scale(wn.synset("bloomers.n.01"), 11) == 11  # names `pants`
    shorts = wn.synsets("shorts", "n")
    assert plural_scale(shorts, "shorts", _visual)(wn.synset("short.n.01"), 3) == 0


def test_plural_scale_needs_a_visual_sense_named_as_written(wn):
    # `hands`: hands.n.01 (custody) and work_force.n.01 name it, neither visual
    hands = wn.synsets("hands", "n")
    scale = plural_scale(hands, "hands", _visual)
    assert scale(wn.synset("hand.n.01"), 215) == 215
    # with a filter that admits custody, `hands` is lexicalised: 215 // 4
    scale = plural_scale(hands, "hands", lambda s: True)
    assert scale(wn.synset("hand.n.01"), 215) == 53


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("glass.n.01", True),  # matter > solid
        ("perspiration.n.01", True),  # noun.body, but a body substance
        ("oxygen.n.01", True),
        ("egg.n.02", False),  # food is matter, but counted
        ("bone.n.01", False),  # tissue, a body part
        ("glass.n.02", False),
        ("tooth.n.01", False),
    ],
)
def test_is_substance(wn, name, want):
    assert is_substance(wn.synset(name)) is want


def test_is_substance_of_a_record_equals_nltk(wn, mapper):
    for name in ("glass.n.01", "perspiration.n.01", "egg.n.02", "bone.n.01"):
        record = mapper.record(f"n{wn.synset(name).offset():08d}")
        assert is_substance(record) is is_substance(wn.synset(name))
