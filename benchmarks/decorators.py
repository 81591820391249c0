"""Per-call cost of the resilience decorators on a no-op, against the raw libraries.

Each figure is the median, over several runs, of a timeit loop's time per call. Printed:
a bare call; raw ``stamina.retry`` and a raw ``cachetools.cached`` hit; our ``cached`` hit,
``retry`` (success path), ``circuit`` and ``monitored``; the four stacked. Then the two
ratios we hold ourselves to:

    python benchmarks/decorators.py    # targets: our hit <= 2x a cachetools hit;
                                       #          the four stacked <= 25 µs a call

"The four stacked" makes every layer run on every call: ``monitored(retry(circuit(
cached(f))))`` with the cache hit innermost. In the usual order (``cached`` outermost) a
hit returns before the other three run; that figure is printed too.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

import cachetools
import stamina

from avgen.resilience._cache import cached
from avgen.resilience._monitor import monitored
from avgen.resilience._retry import retry

RUNS = 7
TARGET_HIT_RATIO = 2.0
TARGET_STACK_US = 25.0


def per_call_us(call: Callable[[], Any]) -> float:
    """Median over RUNS of the microseconds per call of a timeit loop."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    number = max(number, 20_000)
    return statistics.median(timer.repeat(repeat=RUNS, number=number)) / number * 1e6


def noop(x: int) -> int:
    return x


def load_circuit() -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
    try:
        from avgen.resilience._circuit import CircuitRegistry, circuit
    except ImportError as exc:
        print(f"  (circuit skipped: avgen.resilience._circuit is not importable: {exc})")
        return None
    registry = CircuitRegistry()  # our own, so nothing global is touched
    return lambda func: circuit("bench", registry=registry)(func)


def main() -> int:
    rows: list[tuple[str, float]] = []

    def measure(label: str, func: Callable[[int], Any]) -> float:
        assert func(1) == 1  # warm: the caches hold the value from here on
        value = per_call_us(lambda: func(1))
        rows.append((label, value))
        print(f"  {label:<44} {value:8.3f} µs")
        return value

    print(f"per call, median of {RUNS} timeit runs (Python {sys.version.split()[0]}):")
    bare = measure("bare no-op", noop)
    measure("raw stamina.retry (success)", stamina.retry(on=Exception)(noop))
    raw_hit = measure("raw cachetools.cached hit",
                      cachetools.cached(cachetools.LRUCache(128))(noop))
    our_hit = measure("avgen cached hit", cached()(noop))
    measure("avgen retry (success)", retry()(noop))
    breaker = load_circuit()
    if breaker is not None:
        measure("avgen circuit (closed)", breaker(noop))
    measure("avgen monitored (no listener)", monitored()(noop))
    stack: float | None = None
    if breaker is not None:
        usual = monitored("usual")(retry()(breaker(noop)))
        measure("four stacked, cached outermost (hit)", cached()(usual))
        stack = measure("four stacked, every layer runs",
                        monitored("stack")(retry()(breaker(cached()(noop)))))
    else:
        stack = measure("three stacked (no circuit), every layer runs",
                        monitored("stack")(retry()(cached()(noop))))

    ratio = our_hit / raw_hit
    print()
    print(f"cached hit / cachetools hit: {ratio:.2f}x (target <= {TARGET_HIT_RATIO:.0f}x): "
          f"{'ok' if ratio <= TARGET_HIT_RATIO else 'OVER'}")
    print(f"stacked per call: {stack:.2f} µs, {stack - bare:.2f} µs over a bare call "
          f"(target <= {TARGET_STACK_US:.0f} µs): {'ok' if stack <= TARGET_STACK_US else 'OVER'}")
    return 0 if ratio <= TARGET_HIT_RATIO and stack <= TARGET_STACK_US else 1


if __name__ == "__main__":
    sys.exit(main())
