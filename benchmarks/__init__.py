"""Benchmarks of the backend against the local stack; run with ``python -m benchmarks``.

They are not part of the test run (pytest collects only ``tests``). See
BENCHMARKS.md for what each one measures and the latest results.
"""
