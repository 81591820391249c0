"""The media engine on real media: transitions, music, loudness, fitting, copy, fonts."""

from __future__ import annotations

import asyncio
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from fonts import MACHINES, fontconfig_with, machine, outline_font
from media import (
    decode,
    gray_frame,
    make_clip,
    make_image,
    make_wav,
    mean_abs_diff,
    mean_luma,
)

from avgen import CaptionStyle, Preset, Scene, Soundtrack, Transition
from avgen._cache_root import cache_root
from avgen._models import AudioAsset, CardVisual, ClipAsset, ImageAsset, Segment
from avgen.errors import ConfigurationError, UsageError
from avgen.media._captions import make_cues
from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.media._fonts import bundled_fonts_dir, find_font, uncovered
from avgen.media._graph import copy_plan
from avgen.media._timeline import Timeline

TINY = Preset("tiny", 192, 336, fps=12, crf=30, encoder_preset="ultrafast",
              caption_margin=0.2)


def compose(timeline: Timeline, target: Path) -> Path:
    asyncio.run(FFmpegComposer().compose(timeline, target))
    return target


def ffmpeg_text(*args: str) -> str:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", *args],
                          capture_output=True, text=True, check=True)
    return proc.stderr


def integrated_loudness(path: Path) -> float:
    text = ffmpeg_text("-i", str(path), "-map", "0:a", "-af", "ebur128", "-f", "null", "-")
    summary = text[text.rindex("Summary:"):]
    match = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    assert match, summary
    return float(match.group(1))


def band_level(path: Path, start: float, seconds: float, freq: int) -> float:
    """Mean level (dB) of a narrow band around ``freq`` over a window of the soundtrack."""
    text = ffmpeg_text("-ss", f"{start}", "-t", f"{seconds}", "-i", str(path), "-map", "0:a",
                       "-af", f"bandpass=f={freq}:width_type=q:w=8,bandpass=f={freq}:"
                       "width_type=q:w=8,volumedetect", "-f", "null", "-")
    match = re.search(r"mean_volume: (-?[\d.]+) dB", text)
    assert match, text
    return float(match.group(1))


def tone_scene(tmp: Path, index: int, seconds: float, freq: int = 1000,
               text: str = "Hello there.") -> tuple[Scene, AudioAsset, CardVisual]:
    wav = make_wav(tmp / f"n{index}.wav", seconds, freq=freq)
    return (Scene(index, text), AudioAsset(wav, seconds, (Segment(text, 0.0, seconds),)),
            CardVisual(""))


# -- transitions -------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["fade", "slideleft", "circleopen"])
def test_transitions_keep_the_length_and_the_captions_exact(tmp_path: Path, style: str) -> None:
    parts = [tone_scene(tmp_path, 0, 1.3), tone_scene(tmp_path, 1, 0.9, text="Second one."),
             (Scene(2, "Third."), AudioAsset(make_wav(tmp_path / "n2.wav", 1.1), 1.1),
              ImageAsset(make_image(tmp_path / "i.png", 320, 180), 320, 180))]
    cut = Timeline.build(TINY, parts)
    faded = Timeline.build(TINY, parts, transition=Transition(style, 0.5))
    assert faded.frames == cut.frames and faded.cues == cut.cues
    assert [s.transition_frames for s in faded.scenes] == [0, 6, 6]
    decoded = decode(compose(faded, tmp_path / "faded.mp4"))
    assert decoded["errors"] == ""
    assert decoded["frames"] == faded.frames
    assert abs(decoded["audio_duration"] - faded.duration) <= 1 / TINY.fps


def test_a_transition_never_outlasts_the_scene_it_leads_into(tmp_path: Path) -> None:
    parts = [tone_scene(tmp_path, 0, 1.0), tone_scene(tmp_path, 1, 0.2)]
    timeline = Timeline.build(TINY, parts, transition=Transition("dissolve", 2.0))
    assert timeline.scenes[1].transition_frames == timeline.scenes[1].frames == 3
    assert decode(compose(timeline, tmp_path / "short.mp4"))["frames"] == timeline.frames


