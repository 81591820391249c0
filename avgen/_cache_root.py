"""The one folder avgen keeps things in between runs: paid assets, fetched voices."""

from __future__ import annotations

__docformat__ = "google"

import os
from collections.abc import Mapping
from pathlib import Path

__all__: list[str] = []


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """``$AVGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/avgen``, else ``~/.cache/avgen``.

    Args:
        env: The variables to read (default: ``os.environ``).
    """
    env = os.environ if env is None else env
    if env.get("AVGEN_CACHE_DIR"):
        return Path(env["AVGEN_CACHE_DIR"]).expanduser()
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "avgen"
    return Path.home() / ".cache" / "avgen"
