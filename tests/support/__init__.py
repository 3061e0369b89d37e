"""Test support: the test platform, the Docker socket proxy, waiting helpers."""
