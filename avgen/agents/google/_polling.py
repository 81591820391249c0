"""When to poll a Veo operation: learnt from the operations of the same kind before it.

An operation holds one of the few slots a Veo quota allows until a poll finds it done, so
every second between its end and that poll is a second the next clip waits. Operations of
one kind (one clip length and resolution) take about as long as each other:

- **Learnt times.** Once one was seen done, the next ones are also polled at that time
  after their submit, and half way to it from the latest time one was still seen running
  (`OperationTimes.due`): each operation narrows the guess.
- **Staggered first polls.** Until then, operations submitted together poll at different
  moments (`OperationTimes.stagger`), so that one of them finds the common end early.
- **News.** When one is seen done, the others of its kind that have run as long since
  their last poll are polled at once (`OperationTimes.nap` wakes; `next_poll` sees a due
  time passed since their last poll) instead of at their next scheduled poll.

The times are shared by every run of an agent, in every thread (a Dask worker runs several
event loops): waking reaches each sleeper on its own loop.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import collections
import contextlib
import threading
from collections.abc import Sequence

import attrs

__all__: list[str] = []

TIMES_KEPT = 64
"""Operations whose running times `OperationTimes` keeps."""

_GOLDEN = 0.6180339887498949
"""Successive fractions of it spread the staggered first polls evenly, however many."""


@attrs.define
class OperationTimes:
    """How long operations of one kind took, as their polls saw them: the quickest was found
    done `done_by` seconds after it was submitted (``None``: none seen done yet);
    ``running`` keeps, for the latest operations, when a poll last found each still
    running."""

    done_by: float | None = None
    running: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=TIMES_KEPT))
    _phase: float = 0.0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False)
    _sleepers: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = attrs.field(
        factory=set, repr=False)

    def learn(self, running_at: float | None, done_at: float) -> None:
        """Add what the polls of one more operation found: still running at
        ``running_at`` (None: the first poll found it done), done at ``done_at``; the
        operations of this kind waiting for their next poll are woken to look again
        (`nap`)."""
        with self._lock:
            self.done_by = done_at if self.done_by is None else min(self.done_by, done_at)
            if running_at is not None:
                self.running.append(running_at)
            sleepers = list(self._sleepers)
        for loop, woken in sleepers:
            with contextlib.suppress(RuntimeError):  # that loop has closed meanwhile
                loop.call_soon_threadsafe(_wake, woken)

    def due(self) -> tuple[float, ...]:
        """When the next such operation is worth polling (seconds after its submit): half
        way to `done_by` from the latest time one was still running before it (a guess
        that narrows the gap whether it is right or wrong), and `done_by`; none before
        one was seen done."""
        with self._lock:  # another thread (of a Dask worker) may add to them meanwhile
            done_by, running = self.done_by, tuple(self.running)
        if done_by is None:
            return ()
        below = [t for t in running if t < done_by]
        if not below:
            return (done_by,)
        return ((max(below) + done_by) / 2, done_by)

    def stagger(self) -> float:
        """The share of the first wait, in (0, 1], for the next operation submitted before
        any was seen done: operations submitted together do not poll together, their polls
        spread over the whole interval (each next share is the golden ratio's fraction
        further on), so one of them finds their common end soon after it comes."""
        with self._lock:
            self._phase = (self._phase + _GOLDEN) % 1.0
            return 1.0 - self._phase

    async def nap(self, seconds: float) -> bool:
        """Sleep ``seconds``, or until an operation of this kind is seen done (`learn`):
        True when woken so."""
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        entry = (loop, woken)
        with self._lock:
            self._sleepers.add(entry)
        try:
            done, _ = await asyncio.wait({woken}, timeout=max(0.0, seconds))
            return bool(done)
        finally:
            with self._lock:
                self._sleepers.discard(entry)
            woken.cancel()


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


def next_poll(elapsed: float, interval: float, due: Sequence[float], first: float,
              longest: float, polled: float = 0.0) -> tuple[float, float]:
    """When to poll an operation next: (seconds to wait, the wait after that).

    The wait is ``interval``, and each one grows 1.5 times up to ``longest``. With ``due``
    (ascending times since submit when operations like it were, or may have been, done:
    `OperationTimes.due`), a poll is also made at each of them; from the first on, the
    operation is due and the waits stay at ``first``: a late poll would hold its clip (and
    its quota slot) for nothing. For ``first`` seconds after the last due time, the waits
    are a quarter of it: an operation still running then is about to end. A due time that
    passed since the last poll (at ``polled``; 0: the submit), learnt meanwhile from
    another operation, is polled at once.

    Example:
        >>> next_poll(0.0, 5.0, (), 5.0, 30.0)
        (5.0, 7.5)
        >>> next_poll(40.0, 30.0, (55.0, 62.0), 5.0, 30.0, polled=30.0)
        (15.0, 5.0)
        >>> next_poll(60.0, 5.0, (55.0, 62.0), 5.0, 30.0, polled=55.0)
        (2.0, 5.0)
        >>> next_poll(63.0, 5.0, (55.0, 62.0), 5.0, 30.0, polled=62.0)
        (1.25, 5.0)
        >>> next_poll(68.0, 5.0, (55.0, 62.0), 5.0, 30.0, polled=66.0)
        (5.0, 5.0)
        >>> next_poll(60.0, 30.0, (55.0, 62.0), 5.0, 30.0, polled=40.0)
        (0.0, 5.0)
    """
    if any(polled < t <= elapsed for t in due):
        return 0.0, first
    upcoming = next((t for t in due if t > elapsed), None)
    if upcoming is not None and upcoming - elapsed < interval:
        return upcoming - elapsed, first
    if due and elapsed >= due[0]:
        if elapsed < due[-1] + first:
            # just past the time the quickest was done: this one ends any moment now
            return min(interval, first / 4), first
        return min(interval, first), first
    return interval, min(interval * 1.5, longest)
