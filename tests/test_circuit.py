"""Tests of avgen.resilience._circuit: a state machine against a reference model, races,
cancellation, timeouts, allow/deny lists, time windows, registry.

Time is an injected fake clock everywhere except the timeout tests, and no test asserts on
wall-clock durations: concurrency is shown with barriers and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from avgen.errors import CircuitOpen, RateLimited, ServiceUnavailable, UsageError
from avgen.resilience import (
    CircuitBreaker,
    CircuitRegistry,
    CircuitSettings,
    CircuitState,
    ResilienceEvent,
    circuit,
    collect,
)
from avgen.resilience._circuit import Permit


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    """A recorded failure."""


class Ignored(Exception):
    """An exception on the ignore list."""


def state_of(breaker: CircuitBreaker) -> CircuitState:
    """The state (a function call, so mypy does not narrow it across calls)."""
    return breaker.state


def transitions(events: list[ResilienceEvent]) -> list[tuple[str, str]]:
    return [(e.data["from"], e.data["to"]) for e in events if e.kind == "circuit.state"]


def fail() -> None:
    raise Boom("down")


def trip(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(fail)


# --------------------------------------------------------------------------- reference model


@attrs.define
class ModelPermit:
    epoch: int
    trial: bool
    start: float


@attrs.define
class Model:
    """resilience4j's rules, written as plainly as possible (lists, recomputed rates)."""

    s: CircuitSettings
    state: str = "closed"
    since: float = 0.0
    epoch: int = 0
    forced: bool = False
    trials: int = 0
    outcomes: list[tuple[float, bool, bool]] = attrs.field(factory=list)
    moves: list[tuple[str, str]] = attrs.field(factory=list)

    def go(self, to: str, now: float) -> None:
        if self.state == "closed" and to == "open":
            self.outcomes = self.window(now)
        elif to != "open":
            self.outcomes = []
        self.moves.append((self.state, to))
        self.state, self.since, self.trials = to, now, 0
        self.epoch += 1

    def tick(self, now: float) -> None:
        if self.state == "open" and not self.forced and now - self.since >= self.s.wait_open:
            self.go("half_open", now)
        if (self.state == "half_open" and self.s.max_half_open_wait
                and now - self.since >= self.s.max_half_open_wait):
            self.go("open", now)

    def window(self, now: float) -> list[tuple[float, bool, bool]]:
        if self.state != "closed":
            return self.outcomes
        if self.s.window_type == "time":
            return [o for o in self.outcomes if o[0] > now - self.s.window_size]
        return self.outcomes[-int(self.s.window_size):]

    def exceeded(self, window: list[tuple[float, bool, bool]]) -> bool:
        n = len(window)
        failed = sum(o[1] for o in window)
        slow = sum(o[2] for o in window)
        return n > 0 and (failed * 100 >= self.s.failure_rate_threshold * n
                          or slow * 100 >= self.s.slow_call_rate_threshold * n)

    def acquire(self, now: float) -> ModelPermit | None:
        self.tick(now)
        if self.state == "closed":
            return ModelPermit(self.epoch, False, now)
        if self.state == "half_open" and self.trials < self.s.half_open_calls:
            self.trials += 1
            return ModelPermit(self.epoch, True, now)
        return None

    def finish(self, permit: ModelPermit, now: float, kind: str) -> None:
        self.tick(now)
        if permit.epoch != self.epoch:
            return
        if kind in ("ignored", "release"):
            if permit.trial:
                self.trials -= 1
            return
        self.outcomes.append((now, kind == "fail", now - permit.start > self.s.slow_call_duration))
        window = self.window(now)
        if self.state == "closed":
            needed = self.s.minimum_calls
            if self.s.window_type == "count":
                needed = min(needed, int(self.s.window_size))
            if len(window) >= needed and self.exceeded(window):
                self.go("open", now)
        elif self.state == "half_open" and len(window) >= self.s.half_open_calls:
            self.go("open" if self.exceeded(window) else "closed", now)


