"""Properties of avgen.media._timeline: scene timing, caption placement, the ffmpeg command.

Pure: nothing here runs ffmpeg (tests/test_composer.py renders real timelines).
"""

from __future__ import annotations

import re
import string
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from avgen.media._graph import (
    AUDIO_RATE,
    CLIP_HOLD_SECONDS,
    compile_graph,
    escape_filter_value,
)
from avgen.media._timeline import Timeline

Part = tuple[Scene, AudioAsset | None, Visual]

# ffmpeg's own whitespace set (libavutil/avstring.h WHITESPACES)
WHITESPACES = " \n\t\r"
PRESET_FPS = sorted({p.fps for p in PRESETS.values()})
# A scene may end this much before its narration: `Timeline.build` forgives 1e-6 of a frame
# of float noise (2.2 s × 25 fps is 55.000000000000007 frames, not 56), which is at most
# 1e-6 s at 1 fps and a thousandth of an audio sample at the presets' rates.
FORGIVEN_FRAMES = 1e-6

# --------------------------------------------------------------------------- strategies

words = st.text(alphabet=string.ascii_letters + "éשا'.,", min_size=1, max_size=12)
sentences = st.lists(words, min_size=1, max_size=12).map(" ".join)
narration_seconds = st.floats(0.05, 30.0, allow_nan=False, allow_infinity=False)


@st.composite
def narrations(draw: st.DrawFn, index: int) -> AudioAsset:
    """A narration of 0.05 to 30 s, timed as one segment or split into sentences."""
    seconds = draw(narration_seconds)
    path = Path(f"/media/audio/scene {index}.wav")
    count = draw(st.integers(0, 5))
    if count == 0:
        return AudioAsset(path, seconds)  # the timeline times the whole text itself
    # strictly increasing bounds: a zero-length segment has no caption by design
    weights = draw(st.lists(st.integers(1, 100), min_size=count, max_size=count))
    bounds = [0.0, *(seconds * sum(weights[:k]) / sum(weights) for k in range(1, count)),
              seconds]
    segments = [Segment(draw(sentences), a, b) for a, b in pairwise(bounds)]
    return AudioAsset(path, seconds, segments)


@st.composite
def visuals(draw: st.DrawFn, index: int) -> Visual:
    kind = draw(st.sampled_from(["card", "image", "clip"]))
    if kind == "card":
        return CardVisual(draw(st.sampled_from(["", "A title", "Lots: of, [odd]; 'text'"])))
    if kind == "image":
        return ImageAsset(Path(f"/media/images/scene {index}.png"), 640, 360)
    return ClipAsset(Path(f"/media/clips/scene {index}.mp4"), draw(st.floats(0.2, 12.0)),
                     1280, 720, fps=draw(st.sampled_from([24.0, 25.0, 30.0])))


@st.composite
def timeline_parts(draw: st.DrawFn, silent: bool = False,
                   max_scenes: int = 8) -> list[Part]:
    count = draw(st.integers(1, max_scenes))
    parts: list[Part] = []
    for index in range(count):
        audio = None if silent and draw(st.booleans()) else draw(narrations(index))
        text = " ".join(s.text for s in audio.segments) if audio and audio.segments else None
        scene = Scene(index, text or draw(sentences))
        parts.append((scene, audio, draw(visuals(index))))
    return parts


presets = st.sampled_from(list(PRESETS.values()))

# --------------------------------------------------------------------------- helpers


def av_get_token(text: str, terms: str) -> tuple[str, str]:
    """What ffmpeg's ``av_get_token`` (libavutil/avstring.c) reads from ``text``.

    Skips leading whitespace, reads up to the first unescaped, unquoted character of
    ``terms`` (``\\`` escapes the next character, ``'…'`` quotes a run) and drops trailing
    unescaped whitespace. Returns the token and the rest of the text.
    """
    out: list[str] = []
    end = 0  # length of ``out`` that trailing-whitespace removal must keep
    i = len(text) - len(text.lstrip(WHITESPACES))
    while i < len(text) and text[i] not in terms:
        c = text[i]
        i += 1
        if c == "\\" and i < len(text):
            out.append(text[i])
            i += 1
            end = len(out)
        elif c == "'":
            while i < len(text) and text[i] != "'":
                out.append(text[i])
                i += 1
            if i < len(text):
                i += 1
                end = len(out)
        else:
            out.append(c)
    while len(out) > end and out[-1] in WHITESPACES:
        out.pop()
    return "".join(out), text[i:]


