"""The pipeline with fast test agents: fallbacks, custom agents, resume, bad input, crashes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import wave
from pathlib import Path
from typing import Any

import attrs
import pytest

import avgen
from avgen import (
    AudioAsset,
    CaptionStyle,
    ClipAsset,
    Preset,
    Scene,
    Script,
    VideoGenerator,
    VideoRequest,
)
from avgen._session import Session
from avgen.agents import Narrator, ScriptWriter
from avgen.costs import paid_call
from avgen.errors import AgentError, GenerationError, UsageError
from avgen.media._ffmpeg import probe
from avgen.testing import PatternClips, PatternImages, ToneNarrator

SCRIPT = """# Three Facts

Octopuses have three hearts.

Honey never spoils. Archaeologists found edible honey in ancient tombs.

Bananas are berries, but strawberries are not.
"""


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def manifest(video_session: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((video_session / "metadata/manifest.json").read_text())
    return data


def test_fallback_chain_clip_then_image_then_card(tmp_path: Path) -> None:
    clips = PatternClips(fail_on={1, 2})
    images = PatternImages(fail_on={2})
    events: list[str] = []
    progress: list[float] = []
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=clips,
                               image_generator=images, output_dir=tmp_path,
                               on_event=lambda e: (events.append(e.kind),
                                                   progress.append(e.progress)))
    video = generator.generate_sync(script=SCRIPT)
    assert progress == sorted(progress) and progress[-1] == 1.0  # a bar never goes back

    assert video.tiers == ("clip", "image", "card")
    steps = manifest(video.session)["steps"]
    assert steps["scene-000.visual"]["status"] == "done"
    assert steps["scene-001.visual"]["status"] == "fallback"
    assert steps["scene-001.visual"]["tier"] == "image"
    assert "no clip for scene 2" in steps["scene-001.visual"]["error"]
    assert steps["scene-002.visual"]["tier"] == "card"
    assert "no image for scene 3" in steps["scene-002.visual"]["error"]
    assert events.count("fallback") == 3
    info = probe(video.path)
    assert (info.width, info.height) == (360, 640)
    narration = sum(wav_seconds(p) for p in sorted((video.session / "audio").glob("*.wav")))
    assert info.duration is not None and abs(info.duration - narration) <= 0.5


def test_required_tier_fails_the_run_and_keeps_the_assets(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=PatternClips(fail_on={0}),
                               output_dir=tmp_path, required_tier="clip")
    with pytest.raises(GenerationError) as caught:
        generator.generate_sync(script=SCRIPT)
    assert isinstance(caught.value.__cause__, AgentError)
    session = caught.value.session
    assert session is not None and (session / "audio/scene_000.wav").is_file()
    data = manifest(session)
    assert data["status"] == "failed"
    assert data["steps"]["scene-000.visual"]["status"] == "failed"
    assert not list((session / "final_output").glob("*.mp4"))


class PlainWriter:
    """A script writer with a plain (blocking) method and no avgen base class."""

    def write(self, request: VideoRequest) -> Script:
        words = (request.topic or "").split()
        return Script("Plain", [Scene(i, f"Word {w}.", title=w) for i, w in enumerate(words)])


class CountingNarrator:
    """A narrator written from scratch: wraps the tone narrator without inheriting."""

    def __init__(self) -> None:
        self.inner = ToneNarrator(seconds_per_word=0.3)

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        return await self.inner.speak(text, target, voice=voice)


def test_custom_agents_need_no_base_class(tmp_path: Path) -> None:
    writer, narrator = PlainWriter(), CountingNarrator()
    assert isinstance(writer, ScriptWriter) and isinstance(narrator, Narrator)
    generator = VideoGenerator(script_writer=writer, narrator=narrator, output_dir=tmp_path)
    video = generator.generate_sync(topic="alpha beta")
    assert narrator.inner.spoken == ["Word alpha.", "Word beta."]
    assert manifest(video.session)["agents"]["narrator"] == "CountingNarrator"
    assert video.tiers == ("card", "card")
    assert "Word alpha." in video.captions["srt"].read_text()


def test_an_object_without_the_method_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        VideoGenerator(narrator=object(), output_dir=tmp_path)
    assert caught.value.field == "narrator"


def test_resume_redoes_only_missing_or_corrupt_steps(tmp_path: Path) -> None:
    narrator, images = ToneNarrator(), PatternImages()
    generator = VideoGenerator(narrator=narrator, image_generator=images, output_dir=tmp_path)
    video = generator.generate_sync(script=SCRIPT)
    assert (narrator.calls, images.calls) == (3, 3)
    first_video = video.path.read_bytes()

    # nothing missing: nothing is redone, the video is kept
    again = generator.resume_sync(video.session)
    assert (narrator.calls, images.calls) == (3, 3)
    assert again.path.read_bytes() == first_video

    # a deleted narration, an image corrupted in place, a deleted video
    (video.session / "audio/scene_001.wav").unlink()
    image = video.session / "images/scene_002.png"
    image.write_bytes(image.read_bytes()[:-1] + b"\x00")
    video.path.unlink()
    resumed = generator.resume_sync(video.session)
    assert narrator.spoken[3:] == ["Honey never spoils. Archaeologists found edible honey in "
                                   "ancient tombs."]
    assert images.calls == 4
    assert resumed.path == video.path and resumed.path.is_file()
    assert manifest(video.session)["status"] == "done"


def test_resume_of_a_folder_that_is_not_a_session(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        VideoGenerator(narrator=ToneNarrator()).resume_sync(tmp_path)
    assert caught.value.field == "session"


@pytest.mark.parametrize(("fields", "field"), [
    ({"script": ""}, "script"),
    ({"script": "  \n\t "}, "script"),
    ({"topic": "   "}, "script"),
    ({"script": "Hi.", "preset": "cinema"}, "preset"),
    ({"script": "Hi.", "duration": 0.1}, "duration"),
    ({"script": "Hi.", "duration": 99999}, "duration"),
    ({"script": "Hi.", "voice": "no-such-voice"}, "voice"),
    ({"script": "[Music]\n\n(pause)"}, "script"),
])
def test_bad_input_is_refused_before_any_work(tmp_path: Path, fields: dict[str, Any],
                                              field: str) -> None:
    narrator = ToneNarrator()
    generator = VideoGenerator(output_dir=tmp_path / "out")
    generator_fake = VideoGenerator(narrator=narrator, output_dir=tmp_path / "out")
    target = generator if field == "voice" else generator_fake
    with pytest.raises(UsageError) as caught:
        target.generate_sync(**fields)
    assert caught.value.field == field
    assert narrator.calls == 0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unwritable_output_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=blocker / "out")
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(script="Hello.")
    assert caught.value.field == "out"


class BrokenComposer:
    """Writes half a file, then crashes."""

    async def compose(self, timeline: Any, target: Path, progress: Any = None) -> None:
        target.write_bytes(b"\x00" * 1000)
        raise RuntimeError("power cut")


def test_a_crash_never_leaves_a_partial_file_under_a_final_name(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), composer=BrokenComposer(),
                               output_dir=tmp_path)
    with pytest.raises(RuntimeError, match="power cut"):
        generator.generate_sync(script="Hello there.")
    (session,) = tmp_path.iterdir()
    assert manifest(session)["status"] == "failed"
    assert "power cut" in manifest(session)["error"]
    assert not list(session.rglob("*.mp4"))
    assert not list(session.rglob("*.part*"))
    assert (session / "audio/scene_000.wav").is_file()


def test_generate_sync_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)

    async def notebook_cell() -> Path:
        asyncio.get_running_loop()  # as in Jupyter: a loop is already running
        return generator.generate_sync(script="Inside a loop.").path

    assert asyncio.run(notebook_cell()).is_file()


def chain(error: BaseException) -> list[BaseException]:
    """The error and every error it is chained to (``__cause__`` or ``__context__``)."""
    found: list[BaseException] = []
    link: BaseException | None = error
    while link is not None and link not in found:
        found.append(link)
        link = link.__cause__ or link.__context__
    return found


@pytest.mark.parametrize("fields", [{"script": ""}, {"script": "Hi.", "preset": "cinema"}])
def test_a_sync_call_raises_the_error_alone(tmp_path: Path, fields: dict[str, Any]) -> None:
    """No "no running event loop" RuntimeError rides along with the error of a sync call."""
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)
    with pytest.raises(UsageError) as refused:
        generator.generate_sync(**fields)
    assert chain(refused.value) == [refused.value]
    with pytest.raises(GenerationError) as failed:
        VideoGenerator(narrator=BrokenVoice(), output_dir=tmp_path).generate_sync(script=SCRIPT)
    assert not [e for e in chain(failed.value) if "event loop" in str(e)]


def test_generate_is_awaitable_and_runs_sessions_concurrently(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)

    async def both() -> list[Path]:
        videos = await asyncio.gather(generator.generate(script="First video."),
                                      generator.generate(script="Second video."))
        return [v.session for v in videos]

    first, second = asyncio.run(both())
    assert first != second
    for session, text in ((first, "First video."), (second, "Second video.")):
        log = (session / "logs/session.log").read_text()
        assert str(session) in log
        other = second if session == first else first
        assert str(other) not in log
        assert text in (session / "scripts/narration.txt").read_text()


def test_session_reopens_with_its_request(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)
    video = generator.generate_sync(script="Saved request.", preset="square", title="T")
    request = VideoRequest.from_dict(Session.open(video.session).manifest["request"])
    assert request.preset.name == "square" and request.title == "T"
    assert (video.width, video.height) == (1080, 1080)


def test_a_re_spoken_narration_does_not_pay_for_the_clip_again(tmp_path: Path) -> None:
    clips = PatternClips()
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=clips,
                               output_dir=tmp_path)
    video = generator.generate_sync(script="A paid clip lives here.")
    assert clips.calls == 1
    (video.session / "audio/scene_000.wav").unlink()
    # the same voice, a slightly different take: the narration is a little longer
    retake = VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.23), clip_generator=clips,
                            output_dir=tmp_path)
    resumed = retake.resume_sync(video.session)
    assert clips.calls == 1
    assert resumed.duration > video.duration  # the video follows the new narration


class GatedClips:
    """Clips that wait at a gate and then pay: a scene still running after its run failed
    would pay once the gate opens."""

    name = "gated-clips"

    def __init__(self, waiting_for: int) -> None:
        self.waiting_for = waiting_for
        self.started: set[int] = set()
        self.all_started = asyncio.Event()
        self.gate = asyncio.Event()
        self.paid = self.cancelled = 0
        self.inner = PatternClips()

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        self.started.add(scene.index)
        if len(self.started) == self.waiting_for:
            self.all_started.set()
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        with paid_call(agent=self.name, model="clip", quantity=1, unit="video_second", usd=1):
            self.paid += 1
        return await self.inner.generate(scene, seconds, preset, target)


class FirstSceneFails:
    """Fails scene 0's narration once the other scenes are making their clips."""

    def __init__(self, clips: GatedClips) -> None:
        self.clips, self.inner, self.broken = clips, ToneNarrator(), True

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        if self.broken and text.startswith("Octopuses"):
            await self.clips.all_started.wait()
            raise AgentError("the voice is gone", "first-fails")
        return await self.inner.speak(text, target, voice=voice)


