"""shards.loader: exact eval passes, correct multi-hot targets, an endless seeded train stream."""

from __future__ import annotations

import itertools
import json
import tarfile
from pathlib import Path

import pytest
import torch

from curation.errors import UsageError
from shards.loader import StreamKey, _repeat_by_weight, make_loader
from shards.manifest import read_manifest


def class_ids_in_order(manifest, split: str) -> list[list[int]]:
    """The class ids of every sample, read straight from the tars in manifest order."""
    out = []
    for path in manifest.paths(split):
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".json"):
                    out.append(json.loads(tar.extractfile(member).read())["class_ids"])
    return out


def test_eval_pass_is_exact_and_targets_are_multi_hot(shards_dir: Path) -> None:
    manifest = read_manifest(shards_dir)
    batches = list(make_loader(manifest, "val", batch_size=24, image_size=32, train=False))
    assert [len(b[0]) for b in batches] == [24, 24, 16]  # 64 samples, last batch short
    images = torch.cat([b[0] for b in batches])
    targets = torch.cat([b[1] for b in batches])
    weights = torch.cat([b[2] for b in batches])
    assert images.shape == (64, 3, 32, 32) and images.dtype == torch.float32
    assert targets.shape == (64, 5) and weights.shape == (64,)
    expected = torch.zeros(64, 5)
    for row, ids in enumerate(class_ids_in_order(manifest, "val")):
        expected[row, ids] = 1.0
    assert torch.equal(targets, expected)
    assert torch.all(weights == 1.0)
    assert -3 < images.mean() < 3 and images.std() > 0.3  # normalised, not 0..255


def test_eval_pass_is_deterministic_and_exact_with_workers(shards_dir: Path) -> None:
    manifest = read_manifest(shards_dir)

    def images(num_workers: int) -> torch.Tensor:
        loader = make_loader(
            manifest, "train", batch_size=50, image_size=32, train=False, num_workers=num_workers
        )
        return torch.cat([b[0] for b in loader])

    one, two = images(0), images(2)
    assert len(one) == len(two) == manifest.count("train") == 192
    # workers interleave shards, so compare as multisets of per-image sums
    sums_one, sums_two = one.sum(dim=(1, 2, 3)), two.sum(dim=(1, 2, 3))
    assert torch.allclose(sums_one.sort().values, sums_two.sort().values)


def test_train_stream_is_endless_full_and_seeded(shards_dir: Path) -> None:
    manifest = read_manifest(shards_dir)

    def first(n: int, seed: int) -> list:
        loader = make_loader(manifest, "train", batch_size=32, image_size=32, train=True, seed=seed)
        return list(itertools.islice(loader, n))

    batches = first(10, seed=1)  # 320 samples drawn from 192: the stream resamples
    assert len(batches) == 10 and all(len(b[0]) == 32 for b in batches)
    again = first(2, seed=1)
    assert torch.equal(batches[0][1], again[0][1]) and torch.equal(batches[1][1], again[1][1])
    other = first(2, seed=2)
    assert not torch.equal(batches[0][1], other[0][1])


def test_epoch_samples_bounds_the_train_stream(shards_dir: Path) -> None:
    manifest = read_manifest(shards_dir)
    loader = make_loader(manifest, "train", batch_size=16, image_size=32, train=True,
                         epoch_samples=100)  # fmt: skip
    assert len(list(loader)) == 100 // 16


def test_repeat_by_weight_matches_weights_in_expectation() -> None:
    samples = [{"meta": {"weight": w}, "i": i} for i, w in enumerate([0.0, 0.5, 1.0, 2.5] * 500)]
    counts = [0, 0, 0, 0]
    for s in _repeat_by_weight(iter(samples), StreamKey(0, 0)):
        counts[s["i"] % 4] += 1
    assert counts[0] == 0 and counts[2] == 500
    assert 200 < counts[1] < 300 and 1200 < counts[3] < 1300


def test_corrupt_sample_is_skipped(tmp_path: Path, make_shards) -> None:
    folder = make_shards(tmp_path / "s", n_train=20, n_val=10, corrupt_key=f"{21:016x}")
    manifest = read_manifest(folder)
    with pytest.warns(UserWarning):
        batches = list(make_loader(manifest, "val", batch_size=4, image_size=32, train=False))
    assert sum(len(b[0]) for b in batches) == 9


def test_empty_split_is_a_usage_error(tmp_path: Path, make_shards) -> None:
    folder = make_shards(tmp_path / "s", n_train=8, n_val=0)
    with pytest.raises(UsageError, match="no val shards"):
        make_loader(read_manifest(folder), "val", batch_size=4, image_size=32, train=False)


def take(manifest, n: int, **kwargs) -> list:
    args = {"batch_size": 8, "image_size": 32, "train": True, "seed": 3, **kwargs}
    return list(itertools.islice(make_loader(manifest, "train", **args), n))


@pytest.mark.parametrize("num_workers", [0, 2])
def test_start_batch_continues_the_same_sequence(shards_dir: Path, num_workers: int) -> None:
    manifest = read_manifest(shards_dir)
    whole = take(manifest, 7, num_workers=num_workers)
    resumed = take(manifest, 4, num_workers=num_workers, start_batch=3)
    for a, b in zip(whole[3:], resumed, strict=True):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # pixels too: same crops
    again = take(manifest, 7, num_workers=num_workers)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(whole, again, strict=True))


def test_ranks_draw_different_streams(shards_dir: Path) -> None:
    manifest = read_manifest(shards_dir)
    zero = take(manifest, 2, rank=0, world_size=2)
    one = take(manifest, 2, rank=1, world_size=2)
    assert not torch.equal(zero[0][0], one[0][0])


def _count_batches(args: tuple) -> tuple[int, int]:
    folder, rank = args
    torch.set_num_threads(1)
    loader = make_loader(read_manifest(folder), "train", batch_size=4, image_size=32, train=True,
                         rank=rank, world_size=2, epoch_samples=90)  # fmt: skip
    batches = list(loader)
    return len(batches), sum(len(b[0]) for b in batches)


def test_two_processes_get_equal_batches_from_uneven_shards(tmp_path: Path, make_shards) -> None:
    import multiprocessing

    # 3 shards of 40, 40 and 5 samples: a plain split by shard would give ranks 80 vs 5
    folder = make_shards(tmp_path / "s", n_train=85, n_val=4, per_shard=40)
    assert [s.count for s in read_manifest(folder).shards("train")] == [40, 40, 5]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        counts = pool.map(_count_batches, [(folder, 0), (folder, 1)])
    assert counts == [(11, 44), (11, 44)]  # 90 // (4 * 2) batches each, all full


def test_shards_are_drawn_in_proportion_to_their_counts(tmp_path: Path, make_shards) -> None:
    from shards.loader import _resampled_shards

    folder = make_shards(tmp_path / "s", n_train=85, n_val=4, per_shard=40)
    manifest = read_manifest(folder)
    urls = manifest.paths("train")
    draws = list(itertools.islice(_resampled_shards(urls, [40, 40, 5], StreamKey(0, 0)), 8500))
    small = sum(d["url"] == urls[2] for d in draws)
    assert 350 < small < 650  # expected 8500 * 5 / 85 = 500
