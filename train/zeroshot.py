"""WordNet zero-shot: score a target label set (wnids) with a WSP head over another vocabulary.

The rule, per head class c (a WordNet noun synset) and target set T:

    up(c)       = {c} ∪ the hypernym closure of c (hypernyms and instance hypernyms)
    nearest(c)  = the targets in up(c) that are not hypernyms of another target in up(c)
    c supports t  exactly when t ∈ nearest(c), with its whole softmax probability

So a head class supports the targets it equals or falls under ("golden retriever" supports
"dog"), and only the most specific of them: with both "dog" and "golden retriever" among
the targets, "golden retriever" supports only "golden retriever" (supporting "dog" too would
make "dog" outscore every one of its hyponyms on every image). A head class that is an
ancestor of targets ("dog" for target "golden retriever") supports none of them: its
probability says nothing about which of its descendants is shown, and splitting it would
need a prior over them. With multiple inheritance a class may support several nearest
targets; each gets the full probability (they are all correct in WordNet's sense).

    score[n, t] = sum over head classes c supporting t of softmax(logits[n])[c]

Ground truth of an eval sample: the union of nearest(l) over its labels l (vocabulary wnids
for shards; the folder's wnid for an image folder, which need not be in the vocabulary).
Samples whose labels map to no target are left out; the top-1 prediction is a hit when it is
in the sample's ground-truth set. Coverage: `reachable` = targets supported by at least one
head class (the others can never be predicted).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curation.errors import UsageError

WNID = re.compile(r"n\d{8}")


def read_target_wnids(path: str | Path) -> list[str]:
    """One `n########` per line (blank lines and `#` comments skipped), in file order.

    UsageError for a missing file, a malformed line, a duplicate, an empty list, or a wnid
    that is not a WordNet 3.0 noun synset.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--target-wnids {path}: no such file")
    wnids: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not WNID.fullmatch(text):
            raise UsageError(f"--target-wnids {path}:{number}: {text!r} is not a wnid (n########)")
        wnids.append(text)
    if not wnids:
        raise UsageError(f"--target-wnids {path}: no wnids in the file")
    if len(set(wnids)) != len(wnids):
        dup = next(w for w in wnids if wnids.count(w) > 1)
        raise UsageError(f"--target-wnids {path}: {dup} is listed twice")
    synsets(wnids, what=f"--target-wnids {path}")  # every target must be a noun synset
    return wnids


def synsets(wnids: list[str], what: str) -> list[Any]:
    """WordNet synsets of `wnids`; UsageError naming the first that WordNet 3.0 lacks."""
    from labeling.wordnet import wordnet

    wn = wordnet()
    out = []
    for wnid in wnids:
        with warnings.catch_warnings():  # NLTK warns, then returns None, for a bad offset
            warnings.simplefilter("ignore")
            try:
                synset = wn.synset_from_pos_and_offset("n", int(wnid[1:]))
            except Exception:  # older NLTK raises WordNetError instead
                synset = None
        if synset is None:
            raise UsageError(f"{what}: {wnid} is not a WordNet 3.0 noun synset")
        out.append(synset)
    return out


@dataclass(frozen=True)
class ZeroShotMap:
    """Which target each wnid supports. `nearest[wnid]` = indices into `targets`."""

    targets: tuple[str, ...]
    nearest: dict[str, tuple[int, ...]]

    @classmethod
    def build(cls, targets: list[str], wnids: list[str]) -> ZeroShotMap:
        """nearest(w) for every w in `wnids` (vocabulary classes and sample labels)."""
        index = {t: i for i, t in enumerate(targets)}

        def up(wnid: str) -> set[str]:
            (synset,) = synsets([wnid], what="zero-shot")
            closure = synset.closure(lambda s: s.hypernyms() + s.instance_hypernyms())
            return {wnid} | {f"n{s.offset():08d}" for s in closure}

        # a target's own ancestors: to drop the less specific of two targets on one path
        target_up = {t: up(t) - {t} for t in targets}
        nearest: dict[str, tuple[int, ...]] = {}
        for wnid in dict.fromkeys(wnids):
            hits = up(wnid) & index.keys()
            covered = set().union(*(target_up[t] for t in hits)) if hits else set()
            nearest[wnid] = tuple(sorted(index[t] for t in hits - covered))
        return cls(tuple(targets), nearest)

    def matrix(self, class_wnids: list[str]) -> Any:
        """[K, T] float 0/1: M[c, t] = 1 when head class c supports target t."""
        import torch

        m = torch.zeros(len(class_wnids), len(self.targets))
        for c, wnid in enumerate(class_wnids):
            m[c, list(self.nearest[wnid])] = 1.0
        return m

    def ground_truth(self, labels: list[list[str]]) -> Any:
        """Per-sample label wnids -> [N, T] multi-hot targets (all zero: not scorable)."""
        import torch

        gt = torch.zeros(len(labels), len(self.targets))
        for n, wnids in enumerate(labels):
            for wnid in wnids:
                gt[n, list(self.nearest[wnid])] = 1.0
        return gt


def zero_shot_scores(logits: Any, support: Any) -> Any:
    """logits [N, K] of the head, support [K, T] -> target scores [N, T] (summed probs)."""
    return logits.float().softmax(dim=1) @ support


def zero_shot_metrics(
    logits: Any, labels: list[list[str]], class_wnids: list[str], targets: list[str]
) -> dict[str, Any]:
    """zeroshot_{targets, reachable, samples, top1, top5, chance_top1_uniform}.

    top1/top5 over the samples whose labels map to a target (NaN when none does).
    """
    import math

    from train.metrics import topk_hit_rate

    mapping = ZeroShotMap.build(targets, [*class_wnids, *(w for ls in labels for w in ls)])
    support = mapping.matrix(class_wnids)
    gt = mapping.ground_truth(labels)
    scorable = gt.sum(dim=1) > 0  # [N]
    out: dict[str, Any] = {
        "zeroshot_targets": len(targets),
        "zeroshot_reachable": int((support.sum(dim=0) > 0).sum()),
        "zeroshot_samples": int(scorable.sum()),
    }
    if not bool(scorable.any()):
        out.update(zeroshot_top1=math.nan, zeroshot_top5=math.nan)
        return out
    scores = zero_shot_scores(logits[scorable], support)
    out["zeroshot_top1"] = topk_hit_rate(scores, gt[scorable], 1)
    out["zeroshot_top5"] = topk_hit_rate(scores, gt[scorable], 5)
    # a uniform guess over all targets: the mean share of a sample's ground-truth targets
    out["zeroshot_chance_top1_uniform"] = float(gt[scorable].sum(dim=1).mean()) / len(targets)
    return out
