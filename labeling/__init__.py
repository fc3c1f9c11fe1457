"""mawskit labeling: hashtags in captions -> WordNet noun synsets -> class vocabulary."""

from labeling.wordnet_cache import code_digest as _code_digest

# The code this process runs, for `labeling.wordnet_cache`'s keys: taken when the package is
# first imported, before any of its modules is, so an edit made later does not mislabel it.
CODE_DIGEST = _code_digest()
