"""Benchmarks for polygen: synthetic inventories (gen), build timings (build_bench), boot storm (storm),
the hardening run (hardening), and where their raw results go (rundir: bench/runs/, git-ignored).

Run them with ``make bench``; timings stay out of ``make test`` (tests/test_bench.py checks only
the bench's own correctness at a small size). bench/RESULTS.md is a summary curated by hand.
"""
