"""Benchmarks: scripts that print comparable figures (not part of the test run)."""
