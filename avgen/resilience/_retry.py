"""Retries with exponential backoff for calls to remote services, built on stamina.

`retry` wraps a sync or async function (or method). Each failure is sorted by `classify`:

- **transient** — HTTP 408/500/502/503/504, timeouts, dropped connections,
  `avgen.errors.ServiceUnavailable`: retried with stamina's exponential backoff and jitter
  (``wait_initial``, ``wait_exp_base``, ``wait_jitter``, ``wait_max``), within the
  ``attempts`` and the ``timeout`` budget stamina enforces;
- **rate_limited** — HTTP 429, `avgen.errors.RateLimited`: retried like a transient error;
- **permanent** — every other error, including `avgen.errors.CircuitOpen` (an open circuit
  means fail fast): raised at once.

A delay the service asked for (a ``Retry-After`` header, Google's ``RetryInfo.retryDelay``,
the ``retry_after`` of `avgen.errors.RateLimited` or `avgen.errors.ServiceUnavailable`), on a
429 or a 503 alike, replaces the backoff, and the next attempt never starts earlier than
asked. When the delay is longer than ``wait_max`` or than the time budget left, retrying
stops at once: a rate limit is then raised as `avgen.errors.RateLimited` saying when to come
back (in seconds and as a UTC time) and carrying the delay in ``retry_after``; any other
error is raised as it is. A rate limit that is still there when the attempts run out is
raised as `avgen.errors.RateLimited` too.

stamina does the retrying, the backoff, the time budget and the test mode; this module adds
what it lacks: the classification, the delays services ask for, and `RateLimited` carrying
that delay when retrying ends. Each retry is reported as a ``retry.attempt`` event when it
starts (with the seconds actually waited, and the delay the service asked for, if any), the
end of the road as a ``retry.giveup`` event (see `avgen.resilience.ResilienceEvent`).

In tests, `set_testing` (stamina's test mode) turns every wait into zero.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import datetime as dt
import functools
import inspect
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any, Literal, ParamSpec, TypeAlias, TypeVar, cast

import attrs
import stamina

from avgen._validate import number, number_validator
from avgen.errors import CircuitOpen, ContentRejected, RateLimited, ServiceUnavailable, UsageError
from avgen.resilience._events import Hook, ResilienceEvent, emit

__all__ = ["RetryPolicy", "classify", "retry", "retryable", "set_testing"]

P = ParamSpec("P")
T = TypeVar("T")

Classification: TypeAlias = Literal["transient", "permanent", "rate_limited"]
"""How `classify` sorts an error."""

RetryOn: TypeAlias = (
    type[BaseException]
    | tuple[type[BaseException], ...]
    | Callable[[Exception], "bool | float | dt.timedelta"]
)
"""What may be retried: exception types, or a predicate returning a bool or a delay."""

_TRANSIENT_STATUS = frozenset({408, 500, 502, 503, 504})
_GRPC_STATUS = {"RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
                "INTERNAL": 500}
_CONNECTION_NAMES = ("ConnectError", "ConnectionError", "RemoteProtocolError")
_DELAY_TEXT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*s?\s*")
_NO_CAP = 2**31


# --------------------------------------------------------------------------- classification


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, read duck-typed, or None.

    Looks at ``exc.code`` (google-genai's ``APIError``), ``exc.status_code``,
    ``exc.response.status_code`` (httpx, requests) and, failing those, a gRPC status name in
    ``exc.status`` such as ``"RESOURCE_EXHAUSTED"``.
    """
    response = getattr(exc, "response", None)
    for value in (getattr(exc, "code", None), getattr(exc, "status_code", None),
                  getattr(response, "status_code", None), getattr(exc, "status", None)):
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
            return value
    status = getattr(exc, "status", None)
    if isinstance(status, str):
        return _GRPC_STATUS.get(status.strip().upper())
    return None


