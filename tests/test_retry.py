"""Tests of avgen.resilience._retry: classification, backoff, Retry-After, RetryInfo, giving up.

Test mode (`set_testing`) removes the sleeping; the delays retry *computed* are checked
through the ``retry.attempt`` events. The fake errors mimic google-genai's ``APIError``
shape (``code``, ``status``, ``details``, ``response.headers``) without importing it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Iterator
from email.utils import format_datetime
from typing import Any

import attrs
import pytest
import stamina
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen.errors import (
    CircuitOpen,
    ContentRejected,
    RateLimited,
    ServiceUnavailable,
    UsageError,
)
from avgen.resilience import (
    CircuitBreaker,
    ResilienceEvent,
    RetryPolicy,
    classify,
    collect,
    retry,
    set_testing,
)
from avgen.resilience._retry import server_delay

# --------------------------------------------------------------------------- fakes


class FakeResponse:
    def __init__(self, status_code: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = headers or {}


class FakeAPIError(Exception):
    """Shaped like google-genai's errors.APIError."""

    def __init__(self, code: int, status: str = "", details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.code = code
        self.status = status
        self.details = details if details is not None else {}
        self.response = FakeResponse(code, headers)
        super().__init__(f"{code} {status}")


def google_429(delay: str) -> FakeAPIError:
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                      "details": [
                          {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                          {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                           "retryDelay": delay}]}}
    return FakeAPIError(429, "RESOURCE_EXHAUSTED", details=body)


class ReadTimeout(Exception):  # named like httpx's
    pass


class TimeoutException(Exception):
    pass


class PoolTimeout(TimeoutException):  # the name matches through the MRO
    pass


class ConnectError(Exception):
    pass


class RemoteProtocolError(Exception):
    pass


class StatusCodeError(Exception):
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        super().__init__(status_code)


