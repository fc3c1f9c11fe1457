from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from labeling.build_vocab import BuildVocabOptions, main
from labeling.vocab_file import read_vocab, vocab_hash

CAPTIONS = [
    "#dogs on the #beach #love",  # 0
    "#GoldenRetriever #dogsofinstagram",  # 1
    "#goldenretriever puppy",  # 2
    "#cat #tbt",  # 3
    "#cats!",  # 4
    "see http://x.com/#top",  # 5
    None,  # 6
    "",  # 7
    "#brownbear",  # 8
    "#ursusarctos at #summer",  # 9
    "#2019 #кошка",  # 10
    "it&#39;s the #beach",  # 11
    "x" * 100_000 + " #sailboat",  # 12
]
DOG, GOLDEN, CAT, BEAR, BEACH = "n02084071", "n02099601", "n02121620", "n02132136", "n09217230"


def label_rows(root) -> list[dict]:
    """Rows of labels/part-00000.parquet, each with `wnids` looked up in vocab.parquet (the
    labels hold class_ids only: class_id c is the vocabulary's row c)."""
    part = pq.read_table(root / "labels" / "part-00000.parquet")
    assert "wnids" not in part.column_names
    wnid_of = [r["wnid"] for r in read_vocab(root / "vocab")]  # ids checked to run 0..K-1
    return [r | {"wnids": [wnid_of[c] for c in r["class_ids"]]} for r in part.to_pylist()]


@pytest.fixture()
def dataset(tmp_path, write_metadata, mapper):  # mapper: WordNet loaded once per session
    uids = write_metadata(tmp_path, CAPTIONS)
    return tmp_path, uids


def test_end_to_end_exact_outputs(dataset, capsys):
    root, uids = dataset
    assert main(["--root", str(root)]) == 0
    assert "5 classes from 15 distinct hashtags" in capsys.readouterr().out

    vocab = read_vocab(root / "vocab")  # every class has 2 samples: ties ordered by wnid
    assert [(r["class_id"], r["wnid"], r["name"], r["lemmas"], r["lexname"]) for r in vocab] == [
        (0, DOG, "dog", ["dog", "domestic_dog", "Canis_familiaris"], "noun.animal"),
        (1, GOLDEN, "golden retriever", ["golden_retriever"], "noun.animal"),
        (2, CAT, "cat", ["cat", "true_cat"], "noun.animal"),
        (3, BEAR, "brown bear", ["brown_bear", "bruin", "Ursus_arctos"], "noun.animal"),
        (4, BEACH, "beach", ["beach"], "noun.object"),
    ]
    assert [(r["count"], r["kept_count"]) for r in vocab] == [(2, 2)] * 5

    tags = {r["hashtag"]: r for r in pq.read_table(root / "vocab" / "hashtags.parquet").to_pylist()}
    assert set(tags) == {
        "dogs", "beach", "love", "GoldenRetriever", "dogsofinstagram", "goldenretriever", "cat",
        "tbt", "cats", "brownbear", "ursusarctos", "summer", "2019", "кошка", "sailboat",
    }  # fmt: skip
    assert tags["beach"]["count"] == 2 and tags["dogs"]["count"] == 1
    assert {t: r["reason"] for t, r in tags.items() if r["reason"]} == {
        "love": "stoplisted", "tbt": "stoplisted", "summer": "non_visual", "2019": "numeric",
        "кошка": "no_match", "sailboat": "below_min_count",
    }  # fmt: skip
    assert (tags["GoldenRetriever"]["canonical"], tags["GoldenRetriever"]["wnid"]) == (
        "golden_retriever",
        GOLDEN,
    )
    assert tags["sailboat"]["wnid"] == "n04128499"

    labels = pq.read_table(root / "labels" / "part-00000.parquet")
    assert labels.column_names == ["uid", "class_ids", "hashtags", "keep", "weight"]
    assert str(labels.schema.field("class_ids").type) == "list<element: int32>"
    assert str(labels.schema.field("weight").type) == "float"
    rows = {r["uid"]: r for r in label_rows(root)}
    assert [r["uid"] for r in labels.to_pylist()] == sorted(rows)
    expected = {
        0: ([0, 4], [DOG, BEACH], ["beach", "dogs"]),
        1: ([0, 1], [DOG, GOLDEN], ["GoldenRetriever", "dogsofinstagram"]),
        2: ([1], [GOLDEN], ["goldenretriever"]),
        3: ([2], [CAT], ["cat"]),
        4: ([2], [CAT], ["cats"]),
        8: ([3], [BEAR], ["brownbear"]),
        9: ([3], [BEAR], ["ursusarctos"]),
        11: ([4], [BEACH], ["beach"]),
    }
    assert {u: (r["class_ids"], r["wnids"], r["hashtags"]) for u, r in rows.items()} == {
        uids[i]: v for i, v in expected.items()
    }
    assert all(r["keep"] for r in rows.values())
    # every kept_count is 2, so every label weighs the same: all weights are exactly 1
    assert [r["weight"] for r in rows.values()] == pytest.approx([1.0] * 8)

    meta = json.loads((root / "vocab" / "meta.json").read_text())
    counts = meta["counts"]
    assert (counts["captions"], counts["captions_with_hashtag"]) == (13, 10)
    assert (counts["captions_with_label"], counts["samples_kept_after_cap"]) == (8, 8)
    assert counts["distinct_hashtags"] == 15
    assert (counts["classes_mapped"], counts["classes_after_min_count"]) == (6, 5)
    assert counts["classes_after_max_classes"] == 5
    assert counts["mean_labels_per_sample"] == 1.25
    assert counts["vocab_hash"] == vocab_hash([DOG, GOLDEN, CAT, BEAR, BEACH])
    assert meta["config"]["min_count"] == 2
    assert json.loads((root / "labels" / "meta.json").read_text())["counts"] == counts
    leftovers = [p.name for p in root.iterdir() if "tmp" in p.name or "old" in p.name]
    assert leftovers == []


