"""Every agent call goes through the resilience decorators, and the manifest shows it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avgen import AudioAsset, ClipAsset, Preset, Scene, VideoGenerator
from avgen._policy import AgentPolicy
from avgen.errors import ContentRejected, ServiceUnavailable, UsageError
from avgen.resilience import CircuitSettings, RetryPolicy, set_testing
from avgen.testing import PatternImages, ToneNarrator

SCRIPT = "First scene.\n\nSecond scene.\n\nThird scene.\n\nFourth scene."


@pytest.fixture(autouse=True)
def no_backoff() -> Iterator[None]:
    with set_testing():
        yield


class FlakyNarrator:
    """Fails with a transient error the first ``failures`` times it is called."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0
        self.inner = ToneNarrator()

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        self.calls += 1
        if self.calls <= self.failures:
            raise ServiceUnavailable("503 from the voice service", "flaky")
        return await self.inner.speak(text, target, voice=voice)


class DownClips:
    """A clip service that is down, or refuses content."""

    max_concurrency = 1  # one scene at a time, so the breaker's decisions are deterministic

    def __init__(self, error: Exception) -> None:
        self.error, self.calls = error, 0

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        self.calls += 1
        raise self.error


def steps(session: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((session / "metadata/manifest.json").read_text())
    return data["steps"]  # type: ignore[no-any-return]


def test_transient_failures_are_retried_and_recorded(tmp_path: Path) -> None:
    narrator = FlakyNarrator(failures=2)
    kinds: list[str] = []
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path,
                               on_event=lambda e: kinds.append(e.kind))
    video = generator.generate_sync(script="Only one scene.")
    assert narrator.calls == 3
    record = steps(video.session)["scene-000.narration"]["data"]["resilience"]
    assert record["attempts"] == 3
    assert [r["attempt"] for r in record["retries"]] == [1, 2]
    assert "503" in record["retries"][0]["error"]
    assert kinds.count("retry") == 2


def test_an_open_circuit_sends_scenes_to_the_next_tier_at_once(tmp_path: Path) -> None:
    clips = DownClips(ServiceUnavailable("veo is down", "clips"))
    breaker = CircuitSettings(window_size=2, minimum_calls=2, wait_open=3600)
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=clips,
                               image_generator=PatternImages(), output_dir=tmp_path,
                               policies={"clip_generator": AgentPolicy(retry=None,
                                                                       circuit=breaker)})
    video = generator.generate_sync(script=SCRIPT)
    assert clips.calls == 2  # then the breaker opened: no more calls to a dead service
    assert video.tiers == ("image",) * 4
    manifest = steps(video.session)
    refused = [manifest[f"scene-{i:03d}.visual"]["data"]["resilience"]["circuit"]
               for i in range(4)]
    assert sum(any(e["event"] == "circuit.rejected" for e in r) for r in refused) == 2
    assert any(e["event"] == "circuit.state" and e.get("to") == "open"
               for r in refused for e in r)
    assert all(manifest[f"scene-{i:03d}.visual"]["status"] == "fallback" for i in range(4))
    # the breaker belongs to the generator: a second run skips the dead service from the start
    generator.generate_sync(script="One more.")
    assert clips.calls == 2


def test_permanent_failures_are_not_retried(tmp_path: Path) -> None:
    clips = DownClips(ContentRejected("blocked", "clips", reason="SAFETY"))
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=clips,
                               output_dir=tmp_path)
    video = generator.generate_sync(script="A scene.")
    assert clips.calls == 1
    step = steps(video.session)["scene-000.visual"]
    assert step["tier"] == "card" and "SAFETY" in step["error"]
    assert step["data"]["resilience"]["attempts"] == 1


def test_an_agent_can_bring_its_own_policy(tmp_path: Path) -> None:
    narrator = FlakyNarrator(failures=1)
    narrator.resilience = AgentPolicy(retry=None)  # type: ignore[attr-defined]
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path)
    with pytest.raises(Exception, match="503"):
        generator.generate_sync(script="Once only.")
    assert narrator.calls == 1
    # and the generator's override wins over the agent's own
    narrator.calls = 0
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path, policies={
        "narrator": AgentPolicy(retry=RetryPolicy(attempts=2))})
    generator.generate_sync(script="Twice then.")
    assert narrator.calls == 2


def test_policies_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        VideoGenerator(narrator=ToneNarrator(), policies={"painter": AgentPolicy()})
    assert caught.value.field == "policies"
    with pytest.raises(UsageError):
        VideoGenerator(narrator=ToneNarrator(),
                       policies={"narrator": "retry please"})  # type: ignore[dict-item]


def test_a_monitor_times_every_agent_call_and_reports_in_the_manifest(tmp_path: Path) -> None:
    from avgen.resilience import Monitor

    monitor = Monitor()
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=PatternImages(),
                               output_dir=tmp_path, monitor=monitor)
    video = generator.generate_sync(script=SCRIPT)
    report = json.loads(video.manifest.read_text())["report"]["steps"]
    assert report["tone"]["calls"] == 4 and report["tone"]["failures"] == 0
    assert report["pattern-images"]["calls"] == 4
    assert report["ffmpeg"]["calls"] == 1 and report["ffmpeg"]["max_seconds"] > 0
    assert not monitor.running  # a monitor samples the machine only when started
