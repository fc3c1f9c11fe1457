"""mawskit shards: crawl or read images, write webdataset shards, stream them to training."""
