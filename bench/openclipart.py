"""Bench 3: a real corpus, Debian's `openclipart-svg` (~8k SVGs with keywords).

    apt-get install openclipart-svg     # once; SVGs under /usr/share/openclipart
    .venv/bin/python -m bench.openclipart   # ~1-2 min

Each SVG is one sample: url = its file:// URI, caption = its title (`dc:title` of the
`cc:Work`) followed by its keywords (`rdf:li` items of `dc:subject`) written as hashtags,
spaces and other non-word characters replaced by `_` (`golden retriever` ->
`#golden_retriever`). The corpus goes through `curate ingest` and `curate build-vocab`
(default options). Baseline in the same run: a sample is covered when one of its raw
keywords has any noun synset in NLTK (no filter, no stoplist).

Reports coverage (samples with >= 1 label), reasons, the 30 largest classes and 50 random
(keyword -> synset) decisions among the keywords that reached a synset (seed 0), written to
bench/out/openclipart.json and bench/out/openclipart_decisions.md.

Every keyword's outcome (uses, wnid, reason) goes to bench/out/openclipart_keywords.json;
the keywords whose outcome differs from a previous run's file (`--compare`, default the
file the last run left there) are printed, most used first: what a change of the mapper
did to a real corpus.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import shutil
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SVG_ROOT = Path("/usr/share/openclipart")
SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
ITEM = re.compile(r"<rdf:li>(.*?)</rdf:li>", re.S)
TITLE = re.compile(r"<cc:Work[^>]*>\s*<dc:title>(.*?)</dc:title>", re.S)


def read_svg(path: Path) -> tuple[str, list[str]]:
    """(title, keywords) of one SVG's RDF metadata; empty when absent."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    title = TITLE.search(text)
    subject = SUBJECT.search(text)
    keywords = [html.unescape(k).strip() for k in ITEM.findall(subject.group(1))] if subject else []
    return (html.unescape(title.group(1)).strip() if title else ""), [k for k in keywords if k]


