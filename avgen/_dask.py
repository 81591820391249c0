"""`DaskCoordination`: a batch's shared state on a Dask scheduler (``pip install
'avgen[dask]'``).

Everything lives on the scheduler, so it holds across workers and machines and outlives a
worker that dies:

- slots and locks are `distributed.Semaphore` leases (a dead worker's leases expire after
  ``distributed.scheduler.locks.lease-timeout``, 30 s by default);
- request pacing is a semaphore of ``per_minute`` leases, each given back 60 s after it was
  taken: at most ``per_minute`` requests start in any 60 s, whoever starts them;
- the budget, hold-offs (after a 429) and tripped breakers are `distributed.Variable`
  values changed under a `distributed.Lock`;
- events go through a `distributed.Queue` that the batch's driver drains.

The object itself holds only names, so it pickles to the workers; each process makes its
own handles to the scheduler's primitives when it first uses them.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import math
import sys
import threading
from typing import Any

from avgen.errors import UsageError

__all__: list[str] = []

_WINDOW = 60.0


def worker_settings() -> dict[str, Any]:
    """The Dask settings a cluster avgen starts gives its workers: on Python before 3.12,
    no statistical profiling. A worker's profiler reads every thread's stack 100 times a
    second with ``sys._current_frames()``, which on those versions can deadlock the
    process against a thread that is starting or ending (CPython issue 106883, fixed in
    3.12): a worker froze for good in the middle of a video."""
    if sys.version_info >= (3, 12):
        return {}
    return {"distributed.worker.profile.enabled": False}


def require_distributed() -> Any:
    """The ``distributed`` module.

    Raises:
        UsageError: Dask distributed is not installed.
    """
    try:
        import distributed
    except ImportError:
        raise UsageError("scheduler", "running a batch on Dask needs Dask distributed: "
                         "pip install 'avgen[dask]'") from None
    return distributed


class DaskCoordination:
    """`avgen.resilience._shared.Coordination` on the scheduler of a Dask cluster.

    Args:
        prefix: Names this batch's primitives (two batches with different prefixes share
            nothing).
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._handles: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DaskCoordination({self.prefix!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["prefix"])  # type: ignore[misc]

    # -- handles ------------------------------------------------------------------------

    def _semaphore(self, name: str, limit: int) -> Any:
        key = f"{self.prefix}:{name}"
        with self._lock:
            handle = self._handles.get(key)
            if handle is None:
                handle = self._handles[key] = require_distributed().Semaphore(
                    max_leases=max(1, int(limit)), name=key)
            return handle

    def _variable(self, name: str) -> Any:
        key = f"{self.prefix}:var:{name}"
        with self._lock:
            handle = self._handles.get(key)
            if handle is None:
                handle = self._handles[key] = require_distributed().Variable(key)
            return handle

    def _mutex(self, name: str) -> Any:
        return require_distributed().Lock(f"{self.prefix}:lock:{name}")

    def _read(self, name: str, default: Any) -> Any:
        variable = self._variable(name)
        try:
            return variable.get(timeout=0)
        except TimeoutError:  # never set: the driver sets every variable it reads
            return default

    def _change(self, name: str, default: Any, change: Any) -> Any:
        """Apply ``change`` to the variable ``name`` under its lock; its result is stored."""
        with self._mutex(name):
            value = change(self._read(name, default))
            self._variable(name).set(value)
            return value

    def setup(self) -> None:
        """Give every variable its first value (the driver calls it before the workers
        start, so no read waits for a value)."""
        initial: tuple[tuple[str, Any], ...] = (
            ("holds", {}), ("trips", {}),
            ("budget", {"budget": None, "spent": 0.0, "reserved": {}}))
        for name, value in initial:
            self._variable(name).set(value)

    # -- Coordination ---------------------------------------------------------------------

    def try_slot(self, name: str, limit: int) -> bool:
        return bool(self._semaphore(name, limit).acquire(timeout=0))

    def free_slot(self, name: str) -> None:
        self._semaphore(name, 1).release()

    def wait_slot(self, name: str, limit: int, timeout: float) -> bool:
        """`try_slot`, waiting at most ``timeout`` seconds for a slot to be given back: the
        scheduler answers as soon as one is, so a waiter on another worker takes it at
        once instead of at its next try."""
        return bool(self._semaphore(name, limit).acquire(timeout=timeout))

    def try_start(self, name: str, per_minute: float) -> bool:
        leases = self._semaphore(f"rate:{name}", max(1, math.floor(per_minute)))
        if not leases.acquire(timeout=0):
            return False
        def give_back() -> None:  # gone with its client already: its lease expires anyway
            with contextlib.suppress(Exception):
                leases.release()

        timer = threading.Timer(_WINDOW, give_back)
        timer.daemon = True
        timer.start()
        return True

    def hold_off(self, name: str, until: float) -> None:
        self._change("holds", {}, lambda holds: {**holds, name: max(until, holds.get(name, 0))})

    def not_before(self, name: str) -> float:
        return float(self._read("holds", {}).get(name, 0.0))

    def open_budget(self, budget: float | None, spent: float) -> None:
        self._change("budget", {}, lambda _old: {"budget": budget, "spent": float(spent),
                                                 "reserved": {}})

    def reserve(self, owner: str, usd: float) -> tuple[bool, float, float | None]:
        outcome: list[Any] = []

        def change(state: dict[str, Any]) -> dict[str, Any]:
            committed = state["spent"] + math.fsum(state["reserved"].values())
            budget = state["budget"]
            granted = budget is None or committed + usd <= budget + 1e-9
            outcome.extend((granted, committed, budget))
            if granted:
                reserved = dict(state["reserved"])
                reserved[owner] = reserved.get(owner, 0.0) + usd
                return {**state, "reserved": reserved}
            return state

        self._change("budget", {"budget": None, "spent": 0.0, "reserved": {}}, change)
        return bool(outcome[0]), float(outcome[1]), outcome[2]

    def settle(self, owner: str, reserved: float, charged: float) -> None:
        def change(state: dict[str, Any]) -> dict[str, Any]:
            held = dict(state["reserved"])
            left = held.get(owner, 0.0) - reserved
            if left > 1e-12:
                held[owner] = left
            else:
                held.pop(owner, None)
            return {**state, "reserved": held, "spent": state["spent"] + charged}

        self._change("budget", {"budget": None, "spent": 0.0, "reserved": {}}, change)

    def forget(self, owner: str) -> None:
        def change(state: dict[str, Any]) -> dict[str, Any]:
            held = {k: v for k, v in state["reserved"].items() if k != owner}
            return {**state, "reserved": held}

        self._change("budget", {"budget": None, "spent": 0.0, "reserved": {}}, change)

    def spending(self) -> tuple[float, float]:
        state = self._read("budget", {"spent": 0.0, "reserved": {}})
        return float(state["spent"]), math.fsum(state["reserved"].values())

    def trip(self, name: str, until: float) -> None:
        self._change("trips", {}, lambda trips: {**trips, name: max(until, trips.get(name, 0))})

    def tripped_until(self, name: str) -> float:
        return float(self._read("trips", {}).get(name, 0.0))

    def publish(self, event: dict[str, Any]) -> None:
        with self._lock:
            queue = self._handles.get("events")
            if queue is None:
                queue = self._handles["events"] = require_distributed().Queue(
                    f"{self.prefix}:events")
        queue.put(event)

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            queue = self._handles.get("events")
            if queue is None:
                queue = self._handles["events"] = require_distributed().Queue(
                    f"{self.prefix}:events")
        return list(queue.get(batch=True))
