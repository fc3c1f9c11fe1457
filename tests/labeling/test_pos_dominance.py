"""Rule 4e, part-of-speech dominance (labeling/pos_dominance.py), on real WordNet 3.0."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from labeling.mapper import HashtagMapper
from labeling.pos_dominance import NO_USES, POS_DOMINANCE, PosUses, names_property, pos_uses
from labeling.senses import tagged_count


def _ratio(mapper: HashtagMapper, word: str) -> float:
    """adjective uses / (visual noun senses' uses + 1): what rule 4e compares to K."""
    uses = pos_uses(mapper._wn)[word]
    visual = sum(tagged_count(r, word) for r in mapper.visual_senses(word))
    return uses.adjective / (visual + 1)


def test_pos_uses_are_nltk_lemma_counts(wn):
    # an independent path: NLTK's Lemma.count() (a binary search of cntlist.rev per lemma)
    uses = pos_uses(wn)
    for word in ("red", "orange", "clean", "fire", "left", "remote"):
        want = PosUses(
            noun=sum(x.count() for x in wn.lemmas(word, "n")),
            verb=sum(x.count() for x in wn.lemmas(word, "v")),
            adjective=sum(x.count() for x in wn.lemmas(word, "a")),  # NLTK: "a" includes "s"
            adverb=sum(x.count() for x in wn.lemmas(word, "r")),
        )
        assert uses.get(word, NO_USES) == want, word
    assert uses["red"].adjective > uses["red"].noun > 0


@pytest.mark.parametrize(
    "tag",
    ["red", "Red", "#white", "black", "green", "blue", "pink", "gray", "small", "special",
     "local", "modern", "clean", "bigred", "RedLove"],
)  # fmt: skip
def test_property_words_are_not_nouns(mapper, tag):
    m = mapper.map(tag)
    assert (m.wnid, m.reason) == (None, "not_noun")
    assert mapper.names_property(m.canonical)


@pytest.mark.parametrize(
    ("tag", "synset"),
    [
        ("orange", "orange.n.01"),  # the fruit: 7 adjective uses against 4 + 1 + 1
        ("gold", "gold.n.03"),  # the metal
        ("silver", "silver.n.01"),
        ("metal", "metallic_element.n.01"),
        ("plastic", "plastic.n.01"),
        ("glass", "glass.n.01"),
        ("olive", "olive.n.04"),
        ("safe", "safe.n.01"),  # ImageNet: 26 against 6 + 1, the largest ratio that stays
        ("remote", "remote_control.n.01"),  # ImageNet; no noun use in SemCor: exempt
        ("grand", "grand_piano.n.01"),
        ("husky", "eskimo_dog.n.01"),
        ("fire", "fire.n.04"),  # verbs are not weighed: 71 verb uses
        ("watch", "watch.n.01"),
        ("reds", "bolshevik.n.01"),  # a written plural is a noun
        ("RedWine", "red_wine.n.01"),  # a multiword lemma
    ],
)
def test_things_keep_their_sense(wn, mapper, tag, synset):
    m = mapper.map(tag)
    assert (m.wnid, m.reason) == (f"n{wn.synset(synset).offset():08d}", None)


def test_threshold_sits_between_imagenet_and_the_colours(mapper):
    # the bounds that chose K: the largest ratio among ImageNet's attested one-word lemmas
    # (safe) stays below K, the smallest basic colour term (blue) reaches it
    assert _ratio(mapper, "safe") < POS_DOMINANCE <= _ratio(mapper, "blue")
    assert _ratio(mapper, "silver") < POS_DOMINANCE <= _ratio(mapper, "red")
    assert not mapper.names_property("safe") and mapper.names_property("blue")


def test_names_property_boundary_and_attestation():
    assert names_property(PosUses(noun=1, adjective=12), visual_uses=1, ratio=6)
    assert not names_property(PosUses(noun=1, adjective=11), visual_uses=1, ratio=6)
    assert not names_property(PosUses(noun=0, adjective=500), visual_uses=0, ratio=6)
    assert not names_property(PosUses(noun=1, adjective=500), visual_uses=0, ratio=0)


def test_rule_off_restores_the_noun_sense(wn):
    lenient = HashtagMapper(wn, pos_dominance=0)
    m = lenient.map("red")
    assert (m.canonical, m.wnid, m.reason) == (
        "red",
        f"n{wn.synset('bolshevik.n.01').offset():08d}",
        None,
    )
    assert lenient.map("clean").reason == "non_visual"  # clean_and_jerk.n.01, an act


@pytest.mark.parametrize(
    ("word", "reason"),
    [("red", "not_noun"), ("white", "not_noun"), ("orange", None), ("reds", None), ("safe", None)],
)
def test_caption_words_follow_the_same_rule(mapper, word, reason):
    assert mapper.map_word(word).reason == reason
    assert mapper.map_word(word).reason == mapper.map(word).reason


@pytest.mark.parametrize("engine", ["arrays", "sql"])
def test_build_vocab_pos_dominance_option(tmp_path, write_metadata, wn, mapper, engine):
    """`curate build-vocab --pos-dominance K` reaches the mapper; 0 turns rule 4e off."""
    from labeling.build_vocab import main

    uids = write_metadata(tmp_path, ["#red #dog", "#Red #cat", "a red dog"])
    dog, cat = mapper.map("dog").wnid, mapper.map("cat").wnid
    red = f"n{wn.synset('bolshevik.n.01').offset():08d}"

    def run(*argv: str) -> tuple[dict, dict]:
        args = ["--root", str(tmp_path), "--min-count", "1", "--engine", engine, *argv]
        assert main(args) == 0
        tags = pq.read_table(tmp_path / "vocab" / "hashtags.parquet").to_pylist()
        wnids = [r["wnid"] for r in pq.read_table(tmp_path / "vocab" / "vocab.parquet").to_pylist()]
        part = pq.read_table(tmp_path / "labels" / "part-00000.parquet").to_pylist()
        labels = {r["uid"]: sorted(wnids[c] for c in r["class_ids"]) for r in part}
        return {(r["hashtag"], r["kind"]): r["reason"] for r in tags}, labels

    reasons, labels = run()
    assert reasons[("red", "hashtag")] == "not_noun"
    assert labels == {uids[0]: [dog], uids[1]: [cat]}
    reasons, labels = run("--source", "both")
    assert reasons[("red", "word")] == "not_noun"
    assert labels == {uids[0]: [dog], uids[1]: [cat], uids[2]: [dog]}
    reasons, labels = run("--pos-dominance", "0")
    assert reasons[("red", "hashtag")] is None
    assert labels == {uids[0]: sorted([dog, red]), uids[1]: sorted([cat, red])}


def test_build_vocab_rejects_a_bad_pos_dominance(tmp_path, capsys):
    from curation.cli import main as curate

    assert curate(["build-vocab", "--root", str(tmp_path), "--pos-dominance", "x"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
