"""`RemoteStore`: the asset cache in a shared location named by an fsspec URL.

An `avgen.agents.AssetCache` given a URL (``s3://bucket/prefix``,
``gs://bucket/prefix``, ``file:///shared/folder``, any protocol fsspec knows) keeps its
entries there, so workers on several machines pay once for an asset::

    <url>/<key[:2]>/<key>                  a file (a clip, a narration, a still)
    <url>/<key[:2]>/<key>.json             a JSON value (a script)
    <url>/operations/<clip key>.json       a Veo operation in flight (the journal)

Each entry is one object: its content followed by a trailer of `TRAILER_SIZE` bytes,
``avgen-cache:1:<SHA-256 of the content>:<size, 16 hex digits>\\n``. A reader downloads
the object next to its target, checks the trailer, cuts it off and moves the file into
place: an entry that does not check out (damaged, cut short, something else in its place)
is an error (`Damaged`) that the cache logs as a miss. It is left in place: another worker
may be replacing it, and the next write replaces it anyway.

A reader never sees half an entry. On an object store (`OBJECT_STORES`) an upload becomes
visible whole when it completes, so entries are uploaded to their final name; elsewhere
(``file://`` and the rest) they are uploaded to a temporary name in the same folder,
``.tmp-<random>-<name>``, then moved into place (a crash between the two leaves that
temporary file behind).

fsspec and the protocol's package (``s3fs``, ``gcsfs``…) are imported only when a store is
made; without them, making one is a `avgen.errors.UsageError` saying what to install.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeGuard

from avgen._hashing import sha256_hasher, sha256_hex
from avgen._scratch import temp_path
from avgen._validate import instance
from avgen.errors import UsageError

__all__: list[str] = []

URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+)://")
"""What makes a location a URL: a scheme of two characters or more (one letter is a Windows
drive), then ``://``."""
OBJECT_STORES = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "oss", "oci"})
"""Protocols whose uploads become visible whole, so entries go straight to their name."""
TRAILER_SIZE = 96
"""Bytes of the trailer after each entry's content."""
_TRAILER = re.compile(rb"avgen-cache:1:(?P<sha>[0-9a-f]{64}):(?P<size>[0-9a-f]{16})\n")
_KEY = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")
_RECORD = re.compile(r"[a-z0-9][a-z0-9_.-]{0,127}")
_CHUNK = 1 << 20
_INSTALL = "pip install 'avgen[dask]'"
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
             "abfs": "adlfs", "abfss": "adlfs"}


class Damaged(OSError):
    """An entry whose trailer or content does not check out."""


def is_url(location: object) -> TypeGuard[str]:
    """Whether ``location`` is a URL (a `str` starting with ``scheme://``) and not a folder."""
    return isinstance(location, str) and URL.match(location) is not None


def _trailer(sha256: str, size: int) -> bytes:
    """The trailer of a content of ``size`` bytes whose SHA-256 is ``sha256``."""
    return f"avgen-cache:1:{sha256}:{size:016x}\n".encode()


def _parse_trailer(trailer: bytes, total: int) -> tuple[str, int]:
    """The SHA-256 and size a trailer states, checked against the object's ``total`` size.

    Raises:
        Damaged: The trailer is not one, or states another size.
    """
    match = _TRAILER.fullmatch(trailer)
    if match is None:
        raise Damaged("the entry has no avgen trailer (damaged, or not an avgen entry)")
    size = int(match["size"], 16)
    if size != total - TRAILER_SIZE:
        raise Damaged(f"the entry holds {total - TRAILER_SIZE} bytes, its trailer says {size}")
    return match["sha"].decode(), size


def _check_bytes(data: bytes) -> bytes:
    """The content of an entry read whole.

    Raises:
        Damaged: Its trailer or checksum does not check out.
    """
    sha256, size = _parse_trailer(data[-TRAILER_SIZE:], len(data))
    content = data[:size]
    if sha256_hex(content) != sha256:
        raise Damaged("checksum mismatch")
    return content


