"""`monitored` times calls; `Monitor` watches the machine and keeps a run report.

`monitored` is cheap enough for every call (a few microseconds; it never calls psutil):
it times the call with `time.perf_counter`, notes the outcome and the size of the result,
emits a ``call`` event and feeds a `Monitor`'s report when given one::

    monitor = Monitor(thresholds=[Threshold("memory_percent", 90, clear_below=80)])

    @monitored("narration", monitor=monitor)
    async def speak(text: str) -> AudioAsset: ...

    with monitor:                     # samples CPU, memory, disk and network once a second
        ...
    print(monitor.report())           # per step: calls, seconds, failures, bytes; peaks

A `Monitor` samples in a daemon thread only between `Monitor.start` and `Monitor.stop`
(or inside ``with`` / ``async with``); `Monitor.tick` takes one sample synchronously.
Thresholds raise an ``alert`` event once when a metric reaches its limit and once more
when it falls back below ``clear_below`` — never repeatedly in between.

`otel_hook` forwards events to OpenTelemetry when its API package is installed.
"""

from __future__ import annotations

__docformat__ = "google"

import collections
import contextvars
import functools
import importlib
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePath
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

import attrs

from avgen._validate import number
from avgen.errors import ConfigurationError, UsageError
from avgen.resilience._events import Hook, ResilienceEvent, emit, has_listeners

__all__ = ["Monitor", "Threshold", "monitored", "otel_hook"]

_logger = logging.getLogger("avgen.resilience")
_P = ParamSpec("_P")
_R = TypeVar("_R")
Sampler = Callable[[], Mapping[str, float]]
"""Takes one sample: metric names mapped to values."""
METRICS = ("cpu_percent", "memory_percent", "rss_bytes", "disk_read_bytes",
           "disk_write_bytes", "net_sent_bytes", "net_recv_bytes")
"""What the default sampler measures (disk and network: bytes since the monitor started)."""


def _size_of(result: Any, size: Callable[[Any], int | None] | None) -> int | None:
    if size is not None:
        return size(result)
    if result is None:
        return None
    if isinstance(result, bytes | bytearray | str | list | tuple | dict | memoryview):
        return len(result)
    path = result if isinstance(result, PurePath) else getattr(result, "path", None)
    if isinstance(path, str | PurePath):
        try:
            return os.stat(path).st_size
        except OSError:
            return None
    try:
        return len(result)
    except TypeError:
        return None


