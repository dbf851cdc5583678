"""Benchmarks. Each prints one JSON object and measures the raw limit in the same run, so the
ratio holds on a noisy machine. Timings never appear in pass/fail tests."""