def test_unknown_transitions_are_usage_errors() -> None:
    with pytest.raises(UsageError) as caught:
        Transition("spin")
    assert caught.value.field == "transition.style" and "fade" in str(caught.value)
    with pytest.raises(UsageError) as caught:
        Transition("fade", 10)
    assert caught.value.field == "transition.seconds"


# -- audio -------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [-14.0, -20.0])
def test_the_mix_meets_the_loudness_target(tmp_path: Path, target: float) -> None:
    parts = [tone_scene(tmp_path, i, 4.0, freq=300 + 200 * i) for i in range(2)]
    timeline = Timeline.build(TINY, parts, burn_captions=False,
                              soundtrack=Soundtrack(loudness=target))
    out = compose(timeline, tmp_path / "loud.mp4")
    assert abs(integrated_loudness(out) - target) <= 1.0


def test_music_is_looped_audible_and_ducked_under_the_narration(tmp_path: Path) -> None:
    music = make_wav(tmp_path / "music.wav", 1.5, freq=220)  # shorter: it must loop
    narrated = tone_scene(tmp_path, 0, 4.0, freq=1500)
    silent = (Scene(1, "Silent."), None, CardVisual(""))
    levels = {}
    for duck in (True, False):
        timeline = Timeline.build(TINY, [narrated, silent], silent_seconds=4.0,
                                  burn_captions=False,
                                  soundtrack=Soundtrack(music=music, duck=duck,
                                                        fade_seconds=0.2))
        out = compose(timeline, tmp_path / f"music-{duck}.mp4")
        assert abs(decode(out)["audio_duration"] - 8.0) <= 1 / TINY.fps
        under_voice = band_level(out, 1.0, 2.5, 220)
        alone = band_level(out, 5.0, 2.5, 220)
        assert alone > -45  # the music plays (looped) where nothing is said
        levels[duck] = under_voice - alone
    # ducking lowers the music under the voice by at least 6 dB more than without it
    assert levels[True] <= levels[False] - 6


def test_a_missing_music_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        Soundtrack(music=tmp_path / "nope.mp3")
    assert caught.value.field == "soundtrack.music"


# -- pictures ----------------------------------------------------------------------------


def test_blur_fit_fills_the_bars_that_cover_would_crop(tmp_path: Path) -> None:
    image = make_image(tmp_path / "wide.png", 640, 360)
    audio = AudioAsset(make_wav(tmp_path / "n.wav", 1.0), 1.0)
    parts = [(Scene(0, "Wide."), audio, ImageAsset(image, 640, 360))]
    renders = {fit: compose(Timeline.build(TINY, parts, burn_captions=False, fit=fit),
                            tmp_path / f"{fit}.mp4") for fit in ("cover", "blur")}
    top_band = (0, 0, TINY.width, 40)  # above the picture when it is shown whole
    assert mean_luma(renders["blur"], 0.5, top_band) > 10  # a blurred copy, not black bars
    assert mean_abs_diff(renders["blur"], renders["cover"], 0.5, top_band) > 3
    assert decode(renders["blur"])["frames"] == 12


def test_a_still_zooms_slowly_through_its_whole_scene(tmp_path: Path) -> None:
    """The still is decoded once and drawn into every frame: it keeps moving to the scene's
    last frame, a little between neighbouring frames and more over the scene."""
    image = make_image(tmp_path / "still.png", 640, 360)
    audio = AudioAsset(make_wav(tmp_path / "n.wav", 3.0), 3.0)
    parts = [(Scene(0, "A still."), audio, ImageAsset(image, 640, 360))]
    out = compose(Timeline.build(TINY, parts, burn_captions=False), tmp_path / "still.mp4")
    assert decode(out)["frames"] == 36

    def difference(t0: float, t1: float) -> float:
        _, _, a = gray_frame(out, t0)
        _, _, b = gray_frame(out, t1)
        return sum(abs(p - q) for p, q in zip(a, b, strict=True)) / len(a)

    early, late, whole = difference(0.0, 1.4), difference(1.5, 2.9), difference(0.0, 2.9)
    assert early > 1.0 and late > 1.0  # moving in both halves: no frame held
    assert whole > max(early, late)
    assert difference(2.75, 2.9) < whole / 3  # slowly: neighbours are close