# --------------------------------------------------------------------------- state machine

OUTCOMES = ["ok", "fail", "ignored", "other"]


class BreakerMachine(RuleBasedStateMachine):
    window_type = "count"
    window_size = 4

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.events: list[ResilienceEvent] = []
        self.breaker = CircuitBreaker(
            "machine", window_type=self.window_type, window_size=self.window_size,
            minimum_calls=3, failure_rate_threshold=50, slow_call_rate_threshold=60,
            slow_call_duration=5, wait_open=10, half_open_calls=2, max_half_open_wait=30,
            record=(Boom,), ignore=(Ignored,), clock=self.clock,
            hooks=(self.events.append,))
        self.model = Model(self.breaker.settings)
        self.held: list[tuple[Permit, ModelPermit]] = []

    @initialize()
    def start(self) -> None:
        assert state_of(self.breaker) is CircuitState.CLOSED

    def _error(self, kind: str) -> BaseException | None:
        return {"ok": None, "fail": Boom(), "ignored": Ignored(), "other": KeyError()}[kind]

    @rule(kind=st.sampled_from(OUTCOMES), duration=st.sampled_from([0, 0, 5, 6]))
    def call(self, kind: str, duration: float) -> None:
        expected = self.model.acquire(self.clock.now)
        error = self._error(kind)

        def work() -> str:
            self.clock.advance(duration)  # 5 is not slow: slow means longer than 5
            if error is not None:
                raise error
            return "done"

        if expected is None:
            with pytest.raises(CircuitOpen):
                self.breaker.call(work)
            return
        if error is None:
            assert self.breaker.call(work) == "done"
        else:
            with pytest.raises(type(error)):
                self.breaker.call(work)
        self.model.finish(expected, self.clock.now, "fail" if kind == "fail" else (
            "ignored" if kind == "ignored" else "ok"))

    @rule()
    def hold(self) -> None:
        expected = self.model.acquire(self.clock.now)
        if expected is None:
            with pytest.raises(CircuitOpen):
                self.breaker.acquire()
        else:
            permit = self.breaker.acquire()
            assert permit.trial == expected.trial
            self.held.append((permit, expected))

    @precondition(lambda self: bool(self.held))
    @rule(index=st.integers(0, 10), kind=st.sampled_from([*OUTCOMES, "release", "cancel"]))
    def finish(self, index: int, kind: str) -> None:
        permit, expected = self.held.pop(index % len(self.held))
        if kind == "release":
            permit.release()
        elif kind == "cancel":
            permit.__exit__(asyncio.CancelledError, asyncio.CancelledError(), None)
        else:
            permit.record(self._error(kind))
        model_kind = {"fail": "fail", "ignored": "ignored", "release": "release",
                      "cancel": "release"}.get(kind, "ok")
        self.model.finish(expected, self.clock.now, model_kind)
        permit.record(Boom())  # a second report is ignored

    @rule(seconds=st.sampled_from([0.5, 1, 4, 6, 10, 15, 31]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        model = self.model
        model.forced = False
        if model.state == "closed":
            model.outcomes, model.since = [], self.clock.now
            model.epoch += 1
        else:
            model.go("closed", self.clock.now)

    @rule()
    def force_open(self) -> None:
        self.breaker.force_open()
        self.model.forced = True
        if self.model.state == "open":
            self.model.since = self.clock.now
        else:
            self.model.go("open", self.clock.now)

    @invariant()
    def matches_the_model(self) -> None:
        now = self.clock.now
        metrics = self.breaker.metrics()
        self.model.tick(now)
        assert metrics.state.value == self.model.state
        window = self.model.window(now)
        assert metrics.calls == len(window)
        assert metrics.failures == sum(o[1] for o in window)
        assert metrics.slow_calls == sum(o[2] for o in window)
        assert metrics.forced == self.model.forced

    @invariant()
    def permits_never_exceeded(self) -> None:
        metrics = self.breaker.metrics()
        assert 0 <= metrics.trials_in_flight <= self.breaker.settings.half_open_calls
        if metrics.state is CircuitState.HALF_OPEN:
            assert metrics.trials_in_flight == self.model.trials - len(self.model.outcomes)

    @invariant()
    def events_match_the_model(self) -> None:
        assert transitions(self.events) == self.model.moves


class TimeWindowMachine(BreakerMachine):
    window_type = "time"
    window_size = 20


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestTimeWindowMachine = TimeWindowMachine.TestCase
TestTimeWindowMachine.settings = settings(max_examples=150, stateful_step_count=40,
                                          deadline=None)


# --------------------------------------------------------------------------- basic semantics


def test_trips_refuses_then_recovers() -> None:
    clock = Clock()
    breaker = CircuitBreaker("svc", minimum_calls=4, window_size=10, wait_open=30,
                             half_open_calls=2, clock=clock)
    with collect() as events:
        assert breaker.call(lambda: 1) == 1
        assert breaker.call(lambda: 2) == 2
        trip(breaker, 1)
        assert state_of(breaker) is CircuitState.CLOSED  # 3 calls < minimum_calls
        trip(breaker, 1)  # 2 of 4 failed: 50 % reaches the threshold
        assert state_of(breaker) is CircuitState.OPEN
        clock.advance(12)
        with pytest.raises(CircuitOpen) as info:
            breaker.call(lambda: 3)
        assert isinstance(info.value, ServiceUnavailable)
        assert info.value.remaining == 18 and info.value.agent == "svc"
        clock.advance(18)
        assert state_of(breaker) is CircuitState.HALF_OPEN
        assert breaker.call(lambda: 4) == 4
        assert state_of(breaker) is CircuitState.HALF_OPEN
        assert breaker.call(lambda: 5) == 5
        assert state_of(breaker) is CircuitState.CLOSED
    assert transitions(events) == [("closed", "open"), ("open", "half_open"),
                                   ("half_open", "closed")]
    [rejected] = [e for e in events if e.kind == "circuit.rejected"]
    assert rejected.data == {"state": "open", "remaining": 18}
    trip_event = next(e for e in events if e.kind == "circuit.state")
    assert trip_event.data["failure_rate"] == 50.0 and trip_event.data["slow_rate"] == 0.0
    assert breaker.metrics().not_permitted == 1


def test_failed_trials_reopen_and_stuck_trials_time_out() -> None:
    clock = Clock()
    breaker = CircuitBreaker("svc", minimum_calls=1, wait_open=5, half_open_calls=1,
                             max_half_open_wait=20, clock=clock)
    trip(breaker, 1)
    clock.advance(5)
    trip(breaker, 1)  # the trial failed
    assert state_of(breaker) is CircuitState.OPEN
    clock.advance(5)
    held = breaker.acquire()  # a trial that never finishes
    with pytest.raises(CircuitOpen) as info:
        breaker.acquire()
    assert info.value.remaining == 0.0
    clock.advance(20)
    assert state_of(breaker) is CircuitState.OPEN
    held.record()  # too late: dropped
    assert breaker.metrics().calls == 0  # the (empty) window of the unfinished trial
    clock.advance(5)
    assert breaker.call(lambda: "ok") == "ok"
    assert state_of(breaker) is CircuitState.CLOSED


def test_slow_calls_trip_the_breaker() -> None:
    clock = Clock()
    breaker = CircuitBreaker("slow", minimum_calls=2, slow_call_duration=2,
                             slow_call_rate_threshold=50, clock=clock)

    def slow() -> str:
        clock.advance(3)
        return "late"

    assert breaker.call(lambda: "fast") == "fast"
    assert breaker.call(slow) == "late"
    metrics = breaker.metrics()
    assert metrics.state is CircuitState.OPEN
    assert (metrics.calls, metrics.failures, metrics.slow_calls) == (2, 0, 1)
    assert metrics.slow_call_rate == 50.0 and metrics.failure_rate == 0.0


def test_a_call_exactly_as_long_as_the_limit_is_not_slow() -> None:
    clock = Clock()
    breaker = CircuitBreaker("edge", minimum_calls=1, slow_call_duration=2,
                             slow_call_rate_threshold=100, clock=clock)
    breaker.call(clock.advance, 2)
    assert breaker.metrics().slow_calls == 0 and state_of(breaker) is CircuitState.CLOSED
    breaker.call(clock.advance, 2.5)
    assert breaker.metrics().slow_calls == 1


def test_minimum_calls_is_capped_at_a_count_window() -> None:
    breaker = CircuitBreaker("small", window_size=3, minimum_calls=10)
    trip(breaker, 2)
    assert state_of(breaker) is CircuitState.CLOSED
    trip(breaker, 1)  # a full window of 3 is judged although minimum_calls is 10
    assert state_of(breaker) is CircuitState.OPEN
    timed = CircuitBreaker("small-timed", window_type="time", window_size=3, minimum_calls=4)
    trip(timed, 3)
    assert state_of(timed) is CircuitState.CLOSED  # a time window needs the full minimum


def test_record_and_ignore_lists() -> None:
    breaker = CircuitBreaker("lists", record=(OSError,), ignore=(FileNotFoundError,),
                             minimum_calls=100, window_size=100)
    for error in (FileNotFoundError(), PermissionError(), ValueError(), PermissionError()):
        with pytest.raises(type(error)):
            breaker.call(_raiser(error))
    metrics = breaker.metrics()
    # FileNotFoundError is ignored (neither), PermissionError fails, ValueError succeeds.
    assert (metrics.calls, metrics.failures) == (3, 2)


class Http429(Exception):
    """Shaped like an HTTP client's error for a 429 answer."""

    code = 429


def test_rate_limits_are_never_failures_by_default() -> None:
    clock = Clock()
    breaker = CircuitBreaker("quota", minimum_calls=2, window_size=4, wait_open=10,
                             half_open_calls=1, clock=clock)
    for error in (RateLimited("quota", retry_after=2.0), Http429(), RateLimited("again")):
        with pytest.raises(type(error)):
            breaker.call(_raiser(error))
    metrics = breaker.metrics()
    assert metrics.state is CircuitState.CLOSED and (metrics.calls, metrics.failures) == (0, 0)
    assert breaker.call(lambda: "ok") == "ok" and breaker.metrics().calls == 1
    trip(breaker, 1)
    assert state_of(breaker) is CircuitState.OPEN
    clock.advance(10)
    with pytest.raises(RateLimited):  # a rate-limited trial gives its permit back
        breaker.call(_raiser(RateLimited("quota")))
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.call(lambda: "ok") == "ok"
    assert state_of(breaker) is CircuitState.CLOSED
    # even when the record list names them, unless the rule is turned off
    listed = CircuitBreaker("listed", record=(RateLimited,), minimum_calls=1)
    with pytest.raises(RateLimited):
        listed.call(_raiser(RateLimited("quota")))
    assert state_of(listed) is CircuitState.CLOSED
    counted = CircuitBreaker("counted", ignore_rate_limits=False, minimum_calls=1)
    with pytest.raises(Http429):
        counted.call(_raiser(Http429()))
    assert state_of(counted) is CircuitState.OPEN


def _raiser(error: BaseException) -> Callable[[], None]:
    def raise_it() -> None:
        raise error
    return raise_it


def test_ignored_and_cancelled_trials_give_their_permit_back() -> None:
    clock = Clock()
    breaker = CircuitBreaker("perm", minimum_calls=1, wait_open=1, half_open_calls=1,
                             ignore=(Ignored,), clock=clock)
    trip(breaker, 1)
    clock.advance(1)
    with pytest.raises(Ignored):
        breaker.call(_raiser(Ignored()))
    with pytest.raises(KeyboardInterrupt):
        breaker.call(_raiser(KeyboardInterrupt()))
    breaker.acquire().record(asyncio.CancelledError())  # not an Exception: released
    assert state_of(breaker) is CircuitState.HALF_OPEN
    assert breaker.metrics().calls == 0
    assert breaker.call(lambda: 1) == 1
    assert state_of(breaker) is CircuitState.CLOSED


def test_time_window_forgets_old_outcomes() -> None:
    clock = Clock()
    breaker = CircuitBreaker("timed", window_type="time", window_size=10, minimum_calls=3,
                             clock=clock)
    trip(breaker, 2)
    assert breaker.metrics().calls == 2
    clock.advance(10)  # outcomes at t=0 are now exactly 10 s old: out of the window
    assert breaker.metrics().calls == 0
    trip(breaker, 2)
    clock.advance(9)
    assert state_of(breaker) is CircuitState.CLOSED
    trip(breaker, 1)  # three failures within 10 s
    assert state_of(breaker) is CircuitState.OPEN
    assert breaker.metrics().calls == 3


def test_a_transition_sees_only_the_live_window() -> None:
    clock = Clock()
    events: list[ResilienceEvent] = []
    breaker = CircuitBreaker("stale", window_type="time", window_size=10, clock=clock,
                             hooks=(events.append,))
    trip(breaker, 1)
    clock.advance(20)
    breaker.force_open()  # the failure at t=0 has left the window
    assert events[-1].data["failure_rate"] == 0.0
    assert breaker.metrics().calls == 0


def test_count_window_keeps_the_last_n() -> None:
    breaker = CircuitBreaker("count", window_size=3, minimum_calls=10,
                             failure_rate_threshold=100)
    trip(breaker, 2)
    for _ in range(2):
        breaker.call(lambda: None)
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failures) == (3, 1)
    assert metrics.state is CircuitState.CLOSED  # min(minimum_calls, window) = 3 judged: 33 %


def test_reset_force_open_and_transition_to() -> None:
    clock = Clock()
    breaker = CircuitBreaker("manual", wait_open=5, clock=clock)
    with collect() as events:
        breaker.force_open()
        clock.advance(100)
        assert state_of(breaker) is CircuitState.OPEN
        with pytest.raises(CircuitOpen) as info:
            breaker.call(lambda: 1)
        assert math.isinf(info.value.remaining)
        assert breaker.metrics().forced
        breaker.reset()
        metrics = breaker.metrics()
        assert metrics.state is CircuitState.CLOSED and metrics.not_permitted == 0
        assert not metrics.forced and metrics.calls == 0
        breaker.transition_to(CircuitState.HALF_OPEN)
        assert state_of(breaker) is CircuitState.HALF_OPEN
        breaker.transition_to(CircuitState.OPEN)
        clock.advance(5)
        assert state_of(breaker) is CircuitState.HALF_OPEN
    assert transitions(events) == [("closed", "open"), ("open", "closed"),
                                   ("closed", "half_open"), ("half_open", "open"),
                                   ("open", "half_open")]


def test_settings_are_validated() -> None:
    for bad in ({"window_type": "sliding"}, {"window_size": 0}, {"window_size": 2.5},
                {"failure_rate_threshold": 0}, {"failure_rate_threshold": 101},
                {"slow_call_duration": -1}, {"half_open_calls": 0}, {"wait_open": -1},
                {"record": (int,)}, {"ignore": 3}, {"timeout": 0}, {"clock": 3},
                {"minimum_calls": float("nan")}, {"wait_open": float("inf")},
                {"ignore_rate_limits": 1}):
        with pytest.raises(UsageError) as info:
            CircuitBreaker("bad", **bad)
        assert info.value.field == next(iter(bad))
    with pytest.raises(UsageError) as info:
        CircuitBreaker("bad", wait=3)
    assert info.value.field == "wait"
    assert CircuitSettings(window_type="time", window_size=2.5).window_size == 2.5
    assert CircuitSettings(record=OSError).record == (OSError,)


# --------------------------------------------------------------------------- threads


def test_calls_run_concurrently() -> None:
    breaker = CircuitBreaker("parallel")
    barrier = threading.Barrier(4, timeout=10)  # breaks if the calls were serialised
    errors: list[BaseException] = []

    def work() -> None:
        barrier.wait()

    def run() -> None:
        try:
            breaker.call(work)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert breaker.metrics().calls == 4 and breaker.metrics().failures == 0


@pytest.mark.parametrize(("window", "calls", "failures"), [(2000, 1500, 500), (100, 100, None)])
def test_exact_counts_under_threads(window: int, calls: int, failures: int | None) -> None:
    breaker = CircuitBreaker("counts", window_size=window, minimum_calls=window,
                             failure_rate_threshold=100)
    start = threading.Barrier(3)

    def run(worker: int) -> None:
        start.wait()
        fn = fail if worker == 0 and failures is not None else (lambda: None)
        for _ in range(500):
            with contextlib.suppress(Boom):
                breaker.call(fn)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    metrics = breaker.metrics()
    assert metrics.calls == calls
    if failures is not None:
        assert metrics.failures == failures
    assert metrics.state is CircuitState.CLOSED


def test_one_half_open_transition_and_bounded_trials_under_a_race() -> None:
    clock = Clock()
    events: list[ResilienceEvent] = []
    breaker = CircuitBreaker("race", minimum_calls=1, wait_open=10, half_open_calls=2,
                             clock=clock, hooks=(events.append,))
    trip(breaker, 1)
    clock.advance(10)
    n = 16
    start = threading.Barrier(n)
    release = threading.Event()
    entered: list[int] = []
    refused: list[int] = []

    def trial(i: int) -> None:
        entered.append(i)
        assert release.wait(10)

    def run(i: int) -> None:
        start.wait()
        try:
            breaker.call(trial, i)
        except CircuitOpen:
            refused.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    while len(entered) + len(refused) < n:
        threading.Event().wait(0.005)
    assert len(entered) == 2 and len(refused) == n - 2
    assert breaker.metrics().trials_in_flight == 2
    release.set()
    for t in threads:
        t.join()
    assert transitions(events) == [("closed", "open"), ("open", "half_open"),
                                   ("half_open", "closed")]


# --------------------------------------------------------------------------- async


def test_async_calls_and_decorated_coroutines() -> None:
    registry = CircuitRegistry()

    @circuit("agen", registry=registry, minimum_calls=3, wait_open=60)
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise Boom("negative")
        return x

    async def main() -> None:
        assert await fetch(3) == 3
        with pytest.raises(Boom):
            await fetch(-1)
        with pytest.raises(Boom):
            await fetch(-1)
        with pytest.raises(CircuitOpen):
            await fetch(4)

    asyncio.run(main())
    assert fetch.breaker is registry.get("agen")  # type: ignore[attr-defined]
    assert fetch.__name__ == "fetch"
    assert registry.get("agen").state is CircuitState.OPEN


def test_cancelled_trial_releases_its_permit() -> None:
    clock = Clock()
    breaker = CircuitBreaker("cancel", minimum_calls=1, wait_open=1, half_open_calls=1,
                             clock=clock)
    trip(breaker, 1)
    clock.advance(1)

    async def main() -> None:
        started = asyncio.Event()

        async def hang() -> None:
            started.set()
            await asyncio.sleep(3600)

        task = asyncio.create_task(breaker.acall(hang))
        await started.wait()
        with pytest.raises(CircuitOpen):
            await breaker.acall(asyncio.sleep, 0)  # the only permit is taken
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        metrics = breaker.metrics()
        assert metrics.state is CircuitState.HALF_OPEN
        assert metrics.calls == 0 and metrics.trials_in_flight == 0
        await breaker.acall(asyncio.sleep, 0)  # a new trial is permitted

    asyncio.run(main())
    assert state_of(breaker) is CircuitState.CLOSED


# --------------------------------------------------------------------------- timeouts


def _blocking(gate: threading.Event) -> Callable[[], str]:
    def block() -> str:
        gate.wait(10)
        return "late"
    return block


def test_sync_timeout_counts_as_failure() -> None:
    gate = threading.Event()
    breaker = CircuitBreaker("sync-timeout", timeout=0.05, record=(KeyError,),
                             minimum_calls=10)
    try:
        with pytest.raises(TimeoutError):
            breaker.call(_blocking(gate))
        assert breaker.call(lambda: "fast") == "fast"
    finally:
        gate.set()
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failures) == (2, 1)

    def own_timeout() -> None:
        raise TimeoutError("the function's own")

    with pytest.raises(TimeoutError, match="own"):
        breaker.call(own_timeout)
    assert breaker.metrics().failures == 1  # not in record, not the breaker's timeout


