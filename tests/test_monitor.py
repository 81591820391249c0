"""Tests of avgen.resilience._monitor: monitored calls, Monitor sampling, alerts, report."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import attrs
import pytest

from avgen.errors import ConfigurationError, UsageError
from avgen.resilience import ResilienceEvent, collect
from avgen.resilience._monitor import METRICS, Monitor, Threshold, monitored, otel_hook

WAIT = 10.0


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


@attrs.frozen
class Asset:
    path: Path


# -- monitored ------------------------------------------------------------------------------------


def test_a_call_event_carries_seconds_ok_and_size() -> None:
    @monitored("narration")
    def speak(text: str) -> bytes:
        return text.encode() * 3

    with collect() as events:
        assert speak("ab") == b"ababab"
    [event] = events
    assert (event.kind, event.source) == ("call", "narration")
    assert event.data["ok"] is True and event.data["error"] is None
    assert event.data["size"] == 6
    assert isinstance(event.data["seconds"], float) and event.data["seconds"] >= 0


def test_the_source_defaults_to_the_qualified_name_and_methods_work() -> None:
    class Agent:
        @monitored()
        def write(self, topic: str) -> list[str]:
            return [topic, topic]

    with collect() as events:
        assert Agent().write("x") == ["x", "x"]
    assert events[0].source.endswith("Agent.write") and events[0].data["size"] == 2


def test_an_exception_is_recorded_and_re_raised() -> None:
    monitor = Monitor(sampler=dict)

    @monitored("clip", monitor=monitor)
    def render() -> None:
        raise TimeoutError("veo")

    with collect() as events, pytest.raises(TimeoutError, match="veo"):
        render()
    assert events[0].data["ok"] is False and events[0].data["error"] == "TimeoutError"
    assert events[0].data["size"] is None
    step = monitor.report()["steps"]["clip"]
    assert (step["calls"], step["failures"], step["errors"]) == (1, 1, {"TimeoutError": 1})


def test_async_calls_and_cancellations_are_recorded() -> None:
    seen: list[ResilienceEvent] = []

    @monitored("poll", hooks=[seen.append])
    async def poll(n: int) -> str:
        await asyncio.sleep(0)
        if n < 0:
            raise ValueError(n)
        if n == 0:
            await asyncio.Event().wait()
        return "x" * n

    async def main() -> None:
        assert await poll(4) == "xxxx"
        with pytest.raises(ValueError):
            await poll(-1)
        task = asyncio.create_task(poll(0))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert [(e.data["ok"], e.data["error"], e.data["size"]) for e in seen] == [
        (True, None, 4), (False, "ValueError", None), (False, "CancelledError", None)]


def test_sizes_of_files_paths_and_custom_measures(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(bytes(1234))

    @monitored()
    def asset() -> Asset:
        return Asset(clip)

    @monitored()
    def path() -> Path:
        return clip

    @monitored(size=lambda result: result["frames"])
    def custom() -> dict[str, int]:
        return {"frames": 42}

    @monitored()
    def unknown() -> object:
        return object()

    with collect() as events:
        asset()
        path()
        custom()
        unknown()
    assert [e.data["size"] for e in events] == [1234, 1234, 42, None]


def test_sizes_are_not_measured_when_nobody_listens() -> None:
    measured: list[object] = []

    def size(result: object) -> int:
        measured.append(result)
        return 1

    @monitored(size=size)
    def f() -> int:
        return 1

    f()
    assert measured == []
    with collect():
        f()
    assert measured == [1]


def test_a_failing_size_measure_does_not_break_the_call(
        caplog: pytest.LogCaptureFixture) -> None:
    @monitored(size=lambda result: 1 // 0)
    def f() -> str:
        return "ok"

    with collect() as events, caplog.at_level(logging.ERROR, "avgen.resilience"):
        assert f() == "ok"
    assert events[0].data["size"] is None and events[0].data["ok"] is True
    assert "size of the result failed" in caplog.text


def test_bare_decorator_and_generators_are_refused() -> None:
    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(UsageError, match="parentheses"):
        monitored(gen)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="generator"):
        monitored()(gen)


# -- report ---------------------------------------------------------------------------------------


def test_report_aggregates_calls_per_step(tmp_path: Path) -> None:
    monitor = Monitor(sampler=lambda: {"memory_percent": 40.0})
    monitor.record("clip", 2.0, ok=True, size=100)
    monitor.record("clip", 4.0, ok=True, size=300)
    monitor.record("clip", 0.5, ok=False, error="TimeoutError")
    monitor.record("voice", 1.0, ok=True, size=None)

    @monitored("voice", monitor=monitor)
    def speak() -> bytes:
        return b"12345"

    speak()
    report = monitor.report()
    clip = report["steps"]["clip"]
    assert clip == {"calls": 3, "failures": 1, "errors": {"TimeoutError": 1},
                    "total_seconds": 6.5, "mean_seconds": 6.5 / 3, "max_seconds": 4.0,
                    "bytes": 400}
    voice = report["steps"]["voice"]
    assert voice["calls"] == 2 and voice["bytes"] == 5 and voice["failures"] == 0
    assert math.isclose(voice["mean_seconds"], voice["total_seconds"] / 2)
    assert 1.0 <= voice["max_seconds"] <= voice["total_seconds"]
    monitor.tick()
    assert report["resources"]["samples"] == 0
    assert monitor.report()["resources"] == {"samples": 1, "peaks": {"memory_percent": 40.0}}
    json.dumps(monitor.report())  # JSON-ready


# -- thresholds -----------------------------------------------------------------------------------


def scripted(values: Sequence[float], metric: str = "memory_percent",
             ) -> Callable[[], dict[str, float]]:
    readings = iter(values)
    return lambda: {metric: next(readings)}


def test_alerts_rise_and_clear_once_with_hysteresis() -> None:
    values = [50, 95, 97, 85, 91, 79, 60, 90, 89]
    seen: list[ResilienceEvent] = []
    monitor = Monitor(thresholds=[Threshold("memory_percent", 90, clear_below=80)],
                      hooks=[seen.append], sampler=scripted(values))
    states = []
    for _ in values:
        before = len(seen)
        monitor.tick()
        states.append(seen[-1].data["state"] if len(seen) > before else "")
    assert states == ["", "raised", "", "", "", "cleared", "", "raised", ""]
    assert seen[0] == ResilienceEvent("alert", "monitor", {
        "metric": "memory_percent", "value": 95.0, "limit": 90, "state": "raised"},
        time=seen[0].time)
    assert monitor.active_alerts == ["memory_percent"]
    report = monitor.report()
    assert [a["state"] for a in report["alerts"]] == ["raised", "cleared", "raised"]
    assert report["active_alerts"] == ["memory_percent"]
    assert report["resources"]["peaks"] == {"memory_percent": 97.0}


def test_without_clear_below_the_limit_clears() -> None:
    seen: list[ResilienceEvent] = []
    monitor = Monitor(thresholds=[Threshold("cpu_percent", 80)], hooks=[seen.append],
                      sampler=scripted([80, 79.9, 85], metric="cpu_percent"))
    for _ in range(3):
        monitor.tick()
    assert [e.data["state"] for e in seen] == ["raised", "cleared", "raised"]


def test_a_threshold_on_a_metric_not_sampled_never_fires() -> None:
    seen: list[ResilienceEvent] = []
    monitor = Monitor(thresholds=[Threshold("gpu_percent", 1)], hooks=[seen.append],
                      sampler=scripted([100.0]))
    monitor.tick()
    assert seen == [] and monitor.active_alerts == []


def test_bad_thresholds_and_intervals_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="clear_below"):
        Threshold("memory_percent", 80, clear_below=90)
    with pytest.raises(UsageError, match="interval"):
        Monitor(interval=0)
    with pytest.raises(UsageError, match="max_samples"):
        Monitor(max_samples=0)


def test_samples_are_bounded_but_peaks_are_kept() -> None:
    monitor = Monitor(sampler=scripted([5, 9, 1, 2, 3]), max_samples=2,
                      clock=iter(range(100)).__next__)
    for _ in range(5):
        monitor.tick()
    assert [s["memory_percent"] for s in monitor.samples] == [2, 3]
    assert [s["time"] for s in monitor.samples] == [4, 5]  # clock 0 went to the monitor's birth
    assert monitor.report()["resources"] == {"samples": 2, "peaks": {"memory_percent": 9.0}}


def test_the_default_sampler_measures_the_machine() -> None:
    monitor = Monitor()
    first = monitor.tick()
    second = monitor.tick()
    assert "cpu_percent" not in first  # psutil's first reading is a meaningless 0.0
    assert "cpu_percent" in second and 0 <= second["cpu_percent"] <= 100 * 64
    assert 0 < second["memory_percent"] <= 100 and second["rss_bytes"] > 1_000_000
    assert set(second) - {"time"} <= set(METRICS)


# -- the sampling thread --------------------------------------------------------------------------


def monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "avgen-monitor"]


def test_start_runs_a_thread_and_stop_joins_it() -> None:
    taken = []

    def sampler() -> dict[str, float]:
        taken.append(1)
        return {"memory_percent": 99.0}

    monitor = Monitor(interval=0.005, sampler=sampler,
                      thresholds=[Threshold("memory_percent", 90)])
    assert monitor_threads() == [] and not monitor.running
    with collect() as events:
        assert monitor.start() is monitor
        assert monitor.start() is monitor  # already running: still one thread
        wait_until(lambda: len(taken) >= 3)
        assert len(monitor_threads()) == 1 and monitor_threads()[0].daemon
        monitor.stop()
    assert monitor_threads() == [] and not monitor.running
    # the thread ran in the context of start(): collect() saw its alert, raised once
    assert [e.data["state"] for e in events if e.kind == "alert"] == ["raised"]


def test_context_managers_start_and_stop() -> None:
    monitor = Monitor(interval=0.005, sampler=lambda: {"memory_percent": 1.0})
    with monitor:
        wait_until(lambda: len(monitor.samples) >= 2)
        assert monitor.running
    assert not monitor.running and monitor_threads() == []

    async def main() -> None:
        async with Monitor(interval=0.005, sampler=lambda: {"x": 1.0}) as inside:
            while len(inside.samples) < 2:
                await asyncio.sleep(0.001)
            assert inside.running
        assert not inside.running

    asyncio.run(main())
    assert monitor_threads() == []


def test_a_failing_sampler_does_not_kill_the_thread(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def flaky() -> dict[str, float]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("no /proc")
        return {"memory_percent": 1.0}

    monitor = Monitor(interval=0.005, sampler=flaky)
    with caplog.at_level(logging.ERROR, "avgen.resilience"), monitor:
        wait_until(lambda: len(monitor.samples) >= 1)
    assert "taking a sample failed" in caplog.text


def test_importing_starts_no_thread() -> None:
    code = ("import threading; before = threading.active_count(); "
            "import avgen.resilience._monitor, avgen.resilience._cache, avgen.resilience; "
            "print(before, threading.active_count())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    before, after = done.stdout.split()
    assert before == after


# -- OpenTelemetry --------------------------------------------------------------------------------


def test_otel_hook_without_the_package_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with pytest.raises(ConfigurationError, match="pip install opentelemetry-api"):
        otel_hook()
    with pytest.raises(RuntimeError):  # ConfigurationError is a RuntimeError too
        otel_hook(object())
