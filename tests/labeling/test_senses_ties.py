"""The tie-breaks of `frequent_visual` among senses of equal tagged count and lexname, and
the trademark exception to the proper-name rule, with real WordNet 3.0."""

from __future__ import annotations

import random
import re

import pytest

from labeling.mapper import HashtagMapper
from labeling.senses import (
    SENSE_RULES,
    TRADEMARK,
    concept_uses,
    is_kind_of_its_file,
    is_past,
    is_physical_kind,
    is_trademark,
    noun_bases,
    past_gloss,
    preference_rank,
    proper_name_of,
    tagged_count,
    tie_key,
)


@pytest.mark.parametrize(
    ("tag", "want", "was"),
    [
        # `Loafer` and `Band_Aid` are capitalised, but WordNet files them as trademarks:
        # the products, not proper names; without that the idler and the quick fix won
        ("loafer", "loafer.n.02", "idler.n.01"),
        ("BandAid", "band_aid.n.01", "band_aid.n.02"),
    ],
)
def test_trademarks_are_common_nouns(mapper, tag, want, was):
    mapping = mapper.map(tag)
    assert mapping.reason is None
    synset = mapper.synset(mapping.wnid)
    assert synset.name() == want
    assert is_trademark(synset, mapping.canonical)
    assert not proper_name_of(synset, mapping.canonical)
    # the rule without the exception: every sense but the trademark
    others = [s for s in mapper._nouns.senses(mapping.canonical) if not s.trademarks]
    rule = SENSE_RULES["frequent_visual"]
    old = rule(
        others, mapping.canonical, mapper.is_visual, breadth=mapper.breadth, uses=mapper.uses
    )
    assert mapper.synset(old.wnid).name() == was


def test_proper_names_that_are_no_trademarks_stay_out(wn):
    assert proper_name_of(wn.synset("crane.n.02"), "crane")  # Hart Crane, the poet
    assert not is_trademark(wn.synset("crane.n.02"), "crane")
    assert not is_trademark(wn.synset("idler.n.01"), "loafer")


def _nltk_trademarks(synset) -> set[str]:
    if any(d.name() == TRADEMARK for d in synset.usage_domains()):
        return set(synset.lemma_names())
    return {
        x.name()
        for x in synset.lemmas()
        if any(d.synset().name() == TRADEMARK for d in x.usage_domains())
    }


def test_trademark_records_equal_nltk(wn, mapper):
    """`NounRecord.trademarks` are NLTK's usage domains: every name of the 83 synsets filed
    as trademarks, and the lemmas filed so one by one (`Caterpillar`, not `cat`); checked on
    every record that has one and on a seeded sample of the others."""
    records = mapper._nouns.records
    whole = {s.offset() for s in wn.synset(TRADEMARK).in_usage_domains()}
    assert len(whole) == 83 and all(
        set(records[o].trademarks) == set(records[o].names) for o in whole
    )
    marked = [o for o, r in records.items() if r.trademarks]
    assert len(marked) > len(whole)  # lemma-level marks too
    for offset in marked + random.Random(7).sample(sorted(records), 2000):
        synset = wn.synset_from_pos_and_offset("n", offset)
        assert set(records[offset].trademarks) == _nltk_trademarks(synset), synset
    caterpillar = mapper.record(_wnid(mapper, "caterpillar.n.02"))
    assert caterpillar.trademarks == ("Caterpillar",)
    assert is_trademark(caterpillar, "caterpillar") and not is_trademark(caterpillar, "cat")
    assert is_trademark(wn.synset("caterpillar.n.02"), "Caterpillar")
    assert not is_trademark(wn.synset("caterpillar.n.02"), "cat")


