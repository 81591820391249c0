"""Circuit breakers, with resilience4j's semantics.

A `CircuitBreaker` watches the outcomes of the calls made through it in a sliding window
(the last N calls, or the last N seconds). Once the window holds ``minimum_calls`` outcomes
and the failure rate or the slow-call rate reaches its threshold, the breaker **opens**:
calls fail at once with `avgen.errors.CircuitOpen`, without touching the service. After
``wait_open`` seconds it turns **half-open** and lets ``half_open_calls`` trial calls
through (more are refused); when they have all finished it closes again, or re-opens if
they failed too often. A half-open breaker whose trials never finish re-opens after
``max_half_open_wait``.

A quota answer (HTTP 429, `avgen.errors.RateLimited`) is never a failure: it asks the caller
to slow down, it does not mean the service is down, so by default it counts as neither
success nor failure (``ignore_rate_limits``); slowing down is `avgen.resilience.retry`'s job.

Only the bookkeeping is locked, never the call: calls through one breaker run concurrently.
A timeout, when set, is enforced inside the breaker (so it counts as a failure) with
`asyncio.timeout` or a worker thread — never with signals. A cancelled call gives its
trial permit back without recording an outcome. Outcomes of calls that started before a
state change are dropped: they describe the service as it was.

Breakers are named, and live in a `CircuitRegistry` (the default one is `breakers`), so
every function that talks to one service can share one breaker::

    @circuit("veo", failure_rate_threshold=50, wait_open=60)
    async def generate_clip(prompt: str) -> bytes: ...
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import concurrent.futures
import contextlib
import contextvars
import enum
import functools
import inspect
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Literal, ParamSpec, TypeVar, cast

import attrs

from avgen._validate import flag, number, number_validator
from avgen.errors import CircuitOpen, UsageError
from avgen.resilience._events import Hook, ResilienceEvent, emit
from avgen.resilience._retry import classify
from avgen.resilience._shared import current_shared

__all__ = ["CircuitBreaker", "CircuitRegistry", "CircuitSettings", "CircuitState", "circuit"]

P = ParamSpec("P")
T = TypeVar("T")


class CircuitState(enum.Enum):
    """The three states of a breaker."""

    CLOSED = "closed"
    """Calls go through; outcomes are recorded in the sliding window."""
    OPEN = "open"
    """Calls are refused with `avgen.errors.CircuitOpen`."""
    HALF_OPEN = "half_open"
    """A bounded number of trial calls go through; the rest are refused."""


_POSITIVE_INT = number_validator(integer=True, low=1)
_POSITIVE = number_validator(low=0, low_inclusive=False)
_PERCENT = number_validator(low=0, low_inclusive=False, high=100)
_NOT_NEGATIVE = number_validator(low=0)


def _hook_tuple(hooks: Iterable[Hook]) -> tuple[Hook, ...]:
    return tuple(hooks)


def _type_tuple(types: Any) -> tuple[type[BaseException], ...]:
    try:
        return (types,) if isinstance(types, type) else tuple(types)
    except TypeError:  # not iterable: validated (and refused) after conversion
        return (types,)


@attrs.frozen
class CircuitSettings:
    """How a `CircuitBreaker` judges a service (resilience4j's settings, in seconds)."""

    window_type: Literal["count", "time"] = "count"
    """``"count"``: the window is the last `window_size` calls; ``"time"``: the calls that
    finished in the last `window_size` seconds."""
    window_size: float = 20
    """Calls (an int) or seconds, depending on `window_type`."""
    minimum_calls: int = attrs.field(default=5, validator=_POSITIVE_INT)
    """Outcomes the window must hold before the rates are judged (capped at `window_size`
    for a count window)."""
    failure_rate_threshold: float = attrs.field(default=50.0, validator=_PERCENT)
    """Percent of failed calls at or above which the breaker opens."""
    slow_call_rate_threshold: float = attrs.field(default=100.0, validator=_PERCENT)
    """Percent of slow calls at or above which the breaker opens."""
    slow_call_duration: float = attrs.field(default=60.0, validator=_POSITIVE)
    """A call taking longer than this many seconds is slow (success or failure)."""
    wait_open: float = attrs.field(default=30.0, validator=_NOT_NEGATIVE)
    """Seconds the breaker stays open before it lets trial calls through."""
    half_open_calls: int = attrs.field(default=2, validator=_POSITIVE_INT)
    """Trial calls permitted while half-open; their outcomes decide to close or re-open."""
    max_half_open_wait: float = attrs.field(default=0.0, validator=_NOT_NEGATIVE)
    """Seconds a breaker may stay half-open waiting for its trials before re-opening;
    0 waits forever."""
    record: tuple[type[BaseException], ...] = attrs.field(
        default=(Exception,), converter=_type_tuple)
    """Exceptions that count as failures; other exceptions count as successes."""
    ignore: tuple[type[BaseException], ...] = attrs.field(default=(), converter=_type_tuple)
    """Exceptions that count as neither (they win over `record`)."""
    ignore_rate_limits: bool = True
    """Quota answers (HTTP 429, `avgen.errors.RateLimited`: whatever
    `avgen.resilience.classify` calls ``"rate_limited"``) count as neither success nor
    failure, whatever `record` and `ignore` say: they ask the caller to slow down, they never
    mean the service is down. False judges them by `record` and `ignore` like any error."""
    timeout: float | None = attrs.field(default=None, validator=number_validator(
        low=0, low_inclusive=False, optional=True))
    """Seconds after which a call is abandoned with `TimeoutError`, a failure; None for
    none. A sync call then runs in a worker thread, which is left to finish on its own."""
    clock: Callable[[], float] = time.monotonic
    """The time source, in seconds (inject a fake one in tests)."""
    hooks: tuple[Hook, ...] = attrs.field(default=(), converter=_hook_tuple)
    """Where ``circuit.state`` and ``circuit.rejected`` events go."""

    def __attrs_post_init__(self) -> None:
        if self.window_type not in ("count", "time"):
            raise UsageError("window_type", f"must be 'count' or 'time', not {self.window_type!r}")
        number("window_size", self.window_size, integer=self.window_type == "count", low=0,
               low_inclusive=False)  # calls (an int) or seconds
        for field in ("record", "ignore"):
            types = getattr(self, field)
            if not all(isinstance(t, type) and issubclass(t, BaseException) for t in types):
                raise UsageError(field, f"must be exception types, not {types!r}")
        flag("ignore_rate_limits", self.ignore_rate_limits)
        if not callable(self.clock):
            raise UsageError("clock", "must be a callable returning seconds")
        if not all(callable(h) for h in self.hooks):
            raise UsageError("hooks", "must be callables taking a ResilienceEvent")


def _check_names(settings: dict[str, Any]) -> None:
    known = attrs.fields_dict(CircuitSettings)
    for name in sorted(set(settings) - set(known)):
        raise UsageError(name, f"is not a circuit setting; known: {', '.join(known)}")


@attrs.frozen
class CircuitMetrics:
    """A snapshot of a breaker (`CircuitBreaker.metrics`)."""

    state: CircuitState
    """The state, after any transition due by now."""
    calls: int
    """Outcomes in the current window (the trial window when half-open)."""
    failures: int
    """Failed calls in the window."""
    slow_calls: int
    """Slow calls in the window."""
    failure_rate: float
    """``failures`` in percent of ``calls`` (0 when empty)."""
    slow_call_rate: float
    """``slow_calls`` in percent of ``calls`` (0 when empty)."""
    not_permitted: int
    """Calls refused since the breaker was made or reset."""
    trials_in_flight: int
    """Half-open trial calls started and not finished yet."""
    forced: bool
    """True when held open by `CircuitBreaker.force_open`."""


class _Window:
    """Outcomes by count (last ``size`` calls) or by time (last ``size`` seconds)."""

    __slots__ = ("_by_time", "_records", "_size", "calls", "failures", "slow")

    def __init__(self, size: float, by_time: bool) -> None:
        self._size = size
        self._by_time = by_time
        self._records: deque[tuple[float, bool, bool]] = deque()
        self.calls = self.failures = self.slow = 0

    def _drop_oldest(self) -> None:
        _, failed, slow = self._records.popleft()
        self.calls -= 1
        self.failures -= failed
        self.slow -= slow

    def expire(self, now: float) -> None:
        if self._by_time:
            while self._records and self._records[0][0] <= now - self._size:
                self._drop_oldest()

    def add(self, now: float, failed: bool, slow: bool) -> None:
        self.expire(now)
        if not self._by_time and len(self._records) >= self._size:
            self._drop_oldest()
        self._records.append((now, failed, slow))
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def rates(self) -> tuple[float, float]:
        if not self.calls:
            return 0.0, 0.0
        return self.failures * 100 / self.calls, self.slow * 100 / self.calls


class Permit:
    """Permission for one call through a breaker, from `CircuitBreaker.acquire`.

    Report the outcome exactly once with `record` (or give the permit back unused with
    `release`); later reports are ignored. As a context manager it does that itself: no
    exception is a success, an `Exception` is judged by the breaker's ``record`` and
    ``ignore`` lists (a quota answer counts as nothing, unless ``ignore_rate_limits`` is
    off), anything else (cancellation, ``KeyboardInterrupt``) releases it.
    """

    __slots__ = ("_breaker", "_done", "_epoch", "_start", "_trial")

    def __init__(self, breaker: CircuitBreaker, epoch: int, trial: bool, start: float) -> None:
        self._breaker = breaker
        self._epoch = epoch
        self._trial = trial
        self._start = start
        self._done = False

    @property
    def trial(self) -> bool:
        """True for a half-open trial call."""
        return self._trial

    def record(self, error: BaseException | None = None, *, timed_out: bool = False) -> None:
        """Report the outcome: ``error`` None for a success, else the exception raised.

        Args:
            error: What the call raised, or None.
            timed_out: The breaker's own timeout expired: a failure whatever ``error`` is.
        """
        self._breaker._finish(self, error, timed_out=timed_out, released=False)

    def release(self) -> None:
        """Give the permit back without recording an outcome (the call never happened)."""
        self._breaker._finish(self, None, timed_out=False, released=True)

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self.record()
        elif isinstance(exc, Exception):
            self.record(exc)
        else:
            self.release()


class CircuitBreaker:
    """A named circuit breaker; also a decorator for sync and async functions and methods.

    Each call's outcome is a success, a failure (an exception in ``record``, or the
    breaker's own timeout), or nothing: an exception in ``ignore``, a cancelled call, and —
    the breaker's own rule, unless ``ignore_rate_limits`` is turned off — a quota answer
    (HTTP 429, `avgen.errors.RateLimited`). Rate limits slow the caller down; they never
    mean the service is down, so they never open the breaker.

    Args:
        name: The breaker's name (the source of its events, the agent in `CircuitOpen`).
        settings: The settings; `CircuitSettings` defaults when None.
        **overrides: Settings to change (`CircuitSettings` field names).

    Raises:
        avgen.errors.UsageError: An unknown or out-of-range setting.

    Example:
        >>> breaker = CircuitBreaker("demo", minimum_calls=2, wait_open=10)
        >>> breaker.call(lambda: 42)
        42
        >>> breaker.state
        <CircuitState.CLOSED: 'closed'>
    """

    def __init__(self, name: str, settings: CircuitSettings | None = None,
                 **overrides: Any) -> None:
        _check_names(overrides)
        base = settings if settings is not None else CircuitSettings()
        self.name = name
        """The breaker's name."""
        self.settings: CircuitSettings = attrs.evolve(base, **overrides) if overrides else base
        """The settings in force."""
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._epoch = 0
        self._since = self.settings.clock()
        self._forced = False
        self._trials = 0
        self._not_permitted = 0
        self._opened_here = False
        self._window = self._closed_window()

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.name!r} {self._state.value}>"

    # ------------------------------------------------------------------ bookkeeping (locked)

    @contextlib.contextmanager
    def _bookkeeping(self) -> Iterator[tuple[float, list[ResilienceEvent]]]:
        """Hold the lock, make the transitions due by now; emit the events once unlocked."""
        events: list[ResilienceEvent] = []
        with self._lock:
            now = self.settings.clock()
            self._advance(now, events)
            yield now, events
            opened = self._opened_here
            self._opened_here = False
        shared = current_shared()
        if opened and shared is not None:  # every worker of the batch skips it too
            shared.coordination.trip(self.name, time.time() + self.settings.wait_open)
        for event in events:
            emit(event, self.settings.hooks)

    def _follow_shared(self) -> None:
        """Open this breaker if another worker of the batch found the service down."""
        shared = current_shared()
        if shared is None or self._forced:
            return
        remaining = shared.coordination.tripped_until(self.name) - time.time()
        if remaining <= 0:
            return
        events: list[ResilienceEvent] = []
        with self._lock:
            if self._state is not CircuitState.OPEN:
                now = self.settings.clock()
                self._transition(CircuitState.OPEN, now, "opened by another worker", events,
                                 shared=True)
                self._since = now - max(0.0, self.settings.wait_open - remaining)
        for event in events:
            emit(event, self.settings.hooks)

    def _closed_window(self) -> _Window:
        s = self.settings
        return _Window(s.window_size, by_time=s.window_type == "time")

    def _rate_exceeded(self) -> bool:
        w, s = self._window, self.settings
        return w.calls > 0 and (w.failures * 100 >= s.failure_rate_threshold * w.calls
                                or w.slow * 100 >= s.slow_call_rate_threshold * w.calls)

    def _transition(self, to: CircuitState, now: float, reason: str,
                    events: list[ResilienceEvent], *, shared: bool = False) -> None:
        """Enter ``to`` afresh (an event if the state changes); calls in flight are dropped.
        An opening found here (not learnt from the batch: ``shared``) is shared."""
        if to is CircuitState.OPEN and not shared:
            self._opened_here = True
        if self._state is CircuitState.CLOSED:
            self._window.expire(now)
        if to is not self._state:
            failure_rate, slow_rate = self._window.rates()
            events.append(ResilienceEvent("circuit.state", self.name, {
                "from": self._state.value, "to": to.value, "failure_rate": failure_rate,
                "slow_rate": slow_rate, "reason": reason}))
        self._state = to
        self._epoch += 1
        self._since = now
        self._trials = 0
        if to is CircuitState.CLOSED:
            self._window = self._closed_window()
        elif to is CircuitState.HALF_OPEN:
            self._window = _Window(self.settings.half_open_calls, by_time=False)
        # OPEN keeps the window that tripped it, for metrics()

    def _advance(self, now: float, events: list[ResilienceEvent]) -> None:
        """Make the transitions that time alone causes."""
        s = self.settings
        if (self._state is CircuitState.OPEN and not self._forced
                and now - self._since >= s.wait_open):
            self._transition(CircuitState.HALF_OPEN, now, "wait_open elapsed", events)
        if (self._state is CircuitState.HALF_OPEN and s.max_half_open_wait > 0
                and now - self._since >= s.max_half_open_wait):
            self._transition(CircuitState.OPEN, now, "trial calls did not finish in time",
                             events)

    def _finish(self, permit: Permit, error: BaseException | None, *, timed_out: bool,
                released: bool) -> None:
        s = self.settings
        with self._bookkeeping() as (now, events):
            if permit._done or permit._epoch != self._epoch:  # stale: the state changed
                permit._done = True
                return
            permit._done = True
            no_outcome = released or (not timed_out and error is not None and (
                not isinstance(error, Exception) or isinstance(error, s.ignore)
                or (s.ignore_rate_limits and classify(error) == "rate_limited")))
            if no_outcome:
                self._trials -= permit._trial
                return
            failed = timed_out or (error is not None and isinstance(error, s.record))
            self._window.add(now, failed, now - permit._start > s.slow_call_duration)
            if self._state is CircuitState.CLOSED:
                needed = s.minimum_calls
                if s.window_type == "count":
                    needed = min(needed, int(s.window_size))
                if self._window.calls >= needed and self._rate_exceeded():
                    self._transition(CircuitState.OPEN, now, "rate threshold reached", events)
            elif self._window.calls >= s.half_open_calls:  # HALF_OPEN: all trials are in
                if self._rate_exceeded():
                    self._transition(CircuitState.OPEN, now, "trial calls failed", events)
                else:
                    self._transition(CircuitState.CLOSED, now, "trial calls succeeded", events)

    # ------------------------------------------------------------------ public API

    def acquire(self) -> Permit:
        """Ask to make one call now.

        Returns:
            A `Permit`: report the call's outcome through it (or use it as a context
            manager).

        Raises:
            avgen.errors.CircuitOpen: The breaker is open, or half-open with every trial
                permit taken.
        """
        self._follow_shared()
        with self._bookkeeping() as (now, events):
            state = self._state
            if state is CircuitState.CLOSED:
                return Permit(self, self._epoch, False, now)
            if state is CircuitState.HALF_OPEN and self._trials < self.settings.half_open_calls:
                self._trials += 1
                return Permit(self, self._epoch, True, now)
            self._not_permitted += 1
            remaining = 0.0
            if self._forced:
                remaining = math.inf
            elif state is CircuitState.OPEN:
                remaining = max(0.0, self.settings.wait_open - (now - self._since))
            events.append(ResilienceEvent("circuit.rejected", self.name, {
                "state": state.value, "remaining": remaining}))
        why = ("is half-open and its trial calls are all in flight"
               if state is CircuitState.HALF_OPEN
               else f"is open; next trial call in {remaining:.3g}s")
        raise CircuitOpen(f"circuit {why}", agent=self.name, remaining=remaining)

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            avgen.errors.CircuitOpen: The call was refused (``fn`` was not called).
            TimeoutError: ``fn`` took longer than the ``timeout`` setting (a failure); it
                goes on in its worker thread, its outcome unrecorded.
        """
        timeout = self.settings.timeout
        with self.acquire() as permit:
            if timeout is None:
                return fn(*args, **kwargs)
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            context = contextvars.copy_context()

            def run() -> None:
                try:
                    future.set_result(context.run(fn, *args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)

            threading.Thread(target=run, name=f"avgen-circuit-{self.name}", daemon=True).start()
            if not concurrent.futures.wait([future], timeout=timeout).done:
                raise self._timed_out(permit, timeout)
            return future.result()

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args,
                    **kwargs: P.kwargs) -> T:
        """Await ``fn(*args, **kwargs)`` through the breaker.

        A cancelled call gives its permit back without recording an outcome.

        Raises:
            avgen.errors.CircuitOpen: The call was refused (``fn`` was not called).
            TimeoutError: ``fn`` took longer than the ``timeout`` setting (a failure).
        """
        timeout = self.settings.timeout
        with self.acquire() as permit:
            if timeout is None:
                return await fn(*args, **kwargs)
            limit = asyncio.timeout(timeout)
            try:
                async with limit:
                    return await fn(*args, **kwargs)
            except TimeoutError as exc:
                if not limit.expired():
                    raise
                raise self._timed_out(permit, timeout) from exc

    def _timed_out(self, permit: Permit, timeout: float) -> TimeoutError:
        error = TimeoutError(f"circuit {self.name!r}: call took longer than {timeout:g}s")
        permit.record(error, timed_out=True)
        return error

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate a sync or async function or method; the wrapper has ``.breaker``."""
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Awaitable[Any]], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await self.acall(async_fn, *args, **kwargs)

            wrapper = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return self.call(fn, *args, **kwargs)

            wrapper = sync_wrapper
        cast(Any, wrapper).breaker = self
        return cast(Callable[P, T], wrapper)

    @property
    def state(self) -> CircuitState:
        """The current state (an open breaker whose ``wait_open`` passed turns half-open)."""
        with self._bookkeeping():
            return self._state

    def metrics(self) -> CircuitMetrics:
        """A consistent snapshot of the state and the window's counts and rates."""
        with self._bookkeeping() as (now, _):
            if self._state is CircuitState.CLOSED:
                self._window.expire(now)
            w = self._window
            failure_rate, slow_rate = w.rates()
            return CircuitMetrics(
                state=self._state, calls=w.calls, failures=w.failures, slow_calls=w.slow,
                failure_rate=failure_rate, slow_call_rate=slow_rate,
                not_permitted=self._not_permitted,
                trials_in_flight=(self._trials - w.calls
                                  if self._state is CircuitState.HALF_OPEN else 0),
                forced=self._forced)

    def transition_to(self, state: CircuitState, *, reason: str = "manual") -> None:
        """Enter ``state`` afresh now (an open breaker then waits ``wait_open`` again).

        Outcomes of calls in flight are dropped; a forced breaker is released.
        """
        with self._bookkeeping() as (now, events):
            self._forced = False
            self._transition(state, now, reason, events)

    def reset(self) -> None:
        """Back to a fresh closed breaker: empty window, no count of refusals."""
        with self._bookkeeping() as (now, events):
            self._forced = False
            self._not_permitted = 0
            self._transition(CircuitState.CLOSED, now, "reset", events)

    def force_open(self) -> None:
        """Open the breaker and hold it open until `reset` or `transition_to`."""
        with self._bookkeeping() as (now, events):
            self._forced = True
            self._transition(CircuitState.OPEN, now, "forced open", events)


