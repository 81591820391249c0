"""`DiskStore`: a cache directory that outlives the process, safe to share between processes.

Layout, one entry per key::

    <directory>/<key[:2]>/<key>.meta.json            the entry's record (the commit point)
    <directory>/<key[:2]>/<key>.<sha[:16]>.bin       bytes and files, stored raw
    <directory>/<key[:2]>/<key>.<sha[:16]>.json.z    JSON data, zlib-compressed

The data file is named after its content and written (temp file + `os.replace`) before the
record that points to it, so a reader always finds the record and the data of one same
write — old or new, never half. The record's modification time is the entry's last access
(it is touched on every read), which drives the least-recently-used eviction when a
``max_bytes`` limit is set. Nothing is ever pickled.

Whatever fails a check — an unreadable record, a missing or truncated data file, a
checksum mismatch, bad zlib or JSON — is a miss, and the entry is removed. Writers are not
synchronised across processes: two processes that miss the same key both compute it, and
the last one to commit wins, each leaving a valid entry.
"""

from __future__ import annotations

__docformat__ = "google"

import builtins
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from avgen.errors import UsageError

__all__ = ["DiskStore"]

_logger = logging.getLogger("avgen.resilience")
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")
_META = ".meta.json"
_TEMP = ".tmp-"
_KINDS = {"bytes": ".bin", "file": ".bin", "json": ".json.z"}
_CHUNK = 1 << 20
_STALE = 3600.0  # seconds before an unreferenced data file or a temp file is debris


@attrs.frozen
class _Record:
    kind: str
    data: str
    size: int
    sha256: str
    created: float

    @classmethod
    def parse(cls, raw: bytes, key: str) -> _Record:
        """Raises ValueError, TypeError or KeyError when ``raw`` is not a sound record."""
        fields = json.loads(raw)
        record = cls(kind=fields["kind"], data=fields["data"], size=fields["size"],
                     sha256=fields["sha256"], created=float(fields["created"]))
        suffix = _KINDS[record.kind]
        pattern = rf"{re.escape(key)}\.[0-9a-f]{{16}}{re.escape(suffix)}"
        if (not re.fullmatch(pattern, record.data) or type(record.size) is not int
                or record.size < 0 or not re.fullmatch(r"[0-9a-f]{64}", record.sha256)
                or not record.data.startswith(f"{key}.{record.sha256[:16]}")):
            raise ValueError("inconsistent cache record")
        return record