def test_clips_that_match_the_output_are_joined_by_stream_copy(tmp_path: Path) -> None:
    preset = Preset("hd", 320, 180, fps=25, encoder_preset="ultrafast")
    clips = [make_clip(tmp_path / f"c{i}.mp4", 1.0 + i * 0.4, 320, 180, fps=25)
             for i in range(3)]
    parts = [(Scene(i, "x"), None, ClipAsset(clip, 1.0 + i * 0.4, 320, 180, 25.0))
             for i, clip in enumerate(clips)]
    timeline = Timeline.build(preset, parts, burn_captions=False)
    infos = FFmpegComposer.check_inputs(timeline)
    assert copy_plan(timeline, infos)
    out = compose(timeline, tmp_path / "joined.mp4")
    decoded = decode(out)
    assert decoded["frames"] == timeline.frames == 25 + 35 + 45
    # the very same frames: nothing was re-encoded
    def frame_hashes(path: Path) -> list[str]:
        text = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v",
                               "-f", "framemd5", "-"], capture_output=True, text=True,
                              check=True).stdout
        return [line.rsplit(",", 1)[1].strip() for line in text.splitlines()
                if line and not line.startswith("#")]

    assert frame_hashes(out) == [h for clip in clips for h in frame_hashes(clip)]
    # a transition (or captions) needs a re-encode
    faded = Timeline.build(preset, parts, burn_captions=False, transition="fade")
    assert not copy_plan(faded, infos)


# -- captions and fonts ------------------------------------------------------------------


def test_captions_start_within_a_frame_of_each_narration_boundary(tmp_path: Path) -> None:
    parts = [tone_scene(tmp_path, i, 0.77 + 0.31 * i, text=f"Sentence number {i}.")
             for i in range(4)]
    timeline = Timeline.build(TINY, parts)
    narration_start = 0.0
    for scene, (_, audio, _) in zip(timeline.scenes, parts, strict=True):
        assert abs(scene.cues[0].start - narration_start) <= 1 / TINY.fps
        assert abs(scene.start - narration_start) <= 1 / TINY.fps
        narration_start = scene.start + audio.duration  # the next voice starts on a frame


def test_word_timings_place_caption_blocks_on_the_words() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"
    words = [Segment(w, 0.5 * i, 0.5 * i + 0.4) for i, w in enumerate(text.split())]
    style = CaptionStyle(max_chars_per_line=10, max_lines=1)
    cues = make_cues([Segment(text, 0.0, 6.0)], 10.0, style, words=words)
    assert len(cues) > 2
    starts = {round(w.start + 10.0, 6): w.text for w in words}
    for cue in cues[1:]:
        assert starts[round(cue.start, 6)] == cue.lines[0].split()[0]


