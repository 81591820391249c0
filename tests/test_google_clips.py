"""`VeoClips` against the real google-genai SDK talking HTTP to `FakeGemini`.

Nothing is mocked: the SDK sends real requests to a local server, the clips that come back
are real MP4 files, and every check on media decodes it with ffmpeg.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import json
import math
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.oauth2.credentials
import pytest
from fake_gemini import RAI_REASON, FakeGemini, Recorded
from fake_stock import FakeStock
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st
from media import decode, make_image, make_wav

from avgen import VideoGenerator
from avgen._models import ClipAsset, ImageAsset, Preset, Scene, VideoRequest
from avgen._scratch import is_debris
from avgen.agents._assets.cache import AssetCache
from avgen.agents.google._clips import HOLD_SECONDS, VeoClips
from avgen.agents.google._common import GOOGLE_POLICY
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._polling import OperationTimes, next_poll
from avgen.costs import Charge, Ledger
from avgen.errors import (
    AgentError,
    BudgetExceeded,
    ContentRejected,
    MediaError,
    ServiceUnavailable,
    UsageError,
)
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.resilience import CircuitRegistry, collect, set_testing
from avgen.testing import PatternImages, ToneNarrator

KEY = "test-key-veo-0123456789"
TALL = Preset("tall", 144, 256, fps=24)
WIDE = Preset("wide", 256, 144, fps=24)
SCENE = Scene(0, "The sea is calm today.", visual="Waves rolling onto a sandy beach")
SCRIPT = ("The tide comes in slowly over the sand. Birds gather along the shore.\n\n"
          "Night falls and the lighthouse wakes. Its beam sweeps across the water.")
FAST: dict[str, Any] = {"poll_interval": 0.01, "poll_max_interval": 0.02, "deadline": 20.0}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("AVGEN_BLOCK_PAID_CALLS", "1")
    with set_testing():
        yield


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
    assert server.errors == []


def connect(fake: FakeGemini, *, mode: str = "express", timeout: float = 30.0,
            host: str = "127.0.0.1") -> GoogleConnection:
    base_url = fake.base_url.replace("127.0.0.1", host)
    if mode == "project":
        token = google.oauth2.credentials.Credentials(token="ya29.test-token-abcdefghijkl")  # type: ignore[no-untyped-call]
        return GoogleConnection.from_env(
            {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "p",
             "GOOGLE_CLOUD_LOCATION": "us-central1"},
            base_url=base_url, timeout=timeout, credentials=token)
    env = {"GOOGLE_API_KEY": KEY}
    if mode == "express":
        env["GOOGLE_GENAI_USE_VERTEXAI"] = "true"
    return GoogleConnection.from_env(env, base_url=base_url, timeout=timeout)


def veo(fake: FakeGemini, **options: Any) -> VeoClips:
    settings: dict[str, Any] = {**FAST, **options}
    return VeoClips(connect(fake), **settings)


def make(agent: VeoClips, target: Path, seconds: float = 3.2, preset: Preset = TALL,
         scene: Scene = SCENE, **kwargs: Any) -> ClipAsset:
    return asyncio.run(agent.generate(scene, seconds, preset, target, **kwargs))


def params(call: Recorded) -> dict[str, Any]:
    body: dict[str, Any] = call.body
    return dict(body["parameters"])


def sent_image(call: Recorded) -> bytes:
    image = call.body["instances"][0]["image"]
    assert image["mimeType"] == "image/png"
    return base64.b64decode(image["bytesBase64Encoded"])


def rgb(source: bytes | Path) -> bytes:
    """Raw RGB pixels of a picture, or of every frame of a clip's last half second."""
    args = ["-sseof", "-0.5", "-i", str(source)] if isinstance(source, Path) else ["-i", "-"]
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", *args, "-f", "rawvideo", "-pix_fmt",
                           "rgb24", "-"], capture_output=True, check=True,
                          input=None if isinstance(source, Path) else source)
    return proc.stdout


def mean_rgb(png: bytes) -> tuple[int, int, int]:
    """The average colour of a picture, decoded by ffmpeg."""
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", "pipe:0", "-vf", "scale=1:1",
                           "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"],
                          input=png, capture_output=True, check=True)
    red, green, blue = proc.stdout[:3]
    return red, green, blue


# ------------------------------------------------------------------------- text to video