def test_a_failed_scene_cancels_its_siblings_before_they_pay(tmp_path: Path) -> None:
    clips = GatedClips(waiting_for=2)
    narrator = FirstSceneFails(clips)
    generator = VideoGenerator(narrator=narrator, clip_generator=clips, output_dir=tmp_path)

    async def main() -> Path:
        with pytest.raises(GenerationError) as failed:
            await generator.generate(script=SCRIPT)
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no scene is left running
        assert clips.cancelled == 2
        session = failed.value.session
        assert session is not None
        recorded = (session / "metadata/manifest.json").read_text()
        clips.gate.set()  # a sibling still alive would pay and record its step now
        for _ in range(20):
            await asyncio.sleep(0)
        assert clips.paid == 0
        assert (session / "metadata/manifest.json").read_text() == recorded
        return session

    session = asyncio.run(main())
    data = manifest(session)
    assert data["status"] == "failed" and data["cost"]["spent"] == 0
    assert data["steps"]["scene-000.narration"]["status"] == "failed"
    assert "scene-001.visual" not in data["steps"]

    # a resume keeps what finished: the two narrations spoken before the failure
    narrator.broken = False
    spoken_before = len(narrator.inner.spoken)
    clips.gate.set()
    video = generator.resume_sync(session)
    assert narrator.inner.spoken[spoken_before:] == ["Octopuses have three hearts."]
    assert video.tiers == ("clip", "clip", "clip") and clips.paid == 3


