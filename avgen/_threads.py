"""Blocking work an event loop hands to a worker thread and sees to its end.

Writing a file that is synced to the disk waits for whatever else is being written to
it; done on the event loop, it holds up every other run of a batch. Such
work goes to a worker thread through `through_thread`, which a cancellation does not cut
short: what is written (a paid asset's copy, a record of a payment) is never left half
done behind the caller's back.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

__all__: list[str] = []

T = TypeVar("T")


async def through_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` in a worker thread, run to its end: a cancellation of the
    caller waits for it, then is raised.

    Returns:
        What ``call`` returned.

    Raises:
        asyncio.CancelledError: The caller was cancelled (once ``call`` has ended).
    """
    result, cancelled = await to_its_end(call, *args, **kwargs)
    if cancelled:
        raise asyncio.CancelledError
    return result


async def to_its_end(call: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, bool]:
    """``call(*args, **kwargs)`` in a worker thread, run to its end, and whether the caller
    was cancelled meanwhile: for a caller with more to do before it stops (a step whose
    paid work must be recorded); `through_thread` raises the cancellation at once.

    Raises:
        asyncio.CancelledError: The work itself was cancelled (its loop is closing).
    """
    work = asyncio.ensure_future(asyncio.to_thread(call, *args, **kwargs))
    cancelled = False
    while True:
        try:
            return await asyncio.shield(work), cancelled
        except asyncio.CancelledError:
            if work.cancelled():
                raise
            cancelled = True  # the work goes on: wait for it


def on_loop() -> bool:
    """Whether this thread is running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
