"""`--sense-map FILE`: the user's word -> wnid decisions, over the sense rule (real WordNet)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from curation.cli import main as curate
from curation.errors import UsageError
from labeling.build_vocab import main
from labeling.mapper import HashtagMapper, UnknownWnid, separator_free
from labeling.sense_map import read_sense_map, sense_map_digest
from labeling.vocab_file import read_vocab


def wnid(wn, name: str) -> str:
    return f"n{wn.synset(name).offset():08d}"


@pytest.fixture(scope="module")
def ids(wn):
    names = {
        "motor_scooter": "motor_scooter.n.01", "scoter": "scoter.n.01",
        "display": "monitor.n.04", "lizard": "monitor.n.07", "person": "person.n.01",
        "happiness": "happiness.n.01", "bird": "crane.n.05", "machine": "crane.n.04",
        "dog": "dog.n.01",
    }  # fmt: skip
    return {k: wnid(wn, v) for k, v in names.items()}


def wnids_by_uid(root) -> dict[str, list[str]]:
    """uid -> the wnids of its labels, sorted (labels/part-*.parquet, vocab.parquet)."""
    wnid_of = [r["wnid"] for r in read_vocab(root / "vocab")]
    parts = sorted(str(p) for p in (root / "labels").glob("part-*.parquet"))
    rows = pq.ParquetDataset(parts).read().to_pylist()
    return {r["uid"]: sorted(wnid_of[c] for c in r["class_ids"]) for r in rows}


def write(tmp_path, text: str):
    path = tmp_path / "senses.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_file_format_comments_separators_and_multiword_words(tmp_path):
    path = write(
        tmp_path,
        "# word\twnid\n"
        "scooter\tn03791053   # motor_scooter.n.01\n"
        "\n"
        "  Golden Retriever   n02099601\n"
        "golden_retriever n02099601\n",  # the same key and wnid again: allowed
    )
    read = read_sense_map(path)
    assert read.wnids == {"scooter": "n03791053", "goldenretriever": "n02099601"}
    assert read.where("goldenretriever") == f"--sense-map {path}, line 4: 'Golden Retriever'"
    same = write(tmp_path, "goldenretriever n02099601\nscooter n03791053\n")
    assert sense_map_digest(read_sense_map(same).wnids) == sense_map_digest(read.wnids)
    other = write(tmp_path, "scooter n01853498\n")
    assert sense_map_digest(read_sense_map(other).wnids) != sense_map_digest(read.wnids)
    # a word may keep its `#`; only `#` then a space (or the line's end) starts a comment
    tagged = write(tmp_path, "#selfie n00007846 #\n#Scooter\tn03791053 # the vehicle\n")
    assert read_sense_map(tagged).wnids == {"selfie": "n00007846", "scooter": "n03791053"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("scooter\n", "line 1: expected a word and a wnid, got 'scooter'"),
        ("dog n02084071\nscooter 03791053\n", "line 2: '03791053' is no noun wnid"),
        ("scooter v01835496\n", "line 1: 'v01835496' is no noun wnid"),
        ("scooter n\u0660\u0663791053\n", "is no noun wnid"),  # digits, but not ASCII ones
        ("scooter n03791053 #motor_scooter\n", "line 1: '#motor_scooter' is no noun wnid"),
        ("--- n02084071\n", "line 1: '---' has no letter or digit"),
        ("scooter n03791053\n\nScooter n01853498\n",
         "line 3: 'Scooter' is mapped to n03791053 on line 1"),
    ],
)  # fmt: skip
def test_bad_lines_name_the_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as err:
        read_sense_map(path)
    assert str(err.value).startswith(f"--sense-map {path}")
    assert message in str(err.value)


def test_the_documented_example_reads_and_names_what_its_comments_say(tmp_path, wn):
    import labeling.sense_map

    doc = labeling.sense_map.__doc__
    example = "\n".join(line[4:] for line in doc.splitlines() if line.startswith("    "))
    entries = read_sense_map(write(tmp_path, example)).wnids
    assert len(entries) == 5
    for line in example.splitlines()[1:]:  # `word  wnid  # synset.name`
        word, comment = line.split("#")[0].rsplit(None, 1)[0], line.partition("# ")[2]
        name = comment.split(",")[0].split(" ")[0]
        if name:
            assert entries[separator_free(word)] == wnid(wn, name), line
    assert entries["goldenretriever"] == wnid(wn, "golden_retriever.n.01")


def test_missing_or_undecodable_file(tmp_path):
    with pytest.raises(UsageError, match="nope.tsv: cannot read it"):
        read_sense_map(tmp_path / "nope.tsv")
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("caf\xe9 n03791053\n".encode("latin-1"))
    with pytest.raises(UsageError, match="latin1.tsv: cannot read it .*utf-8"):
        read_sense_map(latin1)


def test_mapper_follows_the_map_for_every_form_of_the_word(wn, mapper, ids):
    assert mapper.map("scooter").wnid == ids["scoter"]  # the rule's choice: the duck
    mapped = HashtagMapper(
        wn, sense_map={"Scooter": ids["motor_scooter"], "selfie": ids["person"],
                       "happy face": ids["happiness"], "love": ids["person"]},
    )  # fmt: skip
    for tag in ("scooter", "#Scooters", "SCOOTER", "RedScooter", "red_scooters"):
        got = mapped.map(tag)
        assert (got.canonical, got.wnid, got.reason) == ("scooter", ids["motor_scooter"], None)
        assert got.lexname == "noun.artifact" and mapped.maps_sense(got.canonical)
    # a tag that is no WordNet lemma: the whole tag's words, joined
    assert (mapped.map("Selfie").wnid, mapped.map("Selfie").reason) == (ids["person"], None)
    assert mapped.map("selfies").reason == "no_match"  # the map names words, not inflections
    # the visual filter still applies; the stoplist still comes first
    assert (mapped.map("HappyFace").wnid, mapped.map("HappyFace").reason) == (
        ids["happiness"], "non_visual",
    )  # fmt: skip
    assert mapped.map("love").reason == "stoplisted"
    assert mapper.map("InstaLove").reason == "stoplisted"  # the rules resolve it to `love`
    insta = HashtagMapper(wn, sense_map={"instalove": ids["person"]})
    assert (insta.map("InstaLove").wnid, insta.map("InstaLove").reason) == (ids["person"], None)
    # caption words take the map too; words it does not name are untouched
    assert mapped.map_word("scooters").wnid == ids["motor_scooter"]
    assert mapped.map_word("selfie").wnid == ids["person"]
    assert mapped.map("monitor") == mapper.map("monitor")
    assert not mapped.maps_sense("monitor")


@pytest.mark.parametrize("bad", ["n99999999", "n\u0660\u0663791053", "03791053"])
def test_mapper_refuses_a_wnid_wordnet_lacks(wn, bad):
    with pytest.raises(UnknownWnid, match=f"'scooter' -> {bad}: no WordNet 3.0 noun synset"):
        HashtagMapper(wn, sense_map={"scooter": bad})


CAPTIONS = [
    "#scooter in the park",  # 0
    "#Scooters #monitor",  # 1
    "#selfie",  # 2
    "#monitor on my desk",  # 3
    "#crane #birdwatching",  # 4: the context says bird; the map says machine
    "#dog",  # 5
]


@pytest.mark.parametrize("argv", [[], ["--engine", "sql"], ["--context-senses"]])
def test_build_vocab_with_a_sense_map(tmp_path, write_metadata, ids, argv):
    uids = write_metadata(tmp_path, CAPTIONS)
    path = write(
        tmp_path,
        f"scooter {ids['motor_scooter']}\nmonitor {ids['display']}\n"
        f"selfie {ids['person']}\ncrane {ids['machine']}\n",
    )
    assert main(["--root", str(tmp_path), "--min-count", "1", "--sense-map", str(path), *argv]) == 0
    got = wnids_by_uid(tmp_path)
    assert [got[u] for u in uids] == [
        [ids["motor_scooter"]],
        sorted([ids["motor_scooter"], ids["display"]]),
        [ids["person"]],
        [ids["display"]],
        [ids["machine"]],
        [ids["dog"]],
    ]
    tags = pq.read_table(tmp_path / "vocab" / "hashtags.parquet").to_pylist()
    tags = {r["hashtag"]: r for r in tags}
    scooters = tags["Scooters"]
    assert (scooters["canonical"], scooters["wnid"]) == ("scooter", ids["motor_scooter"])
    assert tags["selfie"]["reason"] is None
    for folder in ("vocab", "labels"):
        meta = json.loads((tmp_path / folder / "meta.json").read_text())
        assert meta["config"]["sense_map"] == str(path)
        counts = meta["counts"]
        assert counts["sense_map_words"] == 4
        assert counts["sense_map_sha256"] == sense_map_digest(read_sense_map(path).wnids)
    if "--context-senses" in argv:
        assert meta["counts"]["senses_moved_by_context"] == 0  # crane is the map's to decide

    assert main(["--root", str(tmp_path), "--min-count", "1", *argv]) == 0  # without the map
    assert wnids_by_uid(tmp_path)[uids[0]] == [ids["scoter"]]
    counts = json.loads((tmp_path / "vocab" / "meta.json").read_text())["counts"]
    assert "sense_map_words" not in counts


@pytest.mark.parametrize("engine", ["arrays", "sql"])
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dog n02084071\nGolden Retriever n99999999\n",
         "line 2: 'Golden Retriever' -> n99999999: no WordNet 3.0 noun synset has this wnid"),
        ("scooter\n", "line 1: expected a word and a wnid"),
    ],
)  # fmt: skip
def test_a_bad_map_exits_2_and_keeps_the_outputs(
    tmp_path, write_metadata, capsys, text, message, engine
):
    write_metadata(tmp_path, CAPTIONS)
    assert main(["--root", str(tmp_path), "--min-count", "1"]) == 0
    before = (tmp_path / "vocab" / "vocab.parquet").read_bytes()
    path = write(tmp_path, text)
    argv = ["build-vocab", "--root", str(tmp_path), "--sense-map", str(path), "--engine", engine]
    assert curate(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --sense-map {path}") and message in err
    assert err.count("\n") == 1
    assert (tmp_path / "vocab" / "vocab.parquet").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name or "old" in p.name] == []


def test_a_mapped_tag_gives_context_from_the_mapped_synset(wn, mapper, ids):
    from labeling.context import context_words

    mapped = HashtagMapper(wn, sense_map={"scooter": ids["motor_scooter"]})
    words = context_words(mapped, "scooter", mapped.map("scooter"))
    assert {"scooter", "wheeled", "vehicle"} <= words  # motor_scooter.n.01 is a wheeled_vehicle
    every_sense = context_words(mapper, "scooter", mapper.map("scooter"))
    assert {"sea", "duck"} <= every_sense  # the rule's words: scoter.n.01 is a sea_duck ...
    assert not {"sea", "duck"} & words  # ... which the map's scooter is not