def split_graph(graph: str) -> list[str]:
    """The filter chains of a filtergraph: split on ``;`` where ffmpeg's parser would."""
    chains, current, i = [], [], 0
    while i < len(graph):
        c = graph[i]
        if c == "\\" and i + 1 < len(graph):
            current.append(graph[i:i + 2])
            i += 2
            continue
        if c == "'":
            close = graph.find("'", i + 1)
            close = len(graph) - 1 if close < 0 else close
            current.append(graph[i:close + 1])
            i = close + 1
            continue
        if c == ";":
            chains.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    chains.append("".join(current))
    return chains


def option_values(graph: str, name: str) -> list[str]:
    """Values of option ``name`` (``name=value``) in ``graph``, unescaped as ffmpeg would."""
    values = []
    for match in re.finditer(rf"(?<![\w]){re.escape(name)}=", graph):
        args, _ = av_get_token(graph[match.end():], "[],;")
        value, _ = av_get_token(args, ":")
        values.append(value)
    return values


def arg_after(args: list[str], flag: str) -> str:
    assert args.count(flag) == 1, f"{flag} appears {args.count(flag)} times"
    return args[args.index(flag) + 1]


def narration_of(scene_audio: AudioAsset | None, silent_seconds: float,
                 visual: object = None) -> float:
    """How long a scene must last: its narration; a silent clip, its clip; else silence."""
    if scene_audio is not None:
        return scene_audio.duration
    return visual.duration if isinstance(visual, ClipAsset) else silent_seconds


# --------------------------------------------------------------------------- Timeline.build


def check_timeline(timeline: Timeline, parts: list[Part], preset: Preset,
                   silent_seconds: float) -> None:
    fps = preset.fps
    scenes = timeline.scenes
    assert [s.index for s in scenes] == [scene.index for scene, _, _ in parts]
    assert scenes[0].start == 0.0
    for placed, (_, audio, visual) in zip(scenes, parts, strict=True):
        assert isinstance(placed.frames, int) and placed.frames >= 1
        assert placed.fps == fps and placed.visual == visual and placed.narration == audio
        # starts on a frame boundary and lasts a whole number of frames
        assert placed.start * fps == pytest.approx(round(placed.start * fps), abs=1e-6)
        assert placed.duration == placed.frames / fps
        # never cuts the narration, and adds less than one frame to it
        seconds = narration_of(audio, silent_seconds, visual)
        assert placed.frames >= seconds * fps - FORGIVEN_FRAMES
        assert placed.frames < seconds * fps + 1
        assert placed.duration >= seconds - FORGIVEN_FRAMES / fps
    for before, after in pairwise(scenes):
        assert abs(after.start - before.end) <= 1e-9
    assert timeline.frames == sum(s.frames for s in scenes)
    assert timeline.duration == pytest.approx(sum(s.duration for s in scenes), abs=1e-9)
    assert timeline.duration == pytest.approx(scenes[-1].end, abs=1e-9)

    slack = FORGIVEN_FRAMES / fps + 1e-9
    for placed, (scene, audio, _) in zip(scenes, parts, strict=True):
        for cue in placed.cues:
            assert placed.start - 1e-9 <= cue.start < cue.end <= placed.end + slack
        if audio is None:
            assert placed.cues == ()
        else:  # every word of the narration is captioned, in order
            assert " ".join(c.text for c in placed.cues).split() == scene.narration.split()
    cues = timeline.cues
    assert cues == tuple(c for s in scenes for c in s.cues)
    for a, b in pairwise(cues):
        assert a.start <= b.start
        assert a.end <= b.start + slack


@settings(max_examples=150, deadline=None)
@given(preset=presets, parts=timeline_parts())
def test_build_times_scenes_from_narration(preset: Preset, parts: list[Part]) -> None:
    timeline = Timeline.build(preset, parts)
    check_timeline(timeline, parts, preset, 3.0)
    assert timeline.preset == preset and timeline.burn_captions


@settings(max_examples=75, deadline=None)
@given(fps=st.integers(1, 120), parts=timeline_parts(silent=True),
       silent_seconds=st.floats(0.05, 10.0))
def test_build_at_any_rate_and_with_silent_scenes(fps: int, parts: list[Part],
                                                  silent_seconds: float) -> None:
    preset = Preset("any", 320, 240, fps=fps)
    timeline = Timeline.build(preset, parts, silent_seconds=silent_seconds)
    check_timeline(timeline, parts, preset, silent_seconds)