def test_sync_timeout_works_off_the_main_thread() -> None:
    gate = threading.Event()
    breaker = CircuitBreaker("thread-timeout", timeout=0.05)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            breaker.call(_blocking(gate))
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(10)
    gate.set()
    assert len(outcome) == 1 and isinstance(outcome[0], TimeoutError)
    assert breaker.metrics().failures == 1


def test_async_timeout_counts_as_failure() -> None:
    breaker = CircuitBreaker("async-timeout", timeout=0.05, minimum_calls=10)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await breaker.acall(asyncio.sleep, 3600)
        assert await breaker.acall(asyncio.sleep, 0, "quick") == "quick"

    asyncio.run(main())
    metrics = breaker.metrics()
    assert (metrics.calls, metrics.failures) == (2, 1)

    async def own_timeout() -> None:
        raise TimeoutError("the function's own")

    mine = CircuitBreaker("own-timeout", timeout=5, record=(KeyError,))
    with pytest.raises(TimeoutError, match="own"):
        asyncio.run(mine.acall(own_timeout))
    assert (mine.metrics().calls, mine.metrics().failures) == (1, 0)  # not the breaker's


# --------------------------------------------------------------------------- registry


def test_registry_shares_breakers_by_name() -> None:
    registry = CircuitRegistry()
    first = registry.get("veo")
    assert registry.get("veo") is first
    assert "veo" in registry and registry.names() == ["veo"]
    with pytest.raises(UsageError):
        registry.get("veo", CircuitSettings(wait_open=1))

    @circuit("tts", registry=registry, wait_open=7)
    def speak(text: str) -> str:
        return text

    class Agent:
        @circuit("tts", registry=registry)
        def say(self, text: str) -> str:
            return text + "!"

    assert speak("a") == "a" and Agent().say("b") == "b!"
    assert speak.breaker is Agent.say.breaker is registry.get("tts")  # type: ignore[attr-defined]
    assert registry.get("tts").settings.wait_open == 7
    assert registry.names() == ["tts", "veo"]
    registry.clear()
    assert registry.names() == [] and registry.get("veo") is not first
    with pytest.raises(UsageError):
        circuit("x", registry=registry, bogus=1)


def test_without_a_registry_each_breaker_is_its_own() -> None:
    first, second = circuit("same-name"), circuit("same-name")
    assert first is not second and first.name == second.name == "same-name"

    @first
    def one() -> int:
        return 1

    @first
    def two() -> int:
        return 2

    assert one.breaker is two.breaker is first  # type: ignore[attr-defined]


def test_breaker_used_as_a_permit_context_manager() -> None:
    breaker = CircuitBreaker("ctx", minimum_calls=1)
    with breaker.acquire():
        pass
    with pytest.raises(Boom), breaker.acquire():
        raise Boom()
    metrics: Any = breaker.metrics()
    assert (metrics.calls, metrics.failures) == (2, 1)
    assert metrics.state is CircuitState.OPEN
