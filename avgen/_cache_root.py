"""The one folder avgen keeps things in between runs: paid assets, fetched voices, and
files derived from installed models (`derived_file`)."""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from avgen._hashing import json_sha256

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


def derived_file(folder: str, name: str, key: Any, write: Callable[[Path], object]
                 ) -> Path | None:
    """A file (or a folder) derived from installed data (an unpacked or patched model, a
    folder of font links), kept in ``<cache>/<folder>/`` so later processes skip the work
    that makes it.

    The file is named ``name`` with a digest of ``key`` (what it was made from: a path,
    size, modification time, a package version) before its suffix; a changed ``key`` makes
    a new file. It is made by ``write(temporary)`` — which may make a folder there instead
    of a file — and renamed into place, so processes making it at once never see half of
    it; the first one's is kept.

    Args:
        folder: The cache subfolder.
        name: The file name, e.g. ``"model.npz"``.
        key: A JSON-able value naming what the file is derived from.
        write: Writes the file's content to the path it is given.

    Returns:
        The file's path; None when it could not be made (``write`` raised, or the folder
        cannot be written): the caller does the work in memory instead.
    """
    stem, dot, suffix = name.partition(".")
    target = cache_root() / folder / f"{stem}-{json_sha256(key)[:16]}{dot}{suffix}"
    if target.exists():
        return target
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        os.replace(temporary, target)  # a folder replaces no folder that has something in it
    except Exception:  # an unwritable cache, a failed derivation, or made meanwhile
        if temporary.is_dir() and not temporary.is_symlink():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
        return target if target.exists() else None
    return target
