"""Who is calling. Until tokens land (the security issue) every caller is 'anonymous'."""
from __future__ import annotations


def caller_name() -> str:
    return "anonymous"
