"""Bench 1: hashtag -> WordNet mapping accuracy on ImageNet-1k's classes and lemmas.

    .venv/bin/python -m bench.mapping_accuracy   # ~10-30 s; bench/out/mapping_accuracy.json

Every lemma of the 1,000 ImageNet classes (timm's `imagenet_synset_to_lemma.txt`) becomes
four hashtags: `joined` (`goldenretriever`), `camel` (`GoldenRetriever`), `plural`
(`goldenretrievers`: regular English plural of the last word, joined) and `underscored`
(`golden_retriever`). A tag is right when the mapper labels it (reason None) with exactly
the class's wnid. Baseline, in the same run: the first noun sense of the raw tag in NLTK
(`wn.synsets(tag, "n")[0]`). Misses are sorted by kind:

- `ambiguous_in_imagenet`: two ImageNet classes share this hashtag (`crane`, `maillot`),
  so at most one of them can be right;
- `no_synset`: no noun found (reason no_match / not_noun / stoplisted ...);
- `filtered`: the right synset, dropped by the visual filter or the stoplist;
- `wrong_sense`: the right lemma, another of its senses chosen; split by why, from
  WordNet's own data: `commoner` (the chosen sense has more SemCor uses of the word than
  ImageNet's: `mouse` the animal, 14 to 0), `synonym` (the word is not the first lemma of
  ImageNet's synset, it is of the chosen one: `hedgehog` -> Erinaceus, ImageNet's class is
  "porcupine, hedgehog"), `tie` (the rest: equal counts, the preference order decided);
- `wrong_lemma`: segmentation or affix stripping found another word.

Ablations, in the same run: the default rule less one tie-break among senses of equal
(count, lexname), switched off through the mapper's public methods (`is_physical_kind`,
`uses`, and both with `breadth`): what each tie-break wins. The last tie-break,
`senses.is_past` (a thing of today before one its gloss places in the past), has no
mapper method and stays on in every ablation; it wins `bobsled` and `bobsleigh`.

Oracle, per form: the share of lemmas a sense rule could get right at all: the tag is not
shared by two ImageNet classes and the class's synset is among the noun senses of the lemma
the mapper resolved (`strict`); `shared once` also credits one class per shared tag;
`counts respected`: the default rule's accuracy plus its `tie` and `synonym` misses, the
most a rule can reach that never picks a sense SemCor counts as rarer.
"""

from __future__ import annotations

import collections
import json
import math
import re
import sys
import time
from pathlib import Path

FORMS = ("joined", "camel", "plural", "underscored")
OUT = Path(__file__).resolve().parent / "out" / "mapping_accuracy.json"
TARGETS = {"joined": 0.85, "camel": 0.90, "plural": 0.90, "underscored": 0.90}