def test_generate_sync_cancels_the_siblings_the_same_way(tmp_path: Path) -> None:
    clips = GatedClips(waiting_for=2)
    generator = VideoGenerator(narrator=FirstSceneFails(clips), clip_generator=clips,
                               output_dir=tmp_path)
    with pytest.raises(GenerationError, match="the voice is gone"):
        generator.generate_sync(script=SCRIPT)
    assert (clips.cancelled, clips.paid) == (2, 0)


class LongClaims:
    """A narrator that claims five times the length it wrote."""

    def __init__(self) -> None:
        self.inner = ToneNarrator()

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        asset = await self.inner.speak(text, target, voice=voice)
        return attrs.evolve(asset, duration=asset.duration * 5)


def test_the_measured_narration_rules_over_the_narrators_claim(tmp_path: Path) -> None:
    video = VideoGenerator(narrator=LongClaims(), output_dir=tmp_path).generate_sync(
        script="Short and sweet.")
    spoken = wav_seconds(video.session / "audio/scene_000.wav")
    recorded = manifest(video.session)["steps"]["scene-000.narration"]["data"]["asset"]
    assert abs(recorded["duration"] - spoken) <= 0.02
    assert abs(video.duration - spoken) <= 0.25


def test_the_caption_style_is_part_of_the_request_and_a_resume_keeps_it(
        tmp_path: Path) -> None:
    bold = Path(avgen.__file__).parent / "media/fonts/DejaVuSans-Bold.ttf"
    style = CaptionStyle(font=str(bold), color="#FFFF00", max_lines=1)
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)
    video = generator.generate_sync(VideoRequest(script=SCRIPT, caption_style=style))
    data = manifest(video.session)
    assert data["request"]["caption_style"]["color"] == "#FFFF00"
    ass = video.captions["ass"].read_text()
    assert "DejaVu Sans" in ass and str(bold) not in ass  # the family the composer burns
    assert "&H0000FFFF" in ass.upper()  # yellow, in ASS's BGR order

    video.path.unlink()
    video.captions["ass"].unlink()
    again = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path).resume_sync(
        video.session)
    assert again.captions["ass"].read_text() == ass