def test_a_font_that_does_not_exist_is_named(tmp_path: Path) -> None:
    timeline = Timeline.build(TINY, [tone_scene(tmp_path, 0, 1.0)],
                              style=CaptionStyle(font="No Such Sans"))
    with pytest.raises(ConfigurationError, match="No Such Sans"):
        compose(timeline, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("kind", MACHINES)
def test_emoji_are_drawn_and_what_no_font_has_is_left_out(
        kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a server or a desktop with colour emoji: the emoji are drawn in the bundled
    Noto Emoji, the CJK character no font here has is left out of the burned caption, and
    the sidecars keep the text."""
    machine(kind, monkeypatch, tmp_path / "fonts")
    text = "Hello 🌧🌈 中 there."
    timeline = Timeline.build(TINY, [tone_scene(tmp_path, 0, 1.0, text=text)])
    assert uncovered(find_font("DejaVu Sans"), [text]) == "中"
    out = compose(timeline, tmp_path / "x.mp4")
    assert not decode(out)["errors"]
    composer = FFmpegComposer()
    sidecars = composer.sidecars(timeline)
    assert text in sidecars["srt"] and text in re.sub(r"<[^>]+>", "", sidecars["vtt"])
    assert "{\\fnNoto Emoji}🌧🌈{\\fn}" in sidecars["ass"] and "中" not in sidecars["ass"]

    def drawn(line: str, name: str) -> Path:
        return compose(Timeline.build(TINY, [tone_scene(tmp_path, 0, 1.0, text=line)]),
                       tmp_path / name)

    band = (0, int(TINY.height * 0.6), TINY.width, int(TINY.height * 0.25))
    assert mean_abs_diff(out, drawn("Hello 🌧🌈 there.", "same.mp4"), 0.5, band) < 1.0
    assert mean_abs_diff(out, drawn("Hello there.", "words.mp4"), 0.5, band) > 2.0


def test_a_font_file_path_works_and_names_its_family(tmp_path: Path) -> None:
    from avgen.media._fonts import bundled_fonts_dir

    bold = bundled_fonts_dir() / "DejaVuSans-Bold.ttf"
    timeline = Timeline.build(TINY, [tone_scene(tmp_path, 0, 1.0, text="שלום עולם")],
                              style=CaptionStyle(font=str(bold)))
    out = compose(timeline, tmp_path / "rtl.mp4")
    plain = compose(Timeline.build(TINY, [tone_scene(tmp_path, 0, 1.0, text="שלום עולם")],
                                   burn_captions=False), tmp_path / "plain.mp4")
    band = (0, int(TINY.height * 0.6), TINY.width, int(TINY.height * 0.25))
    assert mean_abs_diff(out, plain, 0.5, band) > 1.0  # the Hebrew caption was drawn


@pytest.mark.parametrize("cache", ["writable", "not writable"])
def test_a_caption_font_from_elsewhere_reaches_libass_and_leaves_nothing_in_temp(
        cache: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """libass gets the caption font and the bundled fonts in one folder: linked once in the
    cache folder, or in a temporary folder removed at the end when the cache cannot be
    written. Neither leaves anything in the system's temporary folder or beside the video."""
    fontconfig_with(monkeypatch, tmp_path / "fontconfig")  # fontconfig sees no font at all
    font = outline_font(tmp_path / "mine" / "Mine.ttf", "中文", family="Test Mine")
    temp = tmp_path / "temp"  # with a cache folder, nothing may use the temporary folder
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    if cache == "not writable":
        temp.mkdir()
        blocked = tmp_path / "blocked"
        blocked.write_text("a file where the cache folder would be")
        monkeypatch.setenv("AVGEN_CACHE_DIR", str(blocked))
    videos = tmp_path / "videos"
    videos.mkdir()

    def drawn(name: str, captions: bool = True) -> Path:
        scene = tone_scene(tmp_path, 0, 1.0, text="中文")
        style = CaptionStyle(font=str(font), font_size=0.2)
        timeline = Timeline.build(TINY, [scene], style=style, burn_captions=captions)
        return compose(timeline, videos / name)

    first, second, plain = drawn("first.mp4"), drawn("second.mp4"), drawn("plain.mp4", False)
    band = (0, int(TINY.height * 0.6), TINY.width, int(TINY.height * 0.25))
    assert mean_abs_diff(first, plain, 0.5, band) > 1.0  # drawn in the font only it has
    assert mean_abs_diff(first, second, 0.5, band) < 0.5
    assert not temp.exists() if cache == "writable" else list(temp.iterdir()) == []
    assert sorted(p.name for p in videos.iterdir()) == ["first.mp4", "plain.mp4", "second.mp4"]
    if cache == "writable":
        [linked] = (cache_root() / "fonts").iterdir()  # one folder for both renders
        names = {path.name: path.resolve() for path in linked.iterdir()}
        assert names["Mine.ttf"] == font.resolve()
        assert {p.name for p in bundled_fonts_dir().glob("*.ttf")} <= set(names)


# -- long videos in parts ------------------------------------------------------------------


def test_a_long_video_rendered_in_parts_matches_one_pass(tmp_path: Path) -> None:
    image = make_image(tmp_path / "still.png", 320, 180)
    clip = make_clip(tmp_path / "clip.mp4", 0.8, 320, 180, fps=25)
    parts = []
    for i in range(7):
        text = ("Hi.", "A much longer caption, two full lines of it.", "Middling words here.")
        scene, audio, _ = tone_scene(tmp_path, i, 0.6 + 0.1 * i, text=text[i % 3])
        visual = (ImageAsset(image, 320, 180) if i % 3 == 1 else
                  ClipAsset(clip, 0.8, 320, 180, 25.0) if i % 3 == 2 else CardVisual(f"T{i}"))
        parts.append((scene, audio, visual))
    timeline = Timeline.build(TINY, parts, transition=Transition("fade", 0.25))
    one = tmp_path / "one.mp4"
    asyncio.run(FFmpegComposer(max_scenes_per_pass=100).compose(timeline, one))
    split = tmp_path / "split.mp4"
    seen: list[float] = []
    asyncio.run(FFmpegComposer(max_scenes_per_pass=2).compose(timeline, split, seen.append))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # parts cleaned up
    decoded = decode(split)
    assert decoded["errors"] == "" and decoded["frames"] == timeline.frames
    assert abs(decoded["audio_duration"] - timeline.duration) <= 1 / TINY.fps
    whole = (0, 0, TINY.width, TINY.height)
    captions = (0, int(TINY.height * 0.6), TINY.width, int(TINY.height * 0.25))
    for scene in timeline.scenes:  # same pictures and captions, transitions included
        t = scene.start + 0.05
        assert mean_abs_diff(one, split, t, whole) < 4.0
        assert mean_abs_diff(one, split, t, captions) < 6.0


def frame_digests(path: Path) -> list[str]:
    """Each decoded frame's MD5, in order."""
    text = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v",
                           "-f", "framemd5", "-"], capture_output=True, text=True,
                          check=True).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize("style", ["cut", "fade"])
