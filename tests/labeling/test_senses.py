from __future__ import annotations

import pytest

from labeling.senses import (
    LEXNAME_PREFERENCE,
    SENSE_RULES,
    choose_in_context,
    signature,
    tagged_count,
    visual_candidates,
)
from labeling.wordnet import wordnet


@pytest.fixture(scope="module")
def wn():
    return wordnet()


def _visual(synset):
    return synset.lexname() in LEXNAME_PREFERENCE


def test_tagged_count_equals_nltk_lemma_count(wn):
    for name in ("dog.n.01", "tiger.n.01", "tiger.n.02", "construction.n.01", "kite.n.04"):
        synset = wn.synset(name)
        lemma = synset.lemmas()[0]
        assert tagged_count(synset, lemma.name()) == lemma.count()
    assert tagged_count(wn.synset("construction.n.01"), "construction") == 25


def test_visual_candidates_order(wn):
    names = [s.name() for s in visual_candidates(wn.synsets("crane", "n"), "crane", _visual)]
    # `Crane` the poets are proper names: out; count 0 everywhere: animal > artifact > object
    assert names == ["crane.n.05", "crane.n.04"]


@pytest.mark.parametrize("rule", sorted(SENSE_RULES))
def test_every_rule_returns_one_of_the_senses(wn, rule):
    for word in ("crane", "summer", "dog", "java"):
        senses = wn.synsets(word, "n")
        assert SENSE_RULES[rule](senses, word, _visual) in senses


def test_context_rule_picks_the_sense_the_caption_speaks_of(wn):
    crane = wn.synsets("crane", "n")
    candidates = visual_candidates(crane, "crane", _visual)
    default = candidates[0]
    assert default.name() == "crane.n.05"  # the bird, by the sense rule
    assert "bird" in signature(wn.synset("crane.n.05"))  # hypernym `wading_bird`
    assert choose_in_context(candidates, default, {"bird", "watching"}).name() == "crane.n.05"
    # the machine's gloss: "lifts and moves heavy objects"
    assert choose_in_context(candidates, default, {"heavy", "site"}).name() == "crane.n.04"
    assert choose_in_context(candidates, default, {"zzz"}) is default  # no overlap
    assert choose_in_context(candidates, default, {"bird", "heavy"}) is default  # a tie