def as_hashtag(keyword: str) -> str:
    return re.sub(r"\W+", "_", keyword).strip("_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.openclipart")
    parser.add_argument("--svg-root", default=str(SVG_ROOT))
    parser.add_argument("--workdir", default="/tmp/mawskit-bench-openclipart")
    parser.add_argument(
        "--compare",
        default=str(OUT / "openclipart_keywords.json"),
        help="a previous run's openclipart_keywords.json to list the changed keywords against",
    )
    args = parser.parse_args(argv)
    previous_path = Path(args.compare)
    previous = json.loads(previous_path.read_text()) if previous_path.is_file() else None

    import duckdb

    from curation.ingest import main as ingest
    from labeling.build_vocab import BuildVocabOptions, build_vocab
    from labeling.wordnet import wordnet

    svgs = sorted(Path(args.svg_root).rglob("*.svg"))
    if not svgs:
        print(f"no SVGs under {args.svg_root}: apt-get install openclipart-svg", file=sys.stderr)
        return 2
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows, keywords_of = [], {}
    for path in svgs:
        title, keywords = read_svg(path)
        tags = list(dict.fromkeys(t for t in map(as_hashtag, keywords) if t))
        caption = " ".join([title, *("#" + t for t in tags)]).strip()
        rows.append({"url": path.as_uri(), "caption": caption})
        keywords_of[path.as_uri()] = keywords
    with (work / "openclipart.jsonl").open("w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)

    wn = wordnet()
    started = time.perf_counter()
    baseline_covered = sum(
        any(wn.synsets(k.replace(" ", "_"), pos="n") for k in kws) for kws in keywords_of.values()
    )
    baseline_seconds = time.perf_counter() - started

    root = work / "dataset"
    assert ingest([str(work / "openclipart.jsonl"), "--root", str(root)]) == 0
    started = time.perf_counter()
    counts = build_vocab(BuildVocabOptions(root=str(root)))
    seconds = time.perf_counter() - started

    con = duckdb.connect()
    top = con.execute(
        f"SELECT class_id, wnid, name, lexname, count FROM '{root}/vocab/vocab.parquet' "
        "ORDER BY class_id LIMIT 30"
    ).fetchall()
    rows = con.execute(
        f"SELECT hashtag, kind, count, canonical, wnid, reason "
        f"FROM '{root}/vocab/hashtags.parquet' ORDER BY hashtag"
    ).fetchall()
    tags = [(h, n, canonical, w, r) for h, _, n, canonical, w, r in rows if w is not None]
    outcomes = {h: [n, w, r] for h, kind, n, _, w, r in rows if kind == "hashtag"}
    changed = [] if previous is None else changed_keywords(wn, previous, outcomes)
    decisions = []
    for hashtag, count, canonical, wnid, reason in random.Random(0).sample(
        tags, min(50, len(tags))
    ):
        synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
        decisions.append(
            {"keyword": hashtag, "count": count, "canonical": canonical, "wnid": wnid,
             "synset": synset.name(), "lexname": synset.lexname(),
             "gloss": synset.definition(), "reason": reason}
        )  # fmt: skip

    n = counts["captions"]
    result = {
        "svgs": len(svgs),
        "samples": n,
        "samples_with_keyword": counts["captions_with_hashtag"],
        "samples_with_label": counts["captions_with_label"],
        "coverage": counts["captions_with_label"] / n,
        "baseline_coverage_any_noun_synset": baseline_covered / len(svgs),
        "baseline_seconds": round(baseline_seconds, 2),
        "build_vocab_seconds": round(seconds, 2),
        "distinct_keywords": counts["distinct_hashtags"],
        "hashtags_by_reason": counts["hashtags_by_reason"],
        "classes": counts["classes_after_max_classes"],
        "top30": [
            dict(zip(("class_id", "wnid", "name", "lexname", "count"), r, strict=True)) for r in top
        ],
        "decisions": decisions,
        "compared_with": str(previous_path) if previous is not None else None,
        "changed_keywords": changed,
    }
    print(
        f"openclipart-svg: {len(svgs)} SVGs, {counts['captions_with_hashtag']} with keywords, "
        f"{counts['distinct_hashtags']} distinct keywords -> {result['classes']} classes"
    )
    print(f"  coverage (samples with >= 1 label): {result['coverage']:.1%}"
          f"   baseline (a raw keyword has any noun synset): "
          f"{result['baseline_coverage_any_noun_synset']:.1%}")  # fmt: skip
    print(f"  keywords by outcome: {counts['hashtags_by_reason']}")
    print("\n  30 largest classes")
    for r in top:
        print(f"    {r[0]:>3} {r[1]} {r[2]:<28} {r[3]:<16} {r[4]:>5}")
    lines = [
        "| # | keyword | uses | synset | lexname | gloss | outcome |",
        "|---|---|---|---|---|---|---|",
    ]
    print("\n  50 random keyword -> synset decisions")
    for i, d in enumerate(decisions, 1):
        outcome = d["reason"] or "label"
        print(f"    {i:>2} {d['keyword']:<24} -> {d['synset']:<28} {outcome:<18} {d['gloss'][:60]}")
        lines.append(f"| {i} | `{d['keyword']}` | {d['count']} | {d['synset']} | {d['lexname']} "
                     f"| {d['gloss']} | {outcome} |")  # fmt: skip
    if previous is not None:
        uses = sum(c["uses"] for c in changed)
        print(f"\n  {len(changed)} keywords ({uses} uses) changed since {previous_path}")
        for c in changed:
            print(f"    {c['keyword']:<24} {c['uses']:>5}  {c['before']:<34} -> {c['after']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "openclipart_keywords.json").write_text(json.dumps(outcomes, indent=0))
    (OUT / "openclipart.json").write_text(json.dumps(result, indent=1))
    (OUT / "openclipart_decisions.md").write_text("\n".join(lines) + "\n")
    print(f"-> {OUT / 'openclipart.json'}, {OUT / 'openclipart_decisions.md'}")
    return 0


def changed_keywords(wn, before: dict, after: dict) -> list[dict]:
    """Keywords whose (wnid, reason) differs between two `openclipart_keywords.json`
    contents ({keyword: [uses, wnid, reason]}), most used first; a side that lacks the
    keyword reads `absent`."""

    def outcome(row: list | None) -> str:
        if row is None:
            return "absent"
        _, wnid, reason = row
        name = wn.synset_from_pos_and_offset("n", int(wnid[1:])).name() if wnid else "-"
        return f"{name} ({reason or 'label'})"

    rows = []
    for keyword in sorted(before.keys() | after.keys()):
        old, new = before.get(keyword), after.get(keyword)
        if old is None or new is None or old[1:] != new[1:]:
            uses = (new or old)[0]
            rows.append({"keyword": keyword, "uses": uses, "before": outcome(old),
                         "after": outcome(new)})  # fmt: skip
    return sorted(rows, key=lambda r: (-r["uses"], r["keyword"]))


if __name__ == "__main__":
    sys.exit(main())
