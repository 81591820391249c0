"""Many videos at once: a batch folder, its items, and the engines that run them.

::

    outputs/batch_<id>/
        batch.json              the rows, each item's state and result, the totals
        batch.journal.jsonl     while a run goes on: a line per item started or finished,
                                folded into batch.json when the run ends
        items/0000-<slug>/      item 0's session folder (a normal session: resumable)
        items/0001-<slug>/      ...

A batch's id is a digest of its rows and its agents: running the same rows again finds the
same folder and finishes only what is not done. Each item runs as one task — in this
process (bounded concurrency, one event loop), on any `concurrent.futures.Executor`
(``ProcessPoolExecutor``), or on a Dask cluster (a ``distributed.Client``) — and always in
its own session folder, so an item that runs again (after a failure, a re-run, or a worker
that died) resumes its session instead of paying for its steps again.

What the items share is a `avgen.resilience._shared.Coordination`: in this process's memory,
in a ``multiprocessing`` manager for an executor's processes, or on the Dask scheduler.
Through it the batch holds one budget (a paid call reserves its price first), one quota per
model (operations in flight, requests per minute, a 429 slowing everyone), one single-flight
lock per asset, and one breaker state per service. Agents are built on the workers from
their family's name and options (`AgentSpec`), never pickled with open connections.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import collections
import concurrent.futures
import contextlib
import json
import math
import os
import pickle
import re
import secrets
import shlex
import stat
import sys
import threading
import time
import unicodedata
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from avgen._batch_pool import Pools, run_surviving
from avgen._hashing import sha256_hasher
from avgen._models import Video, VideoRequest
from avgen._policy import first_call
from avgen._reporting import EventHandler, RunEvent
from avgen._session import Session
from avgen._validate import folder, number
from avgen.errors import UsageError
from avgen.resilience._shared import (
    Coordination,
    LocalCoordination,
    Shared,
    coordinated,
    sharing,
)

__all__ = ["AgentSpec", "BatchItem", "BatchResult"]

BATCH_FILE = "batch.json"
"""The file in a batch folder that holds its rows, their state and the totals."""

_JOURNAL = "batch.journal.jsonl"
"""While a run goes on, each item's new state is a line added to this file (the cost of a
change does not grow with the batch); the run's end writes `BATCH_FILE` whole and removes
it. A run that was killed leaves it, and the next run (or a report) reads it after
`BATCH_FILE`: its lines win."""

_JOURNAL_LINE_LIMIT = 64 * 2**20
"""The longest journal line read, in bytes (an item's line holds its request, whose
scripts are bounded; a longer line is not one avgen wrote)."""
_START_AGAIN = "remove it to start the batch again (finished sessions are reused)"

ItemStatus = Literal["pending", "running", "done", "failed"]
"""Where a batch item stands: ``pending`` (not started, or to be made again), ``running``,
``done`` (its video is made) or ``failed`` (its error is kept; running the batch again
retries it)."""

_VERSION = 1
_SECRET_OPTIONS = frozenset({"env", "client", "connection", "credentials", "cache_options"})
_DRAIN_EVERY = 0.2
_STARTED = "batch.started"
"""The event a worker sends when it starts an item (how the driver knows which items a
dead worker had started)."""


def _plain_options(options: Mapping[str, Any]) -> dict[str, Any]:
    return dict(options)


@attrs.frozen
class AgentSpec:
    """How to build a family of agents anywhere: its name and plain options (picklable).

    Args:
        family: ``"local"``, ``"google"`` or an installed plugin's name.
        options: Keyword options for the family's factory (for google, e.g.
            ``{"cache": "gs://bucket/avgen", "max_clip_operations": 2}``).
    """

    family: str
    """The family's name."""
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_plain_options)
    """Options for the family's factory."""

    def public(self) -> dict[str, Any]:
        """The spec as ``batch.json`` keeps it: options that may hold secrets (``env``,
        ``client``, credentials) are named, not stored."""
        return {"family": self.family, "options": {
            key: "<not stored>" if key in _SECRET_OPTIONS else value
            for key, value in sorted(self.options.items())}}


