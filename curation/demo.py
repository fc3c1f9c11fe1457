"""`make demo`: the whole pipeline on a corpus it draws itself, on a laptop CPU, in minutes.

    python -m curation.demo --out demo-out        # ~3,000 images; see DemoOptions for sizes

Stages, each timed, each through the same `main(argv)` a user runs from the shell:

    corpus       OUT/corpus/images/*.jpg + captions.parquet      (curation.democorpus)
    serve        OUT/corpus on http://127.0.0.1:<port>; OUT/captions.parquet with those urls
    ingest       curate ingest OUT/captions.parquet --root OUT/data
    build-vocab  curate build-vocab --root OUT/data
    shard        curate shard --root OUT/data            (img2dataset crawls the loopback)
    mae          train mae --shards OUT/data/shards --out OUT/runs/mae
    eval-mae     train eval --ckpt OUT/runs/mae/<last checkpoint>   (linear probe only)
    wsp          train wsp ... --init OUT/runs/mae/<last checkpoint> --out OUT/runs/wsp
    eval-wsp     train eval --ckpt OUT/runs/wsp/<last checkpoint>   -> OUT/runs/wsp/metrics.json
    report       OUT/report.md                                  (curation.report)

WSP also trains from random weights (OUT/runs/wsp-scratch, evaluated there too; turn off
with `--no-scratch-baseline`): the MAWS question (does MAE first help?) at toy scale.
Measured on 2 shared CPU cores, defaults (2026-11-26, two runs): 3.3-3.9 minutes in all;
MAE 300 steps 68-73 s (270-290 images/s), each WSP 300 steps 47-64 s, shard 9 s; WSP from
MAE top1 0.900, from scratch 0.855, MAE's linear probe 0.379, the class prior 0.201.
The server listens on a fixed loopback port (`--port`, 8517): the urls, and so the uids
(`md5(url + caption)`), the val split and the numbers, are then the same on every run on
one machine (two runs: byte-identical tars, bit-identical weights, the same losses and
metrics). When that
port is taken the demo says so and serves on a free one; that run's split, and its numbers,
differ a little.
A failed stage stops the run; the report is still written from what exists, and the exit
code is that stage's. OUT is wiped and rebuilt on every run, but only when it is empty or
was made by this demo (it holds `demo.json`).
"""

from __future__ import annotations

import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from curation.errors import UsageError
from curation.layout import write_json_atomic
from curation.options import parse_options

MARKER = "demo.json"
T = TypeVar("T")


@dataclass(frozen=True)
class DemoOptions:
    """Run the whole mawskit pipeline on a drawn corpus served over loopback."""

    out: str = field(metadata={"help": "output folder (wiped if a previous demo made it)"})
    n_images: int = field(default=3000, metadata={"help": "images in the drawn corpus"})
    seed: int = 0
    model: str = field(default="vit_micro_patch4", metadata={"help": "timm-style encoder name"})
    image_size: int = field(default=32, metadata={"help": "shard and training resolution"})
    batch_size: int = 64
    # 300 steps * 64 = 19,200 images = ~7 epochs of ~2,600 train images, per stage
    mae_steps: int = 300
    wsp_steps: int = 300
    # A toy run needs a larger lr than the papers' (batch 4096, 100k+ steps): 4e-3 * 64/256
    # = 1e-3 peak for MAE, 2e-3 * 64/256 = 5e-4 for WSP, each after a 10% warmup.
    mae_base_lr: float = 4e-3
    wsp_base_lr: float = 2e-3
    warmup_fraction: float = 0.1
    min_count: int = field(default=40, metadata={"help": "build-vocab: minimum tag count"})
    cap: int | None = field(
        default=None, metadata={"help": "build-vocab frequency cap (default: n_images // 8)"}
    )  # 3,000 images: 375, which trims the two head kinds (~700 and ~500 samples) only
    val_fraction: float = 0.15  # ~400 val images: enough for a stable top-1 at 12 classes
    samples_per_shard: int = 1000
    # On a shared 2-core machine, 2 torch threads ran MAE at 21 images/s and 1 thread at 190
    # (spinning threads fight the other processes); 1 keeps the demo's time predictable.
    threads: int = field(default=1, metadata={"help": "torch CPU threads for training"})
    port: int = field(
        default=8517, metadata={"help": "loopback port of the corpus server (0: any free one)"}
    )  # fixed: the port is in every url, so in every uid, the split and the numbers
    scratch_baseline: bool = field(
        default=True, metadata={"help": "also train and evaluate WSP from random weights"}
    )  # ~75 s more; the comparison is the paper's question

    def __post_init__(self) -> None:
        if self.n_images < 100:
            raise UsageError(f"--n-images must be >= 100, got {self.n_images}")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"--port must be in 0..65535, got {self.port}")
        for name in ("mae_steps", "wsp_steps", "batch_size", "image_size", "threads"):
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be >= 1")


