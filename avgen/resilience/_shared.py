"""State that every worker of a batch shares: locks, quota slots, request pacing, the
budget, tripped breakers and the batch's event stream.

A `Coordination` is a small set of synchronous, thread-safe operations. `LocalCoordination`
keeps them in one process's memory (a batch run in this process, or — served by a
`multiprocessing` manager — the processes of a ``ProcessPoolExecutor``);
``avgen._dask.DaskCoordination`` keeps them on a Dask scheduler, where they hold across
machines and outlive a worker that dies.

`Shared` is what agents and the generator use, in async code: it waits without blocking the
event loop (trying, then sleeping a little longer each time, so a waiting task can be
cancelled at any moment and holds nothing) and runs the coordination's calls in a thread.
A coordination kept in this process's memory (`LocalCoordination`, marked ``instant``) is
called directly: its calls take microseconds, a thread would only add a hop. It can also
tell when a slot is given back (`LocalCoordination.watch`): its waiters try again at once
instead of sleeping out their wait.
The run of one batch item is wrapped in `sharing`, so `current_shared` finds it in every task
and thread of that run; outside a batch it is ``None`` and everything stays per process.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import collections
import contextlib
import contextvars
import functools
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Protocol, TypeVar, runtime_checkable

from avgen.errors import BudgetExceeded
from avgen.resilience._events import ResilienceEvent, emit

__all__: list[str] = []

_FIRST_WAIT = 0.01
_NOTICED = 0.001  # a shorter wait is not reported
_MAX_WAIT = 0.25
_WINDOW = 60.0

T = TypeVar("T")


@runtime_checkable
class Coordination(Protocol):
    """The operations a batch's workers share (synchronous and thread-safe).

    Names are plain strings; a slot named once with a limit keeps that limit.
    """

    def try_slot(self, name: str, limit: int) -> bool:
        """Take one of the ``limit`` slots called ``name`` if one is free."""

    def free_slot(self, name: str) -> None:
        """Give back a slot taken with `try_slot`."""

    def try_start(self, name: str, per_minute: float) -> bool:
        """Count one request start against ``per_minute`` starts in any 60 s, if it fits."""

    def hold_off(self, name: str, until: float) -> None:
        """Nobody starts a request called ``name`` before ``until`` (seconds since the
        epoch); a later time wins over an earlier one."""

    def not_before(self, name: str) -> float:
        """When requests called ``name`` may start again (0: now)."""

    def open_budget(self, budget: float | None, spent: float) -> None:
        """Set the shared budget (``None``: no limit) and what was spent before."""

    def reserve(self, owner: str, usd: float) -> tuple[bool, float, float | None]:
        """Reserve ``usd`` for ``owner`` if it fits: (granted, committed before, budget)."""

    def settle(self, owner: str, reserved: float, charged: float) -> None:
        """Release ``reserved`` of ``owner``'s reservation and add ``charged`` to spent."""

    def forget(self, owner: str) -> None:
        """Drop what ``owner`` still holds (left by a worker that died)."""

    def spending(self) -> tuple[float, float]:
        """(spent, reserved) across every worker."""

    def trip(self, name: str, until: float) -> None:
        """Record that the breaker ``name`` opened, until ``until`` (epoch seconds)."""

    def tripped_until(self, name: str) -> float:
        """Until when the breaker ``name`` is open for everyone (0: it is not)."""

    def publish(self, event: dict[str, Any]) -> None:
        """Send an event (JSON-ready) to whoever drives the batch."""

    def drain(self) -> list[dict[str, Any]]:
        """The events published since the last drain, oldest first."""