class Maker(Protocol):
    """Who makes a batch's videos, as the batch sees it (`avgen.VideoGenerator` hands one
    in): the batch drives, the maker makes."""

    @property
    def output_dir(self) -> Path:
        """Where batch folders go unless the call says otherwise."""
        ...

    def names(self) -> Mapping[str, str | None]:
        """The agents' names by role (a batch of agent objects is identified by them)."""
        ...

    def check(self, request: VideoRequest, budget: float | None) -> None:
        """Refuse a request before anything runs (`avgen.errors.UsageError`, or
        `avgen.errors.BudgetExceeded` when ``budget`` cannot pay its first call)."""
        ...

    def spec(self) -> WorkerSpec | None:
        """How another process builds the same maker (``None``: it holds agent objects)."""
        ...

    def emit(self, event: RunEvent) -> None:
        """Tell the maker's own subscribers of a batch event."""
        ...

    async def make(self, root: Path, request: VideoRequest,
                   on_event: EventHandler) -> Video:
        """Make the video of ``request`` in the session folder ``root`` — or finish it, when
        the folder holds a session already — telling ``on_event`` of every event."""
        ...

    async def aclose(self) -> None:
        """Release the agents, when the maker was built for the item."""
        ...


class WorkerSpec(Protocol):
    """A picklable recipe for a `Maker`, sent to where the items run."""

    @property
    def agents(self) -> AgentSpec:
        """The family and its options (as ``batch.json`` records them)."""
        ...

    def build(self) -> Maker:
        """The maker, built in the worker."""
        ...


@attrs.frozen
class BatchItem:
    """One video of a batch: its request, where it stands and what it made."""

    index: int
    """Its position in the input (results keep the input order)."""
    request: VideoRequest
    """What to make."""
    session: Path
    """Its session folder (``items/NNNN-<slug>`` in the batch folder)."""
    status: ItemStatus = "pending"
    """``pending``, ``running``, ``done`` or ``failed``."""
    video: Path | None = None
    """The finished video (when done)."""
    duration: float | None = None
    """The video's length in seconds (when done)."""
    cost: float = 0.0
    """Dollars its session spent (all runs of it together)."""
    tiers: tuple[str, ...] = ()
    """The picture tier of each scene (when done)."""
    error: str | None = None
    """Why it failed (when failed)."""
    seconds: float | None = None
    """Wall time of its last run."""

    @property
    def resume_command(self) -> str | None:
        """For an item not done whose session was started, the command that finishes it on
        its own (running the batch again finishes it too); else None."""
        if self.status == "done" or not (self.session / "metadata" / "manifest.json").is_file():
            return None
        return f"avgen resume {shlex.quote(str(self.session))}"

    def to_dict(self, root: Path) -> dict[str, Any]:
        """The JSON form ``batch.json`` keeps (paths relative to the batch folder)."""
        return {"index": self.index, "request": self.request.to_dict(),
                **_item_facts(self, root)}


def _counted(items: Sequence[BatchItem]) -> str:
    """A batch's items in its ``repr``: how many stand where (each item's ``repr`` holds its
    whole request: a batch of thousands would print pages, and ``asyncio.run`` formats
    its result's once when it returns)."""
    counts = collections.Counter(item.status for item in items)
    standing = ", ".join(f"{counts[status]} {status}" for status in
                         ("done", "failed", "pending", "running") if counts[status])
    return f"<{len(items)} items{': ' if standing else ''}{standing}>"


@attrs.frozen
class BatchResult:
    """What a batch made, item by item in the input order.

    Iterate over it (or index it) for the `BatchItem` objects.
    """

    directory: Path
    """The batch folder (``outputs/batch_<id>``)."""
    items: tuple[BatchItem, ...] = attrs.field(repr=_counted)
    """Every item, in the input order."""
    budget: float | None = None
    """The batch's budget, if it had one."""

    @property
    def id(self) -> str:
        """The batch's id (its folder's name without ``batch_``)."""
        return self.directory.name.removeprefix("batch_")

    @property
    def done(self) -> tuple[BatchItem, ...]:
        """The items that made their video."""
        return tuple(item for item in self.items if item.status == "done")

    @property
    def failed(self) -> tuple[BatchItem, ...]:
        """The items that did not."""
        return tuple(item for item in self.items if item.status != "done")

    @property
    def ok(self) -> bool:
        """True when every item made its video."""
        return not self.failed

    @property
    def cost(self) -> float:
        """Dollars spent by every item together."""
        return math.fsum(item.cost for item in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[BatchItem]:
        return iter(self.items)

    def __getitem__(self, index: int) -> BatchItem:
        return self.items[index]

    def __str__(self) -> str:
        lines = []
        for item in self.items:
            what = str(item.video) if item.video else (item.error or item.status)
            facts = f"{item.duration:6.1f} s" if item.duration is not None else " " * 8
            tiers = ",".join(item.tiers)
            lines.append(f"{item.index:>4} {item.status:<7} {facts} ${item.cost:8.4f} "
                         f"{tiers:<14} {what}")
            if item.status != "done":
                how = (f"resume with `{item.resume_command}`" if item.resume_command
                       else "run the same batch again to make it")
                lines.append(f"{'':>13}{how}")
        lines.append(f"{len(self.done)} done, {len(self.failed)} not done, "
                     f"${self.cost:.4f} spent" + (f" of ${self.budget:.2f}"
                                                   if self.budget is not None else ""))
        return "\n".join(lines)


# -- the batch folder ------------------------------------------------------------------


def _slug(request: VideoRequest) -> str:
    words = request.title or request.topic or request.script or "video"
    plain = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:40].rstrip("-")
    return slug or "video"