def test_one_pass_and_parts_draw_every_cue_from_the_frame_it_starts_on(
        tmp_path: Path, style: str) -> None:
    """Scenes start on frames such as 189 at 30 fps (6.3 s), where a time made from the
    frame in floating point falls short of the cue's millisecond."""
    lossless = Preset("lossless", 320, 180, fps=30, crf=0, encoder_preset="ultrafast",
                      caption_margin=0.1)
    image = make_image(tmp_path / "still.png", 320, 180)
    words = ["Alpha one.", "Bravo two.", "Charlie three.", "Delta four."]
    parts = []
    for i in range(6):
        seconds = 1.0 + 0.37 * i
        wav = make_wav(tmp_path / f"n{i}.wav", seconds, freq=300 + 50 * i)
        cues = tuple(Segment(w, seconds * k / 4, seconds * (k + 1) / 4)
                     for k, w in enumerate(words))
        visual = ImageAsset(image, 320, 180) if i % 2 else CardVisual(f"T{i}")
        parts.append((Scene(i, " ".join(words)), AudioAsset(wav, seconds, cues), visual))
    timeline = Timeline.build(lossless, parts, transition=Transition(style, 0.2))
    starts = [round(scene.start * 30, 6) for scene in timeline.scenes]
    assert 189 in starts and all(start == int(start) for start in starts)
    one, split = tmp_path / "one.mp4", tmp_path / "split.mp4"
    asyncio.run(FFmpegComposer(max_scenes_per_pass=100).compose(timeline, one))
    asyncio.run(FFmpegComposer(max_scenes_per_pass=1).compose(timeline, split))
    whole, parted = frame_digests(one), frame_digests(split)
    assert len(whole) == timeline.frames
    assert [n for n, (a, b) in enumerate(zip(whole, parted, strict=True)) if a != b] == []
    # the scene starting at 6.3 s has its first caption on its first frame, not the next
    captions = (0, int(180 * 0.6), 320, int(180 * 0.3))
    # (the frame decoded from t on is the first whose time is t or later)
    last, first, second = (_white_text(one, (n - 0.5) / 30, captions) for n in (188, 189, 190))
    # "Alpha one." from 189 on, not from 190 ("Delta four." before)
    assert overlap(first, second) >= 0.9 and overlap(last, second) <= 0.5