@pytest.mark.parametrize(
    ("tag", "want", "was"),
    [
        # `eyes`, `teeth`, `hands` and `rails` are WordNet lemmas themselves (of other
        # synsets), so they are looked up as written; the senses of their singular count
        # the singular's uses, not the written plural's 0
        ("eyes", "eye.n.01", "eye.n.05"),  # the organ (263), not the eye of a needle
        ("teeth", "tooth.n.01", "tooth.n.03"),  # 38, not invertebrates' toothlike part
        ("hands", "hand.n.01", "hands.n.01"),  # 215; custody (10) was non-visual
        ("rails", "railing.n.01", "rail.n.05"),  # 5, not the wading bird
    ],
)
def test_plural_lemmas_count_their_singular(mapper, tag, want, was):
    mapping = mapper.map(tag)
    assert mapping.canonical == tag  # a WordNet lemma as written
    assert mapper.synset(mapping.wnid).name() == want and mapping.reason is None
    singular = noun_bases(tag)
    assert len(singular) == 1
    got = mapper.record(_wnid(mapper, want))
    assert tagged_count(got, tag) == got.tagged_count(singular[0]) > 0
    assert got.tagged_count(tag) == 0  # the written plural's own count
    # counted as written, `was` had at least `want`'s count: what made it win before
    old = mapper.record(_wnid(mapper, was))
    assert old.tagged_count(tag) >= got.tagged_count(tag)
    assert tagged_count(old, tag) < tagged_count(got, tag)


def test_tagged_count_of_an_nltk_synset_counts_the_singular_too(wn):
    assert tagged_count(wn.synset("eye.n.01"), "eyes") == 263
    assert tagged_count(wn.synset("eye.n.01"), "eye") == 263
    assert tagged_count(wn.synset("tooth.n.01"), "teeth") == 38
    assert noun_bases("teeth") == ("tooth",) and noun_bases("tooth") == ()


def _wnid(mapper, name: str) -> str:
    return f"n{mapper._wn.synset(name).offset():08d}"


@pytest.mark.parametrize(
    ("tag", "want", "was"),
    [
        # counts of the word 0 = 0 (3 = 3 for carrier), same lexname; the concept's own
        # SemCor uses (its lemmas and those below it) decide before breadth
        ("carrier", "aircraft_carrier.n.01", "carrier.n.02"),  # 5 uses against 3
        ("cot", "crib.n.01", "fingerstall.n.01"),  # 3 against 0 (WordNet lists it first)
        ("letterbox", "mailbox.n.01", "postbox.n.01"),
        ("file", "file.n.03", "file.n.04"),  # the cabinet over the rasp (7 below it)
    ],
)
def test_ties_go_to_the_concept_used_more(mapper, tag, want, was):
    mapping = mapper.map(tag)
    assert mapper.synset(mapping.wnid).name() == want
    got, old = mapper.record(_wnid(mapper, want)), mapper.record(_wnid(mapper, was))
    lemma = mapping.canonical
    assert got.tagged_count(lemma) == old.tagged_count(lemma)
    assert got.lexname() == old.lexname()
    assert mapper.uses(got) > mapper.uses(old)
    assert mapper.breadth(got) <= mapper.breadth(old)  # breadth would not have chosen it


def test_concept_uses_docstring_examples_are_its_values(wn):
    examples = re.findall(r"(\w+\.n\.\d\d): (\d+)", concept_uses.__doc__)
    assert len(examples) == 4
    for name, number in examples:
        assert concept_uses(wn.synset(name)) == int(number), name


def test_concept_uses_of_records_equal_nltk(wn, mapper):
    """`HashtagMapper.uses` on records (inverted hypernym graph, record counts) equals
    `concept_uses` on NLTK synsets (closure, cntlist.rev) over a seeded sample."""
    offsets = sorted(mapper._nouns.records)
    sample = random.Random(5).sample(offsets, 300)
    sample += [wn.synset(n).offset() for n in ("hammer.n.02", "dog.n.01", "artifact.n.01")]
    positive = 0
    for offset in sample:
        synset = wn.synset_from_pos_and_offset("n", offset)
        record = mapper._nouns.records[offset]
        assert mapper.uses(record) == concept_uses(synset) == mapper.uses(synset), synset
        positive += concept_uses(synset) > 0
    assert positive > 30
    assert mapper.uses(mapper.record(_wnid(mapper, "artifact.n.01"))) > 5_000  # 9,503