def classify(exc: BaseException) -> Classification:
    """Sort an error into ``"transient"``, ``"rate_limited"`` or ``"permanent"``.

    Args:
        exc: The error a call raised.

    Returns:
        ``"rate_limited"`` for HTTP 429 and `avgen.errors.RateLimited`; ``"transient"`` for
        HTTP 408/500/502/503/504, `TimeoutError` and any class named like ``*Timeout*``
        (httpx's ``ReadTimeout``), `ConnectionError` and classes named like
        ``*ConnectError*``, ``*ConnectionError*`` or ``*RemoteProtocolError*``, and
        `avgen.errors.ServiceUnavailable` except `avgen.errors.CircuitOpen`;
        ``"permanent"`` for everything else (other 4xx and 5xx, `ContentRejected`,
        `UsageError`, unknown errors).
    """
    if isinstance(exc, CircuitOpen):
        return "permanent"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, ServiceUnavailable):
        return "transient"
    if isinstance(exc, ContentRejected | UsageError):
        return "permanent"
    status = http_status(exc)
    if status is not None:
        if status == 429:
            return "rate_limited"
        return "transient" if status in _TRANSIENT_STATUS else "permanent"
    if isinstance(exc, TimeoutError | ConnectionError):
        return "transient"
    for klass in type(exc).__mro__:
        name = klass.__name__
        if "Timeout" in name or any(part in name for part in _CONNECTION_NAMES):
            return "transient"
    return "permanent"


def retryable(exc: Exception) -> bool:
    """The default ``on=`` predicate of `retry`: everything `classify` calls not permanent."""
    return classify(exc) != "permanent"


def server_delay(exc: BaseException) -> float | None:
    """The delay, in seconds, a service asked for before the next call, or None.

    Reads a ``retry_after`` attribute in seconds (`avgen.errors.RateLimited` and
    `avgen.errors.ServiceUnavailable` carry one), Google's ``RetryInfo.retryDelay`` in the
    parsed error body ``exc.details`` (``"7s"``, ``"1.5s"``), and the ``Retry-After`` header
    of ``exc.headers`` or ``exc.response.headers`` (seconds or an HTTP date), whatever the
    status (a 429 or a 503). When several are present, the longest wins.
    """
    found: list[float] = []
    own = getattr(exc, "retry_after", None)
    if isinstance(own, int | float) and not isinstance(own, bool):
        found.append(float(own))
    found.extend(_retry_info_delays(getattr(exc, "details", None)))
    header = _retry_after_header(exc)
    if header is not None:
        found.append(header)
    usable = [d for d in found if math.isfinite(d) and d >= 0]
    return max(usable) if usable else None


def _retry_info_delays(body: object, depth: int = 0) -> Iterator[float]:
    """Every ``retryDelay`` of a ``google.rpc.RetryInfo`` found in a parsed error body."""
    if depth > 5:
        return
    if isinstance(body, Mapping):
        if str(body.get("@type", "")).endswith("RetryInfo"):
            delay = _parse_duration(body.get("retryDelay"))
            if delay is not None:
                yield delay
        for value in body.values():
            if isinstance(value, Mapping | list | tuple):
                yield from _retry_info_delays(value, depth + 1)
    elif isinstance(body, list | tuple):
        for item in body:
            yield from _retry_info_delays(item, depth + 1)


def _parse_duration(value: object) -> float | None:
    """A protobuf JSON duration (``"7s"``, ``"1.5s"``, ``{"seconds": 7}``) in seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and (match := _DELAY_TEXT.fullmatch(value)):
        return float(match.group(1))
    if isinstance(value, Mapping):
        try:
            return float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError):
            return None
    return None


def _retry_after_header(exc: BaseException) -> float | None:
    """The ``Retry-After`` header of the error's response, in seconds from now."""
    headers = getattr(exc, "headers", None)
    if headers is None:
        headers = getattr(getattr(exc, "response", None), "headers", None)
    value: object = None
    if isinstance(headers, Mapping) or hasattr(headers, "items"):
        for key, item in cast(Mapping[object, object], headers).items():
            if isinstance(key, str) and key.lower() == "retry-after":
                value = item
                break
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


# --------------------------------------------------------------------------- policy


def _hook_tuple(hooks: Iterable[Hook]) -> tuple[Hook, ...]:
    return tuple(hooks)


_NOT_NEGATIVE = number_validator(low=0)


