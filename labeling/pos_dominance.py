"""Part-of-speech dominance: a one-word tag that English uses as an adjective names a property.

Contract: `pos_uses(wn)[word] -> PosUses(noun, verb, adjective, adverb)`, the SemCor uses of
a word by part of speech (the tagged counts of WordNet 3.0's senses, `index.sense`, summed
over the word's senses; adjective satellites count as adjectives), and `names_property(uses,
visual_uses, ratio) -> bool`, the rule the mapper applies as its rule 4e.

The rule: a written word that is itself a one-word noun lemma (not an inflection: adjectives
take no plural `-s`) names a property, not a thing, when SemCor uses it as an adjective at
least `POS_DOMINANCE` (5) times as often as in all its visual noun senses together (+1), and
uses it as a noun at least once. The tag is then `not_noun`, as for a word WordNet knows
only as another part of speech. `#red` (58 adjective uses against bolshevik.n.01's 1),
`#white` and `#black` (76 and 68 against 0 for the board-game pieces and the rest), `#blue`
(63 against 9 for blue clothing + 1 for the blue sky: 5.7 x), `#green` (26 against the
village green's 1), `#pink` (12 against 0 for the flower), `#gray` (47 against 4),
`#small` (the small of the back), `#local`, `#modern`, `#special` (a dish on a menu) are
properties; `#orange` (7 against the fruit's 4 + 1 + 1: 1.2 x), `#gold` (4 against 2),
`#silver` (9 against the metal's 2 + the flatware's 1: 2.2 x), `#metal`, `#plastic`,
`#glass`, `#square` (2.3 x) keep their thing. A segmentation head is a written piece too
(`#bigred`); a plural is not (`#reds`, the Bolsheviks).

Why the visual senses, not all noun uses: the sense rule already picks among the visual
senses; the question here is whether the label they can give is what the word means when
posted. The colour words' noun uses are mostly the colour itself (red.n.01, an attribute),
a property too and no rival of the adjective. It is the comparison the non-visual
dominance rule makes (`senses.NON_VISUAL_DOMINANCE`) with the adjective as the rival.

Why a noun use is required: a word SemCor never tags as a noun has noun senses that running
prose spells out in full (`#remote` the remote control, 13 adjective uses against 0;
`#grand` the grand piano, `#semi`, `#husky`: ImageNet classes), so its counts cannot weigh
the noun against the adjective, and the word keeps its noun (so do `#antique` and
`#olive`, and, at a cost, junk such as `#simple`, the medicinal plant, or `#natural`).

Why 5 (bench mapping_accuracy and openclipart, and a list of common web hashtags): the
attested one-word ImageNet lemma with the largest ratio is `#safe`, the strongbox (26
against 6 + 1: 3.7 x; 4 and more lose none), and the basic colour term with the smallest is
`#blue` (5.7 x); 5 takes every colour, and of the words between 4 and 5 keeps `#south` (a
location). Costs at 5: `#human` (80 against homo.n.02's 5, a hominid), `#young` (any
immature animal), `#flat` (a level tract of land: 5.2 x), `#japanese` and `#chinese` (the
people: 5.0 x). Not caught: `#left` (50 against the direction's 19 + 4: 2.1 x) and `#right`,
whose rule would cost `#safe` and `#silver`.

Verbs are not weighed: `#fire` (71 verb uses against 4 + 3 for the fire and the flame)
and `#watch` (176 against the timepiece's 9) are things. The same rule over verb uses (or
adjective + verb uses) at 5 costs ImageNet `#file`, `#fly`, `#ram`, `#swing`, `#wreck` and
`#comfort` (12 hashtag forms; 6 at 8) and openclipart 703 keyword uses of labels (1,002
with adjective + verb), to mend
a few tags like `#walk` (the walkway) and `#ride` (the fairground ride).
Measured and rejected as well: adjective uses against all noun uses (+1) cannot separate
the colours from ImageNet (`#red` 58 / 18 = 3.2 and `#blue` 2.7 stay below `#safe`'s 3.7);
no noun-use requirement needs K > 13 to keep `#remote`, and then keeps `#blue`, `#gray`,
`#pink`.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

# A word's adjective uses must reach this many times its visual noun senses' uses (+1):
# above ImageNet's `#safe` (3.7), at most the colour `#blue` (5.7).
POS_DOMINANCE = 5.0

# sense keys: `lemma%ss_type:...`; ss_type 1 noun, 2 verb, 3 adjective,
# 4 adverb, 5 adjective satellite
_SS_TYPE = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 2}


class PosUses(NamedTuple):
    """SemCor uses of one word, by part of speech."""

    noun: int = 0
    verb: int = 0
    adjective: int = 0
    adverb: int = 0


NO_USES = PosUses()


@functools.cache
def pos_uses(wn: Any) -> dict[str, PosUses]:
    """word (lower case, `_` between words) -> its `PosUses`; a word with no tagged use is
    absent (`NO_USES`). Read once from WordNet's `index.sense` (sense key, offset, sense
    number, tag_cnt; ~207k lines, ~0.07 s), whose keys are WordNet 3.0's senses:
    `cntlist.rev` also holds stale keys (`red%5:00:00:bloody:00`, 3 uses) that no sense has
    and that `Lemma.count()` never reads."""
    return _read_pos_uses(wn)


def _read_pos_uses(wn: Any) -> dict[str, PosUses]:
    from labeling.wordnet import wordnet_path

    sums: dict[str, list[int]] = {}
    with open(wordnet_path(wn, "index.sense"), encoding="utf-8") as lines:
        for line in lines:
            key, _, _, count = line.split()
            if count != "0":
                word, _, rest = key.partition("%")
                sums.setdefault(word, [0, 0, 0, 0])[_SS_TYPE[rest[:1]]] += int(count)
    return {word: PosUses(*s) for word, s in sums.items()}


def names_property(uses: PosUses, visual_uses: int, ratio: float = POS_DOMINANCE) -> bool:
    """True when a word with `uses` whose visual noun senses have `visual_uses` tagged uses
    together names a property (module docstring): `uses.adjective >= ratio * (visual_uses
    + 1)` and `uses.noun >= 1`; `ratio` 0 turns the rule off."""
    if ratio <= 0 or uses.noun < 1:
        return False
    return uses.adjective >= ratio * (visual_uses + 1)
