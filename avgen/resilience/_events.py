"""Events from the resilience decorators, and where they go.

Every decorator (`retry`, `circuit`, `cached`, `monitored`) reports what it does as a
`ResilienceEvent`: to the hooks given to it, to the ``avgen.resilience`` logger (debug
level, through a `logging.NullHandler` unless the application configures logging), and to
every `collect` block active in the current context. `collect` is how a caller learns what
happened inside one call — `avgen.VideoGenerator` uses it to put retries, breaker trips and
cache hits into each step of the manifest. It is scoped by a context variable, so
concurrent tasks and worker threads started with `asyncio.to_thread` each see their own.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs

__all__ = ["ResilienceEvent", "collect"]

_logger = logging.getLogger("avgen.resilience")
_collectors: contextvars.ContextVar[tuple[list[ResilienceEvent], ...]] = contextvars.ContextVar(
    "avgen_resilience_collectors", default=())


@attrs.frozen
class ResilienceEvent:
    """Something a resilience decorator did.

    Kinds: ``retry.attempt``, ``retry.giveup``, ``circuit.state`` (a transition: data has
    ``from`` and ``to``), ``circuit.rejected``, ``cache.hit``, ``cache.miss``,
    ``cache.evict``, ``call`` (a monitored call finished: data has ``seconds``, ``ok``),
    ``alert`` (a monitor threshold crossed: data has ``metric``, ``value``, ``limit``),
    ``prompt.rewrite`` (a refused prompt was rewritten: data has ``attempt``, ``reason``).

    Waiting and holding (``started`` in seconds since the epoch, ``seconds`` long):
    ``quota.wait`` (the batch's ``Shared`` state waited before a request: data has ``name``,
    ``started``, ``seconds`` and ``reason``: ``slot`` for a free slot, ``hold-off`` for the
    end of a hold-off after a 429, ``rate`` for room in the requests per minute),
    ``turn.wait`` (a run waited for a turn of an agent, at most its ``max_concurrency`` at
    once: data has ``name``, ``started``, ``seconds``) — both only when a wait actually
    happened (longer than a millisecond) — and ``quota.held`` (a slot was given back: data
    has ``name``, ``started``, ``seconds``, ``limit``).
    """

    kind: str
    """What happened (see the class docstring)."""
    source: str
    """Who reported it: the breaker's name, or the decorated function's qualified name."""
    data: Mapping[str, Any] = attrs.field(factory=dict)
    """The facts: attempt numbers, delays, states, errors (as strings), sizes."""
    time: float = attrs.field(factory=time.time)
    """When, in seconds since the epoch."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"kind": self.kind, "source": self.source, "data": dict(self.data),
                "time": self.time}


Hook = Callable[[ResilienceEvent], None]
"""A callable that receives events. It must not raise; if it does, the error is logged."""


def has_listeners(hooks: Iterable[Hook] | tuple[()] = ()) -> bool:
    """Whether an event would reach anyone: ``hooks``, a `collect` block, or debug logging.

    Building an event costs about a microsecond — as much as a cache hit — so hot paths
    ask this first.
    """
    return bool(hooks) or bool(_collectors.get()) or _logger.isEnabledFor(logging.DEBUG)


def emit(event: ResilienceEvent, hooks: Iterable[Hook] = ()) -> None:
    """Deliver ``event`` to ``hooks``, to the active `collect` blocks and to the logger."""
    for collector in _collectors.get():
        collector.append(event)
    for hook in hooks:
        try:
            hook(event)
        except Exception:  # a hook must never break the call it observes
            _logger.exception("resilience hook %r failed on %s", hook, event.kind)
    if _logger.isEnabledFor(logging.DEBUG):
        _logger.debug("%s %s %s", event.kind, event.source, dict(event.data))


@contextlib.contextmanager
def collect() -> Iterator[list[ResilienceEvent]]:
    """Gather every event emitted in this context (and in tasks and threads it starts).

    Example:
        >>> with collect() as events:
        ...     emit(ResilienceEvent("cache.hit", "demo"))
        >>> [e.kind for e in events]
        ['cache.hit']
    """
    events: list[ResilienceEvent] = []
    token = _collectors.set((*_collectors.get(), events))
    try:
        yield events
    finally:
        _collectors.reset(token)