class LocalCoordination:
    """`Coordination` in this process's memory, guarded by one lock.

    Example:
        >>> shared = LocalCoordination()
        >>> shared.try_slot("veo", 1), shared.try_slot("veo", 1)
        (True, False)
        >>> shared.open_budget(1.0, 0.25)
        >>> shared.reserve("item-1", 0.5)[0], shared.reserve("item-2", 0.5)[0]
        (True, False)
    """

    instant = True
    """Its calls never block (a lock held for microseconds): async code calls them
    directly rather than in a thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, int] = {}
        self._starts: dict[str, collections.deque[float]] = {}
        self._holds: dict[str, float] = {}
        self._trips: dict[str, float] = {}
        self._budget: float | None = None
        self._spent = 0.0
        self._reserved: dict[str, float] = {}
        self._events: collections.deque[dict[str, Any]] = collections.deque(maxlen=100_000)
        self._watchers: dict[str, list[Callable[[], None]]] = {}

    def __repr__(self) -> str:
        return "LocalCoordination()"

    def watch(self, name: str, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (in the thread that frees it, with no lock held) each time a slot
        called ``name`` is given back, until the returned function is called.

        A waiter in this process uses it to try again at once rather than at its next
        poll; ``wake`` must be quick and must not raise (what it raises is dropped).
        """
        with self._lock:
            self._watchers.setdefault(name, []).append(wake)

        def unwatch() -> None:
            with self._lock:
                watching = self._watchers.get(name, [])
                with contextlib.suppress(ValueError):
                    watching.remove(wake)
                if not watching:
                    self._watchers.pop(name, None)

        return unwatch

    def try_slot(self, name: str, limit: int) -> bool:
        """Take one of the ``limit`` slots called ``name`` if one is free."""
        with self._lock:
            taken = self._slots.get(name, 0)
            if taken >= limit:
                return False
            self._slots[name] = taken + 1
            return True

    def free_slot(self, name: str) -> None:
        """Give back a slot taken with `try_slot`."""
        with self._lock:
            taken = self._slots.get(name, 0) - 1
            if taken > 0:
                self._slots[name] = taken
            else:
                self._slots.pop(name, None)
            waking = list(self._watchers.get(name, ()))
        for wake in waking:
            with contextlib.suppress(Exception):
                wake()

    def try_start(self, name: str, per_minute: float) -> bool:
        """Count one request start against ``per_minute`` starts in any 60 s, if it fits."""
        now = time.monotonic()
        with self._lock:
            starts = self._starts.setdefault(name, collections.deque())
            while starts and now - starts[0] >= _WINDOW:
                starts.popleft()
            if len(starts) >= per_minute:
                return False
            starts.append(now)
            return True

    def hold_off(self, name: str, until: float) -> None:
        """Nobody starts a request called ``name`` before ``until`` (seconds since the
        epoch); a later time wins over an earlier one."""
        with self._lock:
            self._holds[name] = max(until, self._holds.get(name, 0.0))

    def not_before(self, name: str) -> float:
        """When requests called ``name`` may start again (0: now)."""
        with self._lock:
            return self._holds.get(name, 0.0)

    def open_budget(self, budget: float | None, spent: float) -> None:
        """Set the shared budget (``None``: no limit) and what was spent before."""
        with self._lock:
            self._budget, self._spent = budget, float(spent)

    def reserve(self, owner: str, usd: float) -> tuple[bool, float, float | None]:
        """Reserve ``usd`` for ``owner`` if it fits: (granted, committed before, budget)."""
        with self._lock:
            committed = self._spent + math.fsum(self._reserved.values())
            if self._budget is not None and committed + usd > self._budget + 1e-9:
                return False, committed, self._budget
            self._reserved[owner] = self._reserved.get(owner, 0.0) + usd
            return True, committed, self._budget

    def settle(self, owner: str, reserved: float, charged: float) -> None:
        """Release ``reserved`` of ``owner``'s reservation and add ``charged`` to spent."""
        with self._lock:
            left = self._reserved.get(owner, 0.0) - reserved
            if left > 1e-12:
                self._reserved[owner] = left
            else:
                self._reserved.pop(owner, None)
            self._spent += charged

    def forget(self, owner: str) -> None:
        """Drop what ``owner`` still holds (left by a worker that died)."""
        with self._lock:
            self._reserved.pop(owner, None)

    def spending(self) -> tuple[float, float]:
        """(spent, reserved) across every worker."""
        with self._lock:
            return self._spent, math.fsum(self._reserved.values())

    def trip(self, name: str, until: float) -> None:
        """Record that the breaker ``name`` opened, until ``until`` (epoch seconds)."""
        with self._lock:
            self._trips[name] = max(until, self._trips.get(name, 0.0))

    def tripped_until(self, name: str) -> float:
        """Until when the breaker ``name`` is open for everyone (0: it is not)."""
        with self._lock:
            return self._trips.get(name, 0.0)

    def publish(self, event: dict[str, Any]) -> None:
        """Send an event (JSON-ready) to whoever drives the batch."""
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        """The events published since the last drain, oldest first."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events


class Shared:
    """A `Coordination` as one batch item's run uses it, from async code.

    Args:
        coordination: Where the shared state lives.
        owner: Who reserves money (one batch item: a dead worker's reservations are
            dropped when its item starts again).
        budget_label: How the shared budget is named in `avgen.errors.BudgetExceeded`.
    """

    def __init__(self, coordination: Coordination, owner: str, *,
                 budget_label: str = "the batch") -> None:
        self.coordination = coordination
        """Where the shared state lives."""
        self.owner = owner
        """The batch item this run belongs to."""
        self.budget_label = budget_label
        """How the shared budget is named in errors."""
        self._instant = _is_instant(coordination)

    def __repr__(self) -> str:
        return f"Shared({self.coordination!r}, owner={self.owner!r})"

    @contextlib.asynccontextmanager
    async def slot(self, name: str, limit: int) -> AsyncIterator[None]:
        """Hold one of ``limit`` slots called ``name`` (``limit=1``: a lock) across every
        worker; waits (cancellably) for one to be free.

        A wait is reported as a ``quota.wait`` event (reason ``slot``), and the hold, when
        the slot is given back, as ``quota.held`` (see `avgen.resilience.ResilienceEvent`).
        """
        waiting = time.time()
        wait_slot = None if self._instant else getattr(self.coordination, "wait_slot", None)
        refused = await self._until(
            lambda: self.coordination.try_slot(name, limit),
            undo=lambda: self.coordination.free_slot(name), freed=name,
            blocking=(lambda timeout: bool(wait_slot(name, limit, timeout)))
            if callable(wait_slot) else None)
        taken = _waited(name, waiting, "slot", refused)
        try:
            yield
        finally:
            if self._instant:
                self.coordination.free_slot(name)
            else:
                await asyncio.shield(asyncio.to_thread(self.coordination.free_slot, name))
            emit(ResilienceEvent("quota.held", name, {
                "name": name, "started": taken, "seconds": time.time() - taken,
                "limit": limit}))

    async def pace(self, name: str, per_minute: float | None) -> None:
        """Wait until a request called ``name`` may start: past any hold-off (a 429 seen
        by any worker) and within ``per_minute`` starts in any 60 s (``None``: no limit).

        Each wait is reported as a ``quota.wait`` event (reason ``hold-off`` or ``rate``).
        """
        waiting, held = time.time(), False
        while True:
            until = await coordinated(self.coordination, self.coordination.not_before, name)
            wait = until - time.time()
            if wait <= 0:
                break
            held = True
            await asyncio.sleep(min(wait, 5.0))
        waiting = _waited(name, waiting, "hold-off", held)
        if per_minute is not None:
            limit = per_minute
            refused = await self._until(lambda: self.coordination.try_start(name, limit),
                                        longest=1.0)
            _waited(name, waiting, "rate", refused)

    def hold_off(self, name: str, seconds: float) -> None:
        """Make every worker wait ``seconds`` before starting a request called ``name``."""
        self.coordination.hold_off(name, time.time() + max(0.0, seconds))

    def reserve(self, usd: float, agent: str, what: str) -> None:
        """Reserve ``usd`` against the shared budget.

        Raises:
            BudgetExceeded: It does not fit what is left of the shared budget.
        """
        granted, committed, budget = self.coordination.reserve(self.owner, usd)
        if not granted:
            raise BudgetExceeded(what, agent, budget=budget if budget is not None else 0.0,
                                 committed=committed, price=usd, scope=self.budget_label)

    def settle(self, reserved: float, charged: float) -> None:
        """Release a reservation made with `reserve` and count what was charged."""
        self.coordination.settle(self.owner, reserved, charged)

    async def _until(self, attempt: Callable[[], bool], *, longest: float = _MAX_WAIT,
                     undo: Callable[[], None] | None = None,
                     freed: str | None = None,
                     blocking: Callable[[float], bool] | None = None) -> bool:
        """Try ``attempt`` (in a thread, unless the coordination is ``instant``) until it
        succeeds, sleeping longer each time. If the task is cancelled while an attempt runs
        in a thread, an attempt that then succeeds is undone: a cancelled waiter never keeps
        what it was waiting for. With ``freed`` (a slot's name) and a coordination that can
        `LocalCoordination.watch` it, a sleep ends as soon as such a slot is given back.
        With ``blocking`` (an attempt that waits up to the seconds it is given, and is
        answered as soon as it succeeds: ``DaskCoordination.wait_slot``), every attempt
        after a refused first one is that, with no sleep between: a slot given back in
        another process is taken at once, not at the end of a sleep.
        Returns whether an attempt was refused (the caller had to wait)."""
        wait, refused = _FIRST_WAIT, False
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        watch = getattr(self.coordination, "watch", None) if freed is not None else None

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(woken.set)

        unwatch = watch(freed, wake) if callable(watch) else None
        try:
            while True:
                woken.clear()  # a slot given back from here on ends the next sleep
                if self._instant:
                    taken = attempt()  # nothing to cancel in between
                else:
                    call = (attempt if blocking is None or not refused
                            else functools.partial(blocking, longest))
                    trying = asyncio.ensure_future(asyncio.to_thread(call))
                    try:
                        taken = await asyncio.shield(trying)
                    except asyncio.CancelledError:
                        if undo is not None:
                            trying.add_done_callback(
                                lambda done: undo() if not done.cancelled()
                                and done.exception() is None and done.result() else None)
                        raise
                if taken:
                    return refused
                refused = True
                if blocking is not None and not self._instant:
                    continue  # the next attempt waits on the coordination's side
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), wait)
                wait = min(wait * 1.5, longest)
        finally:
            if unwatch is not None:
                unwatch()


async def coordinated(coordination: Coordination, call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, a method of ``coordination``: directly when it is ``instant`` (in
    this process's memory), else in a thread (a round trip to a manager or a scheduler)."""
    if _is_instant(coordination):
        return call(*args)
    return await asyncio.to_thread(call, *args)


def _is_instant(coordination: Coordination) -> bool:
    """Whether ``coordination``'s calls never block (`LocalCoordination.instant`)."""
    return getattr(coordination, "instant", False) is True


def _waited(name: str, since: float, reason: str, waited: bool) -> float:
    """Report the wait for ``name`` that began at ``since``, if there was one (and it
    lasted: not the time a thread took to answer); return now."""
    now = time.time()
    if waited and now - since > _NOTICED:
        emit(ResilienceEvent("quota.wait", name, {"name": name, "started": since,
                                                  "seconds": now - since, "reason": reason}))
    return now


_current: contextvars.ContextVar[Shared | None] = contextvars.ContextVar(
    "avgen_shared", default=None)


def current_shared() -> Shared | None:
    """The `Shared` state of the batch item being run in this task or thread, if any."""
    return _current.get()


@contextlib.contextmanager
def sharing(shared: Shared | None) -> Iterator[Shared | None]:
    """Make ``shared`` the `current_shared` state inside the block (and in the tasks and
    ``asyncio.to_thread`` threads it starts)."""
    token = _current.set(shared)
    try:
        yield shared
    finally:
        _current.reset(token)