@settings(max_examples=200, deadline=None)
@given(fps=st.sampled_from(PRESET_FPS), frames=st.integers(1, 30 * 120))
def test_narration_of_a_whole_number_of_frames_gets_exactly_those_frames(
        fps: int, frames: int) -> None:
    """Float noise (e.g. 2.2 × 25 = 55.000000000000007) must not add a frame."""
    seconds = frames / fps
    if seconds < 0.05:
        return
    audio = AudioAsset(Path("n.wav"), seconds)
    timeline = Timeline.build(Preset("p", 64, 64, fps=fps), [(Scene(0, "Hi."), audio,
                                                              CardVisual(""))])
    assert timeline.frames == frames


@pytest.mark.parametrize(("seconds", "fps", "frames"), [
    (2.2, 25, 55), (1.3, 12, 16), (0.9, 12, 11), (0.05, 24, 2), (0.05, 30, 2), (1 / 3, 30, 10),
    (30.0, 24, 720), (1.0000001, 24, 25), (29.99, 30, 900),
])
def test_build_examples(seconds: float, fps: int, frames: int) -> None:
    audio = AudioAsset(Path("n.wav"), seconds)
    timeline = Timeline.build(Preset("p", 64, 64, fps=fps),
                              [(Scene(0, "Hello there."), audio, CardVisual("T"))])
    assert timeline.frames == frames
    assert timeline.cues[0].start == 0.0 and timeline.cues[0].end == seconds


def test_silent_scene_and_default_segment() -> None:
    preset = Preset("p", 64, 64, fps=10)
    parts: list[Part] = [
        (Scene(0, "Spoken words here."), AudioAsset(Path("a.wav"), 1.25), CardVisual("x")),
        (Scene(1, "Not spoken."), None, CardVisual("y")),
        (Scene(2, "Two. Sentences."), AudioAsset(Path("b.wav"), 2.0, [
            Segment("Two.", 0.1, 0.6), Segment("Sentences.", 0.7, 1.9)]), CardVisual("")),
    ]
    timeline = Timeline.build(preset, parts, silent_seconds=0.5)
    assert [s.frames for s in timeline.scenes] == [13, 5, 20]
    assert [s.start for s in timeline.scenes] == [0.0, 1.3, 1.8]
    assert [(c.start, c.end, c.text) for c in timeline.cues] == [
        (0.0, 1.25, "Spoken words here."),
        (pytest.approx(1.9), pytest.approx(2.4), "Two."),
        (pytest.approx(2.5), pytest.approx(3.7), "Sentences."),
    ]
    assert [(start, end, card.title) for start, end, card in timeline.cards] == [
        (0.0, 1.3, "x"), (1.3, 1.8, "y")]


# --------------------------------------------------------------------------- compile_graph


def expected_inputs(timeline: Timeline) -> list[tuple[str, str]]:
    """(path, stream) of every input, in the order the command must open them: the
    pictures of the video graph, then the narrations of the audio graph."""
    inputs = [(str(s.visual.path), "v") for s in timeline.scenes
              if isinstance(s.visual, (ClipAsset, ImageAsset))]
    return inputs + [(str(s.narration.path), "a") for s in timeline.scenes
                     if s.narration is not None]


special_paths = st.text(alphabet=":'\\[],;= %abc/", min_size=1, max_size=20).map(
    lambda s: Path("/tmp/out dir") / (s.replace("/", "_") + ".ass"))


@settings(max_examples=150, deadline=None)
@given(preset=presets, parts=timeline_parts(silent=True), burn=st.booleans(),
       ass=st.none() | special_paths, fonts=st.none() | special_paths)
