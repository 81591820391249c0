"""Loudness you can trust: the final file lands on the target (EBU R128) under a -1 dBTP
ceiling, says so when it cannot, and bad music is refused before anything is made.

Everything is measured on the final MP4, decoded by ffmpeg's own ``ebur128`` meter with
true peak on, as a platform's loudness check would.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest
from media import loudness_between, make_image, make_music, make_wav
from media import measure_loudness as measure

from avgen import Preset, RunEvent, Scene, Soundtrack, VideoGenerator, VideoRequest
from avgen._models import AudioAsset, CardVisual, ImageAsset, Segment
from avgen.errors import UsageError
from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.media._timeline import Timeline
from avgen.testing import ToneNarrator

TINY = Preset("tiny", 192, 336, fps=12, crf=30, encoder_preset="ultrafast",
              caption_margin=0.2)
SCRIPT = ("# Lighthouses\n\nFor centuries, lighthouses have guided sailors home. Their beams "
          "cut through fog and storm.\n\nThe first famous lighthouse stood in Alexandria, in "
          "ancient Egypt.\n")
TOLERANCE = 0.5  # LU, the promise
CEILING = -1.0  # dBTP, the promise


class Notes:
    """A progress callback that takes notes, as a run's does."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, fraction: float) -> None:
        pass

    def note(self, message: str, **data: Any) -> None:
        self.notes.append((message, data))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A short video made end to end by the default (offline) agents: the real Piper voice,
    at the default target; its narrations are reused below at other targets and lengths."""
    out = tmp_path_factory.mktemp("spoken")
    events: list[RunEvent] = []
    generator = VideoGenerator(output_dir=out)
    generator.subscribe(events.append)
    video = generator.generate_sync(script=SCRIPT, preset=TINY)
    wavs = sorted((video.session / "audio").glob("scene_*.wav"))
    assert wavs
    return {"video": video, "wavs": wavs, "events": events}


def voice_timeline(wavs: list[Path], seconds: float, soundtrack: Soundtrack) -> Timeline:
    """Scenes of real Piper speech (the narrations repeated) lasting about ``seconds``."""
    import wave

    parts: list[tuple[Scene, AudioAsset | None, CardVisual]] = []
    total, index = 0.0, 0
    while total < seconds * 0.9:
        wav = wavs[index % len(wavs)]
        with wave.open(str(wav)) as reader:
            length = reader.getnframes() / reader.getframerate()
        parts.append((Scene(index, "Words."),
                      AudioAsset(wav, length, (Segment("Words.", 0.0, length),)),
                      CardVisual("")))
        total += length
        index += 1
    return Timeline.build(TINY, parts, burn_captions=False, soundtrack=soundtrack)


def compose(timeline: Timeline, target: Path, progress: Notes | None = None) -> Path:
    asyncio.run(FFmpegComposer().compose(timeline, target, progress))
    return target


def test_the_default_run_lands_on_minus_14_under_the_ceiling(spoken: dict[str, Any]) -> None:
    loud, peak = measure(spoken["video"].path)
    assert abs(loud - (-14.0)) <= TOLERANCE, loud
    assert peak <= CEILING, peak
    assert not [e for e in spoken["events"] if e.kind == "note"]  # nothing to tell


@pytest.mark.parametrize("seconds", [10, 60])
@pytest.mark.parametrize("target", [-14.0, -16.0, -20.0])
@pytest.mark.parametrize("music", [False, True], ids=["voice", "music"])
def test_every_target_and_length_is_met_under_a_minus_1_dbtp_ceiling(
        spoken: dict[str, Any], tmp_path: Path, seconds: int, target: float,
        music: bool) -> None:
    track = Soundtrack(loudness=target, music=make_wav(tmp_path / "music.wav", 3.0, freq=220)
                       if music else None, music_volume=12.0)
    timeline = voice_timeline(spoken["wavs"], seconds, track)
    notes = Notes()
    loud, peak = measure(compose(timeline, tmp_path / "out.mp4", notes))
    assert abs(loud - target) <= TOLERANCE, (loud, target)
    assert peak <= CEILING, peak
    assert notes.notes == []


def gapped_timeline(wavs: list[Path], soundtrack: Soundtrack, gap: float = 4.0) -> Timeline:
    """Piper speech, a silent scene (only the music plays), speech, a silent scene, speech."""
    import wave

    parts: list[tuple[Scene, AudioAsset | None, CardVisual]] = []
    for index in range(5):
        audio = None
        if index % 2 == 0:
            wav = wavs[(index // 2) % len(wavs)]
            with wave.open(str(wav)) as reader:
                length = reader.getnframes() / reader.getframerate()
            audio = AudioAsset(wav, length, (Segment("Words.", 0.0, length),))
        parts.append((Scene(index, "Words."), audio, CardVisual("")))
    return Timeline.build(TINY, parts, burn_captions=False, soundtrack=soundtrack,
                          silent_seconds=gap)


def music_below_voice(video: Path, timeline: Timeline) -> float:
    """How many LU the music sits below the narration in ``video``: the loudness of the
    speech stretches minus that of the music alone in the silent scenes (from 1 s after
    the speech, once the ducking has let go, to just before the next)."""
    speech = [(s.start, s.start + s.duration) for s in timeline.scenes if s.narration]
    gaps = [(s.start + 1.0, s.start + s.duration - 0.2) for s in timeline.scenes
            if s.narration is None]
    return loudness_between(video, speech) - loudness_between(video, gaps)


@pytest.mark.parametrize(("music_lufs", "kind", "below"), [
    (-40.0, "chords", 18.0), (-10.0, "chords", 18.0), (-24.0, "noise", 24.0),
    (-16.0, "noise", 6.0)])
def test_the_music_sits_where_asked_below_the_voice_whatever_its_level(
        spoken: dict[str, Any], tmp_path: Path, music_lufs: float, kind: str,
        below: float) -> None:
    """A quiet file and a loud one end at the same place: ``music_volume`` LU under the
    narration (±1.5), measured in the final file; the mix stays on its target."""
    music = make_music(tmp_path / "music.wav", music_lufs, kind=kind)
    track = Soundtrack(music=music, music_volume=below)
    timeline = gapped_timeline(spoken["wavs"], track)
    video = compose(timeline, tmp_path / "out.mp4")
    assert abs(music_below_voice(video, timeline) - below) <= 1.5
    loud, peak = measure(video)
    assert abs(loud - track.loudness) <= TOLERANCE and peak <= CEILING


@pytest.mark.parametrize("bad", [-18.0, 41, math.nan, "18"])
def test_a_music_volume_out_of_range_is_refused_saying_what_it_means(bad: Any) -> None:
    with pytest.raises(UsageError) as caught:
        Soundtrack(music_volume=bad)
    assert caught.value.field == "soundtrack.music_volume"
    assert "from 0 to 40 (dB the music sits below the narration" in caught.value.problem


def test_parts_do_not_change_the_loudness(spoken: dict[str, Any], tmp_path: Path) -> None:
    """A long video's picture is rendered in parts; its sound is mixed once, so the
    parts cannot move the loudness: the same timeline in one part and in several measures
    the same."""
    image = make_image(tmp_path / "i.png", 320, 180)
    timeline = voice_timeline(spoken["wavs"], 20, Soundtrack())
    scenes = [scene if scene.index % 2 else
              type(scene)(scene.index, scene.start, scene.frames, scene.fps,
                          ImageAsset(image, 320, 180), scene.narration, scene.cues)
              for scene in timeline.scenes]
    timeline = attrs.evolve(timeline, scenes=scenes)
    whole = measure(compose(timeline, tmp_path / "whole.mp4"))
    asyncio.run(FFmpegComposer(max_scenes_per_pass=1).compose(timeline, tmp_path / "parts.mp4"))
    parts = measure(tmp_path / "parts.mp4")
    assert abs(whole[0] - parts[0]) <= 0.1 and abs(whole[1] - parts[1]) <= 0.1
    assert abs(parts[0] - (-14.0)) <= TOLERANCE and parts[1] <= CEILING


def test_an_unreachable_target_is_said_with_its_numbers(spoken: dict[str, Any],
                                                        tmp_path: Path) -> None:
    timeline = voice_timeline(spoken["wavs"], 10, Soundtrack(loudness=-8.0))
    notes = Notes()
    loud, peak = measure(compose(timeline, tmp_path / "loud.mp4", notes))
    assert peak <= CEILING  # never clipped to get there
    assert loud < -8.0 - TOLERANCE
    [(message, data)] = notes.notes
    match = re.fullmatch(r"loudness -8\.0 LUFS asked, (-[\d.]+) LUFS reached: more would "
                         r"clip \(true peak ceiling -1 dBTP\)", message)
    assert match, message
    assert abs(float(match.group(1)) - loud) <= 0.3
    assert data["loudness"] == -8.0 and data["integrated"] == float(match.group(1))


def test_a_run_with_an_unreachable_target_tells_its_events_and_its_log(
        spoken: dict[str, Any], tmp_path: Path) -> None:
    events: list[RunEvent] = []
    generator = VideoGenerator(output_dir=tmp_path)
    generator.subscribe(events.append)
    video = generator.generate_sync(script=SCRIPT, preset=TINY,
                                    soundtrack=Soundtrack(loudness=-8.0))
    notes = [e for e in events if e.kind == "note"]
    assert len(notes) == 1 and notes[0].message.startswith("loudness -8.0 LUFS asked, ")
    assert "more would clip" in notes[0].message
    assert notes[0].data["integrated"] < -8.5
    log = (video.session / "logs/session.log").read_text("utf-8")
    assert notes[0].message in log
    assert measure(video.path)[1] <= CEILING


def corrupt_music(folder: Path) -> dict[str, Path]:
    rng = random.Random(7)
    good = folder / "good.mp3"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "sine=d=3",
                    "-c:a", "libmp3lame", str(good)], check=True)
    files = {"random": folder / "random.mp3", "text": folder / "notes.mp3",
             "truncated": folder / "truncated.mp3", "empty": folder / "empty.mp3",
             "picture": folder / "picture.mp3"}
    files["random"].write_bytes(rng.randbytes(50_000))
    files["text"].write_text("These are my notes, not a song.\n" * 100)
    files["truncated"].write_bytes(good.read_bytes()[:300])
    files["empty"].write_bytes(b"")
    make_image(folder / "cover.png", 64, 64).rename(files["picture"])  # no sound in it
    return files


@pytest.mark.parametrize("kind", ["random", "text", "truncated", "empty", "picture"])
def test_corrupt_music_is_refused_before_any_narration(tmp_path: Path, kind: str) -> None:
    bad = corrupt_music(tmp_path)[kind]
    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path / "out")
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(script=SCRIPT, preset=TINY, soundtrack=Soundtrack(music=bad))
    assert caught.value.field == "soundtrack.music"
    assert str(bad) in str(caught.value)
    assert narrator.calls == 0
    assert not list((tmp_path / "out").glob("**/*.wav"))


def test_good_music_passes_the_check(tmp_path: Path) -> None:
    music = make_wav(tmp_path / "music.wav", 2.0)
    FFmpegComposer().check(VideoRequest(script=SCRIPT, soundtrack=Soundtrack(music=music)))


def test_the_command_refuses_corrupt_music_with_exit_2(tmp_path: Path) -> None:
    bad = corrupt_music(tmp_path)["text"]
    script = tmp_path / "script.md"
    script.write_text(SCRIPT, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "avgen", "make", "--script", str(script),
                           "--music", str(bad), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "soundtrack.music" in proc.stderr and bad.name in proc.stderr
    assert not list((tmp_path / "out").glob("**/*.wav"))


@attrs.define
class LoudComposer:
    """Composes with the real composer, then turns the sound up 6 dB (a custom composer
    that ignores the target)."""

    name: str = "loud"

    async def compose(self, timeline: Timeline, target: Path, progress: Any = None) -> None:
        plain = target.with_name("plain-" + target.name)
        await FFmpegComposer().compose(timeline, plain)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(plain), "-c:v", "copy",
                        "-af", "volume=6dB", "-c:a", "aac", "-f", "mp4", str(target)],
                       check=True)
        plain.unlink()


def test_the_manifest_keeps_the_final_files_measured_loudness(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)
    video = generator.generate_sync(script="Bees dance. Moths drift. Beetles dig.",
                                    preset=TINY)
    manifest = json.loads(video.manifest.read_text())
    recorded = manifest["steps"]["compose"]["data"]["loudness"]
    integrated, peak = measure(video.path)  # an independent meter
    assert recorded["target_lufs"] == -14.0
    assert recorded["integrated_lufs"] == pytest.approx(integrated, abs=0.1)
    assert recorded["true_peak_dbtp"] == pytest.approx(peak, abs=0.1)
    assert abs(recorded["integrated_lufs"] + 14.0) <= 0.5 and recorded["true_peak_dbtp"] <= -1


class Measured(Notes):
    """A progress callback that also takes the composer's measurement of its file."""

    def __init__(self) -> None:
        super().__init__()
        self.sound: list[tuple[float | None, float | None]] = []

    def measured(self, integrated_lufs: float | None, true_peak_dbtp: float | None) -> None:
        self.sound.append((integrated_lufs, true_peak_dbtp))