def _item_facts(item: BatchItem, root: Path) -> dict[str, Any]:
    """What `BatchItem.to_dict` says of an item besides its index and request."""
    return {"session": item.session.relative_to(root).as_posix(), "status": item.status,
            "video": None if item.video is None else item.video.relative_to(root).as_posix(),
            "duration": item.duration, "cost": item.cost, "tiers": list(item.tiers),
            "error": item.error, "seconds": item.seconds}


def _item_json(item: BatchItem, root: Path, request: str) -> str:
    """`BatchItem.to_dict` as JSON, ``request`` the row's JSON made already (`_row_json`:
    a batch makes each row's once; it was most of the work of writing an item)."""
    return (f'{{"index": {item.index}, "request": {request}, '
            f'{json.dumps(_item_facts(item, root))[1:]}')


def _row_json(request: Mapping[str, Any]) -> str:
    """A row's JSON form (`avgen.VideoRequest.to_dict`), as the batch's id digests it."""
    return json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)


def batch_id(requests: Sequence[VideoRequest], agents: AgentSpec) -> str:
    """The id of a batch: a digest of its rows and its agents (the same rows and agents
    find the same folder)."""
    return _batch_id([_row_json(request.to_dict()) for request in requests], agents)


def _batch_id(rows: Sequence[str], agents: AgentSpec) -> str:
    """`batch_id` from the rows' `_row_json`: the digest of ``{"agents": ..., "requests":
    [...]}`` as `avgen._hashing.json_sha256` writes it, each row's JSON written once."""
    head = json.dumps({"agents": agents.public(), "requests": []}, sort_keys=True,
                      ensure_ascii=False, default=str).removesuffix("]}")
    digest = sha256_hasher()
    digest.update(head.encode())
    for position, row in enumerate(rows):
        digest.update(f"{', ' if position else ''}{row}".encode())
    digest.update(b"]}")
    return digest.hexdigest()[:12]


def _item_root(directory: Path, index: int, request: VideoRequest) -> Path:
    return directory / "items" / f"{index:04d}-{_slug(request)}"


def _write_state(directory: Path, spec: AgentSpec, budget: float | None,
                 items: Sequence[BatchItem], rows: Sequence[str]) -> None:
    """Write ``batch.json`` whole (a temporary file moved into place)."""
    state = {"version": _VERSION, "id": directory.name.removeprefix("batch_"),
             "agents": spec.public(), "budget": budget, "updated": time.time(),
             "totals": {"items": len(items),
                        "done": sum(item.status == "done" for item in items),
                        "failed": sum(item.status == "failed" for item in items),
                        "cost": math.fsum(item.cost for item in items)}}
    # an item a line (json's indented form is written by its slow pure-Python encoder)
    head = json.dumps(state, indent=2).removesuffix("\n}")
    lines = ",\n".join("    " + _item_json(item, directory, rows[item.index])
                        for item in items)
    target = directory / BATCH_FILE
    temp = directory / f".{BATCH_FILE}.{secrets.token_hex(4)}.tmp"
    temp.write_text(f'{head},\n  "items": [\n{lines}\n  ]\n}}\n', encoding="utf-8")
    os.replace(temp, target)


