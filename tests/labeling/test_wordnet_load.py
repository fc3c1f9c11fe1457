"""The faster WordNet load answers exactly what NLTK's own loader does."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections import defaultdict


def test_lemma_map_equals_nltks_parse():
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    from labeling.wordnet import wordnet

    wn = wordnet()
    reference = copy.copy(wn)
    reference._lemma_pos_offset_map = defaultdict(dict)
    WordNetCorpusReader._load_lemma_pos_offset_map(reference)  # NLTK's parse, same files
    assert reference._lemma_pos_offset_map == wn._lemma_pos_offset_map
    assert [s.name() for s in wn.synsets("dogs", "n")][:2] == ["dog.n.01", "frump.n.01"]
    satellites = wn.synsets("big", "s")
    assert satellites and {s.pos() for s in satellites} == {"s"}


def test_nltk_loads_without_scipy_which_still_imports_later():
    code = (
        "import sys; from labeling.wordnet import wordnet; wn = wordnet(); "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'scipy']; "
        "print(wn.synsets('dog')[0].name()); import scipy.stats, scipy.sparse; "
        "print(scipy.stats.norm.cdf(0), scipy.sparse.eye(3).nnz)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["dog.n.01", "0.5", "3"]
