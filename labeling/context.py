"""The context rule in `curate build-vocab --context-senses`: set-wise, per (caption, tag).

`labeling.senses.choose_in_context` decides for one caption; this module applies the same
rule to every caption at once in DuckDB. Only tags that are *ambiguous* take part: the tag
became a label candidate (reason None), the sense map (`--sense-map`) does not decide it,
and its lemma has two or more visual candidate senses (`senses.visual_candidates`). Python
runs once per distinct tag, never per caption:

    sense_candidates (tag, cand, wnid)   cand 0..n-1, in the sense rule's order
    sense_words      (tag, cand, word)   the candidate's `senses.signature`
    tag_words        (tag, word)         the words a tag contributes to a caption's context:
                                         its split words, the pieces of its segmentation
                                         (`birdwatching` -> bird, watching), the words of
                                         its lemma and of the direct hypernyms of every
                                         noun sense of that lemma (`construction` ->
                                         artifact, ...), of the mapped synset only when
                                         the sense map decides the tag; 3+ letters,
                                         casefolded

A caption's context for one of its ambiguous tags is the union of `tag_words` of its
*other* tags (with `--source caption|both` its words are tags too, so they count). Per
(caption, tag), each candidate scores the number of distinct context words in its
signature; the best candidate wins when its score is positive and strictly above the
second's, else the sense rule's choice stays (as in `choose_in_context`):

    sense_override (uid, tag, wnid)      only where the context changed the sense

`#crane #birdwatching` -> crane.n.05 (the bird: `bird` is in its signature),
`#crane #construction` -> crane.n.04 (the machine: `artifact`, a hypernym word of
construction.n.04 "a thing constructed", is in its signature).
"""

from __future__ import annotations

from typing import Any

from labeling.hashtags import WORD_MARK, kind_of, split_words
from labeling.mapper import HashtagMapper, TagMapping
from labeling.senses import signature

MIN_CONTEXT_CHARS = 3


def context_words(mapper: HashtagMapper, tag: str, mapping: TagMapping) -> set[str]:
    """The words `tag` adds to its caption's context (module docstring)."""
    if kind_of(tag) == "word":
        words = [tag[len(WORD_MARK) :].casefold()]
    else:
        words = split_words(tag)
        for word in list(words):
            words += mapper.segment(word) or []
    words += mapping.canonical.split("_")
    if mapping.wnid is not None:  # and what its noun lemma is a kind of, in any sense
        mapped = mapping.wnid if mapper.maps_sense(mapping.canonical) else None
        words += mapper.hypernym_words(mapping.canonical, mapped)  # or in the sense map's
    return {w for w in words if len(w) >= MIN_CONTEXT_CHARS and w.isalpha()}


def create_context_tables(
    con: Any, mapper: HashtagMapper, tags: list[str], mapped: list[TagMapping]
) -> dict[str, int]:
    """Create `sense_candidates`, `sense_words` and `tag_words` for the distinct `tags`."""
    import pyarrow as pa

    cand_rows: dict[str, list] = {"tag": [], "cand": [], "wnid": []}
    word_rows: dict[str, list] = {"tag": [], "cand": [], "word": []}
    tag_rows: dict[str, list] = {"tag": [], "word": []}
    for tag, mapping in zip(tags, mapped, strict=True):
        for word in sorted(context_words(mapper, tag, mapping)):
            tag_rows["tag"].append(tag)
            tag_rows["word"].append(word)
        if mapping.reason is not None or mapper.maps_sense(mapping.canonical):
            continue  # a tag the sense map decides keeps its class in every caption
        candidates = mapper.visual_senses(mapping.canonical)
        if len(candidates) < 2:
            continue
        for cand, record in enumerate(candidates):
            cand_rows["tag"].append(tag)
            cand_rows["cand"].append(cand)
            cand_rows["wnid"].append(record.wnid)
            for word in sorted(signature(mapper.synset(record.wnid))):
                word_rows["tag"].append(tag)
                word_rows["cand"].append(cand)
                word_rows["word"].append(word)
    for name, rows in (
        ("sense_candidates", cand_rows),
        ("sense_words", word_rows),
        ("tag_words", tag_rows),
    ):
        types = {"cand": pa.int32()}
        table = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in rows.items()})
        con.register(f"{name}_arrow", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
        con.unregister(f"{name}_arrow")
    return {"ambiguous_hashtags": len(set(cand_rows["tag"]))}


def create_sense_override(con: Any) -> int:
    """Create `sense_override(uid, tag, wnid)` from `caption_tags` and the tables above;
    return how many (caption, tag) pairs the context moved to another sense."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE sense_override AS
        WITH pairs AS (
            SELECT uid, unnest(tags) AS tag FROM caption_tags
        ), ambiguous AS (
            SELECT p.uid, p.tag FROM pairs p
            WHERE p.tag IN (SELECT DISTINCT tag FROM sense_candidates)
        ), context AS (
            SELECT DISTINCT a.uid, a.tag, w.word
            FROM ambiguous a JOIN pairs o ON o.uid = a.uid AND o.tag <> a.tag
            JOIN tag_words w ON w.tag = o.tag
        ), scores AS (
            SELECT c.uid, c.tag, s.cand, count(*) AS score
            FROM context c JOIN sense_words s ON s.tag = c.tag AND s.word = c.word
            GROUP BY ALL
        ), ranked AS (
            SELECT *, row_number() OVER (PARTITION BY uid, tag ORDER BY score DESC, cand)
                          AS rank,
                      lead(score) OVER (PARTITION BY uid, tag ORDER BY score DESC, cand)
                          AS runner_up
            FROM scores
        )
        SELECT r.uid, r.tag, c.wnid
        FROM ranked r JOIN sense_candidates c USING (tag, cand)
        JOIN tag_map m USING (tag)
        WHERE r.rank = 1 AND (r.runner_up IS NULL OR r.score > r.runner_up)
              AND c.wnid <> m.wnid
        """
    )
    return con.execute("SELECT count(*) FROM sense_override").fetchone()[0]