def _tied(mapper, tag: str, want: str, was: str) -> tuple:
    """(record chosen, record passed over, lemma, the mapper's tie-key functions): `tag`
    maps to `want`, which ties `was` on tagged count and lexname."""
    mapping = mapper.map(tag)
    assert mapping.reason is None and mapper.synset(mapping.wnid).name() == want
    got, old = mapper.record(_wnid(mapper, want)), mapper.record(_wnid(mapper, was))
    lemma = mapping.canonical
    assert (got.tagged_count(lemma), got.lexname()) == (old.tagged_count(lemma), old.lexname())
    keys = {"breadth": mapper.breadth, "uses": mapper.uses, "physical": mapper.is_physical_kind}
    return got, old, lemma, keys


@pytest.mark.parametrize(
    ("tag", "want", "was"),
    [
        # equal counts and lexname (noun.artifact); WordNet files the first as an
        # abstraction by its hypernyms, the second as a kind of physical thing
        ("WoodenSpoon", "wooden_spoon.n.02", "wooden_spoon.n.01"),  # the spoon, not the prize
        ("carousel", "carousel.n.02", "carousel.n.01"),  # merry-go-round, not a curve
        ("pacifier", "comforter.n.04", "pacifier.n.02"),  # the dummy, "anything that pacifies"
        ("railway", "railroad_track.n.01", "railway.n.01"),  # the track, not the company
    ],
)
def test_ties_go_to_the_kind_of_physical_thing(mapper, tag, want, was):
    got, old, lemma, keys = _tied(mapper, tag, want, was)
    assert mapper.is_physical_kind(got) and not mapper.is_physical_kind(old)
    assert is_physical_kind(mapper.synset(got.wnid))
    assert not is_physical_kind(mapper.synset(old.wnid))
    # without the physical-kind key, concept frequency, breadth and WordNet's order chose `was`
    order = mapper._nouns.senses(lemma).index
    assert (*tie_key(old, **keys)[1:], order(old)) < (*tie_key(got, **keys)[1:], order(got))


def test_instances_are_no_physical_kinds(wn):
    assert is_physical_kind(wn.synset("dog.n.01"))
    assert not is_physical_kind(wn.synset("jacob.n.01"))  # François Jacob: an instance
    assert not is_physical_kind(wn.synset("wooden_spoon.n.01"))  # an award


def test_physical_kinds_of_records_equal_nltk(wn, mapper):
    """`NounIndex.is_physical_kind` (membership in `kinds_below(PHYSICAL)`, PHYSICAL itself
    excluded) equals the NLTK closure over a seeded sample, the synsets with both `@` and
    `@i` pointers and physical_entity.n.01 itself included."""
    records = mapper._nouns.records
    mixed = [o for o, r in records.items() if r.kind_of and set(r.hypernyms) - set(r.kind_of)]
    assert len(mixed) == 5
    physical = wn.synset("physical_entity.n.01").offset()
    sample = random.Random(11).sample(sorted(records), 1500) + mixed + [physical]
    kinds = 0
    for offset in sample:
        synset = wn.synset_from_pos_and_offset("n", offset)
        assert mapper.is_physical_kind(records[offset]) == is_physical_kind(synset), synset
        kinds += is_physical_kind(synset)
    assert 300 < kinds < len(sample) - 300  # both answers are common


@pytest.mark.parametrize(
    ("tag", "want", "was"),
    [
        # equal counts (0), lexname, physical kind, concept uses and breadth; WordNet lists
        # the sense its gloss places in the past first
        ("Bobsled", "bobsled.n.02", "bobsled.n.01"),  # "formerly two short sleds coupled"
        ("bobsleigh", "bobsled.n.02", "bobsled.n.01"),  # ImageNet's class 450 both ways
        ("stoup", "stoup.n.02", "stoup.n.01"),  # the holy-water basin, not "an archaic..."
        ("visor", "bill.n.09", "visor.n.01"),  # the cap's brim, not the helmet's armor plate
    ],
)
def test_ties_go_to_a_thing_of_today(mapper, tag, want, was):
    got, old, lemma, keys = _tied(mapper, tag, want, was)
    assert tie_key(got, **keys)[:3] == tie_key(old, **keys)[:3]  # only the past differs
    assert (old.past, got.past) == (True, False)
    assert is_past(mapper.synset(old.wnid)) and not is_past(mapper.synset(got.wnid))
    # without it, WordNet's order chose `was`
    order = mapper._nouns.senses(lemma).index
    assert order(old) < order(got)


