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

from avgen.resilience._cache import CacheStore, DiskStore, MemoryStore, cached
from avgen.resilience._circuit import (
    CircuitBreaker,
    CircuitRegistry,
    CircuitSettings,
    CircuitState,
    circuit,
)
from avgen.resilience._events import ResilienceEvent, collect
from avgen.resilience._monitor import Monitor, Threshold, monitored, otel_hook
from avgen.resilience._retry import RetryPolicy, classify, retry, retryable, set_testing

__all__ = [
    "CacheStore",
    "CircuitBreaker",
    "CircuitRegistry",
    "CircuitSettings",
    "CircuitState",
    "DiskStore",
    "MemoryStore",
    "Monitor",
    "ResilienceEvent",
    "RetryPolicy",
    "Threshold",
    "cached",
    "circuit",
    "classify",
    "collect",
    "monitored",
    "otel_hook",
    "retry",
    "retryable",
    "set_testing",
]