class CircuitRegistry:
    """Breakers by name, so every caller of one service shares one breaker.

    Example:
        >>> registry = CircuitRegistry()
        >>> registry.get("veo") is registry.get("veo")
        True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, name: str, settings: CircuitSettings | None = None) -> CircuitBreaker:
        """The breaker called ``name``, made with ``settings`` (or the defaults) if new.

        Raises:
            avgen.errors.UsageError: ``settings`` differ from those of the existing breaker.
        """
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._breakers[name] = CircuitBreaker(name, settings)
            elif settings is not None and settings != breaker.settings:
                raise UsageError("settings", f"circuit {name!r} already exists with other "
                                 f"settings ({breaker.settings!r})")
            return breaker

    def names(self) -> list[str]:
        """The names of the breakers made so far, sorted."""
        with self._lock:
            return sorted(self._breakers)

    def clear(self) -> None:
        """Forget every breaker (breakers already handed out keep working)."""
        with self._lock:
            self._breakers.clear()

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._breakers


def circuit(name: str, *, registry: CircuitRegistry | None = None,
            **settings: Any) -> CircuitBreaker:
    """A circuit breaker called ``name``, as a decorator.

    Without ``registry`` the breaker is new and belongs to what it decorates (decorate
    several functions with the one returned object to share it); with a registry, every
    caller of ``circuit`` with the same name gets the same breaker.

    Args:
        name: The breaker's name (its events' source).
        registry: Where to find or put the breaker (e.g. ``VideoGenerator.breakers``).
        **settings: `CircuitSettings` fields for a new breaker; given for an existing one,
            they must match its settings.

    Returns:
        The `CircuitBreaker`; decorating a function with it returns a wrapper with
        ``.breaker``.

    Raises:
        avgen.errors.UsageError: An unknown or out-of-range setting, or settings that
            conflict with the existing breaker of that name.
    """
    _check_names(settings)
    chosen = CircuitSettings(**settings) if settings else None
    if registry is None:
        return CircuitBreaker(name, chosen)
    return registry.get(name, chosen)
