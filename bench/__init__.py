"""Benchmarks for polygen: synthetic inventories (gen), build timings (build_bench), boot storm (storm).

Run them with ``make bench``; timings stay out of ``make test`` (tests/test_bench.py checks only
the bench's own correctness at a small size).
"""