def overlap(a: list[bool], b: list[bool]) -> float:
    """The pixels white in both over the pixels white in either."""
    both = sum(x and y for x, y in zip(a, b, strict=True))
    either = sum(x or y for x, y in zip(a, b, strict=True))
    return both / either if either else 0.0


def _white_text(video: Path, t: float, box: tuple[int, int, int, int]) -> list[bool]:
    """Which pixels of ``box`` in the frame at ``t`` are white (captions' text; no
    picture of the test is that bright)."""
    width, _height, pixels = gray_frame(video, t)
    x, y, w, h = box
    return [pixels[row * width + col] > 250 for row in range(y, y + h)
            for col in range(x, x + w)]


def test_loudness_gain_leaves_silence_alone_and_stays_bounded(tmp_path: Path) -> None:
    from avgen.media._graph import compile_loudness_probe, loudness_gain

    timeline = Timeline.build(TINY, [tone_scene(tmp_path, 0, 1.0)],
                              soundtrack=Soundtrack(loudness=-16.0))
    assert loudness_gain(timeline, -20.0) == pytest.approx(4.0)
    assert loudness_gain(timeline, -70.0) == 0.0  # silence: nothing to bring up
    assert loudness_gain(timeline, None) == 0.0
    assert loudness_gain(timeline, 30.0) == -40.0
    silent = Timeline.build(TINY, [(Scene(0, "Quiet."), None, CardVisual(""))])
    assert compile_loudness_probe(silent) is None


def test_every_scene_speaks_at_the_same_level(tmp_path: Path) -> None:
    import math
    import struct
    import wave

    def tone(path: Path, amplitude: float, seconds: float = 3.0, rate: int = 16000) -> Path:
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(b"".join(struct.pack("<h", int(32000 * amplitude * math.sin(
                2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate))))
        return path

    quiet, loud = tone(tmp_path / "quiet.wav", 0.03), tone(tmp_path / "loud.wav", 0.6)
    parts = [(Scene(i, "Level."), AudioAsset(path, 3.0), CardVisual(""))
             for i, path in enumerate((quiet, loud))]
    out = compose(Timeline.build(TINY, parts, burn_captions=False), tmp_path / "level.mp4")

    def mean_volume(start: float) -> float:
        text = ffmpeg_text("-ss", str(start), "-t", "2", "-i", str(out), "-map", "0:a",
                           "-af", "volumedetect", "-f", "null", "-")
        match = re.search(r"mean_volume: (-?[\d.]+) dB", text)
        assert match, text
        return float(match.group(1))

    # 26 dB apart going in, within 1 dB coming out
    assert abs(mean_volume(0.5) - mean_volume(3.5)) <= 1.0
    assert abs(integrated_loudness(out) - (-14.0)) <= 1.0