def test_rerun_replaces_outputs_and_keeps_them_on_failure(dataset, capsys):
    root, _ = dataset
    assert main(["--root", str(root), "--max-classes", "2", "--cap", "1", "--seed", "3"]) == 0
    assert [r["wnid"] for r in read_vocab(root / "vocab")] == [DOG, GOLDEN]
    labels = label_rows(root)
    assert {w for r in labels for w in r["wnids"]} == {DOG, GOLDEN}
    kept = [r for r in labels if r["keep"]]
    assert sum(r["weight"] for r in kept) / len(kept) == pytest.approx(1.0, rel=1e-6)
    every_tag = ["--extra-stoplist", "dog", "golden_retriever", "cat", "brown_bear", "beach"]
    every_tag += ["ursus_arctos"]  # the stoplist holds tags, not synsets
    assert curate(["build-vocab", "--root", str(root), *every_tag, "sailboat"]) == 2
    assert "maps to a visual WordNet noun" in capsys.readouterr().err
    assert [r["wnid"] for r in read_vocab(root / "vocab")] == [DOG, GOLDEN]  # untouched


def test_missing_metadata_exits_2(tmp_path, capsys):
    assert curate(["build-vocab", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "curate ingest" in err and err.count("\n") == 1
    assert not (tmp_path / "vocab").exists() and not (tmp_path / "labels").exists()


@pytest.mark.parametrize(
    "argv", [["--min-count", "0"], ["--max-classes", "0"], ["--cap", "0"], ["--cap", "x"]]
)
def test_bad_options_exit_2(tmp_path, argv, capsys):
    assert curate(["build-vocab", "--root", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_options_defaults():
    opts = BuildVocabOptions(root="x")
    assert (opts.min_count, opts.max_classes, opts.cap, opts.seed) == (2, None, None, 0)


def test_hostile_captions_are_counted_not_fatal(tmp_path, write_metadata, capsys):
    """Replacement characters (what non-UTF-8 bytes become at ingest), 500 tags in one
    caption, 100 kB captions, other scripts, empty and null captions: each lands in a count."""
    many = " ".join(f"#tag{i:03d}x" for i in range(500))  # 500 distinct no_match tags
    captions = [
        "bad \ufffd\ufffd bytes #dog\ufffd",  # decoding errors replaced; `dog` still a tag
        many + " #dog",
        "y" * 100_000 + "#cat",  # `#` after a letter: not a tag
        "y" * 100_000 + " #cat",
        "#кошка #猫 #नमस्ते",
        "",
        None,
        "#cat #dog",
    ]
    uids = write_metadata(tmp_path, captions)
    assert main(["--root", str(tmp_path)]) == 0
    counts = json.loads((tmp_path / "vocab" / "meta.json").read_text())["counts"]
    assert (counts["captions"], counts["captions_with_hashtag"]) == (8, 5)
    assert counts["distinct_hashtags"] == 500 + 5  # dog, cat, кошка, 猫, नमस्ते
    assert counts["hashtags_by_reason"] == {"label": 2, "no_match": 503}
    labels = {r["uid"]: r["wnids"] for r in label_rows(tmp_path)}
    assert labels == {uids[0]: [DOG], uids[1]: [DOG], uids[3]: [CAT], uids[7]: [DOG, CAT]}


def test_source_caption_and_both(tmp_path, write_metadata, mapper):
    """Nouns of the caption text (corpora without hashtags) through the same mapper."""
    captions = [
        "Two dogs playing on the beach at sunset",  # 0: dog, beach, sunset (sky)
        "A dog and a cat",  # 1
        "cats sleeping #beach #tbt",  # 2: the word `beach` is cut out with its `#`
        "Happy geese http://x.com/a.jpg",  # 3: geese -> goose; happy stoplisted; url words
        None,
    ]
    uids = write_metadata(tmp_path, captions)
    assert main(["--root", str(tmp_path), "--source", "caption", "--min-count", "1"]) == 0
    tags = pq.read_table(tmp_path / "vocab" / "hashtags.parquet").to_pylist()
    by_word = {(r["hashtag"], r["kind"]): r for r in tags}
    assert {k for _, k in by_word} == {"word"}
    # stop words and words under 3 letters never reach the mapper
    assert set(w for w, _ in by_word) == {
        "dogs", "playing", "beach", "sunset", "dog", "cat", "cats", "sleeping", "happy", "geese",
    }  # fmt: skip
    reasons = {w: r["reason"] for (w, _), r in by_word.items()}
    assert reasons["happy"] == "stoplisted" and reasons["playing"] == "non_visual"
    assert reasons["sleeping"] == "non_visual"
    assert (by_word[("geese", "word")]["canonical"], reasons["geese"]) == ("goose", None)
    assert by_word[("dog", "word")]["count"] == 1 and by_word[("dogs", "word")]["count"] == 1
    labels = {r["uid"]: (r["wnids"], r["hashtags"]) for r in label_rows(tmp_path)}
    goose, sunset = "n01855672", mapper.map("sunset").wnid
    # classes by count, then wnid: dog 2, cat 2, goose 1, beach 1, sunset 1
    assert [r["wnid"] for r in read_vocab(tmp_path / "vocab")] == [DOG, CAT, goose, BEACH, sunset]
    assert labels[uids[0]] == ([DOG, BEACH, sunset], ["beach", "dogs", "sunset"])
    assert labels[uids[1]] == ([DOG, CAT], ["cat", "dog"])
    assert labels[uids[2]] == ([CAT], ["cats"])
    assert labels[uids[3]] == ([goose], ["geese"])

    assert main(["--root", str(tmp_path), "--source", "both", "--min-count", "1"]) == 0
    tags = pq.read_table(tmp_path / "vocab" / "hashtags.parquet").to_pylist()
    kinds = {(r["hashtag"], r["kind"]) for r in tags}
    assert {("beach", "hashtag"), ("tbt", "hashtag"), ("beach", "word")} <= kinds
    labels = {r["uid"]: (r["wnids"], r["hashtags"]) for r in label_rows(tmp_path)}
    assert set(labels[uids[2]][0]) == {CAT, BEACH}
    assert sorted(labels[uids[2]][1]) == ["beach", "cats"]  # the #beach tag, the word cats


def test_context_senses_choose_per_caption(tmp_path, write_metadata, mapper):
    bird, machine = "n02012849", "n03126707"  # crane.n.05, crane.n.04
    captions = [
        "#crane #birdwatching",  # 0: `bird` from the segmentation of birdwatching
        "#crane #construction",  # 1: artifact (construction.n.04's hypernym): the machine
        "#crane",  # 2: no context: the sense rule's choice, the bird
        "#crane #zzzqx",  # 3: a context word in no signature: the rule's choice
        "#dog #birdwatching",  # 4: dog is ambiguous too, but `bird` speaks for none
    ]
    uids = write_metadata(tmp_path, captions)
    assert mapper.map("crane").wnid == bird
    assert (mapper.synset(bird).name(), mapper.synset(machine).name()) == (
        "crane.n.05",
        "crane.n.04",
    )
    assert main(["--root", str(tmp_path), "--min-count", "1", "--context-senses"]) == 0

    def labels():
        return {r["uid"]: r["wnids"] for r in label_rows(tmp_path)}

    got = labels()
    assert [got[u] for u in uids] == [[bird], [machine], [bird], [bird], [DOG]]
    meta = json.loads((tmp_path / "vocab" / "meta.json").read_text())["counts"]
    assert meta["senses_moved_by_context"] == 1
    assert meta["ambiguous_hashtags"] >= 2  # crane and dog
    vocab = {r["wnid"]: r["count"] for r in read_vocab(tmp_path / "vocab")}
    assert vocab[bird] == 3 and vocab[machine] == 1

    assert main(["--root", str(tmp_path), "--min-count", "1"]) == 0  # the rule alone
    assert [labels()[u] for u in uids] == [[bird], [bird], [bird], [bird], [DOG]]


@pytest.mark.parametrize(
    ("argv", "engine"),
    [
        ([], "arrays"),
        (["--engine", "sql"], "sql"),
        (["--source", "caption"], "sql"),  # caption words: the SQL path only
        (["--source", "both"], "sql"),
        (["--context-senses"], "sql"),
    ],
)
def test_meta_records_the_engine_that_ran(dataset, argv, engine, monkeypatch):
    from labeling import build_vocab

    ran: list[str] = []
    for name, path in (("_build_from_arrays", "arrays"), ("_build_in_sql", "sql")):
        real = getattr(build_vocab, name)
        monkeypatch.setattr(
            build_vocab, name, lambda *a, real=real, path=path: ran.append(path) or real(*a)
        )
    root, _ = dataset
    assert main(["--root", str(root), "--min-count", "1", *argv]) == 0
    assert ran == [engine]
    for folder in ("vocab", "labels"):
        meta = json.loads((root / folder / "meta.json").read_text())
        assert meta["config"]["engine"] == engine
