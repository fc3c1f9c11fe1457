"""train.zeroshot with real WordNet 3.0: the support rule, scores, ground truth, refusals."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from curation.errors import UsageError
from train.zeroshot import ZeroShotMap, read_target_wnids, zero_shot_metrics

# head classes
GOLDEN_RETRIEVER, DOG, PERSIAN_CAT, ANIMAL, CONVERTIBLE, PUG = (
    "n02099601", "n02084071", "n02123394", "n00015388", "n03100240", "n02110958",
)  # fmt: skip
# targets besides DOG and GOLDEN_RETRIEVER
DOMESTIC_CAT, CAR, CHAIR, CAT, DOMESTIC_ANIMAL = (
    "n02121808", "n02958343", "n03001627", "n02121620", "n01317541",
)  # fmt: skip
TABBY = "n02123045"  # not in the head: a sample label only (its hypernym: domestic cat)

VOCAB = [GOLDEN_RETRIEVER, DOG, PERSIAN_CAT, ANIMAL, CONVERTIBLE, PUG]
TARGETS = [DOG, DOMESTIC_CAT, CAR, CHAIR, GOLDEN_RETRIEVER]


def test_each_class_supports_its_nearest_target_only() -> None:
    mapping = ZeroShotMap.build(TARGETS, VOCAB)
    assert mapping.nearest == {
        GOLDEN_RETRIEVER: (4,),  # itself, not also its hypernym "dog"
        DOG: (0,),  # equal
        PERSIAN_CAT: (1,),  # falls under domestic cat
        ANIMAL: (),  # an ancestor of targets supports none of them
        CONVERTIBLE: (2,),  # convertible -> car
        PUG: (0,),  # pug -> dog ("golden retriever" is no ancestor of pug)
    }
    expected = torch.zeros(6, 5)
    for row, col in ((0, 4), (1, 0), (2, 1), (4, 2), (5, 0)):
        expected[row, col] = 1.0
    assert torch.equal(mapping.matrix(VOCAB), expected)


def test_multiple_inheritance_supports_every_nearest_target() -> None:
    # domestic cat has two hypernyms, "domestic animal" and "cat": it falls under both
    mapping = ZeroShotMap.build([DOMESTIC_ANIMAL, CAT, ANIMAL], [PERSIAN_CAT, DOG])
    assert mapping.nearest == {PERSIAN_CAT: (0, 1), DOG: (0,)}  # animal: covered by both


def test_scores_sum_supporting_probabilities_and_ground_truth_maps_labels() -> None:
    probs = torch.tensor([
        [0.10, 0.15, 0.30, 0.20, 0.05, 0.20],  # persian cat is the top class, but dog + pug win
        [0.05, 0.05, 0.20, 0.10, 0.10, 0.50],  # the animal-only sample: not scorable
        [0.40, 0.05, 0.20, 0.10, 0.10, 0.15],  # golden retriever wins; the label is tabby
    ])  # fmt: skip
    labels = [[PUG], [ANIMAL], [TABBY, ANIMAL]]
    metrics = zero_shot_metrics(probs.log(), labels, VOCAB, TARGETS)
    assert metrics == {
        "zeroshot_targets": 5,
        "zeroshot_reachable": 4,  # nothing in the head falls under "chair"
        "zeroshot_samples": 2,
        "zeroshot_top1": 0.5,  # sample 0: dog (0.35 > 0.30) is right; sample 2: wrong
        "zeroshot_top5": 1.0,
        "zeroshot_chance_top1_uniform": pytest.approx(1 / 5),
    }
    mapping = ZeroShotMap.build(TARGETS, [*VOCAB, TABBY])
    scores = probs @ mapping.matrix(VOCAB)
    assert torch.allclose(scores[0], torch.tensor([0.35, 0.30, 0.05, 0.0, 0.10]))
    gt = mapping.ground_truth(labels)
    assert gt.tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 1, 0, 0, 0]]


def test_no_scorable_sample_gives_nan() -> None:
    metrics = zero_shot_metrics(torch.zeros(1, 6), [[ANIMAL]], VOCAB, TARGETS)
    assert metrics["zeroshot_samples"] == 0 and math.isnan(metrics["zeroshot_top1"])


def test_read_target_wnids(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text(f"# ImageNet-style list\n{DOG}\n\n{CAR}  # a comment\n")
    assert read_target_wnids(good) == [DOG, CAR]
    cases = {
        "missing.txt": None,
        "bad.txt": f"{DOG}\ndog\n",
        "dup.txt": f"{DOG}\n{CAR}\n{DOG}\n",
        "unknown.txt": f"{DOG}\nn99999999\n",
        "empty.txt": "# nothing\n",
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(UsageError):
            read_target_wnids(tmp_path / name)