@pytest.mark.parametrize("mode", ["express", "project"])
def test_text_to_video_vertical_clip(mode: str, tmp_path: Path) -> None:
    with FakeGemini(polls_until_done=2) as fake:
        agent = VeoClips(connect(fake, mode=mode), **FAST)
        asset = make(agent, tmp_path / "clip.mp4", seconds=3.2)
        assert fake.errors == []
    decoded = decode(tmp_path / "clip.mp4")
    assert decoded["errors"] == "" and decoded["has_video"] and not decoded["has_audio"]
    assert (decoded["width"], decoded["height"]) == (144, 256)  # 9:16
    assert decoded["duration"] is not None and abs(decoded["duration"] - 4.0) < 0.1
    assert decoded["frames"] == 96
    assert (asset.width, asset.height, asset.has_audio) == (144, 256, False)
    assert abs(asset.duration - 4.0) < 0.1 and asset.path == tmp_path / "clip.mp4"
    [submit] = fake.calls("veo")
    assert submit.prompt == SCENE.visual and not submit.has_image
    assert submit.path.endswith("/models/veo-3.1-fast-generate-001:predictLongRunning")
    # audio off unless asked; the resolution follows the preset (360×640: 720p)
    assert params(submit) == {"durationSeconds": 4, "aspectRatio": "9:16", "generateAudio": False,
                              "resolution": "720p"}
    assert fake.count("poll") == 2
    if mode == "express":
        assert submit.headers["x-goog-api-key"] == KEY
    else:
        assert submit.headers["authorization"] == "Bearer ya29.test-token-abcdefghijkl"


def test_veo_audio_landscape_resolution_and_negative_prompt(fake: FakeGemini,
                                                             tmp_path: Path) -> None:
    agent = veo(fake, model="veo-3.1-generate-001", audio=True, resolution="720p",
                negative_prompt="text, watermarks")
    asset = make(agent, tmp_path / "clip.mp4", seconds=7.5, preset=WIDE,
                 scene=Scene(0, "Only narration here."))
    assert params(fake.calls("veo")[0]) == {
        "durationSeconds": 8, "aspectRatio": "16:9", "generateAudio": True,
        "resolution": "720p", "negativePrompt": "text, watermarks"}
    assert fake.calls("veo")[0].prompt == "Only narration here."  # no visual: the narration
    decoded = decode(asset.path)
    assert (decoded["width"], decoded["height"]) == (256, 144)
    assert decoded["has_audio"] and asset.has_audio and abs(asset.duration - 8.0) < 0.1


@pytest.mark.parametrize(("model", "replacement"), [
    ("veo-2.0-generate-001", "veo-3.1-generate-001"),
    ("veo-3.0-fast-generate-001", "veo-3.1-fast-generate-001"),
])
def test_a_shut_down_veo_model_is_refused_before_anything_is_sent(
        fake: FakeGemini, model: str, replacement: str) -> None:
    with pytest.raises(UsageError) as refused:
        veo(fake, model=model)
    assert refused.value.field == "model"
    assert "2026-06-30" in str(refused.value) and replacement in str(refused.value)
    assert fake.requests == []


def test_a_long_scene_gets_enough_clips_to_cover_it(fake: FakeGemini, tmp_path: Path) -> None:
    asset = make(veo(fake), tmp_path / "clip.mp4", seconds=21.5)
    submits = fake.calls("veo")
    assert [params(call)["durationSeconds"] for call in submits] == [8, 8, 6]
    # each clip after the first goes on from the last frame of the one before
    assert [call.has_image for call in submits] == [False, True, True]
    decoded = decode(asset.path)
    assert decoded["errors"] == "" and abs(decoded["duration"] - 22.0) < 0.15
    assert abs(asset.duration - 22.0) < 0.15
    assert asset.source is not None and "3 clips of 8+8+6 s" in (asset.source.method or "")


def test_the_plan_covers_any_length_with_allowed_clips(fake: FakeGemini) -> None:
    agent = veo(fake)
    assert agent.plan(3.2) == [4] and agent.plan(8.0) == [8] and agent.plan(9.5) == [8, 4]
    assert agent.plan(4.9) == [4]  # its last 0.9 s holds the clip's last frame
    assert agent.plan(8.9) == [8]  # not a second clip for a few words over
    assert agent.plan(3.2, "1080p") == [8]  # Veo 3 makes 1080p clips of 8 s only
    assert agent.plan(9.5, references=True) == [8, 8]


