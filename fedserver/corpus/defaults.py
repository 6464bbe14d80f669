"""Defaults of a release's options, shared by the exporter and the command line, which shows them in
its help without importing the exporter."""

DEFAULT_SHARD_SIZE = 100_000
# Level 1 of 1..9: on corpus text it compresses ~3x faster than level 6 for files ~20% larger
# (bench/export.py measures the levels); the manifest records the level used.
DEFAULT_GZIP_LEVEL = 1
