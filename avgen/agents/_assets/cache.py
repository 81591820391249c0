"""The asset cache: a request paid for once is never paid for again, across sessions.

Every google agent keys what it makes (a script, a narration, a still, a clip) by the
model, the prompt, every parameter and the SHA-256 of any input image, and keeps the
result in a `avgen.resilience.DiskStore`. An identical request later — in another session,
another process, after a crash — is answered from the disk: no request reaches Google and
nothing is charged. Change a scene's prompt and only that scene is paid for again.

The folder is ``$AVGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/avgen``, else
``~/.cache/avgen``, with one ``google`` sub-folder; its ``operations`` folder holds the
Veo operations in flight (see `avgen.agents.google.VeoClips`), its ``locks`` folder the
lock files of assets being paid for. Pass ``cache=None`` to
`avgen.agents.google.google_agents` (``avgen make --no-cache``) to switch it off, or an
`AssetCache` of your own (for instance with ``max_bytes``).

**Shared storage.** ``AssetCache("s3://bucket/prefix")`` — any fsspec URL: ``gs://``,
``file:///shared/folder``… — keeps the entries and the Veo operations in flight there, so
workers on several machines pay once for an asset and resume each other's clips. It needs
fsspec and the protocol's package (``pip install 'avgen[dask]'``, plus ``s3fs`` for S3 or
``gcsfs`` for Cloud Storage); each entry is written whole and checked by its SHA-256 when
read (see `avgen.agents._assets.remote`).

**Single flight.** Processes, threads and tasks sharing one cache folder pay once for a
missing asset: each agent holds `AssetCache.flight` around its miss path (look again, pay,
store), a lock per key in the process and a file lock in the folder's ``locks`` sub-folder
across processes, which the system drops when its holder dies. At a URL the lock is the
in-process one only.

**Damage.** Whatever the folder holds where an entry is expected — a stray folder, an
unreadable, truncated or damaged file — is a miss, logged as a warning; the asset is then
paid for once more and its entry written anew over the damage (logged too), so the next
run finds it. An asset that cannot be stored is logged as well. None of these fails the
run.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avgen._cache_root import cache_root
from avgen._hashing import json_sha256
from avgen.agents._assets.flight import hold
from avgen.agents._assets.journal import OperationJournal
from avgen.agents._assets.remote import RemoteStore, is_url
from avgen.errors import UsageError
from avgen.resilience import DiskStore, ResilienceEvent
from avgen.resilience._events import emit

__all__ = ["AssetCache", "default_cache_dir"]

_logger = logging.getLogger("avgen.agents.google")


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the google agents keep what they paid for (see the module docstring)."""
    return cache_root(env) / "google"