@attrs.frozen
class RetryPolicy:
    """The settings of one `retry` decorator (exposed as ``.retry_policy``)."""

    on: RetryOn = retryable
    """What is retried: exception types, or a predicate returning a bool or a delay."""
    attempts: int = attrs.field(default=5, validator=number_validator(integer=True, low=1))
    """The most calls made in all, the first one included."""
    timeout: float | None = attrs.field(default=60.0, validator=number_validator(
        low=0, low_inclusive=False, optional=True))
    """The time budget in seconds for all attempts and waits; None for no budget."""
    wait_initial: float = attrs.field(default=0.5, validator=_NOT_NEGATIVE)
    """The backoff before the first retry, in seconds (before jitter)."""
    wait_max: float = attrs.field(default=20.0, validator=_NOT_NEGATIVE)
    """The longest wait between two attempts: the backoff is capped at it, and a longer
    delay asked for by the service stops the retries (never retrying earlier than asked)."""
    wait_jitter: float = attrs.field(default=1.0, validator=_NOT_NEGATIVE)
    """The largest random amount added to each exponential backoff."""
    wait_exp_base: float = attrs.field(default=2.0, validator=number_validator(low=1))
    """The factor by which the backoff grows after each retry."""
    hooks: tuple[Hook, ...] = attrs.field(default=(), converter=_hook_tuple)
    """Where ``retry.attempt`` and ``retry.giveup`` events go (besides `collect` blocks)."""
    name: str | None = None
    """The event source and the agent named in `RateLimited`; the function's qualified name
    when None."""

    def __attrs_post_init__(self) -> None:
        on_ok = callable(self.on) or (
            isinstance(self.on, tuple)
            and all(isinstance(t, type) and issubclass(t, BaseException) for t in self.on))
        if not on_ok:
            raise UsageError("on", "must be an exception type, a tuple of them, or a "
                             f"predicate taking an exception; got {self.on!r}")
        if not all(callable(h) for h in self.hooks):
            raise UsageError("hooks", "must be callables taking a ResilienceEvent")

    def verdict(self, exc: Exception) -> bool | float:
        """Whether ``exc`` may be retried: False, True, or a delay asked for by ``on``."""
        if not callable(self.on) or (isinstance(self.on, type)
                                     and issubclass(self.on, BaseException)):
            return isinstance(exc, self.on)
        answer = cast(Callable[[Exception], "bool | float | dt.timedelta"], self.on)(exc)
        if isinstance(answer, dt.timedelta):
            return answer.total_seconds()
        if isinstance(answer, bool) or not isinstance(answer, int | float):
            return bool(answer)
        return float(answer)


# --------------------------------------------------------------------------- testing switch


def set_testing(enabled: bool = True, *, attempts: int | None = None
                ) -> contextlib.AbstractContextManager[None]:
    """Switch test mode on or off: every wait becomes zero, no real sleeping happens.

    This is `stamina.set_testing` with the attempts capped rather than set: a policy with
    fewer attempts keeps its own.

    Args:
        enabled: True to turn test mode on, False to turn it off.
        attempts: In test mode, at most this many attempts per call (each policy keeps its
            own ``attempts`` when it is lower); None keeps every policy's own.

    Returns:
        A context manager that restores the previous mode on exit; the new mode is already
        in force whether or not it is entered.

    Example:
        >>> with set_testing(True, attempts=2):
        ...     pass
    """
    number("attempts", attempts, integer=True, low=1, optional=True)
    return stamina.set_testing(enabled, attempts=attempts or _NO_CAP, cap=True)


# --------------------------------------------------------------------------- one call