def imagenet_lemmas() -> list[tuple[str, str]]:
    """(wnid, lemma) for every lemma of the 1,000 ImageNet-1k classes, in class order."""
    import timm

    info = Path(timm.__file__).parent / "data" / "_info"
    wnids = (info / "imagenet_synsets.txt").read_text().split()
    lines = (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
    lemmas = dict(line.split("\t", 1) for line in lines)
    return [(w, lemma.strip()) for w in wnids for lemma in lemmas[w].split(",")]


def plural(word: str) -> str:
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    return word + "s"


def hashtag_forms(lemma: str) -> dict[str, str]:
    words = [w for w in re.split(r"[\s_\-'.]+", lemma) if w]
    low = [w.lower() for w in words]
    return {
        "joined": "".join(low),
        "camel": "".join(w[:1].upper() + w[1:] for w in words),
        "plural": "".join(low[:-1]) + plural(low[-1]),
        "underscored": "_".join(low),
    }


def miss_kind(wn, mapper, mapping, wnid: str, shared: bool) -> str:
    if shared:
        return "ambiguous_in_imagenet"
    if mapping.wnid is None:
        return "no_synset"
    if mapping.wnid == wnid:
        return "filtered"
    target = mapper.synset(wnid)
    return "wrong_sense" if target in wn.synsets(mapping.canonical, pos="n") else "wrong_lemma"


def wrong_sense_kind(mapper, mapping, wnid: str) -> str:
    """`commoner`, `synonym` or `tie` for a `wrong_sense` miss (module docstring)."""
    from labeling.senses import tagged_count

    got, want, lemma = mapper.record(mapping.wnid), mapper.record(wnid), mapping.canonical
    if tagged_count(got, lemma) > tagged_count(want, lemma):
        return "commoner"
    head = lemma.casefold()
    if want.names[0].casefold() != head and got.names[0].casefold() == head:
        return "synonym"
    return "tie"


def oracle(wn, mapper, cases, owners) -> dict[str, dict[str, float]]:
    """Upper bounds on accuracy per form for any sense rule (module docstring)."""
    reachable: dict[str, int] = collections.Counter()
    shared_groups: dict[str, set] = collections.defaultdict(set)
    lemmas = collections.Counter(form for _, form, _ in cases)
    for wnid, form, tag in cases:
        m = mapper.map(tag)
        senses = {f"n{s.offset():08d}" for s in wn.synsets(m.canonical, pos="n")} if m.wnid else ()
        if wnid not in senses:
            continue
        if len(owners[(form, tag.casefold())]) > 1:
            shared_groups[form].add(tag.casefold())
        else:
            reachable[form] += 1
    return {
        "strict": {f: reachable[f] / lemmas[f] for f in FORMS},
        "shared once": {f: (reachable[f] + len(shared_groups[f])) / lemmas[f] for f in FORMS},
    }


def ablations(wn) -> dict:
    """Mappers with the default rule less one of its tie-breaks among equal (count,
    lexname): `is_physical_kind` (every sense counts as a physical kind), `uses` (every
    concept as unused), and both with `breadth` (the past cue, then WordNet's order,
    decides)."""
    from labeling.mapper import HashtagMapper

    class WithoutPhysical(HashtagMapper):
        def is_physical_kind(self, synset) -> bool:
            return True

    class WithoutUses(HashtagMapper):
        def uses(self, synset) -> int:
            return 0

    class WithoutTieBreaks(WithoutPhysical, WithoutUses):
        def breadth(self, synset) -> int:
            return 0

    return {
        "ablation: without physical kind": WithoutPhysical(wn),
        "ablation: without concept uses": WithoutUses(wn),
        "ablation: past cue and order only": WithoutTieBreaks(wn),
    }


def main() -> int:
    from labeling.mapper import HashtagMapper
    from labeling.senses import SENSE_RULES
    from labeling.wordnet import wordnet

    wn = wordnet()
    pairs = imagenet_lemmas()
    cases = [
        (wnid, form, tag) for wnid, lemma in pairs for form, tag in hashtag_forms(lemma).items()
    ]
    owners: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for wnid, form, tag in cases:
        owners[(form, tag.casefold())].add(wnid)

    results: dict[str, dict] = {}
    started = time.perf_counter()
    right = collections.Counter()
    for wnid, form, tag in cases:
        senses = wn.synsets(tag, pos="n")
        right[form] += bool(senses) and f"n{senses[0].offset():08d}" == wnid
        right[form, "none"] += not senses
    results["baseline: NLTK first noun sense"] = {
        "seconds": round(time.perf_counter() - started, 2),
        "accuracy": {f: right[f] / len(pairs) for f in FORMS},
        "no_synset": {f: right[f, "none"] / len(pairs) for f in FORMS},
    }
    examples: dict[str, list] = {}
    for rule in SENSE_RULES:
        mapper = HashtagMapper(wn, sense_rule=rule)
        started = time.perf_counter()
        right = collections.Counter()
        kinds: dict[str, collections.Counter] = {f: collections.Counter() for f in FORMS}
        for wnid, form, tag in cases:
            m = mapper.map(tag)
            if m.reason is None and m.wnid == wnid:
                right[form] += 1
                continue
            kind = miss_kind(wn, mapper, m, wnid, len(owners[(form, tag.casefold())]) > 1)
            kinds[form][kind] += 1
            if kind == "wrong_sense":
                kind = f"wrong_sense: {wrong_sense_kind(mapper, m, wnid)}"
                kinds[form][kind] += 1
            if rule == "frequent_visual" and form == "joined":
                got = mapper.synset(m.wnid).name() if m.wnid else m.reason
                examples.setdefault(kind, []).append(
                    f"{tag} -> {got} (want {mapper.synset(wnid).name()})"
                )
        results[f"mapper --sense-rule {rule}"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "accuracy": {f: right[f] / len(pairs) for f in FORMS},
            "right": {f: right[f] for f in FORMS},
            "misses_by_kind": {f: dict(kinds[f].most_common()) for f in FORMS},
        }

    # the default rule with one tie-break switched off through the mapper's public methods
    for name, mapper in ablations(wn).items():
        right = collections.Counter(
            form for wnid, form, tag in cases if (m := mapper.map(tag)).reason is None
            and m.wnid == wnid
        )  # fmt: skip
        results[name] = {"accuracy": {f: right[f] / len(pairs) for f in FORMS}}

    print(f"ImageNet-1k: {len(pairs)} lemmas x {len(FORMS)} hashtag forms; exact-wnid accuracy")
    print(f"  {'method':<36}" + "".join(f"{f:>13}" for f in FORMS))
    for name, r in results.items():
        print(f"  {name:<36}" + "".join(f"{r['accuracy'][f]:>13.2%}" for f in FORMS))
    base = results["baseline: NLTK first noun sense"]
    print(
        f"  {'baseline: no synset at all':<36}"
        + "".join(f"{base['no_synset'][f]:>13.1%}" for f in FORMS)
    )
    bounds = oracle(wn, HashtagMapper(wn), cases, owners)
    # a rule that never overrules SemCor's counts can win at most the tie and synonym misses
    default = results["mapper --sense-rule frequent_visual"]
    bounds["counts respected"] = {
        f: default["accuracy"][f]
        + sum(n for k, n in default["misses_by_kind"][f].items() if k.endswith(("tie", "synonym")))
        / len(pairs)
        for f in FORMS
    }
    results["oracle"] = bounds
    for name, bound in bounds.items():
        print(f"  {'oracle: ' + name:<36}" + "".join(f"{bound[f]:>13.1%}" for f in FORMS))
    print(f"  {'target':<36}" + "".join(f"{'>=' + format(TARGETS[f], '.0%'):>13}" for f in FORMS))
    # lemmas the default rule would still have to win: ceil(target x lemmas) - right
    right_now = default["right"]
    short = {f: max(0, math.ceil(TARGETS[f] * len(pairs) - 1e-9) - right_now[f]) for f in FORMS}
    results["lemmas_short_of_target"] = short
    print(f"  {'lemmas short of the target':<36}" + "".join(f"{short[f]:>13}" for f in FORMS))
    print("\nmisses by kind, default rule (frequent_visual)")
    default = default["misses_by_kind"]
    kinds_seen = sorted({k for f in FORMS for k in default[f]})
    for k in kinds_seen:
        print(f"  {k:<36}" + "".join(f"{default[f].get(k, 0):>13}" for f in FORMS))
    print("\nexamples of misses, joined form")
    for kind, lines in sorted(examples.items()):
        for line in lines[:6]:
            print(f"  {kind:<22} {line}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    results["lemmas"] = len(pairs)
    results["examples"] = {k: v[:40] for k, v in examples.items()}
    OUT.write_text(json.dumps(results, indent=1))
    print(f"\n-> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
