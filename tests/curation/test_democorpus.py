import hashlib
import re
from collections import Counter

import pyarrow.parquet as pq
import pytest
from PIL import Image, UnidentifiedImageError

from curation.democorpus import DEMO_KINDS, KIND_TAGS, META_TAGS, generate_corpus

N = 160


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo") / "corpus"
    table = generate_corpus(folder, n_images=N, seed=0)
    return folder, table, pq.read_table(table).to_pylist()


def test_same_seed_same_bytes_other_seed_other_bytes(corpus, tmp_path):
    folder, _, _ = corpus
    again = generate_corpus(tmp_path / "again", n_images=N, seed=0).parent
    other = generate_corpus(tmp_path / "other", n_images=N, seed=1).parent
    assert digest(again) == digest(folder)
    assert digest(other) != digest(folder)
    assert not list(tmp_path.glob("*.tmp-*"))  # staged, then renamed


def test_counts_and_files(corpus):
    folder, table, rows = corpus
    assert table == folder / "captions.parquet"
    assert len(rows) == N
    assert len({r["url"] for r in rows}) == N
    assert set(pq.read_schema(table).names) >= {"url", "caption", "kinds", "tags", "status"}
    files = {p.relative_to(folder).as_posix() for p in (folder / "images").iterdir()}
    assert files == {r["url"] for r in rows if r["status"] != "missing"}
    assert {r["status"] for r in rows} <= {"ok", "missing", "corrupt"}
    assert Counter(r["status"] for r in rows)["ok"] >= N * 0.95


def test_ok_images_decode_and_corrupt_ones_do_not(tmp_path):
    folder = generate_corpus(tmp_path / "c", n_images=600, seed=3).parent
    rows = pq.read_table(folder / "captions.parquet").to_pylist()
    by_status = Counter(r["status"] for r in rows)
    assert by_status["missing"] >= 1 and by_status["corrupt"] >= 1  # seed 3 has both
    for r in rows:
        if r["status"] == "ok":
            with Image.open(folder / r["url"]) as im:
                im.load()
                assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (64, 64))
        elif r["status"] == "corrupt":
            with pytest.raises(UnidentifiedImageError):
                Image.open(folder / r["url"]).load()


def test_every_caption_tags_the_kinds_it_shows(corpus):
    _, _, rows = corpus
    untagged = 0
    for r in rows:
        kinds, tags = r["kinds"], r["tags"]
        assert 1 <= len(kinds) <= 2 and set(kinds) <= set(DEMO_KINDS)
        in_caption = re.findall(r"(?<![\w/])#(\w+)", r["caption"])
        assert in_caption == tags  # the table's tags are exactly the caption's hashtags
        if not tags:
            untagged += 1
            continue
        for kind in kinds:
            assert {t for _, t in KIND_TAGS[kind]} & set(tags), (kind, r["caption"])
        assert len(tags) == len(r["tag_forms"])
    assert 0 < untagged < N * 0.2
    assert any(len(r["kinds"]) == 2 for r in rows)
    assert len({k for r in rows for k in r["kinds"]}) == len(DEMO_KINDS)


def test_tag_mix_has_every_web_form(corpus):
    _, _, rows = corpus
    forms = Counter(f for r in rows for f in r["tag_forms"])
    for form in ("singular", "plural", "camel", "concat", "meta", "context"):
        assert forms[form] > 0, form
    tags = {t for r in rows for t in r["tags"]}
    assert {"SailBoat", "CoffeeCup", "AlarmClock"} & tags
    assert set(META_TAGS) & tags
    assert any(t[0].isupper() and any(c.isupper() for c in t[1:]) for t in tags)  # CamelCase
    url_fragments = [w for r in rows for w in r["caption"].split() if "/" in w and "#" in w]
    assert url_fragments  # "example.com/page#top" is noise, not a hashtag


def test_kinds_are_wordnet_nouns():
    from curation.errors import UsageError
    from labeling.wordnet import wordnet

    try:
        wn = wordnet()
    except UsageError:
        pytest.skip("WordNet 3.0 not installed")
    for kind, lemma in DEMO_KINDS.items():
        assert wn.synsets(lemma, pos="n"), kind