class DiskStore:
    """A `avgen.resilience.CacheStore` in a directory, shared by processes and runs.

    Values are ``bytes`` (kept as a raw file: media is not recompressed) or JSON data (kept
    as zlib-compressed JSON; it reads back as JSON types: tuples come back as lists). Files
    go in with `put_file` and out with `get_file`. Keys are 1–128 characters of lowercase
    ASCII letters, digits, ``_`` and ``-`` (the keys `avgen.resilience.cached` makes
    are 64 hex digits), so no key can name a path outside the directory.

    Args:
        directory: The cache folder; created on the first write.
        max_bytes: Limit on the stored data; past it the least recently read entries go.
            A value larger than the limit is not stored. ``None``: no limit.
        ttl: Seconds an entry lives after it is written; ``None``: forever.
        timer: The clock of ``ttl`` and of access times (seconds, like `time.time`).
        verify: Check each entry's SHA-256 when it is read (reads the whole file).
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int | None = None,
                 ttl: float | None = None, timer: Callable[[], float] = time.time,
                 verify: bool = True) -> None:
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes <= 0):
            raise UsageError("max_bytes", f"must be a positive int or None, not {max_bytes!r}")
        if ttl is not None and not ttl > 0:
            raise UsageError("ttl", f"must be a positive number of seconds or None, not {ttl!r}")
        self.directory = Path(directory).expanduser()
        """The cache folder."""
        self.max_bytes = max_bytes
        """The limit on stored data, in bytes (``None``: no limit)."""
        self.ttl = ttl
        """Seconds an entry lives after it is written (``None``: forever)."""
        self.timer = timer
        """The clock of ``ttl`` and of access times."""
        self.verify = verify
        """Whether reads check the SHA-256 of the data."""
        self.evictions = 0
        """Entries this object removed for room, plus values refused as too large."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiskStore({str(self.directory)!r}, max_bytes={self.max_bytes}, ttl={self.ttl})"

    # -- the CacheStore protocol ------------------------------------------------------

    def get(self, key: str) -> Any | None:
        """The value stored under ``key``, or ``None`` (missing, expired or damaged)."""
        found = self._open(key)
        if found is None:
            return None
        record, payload = found
        if record.kind == "json":
            try:
                return json.loads(zlib.decompress(payload))
            except (zlib.error, ValueError):
                self._discard(key, record, "undecodable JSON")
                return None
        return payload

    def set(self, key: str, value: Any) -> bool:
        """Store ``value`` (``bytes`` raw, anything else as compressed JSON).

        Returns:
            ``False`` when the value is larger than ``max_bytes`` and was not stored.

        Raises:
            TypeError: ``value`` is neither bytes nor JSON-serialisable.
            UsageError: ``key`` is not a valid key.
        """
        sub = self._sub(key)
        if isinstance(value, bytes | bytearray | memoryview):
            kind, payload = "bytes", bytes(value)
        else:
            try:
                text = json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                                  allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"DiskStore keeps bytes or JSON-serialisable values, not "
                                f"{type(value).__qualname__} ({exc}); use put_file() for "
                                "files") from exc
            kind, payload = "json", zlib.compress(text.encode())
        if self.max_bytes is not None and len(payload) > self.max_bytes:
            self.evictions += 1
            return False
        sub.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=sub, prefix=_TEMP)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            self._commit(key, kind, Path(temp), hashlib.sha256(payload).hexdigest(),
                         len(payload))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        if self.max_bytes is not None:
            self.prune(keep=key)
        return True

    def delete(self, key: str) -> bool:
        """Remove the entry under ``key``; ``True`` if there was one."""
        meta = self._sub(key) / f"{key}{_META}"
        try:
            record = _Record.parse(meta.read_bytes(), key)
        except FileNotFoundError:
            return False
        except (OSError, ValueError, TypeError, KeyError):
            record = None
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()
        if record is not None:
            with contextlib.suppress(FileNotFoundError):
                (meta.parent / record.data).unlink()
        return True

    def clear(self) -> None:
        """Remove every entry (and leftover temp files); other files are left alone."""
        for sub in self._subdirs():
            for path in sub.iterdir():
                if self._owned(path.name):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            with contextlib.suppress(OSError):
                sub.rmdir()

    def __len__(self) -> int:
        return sum(1 for _ in self._records())

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            return False
        meta = self.directory / key[:2] / f"{key}{_META}"
        try:
            record = _Record.parse(meta.read_bytes(), key)
        except (OSError, ValueError, TypeError, KeyError):
            return False
        return not self._expired(record)

    @property
    def maxsize(self) -> int | None:
        """The size limit in bytes, as `avgen.resilience.CacheInfo` reports it."""
        return self.max_bytes

    @property
    def currsize(self) -> int:
        """Bytes of data stored in live entries (scans the directory)."""
        return sum(record.size for _, _, record in self._records())

    # -- files --------------------------------------------------------------------------

    def put_file(self, key: str, path: str | os.PathLike[str]) -> Path:
        """Copy the file at ``path`` into the store under ``key``.

        Returns:
            The stored copy. It stays valid until the entry is replaced or evicted: copy
            or hard-link it out rather than keeping the path.

        Raises:
            UsageError: ``key`` is invalid or the file is larger than ``max_bytes``.
            FileNotFoundError: There is no file at ``path``.
        """
        sub = self._sub(key)
        source = Path(path)
        size = source.stat().st_size
        if self.max_bytes is not None and size > self.max_bytes:
            raise UsageError("path", f"{source} has {size} bytes, more than this store's "
                                     f"max_bytes={self.max_bytes}")
        sub.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=sub, prefix=_TEMP)
        try:
            digest = hashlib.sha256()
            written = 0
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
            stored = self._commit(key, "file", Path(temp), digest.hexdigest(), written)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        if self.max_bytes is not None:
            self.prune(keep=key)
        return stored

    def get_file(self, key: str) -> Path | None:
        """The stored file of a ``bytes`` or `put_file` entry, or ``None``.

        ``None`` also for a missing, expired or damaged entry (removed) and for JSON entries.
        """
        record = self._record(key)
        if record is None or record.kind == "json":
            return None
        path = self.directory / key[:2] / record.data
        try:
            size = path.stat().st_size
            good = size == record.size and (not self.verify or _file_sha256(path)
                                            == record.sha256)
        except FileNotFoundError:
            good = False
        if not good:
            self._discard(key, record, "missing or damaged data")
            return None
        self._touch(key)
        return path

    # -- maintenance --------------------------------------------------------------------

    def prune(self, keep: str | None = None) -> int:
        """Remove expired entries, debris of crashed writers, and — over ``max_bytes`` —
        the least recently read entries (never ``keep``).

        Returns:
            The number of entries removed.
        """
        with self._lock:
            removed = 0
            live: list[tuple[float, str, _Record]] = []
            referenced: builtins.set[str] = builtins.set()
            for key, meta, record in self._records(include_expired=True):
                if self._expired(record):
                    self._discard(key, record, "expired")
                    removed += 1
                    continue
                referenced.add(record.data)
                with contextlib.suppress(FileNotFoundError):
                    live.append((meta.stat().st_mtime, key, record))
            self._sweep_debris(referenced)
            if self.max_bytes is None:
                return removed
            total = sum(record.size for _, _, record in live)
            for _, key, record in sorted(live, key=lambda item: item[0]):
                if total <= self.max_bytes:
                    break
                if key == keep:
                    continue
                self._discard(key, record, None)
                total -= record.size
                self.evictions += 1
                removed += 1
            return removed

    # -- internals ----------------------------------------------------------------------

    def _sub(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise UsageError("key", f"{key!r} is not a cache key: use 1-128 characters of "
                                    "a-z, 0-9, '_' and '-', starting with a letter or digit")
        return self.directory / key[:2]

    def _expired(self, record: _Record) -> bool:
        return self.ttl is not None and self.timer() - record.created >= self.ttl

    def _record(self, key: str) -> _Record | None:
        """The sound, unexpired record of ``key``; a damaged or expired one is removed."""
        meta = self._sub(key) / f"{key}{_META}"
        try:
            raw = meta.read_bytes()
        except OSError:
            return None
        try:
            record = _Record.parse(raw, key)
        except (ValueError, TypeError, KeyError):
            self._remove_damaged(key, meta, raw)
            return None
        if self._expired(record):
            self._discard(key, record, None)
            return None
        return record

    def _open(self, key: str) -> tuple[_Record, bytes] | None:
        for _ in range(2):  # a second look when a writer replaced the entry meanwhile
            record = self._record(key)
            if record is None:
                return None
            try:
                payload = (self.directory / key[:2] / record.data).read_bytes()
            except FileNotFoundError:
                if self._record(key) != record:
                    continue
                self._discard(key, record, "missing data")
                return None
            if len(payload) != record.size or (
                    self.verify and hashlib.sha256(payload).hexdigest() != record.sha256):
                self._discard(key, record, "checksum mismatch")
                return None
            self._touch(key)
            return record, payload
        return None

    def _touch(self, key: str) -> None:
        now = self.timer()
        with contextlib.suppress(OSError):
            os.utime(self.directory / key[:2] / f"{key}{_META}", (now, now))

    def _commit(self, key: str, kind: str, temp: Path, sha256: str, size: int) -> Path:
        """Move the written ``temp`` into place, then point the record at it."""
        sub = temp.parent
        data = f"{key}.{sha256[:16]}{_KINDS[kind]}"
        os.replace(temp, sub / data)
        meta = sub / f"{key}{_META}"
        try:
            old: _Record | None = _Record.parse(meta.read_bytes(), key)
        except (OSError, ValueError, TypeError, KeyError):
            old = None
        now = self.timer()
        record = {"kind": kind, "data": data, "size": size, "sha256": sha256, "created": now}
        fd, temp_meta = tempfile.mkstemp(dir=sub, prefix=_TEMP)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(json.dumps(record).encode())
            os.utime(temp_meta, (now, now))
            os.replace(temp_meta, meta)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_meta)
        if old is not None and old.data != data:
            with contextlib.suppress(FileNotFoundError):
                (sub / old.data).unlink()
        return sub / data

    def _remove_damaged(self, key: str, meta: Path, raw: bytes) -> None:
        """Remove an entry whose record cannot be read (unless it was just replaced)."""
        with contextlib.suppress(OSError):
            if meta.read_bytes() != raw:
                return
            meta.unlink()
        for data in meta.parent.glob(f"{key}.*"):
            if data.name != meta.name and self._owned(data.name):
                with contextlib.suppress(OSError):
                    data.unlink()
        _logger.warning("cache entry %s in %s: damaged record, removed", key, self.directory)

    def _discard(self, key: str, record: _Record, why: str | None) -> None:
        """Remove an entry, unless a writer has replaced it since ``record`` was read."""
        meta = self.directory / key[:2] / f"{key}{_META}"
        try:
            current: _Record | None = _Record.parse(meta.read_bytes(), key)
        except FileNotFoundError:
            current = record
        except (OSError, ValueError, TypeError, KeyError):
            current = None
        if current is not None and current != record:
            return
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()
        with contextlib.suppress(FileNotFoundError):
            (meta.parent / record.data).unlink()
        if why:
            _logger.warning("cache entry %s in %s: %s, removed", key, self.directory, why)

    def _subdirs(self) -> Iterator[Path]:
        try:
            entries = list(self.directory.iterdir())
        except FileNotFoundError:
            return
        for sub in entries:
            if re.fullmatch(r"[a-z0-9][a-z0-9_-]?", sub.name) and sub.is_dir():
                yield sub

    def _records(self, include_expired: bool = False) -> Iterator[tuple[str, Path, _Record]]:
        for sub in self._subdirs():
            for meta in sub.glob(f"*{_META}"):
                key = meta.name[: -len(_META)]
                if not _KEY.fullmatch(key):
                    continue
                try:
                    record = _Record.parse(meta.read_bytes(), key)
                except (OSError, ValueError, TypeError, KeyError):
                    continue
                if include_expired or not self._expired(record):
                    yield key, meta, record

    def _sweep_debris(self, referenced: builtins.set[str]) -> None:
        """Delete old temp files and data files no record points to (crashed writers)."""
        limit = time.time() - _STALE
        for sub in self._subdirs():
            for path in sub.iterdir():
                name = path.name
                debris = name.startswith(_TEMP) or (
                    self._owned(name) and not name.endswith(_META) and name not in referenced)
                if debris:
                    with contextlib.suppress(OSError):
                        if path.stat().st_mtime < limit:
                            path.unlink()

    @staticmethod
    def _owned(name: str) -> bool:
        if name.startswith(_TEMP):
            return True
        if name.endswith(_META):
            return bool(_KEY.fullmatch(name[: -len(_META)]))
        return bool(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,127}\.[0-9a-f]{16}\.(bin|json\.z)",
                                 name))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
