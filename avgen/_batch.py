"""Many videos at once: a batch folder, its items, and the engines that run them.

::

    outputs/batch_<id>/
        batch.json              the rows, each item's state and result, the totals
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
import concurrent.futures
import contextlib
import json
import math
import os
import pickle
import re
import secrets
import shlex
import sys
import time
import unicodedata
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from multiprocessing.managers import BaseManager
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from avgen._batch_pool import Pools, run_surviving
from avgen._hashing import json_sha256
from avgen._models import Video, VideoRequest
from avgen._reporting import EventHandler, RunEvent
from avgen._session import Session
from avgen._validate import folder, number
from avgen.errors import UsageError
from avgen.resilience._shared import Coordination, LocalCoordination, Shared, sharing

__all__ = ["AgentSpec", "BatchItem", "BatchResult"]

BATCH_FILE = "batch.json"
"""The file in a batch folder that holds its rows, their state and the totals."""

ItemStatus = Literal["pending", "running", "done", "failed"]
"""Where a batch item stands: ``pending`` (not started, or to be made again), ``running``,
``done`` (its video is made) or ``failed`` (its error is kept; running the batch again
retries it)."""

_VERSION = 1
_SECRET_OPTIONS = frozenset({"env", "client", "connection", "credentials", "cache_options"})
_DRAIN_EVERY = 0.2
_SAVE_EVERY = 1.0
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
                "session": self.session.relative_to(root).as_posix(), "status": self.status,
                "video": None if self.video is None else self.video.relative_to(root)
                .as_posix(), "duration": self.duration, "cost": self.cost,
                "tiers": list(self.tiers), "error": self.error, "seconds": self.seconds}


@attrs.frozen
class BatchResult:
    """What a batch made, item by item in the input order.

    Iterate over it (or index it) for the `BatchItem` objects.
    """

    directory: Path
    """The batch folder (``outputs/batch_<id>``)."""
    items: tuple[BatchItem, ...]
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


def batch_id(requests: Sequence[VideoRequest], agents: AgentSpec) -> str:
    """The id of a batch: a digest of its rows and its agents (the same rows and agents
    find the same folder)."""
    return json_sha256({"requests": [request.to_dict() for request in requests],
                        "agents": agents.public()})[:12]


def _item_root(directory: Path, index: int, request: VideoRequest) -> Path:
    return directory / "items" / f"{index:04d}-{_slug(request)}"


def _write_state(directory: Path, spec: AgentSpec, budget: float | None,
                 items: Sequence[BatchItem]) -> None:
    """Write ``batch.json`` whole (a temporary file moved into place)."""
    state = {"version": _VERSION, "id": directory.name.removeprefix("batch_"),
             "agents": spec.public(), "budget": budget, "updated": time.time(),
             "items": [item.to_dict(directory) for item in items],
             "totals": {"items": len(items),
                        "done": sum(item.status == "done" for item in items),
                        "failed": sum(item.status == "failed" for item in items),
                        "cost": math.fsum(item.cost for item in items)}}
    target = directory / BATCH_FILE
    temp = directory / f".{BATCH_FILE}.{secrets.token_hex(4)}.tmp"
    temp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    os.replace(temp, target)


def _read_state(directory: Path) -> dict[int, dict[str, Any]]:
    """The items a previous run of this batch recorded, by index ({} when none)."""
    path = directory / BATCH_FILE
    if not os.path.lexists(path):
        return {}
    again = "remove it to start the batch again (finished sessions are reused)"
    if path.is_symlink() or not path.is_file():
        raise UsageError("batch", f"{path} is not a regular file; {again}")
    try:
        state = json.loads(path.read_text("utf-8"))
        items = state["items"]
        if not isinstance(items, list):
            raise TypeError("its 'items' must be a list")
        return {number(f"items[{position}].index", item["index"], integer=True, low=0): item
                for position, item in enumerate(items)}
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        # (a UsageError from `number` is a ValueError too)
        raise UsageError("batch", f"{path} cannot be read ({exc}); {again}") from None


def _session_spent(root: Path) -> float:
    """What a session's recorded steps cost (0 when it has no manifest yet)."""
    try:
        session = Session.open(root)
    except UsageError:
        return 0.0
    return math.fsum(step.cost for step in session.manifest.steps.values())