class _Call:
    """The bookkeeping of one decorated call across its attempts: what stamina is told
    after each failure, and what the events and `RateLimited` say."""

    __slots__ = ("attempt", "failed_at", "pending", "policy", "reason", "server_delay",
                 "source", "start", "too_long")

    def __init__(self, policy: RetryPolicy, source: str) -> None:
        self.policy = policy
        self.source = source
        self.start = time.monotonic()
        self.attempt = 0
        self.reason: str | None = None
        self.server_delay: float | None = None
        self.too_long: tuple[float, str, dt.datetime] | None = None
        """A delay asked for that retrying could not honour: the delay, the limit it went
        past, and when the service may be called again."""
        self.pending: dict[str, Any] | None = None
        self.failed_at = 0.0

    def begin(self, number: int) -> None:
        """Attempt ``number`` starts: report the retry it is, with the time waited."""
        self.attempt = number
        if self.pending is not None:
            data = {**self.pending, "delay": time.monotonic() - self.failed_at}
            self.pending = None
            emit(ResilienceEvent("retry.attempt", self.source, data), self.policy.hooks)

    def decide(self, exc: BaseException) -> bool | float:
        """stamina's ``on=`` hook: False to stop, True for stamina's backoff, or the delay
        asked for (by the service, or by ``on``), which is never shortened: a delay longer
        than ``wait_max`` or than the time budget left stops the retries."""
        if not isinstance(exc, Exception):
            return False
        verdict = self.policy.verdict(exc)
        asked = server_delay(exc)
        if asked is not None:
            self.server_delay = asked
        if verdict is False:
            self.reason = "not retryable"
            return False
        requested = asked if verdict is True else float(verdict)
        if requested is not None:
            limit = self._limit(requested)
            if limit is not None:
                self.reason, why = limit
                self.too_long = (requested, why,
                                 dt.datetime.now(dt.UTC) + dt.timedelta(seconds=requested))
                return False
        self.failed_at = time.monotonic()
        self.pending = {"attempt": self.attempt, "error": _describe(exc),
                        "classification": classify(exc)}
        if requested is None:
            return True
        self.pending["requested"] = requested
        return requested

    def _limit(self, requested: float) -> tuple[str, str] | None:
        """Why waiting ``requested`` seconds is not possible (the giveup reason, and the
        limit in words), or None when it is."""
        policy = self.policy
        if requested > policy.wait_max:
            return ("delay exceeds wait_max",
                    f"the longest wait allowed (wait_max={policy.wait_max:g} s)")
        if policy.timeout is not None:
            remaining = policy.timeout - (time.monotonic() - self.start)
            if requested > remaining:
                return ("delay exceeds time budget",
                        f"the retry budget left ({max(0.0, remaining):.3g} s of "
                        f"timeout={policy.timeout:g} s)")
        return None

    def give_up(self, exc: Exception) -> Exception | None:
        """Report the end and return what to raise instead of ``exc``, if anything."""
        timeout = self.policy.timeout
        if self.reason is not None:
            reason = self.reason
        elif self.attempt >= self.policy.attempts or stamina.is_testing():
            reason = "attempts exhausted"
        elif timeout is not None:
            # a retryable error with attempts left: only the time budget stops stamina,
            # once it is spent or (stamina 26.2 and later) when the next backoff would
            # end after it
            reason = "time budget spent"
        else:
            reason = "attempts exhausted"
        kind = classify(exc)
        delay = self.too_long[0] if self.too_long is not None else self.server_delay
        data: dict[str, Any] = {"attempt": self.attempt, "error": _describe(exc),
                                "classification": kind, "reason": reason}
        if delay is not None:
            data["delay"] = delay
        emit(ResilienceEvent("retry.giveup", self.source, data), self.policy.hooks)
        if kind != "rate_limited":
            return None
        agent = exc.agent if isinstance(exc, RateLimited) and exc.agent else self.source
        if self.too_long is not None:
            asked, why, when = self.too_long
            return RateLimited(f"rate limited: the service asked to wait {asked:g} s, longer "
                               f"than {why}; {_come_back(asked, when)}", agent=agent,
                               retry_after=asked)
        if isinstance(exc, RateLimited):
            return None
        message = f"still rate limited after {self.attempt} attempt(s) ({reason})"
        if delay is not None:
            when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
            message += f"; {_come_back(delay, when)}"
        return RateLimited(message, agent=agent, retry_after=delay)


def _come_back(delay: float, when: dt.datetime) -> str:
    """When to call again, in words: ``come back in 90 s (after 2025-05-01 12:01:30 UTC)``;
    the time is rounded up to the second, so it is never earlier than asked."""
    if when.microsecond:
        when = when.replace(microsecond=0) + dt.timedelta(seconds=1)
    return f"come back in {delay:g} s (after {when:%Y-%m-%d %H:%M:%S} UTC)"


# --------------------------------------------------------------------------- the decorator