def batch_record(directory: Path) -> dict[str, Any]:
    """The state of the batch in ``directory`` as its last run left it: ``batch.json``
    with the lines of its journal (see `_JOURNAL`) applied, item by item.

    Raises:
        UsageError: ``batch.json`` is not a regular file or not a batch record, or a line
            of the journal (but a last one cut short by a kill) cannot be read.
    """
    path = directory / BATCH_FILE
    if path.is_symlink() or not path.is_file():
        raise UsageError("batch", f"{path} is not a regular file; {_START_AGAIN}")
    try:
        state = json.loads(path.read_text("utf-8"))
        if not isinstance(state, dict) or not isinstance(state.get("items"), list):
            raise TypeError("its 'items' must be a list")
        items: dict[int, Any] = {}
        for position, item in enumerate(state["items"]):
            if not isinstance(item, dict):
                raise TypeError(f"items[{position}] must be an object")
            items[number(f"items[{position}].index", item.get("index"), integer=True,
                          low=0)] = item
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        # (a UsageError from `number` is a ValueError too)
        raise UsageError("batch", f"{path} cannot be read ({exc}); {_START_AGAIN}") \
            from None
    for index, item in journal_entries(directory).items():
        if index in items:  # a line about an item the rows do not have is ignored
            items[index] = item
    state["items"] = [items[index] for index in sorted(items)]
    return state


def journal_entries(directory: Path) -> dict[int, dict[str, Any]]:
    """The last state of each item the journal of the batch in ``directory`` holds (see
    `_JOURNAL`; {} when there is none), read a line at a time.

    Raises:
        UsageError: The journal is not a regular file, or a line of it (but a last one cut
            short by a kill) is not an item's state.
    """
    journal = directory / _JOURNAL
    if not os.path.lexists(journal):
        return {}
    if journal.is_symlink() or not journal.is_file():
        raise UsageError("batch", f"{journal} is not a regular file; {_START_AGAIN}")
    entries: dict[int, dict[str, Any]] = {}
    with journal.open("rb") as lines:
        for at, line in enumerate(iter(lambda: lines.readline(_JOURNAL_LINE_LIMIT + 1), b""),
                                  1):
            try:
                if len(line) > _JOURNAL_LINE_LIMIT:
                    raise ValueError(f"longer than {_JOURNAL_LINE_LIMIT:,} bytes")
                item = json.loads(line)
                if not isinstance(item, dict):
                    raise TypeError("a line must be an object")
                index = number(f"line {at}: index", item.get("index"), integer=True, low=0)
            except (ValueError, TypeError, RecursionError) as exc:
                if not line.endswith(b"\n") and len(line) <= _JOURNAL_LINE_LIMIT:
                    break  # the last line, cut short when its run was killed
                raise UsageError("batch", f"{journal}, line {at}, cannot be read ({exc}); "
                                 f"{_START_AGAIN}") from None
            entries[int(index)] = item
    return entries


def _read_state(directory: Path) -> tuple[dict[int, dict[str, Any]], float | None, bool]:
    """The items a previous run of this batch recorded, by index ({} when none); the
    budget it recorded; and whether ``batch.json`` holds all of it (it had no journal)."""
    if not os.path.lexists(directory / BATCH_FILE):
        return {}, None, False
    state = batch_record(directory)
    budget = state.get("budget")
    return ({int(item["index"]): item for item in state["items"]},
            float(budget) if isinstance(budget, int | float) else None,
            not os.path.lexists(directory / _JOURNAL))


def _session_spent(root: Path) -> float:
    """What a session's recorded steps cost (0 when it has no manifest yet)."""
    if not os.path.lexists(root):  # not started (most items of a new batch): no reading
        return 0.0
    try:
        session = Session.open(root)
    except UsageError:
        return 0.0
    return math.fsum(step.cost for step in session.manifest.steps.values())