@pytest.mark.slow
@settings(deadline=None)
@given(seconds=st.floats(min_value=0.05, max_value=120.0))
def test_a_plan_covers_the_narration_but_the_hold(seconds: float) -> None:
    with FakeGemini() as fake:
        agent = veo(fake)
        for resolution, references in (("720p", False), ("1080p", False), ("720p", True)):
            clips = agent.plan(seconds, resolution, references)
            assert all(length in agent.durations for length in clips)
            assert sum(clips) >= seconds - HOLD_SECONDS - 1e-9
            # one clip fewer would not cover it: no clip is paid for nothing
            assert len(clips) == 1 or sum(clips[:-1]) < seconds - HOLD_SECONDS


# ------------------------------------------------------------------------ image to video


class RecordingStills:
    """An image generator that draws ffmpeg's test pattern and remembers its calls."""

    def __init__(self) -> None:
        self.inner = PatternImages()
        self.calls: list[tuple[int, str]] = []

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        self.calls.append((scene.index, preset.name))
        return await self.inner.generate(scene, preset, target)


def test_image_to_video_animates_a_still(fake: FakeGemini, tmp_path: Path) -> None:
    stills = RecordingStills()
    asset = make(veo(fake, still=stills), tmp_path / "clip.mp4")
    assert stills.calls == [(0, "tall")]
    [submit] = fake.calls("veo")
    assert submit.has_image and submit.prompt == SCENE.visual
    assert sent_image(submit).startswith(b"\x89PNG")
    assert decode(asset.path)["frames"] == 96


