from __future__ import annotations

import duckdb
import pytest

from labeling.hashtags import (
    MAX_TAG_CHARS,
    create_caption_tags,
    extract_hashtags,
    is_numeric,
    is_too_long,
    split_words,
)


@pytest.mark.parametrize(
    ("caption", "tags"),
    [
        ("#dog on the #beach", ["dog", "beach"]),
        ("see http://x.com/#top and page#anchor", []),  # URL fragments are not tags
        ("it&#39;s a #cat", ["cat"]),  # HTML entity
        ("&#x27;quoted&#x27;", []),
        ("##tag", ["tag"]),
        ("#dog! #cat, #sun. (#tree)", ["dog", "cat", "sun", "tree"]),  # trailing punctuation
        ("🐶#dog🐶 😍#cat", ["dog", "cat"]),  # emoji on both sides
        ("#кошка #猫 #नमस्ते #ねこ", ["кошка", "猫", "नमस्ते", "ねこ"]),  # non-Latin, marks kept
        ("#dog #dog #Dog", ["dog", "Dog"]),  # de-duplicated per caption, case kept
        ("#golden_retriever #2019", ["golden_retriever", "2019"]),
        ("a#b #c#d", ["c"]),  # '#' after a word character is not a tag
        ("# alone, #", []),
        ("", []),
        (None, []),
    ],
)
def test_extract_hashtags_edge_cases(caption, tags):
    assert extract_hashtags([caption]) == [tags]


def test_split_words_camel_underscore_digits():
    assert split_words("GoldenRetriever") == ["golden", "retriever"]
    assert split_words("golden_retriever") == ["golden", "retriever"]
    assert split_words("golden-retriever") == ["golden", "retriever"]
    assert split_words("NYCPhotos") == ["nyc", "photos"]
    assert split_words("Summer2019") == ["summer"]
    assert split_words("#ＤＯＧ") == ["dog"]  # NFKC folds full-width letters
    assert split_words("猫Cat") == ["猫", "cat"]
    assert split_words("2019") == []


def test_numeric_and_too_long():
    assert is_numeric("2019") and is_numeric("1_000") and is_numeric("٢٠٢٠")
    assert not is_numeric("summer2019")
    assert not is_too_long("a" * MAX_TAG_CHARS)
    assert is_too_long("a" * (MAX_TAG_CHARS + 1))


def test_caption_tags_table_counts_one_per_caption(tmp_path, write_metadata):
    captions = ["#dog #dog #Dog", "#dog", None, "", "x" * 100_000 + " #cat", "no tags"]
    uids = write_metadata(tmp_path, captions)
    con = duckdb.connect()
    create_caption_tags(con, str(tmp_path / "metadata" / "*.parquet"))
    rows = sorted(con.execute("SELECT uid, unnest(tags) FROM caption_tags").fetchall())
    assert con.execute("SELECT count(*) FROM caption_tags").fetchone()[0] == 3  # tagged only
    assert rows == sorted([(uids[0], "dog"), (uids[0], "Dog"), (uids[1], "dog"), (uids[4], "cat")])


def test_fast_expression_equals_the_reference_pattern():
    """hashtags_sql (what runs) == HASHTAG_RE2 group 1 (the stated rule), on hostile text."""
    import random

    from labeling.hashtags import HASHTAG_RE2, hashtags_sql

    rng = random.Random(0)
    alphabet = "#a_B9 /&;.é猫\u0301🐶\n#"
    captions = ["".join(rng.choices(alphabet, k=rng.randint(0, 30))) for _ in range(3000)]
    captions += ["##tag", "###x", "a#b #c#d", "&#39;#ok", "\n#nl", "#", "x/#y", "é#z"]
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT regexp_extract_all(c, '{HASHTAG_RE2}', 1), {hashtags_sql('c')} "
        "FROM unnest(?::VARCHAR[]) WITH ORDINALITY t(c, n) ORDER BY n",
        [captions],
    ).fetchall()
    assert sum(len(a) for a, _ in rows) > 1000  # the text does hold many hashtags
    assert [a for a, _ in rows] == [b for _, b in rows]


def test_ascii_fast_path_equals_the_character_loop():
    """Tags of ASCII letters, digits and `_` are split by a regex; a trailing `-` (a
    separator: no word more or less) sends the same tag through the character loop."""
    import random

    rng = random.Random(5)
    tags = ["".join(rng.choices("aAbBzZ09_", k=rng.randint(1, 12))) for _ in range(20_000)]
    tags += ["NYCPhotos", "aBCd", "ABc", "iPhone12Pro", "#Summer_2019", "X", "_a_", "a1b2"]
    for tag in tags:
        assert split_words(tag) == split_words(tag + "-"), tag
    assert split_words("NYCPhotos") == ["nyc", "photos"]
    assert split_words("aBCd") == ["a", "b", "cd"] and split_words("iPhone12Pro") == [
        "i",
        "phone",
        "pro",
    ]
    assert sum(len(split_words(t)) > 1 for t in tags) > 10_000  # most draws do split