def _finished(recorded: Mapping[str, Any] | None, item: BatchItem,
              real_items: str | None) -> BatchItem | None:
    """The item as a previous run finished it, if its video is still there
    (``real_items``: the batch's ``items`` folder in the batch folder with its links
    resolved, found once for every item; None when it is a link or no folder).

    ``batch.json`` is untrusted: the video it names must be a regular file in the item's
    own session, reached through folders that are no links (the item's own folder
    included). That is three ``lstat`` calls for an item, where resolving the path would
    look at every folder from the root down (resuming a batch of thousands did that).
    """
    if not recorded or recorded.get("status") != "done" or real_items is None:
        return None
    text = recorded.get("video")
    if not isinstance(text, str) or "\0" in text:
        return None
    parts = text.split("/")
    if (len(parts) < 4 or parts[:2] != ["items", item.session.name]
            or any(part in ("", ".", "..") for part in parts[2:])):
        return None
    path = real_items
    try:
        for part in parts[1:-1]:
            path = f"{path}/{part}"
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return None  # a link, or not a folder
        path = f"{path}/{parts[-1]}"
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
    except (OSError, ValueError):
        return None
    tiers = recorded.get("tiers") or []
    try:
        duration = number("duration", recorded.get("duration"), low=0, optional=True)
        cost = float(number("cost", recorded.get("cost", 0), low=0))
        seconds = number("seconds", recorded.get("seconds"), low=0, optional=True)
    except UsageError:
        return None  # a recorded fact is not what avgen writes: the item resumes its session
    if not isinstance(tiers, list) or not all(isinstance(tier, str) for tier in tiers):
        return None
    return attrs.evolve(item, status="done", video=Path(path), tiers=tuple(tiers), cost=cost,
                        duration=None if duration is None else float(duration),
                        seconds=None if seconds is None else float(seconds))


@contextlib.contextmanager
def _one_driver(directory: Path) -> Iterator[None]:
    """Hold the batch folder for this process: a second driver of the same batch (which
    would run its items twice) is refused. The lock (``flock`` on ``.driver.lock``) goes
    with its holder, however it ends."""
    if sys.platform == "win32":  # pragma: no cover - no flock
        yield
        return
    import fcntl

    fd = os.open(directory / ".driver.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError("batch", f"{directory} is being run by another process; wait "
                             "for it to finish (then run again to finish what is left)") \
                from None
        yield
    finally:
        os.close(fd)


# -- one item, wherever it runs ---------------------------------------------------------


@attrs.frozen
class _Job:
    """One item, as sent to where it runs (picklable)."""

    index: int
    request: dict[str, Any]
    session: str
    maker: WorkerSpec | None
    coordination: Any
    owner: str


def _outcome(job: _Job, status: ItemStatus, started: float, **facts: Any) -> dict[str, Any]:
    return {"index": job.index, "status": status, "seconds": time.time() - started,
            "cost": _session_spent(Path(job.session)), **facts}


async def _run_job(job: _Job, maker: Maker | None = None) -> dict[str, Any]:
    """Make (or resume) one item's video; a failure is returned, never raised. ``maker``:
    the driver's, in this process; else the job's recipe builds one here."""
    started = time.time()
    coordination: Coordination = job.coordination
    shared = Shared(coordination, owner=job.owner)

    def forward(event: RunEvent) -> None:
        if event.kind == "compose" and event.message == "composing":
            return  # the composer's ticks: too many to send across the cluster
        coordination.publish({"item": job.index, "kind": event.kind, "message": event.message,
                              "progress": event.progress, "scene": event.scene})

    try:
        await coordinated(coordination, coordination.publish, {"item": job.index, "kind": _STARTED})
        await coordinated(coordination, coordination.forget, job.owner)  # left by a dead worker
        owned = maker is None
        if maker is None:
            assert job.maker is not None
            maker = job.maker.build()
        try:
            with sharing(shared):
                video = await maker.make(Path(job.session), VideoRequest.from_dict(job.request),
                                         forward)
        finally:
            if owned:
                await maker.aclose()
    except Exception as exc:  # one item's failure never stops the others
        return _outcome(job, "failed", started, error=str(exc) or repr(exc))
    return _outcome(job, "done", started, video=str(video.path), duration=video.duration,
                    tiers=list(video.tiers))


def run_job(job: _Job) -> dict[str, Any]:
    """`_run_job` in a worker (a process of an executor, or a Dask worker's thread), its
    set-up in turn with the other items started in the same process (`_set_up_in_turn`)."""
    with _set_up_in_turn() as opened, first_call(opened):
        return asyncio.run(_run_job(job))


class _Turns:
    """The item started last in this process, for `_set_up_in_turn`."""

    lock = threading.Lock()
    latest: threading.Event | None = None