def test_ffmpeg_args_structure(preset: Preset, parts: list[Part], burn: bool,
                               ass: Path | None, fonts: Path | None) -> None:
    timeline = Timeline.build(preset, parts, burn_captions=burn)
    output = Path("/tmp/out dir/final video.mp4")
    args = compile_graph(timeline, output, ass=ass, fonts_dir=fonts)
    n = len(timeline.scenes)

    assert args[-1] == str(output)
    assert "-frames:v" not in args  # it would cut the audio that loudnorm still holds
    assert arg_after(args, "-r") == str(preset.fps)
    assert arg_after(args, "-ar") == str(AUDIO_RATE)
    assert arg_after(args, "-c:v") == "libx264" and arg_after(args, "-c:a") == "aac"
    assert arg_after(args, "-preset") == preset.encoder_preset
    assert arg_after(args, "-crf") == str(preset.crf)
    graphs = [args[i + 1] for i, a in enumerate(args) if a == "-filter_complex"]
    assert len(graphs) == 2  # video and audio run as two graphs, each in its own thread
    video_graph, audio_graph = graphs
    graph = ";".join(graphs)
    maps = [args[i + 1] for i, a in enumerate(args) if a == "-map"]
    assert maps == ["[vout]", "[aout]"]

    # one -i per narration and per clip or image, none for cards or silence, in scene order
    inputs = [args[i + 1] for i, a in enumerate(args) if a == "-i"]
    expected = expected_inputs(timeline)
    assert inputs == [path for path, _ in expected]
    assert args.index("-filter_complex") > max((i for i, a in enumerate(args) if a == "-i"),
                                               default=-1)
    for index, (_, stream) in enumerate(expected):
        assert graph.count(f"[{index}:{stream}]") == 1
    assert not re.search(rf"\[{len(expected)}:[va]\]", graph)

    # a looped clip is exactly one shorter than its scene by more than the hold; a still is
    # decoded once (never looped), and zoompan draws at least the scene's frames from it
    stills = []
    for scene in timeline.scenes:
        visual = scene.visual
        if isinstance(visual, (ClipAsset, ImageAsset)):
            at = args.index(str(visual.path))
            if isinstance(visual, ClipAsset):
                looped = args[at - 3:at - 1] == ["-stream_loop", "-1"]
                assert looped == (visual.duration < scene.duration - CLIP_HOLD_SECONDS)
            else:
                assert args[at - 3:at - 1] == ["-framerate", str(preset.fps)]
                stills.append(scene)
    assert "-loop" not in args
    drawn = [int(d) for d in re.findall(r"zoompan=[^,;]*?:d=(\d+):", video_graph)]
    assert len(drawn) == len(stills)
    assert all(d >= scene.frames for d, scene in zip(drawn, stills, strict=True))

    # every scene's picture ends on its exact frame count, then one concat (cuts only)
    video_chains = split_graph(video_graph)
    for scene in timeline.scenes:
        ends = [c for c in video_chains if c.endswith(f"[v{scene.index}]")]
        assert len(ends) == 1
        assert ends[0].endswith(f"format=yuv420p,trim=end_frame={scene.frames}"
                                f"[v{scene.index}]")
        if isinstance(scene.visual, CardVisual):
            assert ends[0].startswith("gradients=")
    labels = "".join(f"[v{s.index}]" for s in timeline.scenes)
    assert f"{labels}concat=n={n}:v=1:a=0[vcat]" in video_chains
    assert "xfade" not in video_graph

    # every narration padded to its scene, joined, then normalised to the target loudness
    audio_chains = split_graph(audio_graph)
    total = round(timeline.duration * AUDIO_RATE)
    if all(s.narration is None for s in timeline.scenes):
        assert audio_chains == [f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=end_sample={total}"
                                "[aout]"]  # nothing to mix: plain silence
    else:
        for k, scene in enumerate(timeline.scenes):
            samples = round(scene.duration * AUDIO_RATE)
            audio = audio_chains[k]
            assert audio.endswith(f"apad,atrim=end_sample={samples},asetpts=N/SR/TB"
                                  f"[a{scene.index}]")
            assert audio.startswith("anullsrc=" if scene.narration is None else "[")
        pads = "".join(f"[a{s.index}]" for s in timeline.scenes)
        assert audio_chains[n] == f"{pads}concat=n={n}:v=0:a=1[narr]"
        assert audio_chains[-1].startswith("[narr]volume=0.00dB,alimiter=")  # gain_db=0
        assert audio_chains[-1].endswith(f"atrim=end_sample={total}[aout]")
    assert sum(round(s.duration * AUDIO_RATE) for s in timeline.scenes) == pytest.approx(
        timeline.duration * AUDIO_RATE, abs=n)

    # the subtitle tail: filename and fontsdir survive ffmpeg's two levels of unescaping
    tail = video_chains[-1]
    if ass is None:
        assert tail == "[vcat]format=yuv420p[vout]"
    else:
        # each frame's drawing time: its own microsecond from the frame count, plus one
        assert video_chains[-2] == (f"[vcat]settb=1/1000000,setpts=round((N+0)*1000000/"
                                    f"{preset.fps})+1[vtimed]")
        assert tail.startswith("[vtimed]ass=")
        assert option_values(tail, "filename") == [str(ass)]
        assert option_values(tail, "fontsdir") == ([str(fonts)] if fonts else [])
        args_token, rest = av_get_token(tail[len("[vtimed]ass="):], "[],;")
        assert rest == f",settb=1/{preset.fps},setpts=N,format=yuv420p[vout]"
        options = []
        while True:
            value, args_token = av_get_token(args_token, ":")
            options.append(value)
            if not args_token:
                break
            args_token = args_token[1:]
        assert options == [f"filename={ass}"] + ([f"fontsdir={fonts}"] if fonts else [])


