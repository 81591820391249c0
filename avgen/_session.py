"""One folder per run: its layout, safe paths, atomic writes, the manifest, the log, the lock.

A session lives at ``outputs/session_YYYYMMDD_HHMMSS_<suffix>/`` with the folders
``video_clips/ audio/ images/ scripts/ metadata/ final_output/ logs/``. Every path is taken
through `Session.path`, which refuses anything that would land outside the session root;
every file is written to a temporary name in its final folder and moved into place with
`os.replace`, so a crash or Ctrl-C never leaves half a file under a final name.

`metadata/manifest.json` records each step of a run (see `StepRecord`); resuming a session
re-does only the steps whose outputs are missing or fail their checksum. A run holds its
session's lock (`Session.lock`) while it works: one process at a time.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import contextvars
import datetime as _dt
import json
import logging
import os
import re
import secrets
import shutil
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import attrs

from avgen._hashing import file_sha256
from avgen._models import asset_from_dict
from avgen._scratch import sweep, temp_path
from avgen._threads import on_loop
from avgen._validate import (
    instance_validator,
    number_validator,
    structure,
    text_validator,
)
from avgen.errors import SessionError, UnsafePathError, UsageError

__all__ = ["Session", "StepRecord"]

SUBFOLDERS: tuple[str, ...] = (
    "video_clips", "audio", "images", "scripts", "metadata", "final_output", "logs",
)
"""The folders every session has."""

_logger = logging.getLogger("avgen.session")
_active: contextvars.ContextVar[str | None] = contextvars.ContextVar("avgen_session", default=None)
_MANIFEST_VERSION = 1
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)
"""Puts a manifest's values into words (json's C encoder: no ``indent``)."""
LOCK_FILE = "metadata/session.lock"
"""The file whose lock says which process is working on a session."""


@attrs.frozen
class OutputRecord:
    """A file a step produced, as the manifest keeps it."""

    path: str = attrs.field(validator=text_validator())
    """Path relative to the session root, with forward slashes."""
    size: int = attrs.field(validator=number_validator(integer=True, low=0))
    """Size in bytes."""
    sha256: str = attrs.field(validator=text_validator())
    """Hex SHA-256 of the content."""


def _outputs(value: Iterable[OutputRecord]) -> tuple[OutputRecord, ...]:
    return tuple(value)


StepStatus = Literal["done", "failed", "fallback"]


@attrs.frozen
class StepRecord:
    """One step of a run in the manifest: what went in, who did it, what came out."""

    id: str = attrs.field(validator=text_validator())
    """Stable step name, e.g. ``"scene-003.narration"``."""
    agent: str = attrs.field(validator=text_validator())
    """The agent (or component) that did the work."""
    inputs_hash: str = attrs.field(validator=text_validator())
    """SHA-256 of the step's inputs; a changed input makes a resume redo the step."""
    status: StepStatus = attrs.field(validator=text_validator(
        pattern=re.compile("done|failed|fallback"), allowed="done, failed or fallback"))
    """``done``, ``failed`` (an error is attached) or ``fallback`` (a lower tier served)."""
    outputs: tuple[OutputRecord, ...] = attrs.field(default=(), converter=_outputs)
    """Files produced, with sizes and checksums."""
    started: float = attrs.field(default=0.0, validator=number_validator(low=0))
    """Start time, seconds since the epoch."""
    seconds: float = attrs.field(default=0.0, validator=number_validator(low=0))
    """Wall time the step took."""
    tier: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, pattern=re.compile("clip|image|card"), allowed="clip, image or card"))
    """For visuals: ``clip``, ``image`` or ``card``."""
    cost: float = attrs.field(default=0.0, validator=number_validator(low=0, high=1e6))
    """Money spent, in US dollars (0 for local agents)."""
    error: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """The error that failed the step or made it fall back."""
    data: Mapping[str, Any] = attrs.field(factory=dict, validator=instance_validator(Mapping))
    """Step-specific facts (e.g. the asset it produced) needed to resume without redoing it."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: object, where: str = "step") -> StepRecord:
        """Rebuild a record read from the manifest (untrusted: every field is checked).

        Raises:
            UsageError: An unknown or missing field, or a bad value; the error names it.
        """
        def convert(fields: dict[str, Any]) -> dict[str, Any]:
            outputs = fields.get("outputs", ())
            if not isinstance(outputs, list | tuple):
                raise UsageError("outputs", "must be a list")
            fields["outputs"] = tuple(structure(OutputRecord, item, f"outputs[{i}]")
                                      for i, item in enumerate(outputs))
            return fields

        return structure(cls, data, where, convert)


@contextlib.contextmanager
def unsaved_noted_on(failure: BaseException | None) -> Iterator[None]:
    """Within, a manifest that cannot be saved (`avgen.errors.SessionError`) is noted on
    ``failure`` — a failing step's or run's error, which stays what its caller sees —
    instead of raised; with no failure, it is raised."""
    try:
        yield
    except SessionError as unsaved:
        if failure is None:
            raise
        note = f"the session's manifest could not be saved either: {unsaved}"
        if note not in getattr(failure, "__notes__", ()):
            failure.add_note(note)


MANIFEST_LIMIT = 64 << 20
"""The largest manifest avgen reads, in bytes (a run of a thousand scenes writes a few
megabytes): a session folder is read as untrusted, and memory stays bounded."""


def read_manifest(path: Path) -> dict[str, Any]:
    """The JSON object in the manifest at ``path``, read as untrusted: a regular file (not
    a link, a FIFO or a device) of at most `MANIFEST_LIMIT` bytes, holding an object.

    Raises:
        SessionError: It cannot be read or parsed, or is not such a file (the message
            names the file and what is wrong).
    """
    try:  # never through a symlink, never blocking on a FIFO
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise SessionError(f"cannot read the manifest {path}: "
                           f"{exc.strerror or exc}") from None
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SessionError(f"the manifest {path} is not a regular file")
        try:
            data = handle.read(MANIFEST_LIMIT + 1)
        except OSError as exc:
            raise SessionError(f"cannot read the manifest {path}: "
                               f"{exc.strerror or exc}") from None
    if len(data) > MANIFEST_LIMIT:
        raise SessionError(f"the manifest {path} is larger than {MANIFEST_LIMIT:,} bytes, "
                           "the most avgen reads; avgen writes none so large")
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SessionError(f"cannot read the manifest {path}: {exc}") from None
    if not isinstance(value, dict):
        raise SessionError(f"the manifest {path} must hold a JSON object, not "
                           f"{type(value).__name__}")
    return value


class Manifest:
    """The session's ``metadata/manifest.json``: run facts and one `StepRecord` per step.

    Writes are atomic (a whole new file, synced, then renamed into place) and serialised,
    so steps finishing concurrently never lose each other's records; the newest state is
    written first and in order. Called from an event loop's thread, `update` and `record`
    return once the change is in memory, and a writer thread writes it: the loop is never
    held up by the disk (a sync waits for whatever else is being written to it). Called
    from anywhere else, they write the change in the caller's thread and return once it
    is on disk. `flush` waits for
    the writes; the session does when its run ends (`Session.close`) and before another
    run takes it (`Session.lock`).
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._lock = threading.Lock()
        self._pending = False  # whether a change is not yet written
        self._said: dict[str, tuple[object, str]] = {}  # each step's record and its line
        self._writer: threading.Thread | None = None
        self._writing = threading.Lock()  # held while a state is taken and written
        self._failure: BaseException | None = None
        self.path = session.path("metadata/manifest.json")
        """Where the manifest lives."""
        if os.path.lexists(self.path):
            self._data: dict[str, Any] = read_manifest(self.path)
            self._check()
        else:
            self._data = {"version": _MANIFEST_VERSION, "session": session.id, "steps": {}}

    def _check(self) -> None:
        """A manifest read from disk is untrusted: its steps must parse before any is used.

        Raises:
            UsageError: The manifest's shape or a step is not what avgen writes (the error
                names the step and the field).
        """
        data = self._data
        if not isinstance(data, dict) or not isinstance(data.get("steps", {}), dict):
            raise UsageError("manifest", f"{self.path} must be an object whose 'steps' is an "
                             "object of step records")
        data.setdefault("steps", {})
        for key, raw in data["steps"].items():
            where = f"manifest steps[{key!r}]"
            record = StepRecord.from_dict(raw, where)
            if record.id != key:
                raise UsageError(f"{where}.id", f"must be {key!r}, not {record.id!r}")
            if "asset" in record.data:
                try:
                    asset = asset_from_dict(record.data["asset"], self._session.root)
                except UsageError as exc:
                    raise type(exc)(f"{where}.data.{exc.field}", exc.problem) from None
                path = getattr(asset, "path", None)
                outputs = {self._session.root.resolve() / out.path for out in record.outputs}
                if path is not None and path not in outputs:
                    raise UsageError(f"{where}.data.asset.path", "must be one of the step's "
                                     "outputs (whose size and checksum are recorded)")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        """A run-level value (``request``, ``script``, ``status`` …) or ``default``."""
        return self._data.get(key, default)

    def update(self, **values: Any) -> None:
        """Set run-level values and save.

        Raises:
            SessionError: An earlier save could not be written (the disk is full, the
                folder was removed); the change is kept in memory.
        """
        with self._lock:
            self._data.update(values)
            self._save()
        self._settle()

    @property
    def steps(self) -> dict[str, StepRecord]:
        """All step records by id."""
        with self._lock:
            raw = dict(self._data["steps"])
        return {key: StepRecord.from_dict(value) for key, value in raw.items()}

    def step(self, step_id: str) -> StepRecord | None:
        """The record of one step, if it was recorded."""
        with self._lock:
            raw = self._data["steps"].get(step_id)
        return StepRecord.from_dict(raw) if raw is not None else None

    def record(self, step: StepRecord) -> None:
        """Add or replace a step record and save.

        Raises:
            SessionError: An earlier save could not be written; the record is kept in
                memory.
        """
        with self._lock:
            self._data["steps"][step.id] = step.to_dict()
            self._save()
        self._settle()

    def flush(self) -> None:
        """Wait until every change saved so far is on disk.

        Raises:
            SessionError: A save could not be written.
        """
        with self._lock:
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join()
        self._write_newest()
        with self._lock:
            self._raise_failure()

    async def aflush(self) -> None:
        """`flush` for a coroutine: a write in flight is waited for in a worker thread,
        so the event loop goes on meanwhile.

        Raises:
            SessionError: A save could not be written.
        """
        with self._lock:
            written = self._writer is None and not self._pending
            if written:
                self._raise_failure()
        if not written:
            await asyncio.to_thread(self.flush)

    def output(self, path: Path) -> OutputRecord:
        """Describe a file inside the session (relative path, size, checksum)."""
        relative = self._session.relative(path)
        return OutputRecord(relative, path.stat().st_size, file_sha256(path))

    def is_valid(self, step: StepRecord, inputs_hash: str | None = None) -> bool:
        """True when the step succeeded, had these inputs, and its outputs are intact."""
        if step.status == "failed":
            return False
        if inputs_hash is not None and step.inputs_hash != inputs_hash:
            return False
        for out in step.outputs:
            try:
                path = self._session.path(out.path)
                if path.stat().st_size != out.size or file_sha256(path) != out.sha256:
                    return False
            except (OSError, UsageError):
                return False
        return True

    def _save(self) -> None:
        """Mark the state as changed (the caller holds the lock); on an event loop's thread,
        the writer thread writes it (`_settle` writes it anywhere else). The state is put
        into words when it is written, not at each save: saves that come while a write is
        under way are written together, once, and the loop's thread does not spend its time
        on the text (a step of a long video would make every save put every step before it
        into words)."""
        self._raise_failure()
        self._pending = True
        if self._writer is None and on_loop():
            # not a daemon: a process that ends while a state is being written waits for it
            self._writer = threading.Thread(target=self._write, name="avgen-manifest")
            self._writer.start()

    def _settle(self) -> None:
        """Off an event loop's thread, write the save before returning (the caller may read
        the file): in this thread, once a writer thread started by a loop has ended."""
        if not on_loop():
            self.flush()

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise SessionError(f"cannot write the manifest {self.path}: {failure}") from failure

    def _write_newest(self) -> None:
        """Write the newest state not yet written, if any, in this thread. A state is
        taken and written under one lock, so an older state never lands after a newer
        one; a failure is kept for the next save or `flush` to raise."""
        with self._writing:
            with self._lock:
                if not self._pending:
                    return
                text = self._text()
                self._pending = False
            try:
                self._session.write_text("metadata/manifest.json", text)
            except BaseException as exc:
                with self._lock:
                    self._failure = exc

    def _text(self) -> str:
        """The state as the file holds it (the caller holds the lock): a line for each
        run-level value and for each step, keys sorted. Each line is made by json's C
        encoder, and a step's line is kept until its record is replaced, so a write puts
        into words what changed since the last one, not every step of the video."""
        lines, said = [], {}
        for key in sorted(self._data):
            value = self._data[key]
            if key == "steps" and isinstance(value, dict) and value:
                steps = []
                for step_id in sorted(value):
                    record = value[step_id]
                    kept = self._said.get(step_id)
                    if kept is None or kept[0] is not record:  # a record replaced is new
                        kept = (record, _ENCODER.encode(record))
                    said[step_id] = kept
                    steps.append(f"    {_ENCODER.encode(step_id)}: {kept[1]}")
                lines.append('  "steps": {\n' + ",\n".join(steps) + "\n  }")
            else:
                lines.append(f"  {_ENCODER.encode(key)}: {_ENCODER.encode(value)}")
        self._said = said
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def _write(self) -> None:
        """The writer thread: write the newest state until none is left."""
        while True:
            with self._lock:
                if not self._pending:
                    self._writer = None  # a save from now on starts another writer
                    return
            self._write_newest()


