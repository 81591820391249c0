"""Every digest avgen takes, in one place: of a JSON-able value, of bytes or text, of a
file's bytes, and the running digests of data written or read in chunks.

Nothing else in avgen imports `hashlib`.
"""

from __future__ import annotations

__docformat__ = "google"

import hashlib
import json
import os
from typing import Any, Protocol

__all__ = []

_CHUNK = 1 << 20


class Hasher(Protocol):
    """A running digest: fed chunk by chunk, read at the end."""

    def update(self, data: bytes, /) -> None:
        """Add ``data`` to what is digested."""

    def digest(self) -> bytes:
        """The digest of everything added so far."""

    def hexdigest(self) -> str:
        """`digest` as lowercase hexadecimal."""


def sha256_hasher() -> Hasher:
    """A running SHA-256, for data seen in chunks (a download, a copy)."""
    return hashlib.sha256()


def md5_hasher() -> Hasher:
    """A running MD5, only to compare a download with the checksum its publisher gives
    (not for security: avgen keys nothing by it)."""
    return hashlib.md5(usedforsecurity=False)


def sha256_hex(data: bytes | bytearray | memoryview | str) -> str:
    """SHA-256 of ``data`` (a `str` as UTF-8), as lowercase hexadecimal."""
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def json_sha256(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys; anything else as its ``str``)."""
    return sha256_hex(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in chunks (memory stays flat)."""
    digest = sha256_hasher()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