# --------------------------------------------------------------------------- escaping

# Any text ffmpeg can carry (no NUL in a C string) without leading or trailing whitespace,
# which av_get_token drops and escape_filter_value does not protect (paths never have it).
filter_values = st.text(st.characters(exclude_characters="\x00"), max_size=40).filter(
    lambda s: s == s.strip(WHITESPACES))
specials = st.text(alphabet=":'\\[],;= abc", max_size=30).filter(
    lambda s: s == s.strip(WHITESPACES))


def unescaped(text: str, special: str) -> list[int]:
    """Positions of characters of ``special`` in ``text`` that no backslash escapes."""
    found, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] in special:
            found.append(i)
        i += 1
    return found


@settings(max_examples=300, deadline=None)
@given(value=filter_values | specials)
def test_escape_filter_value_leaves_no_special_character_unescaped(value: str) -> None:
    escaped = escape_filter_value(value)
    # graph level: nothing may end the filter's arguments or open a quote
    assert unescaped(escaped, "[],;'") == []
    graph_level, rest = av_get_token(escaped, "[],;")
    assert rest == ""
    # option level: nothing may end the value or open a quote
    assert unescaped(graph_level, ":'") == []
    option_level, rest = av_get_token(graph_level, ":")
    assert rest == ""
    assert option_level == value


@pytest.mark.parametrize(("value", "escaped"), [
    ("plain/path.ass", "plain/path.ass"),
    ("a:b", "a\\\\:b"),
    ("it's", "it\\\\\\'s"),
    ("back\\slash", "back\\\\\\\\slash"),
    ("[1],x;y", "\\[1\\]\\,x\\;y"),
    ("/tmp/we:ird 'dir[1],x;y/.v.ass", "/tmp/we\\\\:ird \\\\\\'dir\\[1\\]\\,x\\;y/.v.ass"),
])
def test_escape_filter_value_examples(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped
    assert av_get_token(av_get_token(escaped, "[],;")[0], ":")[0] == value


def test_av_get_token_model() -> None:
    """The model of ffmpeg's tokenizer used above, on cases from its documentation."""
    assert av_get_token("  foo\\ bar  : baz", ":") == ("foo bar", ": baz")
    assert av_get_token("'a:b'\\'c:d", ":") == ("a:b'c", ":d")
    assert av_get_token("x\\ ", ":") == ("x ", "")
    assert split_graph("a=b\\;c;d='e;f';g") == ["a=b\\;c", "d='e;f'", "g"]


@settings(max_examples=200, deadline=None)
@given(kinds=st.lists(st.sampled_from("cvi"), min_size=1, max_size=40),
       limit=st.integers(1, 8))
def test_parts_cover_the_scenes_with_few_decoded_files_each(kinds: list[str],
                                                            limit: int) -> None:
    from avgen.media._graph import part_ranges

    parts = []
    for i, kind in enumerate(kinds):
        visual: Visual = (CardVisual("") if kind == "c" else
                          ClipAsset(Path("c.mp4"), 1.0, 320, 180) if kind == "v" else
                          ImageAsset(Path("i.png"), 320, 180))
        parts.append((Scene(i, "A"), AudioAsset(Path("a.wav"), 1.0), visual))
    timeline = Timeline.build(Preset("p", 64, 64), parts)
    ranges = part_ranges(timeline, limit)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(kinds)
    assert all(a < b for a, b in ranges)
    assert all(ranges[k][1] == ranges[k + 1][0] for k in range(len(ranges) - 1))
    heavy = [sum(k != "c" for k in kinds[a:b]) for a, b in ranges]
    assert max(heavy) <= limit
    assert len(ranges) == max(1, -(-sum(heavy) // limit))  # no more passes than needed
