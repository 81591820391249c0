"""The two digests avgen keys things by: of a JSON-able value, and of a file's bytes."""

from __future__ import annotations

__docformat__ = "google"

import hashlib
import json
import os
from typing import Any

__all__ = []

_CHUNK = 1 << 20


def json_sha256(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys; anything else as its ``str``)."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in chunks (memory stays flat)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