class StageFailed(Exception):
    def __init__(self, stage: str, code: int) -> None:
        super().__init__(f"stage {stage} failed with exit code {code}")
        self.stage, self.code = stage, code


class Stopwatch:
    """Times named stages, prints each as it ends, keeps them for the report."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], T]) -> T:
        print(f"[demo] {name} ...", flush=True)
        start = time.perf_counter()
        try:
            return fn()
        finally:
            self.seconds[name] = time.perf_counter() - start
            print(f"[demo] {name}: {self.seconds[name]:.1f} s", flush=True)


def _call(stage: str, main: Callable[[Sequence[str]], int], argv: list[str]) -> None:
    print("[demo]   $ " + " ".join(argv), flush=True)
    code = main(argv)
    if code != 0:
        raise StageFailed(stage, code)


def _curate(stage: str, argv: list[str]) -> None:
    from curation import cli

    _call(stage, cli.main, argv)


def _train(stage: str, argv: list[str]) -> None:
    from train import cli

    _call(stage, cli.main, argv)


def _evaluate(stage: str, shards: Path, run_dir: Path) -> None:
    """`train eval` of a run's last checkpoint; it writes RUN/metrics.json."""
    ckpt = last_checkpoint(run_dir)
    _train(stage, ["eval", "--ckpt", str(ckpt), "--shards", str(shards)])


def last_checkpoint(run_dir: Path) -> Path:
    """The highest-step `checkpoint-NNNNNN.safetensors` of a run (names sort by step)."""
    found = sorted(run_dir.glob("checkpoint-*.safetensors"))
    if not found:
        raise UsageError(f"no checkpoint-*.safetensors in {run_dir}")
    return found[-1]


