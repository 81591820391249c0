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

With a limit, a store does not scan the folder on every write: it keeps an index of the
entries (size and last access, as last seen) in memory, refreshed by a full scan now and
then, and checks an entry's record on disk only before evicting it. `DiskStore` states the
bound this gives when several processes write to one folder.

Whatever fails a check — an unreadable record, a missing or truncated data file, a
checksum mismatch, bad zlib or JSON — is a miss, and the entry is removed. Whatever stands
where a write must put a file or a folder and is not one (a folder in a record's place, a
file in a sub-folder's, a symlink or a FIFO) is removed by that write, which then stores
the entry; both are logged as warnings on ``avgen.resilience``. Writers are not
synchronised across processes: two processes that miss the same key both compute it, and
the last one to commit wins, each leaving a valid entry.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import heapq
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs

from avgen._hashing import file_sha256, sha256_hasher, sha256_hex
from avgen._validate import number
from avgen.errors import UsageError

__all__ = ["DiskStore"]

_logger = logging.getLogger("avgen.resilience")
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_META = ".meta.json"
_TEMP = ".tmp-"
_KINDS = {"bytes": ".bin", "file": ".bin", "json": ".json.z"}
_CHUNK = 1 << 20
_STALE = 3600.0  # seconds before an unreferenced data file or a temp file is debris
_DATA = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}\.[0-9a-f]{16}\.(bin|json\.z)")
_SUBDIR = re.compile(r"[a-z0-9][a-z0-9_-]?")


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
        if (type(record.size) is not int or record.size < 0
                or not isinstance(record.sha256, str) or not _SHA256.fullmatch(record.sha256)
                or record.data != f"{key}.{record.sha256[:16]}{suffix}"):
            raise ValueError("inconsistent cache record")
        return record


class _Index:
    """What one `DiskStore` knows of its folder: each entry's last access and size as last
    seen, their total, and the entries in a heap by last access (oldest first).

    The heap may hold outdated pairs (an entry written again or dropped since): `oldest`
    skips them, and the heap is rebuilt when they outnumber the entries.
    """

    def __init__(self, live: list[tuple[float, str, _Record]]) -> None:
        self.entries: dict[str, tuple[float, int]] = {
            key: (mtime, record.size) for mtime, key, record in live}
        self.total = sum(size for _, size in self.entries.values())
        self.written = 0
        """Bytes written through this index since the scan that built it."""
        self.heap: list[tuple[float, str]] = []
        self._rebuild()

    def add(self, key: str, mtime: float, size: int) -> None:
        """Record that ``key`` holds ``size`` bytes, last accessed at ``mtime``."""
        old = self.entries.get(key)
        self.total += size - (old[1] if old is not None else 0)
        self.entries[key] = (mtime, size)
        heapq.heappush(self.heap, (mtime, key))
        if len(self.heap) > 2 * len(self.entries) + 64:
            self._rebuild()

    def drop(self, key: str) -> None:
        """Forget ``key`` (no-op for a key the index does not hold)."""
        old = self.entries.pop(key, None)
        if old is not None:
            self.total -= old[1]

    def oldest(self) -> tuple[float, str] | None:
        """Take the entry with the oldest known access off the heap (it stays in the index:
        `drop` it or `add` it back); ``None`` when the heap is empty."""
        while self.heap:
            mtime, key = heapq.heappop(self.heap)
            known = self.entries.get(key)
            if known is not None and known[0] == mtime:
                return mtime, key
        return None

    def _rebuild(self) -> None:
        self.heap = [(mtime, key) for key, (mtime, _) in self.entries.items()]
        heapq.heapify(self.heap)


def _what(mode: int) -> str:
    """What a file of this mode is, in words: ``a folder``, ``a symlink``…"""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symlink"
    if stat.S_ISREG(mode):
        return "a file"
    return "a special file"


