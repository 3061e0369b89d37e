"""The web process's configuration, as create_app(cfg) was given it."""
from __future__ import annotations

from flask import current_app

import config

KEY = "HARBORMASTER_CONFIG"


def settings() -> config.Config:
    return current_app.config[KEY]
