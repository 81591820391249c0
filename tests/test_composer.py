"""FFmpegComposer and probe against real ffmpeg: real assets in, decoded real video out."""

from __future__ import annotations

import asyncio
import subprocess
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from media import decode, gray_frame, make_clip, make_image, make_wav, mean_abs_diff, mean_luma

from avgen._models import (
    PRESETS,
    AudioAsset,
    CardVisual,
    ClipAsset,
    ImageAsset,
    Preset,
    Scene,
    Segment,
    Visual,
)
from avgen.errors import MediaError
from avgen.media import _composer as composer_module
from avgen.media._captions import caption_margin
from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import ProgressCallback, ffmpeg_exe, probe
from avgen.media._fonts import bundled_fonts_dir, find_font, uncovered
from avgen.media._graph import escape_filter_value
from avgen.media._timeline import Timeline

TINY = Preset("t", 160, 288, fps=12, encoder_preset="ultrafast")
DRAFT = PRESETS["draft"]  # 360×640: captions big enough to measure
NARRATIONS = (1.3, 0.9, 2.2)
CLIP_SECONDS = 1.0  # shorter than its 2.2 s narration: the composer must loop it
HEBREW = "שלום עולם"

Part = tuple[Scene, AudioAsset | None, Visual]


def compose(timeline: Timeline, target: Path, progress: ProgressCallback | None = None) -> Path:
    asyncio.run(FFmpegComposer().compose(timeline, target, progress))
    return target


def clip_asset(path: Path) -> ClipAsset:
    info = probe(path)
    assert info.duration is not None
    return ClipAsset(path, info.duration, info.width, info.height, info.fps, info.has_audio)


def diff(a: bytes, b: bytes) -> float:
    return sum(abs(p - q) for p, q in zip(a, b, strict=True)) / len(a)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("assets")
    made = {f"wav{i}": make_wav(folder / f"scene {i}.wav", s) for i, s in enumerate(NARRATIONS)}
    made["short_wav"] = make_wav(folder / "short.wav", 0.9, rate=16000, freq=330)
    made["image"] = make_image(folder / "wide.png", 640, 360)  # 16:9 into a 9:16 frame
    made["clip"] = make_clip(folder / "landscape.mp4", CLIP_SECONDS, 320, 180, fps=25)
    return made


def three_scenes(assets: dict[str, Path], **kwargs: Any) -> Timeline:
    wavs = [assets[f"wav{i}"] for i in range(3)]
    parts: list[Part] = [
        (Scene(0, "A card opens the video."), AudioAsset(wavs[0], NARRATIONS[0]),
         CardVisual("The title")),
        (Scene(1, "Then a picture."), AudioAsset(wavs[1], NARRATIONS[1]),
         ImageAsset(assets["image"], 640, 360)),
        (Scene(2, "And a clip that loops."), AudioAsset(wavs[2], NARRATIONS[2]),
         clip_asset(assets["clip"])),
    ]
    return Timeline.build(TINY, parts, **kwargs)


@pytest.fixture(scope="module")
def rendered(assets: dict[str, Path],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Timeline, Path, list[float]]:
    timeline = three_scenes(assets)
    values: list[float] = []
    target = compose(timeline, tmp_path_factory.mktemp("out") / "three.mp4", values.append)
    return timeline, target, values


# --------------------------------------------------------------------------- the render


def test_three_scenes_decode_cleanly_with_exact_frames_and_sound(
        rendered: tuple[Timeline, Path, list[float]]) -> None:
    timeline, target, _ = rendered
    assert [s.frames for s in timeline.scenes] == [16, 11, 27]  # 1.3, 0.9, 2.2 s at 12 fps
    out = decode(target)
    assert out["errors"] == ""
    assert out["has_video"] and out["has_audio"]
    assert (out["width"], out["height"]) == (TINY.width, TINY.height)
    assert out["fps"] == TINY.fps
    assert out["frames"] == timeline.frames
    assert abs(out["audio_duration"] - timeline.duration) <= 1 / TINY.fps
    assert out["audio_duration"] >= sum(NARRATIONS)
    assert out["duration"] == pytest.approx(timeline.duration, abs=1 / TINY.fps)
    # nothing but the video is left next to it (the temporary .ass is removed)
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_probe_describes_the_output(rendered: tuple[Timeline, Path, list[float]]) -> None:
    timeline, target, _ = rendered
    info = probe(target)
    assert info.path == target
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height, info.fps) == (TINY.width, TINY.height, TINY.fps)
    assert (info.sample_rate, info.channels) == (48000, "stereo")
    assert info.has_video and info.has_audio
    assert info.duration == pytest.approx(timeline.duration, abs=1 / TINY.fps)