@contextlib.contextmanager
def _set_up_in_turn() -> Iterator[threading.Event]:
    """Wait until the item started before this one in the same process has made its first
    agent call (or ended), at most `_OPENING_WAIT` seconds; the event handed out is set at
    this item's first call (`first_call`), or when the block ends.

    A Dask worker runs an item per thread. Started together, their set-ups (each builds
    its agents: a Google client makes its TLS contexts, reading the certificate store)
    share the process's one interpreter lock, and the first request of every item waited
    for all of them; in turn, the first items' requests are on their way while the next
    ones set up, as in a batch run in this process (`_opening`).
    """
    opened = threading.Event()
    with _Turns.lock:
        ahead, _Turns.latest = _Turns.latest, opened
    if ahead is not None:
        ahead.wait(_OPENING_WAIT)
    try:
        yield opened
    finally:
        opened.set()


# -- where the items run ----------------------------------------------------------------


class _Manager(BaseManager):
    """Serves one `LocalCoordination` to the processes of an executor."""


_Manager.register("Coordination", LocalCoordination, exposed=(
    "try_slot", "free_slot", "try_start", "hold_off", "not_before", "open_budget", "reserve",
    "settle", "forget", "spending", "trip", "tripped_until", "publish", "drain"))


def _is_dask_client(engine: object) -> bool:
    return type(engine).__module__.startswith("distributed") and hasattr(engine,
                                                                          "get_executor")


@contextlib.contextmanager
def _engine(engine: object, batch: str) -> Iterator[tuple[concurrent.futures.Executor | None,
                                                           Coordination]]:
    """The executor the items go to (None: this process) and their shared state."""
    if engine is None:
        yield None, LocalCoordination()
    elif _is_dask_client(engine):
        from avgen._dask import DaskCoordination

        coordination = DaskCoordination(f"avgen-{batch}-{secrets.token_hex(4)}")
        coordination.setup()
        yield engine.get_executor(pure=False), coordination  # type: ignore[attr-defined]
    elif isinstance(engine, concurrent.futures.Executor):
        manager = _Manager()
        manager.start()
        try:
            yield engine, manager.Coordination()  # type: ignore[attr-defined]
        finally:
            manager.shutdown()
    else:
        raise UsageError("executor", "must be None (this process), a concurrent.futures."
                         f"Executor or a distributed.Client, not {type(engine).__name__}")


# -- the batch --------------------------------------------------------------------------


