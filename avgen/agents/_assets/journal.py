"""`OperationJournal`: long-running operations written down the moment they are accepted.

A Veo clip is billed when its submit is accepted, not when it arrives. The journal keeps,
for each clip being made, the name of its operation in a file of its own,
``<asset cache folder>/operations/<clip's cache key>.json`` (or the same path under the
cache's URL, for a cache in shared storage)::

    {"version": 1, "key": "<the clip's cache key>", "agent": "veo:<model>",
     "operation": "<the operation's name>", "submitted": <seconds since the epoch>}

It is written as soon as the submit is answered — to a temporary file in the same folder,
flushed to the disk, then moved into place (`os.replace`), so a reader finds the whole
record or none; at a URL, by the store's own whole-object write — and removed when the
clip is stored in the cache, or when its operation failed for good. Any process asking for
the same clip later (the resume of a session killed while it waited, or another run, on
any machine sharing the cache's URL) polls that operation instead of paying for a new one.
The folder is not one of `avgen.resilience.DiskStore`'s, so clearing or pruning the cache
leaves it alone.

What is read back is untrusted: a record that is not sound for its key and agent
(unreadable, too large, not JSON, a wrong field or type, an operation name the agent
refuses) is ignored with a warning on the ``avgen.agents.google`` logger, and replaced by
the next record for that key. Failing to write or remove a record is logged, never raised:
the clip it guards was already paid for.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import attrs

__all__: list[str] = []

_logger = logging.getLogger("avgen.agents.google")
_VERSION = 1
_KEY = re.compile(r"[0-9a-f]{64}")
_MAX_BYTES = 4096
_FIELDS = frozenset({"version", "key", "agent", "operation", "submitted"})


@attrs.frozen
class Entry:
    """A sound record read back from the journal."""

    operation: str
    """The operation's name."""
    submitted: float
    """When its submit was answered, in seconds since the epoch."""


class Records(Protocol):
    """Where a journal keeps its records: named byte strings, each written whole.

    A folder is one (the files in it), and so is what
    `avgen.agents._assets.remote.RemoteStore.records` gives (objects under a URL).
    """

    def read_record(self, name: str, limit: int) -> bytes:
        """At most ``limit`` bytes of the record ``name`` (FileNotFoundError: none)."""

    def write_record(self, name: str, data: bytes) -> None:
        """Write the record ``name``: a reader sees the old one or this one, whole."""

    def remove_record(self, name: str) -> None:
        """Remove the record ``name`` (FileNotFoundError, or nothing, when there is none)."""

    def where(self, name: str) -> str:
        """Where the record ``name`` is, for messages."""


