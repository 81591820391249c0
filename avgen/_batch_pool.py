"""A batch's process pool that outlives the death of one of its workers.

When a worker process of a ``concurrent.futures.ProcessPoolExecutor`` dies (killed, out of
memory), the pool is broken: every item it held fails with ``BrokenProcessPool``, those it
was running and those it had not started alike, and it takes no more. `Pools` puts a fresh
pool of the same size in its place, and `run_surviving` sends an item there again: an item
the dead pool had not started simply runs, and an item it was running resumes its session
(at most `MAX_RUNS` runs in all, so an item that kills its worker every time ends).
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__: list[str] = []

_logger = logging.getLogger("avgen.batch")
T = TypeVar("T")

MAX_RUNS = 3
"""Most runs of an item whose worker process keeps dying while it runs."""


class Pools:
    """The executor a batch's items go to, replaced when a worker's death broke it.

    Args:
        pool: The caller's executor (never shut down here).
    """

    def __init__(self, pool: concurrent.futures.Executor) -> None:
        self.current = pool
        """Where the next item goes."""
        self._made: list[concurrent.futures.ProcessPoolExecutor] = []

    def replace(self, broken: concurrent.futures.Executor) -> bool:
        """Put a fresh pool, made as ``broken`` was, in its place (once, however many
        items saw it break).

        Returns:
            False when ``broken`` is not a process pool: there is nothing to make anew.
        """
        if not isinstance(broken, concurrent.futures.ProcessPoolExecutor):
            return False
        if self.current is broken:
            self.current = concurrent.futures.ProcessPoolExecutor(
                getattr(broken, "_max_workers", None),
                mp_context=getattr(broken, "_mp_context", None),
                initializer=getattr(broken, "_initializer", None),
                initargs=getattr(broken, "_initargs", ()),
                max_tasks_per_child=getattr(broken, "_max_tasks_per_child", None))
            self._made.append(self.current)
            _logger.info("a worker process died: its pool was replaced by a fresh one")
        return True

    def close(self) -> None:
        """Shut down the pools made here (the caller's own is the caller's)."""
        for pool in self._made:
            pool.shutdown(wait=True, cancel_futures=True)


async def run_surviving(pools: Pools,
                        submit: Callable[[concurrent.futures.Executor],
                                         concurrent.futures.Future[T]],
                        had_started: Callable[[], Awaitable[bool]], name: str) -> T:
    """Run one item on ``pools``, again on a fresh pool each time a worker's death breaks
    the pool before the item is done.

    Args:
        pools: Where it runs.
        submit: Sends the item to an executor.
        had_started: Whether the broken pool had started the item (asked once per break).
        name: How a log line names the item.

    Raises:
        concurrent.futures.BrokenExecutor: The pool cannot be made anew (not a process
            pool), or the item was running each of the `MAX_RUNS` times its worker died.
        Exception: Whatever else the executor raised for the item.
    """
    runs = 0
    while True:
        used = pools.current
        try:
            return await asyncio.wrap_future(submit(used))
        except concurrent.futures.BrokenExecutor as exc:
            started = await had_started()
            runs += started
            if runs >= MAX_RUNS:
                raise type(exc)(f"the process running it died {runs} times: {exc}") from exc
            if not pools.replace(used):
                raise
            if started:
                _logger.warning("%s: the process running it died; it runs again and resumes "
                                "its session", name)