def _check_file(path: Path) -> None:
    """Check the entry downloaded to ``path`` and cut its trailer off.

    Raises:
        Damaged: Its trailer or checksum does not check out.
    """
    with path.open("r+b") as file:
        total = file.seek(0, os.SEEK_END)
        if total < TRAILER_SIZE:
            raise Damaged(f"the entry has {total} bytes, less than a trailer")
        file.seek(total - TRAILER_SIZE)
        sha256, size = _parse_trailer(file.read(TRAILER_SIZE), total)
        file.seek(0)
        digest = sha256_hasher()
        left = size
        while left:
            chunk = file.read(min(_CHUNK, left))
            if not chunk:
                raise Damaged("the entry was cut short while it was read")
            digest.update(chunk)
            left -= len(chunk)
        if digest.hexdigest() != sha256:
            raise Damaged("checksum mismatch")
        file.truncate(size)


@contextlib.contextmanager
def _io(what: str) -> Iterator[None]:
    """Errors of the filesystem's library as `OSError` (`FileNotFoundError` kept)."""
    try:
        yield
    except OSError:
        raise
    except Exception as exc:  # botocore, aiohttp, google-auth…: whatever the backend raises
        raise OSError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _filesystem(url: str, storage_options: Mapping[str, Any]) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` and the path in it.

    Raises:
        UsageError: fsspec, or the protocol's package, is not installed; or fsspec refuses
            the URL or the options.
    """
    scheme = url.split("://", 1)[0].lower()
    try:
        import fsspec.core
    except ImportError as exc:
        raise UsageError("cache", f"a cache at a URL ({scheme}://…) needs fsspec: "
                         f"{_INSTALL}") from exc
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as exc:
        package = _PACKAGES.get(scheme)
        install = (f"pip install {package}" if package else
                   f"install the fsspec implementation of {scheme}://")
        raise UsageError("cache", f"a cache at {scheme}:// needs {package or 'a package'} "
                         f"that is not installed ({exc}): {install}") from exc
    except (ValueError, TypeError) as exc:
        raise UsageError("cache", f"fsspec cannot open {_display(url)} ({exc})") from exc
    return fs, str(path).rstrip("/")


def _display(url: str) -> str:
    """``url`` without a ``user:password@`` part, for messages."""
    scheme, _, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


class RemoteStore:
    """The entries of an asset cache at an fsspec URL (see the module docstring).

    Every method raises `OSError` when the location cannot be used (whatever the backend
    raised is chained to it), and `Damaged` for an entry that does not check out.

    Args:
        url: Where the entries live (``s3://bucket/prefix``, ``file:///folder``…).
        storage_options: Passed to the fsspec filesystem (``endpoint_url``, ``key``…).
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not is_url(url):
            raise UsageError("location", f"must be a URL (scheme://…), not {url!r}")
        instance("storage_options", storage_options, Mapping, optional=True)
        self.fs, self.root = _filesystem(url, storage_options or {})
        self.scheme = url.split("://", 1)[0].lower()
        """The URL's protocol."""
        self.url = _display(url)
        """The URL (without any ``user:password@``)."""
        self.atomic = self.scheme in OBJECT_STORES
        """Whether an upload to the final name is seen whole or not at all."""

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r})"

    @property
    def slot(self) -> str:
        """What names this location for the in-process single-flight locks."""
        return f"{self.scheme}://{self.root}"

    # -- entries ------------------------------------------------------------------------

    def fetch_file(self, key: str, target: Path) -> bool:
        """Download the file kept under ``key`` to ``target``; False when there is none.

        ``target`` is replaced only by a whole, checked file.
        """
        name = self._entry(key)
        part = temp_path(target)  # a name the session's sweep knows
        try:
            try:
                with _io(f"reading {self._where(name)}"):
                    self.fs.get_file(name, str(part))
            except FileNotFoundError:
                return False
            if not part.is_file():  # some backends write nothing for a folder
                return False
            _check_file(part)
            os.replace(part, target)
            return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    def put_file(self, key: str, path: str | os.PathLike[str]) -> None:
        """Upload a copy of the file at ``path`` under ``key``."""
        name = self._entry(key)
        # the copy with its trailer is made beside the file (in a session, where its sweep
        # finds it if the process is killed meanwhile), not in the system's temporary folder
        upload = temp_path(Path(path))
        try:
            digest = sha256_hasher()
            size = 0
            with Path(path).open("rb") as source, upload.open("wb") as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.write(_trailer(digest.hexdigest(), size))
            self._publish(name, lambda to: self.fs.put_file(str(upload), to))
        finally:
            with contextlib.suppress(FileNotFoundError):
                upload.unlink()

    def get(self, key: str) -> Any | None:
        """The JSON value kept under ``key``, or None."""
        name = self._entry(key) + ".json"
        try:
            with _io(f"reading {self._where(name)}"):
                data = self.fs.cat_file(name)
        except FileNotFoundError:
            return None
        content = _check_bytes(bytes(data))
        try:
            return json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise Damaged(f"the entry is not JSON ({exc})") from exc

    def set(self, key: str, value: Any) -> None:
        """Keep a JSON value under ``key``.

        Raises:
            TypeError: ``value`` is not JSON-serialisable.
        """
        name = self._entry(key) + ".json"
        try:
            content = json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False).encode()
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the cache keeps JSON values, not {type(value).__qualname__} "
                            f"({exc})") from exc
        data = content + _trailer(sha256_hex(content), len(content))
        self._publish(name, lambda to: self.fs.pipe_file(to, data))

    # -- small records (the operation journal) -----------------------------------------

    def read_record(self, name: str, limit: int) -> bytes:
        """At most ``limit`` bytes of the record ``name`` (a path under the URL, such as
        ``operations/<key>.json``).

        Raises:
            FileNotFoundError: There is none.
        """
        path = self._record(name)
        with _io(f"reading {self._where(path)}"):
            return bytes(self.fs.cat_file(path, start=0, end=limit))

    def write_record(self, name: str, data: bytes) -> None:
        """Write the record ``name`` whole (a reader sees the old one or this one)."""
        self._publish(self._record(name), lambda to: self.fs.pipe_file(to, data))

    def remove_record(self, name: str) -> None:
        """Remove the record ``name`` (FileNotFoundError, or nothing, when there is none)."""
        path = self._record(name)
        with _io(f"removing {self._where(path)}"):
            self.fs.rm_file(path)

    def where(self, name: str) -> str:
        """The URL of ``name`` under this store, for messages."""
        return f"{self.url.rstrip('/')}/{name}"

    def records(self, folder: str) -> Folder:
        """The records under ``<url>/<folder>`` (an
        `avgen.agents._assets.journal.Records`)."""
        return Folder(self, folder)

    # -- internals ----------------------------------------------------------------------

    def _entry(self, key: str) -> str:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise UsageError("key", f"{key!r} is not a cache key: use 1-128 characters of "
                                    "a-z, 0-9, '_' and '-', starting with a letter or digit")
        return f"{self.root}/{key[:2]}/{key}"

    def _record(self, name: str) -> str:
        folder, _, leaf = name.rpartition("/")
        if not all(_RECORD.fullmatch(part) for part in [*folder.split("/"), leaf]):
            raise ValueError(f"{name!r} is not a record name")
        return f"{self.root}/{name}"

    def _where(self, path: str) -> str:
        return self.where(path[len(self.root):].lstrip("/"))

    def _publish(self, path: str, upload: Callable[[str], object]) -> None:
        """Make ``path`` appear whole: ``upload(name)`` writes it to a name."""
        with _io(f"writing {self._where(path)}"):
            if self.atomic:
                upload(path)
                return
            folder, _, leaf = path.rpartition("/")
            self.fs.makedirs(folder, exist_ok=True)
            temp = f"{folder}/.tmp-{uuid.uuid4().hex}-{leaf}"
            try:
                upload(temp)
                self.fs.mv(temp, path)
                temp = ""
            finally:
                if temp:
                    with contextlib.suppress(Exception):
                        self.fs.rm_file(temp)


class Folder:
    """The records of a `RemoteStore` under one folder of its URL."""

    def __init__(self, store: RemoteStore, folder: str) -> None:
        self.store = store
        self.folder = folder

    def read_record(self, name: str, limit: int) -> bytes:
        """See `RemoteStore.read_record`."""
        return self.store.read_record(f"{self.folder}/{name}", limit)

    def write_record(self, name: str, data: bytes) -> None:
        """See `RemoteStore.write_record`."""
        self.store.write_record(f"{self.folder}/{name}", data)

    def remove_record(self, name: str) -> None:
        """See `RemoteStore.remove_record`."""
        self.store.remove_record(f"{self.folder}/{name}")

    def where(self, name: str) -> str:
        """See `RemoteStore.where`."""
        return self.store.where(f"{self.folder}/{name}")