def monitored(
    step: str | None = None, *,
    hooks: Iterable[Hook] = (),
    monitor: Monitor | None = None,
    size: Callable[[Any], int | None] | None = None,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Time each call and report it (a ``call`` event; a line in ``monitor``'s report).

    The event's data: ``seconds`` (float), ``ok`` (bool), ``error`` (the exception's type
    name, or ``None``) and ``size`` (``None`` when unknown): ``size(result)`` if given, else
    the length of bytes, strings and sequences, or the size of the file at
    ``result.path`` (or at ``result`` itself, a path). Sizes are only measured when
    someone listens. Exceptions — cancellation included — are recorded and re-raised.

    Args:
        step: The name in events and reports (default: the function's qualified name).
        hooks: Receive the ``call`` events.
        monitor: Gets every call for its `Monitor.report`.
        size: Measures a result (in bytes or items); its errors are logged, not raised.

    Raises:
        UsageError: ``@monitored`` without parentheses, or a generator function.
    """
    if callable(step):
        raise UsageError("step", "write @monitored() or @monitored('name'), with parentheses")
    hooks = tuple(hooks)

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise UsageError("func", f"cannot monitor the generator function "
                                     f"{func.__qualname__}")
        source = step or func.__qualname__

        def finish(seconds: float, error: BaseException | None, result: Any) -> None:
            listening = has_listeners(hooks)
            if monitor is None and not listening:
                return
            measured = None
            if error is None:
                try:
                    measured = _size_of(result, size)
                except Exception:
                    _logger.exception("monitored %s: size of the result failed", source)
            name = None if error is None else type(error).__name__
            if monitor is not None:
                monitor.record(source, seconds, ok=error is None, error=name, size=measured)
            if listening:
                emit(ResilienceEvent("call", source, {"seconds": seconds, "ok": error is None,
                                                      "error": name, "size": measured}), hooks)

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                try:
                    result = await func(*args, **kwargs)
                except BaseException as exc:
                    finish(time.perf_counter() - start, exc, None)
                    raise
                finish(time.perf_counter() - start, None, result)
                return result

            return cast("Callable[_P, _R]", awrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                finish(time.perf_counter() - start, exc, None)
                raise
            finish(time.perf_counter() - start, None, result)
            return result

        return cast("Callable[_P, _R]", wrapper)

    return decorate


def _check_clear_below(instance: Threshold, attribute: Any, value: float | None) -> None:
    if value is not None and value > instance.limit:
        raise UsageError("clear_below", f"must not exceed the limit ({value} > "
                                        f"{instance.limit}), or the alert could never clear")


@attrs.frozen
class Threshold:
    """An alert on one metric, with hysteresis.

    Raised once when the metric reaches ``limit`` (``value >= limit``), cleared once when
    it falls below ``clear_below`` — until then, samples above ``clear_below`` change nothing.
    """

    metric: str
    """A key of the samples, such as ``"memory_percent"`` (see `METRICS`)."""
    limit: float
    """The value that raises the alert."""
    clear_below: float | None = attrs.field(default=None, validator=_check_clear_below)
    """The value under which a raised alert clears (default: ``limit``)."""

    @property
    def reset_level(self) -> float:
        """``clear_below``, or ``limit`` when it is not set."""
        return self.limit if self.clear_below is None else self.clear_below


@attrs.define
class _Step:
    calls: int = 0
    failures: int = 0
    total: float = 0.0
    longest: float = 0.0
    size: int = 0
    errors: dict[str, int] = attrs.field(factory=dict)


class _PsutilSampler:
    """The default sampler: psutil, about 110 µs a sample (fine at 1 Hz, not per call)."""

    def __init__(self) -> None:
        self._psutil: Any = importlib.import_module("psutil")
        self._process = self._psutil.Process()
        self._primed = False
        self._disk0 = self._io(self._psutil.disk_io_counters)
        self._net0 = self._io(self._psutil.net_io_counters)

    @staticmethod
    def _io(counters: Callable[[], Any]) -> Any:
        try:
            return counters()
        except (OSError, RuntimeError):  # no disks or interfaces visible (containers)
            return None

    def __call__(self) -> dict[str, float]:
        ps = self._psutil
        sample: dict[str, float] = {}
        cpu = float(ps.cpu_percent(interval=None))
        if self._primed:  # the first reading is a meaningless 0.0
            sample["cpu_percent"] = cpu
        self._primed = True
        sample["memory_percent"] = float(ps.virtual_memory().percent)
        sample["rss_bytes"] = float(self._process.memory_info().rss)
        disk = self._io(ps.disk_io_counters)
        if disk is not None and self._disk0 is not None:
            sample["disk_read_bytes"] = float(disk.read_bytes - self._disk0.read_bytes)
            sample["disk_write_bytes"] = float(disk.write_bytes - self._disk0.write_bytes)
        net = self._io(ps.net_io_counters)
        if net is not None and self._net0 is not None:
            sample["net_sent_bytes"] = float(net.bytes_sent - self._net0.bytes_sent)
            sample["net_recv_bytes"] = float(net.bytes_recv - self._net0.bytes_recv)
        return sample


class Monitor:
    """Samples the machine in the background and keeps a report of monitored calls.

    Nothing runs until `start` (or ``with`` / ``async with``); `tick` samples once, in the
    caller's thread. The sampling thread runs in a copy of the context of `start`, so a
    `avgen.resilience.collect` block around ``start`` sees the alerts.

    Args:
        interval: Seconds between samples.
        thresholds: Alerts to raise and clear (see `Threshold`).
        hooks: Receive the ``alert`` events.
        clock: Timestamps the samples and measures the report's ``seconds``.
        sampler: Takes one sample (metric name → value); default psutil, measuring
            `METRICS`. Inject one in tests.
        max_samples: How many samples `samples` keeps (the oldest go first); peaks in the
            report cover every sample.
    """

    def __init__(self, interval: float = 1.0, thresholds: Iterable[Threshold] = (),
                 hooks: Iterable[Hook] = (), clock: Callable[[], float] = time.monotonic,
                 sampler: Sampler | None = None, max_samples: int = 3600) -> None:
        self.interval = float(number("interval", interval, low=0, low_inclusive=False))
        """Seconds between background samples."""
        number("max_samples", max_samples, integer=True, low=1)
        self.thresholds = tuple(thresholds)
        """The alerts watched."""
        self.hooks = tuple(hooks)
        """Receive the ``alert`` events."""
        self.samples: collections.deque[dict[str, float]] = collections.deque(
            maxlen=max_samples)
        """The latest samples, oldest first: each has ``time`` (from ``clock``) and metrics."""
        self._clock = clock
        self._sampler = sampler
        self._born = clock()
        self._lock = threading.Lock()
        self._steps: dict[str, _Step] = {}
        self._peaks: dict[str, float] = {}
        self._raised: set[int] = set()
        self._alerts: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Monitor:
        """Start sampling every ``interval`` seconds in a daemon thread (no-op if running)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return self
            self._stopping.clear()
            context = contextvars.copy_context()
            self._thread = threading.Thread(target=context.run, args=(self._run,),
                                            name="avgen-monitor", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop sampling and wait (up to ``timeout`` seconds) for the thread to end."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Monitor:
        return self.start()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.stop()  # the thread wakes at once: this does not hold the loop

    def _run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                _logger.exception("monitor: taking a sample failed")
            if self._stopping.wait(self.interval):
                return

    # -- samples and alerts -----------------------------------------------------------------

    def tick(self) -> dict[str, float]:
        """Take one sample now, in this thread; update peaks; raise or clear alerts.

        Returns:
            The sample (``time`` plus the metrics).
        """
        if self._sampler is None:
            self._sampler = _PsutilSampler()
        values = {name: float(value) for name, value in self._sampler().items()}
        sample = {"time": self._clock(), **values}
        changes: list[dict[str, Any]] = []
        with self._lock:
            self.samples.append(sample)
            for name, value in values.items():
                if value > self._peaks.get(name, float("-inf")):
                    self._peaks[name] = value
            for index, threshold in enumerate(self.thresholds):
                if threshold.metric not in values:
                    continue
                value = values[threshold.metric]
                if index not in self._raised and value >= threshold.limit:
                    self._raised.add(index)
                    state = "raised"
                elif index in self._raised and value < threshold.reset_level:
                    self._raised.discard(index)
                    state = "cleared"
                else:
                    continue
                change = {"metric": threshold.metric, "value": value,
                          "limit": threshold.limit, "state": state}
                changes.append(change)
                self._alerts.append({**change, "time": sample["time"]})
        for change in changes:
            level = logging.WARNING if change["state"] == "raised" else logging.INFO
            _logger.log(level, "monitor: %s %s (value %s, limit %s)", change["metric"],
                        change["state"], change["value"], change["limit"])
            emit(ResilienceEvent("alert", "monitor", change), self.hooks)
        return sample

    @property
    def active_alerts(self) -> list[str]:
        """The metrics whose alerts are raised now (sorted)."""
        with self._lock:
            return sorted({self.thresholds[i].metric for i in self._raised})

    # -- calls and report -------------------------------------------------------------------

    def record(self, step: str, seconds: float, *, ok: bool, error: str | None = None,
               size: int | None = None) -> None:
        """Count one finished call (what `monitored` does for you)."""
        with self._lock:
            stats = self._steps.get(step)
            if stats is None:
                stats = self._steps[step] = _Step()
            stats.calls += 1
            stats.total += seconds
            stats.longest = max(stats.longest, seconds)
            if size:
                stats.size += size
            if not ok:
                stats.failures += 1
                name = error or "error"
                stats.errors[name] = stats.errors.get(name, 0) + 1

    def report(self) -> dict[str, Any]:
        """A JSON-ready summary of the run so far.

        Returns:
            ``seconds`` (since the monitor was made); ``steps``: per step ``calls``,
            ``failures``, ``errors`` (type name → count), ``total_seconds``,
            ``mean_seconds``, ``max_seconds``, ``bytes`` (the sum of result sizes);
            ``resources``: ``samples`` (how many were taken) and ``peaks`` (metric → max);
            ``alerts`` (each change, oldest first) and ``active_alerts``.
        """
        with self._lock:
            steps = {name: {"calls": s.calls, "failures": s.failures, "errors": dict(s.errors),
                            "total_seconds": s.total, "mean_seconds": s.total / s.calls,
                            "max_seconds": s.longest, "bytes": s.size}
                     for name, s in sorted(self._steps.items())}
            return {
                "seconds": self._clock() - self._born,
                "steps": steps,
                "resources": {"samples": len(self.samples), "peaks": dict(self._peaks)},
                "alerts": list(self._alerts),
                "active_alerts": sorted({self.thresholds[i].metric for i in self._raised}),
            }


def _otel_value(value: Any) -> Any:
    return value if isinstance(value, str | bool | int | float) else str(value)


def otel_hook(tracer_or_meter: Any = None) -> Hook:
    """A hook that forwards events to OpenTelemetry (needs ``opentelemetry-api``).

    With a ``Meter`` (anything with ``create_counter``): every event adds one to the counter
    ``avgen.resilience`` (attributes ``kind`` and ``source``), and ``call`` events
    record their seconds in the histogram ``avgen.resilience.call.duration``. Otherwise
    each event becomes a span event ``avgen.<kind>`` on the current span; when no span is
    recording and a ``Tracer`` was given, a short span of its own.

    Args:
        tracer_or_meter: An OpenTelemetry ``Meter`` or ``Tracer``, or ``None``.

    Raises:
        ConfigurationError: The OpenTelemetry API is not installed.
    """
    try:
        trace: Any = importlib.import_module("opentelemetry.trace")
    except ImportError as exc:
        raise ConfigurationError(
            "otel_hook needs the OpenTelemetry API, which is not installed: "
            "pip install opentelemetry-api") from exc

    def attributes(event: ResilienceEvent) -> dict[str, Any]:
        found = {f"avgen.{k}": _otel_value(v) for k, v in event.data.items() if v is not None}
        return {"avgen.kind": event.kind, "avgen.source": event.source, **found}

    if tracer_or_meter is not None and hasattr(tracer_or_meter, "create_counter"):
        counter = tracer_or_meter.create_counter(
            "avgen.resilience._events", unit="1", description="avgen resilience events")
        durations = tracer_or_meter.create_histogram(
            "avgen.resilience.call.duration", unit="s", description="monitored call time")

        def count(event: ResilienceEvent) -> None:
            counter.add(1, {"kind": event.kind, "source": event.source})
            if event.kind == "call":
                durations.record(float(event.data.get("seconds", 0.0)),
                                 {"source": event.source, "ok": bool(event.data.get("ok"))})

        return count

    tracer = tracer_or_meter

    def annotate(event: ResilienceEvent) -> None:
        span = trace.get_current_span()
        if span.is_recording():
            span.add_event(f"avgen.{event.kind}", attributes(event))
        elif tracer is not None:
            tracer.start_span(f"avgen.{event.kind}", attributes=attributes(event)).end()

    return annotate
