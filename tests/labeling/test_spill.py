"""labeling.spill: named arrays round-trip through one raw file, aligned."""

from __future__ import annotations

import numpy as np

from labeling.spill import ALIGN, load_arrays, save_arrays


def test_arrays_round_trip_with_dtypes_shapes_and_alignment(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "rows": rng.integers(0, 2**31 - 1, 1001, dtype=np.int32),
        "keys": rng.integers(0, 2**63 - 1, (7, 3), dtype=np.int64),
        "data": rng.integers(0, 256, 13, dtype=np.uint8),
        "keep": rng.random(5) < 0.5,
        "empty": np.zeros(0, np.float32),
        "tagged": np.int64(12345),
        "strided": np.arange(40, dtype=np.int16)[::3],  # not contiguous: written in C order
    }
    path = tmp_path / "task.spill"
    save_arrays(path, **arrays)
    back = load_arrays(path)
    assert list(back) == list(arrays)
    for name, value in arrays.items():
        value = np.asarray(value)
        assert back[name].dtype == value.dtype and back[name].shape == value.shape, name
        assert np.array_equal(back[name], value), name
        assert back[name].ctypes.data % value.dtype.itemsize == 0, name  # aligned views
    assert int(back["tagged"]) == 12345
    assert path.stat().st_size % ALIGN == 0


def test_nothing_to_save(tmp_path):
    save_arrays(tmp_path / "none")
    assert load_arrays(tmp_path / "none") == {}


def test_some_arrays_only(tmp_path):
    rows, tally = np.arange(10, dtype=np.int32), np.arange(3, dtype=np.int64) * 7
    save_arrays(tmp_path / "x", rows=rows, tally=tally, tagged=np.int64(4), empty=np.zeros(0))
    some = load_arrays(tmp_path / "x", names=("tally", "tagged", "empty"))
    assert list(some) == ["tally", "tagged", "empty"]
    assert some["tally"].tolist() == [0, 7, 14] and int(some["tagged"]) == 4
    assert some["tagged"].shape == () and some["empty"].shape == (0,)
