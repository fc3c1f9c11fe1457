"""bench.shard_write's arguments and a miniature run on a fresh checkout (no bench/out)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

import bench.shard_write as bench


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--images", str(bench.N_SMALL)], f"--images must be > {bench.N_SMALL}"),
        (["--images", "5"], f"--images must be > {bench.N_SMALL}, got 5"),
        (["--repeats", "0"], "--repeats must be >= 1, got 0"),
    ],
)
def test_bad_arguments_are_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--images <= N_SMALL would divide by zero (the marginal rate is the slope between
    N_SMALL and --images images), --repeats 0 would take the min of nothing."""
    with pytest.raises(SystemExit) as exit_:
        bench.main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_miniature_run_on_a_fresh_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With bench/out missing, the scratch folder and the JSON go under a new bench/out;
    every table row is there (a few samples, one run each: no figure is looked at)."""
    out = tmp_path / "bench" / "out" / "shard_write.json"
    for name, value in (("OUT", out), ("N_IMAGES", 6), ("PER_SHARD", 4), ("REPEATS", 1),
                        ("N_SMALL", 3)):  # fmt: skip
        monkeypatch.setattr(bench, name, value)
    scratch_dirs = []
    real = tempfile.TemporaryDirectory

    def recorded(*args: object, **kwargs: object) -> tempfile.TemporaryDirectory:
        scratch_dirs.append(kwargs.get("dir"))
        return real(*args, **kwargs)

    monkeypatch.setattr(bench.tempfile, "TemporaryDirectory", recorded)
    assert bench.main(["--images", "8", "--repeats", "1"]) == 0
    assert scratch_dirs == [out.parent] and list(out.parent.iterdir()) == [
        out.with_name("shard_write-8.json")
    ]  # the scratch folder is gone
    result = json.loads(out.with_name("shard_write-8.json").read_text())
    assert result["full_command"]["n_images"] == 8 and result["n_images"] == 6
    assert len(result["rows"]) == 7 and "curate shard, 8 file:// JPEGs" in capsys.readouterr().out