def test_the_composer_measures_the_sound_the_file_gets(spoken: dict[str, Any],
                                                        tmp_path: Path) -> None:
    """The default composer measures its soundtrack while the picture is encoded; the file
    gets that sound by stream copy, so an independent meter reads the same numbers off
    the finished file. A callback without ``measured`` is not asked."""
    timeline = voice_timeline(spoken["wavs"], 10, Soundtrack(loudness=-18.0))
    told = Measured()
    integrated, peak = measure(compose(timeline, tmp_path / "told.mp4", told))
    [(said_lufs, said_peak)] = told.sound
    assert said_lufs == pytest.approx(integrated, abs=0.05)
    assert said_peak == pytest.approx(peak, abs=0.05)
    assert abs(integrated - (-18.0)) <= TOLERANCE
    plain = measure(compose(timeline, tmp_path / "plain.mp4", Notes()))
    assert plain == pytest.approx((integrated, peak), abs=0.05)


@attrs.define
class SayingComposer:
    """The real composer, which then tells the run what it measured, as a composer of
    its own may (here a quieter figure than the file's, to see whose word counts)."""

    name: str = "saying"

    async def compose(self, timeline: Timeline, target: Path, progress: Any = None) -> None:
        inner = Measured()
        await FFmpegComposer().compose(timeline, target, inner)
        [(integrated, peak)] = inner.sound
        assert integrated is not None and peak is not None
        progress.measured(integrated - 10.0, peak - 10.0)


