"""Resilience for calls to slow, flaky, paid services: retry, circuit, cached, monitored.

Four decorators, each serving sync and async functions and methods:

- `retry` — retries transient and rate-limit errors with exponential backoff (stamina
  underneath), honours ``Retry-After`` and Google's ``RetryInfo``, fails fast on permanent
  errors and on an open circuit;
- `circuit` — a named circuit breaker with resilience4j's semantics: trips on the failure
  or slow-call rate of a sliding window (a quota answer is never a failure), refuses calls
  while open, lets a bounded number of trial calls through when half-open;
- `cached` — memoises results in memory or on disk (`DiskStore`), one computation per key
  even under concurrency;
- `monitored` — times calls and watches the machine (`Monitor`), raising alerts as events.

They stack in any order, each keeping to its own job; the usual order, outermost first, is
``@cached`` (a hit costs nothing), ``@monitored``, ``@retry``, ``@circuit`` (so every
attempt is judged by the breaker and an open circuit stops the retries at once).

Every decorator reports what it does as a `ResilienceEvent` to its ``hooks``, to the
``avgen.resilience`` logger and to the `collect` blocks active around the call. Nothing
here starts a thread, configures logging or changes global state at import; in tests,
`set_testing` removes every backoff.

This layer imports nothing from avgen but `avgen.errors`.
"""

from __future__ import annotations

__docformat__ = "google"

from avgen.resilience._cache import (
    CachedFunction,
    CacheInfo,
    CacheStore,
    DiskStore,
    MemoryStore,
    cached,
)
from avgen.resilience._circuit import (
    CircuitBreaker,
    CircuitMetrics,
    CircuitRegistry,
    CircuitSettings,
    CircuitState,
    Permit,
    circuit,
)
from avgen.resilience._events import Hook, ResilienceEvent, collect, emit
from avgen.resilience._monitor import Monitor, Threshold, monitored, otel_hook
from avgen.resilience._retry import (
    Classification,
    RetryDecorator,
    RetryOn,
    RetryPolicy,
    classify,
    retry,
    retryable,
    server_delay,
    set_testing,
)
from avgen.resilience._shared import (
    Coordination,
    LocalCoordination,
    Shared,
    current_shared,
    sharing,
)

__all__ = [
    "CacheInfo",
    "CacheStore",
    "CachedFunction",
    "CircuitBreaker",
    "CircuitMetrics",
    "CircuitRegistry",
    "CircuitSettings",
    "CircuitState",
    "Classification",
    "Coordination",
    "DiskStore",
    "Hook",
    "LocalCoordination",
    "MemoryStore",
    "Monitor",
    "Permit",
    "ResilienceEvent",
    "RetryDecorator",
    "RetryOn",
    "RetryPolicy",
    "Shared",
    "Threshold",
    "cached",
    "circuit",
    "classify",
    "collect",
    "current_shared",
    "emit",
    "monitored",
    "otel_hook",
    "retry",
    "retryable",
    "server_delay",
    "set_testing",
    "sharing",
]
