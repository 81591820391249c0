"""Single flight per asset key: whoever asks for a missing asset, one request pays for it.

`hold` is an async context manager held around the miss path of an asset (look in the
cache again, pay, store). It is two locks, taken in order:

1. **In this process**, a `threading.Lock` per (cache folder, key), shared by every
   `avgen.agents.AssetCache` on that folder, every event loop and every thread: four
   runs ``gather``-ed in one loop, or runs in threads each with a loop of their own, wait
   for each other.
2. **Across processes**, an exclusive ``flock`` on ``<cache folder>/locks/<key>.lock``
   (POSIX). The kernel drops it when its holder dies, however it dies, so a crashed
   holder never keeps it. The holder removes the file before it lets go; a waiter that then
   gets the lock on the removed file sees that the path names another file (or none) and
   tries again, so two holders never overlap.

Waiting never blocks the event loop: both locks are tried without blocking, with an
``asyncio.sleep`` between tries (a few milliseconds at first, growing to `_MAX_WAIT`), so a
waiting task is cancelled at once and holds nothing. A lock file that cannot be made or
opened (the ``locks`` path is a file, the lock path a folder, no permission) is logged as
a warning and only the in-process lock is held: another process may then pay for the same
asset, as it did before single flight, but nothing fails.

The ``locks`` folder's name is not two characters long, so `avgen.resilience.DiskStore`
never counts, sweeps or clears it.

A cache at a URL (shared storage, see `avgen.agents.AssetCache`) has no file lock:
there, `hold` is the in-process lock only, shared by every cache on the same URL. Across
machines, single flight comes from the shared coordination of a batch, not from the store.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

__all__: list[str] = []

_logger = logging.getLogger("avgen.agents.google")
_FIRST_WAIT = 0.005
_MAX_WAIT = 0.1
LOCKS = "locks"
"""The folder of lock files inside the cache folder."""

_registry_lock = threading.Lock()
_registry: dict[tuple[str, str], tuple[threading.Lock, int]] = {}


def _local(slot: tuple[str, str]) -> threading.Lock:
    """The in-process lock of ``slot``, counted as in use until `_release_local`."""
    with _registry_lock:
        lock, users = _registry.get(slot, (None, 0))
        if lock is None:
            lock = threading.Lock()
        _registry[slot] = (lock, users + 1)
        return lock


def _release_local(slot: tuple[str, str]) -> None:
    with _registry_lock:
        lock, users = _registry[slot]
        if users <= 1:
            del _registry[slot]
        else:
            _registry[slot] = (lock, users - 1)


if sys.platform != "win32":
    import fcntl

    def _try_file_lock(path: Path) -> int | None:
        """The descriptor of ``path`` locked exclusively, or None when someone holds it.

        Raises:
            OSError: The lock file cannot be made or opened.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        try:  # the last holder may have removed the file between our open and our lock
            held, named = os.fstat(fd), os.stat(path)
            same = (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
        except OSError:
            same = False
        if not same:
            os.close(fd)
            return None
        return fd

    def _release_file_lock(path: Path, fd: int) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still held: a waiter on this file will look again
        os.close(fd)

else:  # pragma: no cover - no flock: the in-process lock only

    def _try_file_lock(path: Path) -> int | None:
        raise OSError("file locks need POSIX flock")

    def _release_file_lock(path: Path, fd: int) -> None:
        os.close(fd)


@contextlib.asynccontextmanager
async def hold(directory: Path | str, key: str, *, source: str) -> AsyncIterator[None]:
    """Hold the single-flight lock of ``key`` in the cache folder ``directory``.

    Args:
        directory: The cache folder (its ``locks`` sub-folder holds the lock files), or —
            a `str` — the URL of a cache in shared storage (the in-process lock only).
        key: The asset's cache key (a `avgen.resilience.DiskStore` key).
        source: Who asks (named in the warning when no lock file can be used).
    """
    url = isinstance(directory, str)
    slot = (directory if isinstance(directory, str) else os.path.realpath(directory), key)
    local = _local(slot)
    path = Path(slot[0]) / LOCKS / f"{key}.lock"
    fd: int | None = None
    locked = False
    try:
        wait = _FIRST_WAIT
        while True:
            if not locked:
                locked = local.acquire(blocking=False)
            if locked and url:
                break
            if locked:
                try:
                    fd = _try_file_lock(path)
                except OSError as exc:
                    _logger.warning("%s: cannot use the lock file %s (%s: %s); another "
                                    "process may pay for the same asset", source, path,
                                    type(exc).__name__, exc)
                    break
                if fd is not None:
                    break
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, _MAX_WAIT)
        yield
    finally:
        if fd is not None:
            _release_file_lock(path, fd)
        if locked:
            local.release()
        _release_local(slot)
