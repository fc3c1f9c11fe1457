"""Hashtags: extraction from captions (set-wise, in DuckDB) and the word form of one tag.

Extraction contract. A hashtag is `#` followed by one or more Unicode letters, combining
marks, digits or underscores (`[\\pL\\pM\\pN_]+`, RE2 syntax, so DuckDB runs it over every
caption). The `#` must start the caption or follow a character that is none of those and
not `/` or `&`; that rules out URL fragments (`http://x.com/#top`, `page#anchor`) and HTML
entities (`&#39;`), while `##tag` still yields `tag` and `🐶#dog!` yields `dog`. Tags are
kept as written (case included: CamelCase splitting needs it) and de-duplicated per caption.

    CREATE TABLE caption_tags (uid VARCHAR, tags VARCHAR[])  -- captions with >= 1 tag,
                                                           -- each tag once per caption

Word form contract (`split_words`): NFKC, then split at `_`, `-`, letter/digit boundaries
and CamelCase boundaries (`GoldenRetriever` -> golden, retriever; `NYCPhotos` -> nyc,
photos), casefold each word, drop pure-digit words. A tag with no letters at all is
`numeric`; a tag longer than `MAX_TAG_CHARS` after NFKC is `too_long`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from curation.sql import sql_literal

# The character before `#` must not be a tag character, `/` (URL fragment) or `&` (entity).
HASHTAG_RE2 = r"(?:^|[^\pL\pM\pN_/&])#([\pL\pM\pN_]+)"
# The same rule, 2-3x faster in RE2: match any one character (or none) before `#`, then
# check that character in SQL. Negated Unicode classes at every position are what is slow.
_CANDIDATE_RE2 = r"(?s)(?:^|.)#[\pL\pM\pN_]+"
_NOT_BEFORE_RE2 = r"[\pL\pM\pN_/&]"


def hashtags_sql(caption: str) -> str:
    """A DuckDB expression: the list of hashtags in `caption` (an SQL expression), in order.

    A candidate `x` is `#tag`, `##tag` or `?#tag` (`?` the character before `#`); it is a
    hashtag unless `?` is a tag character, `/` or `&`. Equals `HASHTAG_RE2`'s group 1.
    """
    return (
        f"list_filter(list_transform(regexp_extract_all({caption}, '{_CANDIDATE_RE2}', 0), "
        f"lambda x: CASE WHEN x[1] <> '#' AND regexp_matches(x[1], '{_NOT_BEFORE_RE2}') "
        f"THEN NULL ELSE ltrim(x[2:], '#') END), lambda x: x IS NOT NULL)"
    )


MAX_TAG_CHARS = 40  # longer tags are sentences glued together, not names of things


# Caption words (`--source caption|both`): runs of 3+ letters, lowercased, not these.
MIN_WORD_CHARS = 3
STOPWORDS = frozenset("""
the and for with that this from are was were has have had its his her hers their our your
you they them she him who whom what when where which why how not but all any can will just
into onto over under out off about after before very more most some such than then there
here these those also only own same both each few other per via one two three yes get got
new now too our ours yourself itself their theirs been being does did doing would could
should may might must shall while during until upon within without between through again
once http https www com org net html jpg jpeg png gif amp quot
""".split())  # fmt: skip
WORD_MARK = " "  # a caption word is stored as " word": no hashtag contains a space
SOURCES = ("hashtags", "caption", "both")


def words_sql(caption: str) -> str:
    """A DuckDB expression: the caption's words (hashtags cut out first), each `WORD_MARK`
    + the lowercased word, stop words and words under `MIN_WORD_CHARS` letters dropped."""
    stop = " " + " ".join(sorted(STOPWORDS)) + " "
    return (
        f"list_transform(list_filter(regexp_extract_all(lower(regexp_replace({caption}, "
        f"'#[\\pL\\pM\\pN_]+', ' ', 'g')), '[\\pL\\pM]{{{MIN_WORD_CHARS},}}'), "
        f"lambda w: NOT contains('{stop}', ' ' || w || ' ')), lambda w: '{WORD_MARK}' || w)"
    )


def kind_of(tag: str) -> str:
    """`word` for a caption word (stored with `WORD_MARK`), else `hashtag`."""
    return "word" if tag.startswith(WORD_MARK) else "hashtag"


def create_caption_tags(
    con: Any, metadata_glob: str, table: str = "caption_tags", source: str = "hashtags"
) -> None:
    """Create `table(uid VARCHAR, tags VARCHAR[])`: the distinct hashtags (as written) of each
    caption that has one, in one streaming pass (no DISTINCT over (uid, tag) rows).
    `source` `caption` takes the caption's words instead (`words_sql`, stored as " word"),
    `both` takes both.

    Reads `uid` and `caption` of `metadata_glob` (parquet); with `hashtags`, captions
    without `#` skip the regular expression. Null captions yield no row.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    expression = {
        "hashtags": hashtags_sql("caption"),
        "caption": words_sql("caption"),
        "both": f"list_concat({hashtags_sql('caption')}, {words_sql('caption')})",
    }[source]
    only_tagged = "AND contains(caption, '#')" if source == "hashtags" else ""
    # Two statements on purpose: with the filter in the same query DuckDB pushes
    # `len(tags) > 0` into the scan and evaluates the regular expression twice.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table}_raw AS
        SELECT uid, {expression} AS tags
        FROM read_parquet({sql_literal(metadata_glob)})
        WHERE caption IS NOT NULL {only_tagged}
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT uid, list_distinct(tags) AS tags FROM {table}_raw WHERE len(tags) > 0;
        DROP TABLE {table}_raw
        """
    )


def extract_hashtags(captions: list[str | None]) -> list[list[str]]:
    """The hashtags of each caption, de-duplicated, in order of first appearance.

    Runs the same DuckDB expression (`hashtags_sql`) as the set-wise path does, so the
    two cannot drift apart. For tests, debugging and small inputs.
    """
    import duckdb

    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT {hashtags_sql('c')} FROM unnest(?::VARCHAR[]) t(c)",
            [list(captions)],
        ).fetchall()
    finally:
        con.close()
    return [list(dict.fromkeys(tags or [])) for (tags,) in rows]


# The boundary rules below on ASCII letters, digits and `_` only (where NFKC is the identity
# and casefold is lower): `_` separates; a run of capitals before a capital and a lower-case
# letter is a word (`NYCPhotos`: NYC, Photos); one capital may lead lower-case letters; the
# rest are runs of capitals, of lower-case letters, of digits. Tested equal to the loop.
_ASCII_WORD = re.compile(r"[A-Za-z0-9_]+")
_ASCII_PIECE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


def _char_kind(ch: str) -> str:
    """'U' upper, 'L' lower (and caseless letters and marks), 'D' digit, 'S' separator."""
    if ch in "_-":
        return "S"
    if ch.isdigit() or unicodedata.category(ch) == "Nd":
        return "D"
    if ch.isupper():
        return "U"
    return "L"


def split_words(tag: str) -> list[str]:
    """Casefolded words of a tag as written, digits and separators dropped.

    >>> split_words("GoldenRetriever"), split_words("golden_retriever"), split_words("Summer2019")
    (['golden', 'retriever'], ['golden', 'retriever'], ['summer'])
    """
    bare = tag.lstrip("#")
    if bare.isascii() and bare.isalpha() and bare.islower():
        return [bare]  # most tags: NFKC and casefold are the identity, no boundary inside
    if _ASCII_WORD.fullmatch(bare):  # `GoldenRetriever`, `summer_2019`: the rules as a regex
        return [w.lower() for w in _ASCII_PIECE.findall(bare) if not w.isdigit()]
    text = unicodedata.normalize("NFKC", tag).lstrip("#")
    words: list[str] = []
    current = ""
    kinds = [_char_kind(ch) for ch in text]
    for i, (ch, kind) in enumerate(zip(text, kinds, strict=True)):
        prev = kinds[i - 1] if i else "S"
        nxt = kinds[i + 1] if i + 1 < len(kinds) else "S"
        boundary = (
            kind == "S"
            or prev == "S"
            or (prev == "D") != (kind == "D")  # letters meet digits
            or (prev == "L" and kind == "U")  # camelCase
            or (prev == "U" and kind == "U" and nxt == "L")  # NYCPhotos: the P starts a word
        )
        if boundary and current:
            words.append(current)
            current = ""
        if kind != "S":
            current += ch
    if current:
        words.append(current)
    return [w.casefold() for w in words if not all(_char_kind(c) == "D" for c in w)]


def normalized(tag: str) -> str:
    """NFKC + casefold of the whole tag: the key for stoplists and reporting."""
    return unicodedata.normalize("NFKC", tag).lstrip("#").casefold()


def is_too_long(tag: str) -> bool:
    return len(unicodedata.normalize("NFKC", tag)) > MAX_TAG_CHARS


def is_numeric(tag: str) -> bool:
    """True when the tag has no letters: `2019`, `1_000`, `٢٠٢٠`."""
    return not split_words(tag)
