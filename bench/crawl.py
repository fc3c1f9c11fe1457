"""Bench: crawl images/s of `shards.crawl.crawl_images` vs. `img2dataset.download` called
directly on the same url list, over a loopback server.

    .venv/bin/python -m bench.crawl   # ~2 min; bench/out/crawl.json

`N_URLS` small JPEGs served by `shards.serve.serve_folder` (in this process); both sides
use the same img2dataset arguments (1 process, `THREADS` threads, parquet output, resize to
64, sha256 of the originals). Each call is timed whole, worker spawn included, alternating
direct / wrapper `REPEATS` times; best of each. Our wrapper adds the uid bookkeeping of the
resumable crawl (a parquet url list per part, a scan of earlier parts). Target >= 0.95x.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

N_URLS = 2000
THREADS = 16
REPEATS = 2
OUT = Path(__file__).resolve().parent / "out" / "crawl.json"
TARGET = 0.95


def main() -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from shards.crawl import CrawlSettings, ResizePolicy, crawl_images, prepare_image_env
    from shards.serve import serve_folder
    from tests.shards.dataset import pattern_image

    prepare_image_env()
    import img2dataset

    policy = ResizePolicy(image_size=64)
    settings = CrawlSettings(processes=1, threads=THREADS, timeout=10)
    with tempfile.TemporaryDirectory(dir=OUT.parent) as tmp:
        scratch = Path(tmp)
        site = scratch / "site"
        site.mkdir()
        for i in range(N_URLS):
            (site / f"{i}.jpg").write_bytes(pattern_image(i % 97, size=(80, 60)))
        times: dict[str, list[float]] = {"img2dataset": [], "crawl_images": []}
        with serve_folder(site) as base:
            uids = [f"{i:016x}" for i in range(N_URLS)]
            urls = [f"{base}/{i}.jpg" for i in range(N_URLS)]
            url_list = scratch / "urls.parquet"
            pq.write_table(pa.table({"uid": uids, "url": urls}), url_list)
            for r in range(REPEATS):
                out = scratch / f"direct-{r}"
                start = time.perf_counter()
                img2dataset.download(
                    url_list=str(url_list), input_format="parquet", url_col="url",
                    save_additional_columns=["uid"], output_folder=str(out),
                    output_format="parquet", number_sample_per_shard=settings.shard_size,
                    processes_count=1, thread_count=THREADS, timeout=10, retries=0,
                    user_agent_token="mawskit", distributor="multiprocessing",
                    extract_exif=False, compute_hash="sha256", enable_wandb=False,
                    **policy.resizer_kwargs(),
                )  # fmt: skip
                times["img2dataset"].append(time.perf_counter() - start)
                start = time.perf_counter()
                result = crawl_images(uids, urls, scratch / f"ours-{r}", policy, settings)
                times["crawl_images"].append(time.perf_counter() - start)
                assert result.crawled_now == N_URLS
                shutil.rmtree(out)
    rates = {name: N_URLS / min(t) for name, t in times.items()}
    ratio = rates["crawl_images"] / rates["img2dataset"]
    print(f"{N_URLS} urls over loopback, 1 process x {THREADS} threads, best of {REPEATS}")
    print(f"{'crawler':<16} {'images/s':>9} {'ratio':>7}")
    for name in ("img2dataset", "crawl_images"):
        print(f"{name:<16} {rates[name]:>9.1f} {rates[name] / rates['img2dataset']:>7.2f}")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"crawl_images / img2dataset = {ratio:.2f} ({verdict} the {TARGET}x target)")
    OUT.write_text(json.dumps({"n_urls": N_URLS, "threads": THREADS, "seconds": times,
                               "images_per_s": rates, "ratio": ratio, "target": TARGET},
                              indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