class BrokenVoice:
    """A narrator whose service error is chained to the agent error it raises."""

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        try:
            raise ConnectionAbortedError("the voice service hung up")
        except ConnectionAbortedError as exc:
            raise AgentError("no narration", "broken-voice") from exc


def test_a_failed_scene_keeps_the_cause_of_its_error(tmp_path: Path) -> None:
    with pytest.raises(GenerationError) as failed:
        VideoGenerator(narrator=BrokenVoice(), output_dir=tmp_path).generate_sync(script=SCRIPT)
    error = failed.value.__cause__
    assert isinstance(error, AgentError)
    assert isinstance(error.__cause__, ConnectionAbortedError)


class BreaksItsSession(ToneNarrator):
    """Fails, after putting a file where the session keeps its manifest."""

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        metadata = target.parent.parent / "metadata"
        for attempt in itertools.count():  # the manifest's writer may make it again between
            with contextlib.suppress(FileNotFoundError):  # the two: then once more
                metadata.rename(metadata.with_name(f"metadata.gone{attempt}"))
            try:
                metadata.write_text("not a folder")
                break
            except IsADirectoryError:
                continue
        raise AgentError("the voice is gone", "breaks-its-session")


def test_a_manifest_that_cannot_be_saved_does_not_hide_the_runs_error(tmp_path: Path) -> None:
    """The run's own failure is what the caller gets; that its manifest could not be
    saved either rides along as a note."""
    generator = VideoGenerator(narrator=BreaksItsSession(), output_dir=tmp_path)
    with pytest.raises(GenerationError, match="the voice is gone") as failed:
        generator.generate_sync(script="Octopuses have three hearts.", preset="draft")
    notes = getattr(failed.value, "__notes__", [])
    assert any("manifest could not be saved" in note for note in notes), notes
