"""`OUT/report.md`: one readable page over every output of a pipeline run (the demo's last step).

    write_report(out_dir, timings={"ingest": 1.2, ...}) -> out_dir / "report.md"

Reads, each optional (a missing input becomes a "missing" line, so a failed run still gets
a report of what it made):
    OUT/corpus/captions.parquet          the demo corpus (`curation.democorpus`)
    DATA/vocab/vocab.parquet, hashtags.parquet      `curate build-vocab`
    DATA/shards/manifest.json, downloads.parquet    `curate shard`
    RUNS/mae/log.jsonl, RUNS/wsp/log.jsonl          `train mae`, `train wsp`
    metrics.json                                    `train eval`
with DATA = OUT/data and RUNS = OUT/runs unless given. Writes `report.md` and the loss
curves `mae_loss.png`, `wsp_loss.png` (linked from the markdown) into OUT, each through a
temporary name and a rename.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

MAX_TABLE_ROWS = 60  # a vocabulary of thousands is summarised, not printed
EXAMPLES_PER_REASON = 5


def _read_parquet_rows(path: Path) -> list[dict[str, Any]] | None:
    if not path.exists():
        return None
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _read_json(path: Path) -> Any | None:
    return json.loads(path.read_text()) if path.exists() else None


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a `log.jsonl` that carry a numeric `step` and `loss`, in file order."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a run killed mid-line leaves a partial last line
            continue
        if isinstance(row.get("step"), int | float) and isinstance(row.get("loss"), int | float):
            rows.append(row)
    return rows


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _missing(path: Path) -> list[str]:
    return [f"_missing: `{path}`_", ""]


def _timing_section(timings: Mapping[str, float] | None) -> list[str]:
    if not timings:
        return []
    rows = [(stage, f"{sec:.1f}") for stage, sec in timings.items()]
    rows.append(("**total**", f"{sum(timings.values()):.1f}"))
    return ["## Stages", "", *_table(("stage", "seconds"), rows), ""]


def _corpus_section(captions: Path) -> list[str]:
    rows = _read_parquet_rows(captions)
    if rows is None:
        return []
    status = Counter(r.get("status", "ok") for r in rows)
    kinds = Counter(k for r in rows for k in r.get("kinds") or ())
    multi = sum(1 for r in rows if len(r.get("kinds") or ()) > 1)
    untagged = sum(1 for r in rows if "#" not in r["caption"])
    lines = [
        "## Corpus",
        "",
        f"{len(rows)} captions; {multi} images show two objects; {untagged} captions carry "
        f"no hashtag; url status: "
        + ", ".join(f"{k} {v}" for k, v in sorted(status.items()))
        + ".",
        "",
        *_table(("kind drawn", "images"), sorted(kinds.items(), key=lambda kv: -kv[1])),
        "",
        "Example captions:",
        "",
    ]
    lines += [f"- `{r['caption']}`" for r in rows[:5]]
    return [*lines, ""]


def _vocab_section(vocab_dir: Path) -> list[str]:
    lines = ["## Vocabulary", ""]
    vocab = _read_parquet_rows(vocab_dir / "vocab.parquet")
    if vocab is None:
        return lines + _missing(vocab_dir / "vocab.parquet")
    vocab.sort(key=lambda r: r["class_id"])
    kept = sum(r.get("kept_count", 0) for r in vocab)
    lines.append(f"{len(vocab)} classes; {kept} class labels kept after the frequency cap.")
    lines.append("")
    shown = [
        (r["class_id"], r["wnid"], r["name"], r.get("count", ""), r.get("kept_count", ""))
        for r in vocab[:MAX_TABLE_ROWS]
    ]
    lines += _table(("class", "wnid", "name", "count", "kept_count"), shown)
    if len(vocab) > MAX_TABLE_ROWS:
        lines.append(f"\n... and {len(vocab) - MAX_TABLE_ROWS} more classes")
    lines.append("")
    lines += _hashtag_section(vocab_dir / "hashtags.parquet")
    return lines


def _hashtag_section(path: Path) -> list[str]:
    lines = ["### Hashtag mapping", ""]
    tags = _read_parquet_rows(path)
    if tags is None:
        return lines + _missing(path)
    tags.sort(key=lambda r: (-r.get("count", 0), r["hashtag"]))
    mapped = [r for r in tags if r.get("reason") is None]
    total_uses = sum(r.get("count", 0) for r in tags)
    mapped_uses = sum(r.get("count", 0) for r in mapped)
    lines.append(
        f"{len(tags)} distinct hashtags ({total_uses} uses); {len(mapped)} mapped to a class "
        f"({mapped_uses} uses, {100 * mapped_uses / max(total_uses, 1):.0f}%)."
    )
    lines.append("")
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for r in tags:
        by_reason.setdefault(r.get("reason") or "mapped", []).append(r)

    def example(r: dict[str, Any]) -> str:
        target = r.get("wnid") or r.get("canonical") or ""
        return f"#{r['hashtag']} → {target}" if target else f"#{r['hashtag']}"

    rows = [
        (
            reason,
            len(group),
            sum(r.get("count", 0) for r in group),
            ", ".join(example(r) for r in group[:EXAMPLES_PER_REASON]),
        )
        for reason, group in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))
    ]
    return [*lines, *_table(("outcome", "tags", "uses", "examples"), rows), ""]


def _shard_section(shards_dir: Path) -> list[str]:
    lines = ["## Shards", ""]
    manifest = _read_json(shards_dir / "manifest.json")
    if manifest is None:
        lines += _missing(shards_dir / "manifest.json")
    else:
        rows = [
            (name, len(split.get("shards", [])), split.get("count", 0),
             f"{split.get('bytes', 0) / 1e6:.2f}")
            for name, split in manifest.get("splits", {}).items()
        ]  # fmt: skip
        lines.append(
            f"{manifest.get('totals', {}).get('samples', 0)} samples at "
            f"{manifest.get('image_size')} px, {len(manifest.get('classes', []))} classes, "
            f"vocab hash `{str(manifest.get('vocab_hash', ''))[:12]}`."
        )
        lines += ["", *_table(("split", "shards", "samples", "MB"), rows), ""]
    downloads = _read_parquet_rows(shards_dir / "downloads.parquet")
    if downloads is not None:
        status = Counter(r.get("status") for r in downloads)
        failed = [r for r in downloads if r.get("status") != "success"]
        lines.append(
            f"Downloads: {len(downloads)} attempted; "
            + ", ".join(f"{k} {v}" for k, v in status.most_common())
            + "."
        )
        lines.append("")
        if failed:
            shown = [
                (r.get("url"), r.get("status"), str(r.get("error_message") or "")[:80])
                for r in failed[:EXAMPLES_PER_REASON]
            ]
            lines += ["Failed downloads (first few):", ""]
            lines += [*_table(("url", "status", "error"), shown), ""]
    return lines


def plot_loss(log: list[dict[str, Any]], path: Path, title: str) -> None:
    """Loss against step, raw and smoothed, as a PNG (matplotlib's Agg: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in log]
    loss = [r["loss"] for r in log]
    window = max(1, len(loss) // 20)  # a 5%-of-run moving average shows the trend
    smooth = [
        sum(loss[max(0, i - window + 1) : i + 1]) / len(loss[max(0, i - window + 1) : i + 1])
        for i in range(len(loss))
    ]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if window > 1:
        ax.plot(steps, loss, alpha=0.35, lw=1, label="loss")
        ax.plot(steps, smooth, lw=2, label=f"mean of {window} logged steps")
    else:  # few logged points: each is already a mean over log_every steps
        ax.plot(steps, loss, lw=2, marker=".", label="loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def _run_section(title: str, run_dir: Path, out_dir: Path, png_name: str) -> list[str]:
    lines = [f"## {title}", ""]
    log = read_log(run_dir / "log.jsonl")
    if not log:
        return lines + _missing(run_dir / "log.jsonl")
    plot_loss(log, out_dir / png_name, f"{title}: {run_dir.name}")
    first, last = log[0], log[-1]
    speeds = [r["images_per_s"] for r in log if isinstance(r.get("images_per_s"), int | float)]
    lines.append(
        f"{len(log)} logged steps up to step {last['step']}; loss {first['loss']:.4f} at step "
        f"{first['step']} → {last['loss']:.4f} at step {last['step']}"
        + (f"; {sum(speeds) / len(speeds):.0f} images/s." if speeds else ".")
    )
    checkpoints = sorted(run_dir.glob("checkpoint-*.safetensors"))
    if checkpoints:
        lines.append(f"Last checkpoint: `{checkpoints[-1]}`.")
    lines += ["", f"![{title} loss]({png_name})", ""]
    if (run_dir / "reconstructions.png").exists():
        rel = os.path.relpath(run_dir / "reconstructions.png", out_dir)
        lines += [f"![{title} reconstructions]({rel})", ""]
    return lines


# score -> the chance level it is compared with (train.evaluate's own pairing)
SCORE_CHANCE = {
    "top1": "top1", "top5": "top5", "mAP": "mAP", "probe_top1": "top1",
    "probe_train_top1": "top1",
}  # fmt: skip
INFO_KEYS = ("kind", "model", "image_size", "num_classes", "val_samples", "probe_train_samples")


def metric_rows(metrics: Mapping[str, Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows (score, value per run..., chance prior, chance uniform) over several metrics.json.

    `metrics` maps a run's title to its parsed `train eval` output (flat: `top1`, `mAP`,
    `probe_top1`, `chance_top1_prior`, `chance_top1_uniform`, `chance_mAP`, ...). Chance
    levels come from the first run that has them (the val split is the same for all runs).
    Unknown numeric keys get a row without chance, so a new score still shows.
    """
    known = set(SCORE_CHANCE) | set(INFO_KEYS) | {"seconds"}
    names = [n for n in SCORE_CHANCE if any(n in m for m in metrics.values())]
    for m in metrics.values():
        names += [
            k
            for k, v in m.items()
            if k not in known and k not in names and not k.startswith("chance_")
            and isinstance(v, int | float) and not isinstance(v, bool)
        ]  # fmt: skip
    rows = []
    for name in names:
        base = SCORE_CHANCE.get(name)
        prior = uniform = ""
        if base is not None:
            for m in metrics.values():
                if prior == "" and (f"chance_{base}_prior" in m or f"chance_{base}" in m):
                    prior = m.get(f"chance_{base}_prior", m.get(f"chance_{base}"))
                if uniform == "" and f"chance_{base}_uniform" in m:
                    uniform = m[f"chance_{base}_uniform"]
        values = [m.get(name, "") for m in metrics.values()]
        values = ["" if isinstance(v, float) and math.isnan(v) else v for v in values]
        rows.append((name, *values, prior, uniform))
    return rows


def _eval_section(metric_paths: Mapping[str, str | os.PathLike[str]]) -> list[str]:
    lines = ["## Evaluation", ""]
    found: dict[str, dict[str, Any]] = {}
    for title, path in metric_paths.items():
        data = _read_json(Path(path))
        if data is None:
            lines += [f"{title}: _missing: `{path}`_", ""]
        else:
            found[title] = data
    if not found:
        return lines
    for title, m in found.items():
        info = ", ".join(f"{k} {m[k]}" for k in INFO_KEYS if k in m)
        lines.append(f"- {title}: {info} (`{m.get('checkpoint', '')}`)")
    header = ("score", *found, "chance (prior)", "chance (uniform)")
    lines += ["", *_table(header, metric_rows(found)), ""]
    lines += [
        "top1/top5: a top-k guess is right when any of its classes is a label; probe_top1: a "
        "linear probe on the frozen features; chance (prior): always guess the most frequent "
        "train classes; chance (uniform): guess at random.",
        "",
    ]
    return lines


def write_report(
    out_dir: str | os.PathLike[str],
    *,
    timings: Mapping[str, float] | None = None,
    data_root: str | os.PathLike[str] | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    metrics: Mapping[str, str | os.PathLike[str]] | None = None,
    title: str = "mawskit demo",
) -> Path:
    """Write OUT/report.md (and loss PNGs) from whatever the run produced; return its path.

    `metrics` maps a run title to its metrics.json (default: {"WSP": RUNS/wsp/metrics.json});
    the runs become columns of one table, e.g. MAE probe | WSP from MAE | WSP from scratch.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(data_root) if data_root is not None else out / "data"
    runs = Path(runs_dir) if runs_dir is not None else out / "runs"
    metric_paths = metrics if metrics is not None else {"WSP": runs / "wsp" / "metrics.json"}
    lines = [f"# {title} report", "", f"Written {time.strftime('%Y-%m-%d %H:%M:%S')}.", ""]
    lines += _timing_section(timings)
    lines += _corpus_section(out / "corpus" / "captions.parquet")
    lines += _vocab_section(data / "vocab")
    lines += _shard_section(data / "shards")
    lines += _run_section("MAE pre-pretraining", runs / "mae", out, "mae_loss.png")
    lines += _run_section("WSP", runs / "wsp", out, "wsp_loss.png")
    if (runs / "wsp-scratch").exists():  # the demo's --scratch-baseline
        lines += _run_section("WSP from scratch", runs / "wsp-scratch", out, "wsp_scratch_loss.png")
    lines += _eval_section(metric_paths)
    path = out / "report.md"
    tmp = out / f".report.md.tmp-{os.getpid()}"
    tmp.write_text("\n".join(lines).rstrip() + "\n")
    os.replace(tmp, path)
    return path