class RetryDecorator:
    """What `retry` returns: apply it to a sync or async function or method."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.retry_policy = policy
        """The settings, as a frozen `RetryPolicy`."""

    def _stamina_kw(self, call: _Call) -> dict[str, Any]:
        p = self.retry_policy
        return {"on": call.decide, "attempts": p.attempts, "timeout": p.timeout,
                "wait_initial": p.wait_initial, "wait_max": p.wait_max,
                "wait_jitter": p.wait_jitter, "wait_exp_base": p.wait_exp_base}

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Wrap ``fn``; the wrapper keeps its name and docstring and has ``.retry_policy``."""
        source = self.retry_policy.name or str(getattr(fn, "__qualname__", repr(fn)))
        wrapper: Callable[..., Any]
        if inspect.iscoroutinefunction(fn):
            async_fn = cast(Callable[..., Any], fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = _Call(self.retry_policy, source)
                try:
                    async for attempt in stamina.retry_context(**self._stamina_kw(call)):
                        call.begin(attempt.num)
                        with attempt:
                            return await async_fn(*args, **kwargs)
                except Exception as exc:
                    replacement = call.give_up(exc)
                    if replacement is None:
                        raise
                    raise replacement from exc
                raise AssertionError("unreachable")  # pragma: no cover

            wrapper = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                call = _Call(self.retry_policy, source)
                try:
                    for attempt in stamina.retry_context(**self._stamina_kw(call)):
                        call.begin(attempt.num)
                        with attempt:
                            return fn(*args, **kwargs)
                except Exception as exc:
                    replacement = call.give_up(exc)
                    if replacement is None:
                        raise
                    raise replacement from exc
                raise AssertionError("unreachable")  # pragma: no cover

            wrapper = sync_wrapper
        cast(Any, wrapper).retry_policy = self.retry_policy
        return cast(Callable[P, T], wrapper)


def retry(
    *,
    on: RetryOn = retryable,
    attempts: int = 5,
    timeout: float | None = 60.0,
    wait_initial: float = 0.5,
    wait_max: float = 20.0,
    wait_jitter: float = 1.0,
    wait_exp_base: float = 2.0,
    hooks: Sequence[Hook] = (),
    name: str | None = None,
) -> RetryDecorator:
    """Retry a sync or async function (or method) on transient and rate-limit errors.

    stamina retries: the backoff before retry *n* is ``min(wait_max, wait_initial *
    wait_exp_base**(n-1) + random(0, wait_jitter))``, and no retry starts once ``timeout``
    seconds have passed. A delay the service asks for (``Retry-After`` or
    ``RetryInfo.retryDelay``, on a 429 or a 503 alike, or a number returned by ``on``)
    replaces the backoff and is never shortened: if it is longer than ``wait_max`` or than
    the budget left, retrying stops at once. A rate-limit error that ends the retries is
    raised as `avgen.errors.RateLimited` (chained from the original) carrying the delay
    asked for in ``retry_after`` and saying when to come back (in seconds and as a UTC
    time); any other error is raised unchanged. `avgen.errors.CircuitOpen` is never
    retried.

    Never combine with an SDK's own retries (google-genai's ``HttpRetryOptions``, httpx
    transports with ``retries=``): exactly one layer retries, or attempts multiply.
    Do not wrap a paid submit whose outcome is ambiguous after a timeout: retry the polling.

    Args:
        on: What is retried: exception types, or a predicate taking the exception and
            returning a bool, or a delay in seconds (float or timedelta) to wait instead of
            the backoff. Default: `retryable` (not `classify`-ed permanent).
        attempts: The most calls in all, the first included.
        timeout: The time budget in seconds for all attempts and waits; None for none.
        wait_initial: The backoff before the first retry, before jitter.
        wait_max: The longest single wait: the backoff is capped at it, and a longer delay
            asked for by the service stops the retries.
        wait_jitter: The largest random amount added to each backoff.
        wait_exp_base: The growth factor of the backoff.
        hooks: Callables receiving ``retry.attempt`` events as each retry starts (data:
            ``attempt`` that failed, ``delay`` waited in seconds, ``requested`` when the
            service asked for a delay, ``error``, ``classification``) and ``retry.giveup``
            events (data: ``attempt``, ``error``, ``classification``, ``reason``, ``delay``
            when known).
        name: The event source and agent name; the function's qualified name by default.

    Returns:
        The decorator; it and the functions it wraps expose ``.retry_policy``.

    Raises:
        avgen.errors.UsageError: A setting is out of range.

    Example:
        >>> @retry(attempts=3, name="gemini")
        ... async def write(prompt: str) -> str: ...
        >>> write.retry_policy.attempts
        3
    """
    return RetryDecorator(RetryPolicy(
        on=on, attempts=attempts, timeout=timeout, wait_initial=wait_initial,
        wait_max=wait_max, wait_jitter=wait_jitter, wait_exp_base=wait_exp_base,
        hooks=tuple(hooks), name=name))