def test_progress_rises_to_one(rendered: tuple[Timeline, Path, list[float]]) -> None:
    _, _, values = rendered
    assert values and values[-1] == 1.0
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(a <= b for a, b in pairwise(values))


def test_the_short_clip_loops_and_pictures_fill_the_frame(
        rendered: tuple[Timeline, Path, list[float]]) -> None:
    timeline, target, _ = rendered
    clip_scene = timeline.scenes[2]

    def frame(scene_frame: int) -> bytes:  # the middle of a frame of the clip scene
        return gray_frame(target, clip_scene.start + (scene_frame + 0.5) / TINY.fps)[2]

    period = round(CLIP_SECONDS * TINY.fps)
    for k in (1, 5):
        assert diff(frame(k), frame(k + period)) < 2  # one loop later: the same picture
        assert diff(frame(k), frame(k + period // 2)) > 5  # half a loop later: it moved
    # the 16:9 still and clip are cropped to fill 9:16, not letterboxed with black bars
    for scene in timeline.scenes:
        t = scene.start + scene.duration / 2
        for box in ((0, 0, TINY.width, 6), (0, TINY.height - 6, TINY.width, 6)):
            assert mean_luma(target, t, box) > 30


def test_clip_whose_sound_outlasts_its_picture_still_fills_its_scene(
        assets: dict[str, Path], tmp_path: Path) -> None:
    """Container duration (2.1 s, the clip's own audio) > picture (1.5 s) > narration."""
    clip = tmp_path / "sound longer.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=320x180:r=25:d=1.5", "-f", "lavfi", "-i", "sine=d=2.1",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(clip)], check=True, capture_output=True)
    asset = clip_asset(clip)
    assert asset.duration == pytest.approx(2.1, abs=0.05) and asset.has_audio
    parts: list[Part] = [
        (Scene(0, "Card."), AudioAsset(assets["short_wav"], 0.9), CardVisual("")),
        (Scene(1, "Clip last."), AudioAsset(assets["wav2"], NARRATIONS[2]), asset),
    ]
    timeline = Timeline.build(TINY, parts)
    out = decode(compose(timeline, tmp_path / "out.mp4"))
    assert out["errors"] == ""
    assert out["frames"] == timeline.frames
    assert out["audio_duration"] >= 0.9 + NARRATIONS[2]


# --------------------------------------------------------------------------- captions


def caption_band(preset: Preset, timeline: Timeline) -> tuple[int, int, int, int]:
    """The middle of the strip where the bottom-centred caption block sits."""
    size = round(timeline.style.font_size * min(preset.width, preset.height))
    bottom = preset.height - round(caption_margin(timeline.style, preset) * preset.height)
    top = bottom - 3 * size
    return (preset.width // 4, top, preset.width // 2, bottom + size // 2 - top)


@pytest.fixture(scope="module")
def caption_renders(assets: dict[str, Path],
                    tmp_path_factory: pytest.TempPathFactory) -> dict[bool, tuple[Timeline, Path]]:
    """One picture-only timeline (no card titles), rendered with and without captions."""
    image = ImageAsset(assets["image"], 640, 360)
    hebrew = AudioAsset(assets["short_wav"], 0.9, [Segment(HEBREW, 0.0, 0.9)])
    parts: list[Part] = [
        (Scene(0, "Hello captions."), AudioAsset(assets["wav1"], NARRATIONS[1]), image),
        (Scene(1, HEBREW), hebrew, image),
    ]
    folder = tmp_path_factory.mktemp("captions")
    made: dict[bool, tuple[Timeline, Path]] = {}
    for burn in (True, False):
        timeline = Timeline.build(DRAFT, parts, burn_captions=burn)
        made[burn] = (timeline, compose(timeline, folder / f"burn-{burn}.mp4"))
    return made


def test_captions_are_burned_into_the_picture(
        caption_renders: dict[bool, tuple[Timeline, Path]]) -> None:
    timeline, with_captions = caption_renders[True]
    _, without = caption_renders[False]
    assert decode(with_captions)["errors"] == ""
    band = caption_band(DRAFT, timeline)
    above = (0, 0, DRAFT.width, band[1] - 10)
    for scene in timeline.scenes:  # the English scene, then the Hebrew one
        assert [c.text for c in scene.cues]
        t = scene.start + scene.duration / 2
        assert mean_abs_diff(with_captions, without, t, band) > 3
        assert mean_abs_diff(with_captions, without, t, above) < 1  # only the captions differ
        assert mean_luma(with_captions, t, band) != mean_luma(without, t, band)


def ass_warnings(timeline: Timeline, folder: Path) -> str:
    """What libass says (at ffmpeg's warning level) while drawing the timeline's ASS script."""
    ass = folder / "captions.ass"
    ass.write_text(timeline.ass_script(), encoding="utf-8")
    size = f"{timeline.preset.width}x{timeline.preset.height}"
    option = (f"ass=filename={escape_filter_value(str(ass))}"
              f":fontsdir={escape_filter_value(str(bundled_fonts_dir()))}")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "warning", "-f",
                           "lavfi", "-i", f"color=s={size}:r=4:d={timeline.duration:.3f}",
                           "-vf", option, "-f", "null", "-"],
                          capture_output=True, text=True, errors="replace", check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_hebrew_captions_have_glyphs_in_the_shipped_fonts(
        caption_renders: dict[bool, tuple[Timeline, Path]], tmp_path: Path) -> None:
    timeline, _ = caption_renders[True]
    assert all(word in timeline.ass_script() for word in HEBREW.split())
    assert "failed to find any fallback with glyph" not in ass_warnings(timeline, tmp_path)
    # the check notices a script no font here can draw (Ethiopic)
    ethiopic = "ሰላም"
    assert uncovered(find_font("DejaVu Sans"), [ethiopic]) == ethiopic
    unknown = Timeline.build(TINY, [(Scene(0, ethiopic), AudioAsset(Path("x.wav"), 0.5),
                                     CardVisual(""))])
    assert "failed to find any fallback with glyph" in ass_warnings(unknown, tmp_path)