class AssetCache:
    """Media and scripts kept under a key made of everything that shaped them: in a local
    folder, or in shared storage at an fsspec URL.

    Args:
        location: The cache folder (default: `default_cache_dir`), or an fsspec URL with a
            scheme of two letters or more (``s3://bucket/prefix``, ``gs://bucket/prefix``,
            ``file:///shared/folder``) for a cache shared by several machines.
        max_bytes: Limit on the stored data of a folder; past it the least recently used
            entries go. Not for a URL: a shared bucket is pruned by its own lifecycle
            rules (expire objects some days after they were written), never by one of
            the workers that share it.
        storage_options: Options of the fsspec filesystem of a URL (``endpoint_url``,
            ``key``, ``secret``, ``client_kwargs``…), passed to ``fsspec.core.url_to_fs``.

    Raises:
        UsageError: ``max_bytes`` or ``storage_options`` where they do not apply; a URL
            whose fsspec package is not installed, or that fsspec refuses.
    """

    def __init__(self, location: str | os.PathLike[str] | None = None, *,
                 max_bytes: int | None = None,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        if location is None:
            location = default_cache_dir()
        if isinstance(location, str) and not location:
            raise UsageError("location", "must be a folder or a URL, not ''")
        self.store: DiskStore | RemoteStore
        """Where the entries are: a `avgen.resilience.DiskStore` for a folder, a
        `avgen.agents._assets.remote.RemoteStore` for a URL."""
        if is_url(location):
            if max_bytes is not None:
                raise UsageError("max_bytes", "a cache at a URL has no size limit: shared "
                                 "storage is pruned by its own lifecycle rules (for "
                                 "instance, expire objects 30 days after they were "
                                 "written), not by the workers sharing it")
            self.store = RemoteStore(location, storage_options)
        else:
            if storage_options is not None:
                raise UsageError("storage_options", f"only a URL takes storage options, "
                                 f"and {os.fspath(location)!r} is a folder")
            self.store = DiskStore(location, max_bytes=max_bytes)

    def __repr__(self) -> str:
        return f"AssetCache({self.location!r})"

    @property
    def location(self) -> str:
        """The cache folder, or the URL (without any ``user:password@``)."""
        if isinstance(self.store, RemoteStore):
            return self.store.url
        return str(self.store.directory)

    def journal(self) -> OperationJournal:
        """The journal of the Veo operations in flight, kept with the cache (its
        ``operations`` folder, or ``<url>/operations``), where any process or machine
        sharing the cache finds them."""
        if isinstance(self.store, RemoteStore):
            return OperationJournal(self.store.records("operations"))
        return OperationJournal(self.store.directory / "operations")

    @staticmethod
    def key(kind: str, **request: Any) -> str:
        """The key of a request: SHA-256 of its kind and canonical JSON parameters (pass
        bytes-valued inputs as their SHA-256)."""
        return json_sha256({"kind": kind, **request})

    def flight(self, key: str, *, source: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the single-flight lock of ``key``: in this process (every task and thread,
        every `AssetCache` on this folder) and across processes (a file lock in
        ``<folder>/locks``, dropped by the system when its holder dies).

        A cache at a URL holds the in-process lock only (every `AssetCache` on that URL in
        this process): there is no file lock on a bucket. Across machines, single flight
        comes from the shared coordination of a batch; without it, two machines missing
        the same asset at once may both pay for it.

        Waiting awaits (it never blocks the event loop) and can be cancelled. Look in the
        cache again once it is held: whoever held it before may have stored the asset::

            if not cache.fetch(key, target, source=name, report_miss=False):
                async with cache.flight(key, source=name):
                    if not cache.fetch(key, target, source=name):
                        ...  # pay, then cache.keep(key, target)

        Args:
            key: The asset's key.
            source: Who asks (named in a warning when the lock file cannot be used; then
                only the in-process lock is held).
        """
        if isinstance(self.store, RemoteStore):
            return hold(self.store.slot, key, source=source)
        return hold(self.store.directory, key, source=source)

    def fetch(self, key: str, target: Path, *, source: str, report_miss: bool = True) -> bool:
        """Copy the file kept under ``key`` to ``target``; False when there is none.

        Emits ``cache.hit``, or ``cache.miss`` unless ``report_miss`` is false, from
        ``source`` (the manifest shows them). An entry that cannot be read or copied (a
        stray folder in its place, an unreadable file, a download whose checksum does not
        match) is a miss, logged.
        """
        try:
            if isinstance(self.store, RemoteStore):
                found = self.store.fetch_file(key, target)
            else:
                stored = self.store.get_file(key)
                if stored is not None:
                    shutil.copyfile(stored, target)
                found = stored is not None
        except OSError as exc:
            self._unusable(key, source, exc)
            found = False
        if found or report_miss:
            emit(ResilienceEvent("cache.hit" if found else "cache.miss", source,
                                 {"key": key[:12]}))
        return found

    def keep(self, key: str, path: Path, *, source: str = "cache") -> None:
        """Keep a copy of the file at ``path`` under ``key`` (a failure is logged: the
        asset was made, only its copy is lost)."""
        try:
            self.store.put_file(key, path)
        except OSError as exc:
            _logger.warning("%s: could not keep %s in the cache %s (%s: %s)", source,
                            key[:12], self.location, type(exc).__name__, exc)

    def get_json(self, key: str, *, source: str, report_miss: bool = True) -> Any | None:
        """The JSON value kept under ``key``, or None (emits ``cache.hit``, or
        ``cache.miss`` unless ``report_miss`` is false; an unreadable entry is a logged
        miss)."""
        try:
            value = self.store.get(key)
        except OSError as exc:
            self._unusable(key, source, exc)
            value = None
        if value is not None or report_miss:
            emit(ResilienceEvent("cache.hit" if value is not None else "cache.miss", source,
                                 {"key": key[:12]}))
        return value

    def set_json(self, key: str, value: Any, *, source: str = "cache") -> None:
        """Keep a JSON value under ``key`` (a failure to write is logged, not raised)."""
        try:
            self.store.set(key, value)
        except OSError as exc:
            _logger.warning("%s: could not keep %s in the cache %s (%s: %s)", source,
                            key[:12], self.location, type(exc).__name__, exc)

    def _unusable(self, key: str, source: str, exc: OSError) -> None:
        _logger.warning("%s: the cache entry %s in %s cannot be read (%s: %s); asking the "
                        "service instead", source, key[:12], self.location,
                        type(exc).__name__, exc)