def _remove(path: Path) -> None:
    """Remove ``path`` whatever it is (a folder with all it holds; a symlink itself, never
    what it points to); nothing when it is gone already."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


class DiskStore:
    """A `avgen.resilience.CacheStore` in a directory, shared by processes and runs.

    Values are ``bytes`` (kept as a raw file: media is not recompressed) or JSON data (kept
    as zlib-compressed JSON; it reads back as JSON types: tuples come back as lists). Files
    go in with `put_file` and out with `get_file`. Keys are 1–128 characters of lowercase
    ASCII letters, digits, ``_`` and ``-`` (the keys `avgen.resilience.cached` makes
    are 64 hex digits), so no key can name a path outside the directory.

    With ``max_bytes`` set, a write does not scan the folder. The store keeps an index in
    memory (each entry's size and last access as it last saw them, a few hundred bytes an
    entry), built by a scan of the whole folder on its first write and rebuilt by another
    scan (`prune`) once it has written ``max_bytes / 2`` bytes since the last one. A write
    adds its entry to the index and then, while the indexed total is over ``max_bytes``,
    reads the record of the entry with the oldest known access: an entry read since then
    (by any process) goes back in line with its new time, one already removed leaves the
    index, and otherwise that least recently read entry goes. So a write costs about the
    same in a store of 10 000 entries as in an empty one: the scans, spread over the
    writes between them, add little. How far the folder can go over the limit:

    - with one store writing to it: never over ``max_bytes`` (when no write is under way);
    - with ``k`` stores writing to it (in any processes, all with this ``max_bytes``): at
      most ``max_bytes * (k + 1) / 2`` when no write is under way, since each store counts
      the others' writes at its next scan, and none writes more than ``max_bytes / 2``
      between two of its scans.

    Each store object has its own index and counts as one of the ``k``: in a process, use
    one store per folder.

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
        number("max_bytes", max_bytes, integer=True, low=1, optional=True)
        number("ttl", ttl, low=0, low_inclusive=False, optional=True, finite=False,
               unit="seconds")
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
        self._lock = threading.RLock()  # guards _index; held through scans and evictions
        self._index: _Index | None = None  # None: no scan yet (or none needed: no limit)

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
        self._make_folder(sub, key)
        fd, temp = tempfile.mkstemp(dir=sub, prefix=_TEMP)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            _, written_at = self._commit(key, kind, Path(temp),
                                         sha256_hex(payload), len(payload))
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._make_room(key, len(payload), written_at)
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
        self._forget(key)
        return True

    def clear(self) -> None:
        """Remove every entry (and leftover temp files); other files are left alone."""
        with self._lock:
            self._index = None  # the next write scans the (emptied) folder again
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
        """The size limit in bytes, as ``cache_info()`` reports it."""
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
        self._make_folder(sub, key)
        fd, temp = tempfile.mkstemp(dir=sub, prefix=_TEMP)
        try:
            digest = sha256_hasher()
            written = 0
            with os.fdopen(fd, "wb") as out, source.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
            stored, written_at = self._commit(key, "file", Path(temp), digest.hexdigest(),
                                              written)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._make_room(key, written, written_at)
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
            good = size == record.size and (not self.verify or file_sha256(path)
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
        """Scan the whole folder: remove expired entries, debris of crashed writers, and —
        over ``max_bytes`` — the least recently read entries (never ``keep``).

        With ``max_bytes`` set, the scan also rebuilds this store's index of the folder,
        so it counts what other processes wrote since the last scan.

        Returns:
            The number of entries removed.
        """
        with self._lock:
            removed, live = self._scan()
            if self.max_bytes is None:
                return removed
            self._index = _Index(live)
            return removed + self._evict(self._index, self.max_bytes, keep)

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
        except FileNotFoundError:
            return None
        except OSError as exc:  # a folder in its place, say: the next write replaces it
            _logger.warning("cache entry %s in %s: its record cannot be read (%s: %s), a "
                            "miss; the next write replaces it", key, self.directory,
                            type(exc).__name__, exc)
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
                    self.verify and sha256_hex(payload) != record.sha256):
                self._discard(key, record, "checksum mismatch")
                return None
            self._touch(key)
            return record, payload
        return None

    def _touch(self, key: str) -> None:
        now = self.timer()
        with contextlib.suppress(OSError):
            os.utime(self.directory / key[:2] / f"{key}{_META}", (now, now))

    def _commit(self, key: str, kind: str, temp: Path, sha256: str,
                size: int) -> tuple[Path, float]:
        """Move the written ``temp`` into place, then point the record at it.

        Returns:
            The data file and the access time given to the new record.
        """
        sub = temp.parent
        data = f"{key}.{sha256[:16]}{_KINDS[kind]}"
        self._clear_way(sub / data, key, "data")
        os.replace(temp, sub / data)
        meta = sub / f"{key}{_META}"
        self._clear_way(meta, key, "record")
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
        return sub / data, now

    def _make_room(self, key: str, size: int, written_at: float) -> None:
        """Count a committed write in the index and evict for room; scan the folder
        instead when there is no index yet or this store has written ``max_bytes / 2``
        bytes since the last scan."""
        if self.max_bytes is None:
            return
        with self._lock:
            index = self._index
            if index is not None:
                index.add(key, written_at, size)
                index.written += size
                if index.written < self.max_bytes / 2:
                    self._evict(index, self.max_bytes, keep=key)
                    return
            self.prune(keep=key)

    def _evict(self, index: _Index, limit: int, keep: str | None) -> int:
        """Remove entries, least recently read first, until the index totals ``limit``.

        Each candidate's record is read first: an entry read since the index last saw it
        goes back in line, one that is gone or damaged leaves the index (a reader removes
        a damaged one), and ``keep`` is never removed. Returns the number removed.
        """
        removed = 0
        kept: list[tuple[float, str]] = []
        while index.total > limit:
            oldest = index.oldest()
            if oldest is None:
                break
            known, key = oldest
            if key == keep:
                kept.append(oldest)
                continue
            sub = os.path.join(self.directory, key[:2])
            meta = os.path.join(sub, key + _META)
            try:
                record, mtime = self._load(key, meta)
            except (OSError, ValueError, TypeError, KeyError):
                index.drop(key)
                continue
            if mtime > known:
                index.add(key, mtime, record.size)
                continue
            # Removed at once: the record was just read (as _discard does after its check).
            for path in (meta, os.path.join(sub, record.data)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            index.drop(key)
            removed += 1
            if not self._expired(record):
                self.evictions += 1
        for item in kept:
            heapq.heappush(index.heap, item)
        return removed

    def _load(self, key: str, meta: str | None = None) -> tuple[_Record, float]:
        """The record of ``key`` and its modification time (the entry's last access).

        Args:
            key: The entry's key.
            meta: The record's path, when the caller has it (saves building it).

        Raises:
            OSError: The record cannot be read (FileNotFoundError: there is none).
            ValueError: The record is damaged (or TypeError, KeyError).
        """
        if meta is None:
            meta = os.path.join(self.directory, key[:2], key + _META)
        fd = os.open(meta, os.O_RDONLY)
        try:
            info = os.fstat(fd)
            raw = os.read(fd, info.st_size + 1)  # records are replaced, never rewritten
        finally:
            os.close(fd)
        return _Record.parse(raw, key), info.st_mtime

    def _forget(self, key: str) -> None:
        with self._lock:
            if self._index is not None:
                self._index.drop(key)

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
        self._forget(key)
        _logger.warning("cache entry %s in %s: damaged record, removed", key, self.directory)

    def _discard(self, key: str, record: _Record, why: str | None) -> bool:
        """Remove an entry, unless a writer has replaced it since ``record`` was read.

        Returns:
            ``False`` when the entry was replaced and left alone.
        """
        meta = self.directory / key[:2] / f"{key}{_META}"
        try:
            current: _Record | None = _Record.parse(meta.read_bytes(), key)
        except FileNotFoundError:
            current = record
        except (OSError, ValueError, TypeError, KeyError):
            current = None
        if current is not None and current != record:
            return False
        with contextlib.suppress(FileNotFoundError):
            meta.unlink()
        _remove(meta.parent / record.data)
        self._forget(key)
        if why:
            _logger.warning("cache entry %s in %s: %s, removed", key, self.directory, why)
        return True

    def _make_folder(self, sub: Path, key: str) -> None:
        """Make the folder of ``key``'s entries, removing what stands in its place."""
        try:
            info = os.lstat(sub)
        except FileNotFoundError:
            sub.mkdir(parents=True, exist_ok=True)
            return
        if stat.S_ISDIR(info.st_mode):
            return
        _remove(sub)
        _logger.warning("cache entry %s in %s: %s stood where the folder of its entries "
                        "goes; removed, and the entry written anew", key, self.directory,
                        _what(info.st_mode))
        sub.mkdir(parents=True, exist_ok=True)

    def _clear_way(self, path: Path, key: str, part: str) -> None:
        """Remove what stands where ``key``'s ``part`` (record or data) is to be written,
        unless it is a regular file (which ``os.replace`` replaces)."""
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISREG(info.st_mode):
            return
        _remove(path)
        _logger.warning("cache entry %s in %s: %s stood where its %s goes; removed, and the "
                        "entry written anew", key, self.directory, _what(info.st_mode), part)

    def _subdirs(self) -> Iterator[Path]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                continue
            if is_dir and _SUBDIR.fullmatch(entry.name):
                yield Path(entry.path)

    def _records(self) -> Iterator[tuple[str, Path, _Record]]:
        """The sound, unexpired records (not removed: this is for counting)."""
        for sub in self._subdirs():
            try:
                names = os.listdir(sub)
            except FileNotFoundError:
                continue
            for name in names:
                key = name[: -len(_META)]
                if not name.endswith(_META) or not _KEY.fullmatch(key):
                    continue
                meta = sub / name
                try:
                    record = _Record.parse(meta.read_bytes(), key)
                except (OSError, ValueError, TypeError, KeyError):
                    continue
                if not self._expired(record):
                    yield key, meta, record

    def _scan(self) -> tuple[int, list[tuple[float, str, _Record]]]:
        """Read every record; remove expired entries and the debris of crashed writers
        (temp files and data files no record points to, once an hour old).

        Returns:
            The number of entries removed, and the live ones with their last access.
        """
        removed = 0
        live: list[tuple[float, str, _Record]] = []
        stale = time.time() - _STALE
        for sub in self._subdirs():
            try:
                names = os.listdir(sub)
            except FileNotFoundError:
                continue
            folder = os.fspath(sub)
            referenced: set[str] = set()
            loose: list[str] = []
            for name in names:
                if not name.endswith(_META):
                    if name.startswith(_TEMP) or _DATA.fullmatch(name):
                        loose.append(name)
                    continue
                key = name[: -len(_META)]
                if not _KEY.fullmatch(key):
                    continue
                try:
                    record, mtime = self._load(key, os.path.join(folder, name))
                except (OSError, ValueError, TypeError, KeyError):
                    continue
                if self._expired(record):
                    if self._discard(key, record, "expired"):
                        removed += 1
                    continue
                referenced.add(record.data)
                live.append((mtime, key, record))
            for name in loose:  # only old ones: a new record may point to a listed file
                if name not in referenced:
                    path = sub / name
                    with contextlib.suppress(OSError):
                        if path.stat().st_mtime < stale:
                            path.unlink()
        return removed, live

    @staticmethod
    def _owned(name: str) -> bool:
        if name.startswith(_TEMP):
            return True
        if name.endswith(_META):
            return bool(_KEY.fullmatch(name[: -len(_META)]))
        return bool(_DATA.fullmatch(name))