class Flaky:
    """Raises the given errors in turn, then returns "ok"; counts calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


@pytest.fixture(autouse=True)
def testing() -> Iterator[None]:
    with set_testing(True):
        yield


def attempts(events: list[ResilienceEvent]) -> list[dict[str, Any]]:
    return [dict(e.data) for e in events if e.kind == "retry.attempt"]


def giveups(events: list[ResilienceEvent]) -> list[dict[str, Any]]:
    return [dict(e.data) for e in events if e.kind == "retry.giveup"]


# --------------------------------------------------------------------------- classify


@pytest.mark.parametrize(("exc", "expected"), [
    (FakeAPIError(429), "rate_limited"),
    (RateLimited("quota"), "rate_limited"),
    (FakeAPIError(408), "transient"),
    (FakeAPIError(500), "transient"),
    (FakeAPIError(502), "transient"),
    (FakeAPIError(503), "transient"),
    (FakeAPIError(504), "transient"),
    (StatusCodeError(503), "transient"),
    (TimeoutError(), "transient"),
    (asyncio.TimeoutError(), "transient"),  # noqa: UP041 (the alias, on purpose)
    (ReadTimeout(), "transient"),
    (PoolTimeout(), "transient"),
    (ConnectionResetError(), "transient"),
    (ConnectError(), "transient"),
    (RemoteProtocolError(), "transient"),
    (ServiceUnavailable("down"), "transient"),
    (CircuitOpen("open", remaining=3.0), "permanent"),
    (FakeAPIError(400), "permanent"),
    (FakeAPIError(401), "permanent"),
    (FakeAPIError(403), "permanent"),
    (FakeAPIError(404), "permanent"),
    (FakeAPIError(501), "permanent"),
    (StatusCodeError(422), "permanent"),
    (ContentRejected("unsafe"), "permanent"),
    (UsageError("field", "bad"), "permanent"),
    (ValueError("nope"), "permanent"),
    (KeyError("x"), "permanent"),
])
def test_classify(exc: BaseException, expected: str) -> None:
    assert classify(exc) == expected


def test_classify_reads_response_status_and_grpc_status() -> None:
    class HTTPStatusError(Exception):
        def __init__(self, status: int) -> None:
            self.response = FakeResponse(status)

    class Grpc(Exception):
        status = "RESOURCE_EXHAUSTED"

    assert classify(HTTPStatusError(429)) == "rate_limited"
    assert classify(HTTPStatusError(404)) == "permanent"
    assert classify(Grpc()) == "rate_limited"


# --------------------------------------------------------------------------- server delays


def test_server_delay_sources() -> None:
    assert server_delay(FakeAPIError(429, headers={"Retry-After": "2"})) == 2.0
    assert server_delay(FakeAPIError(429, headers={"retry-after": "0.5"})) == 0.5
    assert server_delay(google_429("7s")) == 7.0
    assert server_delay(google_429("1.5s")) == 1.5
    assert server_delay(google_429({"seconds": 3, "nanos": 500_000_000})) == 3.5  # type: ignore[arg-type]
    assert server_delay(RateLimited("q", retry_after=4.0)) == 4.0
    assert server_delay(ServiceUnavailable("down", retry_after=6.0)) == 6.0
    assert server_delay(ServiceUnavailable("down")) is None
    assert server_delay(FakeAPIError(503, headers={"Retry-After": "8"})) == 8.0
    assert server_delay(FakeAPIError(503, details=google_429("2s").details)) == 2.0
    assert server_delay(FakeAPIError(429)) is None
    assert server_delay(FakeAPIError(429, headers={"Retry-After": "soon"})) is None
    assert server_delay(FakeAPIError(429, headers={"Retry-After": "-3"})) == 0.0
    assert server_delay(ValueError()) is None
    both = FakeAPIError(429, details=google_429("3s").details, headers={"Retry-After": "5"})
    assert server_delay(both) == 5.0  # the longest wins


def test_server_delay_http_date() -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    delay = server_delay(FakeAPIError(429, headers={"Retry-After": format_datetime(
        when, usegmt=True)}))
    assert delay is not None and 28.0 < delay <= 30.0
    past = format_datetime(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), usegmt=True)
    assert server_delay(FakeAPIError(429, headers={"Retry-After": past})) == 0.0


# --------------------------------------------------------------------------- sync behaviour


def test_transient_errors_are_retried_then_succeed() -> None:
    flaky = Flaky(FakeAPIError(503), ReadTimeout(), ConnectionResetError())
    wrapped = retry(attempts=5, wait_initial=0.5, wait_exp_base=2, wait_jitter=0,
                    name="svc")(flaky)
    with collect() as events:
        assert wrapped() == "ok"
    assert flaky.calls == 4
    seen = attempts(events)
    assert [a["attempt"] for a in seen] == [1, 2, 3]
    assert all(a["delay"] >= 0 and "requested" not in a for a in seen)  # stamina's backoff
    assert {a["classification"] for a in seen} == {"transient"}
    assert seen[0]["error"].startswith("FakeAPIError: 503")
    assert {e.source for e in events} == {"svc"}
    assert giveups(events) == []


def test_stamina_does_the_backoff_with_the_wait_settings() -> None:
    # outside test mode the waits are real: each is at least the exponential backoff
    flaky = Flaky(*[FakeAPIError(500) for _ in range(3)])
    wrapped = retry(attempts=4, wait_initial=0.02, wait_exp_base=2, wait_jitter=0,
                    wait_max=1, timeout=None)(flaky)
    with set_testing(False), collect() as events:
        assert wrapped() == "ok"
    delays = [a["delay"] for a in attempts(events)]
    assert len(delays) == 3
    for n, delay in enumerate(delays, start=1):
        assert delay >= 0.02 * 2 ** (n - 1) * 0.999


def test_permanent_errors_are_not_retried() -> None:
    for error in (FakeAPIError(400), ContentRejected("no"), ValueError("bad"),
                  CircuitOpen("open", remaining=1.0)):
        flaky = Flaky(error)
        with collect() as events, pytest.raises(type(error)) as info:
            retry()(flaky)()
        assert info.value is error
        assert flaky.calls == 1
        assert attempts(events) == []
        [giveup] = giveups(events)
        assert giveup["reason"] == "not retryable" and giveup["attempt"] == 1


def test_transient_exhausted_raises_the_last_error() -> None:
    last = FakeAPIError(503, "last")
    flaky = Flaky(FakeAPIError(503), FakeAPIError(503), last)
    with collect() as events, pytest.raises(FakeAPIError) as info:
        retry(attempts=3)(flaky)()
    assert info.value is last and flaky.calls == 3
    assert len(attempts(events)) == 2
    [giveup] = giveups(events)
    assert giveup["reason"] == "attempts exhausted" and giveup["attempt"] == 3


def test_retry_after_is_the_delay() -> None:
    flaky = Flaky(FakeAPIError(429, headers={"Retry-After": "2"}))
    with collect() as events:
        assert retry(wait_max=20)(flaky)() == "ok"
    assert flaky.calls == 2
    [seen] = attempts(events)
    assert seen["requested"] == 2.0 and seen["classification"] == "rate_limited"


def come_back_at(error: RateLimited) -> dt.datetime:
    """The UTC time a `RateLimited` message says to come back after."""
    match = re.search(r"after (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", str(error))
    assert match, str(error)
    return dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)


def test_a_delay_longer_than_wait_max_is_not_shortened_it_stops_the_retries() -> None:
    original = FakeAPIError(429, headers={"Retry-After": "30"})
    flaky = Flaky(original)
    before = dt.datetime.now(dt.UTC)
    with collect() as events, pytest.raises(RateLimited) as info:
        retry(wait_max=5, timeout=60, name="tts")(flaky)()
    after = dt.datetime.now(dt.UTC)
    assert flaky.calls == 1  # never retried earlier than asked
    assert attempts(events) == []
    [giveup] = giveups(events)
    assert giveup["reason"] == "delay exceeds wait_max" and giveup["delay"] == 30.0
    error = info.value
    assert error.retry_after == 30.0 and error.agent == "tts"
    assert error.__cause__ is original
    assert "come back in 30 s" in str(error) and "wait_max=5 s" in str(error)
    when = come_back_at(error)
    assert before + dt.timedelta(seconds=30) <= when + dt.timedelta(microseconds=999_999)
    assert when <= after + dt.timedelta(seconds=31)


def test_retry_after_beyond_the_budget_raises_rate_limited_at_once() -> None:
    original = FakeAPIError(429, headers={"Retry-After": "120"})
    flaky = Flaky(original)
    with collect() as events, pytest.raises(RateLimited) as info:
        retry(timeout=60, wait_max=300, name="gemini")(flaky)()
    assert flaky.calls == 1
    assert info.value.retry_after == 120.0
    assert info.value.agent == "gemini"
    assert info.value.__cause__ is original
    assert "come back in 120 s" in str(info.value) and "timeout=60 s" in str(info.value)
    assert attempts(events) == []
    [giveup] = giveups(events)
    assert giveup["reason"] == "delay exceeds time budget" and giveup["delay"] == 120.0


def test_a_rate_limited_error_asking_too_long_says_when_to_come_back() -> None:
    original = RateLimited("quota exceeded (429)", agent="gemini-tts", retry_after=90.0)
    flaky = Flaky(original)
    with pytest.raises(RateLimited) as info:
        retry(wait_max=60, name="narrator")(flaky)()
    assert flaky.calls == 1
    assert info.value is not original and info.value.__cause__ is original
    assert info.value.agent == "gemini-tts" and info.value.retry_after == 90.0
    assert str(info.value).startswith("gemini-tts: rate limited: the service asked to wait 90 s")
    assert "come back in 90 s" in str(info.value)


def test_a_503_with_retry_after_waits_as_asked() -> None:
    flaky = Flaky(FakeAPIError(503, "UNAVAILABLE", headers={"Retry-After": "9"}),
                  ServiceUnavailable("down", agent="svc", retry_after=4.5))
    with collect() as events:
        assert retry(wait_max=20, timeout=60)(flaky)() == "ok"
    seen = attempts(events)
    assert [a["requested"] for a in seen] == [9.0, 4.5]
    assert {a["classification"] for a in seen} == {"transient"}


def test_a_503_asking_too_long_is_raised_as_it_is() -> None:
    original = ServiceUnavailable("down for maintenance", agent="svc", retry_after=3600.0)
    flaky = Flaky(original)
    with collect() as events, pytest.raises(ServiceUnavailable) as info:
        retry(wait_max=60, timeout=600)(flaky)()
    assert info.value is original and flaky.calls == 1
    [giveup] = giveups(events)
    assert giveup["reason"] == "delay exceeds wait_max" and giveup["delay"] == 3600.0


def test_retry_info_delay_is_honoured() -> None:
    flaky = Flaky(google_429("7s"), google_429("1.5s"))
    with collect() as events:
        assert retry()(flaky)() == "ok"
    assert [a["requested"] for a in attempts(events)] == [7.0, 1.5]


def test_rate_limited_when_attempts_run_out_carries_the_last_delay() -> None:
    flaky = Flaky(google_429("3s"), google_429("4s"), google_429("6s"))
    with pytest.raises(RateLimited) as info:
        retry(attempts=3)(flaky)()
    assert flaky.calls == 3
    assert info.value.retry_after == 6.0
    assert isinstance(info.value.__cause__, FakeAPIError)
    assert "come back in 6 s" in str(info.value)


def test_a_rate_limited_error_passes_through_unchanged() -> None:
    error = RateLimited("quota", agent="tts", retry_after=1.0)
    flaky = Flaky(error, error)
    with pytest.raises(RateLimited) as info:
        retry(attempts=2)(flaky)()
    assert info.value is error and flaky.calls == 2


def test_the_time_budget_stops_the_retries() -> None:
    flaky = Flaky(*[FakeAPIError(500) for _ in range(9)])
    with set_testing(False), collect() as events, pytest.raises(FakeAPIError):
        retry(attempts=10, timeout=0.05, wait_initial=0.03, wait_jitter=0)(flaky)()
    assert flaky.calls <= 3  # 0.03 + 0.06 s of backoff already exceed the 0.05 s budget
    assert giveups(events)[0]["reason"] == "time budget spent"


def test_custom_on_predicate_and_types() -> None:
    flaky = Flaky(KeyError("a"), KeyError("b"))
    with collect() as events:
        assert retry(on=lambda exc: 1.25 if isinstance(exc, KeyError) else False)(flaky)() == "ok"
    assert [a["requested"] for a in attempts(events)] == [1.25, 1.25]

    flaky = Flaky(KeyError("a"))
    assert retry(on=KeyError, wait_jitter=0)(flaky)() == "ok"
    assert flaky.calls == 2
    flaky = Flaky(ValueError("a"))
    with pytest.raises(ValueError):
        retry(on=(KeyError, IndexError))(flaky)()
    assert flaky.calls == 1


@given(asked=st.integers(min_value=0, max_value=200), wait_max=st.integers(1, 100),
       status=st.sampled_from([429, 503]))
@settings(max_examples=80, deadline=None)
def test_server_delay_property(asked: int, wait_max: int, status: int) -> None:
    # never retried earlier than asked: the delay is waited in full, or the retries stop
    flaky = Flaky(FakeAPIError(status, headers={"Retry-After": str(asked)}))
    wrapped = retry(timeout=1000, wait_max=wait_max)(flaky)
    with set_testing(True), collect() as events:
        if asked > wait_max:
            with pytest.raises(RateLimited if status == 429 else FakeAPIError) as info:
                wrapped()
            assert flaky.calls == 1 and attempts(events) == []
            assert giveups(events)[0]["delay"] == asked
            if isinstance(info.value, RateLimited):
                assert info.value.retry_after == asked
                assert f"come back in {asked} s" in str(info.value)
        else:
            assert wrapped() == "ok"
            assert [a["requested"] for a in attempts(events)] == [asked]
            assert flaky.calls == 2


# --------------------------------------------------------------------------- async, methods


def test_async_retries_and_rate_limit() -> None:
    calls = 0

    @retry(wait_initial=0.25, wait_jitter=0)
    async def fetch(x: int) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        if calls < 3:
            raise FakeAPIError(502)
        return x * 2

    with collect() as events:
        assert asyncio.run(fetch(21)) == 42
    assert calls == 3
    assert [a["attempt"] for a in attempts(events)] == [1, 2]

    @retry(timeout=10)
    async def limited() -> None:
        raise google_429("30s")

    with pytest.raises(RateLimited) as info:
        asyncio.run(limited())
    assert info.value.retry_after == 30.0


def test_async_permanent_not_retried() -> None:
    calls = 0

    @retry()
    async def bad() -> None:
        nonlocal calls
        calls += 1
        raise FakeAPIError(403)

    with pytest.raises(FakeAPIError):
        asyncio.run(bad())
    assert calls == 1


def test_methods_sync_and_async() -> None:
    class Client:
        """A client."""

        def __init__(self) -> None:
            self.calls = 0

        @retry(wait_jitter=0)
        def get(self, key: str) -> str:
            """Get a key."""
            self.calls += 1
            if self.calls == 1:
                raise FakeAPIError(503)
            return key.upper()

        @retry(wait_jitter=0)
        async def aget(self, key: str) -> str:
            self.calls += 1
            if self.calls % 2:
                raise ConnectError()
            return key

    client = Client()
    assert client.get("a") == "A" and client.calls == 2
    client.calls = 0
    assert asyncio.run(client.aget("b")) == "b" and client.calls == 2
    assert Client.get.__name__ == "get" and Client.get.__doc__ == "Get a key."
    assert Client.get.__qualname__.endswith("Client.get")


def test_wrapper_is_inspectable() -> None:
    decorator = retry(attempts=3, timeout=None, name="x")

    def work() -> int:
        """Doc."""
        return 1

    wrapped = decorator(work)
    assert wrapped.__wrapped__ is work  # type: ignore[attr-defined]
    assert wrapped.__doc__ == "Doc." and wrapped.__name__ == "work"
    policy = wrapped.retry_policy  # type: ignore[attr-defined]
    assert policy is decorator.retry_policy
    assert isinstance(policy, RetryPolicy) and policy.attempts == 3 and policy.timeout is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.attempts = 4  # type: ignore[misc]


@pytest.mark.parametrize("kwargs", [
    {"attempts": 0}, {"attempts": 1.5}, {"timeout": 0}, {"timeout": -1}, {"wait_max": -1},
    {"wait_initial": float("nan")}, {"wait_exp_base": 0.5}, {"on": 3}, {"hooks": [1]},
])
def test_bad_settings_are_usage_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError) as info:
        retry(**kwargs)
    assert info.value.field == next(iter(kwargs))


# --------------------------------------------------------------------------- hooks, testing


def test_hooks_receive_events_and_a_failing_hook_is_harmless() -> None:
    received: list[ResilienceEvent] = []

    def broken(event: ResilienceEvent) -> None:
        raise RuntimeError("hook bug")

    flaky = Flaky(FakeAPIError(503))
    assert retry(hooks=[received.append, broken], name="h")(flaky)() == "ok"
    assert [e.kind for e in received] == ["retry.attempt"]
    assert received[0].source == "h"


def test_set_testing_caps_attempts_and_restores() -> None:
    def always() -> Flaky:
        return Flaky(*[FakeAPIError(503) for _ in range(10)])

    flaky = always()
    with set_testing(True, attempts=2), collect() as events, pytest.raises(FakeAPIError):
        retry(attempts=5)(flaky)()
    assert flaky.calls == 2
    assert len(attempts(events)) == 1 and giveups(events)[0]["reason"] == "attempts exhausted"
    assert stamina.is_testing()  # the fixture's mode is back
    flaky = always()
    with pytest.raises(FakeAPIError):
        retry(attempts=5)(flaky)()
    assert flaky.calls == 5
    with set_testing(False):
        assert not stamina.is_testing()
    assert stamina.is_testing()
    with pytest.raises(UsageError):
        set_testing(True, attempts=0)


def test_circuit_open_stops_the_retries() -> None:
    breaker = CircuitBreaker("svc", minimum_calls=2, failure_rate_threshold=50, wait_open=60)
    flaky = Flaky(*[FakeAPIError(503) for _ in range(10)])
    wrapped = retry(attempts=5)(breaker(flaky))
    with collect() as events, pytest.raises(CircuitOpen):
        wrapped()
    assert flaky.calls == 2  # the third attempt was refused by the breaker, not retried
    assert [e.kind for e in events] == ["retry.attempt", "circuit.state", "retry.attempt",
                                        "circuit.rejected", "retry.giveup"]