class _Folder:
    """Records as files in a local folder (created on the first write), written atomically
    and durably."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def read_record(self, name: str, limit: int) -> bytes:
        with (self.directory / name).open("rb") as source:
            return source.read(limit)

    def write_record(self, name: str, data: bytes) -> None:
        temp: str | None = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.directory / name)
            temp = None
            _sync_directory(self.directory)
        finally:
            if temp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temp)

    def remove_record(self, name: str) -> None:
        (self.directory / name).unlink()

    def where(self, name: str) -> str:
        return str(self.directory / name)


class OperationJournal:
    """The in-flight operations of one asset cache, one JSON record per clip key.

    Args:
        location: The journal's folder (created on the first write), or the `Records` of
            a shared store (the google agents get theirs from
            `avgen.agents.AssetCache.journal`).
    """

    def __init__(self, location: Path | Records) -> None:
        self.directory: Path | None = location if isinstance(location, Path) else None
        """The journal's folder (None: the records are in a shared store)."""
        self._records: Records = (_Folder(location) if isinstance(location, Path)
                                  else location)

    def __repr__(self) -> str:
        where = self.directory if self.directory is not None else self._records.where("")
        return f"OperationJournal({str(where)!r})"

    def path(self, key: str) -> Path:
        """The record file of ``key`` (a 64-hex-digit cache key) in the journal's folder.

        Raises:
            ValueError: ``key`` is not a cache key, or the journal has no folder.
        """
        name = _name(key)
        if self.directory is None:
            raise ValueError(f"{self!r} keeps its records in a shared store, not a folder")
        return self.directory / name

    def recall(self, key: str, *, agent: str, valid: Callable[[str], bool]) -> Entry | None:
        """The operation recorded for ``key`` by ``agent``, or None.

        None when there is no record, and when the record is unsound or its operation name
        fails ``valid`` (then a warning is logged and the record is left for the next
        `record` to replace).
        """
        name = _name(key)
        try:
            raw = self._read(name)
        except FileNotFoundError:
            return None
        except OSError as exc:
            _logger.warning("ignoring the operation record %s: it cannot be read (%s)",
                            self._records.where(name), type(exc).__name__)
            return None
        found = _parse(raw, key, agent, valid)
        if isinstance(found, str):
            _logger.warning("ignoring the operation record %s: %s", self._records.where(name),
                            found)
            return None
        return found

    def record(self, key: str, *, agent: str, operation: str) -> None:
        """Write down that ``operation`` is making the clip of ``key`` (atomic, durable).

        A failure to write is logged as a warning, not raised.
        """
        name = _name(key)
        data = {"version": _VERSION, "key": key, "agent": agent, "operation": operation,
                "submitted": time.time()}
        try:
            self._records.write_record(name, json.dumps(data, ensure_ascii=True).encode())
        except OSError as exc:
            _logger.warning("could not record operation %s in %s (%s: %s); a crash before "
                            "it ends would submit its clip again", operation,
                            self._records.where(name), type(exc).__name__, exc)

    def forget(self, key: str, *, operation: str | None = None) -> None:
        """Remove the record of ``key`` — only if it names ``operation``, when given (a
        newer record another process wrote stays). A failure is logged, not raised."""
        name = _name(key)
        try:
            if operation is not None:
                try:
                    data = json.loads(self._read(name))
                except ValueError:  # unsound: it goes too
                    data = None
                if isinstance(data, dict) and data.get("operation") != operation:
                    return
            self._records.remove_record(name)
        except FileNotFoundError:
            return
        except OSError as exc:
            _logger.warning("could not remove the operation record %s (%s: %s)",
                            self._records.where(name), type(exc).__name__, exc)

    def _read(self, name: str) -> bytes:
        """At most one byte more than a record may have."""
        return self._records.read_record(name, _MAX_BYTES + 1)


def _name(key: str) -> str:
    """The record name of ``key``.

    Raises:
        ValueError: ``key`` is not a cache key (64 hex digits).
    """
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"{key!r} is not a cache key (64 hex digits)")
    return f"{key}.json"


def _parse(raw: bytes, key: str, agent: str, valid: Callable[[str], bool]) -> Entry | str:
    """The entry in ``raw`` if it is a sound record of ``key`` by ``agent``; else why not."""
    if len(raw) > _MAX_BYTES:
        return f"it is larger than {_MAX_BYTES} bytes"
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "it is not JSON"
    if not isinstance(data, dict) or set(data) != _FIELDS:
        return f"it is not a record (fields: {', '.join(sorted(_FIELDS))})"
    if type(data["version"]) is not int or data["version"] != _VERSION:
        return f"its version is not {_VERSION}"
    if data["key"] != key:
        return "it names another key"
    if data["agent"] != agent:
        return f"it was written for another agent, not {agent}"
    try:
        submitted = float(data["submitted"]) if type(data["submitted"]) in (int, float) \
            else math.nan
    except OverflowError:  # an integer too large for a float
        submitted = math.nan
    if not math.isfinite(submitted):
        return "its submit time is not a number"
    operation = data["operation"]
    if not isinstance(operation, str) or not valid(operation):
        return "its operation name is not one this agent can poll"
    return Entry(operation, submitted)


def _sync_directory(directory: Path) -> None:
    """Flush the folder's entry for a file just moved into it (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