@pytest.mark.parametrize("folder", ["we:ird 'dir[1],x;y", "back\\slash=1%d,[x] y;'z'"])
def test_subtitles_in_a_folder_with_filtergraph_characters(
        folder: str, assets: dict[str, Path], tmp_path: Path) -> None:
    def card(title: str, where: Path) -> tuple[Timeline, Path]:
        where.mkdir()
        timeline = Timeline.build(TINY, [(Scene(0, "Odd folder."),
                                          AudioAsset(assets["short_wav"], 0.9),
                                          CardVisual(title, ("0x202020", "0x202020")))])
        return timeline, compose(timeline, where / "video.mp4")

    timeline, target = card("BOLD TITLE", tmp_path / folder)
    out = decode(target)
    assert out["errors"] == "" and out["frames"] == timeline.frames
    assert [p.name for p in target.parent.iterdir()] == ["video.mp4"]
    # the card title came from the .ass file in that folder: the centre differs from a card
    # rendered without a title
    _, plain = card("", tmp_path / "plain")
    centre = (TINY.width // 8, TINY.height // 2 - 12, TINY.width * 3 // 4, 24)
    assert mean_abs_diff(target, plain, 0.5, centre) > 10


# --------------------------------------------------------------------------- bad input


def not_media(path: Path) -> Path:
    path.write_text("this is a text file, not a video\n" * 20)
    return path


@pytest.mark.parametrize("problem", ["empty clip", "text clip", "missing narration",
                                     "clip without video", "narration without audio",
                                     "narration without samples"])
def test_bad_input_is_refused_before_the_encode(
        problem: str, assets: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    narration = AudioAsset(assets["wav1"], NARRATIONS[1])
    visual: Visual = clip_asset(assets["clip"])
    if problem == "empty clip":
        bad = bad_dir / "empty.mp4"
        bad.write_bytes(b"")
        visual = ClipAsset(bad, 1.0, 320, 180)
    elif problem == "text clip":
        bad = not_media(bad_dir / "notes.mp4")
        visual = ClipAsset(bad, 1.0, 320, 180)
    elif problem == "missing narration":
        bad = bad_dir / "never written.wav"
        narration = AudioAsset(bad, NARRATIONS[1])
    elif problem == "clip without video":
        bad = assets["wav2"]
        visual = ClipAsset(bad, 1.0, 320, 180)
    elif problem == "narration without samples":
        bad = make_wav(bad_dir / "silent.wav", 0.0)
        narration = AudioAsset(bad, 1.0)
    else:
        bad = assets["image"]
        narration = AudioAsset(bad, 1.0)
    parts: list[Part] = [
        (Scene(0, "Fine."), AudioAsset(assets["wav0"], NARRATIONS[0]), CardVisual("ok")),
        (Scene(1, "Broken."), narration, visual),
    ]
    timeline = Timeline.build(TINY, parts)
    encodes: list[object] = []

    async def tripwire(*args: object, **kwargs: object) -> None:
        encodes.append(args)

    monkeypatch.setattr(composer_module, "run_ffmpeg", tripwire)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "video.mp4"
    with pytest.raises(MediaError) as caught:
        compose(timeline, target)
    message = str(caught.value)
    assert message.startswith("scene 2: ")  # Scene(1, ...): people count from 1
    assert str(bad) in message
    assert caught.value.path == bad
    assert encodes == []
    assert list(out.iterdir()) == []  # no video, no subtitle file


# --------------------------------------------------------------------------- probe


@pytest.mark.parametrize("suffix", ["png", "jpg", "webp"])
def test_probe_on_a_still_image(suffix: str, tmp_path: Path) -> None:
    info = probe(make_image(tmp_path / f"still.{suffix}", 96, 64))
    assert info.duration is None
    assert info.has_video and not info.has_audio
    assert (info.width, info.height) == (96, 64)


def test_probe_on_a_clip_with_sound_and_on_a_wav(tmp_path: Path) -> None:
    clip = probe(make_clip(tmp_path / "c.mp4", 1.0, 128, 72, fps=25, audio=True))
    assert (clip.video_codec, clip.audio_codec) == ("h264", "aac")
    assert (clip.width, clip.height, clip.fps) == (128, 72, 25.0)
    assert clip.duration == pytest.approx(1.0, abs=0.05)
    assert (clip.sample_rate, clip.channels) == (44100, "mono")
    wav = probe(make_wav(tmp_path / "w.wav", 0.75, rate=16000))
    assert (wav.audio_codec, wav.sample_rate, wav.channels) == ("pcm_s16le", 16000, "mono")
    assert not wav.has_video and wav.duration == pytest.approx(0.75, abs=0.01)


def test_probe_refuses_what_is_not_media(tmp_path: Path) -> None:
    for path, words in [(tmp_path / "none.wav", "not found"),
                        (tmp_path / "empty.wav", "empty"),
                        (not_media(tmp_path / "text.wav"), "not a media file")]:
        if words == "empty":
            path.write_bytes(b"")
        with pytest.raises(MediaError, match=words) as caught:
            probe(path)
        assert caught.value.path == path


# --------------------------------------------------------------------------- the helpers


def test_decode_reports_a_damaged_file(rendered: tuple[Timeline, Path, list[float]],
                                       tmp_path: Path) -> None:
    _, target, _ = rendered
    data = target.read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[: len(data) * 2 // 3])
    assert decode(damaged)["errors"] != ""


def test_wav_helper_writes_exact_lengths(tmp_path: Path) -> None:
    out = decode(make_wav(tmp_path / "a.wav", 1.25, rate=24000))
    assert out["errors"] == "" and not out["has_video"]
    assert out["audio_duration"] == pytest.approx(1.25, abs=1e-4)


def test_a_clip_a_little_short_holds_its_last_frame(assets: dict[str, Path],
                                                    tmp_path: Path) -> None:
    """A clip at most a second shorter than its scene is not restarted: its last frame
    stays to the scene's end (a clip shorter by more is looped, as above)."""
    clip = make_clip(tmp_path / "moving.mp4", 1.5, 320, 180, fps=12)
    narration = make_wav(tmp_path / "narration.wav", 2.2)
    timeline = Timeline.build(TINY, [(Scene(0, "A clip a little short."),
                                      AudioAsset(narration, 2.2), clip_asset(clip))])
    target = compose(timeline, tmp_path / "held.mp4")

    def frame(seconds: float) -> bytes:
        return gray_frame(target, seconds)[2]

    last = frame(1.5 - 0.5 / TINY.fps)
    assert diff(frame(0.2), last) > 5  # the clip moves
    for seconds in (1.6, 1.8, 2.0, 2.15):  # after its end: its last frame, not its first
        assert diff(frame(seconds), last) < 2, seconds
        assert diff(frame(seconds), frame(0.5 / TINY.fps)) > 5, seconds


def test_on_a_few_cores_the_picture_graph_runs_on_one_thread_and_draws_the_same(
        assets: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine of a few cores the picture's filter graph gets one thread (x264 fills
    the cores; slice threads only contend with it); elsewhere ffmpeg's default. The frames
    are the same either way."""
    timeline = three_scenes(assets)
    commands: list[list[str]] = []
    real = composer_module.run_ffmpeg

    async def recording(args: list[str], **options: Any) -> Any:
        commands.append(list(args))
        return await real(args, **options)

    monkeypatch.setattr(composer_module, "run_ffmpeg", recording)
    frames: dict[int, list[str]] = {}
    for cores in (2, 16):
        monkeypatch.setattr(composer_module.os, "cpu_count", lambda n=cores: n)
        commands.clear()
        target = compose(timeline, tmp_path / f"{cores}.mp4")
        (picture,) = [c for c in commands if "-map" in c and c[c.index("-map") + 1] == "[vout]"]
        threads = picture[picture.index("-filter_complex_threads") + 1] \
            if "-filter_complex_threads" in picture else None
        assert threads == ("1" if cores <= 4 else None)
        listing = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(target), "-map",
                                  "0:v:0", "-f", "framemd5", "-"], check=True,
                                 capture_output=True, text=True).stdout
        frames[cores] = [line.rsplit(",", 1)[-1] for line in listing.splitlines()
                         if not line.startswith("#")]
    assert len(frames[2]) == timeline.frames
    assert frames[2] == frames[16]
