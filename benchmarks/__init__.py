"""Benchmarks: pytest-benchmark suites and the ``python -m benchmarks`` report runner."""
