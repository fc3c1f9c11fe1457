"""mawskit labeling: hashtags in captions -> WordNet noun synsets -> class vocabulary."""