class _Driver:
    """Runs the pending items of one batch and keeps its state on disk: ``batch.json``
    whole when the run starts and ends, a journal line per change in between."""

    def __init__(self, directory: Path, spec: AgentSpec, budget: float | None,
                 items: list[BatchItem], rows: Sequence[str],
                 on_event: EventHandler | None, *, saved: bool = False) -> None:
        self.directory, self.spec, self.budget = directory, spec, budget
        self.items = items
        self.rows = rows
        """Each row's request in its JSON form (`_row_json`), made once."""
        self.on_event = on_event
        self.started: set[int] = set()
        """Items a worker said it started (since their last loss)."""
        self._counts = {status: 0 for status in ("pending", "running", "done", "failed")}
        self._spent = 0.0
        for item in items:
            self._counts[item.status] += 1
            self._spent += item.cost
        self._journal: Any = None
        self._saved = saved
        """``batch.json`` holds every item as it is (nothing set since it was written)."""

    def set(self, index: int, item: BatchItem) -> None:
        """Put an item's new state in place, in the counts and in the journal."""
        before = self.items[index]
        self._counts[before.status] -= 1
        self._counts[item.status] += 1
        self._spent += item.cost - before.cost
        self.items[index] = item
        self._saved = False
        if self._journal is None:
            self._journal = open(self.directory / _JOURNAL, "a", encoding="utf-8")  # noqa: SIM115
        self._journal.write(_item_json(item, self.directory, self.rows[index]) + "\n")
        self._journal.flush()  # in the file, whatever happens to this process next

    def save(self) -> None:
        """Write ``batch.json`` whole and start a new journal (nothing when it holds every
        item as it is already)."""
        if self._saved:
            return
        _write_state(self.directory, self.spec, self.budget, self.items, self.rows)
        self._saved = True
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.directory / _JOURNAL)

    def emit(self, kind: str, message: str, item: int | None = None, **data: Any) -> None:
        if self.on_event is None:
            return
        counts, total = self._counts, len(self.items)
        data = {"item": item, "done": counts["done"], "failed": counts["failed"],
                "running": counts["running"], "total": total, **data}
        try:
            self.on_event(RunEvent(kind, message,
                                   (counts["done"] + counts["failed"]) / max(1, total), None,
                                   data))
        except Exception:  # an observer must never break a batch
            import logging

            logging.getLogger("avgen.batch").exception("event handler failed")

    def finish(self, outcome: Mapping[str, Any]) -> None:
        index = int(outcome["index"])
        item = self.items[index]
        video = outcome.get("video")
        self.set(index, attrs.evolve(
            item, status=outcome["status"], video=None if video is None else Path(video),
            duration=outcome.get("duration"), cost=float(outcome.get("cost") or 0.0),
            tiers=tuple(outcome.get("tiers") or ()), error=outcome.get("error"),
            seconds=outcome.get("seconds")))
        finished = self.items[index]
        if finished.status == "done":
            self.emit("batch.item", f"item {index}: {finished.video}", index, status="done",
                      cost=finished.cost, spent=self.spent())
        else:
            self.emit("batch.item", f"item {index} failed: {finished.error}", index,
                      status="failed", error=finished.error, resume=finished.resume_command,
                      spent=self.spent())

    def spent(self) -> float:
        """Dollars the batch's items have spent (a running sum: no walk over the items)."""
        return max(0.0, self._spent)

    @contextlib.asynccontextmanager
    async def relay(self, coordination: Coordination) -> AsyncIterator[None]:
        """Pass the workers' events to ``on_event`` while the block runs."""
        async def pump() -> None:
            while True:
                await asyncio.sleep(_DRAIN_EVERY)
                self.forward(await coordinated(coordination, coordination.drain))

        task = asyncio.ensure_future(pump())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.forward(await coordinated(coordination, coordination.drain))

    def forward(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            index = event.get("item")
            if event.get("kind") == _STARTED:
                if isinstance(index, int):
                    self.started.add(index)
                continue
            self.emit(str(event.get("kind")), f"item {index}: {event.get('message')}",
                      index if isinstance(index, int) else None,
                      scene=event.get("scene"), item_progress=event.get("progress"))


async def run_batch(maker: Maker, requests: Iterable[VideoRequest | Mapping[str, Any]],
                    *, executor: object = None, concurrency: int = 4,
                    budget: float | None = None, output_dir: str | Path | None = None,
                    on_event: EventHandler | None = None) -> BatchResult:
    """`avgen.VideoGenerator.generate_many`: see there."""
    from avgen._rows import requests_from_rows
    from avgen._validate import check_budget

    number("concurrency", concurrency, integer=True, low=1)
    budget = check_budget(budget)
    rows = requests_from_rows(requests)
    texts = [_row_json(row.to_dict()) for row in rows]  # each row's JSON form, made once
    spec = maker.spec()
    agents = spec.agents if spec is not None else AgentSpec(
        "custom", {"agents": dict(maker.names())})
    directory = folder("output_dir", output_dir if output_dir is not None
                       else maker.output_dir).expanduser().absolute() \
        / f"batch_{_batch_id(texts, agents)}"
    # every row not already made, before anything runs (a row made by an earlier run was
    # checked then: resuming a finished batch of thousands checks none of them again)
    recorded, recorded_budget, whole = (_read_state(directory) if directory.is_dir()
                                        else ({}, None, False))
    listed = directory / "items"
    real_items = (os.path.join(os.path.realpath(directory), "items") if recorded
                  and not os.path.islink(listed) and os.path.isdir(listed) else None)
    items: list[BatchItem] = []
    for index, request in enumerate(rows):
        item = BatchItem(index, request, _item_root(directory, index, request))
        made = _finished(recorded.get(index), item, real_items)
        items.append(made or item)
        if made is not None:
            continue
        try:
            maker.check(request, budget)
        except UsageError as exc:
            raise UsageError(f"requests[{index}]: {exc.field}", exc.problem) from None
    if executor is not None and spec is None:
        raise UsageError("executor", "items run elsewhere build their agents from a family "
                         "name and options: make the generator with VideoGenerator('<family>', "
                         "agent_options={...}) and no agent objects, or run the batch in this "
                         "process (executor=None)")
    if executor is not None:
        try:
            pickle.dumps(spec)
        except Exception as exc:
            raise UsageError("executor", f"the generator cannot be sent to other processes "
                             f"({type(exc).__name__}: {exc}); give agent_options and "
                             "policies as plain values (no open clients, no lambdas)") from None
    directory.mkdir(parents=True, exist_ok=True)
    with _one_driver(directory):
        # a finished batch resumed with the budget it had: batch.json says it all already
        current = whole and recorded_budget == budget and all(
            item.status == "done" for item in items)
        return await _drive(maker, directory, items, texts, spec, agents, executor,
                            concurrency, budget, on_event, current=current)


_OPENING_WAIT = 1.0
"""The longest an item of a batch in this process waits for the one before it to make its
first agent call (`_opening`)."""


async def _opening(ahead: asyncio.Event) -> None:
    """Wait until the item before has made its first agent call (or ended), at most
    `_OPENING_WAIT` seconds. Items in this process share one event loop: started
    together, each one's own set-up (its session, its manifest, building its first
    request) would run between the others' steps, and the first videos' requests would go
    out only after every item's set-up; started in turn, the first ones are on their way
    while the next ones set up."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_OPENING_WAIT):
            await ahead.wait()


async def _drive(maker: Maker, directory: Path, known: Sequence[BatchItem],
                 rows: Sequence[str],
                 spec: WorkerSpec | None, agents: AgentSpec, executor: object,
                 concurrency: int, budget: float | None,
                 on_event: EventHandler | None, *, current: bool = False) -> BatchResult:
    """Run the items of the batch in ``directory`` that are not done (``known``: every
    item, those an earlier run made already done; ``current``: ``batch.json`` records
    them as they are, so it is not written again unless an item changes)."""
    items = [item if item.status == "done" else attrs.evolve(
        item, cost=_session_spent(item.session)) for item in known]

    def tell(event: RunEvent) -> None:  # the call's handler and the maker's subscribers
        if on_event is not None:
            on_event(event)
        maker.emit(event)

    driver = _Driver(directory, agents, budget, items, rows, tell, saved=current)
    driver.save()
    pending = [item.index for item in items if item.status != "done"]
    driver.emit("batch.start", f"batch {directory}: {len(items)} items, {len(pending)} to make",
                path=str(directory))
    with _engine(executor, directory.name) as (pool, coordination):
        await coordinated(coordination, coordination.open_budget, budget,
                          driver.spent())
        async with driver.relay(coordination):
            limit = asyncio.Semaphore(concurrency if pool is None else len(pending) or 1)
            latest: asyncio.Event | None = None  # set by the item started last

            async def one(index: int) -> None:  # ``limit`` is held for it: released here
                nonlocal latest
                try:
                    ahead, opened = latest, asyncio.Event()
                    latest = opened
                    if ahead is not None and pool is None:
                        await _opening(ahead)
                    try:
                        await run(index, opened)
                    finally:
                        opened.set()
                finally:
                    limit.release()

            async def run(index: int, opened: asyncio.Event) -> None:
                item = items[index]
                job = _Job(index, json.loads(rows[index]), str(item.session), spec
                           if pool is not None else None, coordination,
                           owner=f"{directory.name}/{index}")
                driver.set(index, attrs.evolve(driver.items[index], status="running"))
                driver.emit("batch.item", f"item {index} started", index, status="running")
                if pools is None:
                    with first_call(opened):
                        outcome = await _run_job(job, maker)
                else:
                    outcome = await elsewhere(job, pools)
                driver.finish(outcome)

            async def elsewhere(job: _Job, pools: Pools) -> dict[str, Any]:
                async def had_started() -> bool:  # its worker said so before it died
                    driver.forward(await coordinated(coordination, coordination.drain))
                    started = job.index in driver.started
                    driver.started.discard(job.index)
                    return started

                try:
                    return await run_surviving(pools, lambda pool: pool.submit(run_job, job),
                                               had_started, f"item {job.index}")
                except Exception as exc:  # the worker died and could not be replaced
                    return {"index": job.index, "status": "failed",
                            "error": f"the worker running it was lost "
                                     f"({type(exc).__name__}: {exc})",
                            "cost": _session_spent(Path(job.session))}

            pools = None if pool is None else Pools(pool)
            try:
                async with asyncio.TaskGroup() as group:
                    # a task for an item only when it may start: the driver holds at most
                    # ``concurrency`` items' tasks, however many rows the batch has
                    for index in pending:
                        await limit.acquire()
                        group.create_task(one(index))
            finally:
                driver.save()  # whatever happened, batch.json says where every item stands
                if pools is not None:
                    await asyncio.to_thread(pools.close)
    result = BatchResult(directory, tuple(driver.items), budget)
    driver.emit("batch.done", f"batch {directory}: {len(result.done)} done, "
                f"{len(result.failed)} not done, ${result.cost:.4f} spent", path=str(directory))
    return result