def test_the_run_takes_the_composers_measurement(tmp_path: Path) -> None:
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(), composer=SayingComposer(),
                               output_dir=tmp_path, on_event=events.append)
    video = generator.generate_sync(script="Bees dance. Moths drift.", preset=TINY)
    recorded = json.loads(video.manifest.read_text())["steps"]["compose"]["data"]["loudness"]
    integrated, peak = measure(video.path)
    assert recorded["integrated_lufs"] == pytest.approx(integrated - 10.0, abs=0.1)
    assert recorded["true_peak_dbtp"] == pytest.approx(peak - 10.0, abs=0.1)
    said = [e.message for e in events if e.kind == "note" and "measures" in e.message]
    assert len(said) == 1 and f"{recorded['integrated_lufs']:.1f} LUFS" in said[0]


def test_a_composer_that_misses_the_target_is_told(tmp_path: Path) -> None:
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(), composer=LoudComposer(),
                               output_dir=tmp_path, on_event=events.append)
    video = generator.generate_sync(script="Bees dance. Moths drift.", preset=TINY)
    said = [e.message for e in events if e.kind == "note" and "measures" in e.message]
    integrated, _ = measure(video.path)
    assert integrated > -10.0
    assert len(said) == 1 and f"{integrated:.1f} LUFS" in said[0] and "-14.0" in said[0]
