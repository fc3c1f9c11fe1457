"""NounIndex answers what NLTK answers: senses in order, lexnames, names, counts, visual filter."""

from __future__ import annotations

import random

from labeling.mapper import VISUAL_LEXNAMES
from labeling.noun_index import noun_index
from labeling.senses import is_visual, tagged_count
from labeling.wordnet import wordnet


def test_records_equal_nltk_synsets_on_random_lemmas():
    wn = wordnet()
    index = noun_index(wn)
    assert len(index.records) == 82115  # noun synsets of WordNet 3.0
    lemmas = sorted(wn.all_lemma_names(pos="n"))
    sample = random.Random(0).sample(lemmas, 1500) + ["dogs", "glasses", "crane", "sun", "geese"]
    compared = 0
    for lemma in sample:
        nltk_senses, records = wn.synsets(lemma, "n"), index.senses(lemma)
        assert [s.offset() for s in nltk_senses] == [r.offset() for r in records], lemma
        for synset, record in zip(nltk_senses, records, strict=True):
            assert (record.lexname(), record.lemma_names()) == (
                synset.lexname(),
                synset.lemma_names(),
            )
            assert tagged_count(record, lemma) == tagged_count(synset, lemma)
            assert index.is_visual(record, VISUAL_LEXNAMES) == is_visual(synset, VISUAL_LEXNAMES)
            compared += 1
    assert compared > 1500  # every lemma has at least one sense


def test_counts_and_the_visual_ancestor_rule():
    wn = wordnet()
    index = noun_index(wn)
    (dog, *_) = index.senses("dog")
    assert (dog.wnid, dog.tagged_count("dog")) == ("n02084071", 42)
    comic = index.records[wn.synset("comic_book.n.01").offset()]
    # noun.communication, but a hyponym of object.n.01 via `product` ... `publication`
    assert comic.lexname() == "noun.communication"
    assert index.is_visual(comic, VISUAL_LEXNAMES)
    summer = index.senses("summer")
    assert summer and not any(index.is_visual(r, VISUAL_LEXNAMES) for r in summer)