class _SessionFilter(logging.Filter):
    def __init__(self, session_id: str) -> None:
        super().__init__()
        self.session_id = session_id

    def filter(self, record: logging.LogRecord) -> bool:
        # `Session.log` tags its records with their session; others go to the active one.
        owner = getattr(record, "avgen_session", None)
        return (owner if owner is not None else _active.get()) == self.session_id


def _holder(fd: int) -> str:
    """Who holds a session's lock, as its lock file says (``process 123 on host, since
    12:00:03``), or ``another process`` when it cannot tell."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        pid, host, since = int(holder["pid"]), str(holder["host"])[:64], float(holder["since"])
        when = _dt.datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M:%S")
    except (OSError, ValueError, TypeError, KeyError, OverflowError):
        return "another process"
    return f"process {pid} on {host!r} (since {when})"


class Session:
    """The folder of one run. Create with `Session.create`, reopen with `Session.open`.

    Use it as a context manager: on exit the session's log file is closed.

    Example:
        >>> import tempfile
        >>> with Session.create(tempfile.mkdtemp()) as session:
        ...     path = session.write_text("scripts/hello.txt", "hi")
        ...     print(session.relative(path))
        scripts/hello.txt
    """

    SUBFOLDERS: ClassVar[tuple[str, ...]] = SUBFOLDERS
    """The folders of a session, made when it is created (and all `cleanup` may keep)."""

    def __init__(self, root: Path) -> None:
        """Wrap an existing session folder; prefer `create` and `open`."""
        self.root = root.resolve()
        """The session folder (absolute, resolved)."""
        self.id = self.root.name
        """The folder's name, e.g. ``session_20261123_120000_a1b2c3d4``."""
        for name in SUBFOLDERS:
            (self.root / name).mkdir(exist_ok=True)
        self.manifest = Manifest(self)
        """The run's manifest."""
        self._handler: logging.Handler | None = None

    @classmethod
    def create(cls, base: str | os.PathLike[str] = "outputs", *,
               name: str | None = None) -> Session:
        """Make a new session folder under ``base`` with a name no other run can take.

        The name is ``session_YYYYMMDD_HHMMSS_<random suffix>``; the folder is created with an
        exclusive ``mkdir``, so runs started in the same second, even in parallel processes,
        never share a folder.

        Args:
            base: The folder the session folder is made in.
            name: A name of the caller's choosing instead (a batch item's stable folder);
                the folder may exist already, but not as a session.

        Raises:
            UsageError: ``base`` cannot be created or written, or ``name`` is a session
                already.
        """
        base_path = Path(base).expanduser()
        try:
            base_path.mkdir(parents=True, exist_ok=True)
            probe = base_path / f".avgen-write-test-{secrets.token_hex(4)}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UsageError("out", f"the output folder {str(base_path)!r} cannot be written "
                             f"({exc.strerror or exc}); choose a writable folder") from exc
        if name is not None:
            root = base_path / name
            if (root / "metadata" / "manifest.json").exists():
                raise UsageError("session", f"{str(root)!r} is a session already: resume it")
            root.mkdir(exist_ok=True)
            return cls._started(root)
        stamp = _dt.datetime.now().strftime("%Y%m%d_%H%M%S")
        for _ in range(100):
            root = base_path / f"session_{stamp}_{secrets.token_hex(4)}"
            try:
                root.mkdir()
            except FileExistsError:
                continue
            return cls._started(root)
        raise SessionError(f"could not create a unique session folder in {base_path}")

    @classmethod
    def _started(cls, root: Path) -> Session:
        """A new session in the empty folder ``root``: a session once its manifest is on
        disk (what `open`, a batch and the MCP server look for), so this waits for it even
        on an event loop."""
        session = cls(root)
        session.manifest.update(created=time.time())
        session.manifest.flush()
        return session

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Session:
        """Reopen an existing session folder (to resume it or read its manifest).

        Raises:
            UsageError: ``path`` is not a session folder.
        """
        root = Path(path).expanduser()
        if not (root / "metadata" / "manifest.json").is_file():
            raise UsageError("session", f"{str(root)!r} is not an avgen session folder "
                             "(no metadata/manifest.json)")
        return cls(root)

    # -- paths ---------------------------------------------------------------------------

    def path(self, relative: str | os.PathLike[str]) -> Path:
        """The absolute path of ``relative`` inside the session.

        Raises:
            UnsafePathError: The path is absolute, climbs out with ``..``, or resolves
                outside the root through a symlink.
        """
        raw = os.fspath(relative)
        candidate = Path(raw)
        if not raw or "\x00" in raw:
            raise UnsafePathError("path", f"{raw!r} is not a valid path")
        if candidate.is_absolute() or candidate.drive:
            raise UnsafePathError("path", f"{raw!r} is absolute; give a path inside the session")
        if ".." in candidate.parts:
            raise UnsafePathError("path", f"{raw!r} climbs out of the session with '..'")
        try:
            resolved = (self.root / candidate).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise UnsafePathError("path", f"{raw!r} cannot be resolved ({exc})") from exc
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise UnsafePathError("path", f"{raw!r} resolves outside the session root "
                                  "(through a symlink)")
        return resolved

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the session root, with forward slashes.

        Raises:
            UnsafePathError: ``path`` is outside the session.
        """
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(self.root):
            raise UnsafePathError("path", f"{str(path)!r} is outside the session {self.root}")
        return resolved.relative_to(self.root).as_posix()

    @contextlib.contextmanager
    def atomic_path(self, relative: str | os.PathLike[str]) -> Iterator[Path]:
        """Yield a temporary path beside ``relative``; on success it is moved into place.

        The temporary name is ``.<stem>.<8 hex>.part<suffix>``: it keeps the extension
        (tools such as ffmpeg pick the format from it). If the block raises, or leaves no
        file, the temporary file is removed and the final name is untouched; if the process
        dies before that, `sweep` removes it.
        """
        final = self.path(relative)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = temp_path(final)
        try:
            yield temp
            if not temp.exists():
                raise SessionError(f"nothing was written for {self.relative(final)}")
            os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()

    def write_bytes(self, relative: str | os.PathLike[str], data: bytes) -> Path:
        """Write ``data`` atomically; returns the final path."""
        with self.atomic_path(relative) as temp, open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return self.path(relative)

    def write_text(self, relative: str | os.PathLike[str], text: str) -> Path:
        """Write UTF-8 ``text`` atomically; returns the final path."""
        return self.write_bytes(relative, text.encode("utf-8"))

    def write_json(self, relative: str | os.PathLike[str], value: Any) -> Path:
        """Write ``value`` as indented JSON atomically; returns the final path."""
        return self.write_text(relative, json.dumps(value, indent=2, ensure_ascii=False) + "\n")

    # -- one process at a time ----------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[Session]:
        """Hold the session for this run: no other run, in this process or another, may
        work on it until the block ends.

        The lock is ``flock`` on ``metadata/session.lock``, which records who holds it
        (process id, host, since when). The system releases it when its holder ends,
        however it ends (even ``kill -9``), so a session whose run died is free at once:
        the next run takes it over. Once the lock is held the manifest is read again, as
        the run before left it. On a file system without locks (a warning says so) and on
        Windows there is no lock.

        Raises:
            UsageError: Another run holds the session (the error names its process), or
                the lock file cannot be used (a folder or a symlink in its place).
        """
        if sys.platform == "win32":  # pragma: no cover - no flock
            yield self
            return
        import fcntl

        path = self.path("metadata") / Path(LOCK_FILE).name
        try:  # never through a symlink, never blocking on a FIFO
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
                         | os.O_NONBLOCK, 0o644)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise UsageError("session", f"cannot use the lock file {path} ({reason}); remove "
                             f"it when no avgen process is working on {self.root}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise UsageError("session", f"the lock file {path} is not a regular file; "
                                 f"remove it when no avgen process is working on {self.root}")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError("session", f"{self.root} is being worked on by "
                                 f"{_holder(fd)}; a session is worked on by one process at "
                                 "a time: wait for it to end (or stop it), then run this "
                                 "again") from None
            except OSError as exc:  # a file system without locks: nothing to hold
                _logger.warning("cannot lock %s (%s): this file system has no locks, so "
                                "nothing stops another run from working on the session at "
                                "the same time", path, exc.strerror or exc)
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
            with contextlib.suppress(OSError):  # who holds it is for messages only
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(holder).encode() + b"\n", 0)
            self.manifest.flush()
            self.manifest = Manifest(self)  # as the run that held the session before left it
            try:
                yield self
            finally:
                self.manifest.flush()  # on disk before the next run may read it
        finally:
            os.close(fd)  # releases the lock

    # -- logging -------------------------------------------------------------------------

    @contextlib.contextmanager
    def activate(self) -> Iterator[Session]:
        """Route this run's ``avgen`` log records to ``logs/session.log`` while active.

        Records are tagged through a context variable, so two sessions running in one
        process (or in threads started from the run) each get only their own records.
        """
        token = _active.set(self.id)
        if self._handler is None:
            handler = logging.FileHandler(self.path("logs/session.log"), encoding="utf-8")
            handler.setFormatter(logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s: %(message)s"))
            handler.addFilter(_SessionFilter(self.id))
            logging.getLogger("avgen").addHandler(handler)
            self._handler = handler
        try:
            yield self
        finally:
            _active.reset(token)

    def log(self, level: int, message: str, *args: object) -> None:
        """Write a record to this session's log, and to the ``avgen`` logger if enabled."""
        record = _logger.makeRecord(_logger.name, level, "(avgen)", 0, message, args, None,
                                    extra={"avgen_session": self.id})
        reached = False
        if _logger.isEnabledFor(level):
            _logger.handle(record)
            # Through the ``avgen`` logger the record reaches this session's handler (other
            # sessions' handlers refuse it by its tag) unless propagation is cut.
            reached = _logger.propagate and not _logger.disabled
        if self._handler is not None and not reached:
            self._handler.handle(record)

    def close(self) -> None:
        """Wait until the manifest is on disk (`Manifest.flush`) and close the session's
        log file. The folder stays.

        Raises:
            SessionError: The manifest could not be written.
        """
        try:
            self.manifest.flush()
        finally:
            self._close_log()

    def _close_log(self) -> None:
        if self._handler is not None:
            logging.getLogger("avgen").removeHandler(self._handler)
            self._handler.close()
            self._handler = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- housekeeping --------------------------------------------------------------------

    def cleanup(self, keep: Iterable[str] = ("final_output", "metadata")) -> None:
        """Delete the session's working files, keeping the folders named in ``keep``.

        Raises:
            UsageError: ``keep`` names a folder that sessions do not have.
        """
        kept = set(keep)
        unknown = kept - set(SUBFOLDERS)
        if unknown:
            raise UsageError("keep", f"unknown folders {sorted(unknown)}; "
                             f"choose from {', '.join(SUBFOLDERS)}")
        self.close()
        for name in SUBFOLDERS:
            if name not in kept:
                shutil.rmtree(self.root / name, ignore_errors=True)

    def sweep(self) -> list[Path]:
        """Remove the temporary files a dead run left in the session.

        A run killed outright (``kill -9``, a power cut) cannot remove its temporary files:
        half-written assets and manifests (``.<stem>.<8 hex>.part<ext>``) and the
        composer's scratch files (``.<stem>.<8 hex>.ass``, ``.ffconcat``,
        ``.part<N>.mp4``). This removes exactly those, from the session folder and its
        `SUBFOLDERS` (not deeper); it never follows a symlink and never touches a file
        whose name avgen would not give a temporary file. `avgen.VideoGenerator` sweeps
        when a run starts and when it ends.

        A session is used by one run at a time: do not sweep a session another process is
        running, whose temporary files are still being written.

        The session's own manifest is written first (`Manifest.flush`), so its write in
        flight is not taken for debris.

        Returns:
            The files removed.
        """
        self.manifest.flush()
        removed = sweep([self.root, *(self.root / name for name in SUBFOLDERS)])
        if removed:
            self.log(logging.INFO, "removed %d temporary file(s) no run was writing: %s",
                     len(removed), ", ".join(self.relative(path) for path in removed))
        return removed

    def __repr__(self) -> str:
        return f"Session({str(self.root)!r})"

