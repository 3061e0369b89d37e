"""The CLI's own settings: where the API is and which token to send.

HARBORMASTER_URL (default: this checkout's web address from the platform's configuration)
and HARBORMASTER_TOKEN, else the file HARBORMASTER_TOKEN_FILE names, else the admin token
the release step wrote into the local data directory (readable by root only).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import config


@dataclass(frozen=True)
class Settings:
    url: str
    token: str | None
    token_file: Path | None     # where the token was read from, when it came from a file
    token_file_named: bool      # the user named the file (a missing one is an error then)


def from_env() -> Settings:
    platform = config.from_env()
    named = os.environ.get("HARBORMASTER_TOKEN_FILE")
    token_file = Path(named) if named else platform.data_dir / "admin-token"
    token = (os.environ.get("HARBORMASTER_TOKEN") or "").strip() or None
    return Settings(url=os.environ.get("HARBORMASTER_URL") or platform.web_url, token=token,
                    token_file=None if token else token_file, token_file_named=bool(named))