def test_past_of_records_equals_nltk_definitions(wn, mapper):
    """`NounRecord.past` (the `data.noun` gloss less its quoted examples) equals `is_past`
    of NLTK's definition, on every synset it is true for and a seeded sample."""
    records = mapper._nouns.records
    past = [o for o, r in records.items() if r.past]
    assert 1_000 < len(past) < 1_500  # 1,187 in WordNet 3.0
    sample = random.Random(3).sample(sorted(records), 1500) + past
    for offset in sample:
        synset = wn.synset_from_pos_and_offset("n", offset)
        assert records[offset].past == is_past(synset), synset
    # a past word in an example only does not count: "an ancient... " is quoted here
    assert not past_gloss('a thing used today; "an ancient custom"')
    assert past_gloss('(antiquity) a thing; "it stood here"')


@pytest.mark.parametrize(
    ("name", "agrees", "ranks_as"),
    [
        ("porcupine.n.01", True, "noun.animal"),
        ("quill.n.02", False, None),  # the porcupine's spine (a body part), noun.animal
        ("syrinx.n.02", False, None),  # a bird's vocal organ, noun.animal
        ("aquila.n.03", False, None),  # a genus (a taxonomic group), noun.animal
        ("omaha.n.04", False, None),  # the racehorse: an instance, no kind of organism
        ("hammer.n.02", True, "noun.artifact"),
        ("cannabis.n.02", False, None),  # the drug (a causal agent), noun.artifact
        ("circus.n.05", False, None),  # the arena: a tract of land by its hypernyms
        ("teak.n.01", True, "noun.plant"),  # the wood: noun.plant ranks as filed
        ("person.n.01", True, None),  # noun.Tops: outside LEXNAME_PREFERENCE
    ],
)
def test_a_sense_ranks_by_its_file_when_it_is_a_kind_of_it(wn, name, agrees, ranks_as):
    from labeling.noun_index import noun_index
    from labeling.senses import LEXNAME_PREFERENCE

    synset = wn.synset(name)
    assert is_kind_of_its_file(synset) is agrees
    want = LEXNAME_PREFERENCE.index(ranks_as) if ranks_as else len(LEXNAME_PREFERENCE)
    assert preference_rank(synset) == want
    record = noun_index(wn).records[synset.offset()]  # the mapper's records: the same
    assert (is_kind_of_its_file(record), preference_rank(record)) == (agrees, want)


@pytest.mark.parametrize(
    ("tag", "want", "was"),
    [
        # equal counts: the file no longer lifts what is no organism or no artifact
        ("quill", "quill.n.01", "quill.n.02"),  # the pen, 1 use each, not the spine
        ("syrinx", "panpipe.n.01", "syrinx.n.02"),  # 0 each: the pipes, not the vocal organ
        ("bobtail", "old_english_sheepdog.n.01", "bobtail.n.01"),  # the dog, not the tail
        ("rattle", "rattle.n.02", "rattle.n.03"),  # the baby's toy, not the snake's tail
        ("marijuana", "marijuana.n.01", "cannabis.n.02"),  # the plant, not the drug
        ("trash", "rubbish.n.01", "methamphetamine.n.01"),  # rubbish, not a street name
        ("trifle", "trifle.n.01", "triviality.n.03"),  # the pudding, not "something small"
        # costs: the arena is a tract by its hypernyms, the snout no organism
        ("circus", "circus.n.04", "circus.n.05"),  # "(antiquity) an open-air stadium"
        ("muzzle", "gun_muzzle.n.01", "muzzle.n.02"),
        # an organism of noun.animal still comes first, an artifact next
        ("crane", "crane.n.05", "crane.n.05"),
    ],
)
def test_what_is_no_organism_or_artifact_ranks_last(mapper, tag, want, was, monkeypatch):
    from labeling import senses

    assert mapper.synset(mapper.map(tag).wnid).name() == want
    # the rule as it was: every sense ranks by its file
    last = len(senses.LEXNAME_PREFERENCE)
    monkeypatch.setattr(senses, "preference_rank", lambda s: senses._RANK.get(s.lexname(), last))
    old = HashtagMapper(mapper._wn)
    assert old.synset(old.map(tag).wnid).name() == was
