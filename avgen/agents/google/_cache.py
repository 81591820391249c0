"""The asset cache: a request paid for once is never paid for again, across sessions.

Every google agent keys what it makes (a script, a narration, a still, a clip) by the
model, the prompt, every parameter and the SHA-256 of any input image, and keeps the
result in a `avgen.resilience.DiskStore`. An identical request later — in another session,
another process, after a crash — is answered from the disk: no request reaches Google and
nothing is charged. Change a scene's prompt and only that scene is paid for again.

The folder is ``$AVGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/avgen``, else
``~/.cache/avgen``, with one ``google`` sub-folder; its ``operations`` folder holds the
Veo operations in flight (see `avgen.agents.google.VeoClips`). Pass ``cache=None`` to
`avgen.agents.google.google_agents` (``avgen make --no-cache``) to switch it off, or an
`AssetCache` of your own (for instance with ``max_bytes``).
"""

from __future__ import annotations

__docformat__ = "google"

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avgen._hashing import json_sha256
from avgen.resilience import DiskStore, ResilienceEvent, emit

__all__ = ["AssetCache", "default_cache_dir"]


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the google agents keep what they paid for (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("AVGEN_CACHE_DIR"):
        base = Path(env["AVGEN_CACHE_DIR"]).expanduser()
    elif env.get("XDG_CACHE_HOME"):
        base = Path(env["XDG_CACHE_HOME"]).expanduser() / "avgen"
    else:
        base = Path.home() / ".cache" / "avgen"
    return base / "google"


class AssetCache:
    """Media and scripts kept on disk under a key made of everything that shaped them.

    Args:
        directory: The cache folder (default: `default_cache_dir`).
        max_bytes: Limit on the stored data; past it the least recently used entries go.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, *,
                 max_bytes: int | None = None) -> None:
        self.store = DiskStore(directory if directory is not None else default_cache_dir(),
                               max_bytes=max_bytes)
        """The `avgen.resilience.DiskStore` underneath."""

    def __repr__(self) -> str:
        return f"AssetCache({str(self.store.directory)!r})"

    @staticmethod
    def key(kind: str, **request: Any) -> str:
        """The key of a request: SHA-256 of its kind and canonical JSON parameters (pass
        bytes-valued inputs as their SHA-256)."""
        return json_sha256({"kind": kind, **request})

    def fetch(self, key: str, target: Path, *, source: str) -> bool:
        """Copy the file kept under ``key`` to ``target``; False when there is none.

        Emits ``cache.hit`` or ``cache.miss`` from ``source`` (the manifest shows them).
        """
        stored = self.store.get_file(key)
        emit(ResilienceEvent("cache.hit" if stored else "cache.miss", source,
                             {"key": key[:12]}))
        if stored is None:
            return False
        shutil.copyfile(stored, target)
        return True

    def keep(self, key: str, path: Path) -> None:
        """Keep a copy of the file at ``path`` under ``key``."""
        self.store.put_file(key, path)

    def get_json(self, key: str, *, source: str) -> Any | None:
        """The JSON value kept under ``key``, or None (emits ``cache.hit``/``cache.miss``)."""
        value = self.store.get(key)
        emit(ResilienceEvent("cache.hit" if value is not None else "cache.miss", source,
                             {"key": key[:12]}))
        return value

    def set_json(self, key: str, value: Any) -> None:
        """Keep a JSON value under ``key``."""
        self.store.set(key, value)