class ListingStills(RecordingStills):
    """Remembers, at each still it draws, where it was asked to draw it and what the
    target's folder held then."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Path, list[str]]] = []

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        self.seen.append((target, sorted(path.name for path in target.parent.iterdir())))
        return await super().generate(scene, preset, target)


def test_a_scene_of_several_clips_keeps_its_pieces_beside_its_target_and_removes_them(
        fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the system's temporary folder is left alone: a process killed while a scene is made
    # would leave its pieces there, where nothing sweeps them
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    folder = tmp_path / "Tom's clips"  # a quote in a folder's name does not break the join
    folder.mkdir()
    stills = ListingStills()
    asset = make(veo(fake, still=stills), folder / "clip.mp4", seconds=21.5)
    [(still, _)] = stills.seen
    assert still.parent == folder and is_debris(still.name)  # a session's sweep knows it
    submits = fake.calls("veo")
    assert [call.has_image for call in submits] == [True, True, True]
    decoded = decode(asset.path)
    assert decoded["errors"] == "" and abs(decoded["duration"] - 22.0) < 0.15
    assert sorted(path.name for path in folder.iterdir()) == ["clip.mp4"]
    assert list(system_temp.iterdir()) == []


def _red_then_blue(path: Path) -> Path:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=red:s=128x128:r=24:d=1", "-f", "lavfi", "-i",
                    "color=c=blue:s=128x128:r=24:d=1", "-filter_complex",
                    "[0:v][1:v]concat=n=2:v=1:a=0", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(path)], check=True, capture_output=True)
    return path


def test_continuity_starts_from_the_last_frame_of_the_previous_clip(
        fake: FakeGemini, tmp_path: Path) -> None:
    previous = _red_then_blue(tmp_path / "previous.mp4")
    agent = veo(fake, continuity=True)
    assert agent.continuity is True
    make(agent, tmp_path / "first.mp4", previous=None)
    make(agent, tmp_path / "second.mp4", previous=previous)
    first, second = fake.calls("veo")
    assert not first.has_image  # no previous clip, no still: text to video
    assert second.has_image
    red, green, blue = mean_rgb(sent_image(second))
    assert blue > 200 and red < 60 and green < 60  # the last (blue) frame, not the first


def test_continuity_off_ignores_previous(fake: FakeGemini, tmp_path: Path) -> None:
    previous = _red_then_blue(tmp_path / "previous.mp4")
    make(veo(fake), tmp_path / "clip.mp4", previous=previous)
    assert not fake.calls("veo")[0].has_image


# --------------------------------------------------------------------------- uri delivery


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_uri_delivery_downloads_and_keeps_the_key_on_its_host(host: str, tmp_path: Path) -> None:
    with FakeGemini(video_delivery="uri") as fake:
        agent = VeoClips(connect(fake, host=host), **FAST)
        asset = make(agent, tmp_path / "clip.mp4")
        [download] = fake.calls("download")
    assert download.status == 200 and download.path.startswith("/media/")
    # the fake names its media under 127.0.0.1: the key goes there only when the
    # connection's own base URL is that host
    assert ("x-goog-api-key" in download.headers) == (host == "127.0.0.1")
    decoded = decode(asset.path)
    assert decoded["errors"] == "" and decoded["frames"] == 96


# -------------------------------------------------------------------------- cache, cost


def test_cache_answers_an_identical_request_without_a_request(fake: FakeGemini,
                                                               tmp_path: Path) -> None:
    agent = veo(fake, cache=AssetCache(tmp_path / "cache"))
    ledger = Ledger(budget=5.0)
    with ledger.step() as charges:
        make(agent, tmp_path / "one.mp4")
    assert len(charges) == 1 and len(fake.requests) == 2  # submit + poll
    with ledger.step() as again, collect() as events:
        asset = make(agent, tmp_path / "two.mp4")
    assert len(fake.requests) == 2 and again == []
    assert "cache.hit" in [event.kind for event in events]
    assert (tmp_path / "two.mp4").read_bytes() == (tmp_path / "one.mp4").read_bytes()
    assert decode(asset.path)["frames"] == 96 and asset.duration > 3.9
    make(agent, tmp_path / "three.mp4", scene=Scene(0, "x", visual="Another prompt"))
    assert fake.count("veo") == 2  # a different prompt is paid for


@pytest.mark.parametrize("audio", [False, True])
def test_cost_is_price_times_seconds(fake: FakeGemini, tmp_path: Path, audio: bool) -> None:
    agent = veo(fake, audio=audio)
    ledger = Ledger(budget=5.0)
    with ledger.step() as charges:
        make(agent, tmp_path / "clip.mp4", seconds=5.5)
    rate = 0.15 if audio else 0.10  # veo-3.1-fast list prices
    assert charges == [Charge(agent.name, agent.model, 6.0, "video_second",
                              agent.price.video(6, audio))]
    assert math.isclose(charges[0].usd, 6 * rate) and math.isclose(ledger.spent, 6 * rate)


def test_budget_too_small_sends_nothing(fake: FakeGemini, tmp_path: Path) -> None:
    with Ledger(budget=0.5).step() as charges, pytest.raises(BudgetExceeded) as caught:
        make(veo(fake), tmp_path / "clip.mp4", seconds=7.5)  # 8 s × $0.10 = $0.80
    assert fake.requests == [] and charges == []
    assert math.isclose(caught.value.price, 0.8)


def test_estimate_prices_one_clip_per_planned_scene(fake: FakeGemini) -> None:
    class PricedStills(RecordingStills):
        def estimate(self, request: VideoRequest) -> list[Charge]:
            return [Charge("stills", "imagen", 3, "image", 0.12)]

    agent = veo(fake, still=PricedStills())
    request = VideoRequest(topic="tides", duration=24)
    charges = agent.estimate(request)
    # three planned scenes of 8 s: mostly one 8 s clip, a second clip for the longest
    expected = agent.expected_seconds(request)
    assert 8.0 < expected < 9.0
    assert charges[:3] == [Charge(agent.name, agent.model, round(expected, 2), "video_second",
                                  round(expected, 2) * 0.10, scene=i) for i in range(3)]
    assert charges[3:] == [Charge("stills", "imagen", 3, "image", 0.12)]
    assert fake.requests == []


# ------------------------------------------------------------------------------ failures


def test_failed_operation_is_an_agent_error(fake: FakeGemini, tmp_path: Path) -> None:
    fake.fail("poll", "operation_error")
    with pytest.raises(AgentError) as caught:
        make(veo(fake), tmp_path / "clip.mp4")
    assert type(caught.value) is AgentError
    assert "code 13" in str(caught.value) and "Internal error" in str(caught.value)
    assert fake.count("veo") == 1


@pytest.mark.parametrize("kind", ["veo", "poll"])
def test_filtered_clip_is_content_rejected(fake: FakeGemini, tmp_path: Path, kind: str) -> None:
    fake.fail(kind, "filtered")
    with Ledger().step() as charges, pytest.raises(ContentRejected) as caught:
        make(veo(fake), tmp_path / "clip.mp4")
    assert caught.value.reason == RAI_REASON and charges == []
    assert fake.count("veo") == 1


def test_submit_without_an_answer_is_not_retried(fake: FakeGemini, tmp_path: Path) -> None:
    fake.fail("veo", "slow", seconds=5)
    agent = VeoClips(connect(fake, timeout=0.3), **FAST)
    call = GOOGLE_POLICY.wrap(agent.generate, name=agent.name, registry=CircuitRegistry())
    with Ledger().step() as charges, pytest.raises(AgentError) as caught:
        asyncio.run(call(SCENE, 3.0, TALL, tmp_path / "clip.mp4"))
    assert type(caught.value) is AgentError
    message = str(caught.value)
    # httpx's ReadTimeout, or asyncio's TimeoutError when the SDK uses aiohttp (installed)
    assert "not retried" in message and KEY not in message
    assert "ReadTimeout" in message or "TimeoutError" in message
    assert fake.count("veo") == 1 and fake.count("poll") == 0 and charges == []


def test_refused_connection_is_service_unavailable(tmp_path: Path) -> None:
    with FakeGemini() as fake:
        connection = connect(fake)
    agent = VeoClips(connection, **FAST)  # the server is gone: connection refused
    with pytest.raises(ServiceUnavailable):
        make(agent, tmp_path / "clip.mp4")


def test_rate_limited_submit_is_resubmitted_by_the_policy(fake: FakeGemini,
                                                          tmp_path: Path) -> None:
    fake.fail("veo", "rate_limit", retry_after=3)
    agent = veo(fake)
    call = GOOGLE_POLICY.wrap(agent.generate, name=agent.name, registry=CircuitRegistry())
    with collect() as events, Ledger().step() as charges:
        asset = asyncio.run(call(SCENE, 3.0, TALL, tmp_path / "clip.mp4"))
    assert [c.status for c in fake.calls("veo")] == [429, 200]
    [attempt] = [e for e in events if e.kind == "retry.attempt"]
    assert attempt.data["requested"] == 3 and attempt.data["classification"] == "rate_limited"
    assert len(charges) == 1 and decode(asset.path)["frames"] == 96


def test_refused_submit_propagates_and_the_policy_resubmits(fake: FakeGemini,
                                                             tmp_path: Path) -> None:
    fake.fail("veo", "server_error", status=503, times=2)
    agent = veo(fake)
    with pytest.raises(ServiceUnavailable, match="503"):
        make(agent, tmp_path / "clip.mp4")  # on its own, the agent does not retry a submit
    call = GOOGLE_POLICY.wrap(agent.generate, name=agent.name, registry=CircuitRegistry())
    asset = asyncio.run(call(SCENE, 3.0, TALL, tmp_path / "clip.mp4"))
    assert [c.status for c in fake.calls("veo")] == [503, 503, 200]
    assert decode(asset.path)["frames"] == 96


def test_transient_poll_failure_is_retried_without_resubmitting(fake: FakeGemini,
                                                                 tmp_path: Path) -> None:
    fake.fail("poll", "server_error", status=503)
    asset = make(veo(fake), tmp_path / "clip.mp4")
    assert fake.count("veo") == 1
    assert [c.status for c in fake.calls("poll")] == [503, 200]
    assert decode(asset.path)["frames"] == 96


def test_polling_that_keeps_failing_resumes_the_same_operation(fake: FakeGemini,
                                                               tmp_path: Path) -> None:
    fake.fail("poll", "server_error", status=503, times=5)
    agent = veo(fake)
    call = GOOGLE_POLICY.wrap(agent.generate, name=agent.name, registry=CircuitRegistry())
    asset = asyncio.run(call(SCENE, 3.0, TALL, tmp_path / "clip.mp4"))
    # 5 polls failed, the agent gave up, the policy called again: polling resumed
    assert fake.count("veo") == 1 and fake.count("poll") == 6
    assert decode(asset.path)["frames"] == 96


def test_deadline_gives_up_without_resubmitting(tmp_path: Path) -> None:
    with FakeGemini(polls_until_done=10_000) as fake:
        agent = VeoClips(connect(fake), poll_interval=0.01, poll_max_interval=0.01,
                         deadline=0.2)
        with pytest.raises(AgentError) as caught:
            make(agent, tmp_path / "clip.mp4")
        [submit] = fake.calls("veo")
        assert fake.count("poll") >= 2
    assert submit.operation and submit.operation in str(caught.value)
    assert "deadline" in str(caught.value) and "not resubmitted" in str(caught.value)


def test_developer_mode_is_refused_up_front(fake: FakeGemini, tmp_path: Path) -> None:
    for model in (None, "veo-3.1-fast-generate-001"):
        with pytest.raises(UsageError) as caught:
            VeoClips(connect(fake, mode="developer"), model, **FAST)
        assert caught.value.field == "agents" and "Vertex" in str(caught.value)
    assert fake.requests == []


def test_gs_uri_and_a_file_without_video_are_refused(fake: FakeGemini, tmp_path: Path) -> None:
    agent = veo(fake)
    with pytest.raises(AgentError, match="bucket"):
        asyncio.run(agent._save(types.Video(uri="gs://bucket/clip.mp4"), tmp_path / "c.mp4"))
    sound = make_wav(tmp_path / "sound.mp4", 1.0)
    with pytest.raises(MediaError, match="no video stream"):
        asyncio.run(agent._asset(sound))


def test_a_clip_named_on_another_host_or_port_is_not_downloaded(fake: FakeGemini,
                                                                tmp_path: Path) -> None:
    """Veo's answer may name its clip on Google's hosts (https) or on the connection's own
    endpoint: another local port (plain http) or another https host is refused unasked."""
    agent = veo(fake)
    with FakeStock() as other:
        elsewhere = f"{other.base_url}/media/video/640x360/clip.mp4"
        with pytest.raises(AgentError, match="http:// is never downloaded"):
            asyncio.run(agent._save(types.Video(uri=elsewhere), tmp_path / "c.mp4"))
        assert other.count() == 0
    with pytest.raises(AgentError, match=r"files\.example\.net is not a host the answer may name"):
        asyncio.run(agent._save(types.Video(uri="https://files.example.net/clip.mp4"),
                                tmp_path / "c.mp4"))
    assert not (tmp_path / "c.mp4").exists()


# --------------------------------------------------------------------------- concurrency


def _most_in_flight(fake: FakeGemini) -> int:
    """The most operations open at once, from the server's log: an operation opens at its
    submit and closes at the poll that finds it done."""
    polls: dict[str, int] = {}
    open_now = most = 0
    for call in fake.calls():
        if call.kind == "veo":
            open_now += 1
        elif call.kind == "poll" and call.operation:
            polls[call.operation] = polls.get(call.operation, 0) + 1
            if polls[call.operation] == fake.polls_until_done:
                open_now -= 1
        most = max(most, open_now)
    return most


@pytest.mark.parametrize("limit", [1, 3])
def test_operations_in_flight_stay_within_max_concurrency(limit: int, tmp_path: Path) -> None:
    scenes = [Scene(i, f"Line {i}.", visual=f"Shot number {i}") for i in range(3)]

    async def run(agent: VeoClips) -> list[ClipAsset]:
        return list(await asyncio.gather(*(
            agent.generate(scene, 3.0, TALL, tmp_path / f"clip{scene.index}-{limit}.mp4")
            for scene in scenes)))

    with FakeGemini(polls_until_done=3) as fake:
        agent = VeoClips(connect(fake), max_concurrency=limit, **FAST)
        assets = asyncio.run(run(agent))
        most = _most_in_flight(fake)
    assert len(assets) == 3 and fake.count("veo") == 3
    if limit == 1:
        assert most == 1
    else:
        assert most >= 2  # the check above can fail: without the bound, they overlap


# ---------------------------------------------------------------------- arguments, rules


@pytest.mark.parametrize(("options", "field"), [
    ({"model": "imagen-4.0-generate-001"}, "model"),
    ({"model": ""}, "model"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"audio": "yes"}, "audio"),
    ({"model": "veo-2.0-generate-001"}, "model"),
    ({"model": "gemini-omni-1.1-flash"}, "model"),
    ({"model": "veo-3.1-fast-generate-001", "references": True}, "references"),
    ({"continuity": 1}, "continuity"),
    ({"still": object()}, "still"),
    ({"resolution": "8k"}, "resolution"),
    ({"resolution": "360p"}, "resolution"),
    ({"negative_prompt": "  "}, "negative_prompt"),
    ({"poll_interval": 0}, "poll_interval"),
    ({"poll_interval": math.nan}, "poll_interval"),
    ({"poll_interval": 5.0, "poll_max_interval": 1.0}, "poll_max_interval"),
    ({"deadline": -1}, "deadline"),
    ({"cache": "folder"}, "cache"),
])
def test_bad_arguments_are_named(fake: FakeGemini, options: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError) as caught:
        VeoClips(connect(fake), **options)
    assert caught.value.field == field


def test_bad_connection_and_seconds_are_named(fake: FakeGemini, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        VeoClips("not a connection")  # type: ignore[arg-type]
    assert caught.value.field == "connection"
    with pytest.raises(UsageError) as caught:
        make(veo(fake), tmp_path / "clip.mp4", seconds=-1.0)
    assert caught.value.field == "seconds" and fake.requests == []


@functools.cache
def _agent(model: str) -> VeoClips:
    # no request is made: a connection to a closed local port is enough to build the agent
    connection = GoogleConnection.from_env(
        {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": KEY},
        base_url="http://127.0.0.1:9")
    return VeoClips(connection, model)


@given(model=st.sampled_from(["veo-3.1-generate-001", "veo-3.1-fast-generate-001"]),
       seconds=st.floats(min_value=0.01, max_value=120, allow_nan=False))
def test_duration_is_the_shortest_allowed_length_covering_the_narration(
        model: str, seconds: float) -> None:
    agent = _agent(model)
    allowed = (4, 6, 8)
    chosen = agent.duration_for(seconds)
    assert agent.durations == allowed and chosen in allowed
    if seconds <= max(allowed):
        assert chosen >= seconds
        assert all(d >= chosen for d in allowed if d >= seconds)  # the shortest that covers
    else:
        assert chosen == max(allowed)  # capped: the composer fits the clip


# ---------------------------------------------------------------------- in a whole run


class BlockingStills:
    """An image generator with a plain (blocking) method, as the protocols allow."""

    def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        make_image(target, preset.width, preset.height)
        return ImageAsset(target, preset.width, preset.height)


def test_a_run_chains_clips_with_continuity_and_meters_their_cost(fake: FakeGemini,
                                                                  tmp_path: Path) -> None:
    agent = veo(fake, continuity=True, still=BlockingStills())
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=agent,
                               output_dir=tmp_path, budget=5.0)
    video = generator.generate_sync(script=SCRIPT, preset=TALL)
    assert video.tiers == ("clip",) * len(video.tiers) and len(video.tiers) >= 2
    submits = fake.calls("veo")
    assert len(submits) == len(video.tiers) and all(call.has_image for call in submits)
    # scene 0 animates the still; every later scene starts on the previous clip's last frame
    assert sent_image(submits[0]) != sent_image(submits[1])
    for index, call in enumerate(submits[1:]):
        clip = video.session / f"video_clips/scene_{index:03d}.mp4"
        frame = rgb(sent_image(call))
        assert len(frame) == 144 * 256 * 3 and rgb(clip)[-len(frame):] == frame
    data = json.loads((video.session / "metadata/manifest.json").read_text())
    assert math.isclose(data["cost"]["spent"],
                        sum(agent.price.video(params(c)["durationSeconds"], False)
                            for c in submits), rel_tol=1e-6)
    assert decode(video.path)["has_video"]


@settings(max_examples=300)
@given(elapsed=st.floats(0, 1000), interval=st.floats(0.01, 60), first=st.floats(0.01, 10),
       longest=st.floats(10, 120),
       due=st.lists(st.floats(0.01, 1000), max_size=2).map(sorted).map(tuple),
       polled_share=st.floats(0, 1))
def test_polls_land_on_the_learnt_times_and_never_later_than_the_backoff(
        elapsed: float, interval: float, first: float, longest: float,
        due: tuple[float, ...], polled_share: float) -> None:
    polled = elapsed * polled_share  # the last poll was at or before now
    wait, following = next_poll(elapsed, interval, due, first, longest, polled)
    assert 0 <= wait <= interval
    passed = [t for t in due if polled < t <= elapsed]
    upcoming = [t for t in due if t > elapsed]
    if passed:
        assert wait == 0 and following == first  # learnt since its last poll: at once
    elif upcoming and upcoming[0] - elapsed < interval:
        assert wait > 0 and elapsed + wait == pytest.approx(upcoming[0])  # on the time
        assert following == first
    elif due and elapsed >= due[0]:
        assert 0 < wait <= first and following == first  # due: polled briskly from now on
        if elapsed < due[-1] + first:  # just past the quickest's time: a quarter as long
            assert wait == min(interval, first / 4)
        else:
            assert wait == min(interval, first)
    else:
        assert wait == interval and following == min(interval * 1.5, longest)


@given(runs=st.lists(st.tuples(st.floats(0.1, 100), st.floats(0.1, 100)), min_size=1,
                     max_size=8))
def test_learnt_operation_times_bracket_the_quickest_done(
        runs: list[tuple[float, float]]) -> None:
    """Each operation adds when a poll last found it running and when one found it done;
    the times to poll at are the quickest done, and half way to it from the latest running
    time below it."""
    observed = [(min(a, b) if a != b else None, max(a, b)) for a, b in runs]
    times = OperationTimes()
    assert times.due() == ()  # nothing learnt: no time to poll at but the backoff's
    for running, done in observed:
        times.learn(running, done)
    quickest = min(done for _, done in observed)
    below = [r for r, _ in observed if r is not None and r < quickest]
    assert times.done_by == quickest
    if below:
        assert times.due() == ((max(below) + quickest) / 2, quickest)
    else:
        assert times.due() == (quickest,)


def test_staggered_first_polls_spread_over_the_whole_interval() -> None:
    times = OperationTimes()
    shares = [times.stagger() for _ in range(12)]
    assert all(0 < share <= 1 for share in shares)
    assert len({round(share, 6) for share in shares}) == len(shares)  # no two poll together
    ordered = sorted(shares)
    gaps = [b - a for a, b in itertools.pairwise([0.0, *ordered, 1.0])]
    assert max(gaps) < 3 / len(shares)  # spread over the interval, not bunched in a part
    wave = OperationTimes()
    four = sorted(wave.stagger() for _ in range(4))  # a quota's wave of four
    assert four[0] < 0.25 and four[-1] > 0.75


def test_news_of_a_done_operation_wakes_the_ones_napping_on_other_loops() -> None:
    """A Dask worker runs runs in several threads, each with its own loop: learning that an
    operation of a kind is done wakes every nap of that kind, whatever its loop."""
    times = OperationTimes()
    napping = threading.Barrier(3)
    results: list[bool] = []

    async def sleeper() -> None:
        task = asyncio.ensure_future(times.nap(3600))
        await asyncio.sleep(0)  # the nap is registered once the task has started
        napping.wait()
        results.append(await task)

    threads = [threading.Thread(target=asyncio.run, args=(sleeper(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    napping.wait()
    times.learn(3.0, 4.0)
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads) and results == [True, True]
    assert times.due() == (3.5, 4.0)  # running at 3.0 is below 4.0: half way, then 4.0
    # a nap nobody interrupts runs its time and says so
    assert asyncio.run(times.nap(0.01)) is False


def test_a_clip_waiting_for_its_poll_is_polled_at_once_when_its_kind_is_seen_done(
        fake: FakeGemini, tmp_path: Path) -> None:
    """Two clips of one kind napping before polls an hour away: news that such operations
    are done within half a second of their submit (from another run of the agent) has both
    polled at once, each found done at its first poll."""
    agent = veo(fake, poll_interval=3600.0, poll_max_interval=3600.0)
    second = Scene(1, "Clouds gather over the hills.", visual="Clouds over green hills")

    async def scenario() -> list[ClipAsset]:
        runs = [asyncio.ensure_future(agent.generate(scene, 3.2, TALL, tmp_path / name))
                for scene, name in ((SCENE, "a.mp4"), (second, "b.mp4"))]
        for _ in range(6000):  # a guard against a hang: until both nap before their poll
            kinds = list(agent._times.values())
            if len(kinds) == 1 and len(kinds[0]._sleepers) == 2:
                break
            await asyncio.sleep(0.01)
        assert fake.count("veo") == 2 and fake.count("poll") == 0
        kinds[0].learn(None, 0.5)  # what another run of the agent would report
        return await asyncio.wait_for(asyncio.gather(*runs), 600)  # a guard, not a timing

    assets = asyncio.run(scenario())
    assert fake.count("poll") == 2  # one each: at the news, not an hour later
    assert all(decode(asset.path)["frames"] == 96 for asset in assets)
