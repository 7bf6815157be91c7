"""Building blocks of the benchmark (tests/bench/bench.py): parsing and statistics are pure."""