def _finished(root: Path, recorded: Mapping[str, Any] | None,
              item: BatchItem) -> BatchItem | None:
    """The item as a previous run finished it, if its video is still there."""
    if not recorded or recorded.get("status") != "done" or not recorded.get("video"):
        return None
    video = (root / str(recorded["video"])).resolve()
    if not video.is_relative_to(item.session.resolve()) or not video.is_file():
        return None  # batch.json is untrusted: a video must be in the item's own session
    tiers = recorded.get("tiers") or []
    try:
        duration = number("duration", recorded.get("duration"), low=0, optional=True)
        cost = float(number("cost", recorded.get("cost", 0), low=0))
        seconds = number("seconds", recorded.get("seconds"), low=0, optional=True)
    except UsageError:
        return None  # a recorded fact is not what avgen writes: the item resumes its session
    if not isinstance(tiers, list) or not all(isinstance(tier, str) for tier in tiers):
        return None
    return attrs.evolve(item, status="done", video=video, tiers=tuple(tiers), cost=cost,
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
        await asyncio.to_thread(coordination.publish, {"item": job.index, "kind": _STARTED})
        await asyncio.to_thread(coordination.forget, job.owner)  # left by a dead worker
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
    """`_run_job` in a worker (a process of an executor, or a Dask worker's thread)."""
    return asyncio.run(_run_job(job))


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
    """Runs the pending items of one batch and keeps ``batch.json`` up to date."""

    def __init__(self, directory: Path, spec: AgentSpec, budget: float | None,
                 items: list[BatchItem], on_event: EventHandler | None) -> None:
        self.directory, self.spec, self.budget = directory, spec, budget
        self.items = items
        self.on_event = on_event
        self.started: set[int] = set()
        """Items a worker said it started (since their last loss)."""
        self._saved = 0.0

    def save(self, *, soon: bool = False) -> None:
        """Write ``batch.json``; with ``soon``, only if it was not written in the last
        second (a batch of thousands of items must not rewrite it thousands of times)."""
        now = time.monotonic()
        if soon and now - self._saved < _SAVE_EVERY:
            return
        _write_state(self.directory, self.spec, self.budget, self.items)
        self._saved = now

    def emit(self, kind: str, message: str, item: int | None = None, **data: Any) -> None:
        if self.on_event is None:
            return
        done = sum(each.status in ("done", "failed") for each in self.items)
        data = {"item": item, "done": sum(each.status == "done" for each in self.items),
                "failed": sum(each.status == "failed" for each in self.items),
                "running": sum(each.status == "running" for each in self.items),
                "total": len(self.items), **data}
        try:
            self.on_event(RunEvent(kind, message, done / max(1, len(self.items)), None, data))
        except Exception:  # an observer must never break a batch
            import logging

            logging.getLogger("avgen.batch").exception("event handler failed")

    def finish(self, outcome: Mapping[str, Any]) -> None:
        index = int(outcome["index"])
        item = self.items[index]
        video = outcome.get("video")
        self.items[index] = attrs.evolve(
            item, status=outcome["status"], video=None if video is None else Path(video),
            duration=outcome.get("duration"), cost=float(outcome.get("cost") or 0.0),
            tiers=tuple(outcome.get("tiers") or ()), error=outcome.get("error"),
            seconds=outcome.get("seconds"))
        self.save(soon=True)
        finished = self.items[index]
        if finished.status == "done":
            self.emit("batch.item", f"item {index}: {finished.video}", index, status="done",
                      cost=finished.cost, spent=self.spent())
        else:
            self.emit("batch.item", f"item {index} failed: {finished.error}", index,
                      status="failed", error=finished.error, resume=finished.resume_command,
                      spent=self.spent())

    def spent(self) -> float:
        return math.fsum(item.cost for item in self.items)

    @contextlib.asynccontextmanager
    async def relay(self, coordination: Coordination) -> AsyncIterator[None]:
        """Pass the workers' events to ``on_event`` while the block runs."""
        async def pump() -> None:
            while True:
                await asyncio.sleep(_DRAIN_EVERY)
                self.forward(await asyncio.to_thread(coordination.drain))

        task = asyncio.ensure_future(pump())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.forward(await asyncio.to_thread(coordination.drain))

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
    for index, request in enumerate(rows):  # every row, before anything runs
        try:
            maker.check(request, budget)
        except UsageError as exc:
            raise UsageError(f"requests[{index}]: {exc.field}", exc.problem) from None
    spec = maker.spec()
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
    agents = spec.agents if spec is not None else AgentSpec(
        "custom", {"agents": dict(maker.names())})
    directory = folder("output_dir", output_dir if output_dir is not None
                       else maker.output_dir).expanduser().absolute() \
        / f"batch_{batch_id(rows, agents)}"
    directory.mkdir(parents=True, exist_ok=True)
    with _one_driver(directory):
        return await _drive(maker, directory, rows, spec, agents, executor, concurrency,
                            budget, on_event)


async def _drive(maker: Maker, directory: Path, rows: Sequence[VideoRequest],
                 spec: WorkerSpec | None, agents: AgentSpec, executor: object,
                 concurrency: int, budget: float | None,
                 on_event: EventHandler | None) -> BatchResult:
    """Run the items of the batch in ``directory`` that are not done."""
    recorded = _read_state(directory)
    items: list[BatchItem] = []
    for index, request in enumerate(rows):
        item = BatchItem(index, request, _item_root(directory, index, request))
        items.append(_finished(directory, recorded.get(index), item) or attrs.evolve(
            item, cost=_session_spent(item.session)))

    def tell(event: RunEvent) -> None:  # the call's handler and the maker's subscribers
        if on_event is not None:
            on_event(event)
        maker.emit(event)

    driver = _Driver(directory, agents, budget, items, tell)
    driver.save()
    pending = [item.index for item in items if item.status != "done"]
    driver.emit("batch.start", f"batch {directory}: {len(items)} items, {len(pending)} to make",
                path=str(directory))
    with _engine(executor, directory.name) as (pool, coordination):
        await asyncio.to_thread(coordination.open_budget, budget, driver.spent())
        async with driver.relay(coordination):
            limit = asyncio.Semaphore(concurrency if pool is None else len(pending) or 1)

            async def one(index: int) -> None:
                async with limit:
                    item = items[index]
                    job = _Job(index, item.request.to_dict(), str(item.session), spec
                               if pool is not None else None, coordination,
                               owner=f"{directory.name}/{index}")
                    driver.items[index] = attrs.evolve(driver.items[index], status="running")
                    driver.emit("batch.item", f"item {index} started", index, status="running")
                    if pools is None:
                        outcome = await _run_job(job, maker)
                    else:
                        outcome = await elsewhere(job, pools)
                    driver.finish(outcome)

            async def elsewhere(job: _Job, pools: Pools) -> dict[str, Any]:
                async def had_started() -> bool:  # its worker said so before it died
                    driver.forward(await asyncio.to_thread(coordination.drain))
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
                    for index in pending:
                        group.create_task(one(index))
            finally:
                driver.save()  # whatever happened, batch.json says where every item stands
                if pools is not None:
                    await asyncio.to_thread(pools.close)
    result = BatchResult(directory, tuple(driver.items), budget)
    driver.emit("batch.done", f"batch {directory}: {len(result.done)} done, "
                f"{len(result.failed)} not done, ${result.cost:.4f} spent", path=str(directory))
    return result

