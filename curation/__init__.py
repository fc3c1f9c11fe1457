"""mawskit curation: ingest, stats, SQL and the `curate` command line."""
