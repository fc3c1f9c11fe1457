"""Bench 2: `curate build-vocab` end to end on N generated captions vs a naive Python loop.

    .venv/bin/python -m bench.build_vocab_throughput --captions 10000000   # ~1.5 min
    .venv/bin/python -m bench.build_vocab_throughput --captions 1000000    # ~20 s
    ... --engine sql   # the DuckDB path (`build-vocab --engine sql`), ~3x slower

Captions are generated in DuckDB (no Python loop): each draws 0-7 hashtags (mean ~3, 1 in 8
none) from a pool of ~100k distinct tags by a Zipf law (rank r with probability ~ 1/r,
drawn as floor(P ** u)), the pool's head being meta tags (`#love`, `#instagood`, ...), then
a shuffled mix of WordNet noun lemmas as hashtags (joined, CamelCase, plural, underscored,
`...lovers`), years and random letter strings. The draw is a hash of (caption, slot), so
the corpus is the same on every run.

Measured: `build_vocab` (a fresh process, so its peak RSS is its own; DuckDB with
`--memory-limit`, default threads = cores) against the naive loop, per caption: `re.findall`
+ `wn.synsets(tag, "n")` for every tag, timed on `--naive-sample` captions of the same
corpus in this process. Writes bench/out/build_vocab_throughput.json.

The default (array) path runs worker processes: the peak RSS row is the main process, the
largest worker's peak is printed beside it (workers = cores, each holds one row group), and
`cpu_seconds` sums user + system time over all of them: on a shared machine CPU per caption
is steadier than wall time. Steps: `load_wordnet` runs inside `count_hashtags` (the scan's
wall time: WordNet loads while the workers scan), `map_hashtags` is the wait for the
mapping workers after the scan, `assign_labels` includes writing the label parts.
`cpu_seconds_by_step` (array engine) splits the CPU over all processes by pass: the
WordNet load (this process), scan + merge + mapping (workers and this process, the load
apart), count_synsets, assign_labels, write_labels, and the final vocabulary write.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from curation.ingest import IngestOptions

OUT = Path(__file__).resolve().parent / "out" / "build_vocab_throughput.json"
POOL_SIZE = 100_000
INGEST_PART_ROWS = IngestOptions.part_rows  # `curate ingest --part-rows` default


def tag_pool(seed: int = 0) -> list[str]:
    """~100k distinct hashtags, most frequent first (see the module docstring)."""
    from labeling.mapper import DEFAULT_STOPLIST
    from labeling.wordnet import wordnet

    rng = random.Random(seed)
    lemmas = sorted(wordnet().all_lemma_names(pos="n"))
    picked = rng.sample(lemmas, 60_000)
    forms = []
    for i, lemma in enumerate(picked):
        words = lemma.split("_")
        kind = i % 10
        if kind < 5:
            forms.append("".join(words).lower())
        elif kind < 7:
            forms.append("".join(w[:1].upper() + w[1:] for w in words))
        elif kind == 7:
            forms.append("".join(words).lower() + "s")
        elif kind == 8:
            forms.append(lemma.lower())
        else:
            forms.append("".join(words).lower() + "lovers")
    letters = "abcdefghijklmnopqrstuvwxyz"
    junk = {"".join(rng.choices(letters, k=rng.randint(4, 14))) for _ in range(POOL_SIZE)}
    forms += [str(y) for y in range(1900, 2030)]
    body = list(dict.fromkeys(forms + sorted(junk)))[: POOL_SIZE - len(DEFAULT_STOPLIST)]
    rng.shuffle(body)
    return sorted(DEFAULT_STOPLIST) + [t for t in body if t not in DEFAULT_STOPLIST]


def generate(root: Path, captions: int, part_rows: int = INGEST_PART_ROWS) -> float:
    """Write ROOT/metadata/part-*.parquet (uid, url, caption, source) shaped as `curate
    ingest` writes it: `part_rows` rows a part, sorted by uid, zstd, DuckDB's row groups
    (122,880 rows); return seconds."""
    import duckdb
    import pyarrow as pa

    started = time.perf_counter()
    pool = tag_pool()
    con = duckdb.connect()
    con.register("pool_arrow", pa.table({"tag": pool, "rank": list(range(len(pool)))}))
    con.execute("CREATE TABLE pool AS SELECT * FROM pool_arrow")
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    parts = max(1, -(-captions // part_rows))
    per_part = -(-captions // parts)
    n = len(pool)
    for part in range(parts):
        lo, hi = part * per_part, min(captions, (part + 1) * per_part)
        con.execute(
            f"""
            COPY (
              WITH slots AS (
                SELECT i, j, least({n - 1}, floor(pow({n}, (hash(i * 8 + j) % 1000003)
                       / 1000003.0))::INTEGER - 1 + 1) AS rank
                FROM range({lo}, {hi}) r(i), range(8) s(j)
                WHERE j < (hash(i) % 8)  -- 0..7 tags per caption, mean 3.5
              ), tagged AS (
                SELECT i, string_agg('#' || tag, ' ' ORDER BY j) AS tags
                FROM slots JOIN pool USING (rank) GROUP BY i
              )
              SELECT printf('%016x', r.i) AS uid,
                     'http://img.example/' || r.i || '.jpg' AS url,
                     'a photo of my day ' || coalesce(t.tags, '') AS caption,
                     'bench' AS source
              FROM range({lo}, {hi}) r(i) LEFT JOIN tagged t USING (i)
              ORDER BY uid
            ) TO '{root}/metadata/part-{part:05d}.parquet' (FORMAT parquet, COMPRESSION zstd)
            """
        )
    con.close()
    return time.perf_counter() - started


def naive_rate(root: Path, sample: int) -> tuple[float, int]:
    """Captions/s of a per-caption Python loop: regex + wn.synsets per tag; also labels found."""
    import duckdb

    from labeling.wordnet import wordnet

    wn = wordnet()
    wn.synsets("dog")  # warm the reader outside the timed loop
    rows = duckdb.sql(
        f"SELECT caption FROM '{root}/metadata/*.parquet' USING SAMPLE {sample} ROWS (reservoir, 1)"
    ).fetchall()
    tag_re = re.compile(r"#(\w+)")
    started = time.perf_counter()
    found = 0
    for (caption,) in rows:
        for tag in set(tag_re.findall(caption or "")):
            found += bool(wn.synsets(tag, pos="n"))
    return len(rows) / (time.perf_counter() - started), found


def run_build(root: Path, memory_limit: str, engine: str) -> dict:
    """build_vocab in a fresh process; its seconds, counts and peak RSS."""
    code = (
        "import json, resource, time, sys\n"
        "t = time.perf_counter()\n"
        "from labeling.build_vocab import BuildVocabOptions, build_vocab\n"
        f"c = build_vocab(BuildVocabOptions(root={str(root)!r}, memory_limit={memory_limit!r},"
        f" engine={engine!r}))\n"
        "s = time.perf_counter() - t\n"
        "me = resource.getrusage(resource.RUSAGE_SELF)\n"
        "kids = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime\n"
        "print(json.dumps({'seconds': s, 'peak_rss_mb': me.ru_maxrss / 1024,\n"
        "                  'worker_peak_rss_mb': kids.ru_maxrss / 1024, 'cpu_seconds': cpu,\n"
        "                  'counts': c}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.build_vocab_throughput")
    parser.add_argument("--captions", type=int, default=10_000_000)
    parser.add_argument("--naive-sample", type=int, default=20_000)
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument("--workdir", default="/tmp/mawskit-bench-build-vocab")
    parser.add_argument("--keep", action="store_true", help="keep the generated corpus")
    parser.add_argument(
        "--engine", default="arrays", choices=("arrays", "sql"), help="build-vocab --engine"
    )
    args = parser.parse_args(argv)

    root = Path(args.workdir) / f"captions-{args.captions}"
    gen_seconds = None
    if not (root / "metadata").exists():
        gen_seconds = generate(root, args.captions)
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    naive, naive_found = naive_rate(root, args.naive_sample)
    build = run_build(root, args.memory_limit, args.engine)
    load_after = os.getloadavg()[0]
    rate = args.captions / build["seconds"]
    timings = build["counts"].get("seconds_by_step", {})
    cpu_steps = build["counts"].get("cpu_seconds_by_step", {})
    result = {
        "captions": args.captions,
        "engine": args.engine,
        "cores": os.cpu_count(),
        "generate_seconds": gen_seconds,
        "build_vocab_seconds": round(build["seconds"], 2),
        "build_vocab_captions_per_s": round(rate),
        "seconds_by_step": timings,
        "cpu_seconds_by_step": cpu_steps,
        "peak_rss_mb": round(build["peak_rss_mb"]),
        "worker_peak_rss_mb": round(build["worker_peak_rss_mb"]),
        "cpu_seconds": round(build["cpu_seconds"], 2),
        "cpu_us_per_caption": round(build["cpu_seconds"] / args.captions * 1e6, 3),
        "memory_limit": args.memory_limit,
        "naive_captions_per_s": round(naive),
        "naive_sample": args.naive_sample,
        "speedup": round(rate / naive, 1),
        "distinct_hashtags": build["counts"]["distinct_hashtags"],
        "classes": build["counts"]["classes_after_max_classes"],
        "captions_with_label": build["counts"]["captions_with_label"],
        "load_average_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "parent_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(f"build-vocab --engine {args.engine} on {args.captions:,} generated captions, "
          f"{os.cpu_count()} cores, 1-min load average {load_before:.1f} before, "
          f"{load_after:.1f} after")  # fmt: skip
    print(f"  {'method':<40}{'captions/s':>14}{'seconds':>10}{'peak RSS MB':>13}")
    print(f"  {'naive loop (regex + wn.synsets per tag)':<40}{naive:>14,.0f}"
          f"{args.captions / naive:>10.0f}{'':>13}  (extrapolated)")  # fmt: skip
    print(f"  {'curate build-vocab, end to end':<40}{rate:>14,.0f}{build['seconds']:>10.1f}"
          f"{build['peak_rss_mb']:>13,.0f}")  # fmt: skip
    print(f"  speedup {rate / naive:.1f}x; targets: >= 1,000,000 captions/s and >= 10x")
    print(f"  CPU {build['cpu_seconds']:.1f} s over all processes "
          f"({build['cpu_seconds'] / args.captions * 1e6:.2f} us per caption); largest worker "
          f"peak RSS {build['worker_peak_rss_mb']:,.0f} MB")  # fmt: skip
    print(f"    {'step (wall)':<24}{'seconds':>8}")
    for step, secs in timings.items():
        print(f"    {step:<24}{secs:>8.2f}")
    if cpu_steps:
        print(f"    {'step (CPU, all processes)':<26}{'seconds':>6}{'us/caption':>12}")
        for step, secs in cpu_steps.items():
            print(f"    {step:<26}{secs:>6.2f}{secs / args.captions * 1e6:>12.3f}")
    print(f"  {result['distinct_hashtags']:,} distinct hashtags -> {result['classes']:,} classes;"
          f" {result['captions_with_label']:,} captions labeled")  # fmt: skip
    out = OUT.with_name(f"{OUT.stem}-{args.engine}-{args.captions}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"-> {out}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