def prepare_out(out: Path) -> None:
    """Empty OUT if this demo made it; refuse a foreign non-empty folder."""
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise UsageError(f"{out} is not empty and was not made by the demo; pick another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


@contextmanager
def serve_corpus(folder: Path, port: int) -> Iterator[str]:
    """`shards.serve.serve_folder` on `port`; on a free port, with a note, when it is taken."""
    from shards.serve import serve_folder

    with ExitStack() as stack:
        try:
            base_url = stack.enter_context(serve_folder(folder, port=port))
        except OSError as err:
            if not port:
                raise
            print(
                f"[demo] port {port} is taken ({err.strerror}); serving on a free port, so the"
                " uids, the val split and the numbers differ from a run on that port",
                flush=True,
            )
            base_url = stack.enter_context(serve_folder(folder))
        yield base_url


def write_served_captions(corpus_table: Path, base_url: str, dest: Path) -> int:
    """Write `dest` (url, caption) with the corpus urls made absolute under `base_url`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(corpus_table, columns=["url", "caption"])
    urls = [f"{base_url}/{u}" for u in table.column("url").to_pylist()]
    pq.write_table(pa.table({"url": urls, "caption": table.column("caption")}), dest)
    return len(urls)


def _train_argv(opts: DemoOptions, shards: Path, steps: int, base_lr: float) -> list[str]:
    warmup = int(steps * opts.warmup_fraction)
    return [
        "--shards", str(shards), "--model", opts.model, "--image-size", str(opts.image_size),
        "--steps", str(steps), "--batch-size", str(opts.batch_size), "--seed", str(opts.seed),
        "--base-lr", str(base_lr), "--warmup-steps", str(warmup),
    ]  # fmt: skip


# MAE's 8x512 decoder would cost more than the micro encoder itself; 2x128 keeps the demo fast.
DEMO_DECODER = ["--decoder-depth", "2", "--decoder-dim", "128", "--decoder-heads", "4"]


def run_pipeline(opts: DemoOptions, out: Path, watch: Stopwatch) -> None:
    """All stages in order; raises StageFailed (or UsageError) at the first failure."""
    from curation.democorpus import generate_corpus

    data, runs = out / "data", out / "runs"
    corpus_table = watch.run(
        "corpus", lambda: generate_corpus(out / "corpus", n_images=opts.n_images, seed=opts.seed)
    )
    # The server must outlive the crawl: ingest, vocabulary and shards run inside it.
    with serve_corpus(out / "corpus", opts.port) as base_url:
        captions = out / "captions.parquet"
        n = write_served_captions(corpus_table, base_url, captions)
        print(f"[demo] serving {n} urls at {base_url}", flush=True)
        ingest = ["ingest", str(captions), "--root", str(data)]
        watch.run("ingest", lambda: _curate("ingest", ingest))
        cap = opts.cap if opts.cap is not None else opts.n_images // 8
        vocab = [
            "build-vocab", "--root", str(data), "--min-count", str(opts.min_count),
            "--cap", str(cap), "--seed", str(opts.seed),
        ]  # fmt: skip
        watch.run("build-vocab", lambda: _curate("build-vocab", vocab))
        shard = [
            "shard", "--root", str(data), "--image-size", str(opts.image_size),
            "--samples-per-shard", str(opts.samples_per_shard),
            "--val-fraction", str(opts.val_fraction),
        ]  # fmt: skip
        watch.run("shard", lambda: _curate("shard", shard))
    import torch

    torch.set_num_threads(opts.threads)  # the train stages run in this process
    shards = data / "shards"
    mae_args = _train_argv(opts, shards, opts.mae_steps, opts.mae_base_lr)
    mae = ["mae", *mae_args, *DEMO_DECODER, "--out", str(runs / "mae")]
    watch.run("mae", lambda: _train("mae", mae))
    watch.run("eval-mae", lambda: _evaluate("eval-mae", shards, runs / "mae"))
    wsp_args = _train_argv(opts, shards, opts.wsp_steps, opts.wsp_base_lr)
    init = str(last_checkpoint(runs / "mae"))
    wsp = ["wsp", *wsp_args, "--init", init, "--out", str(runs / "wsp")]
    watch.run("wsp", lambda: _train("wsp", wsp))
    watch.run("eval-wsp", lambda: _evaluate("eval-wsp", shards, runs / "wsp"))
    if opts.scratch_baseline:
        scratch = ["wsp", *wsp_args, "--out", str(runs / "wsp-scratch")]
        watch.run("wsp-scratch", lambda: _train("wsp-scratch", scratch))
        watch.run("eval-scratch", lambda: _evaluate("eval-scratch", shards, runs / "wsp-scratch"))


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_options(DemoOptions, argv, prog="python -m curation.demo")
    from curation.report import write_report

    out = Path(opts.out)
    prepare_out(out)
    write_json_atomic(out / MARKER, {"options": asdict(opts), "argv": sys.argv})
    watch = Stopwatch()
    code = 0
    try:
        run_pipeline(opts, out, watch)
    except StageFailed as err:
        print(f"[demo] {err}; writing the report of what exists", file=sys.stderr)
        code = err.code
    except UsageError as err:  # e.g. a stage exited 0 but left no checkpoint
        print(f"error: {err}; writing the report of what exists", file=sys.stderr)
        code = 2
    except Exception:  # a bug in a stage: show it, and still report what the others made
        traceback.print_exc()
        print("[demo] a stage crashed; writing the report of what exists", file=sys.stderr)
        code = 1
    runs = out / "runs"
    metrics = {"MAE (probe only)": runs / "mae" / "metrics.json"}
    metrics["WSP from MAE"] = runs / "wsp" / "metrics.json"
    if opts.scratch_baseline:
        metrics["WSP from scratch"] = runs / "wsp-scratch" / "metrics.json"
    report = write_report(out, timings=watch.seconds, metrics=metrics)
    write_json_atomic(out / "timings.json", watch.seconds)
    print(f"[demo] total: {sum(watch.seconds.values()):.1f} s")
    print(f"report: {report}")
    return code


if __name__ == "__main__":
    from curation.errors import run_main

    sys.exit(run_main(main, None))
