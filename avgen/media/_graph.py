"""Compile a `avgen.media.Timeline` into ffmpeg arguments.

Two filtergraphs (in one process, `compile_graph`, ffmpeg gives each its own thread):

- **video**: every scene's picture fitted to the frame (cover-crop or blur-pad), stills
  given Ken Burns motion, procedural cards drawn, each cut to an exact number of frames,
  joined by cuts or ``xfade`` transitions, captions and cards' text burned in with libass
  (the text of a card once it stands still drawn once and overlaid: `StillTexts`);
- **audio**: each narration levelled and padded to its scene, joined, optional music
  looped, set below the narration by its measured loudness (`music_gain`), faded and
  ducked under the narration with a sidechain compressor, the mix brought to the target
  loudness (EBU R128) by one gain and a peak limiter, the gain found by quick measuring
  passes through that limiter (`compile_loudness_probe`).

The composer runs them as separate processes: the picture (`compile_part`, in parts for
long videos) and the sound (`compile_sound`) side by side, then `compile_mux` joins them by
stream copy. When every scene is a clip already in the output's codec, size and rate and
nothing needs drawing on the picture, the clips themselves are joined (`copy_plan`).
"""

from __future__ import annotations

__docformat__ = "google"

import itertools
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from avgen._models import CardVisual, ClipAsset, ImageAsset, Visual
from avgen.media._cards import gradient_corners
from avgen.media._ffmpeg import MediaInfo

if TYPE_CHECKING:
    from avgen.media._captions import StillText
    from avgen.media._timeline import Timeline, TimelineScene

__all__ = []

AUDIO_RATE = 48_000
"""Sample rate of the final soundtrack."""

_KEN_BURNS_ZOOM = 0.12
_CARD_LONG_SIDE = 80
"""A card's gradient is drawn this long at most and scaled up: a linear gradient is linear
between the samples, so bilinear scaling draws it the same (its cost grows with its
pixels: at 720×1280, 45×80 costs a fifth of 180×320)."""
_BLUR_SCALE = 8  # the blurred background is computed at 1/8 size
_AddInput = Callable[..., int]  # registers an ffmpeg input, returns its index


@attrs.frozen
class StillTexts:
    """Card text that stands still, drawn once per render and put on its frames by ffmpeg's
    ``overlay`` (`avgen.media._timeline.Timeline.still_texts`), instead of libass blending it
    into each frame: on the README's 1080×1920 short that text costs half the CPU it did
    (``python benchmarks/offline.py --where``).

    Each still is drawn by libass over black and over white: the two tell each pixel's
    colour and transparency (whatever libass's own transparency does on a transparent
    frame). The overlay shows it on exactly the frames libass would (the same milliseconds,
    counted the same way).
    """

    script: Path
    """The ASS script of the stills (``Timeline.ass_script(part="still")``)."""
    spans: Sequence[StillText]
    """Where and when each is shown, in the script's order."""


class _Inputs(list[str]):
    """The ``-i`` arguments of a command, in order; `add` returns the input's index."""

    opened = 0

    def add(self, *args: str) -> int:
        self.extend(args)
        self.opened += 1
        return self.opened - 1
LIMITER_CEILING_DB = -2.5
"""Sample peak the limiter allows (dBFS). It works on samples, so it sits below the
-1 dBTP the final file must keep, leaving room for the peaks between samples and the AAC
encoder's overshoot (both measured: about half a decibel for speech)."""
_PEAK_LIMIT = 10 ** (LIMITER_CEILING_DB / 20)


CLIP_HOLD_SECONDS = 1.0
"""A clip up to this much shorter than its scene holds its last frame to the scene's end;
a clip shorter by more is looped."""

def escape_filter_value(value: str) -> str:
    """Escape a string to be an option value inside an ffmpeg filtergraph.

    Two levels, as ffmpeg parses them: the option value (``\\``, ``'``, ``:``) and then the
    graph (``\\``, ``'``, ``[``, ``]``, ``,``, ``;``).
    """
    level1 = "".join("\\" + c if c in "\\':" else c for c in value)
    return "".join("\\" + c if c in "\\'[],;" else c for c in level1)


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def copy_plan(timeline: Timeline, infos: Sequence[MediaInfo | None]) -> bool:
    """True when the video can be joined by stream copy: every scene is a whole clip that
    already has the output's codec, pixel format, size and rate, with cuts only and nothing
    drawn on the picture.

    Args:
        timeline: The timeline.
        infos: The probe of each scene's picture, in scene order (``None`` for cards).
    """
    p = timeline.preset
    if timeline.draws_on_picture or any(not s.transition.is_cut for s in timeline.scenes[1:]):
        return False
    for scene, info in zip(timeline.scenes, infos, strict=True):
        if not isinstance(scene.visual, ClipAsset) or info is None or info.duration is None:
            return False
        if (info.video_codec, info.pix_fmt, info.width, info.height) != (
                p.video_codec_name, "yuv420p", p.width, p.height):
            return False
        if abs(info.fps - p.fps) > 1e-3 or round(info.duration * p.fps) != scene.frames:
            return False
    return True


def compile_graph(timeline: Timeline, output: Path, *, ass: Path | None,
                  fonts_dir: Path | None, gain_db: float = 0.0,
                  voice_gains: Sequence[float] = (), music_gain_db: float = 0.0,
                  stills: StillTexts | None = None) -> list[str]:
    """The ffmpeg arguments (after the binary and global flags) that render ``timeline``
    whole in one process: picture and sound.

    `avgen.media.FFmpegComposer` renders the same picture and sound in three steps
    (`compile_part` and `compile_sound` side by side, then `compile_mux`), so that the
    sound is encoded while the picture is and long videos keep memory flat; this form
    describes what it renders (its fingerprint) and is the command to time it against.

    Args:
        timeline: What to render.
        output: The MP4 to write.
        ass: The subtitle script to burn in, or ``None``.
        fonts_dir: A folder of fonts for libass.
        gain_db: Gain that brings the mix to the target loudness (`loudness_gain`).
        voice_gains: Per scene, the gain that levels its narration (`voice_gains`).
        music_gain_db: Gain of the music (`music_gain`).
        stills: Card text put on the frames as drawn once; ``ass`` then leaves it out.
    """
    p = timeline.preset
    inputs = _Inputs()
    video_graph = _video_graph(timeline, inputs.add, ass, fonts_dir, stills=stills)
    audio_graph = _audio_graph(timeline, inputs.add, gain_db, voice_gains,
                               music_gain_db=music_gain_db)
    # no -frames:v: the graph already ends on the exact frame
    return [*inputs, "-filter_complex", video_graph, "-filter_complex", audio_graph,
            "-map", "[vout]", "-map", "[aout]", *_video_codec_args(timeline),
            *_AUDIO_CODEC_ARGS, "-b:a", p.audio_bitrate, "-ar", str(AUDIO_RATE),
            "-movflags", "+faststart", str(output)]


def compile_sound(timeline: Timeline, output: Path, *, gain_db: float = 0.0,
                  voice_gains: Sequence[float] = (), music_gain_db: float = 0.0) -> list[str]:
    """The ffmpeg arguments that mix and encode the soundtrack alone into ``output`` (an
    M4A, AAC), levelled as `compile_graph` would; `compile_mux` joins it to the picture.

    The sound is its own process so that it is encoded while the picture is (the AAC
    encoder takes about a second for thirty seconds of sound, on one core).
    """
    p = timeline.preset
    inputs = _Inputs()
    graph = _audio_graph(timeline, inputs.add, gain_db, voice_gains,
                         music_gain_db=music_gain_db)
    return [*inputs, "-filter_complex", graph, "-map", "[aout]", *_AUDIO_CODEC_ARGS,
            "-b:a", p.audio_bitrate, "-ar", str(AUDIO_RATE), str(output)]


def compile_mux(pictures: Path, sound: Path, output: Path) -> list[str]:
    """The ffmpeg arguments that join the picture files listed in ``pictures`` (an
    ffconcat list: parts by `compile_part`, or clips when `copy_plan` allows) and the
    soundtrack ``sound`` (by `compile_sound`) into the final MP4, all by stream copy."""
    return ["-f", "concat", "-safe", "0", "-i", str(pictures), "-i", str(sound),
            "-map", "0:v:0", "-map", "1:a:0", "-c", "copy", "-movflags", "+faststart",
            str(output)]


def part_ranges(timeline: Timeline, max_scenes: int) -> list[tuple[int, int]]:
    """Split the scenes into parts with at most ``max_scenes`` clips or stills each
    (positions, half-open), as even as possible.

    Every file ffmpeg decodes holds frames until the end of the process, so memory grows
    with the number of clips and stills rendered in one pass; procedural cards cost nothing
    of the kind. Rendering at most ``max_scenes`` of them per pass keeps memory flat however
    long the video is.
    """
    heavy = [isinstance(s.visual, (ClipAsset, ImageAsset)) for s in timeline.scenes]
    total = sum(heavy)
    limit = max(1, max_scenes)
    if total <= limit:
        return [(0, len(heavy))]
    share = -(-total // -(-total // limit))  # balanced: the fewest parts, evenly filled
    bounds, count = [0], 0
    for position, is_heavy in enumerate(heavy):
        if is_heavy and count == share:
            bounds.append(position)
            count = 0
        count += is_heavy
    bounds.append(len(heavy))
    return list(itertools.pairwise(bounds))


def compile_part(timeline: Timeline, first: int, stop: int, output: Path, *,
                 ass: Path | None, fonts_dir: Path | None,
                 stills: StillTexts | None = None) -> list[str]:
    """The ffmpeg arguments rendering the picture (no sound) of scenes ``first:stop``.

    Parts are encoded alike, so they join by stream copy into the final video; the sound is
    mixed once, over the whole video, by `compile_graph` with ``copy_list``.
    """
    inputs = _Inputs()
    add_input = inputs.add

    graph = _video_graph(timeline, add_input, ass, fonts_dir, first, stop, stills)
    return [*inputs, "-filter_complex", graph, "-map", "[vout]", "-an",
            *_video_codec_args(timeline), str(output)]


def compile_voice_probe(timeline: Timeline) -> list[str] | None:
    """The ffmpeg arguments that measure the loudness of each narration (one meter per
    scene with narration, in scene order) and then of the music as the video plays it
    (looped or cut to the video's length; no fade); ``None`` when there is neither."""
    voiced = [s for s in timeline.scenes if s.narration is not None]
    music = timeline.soundtrack.music
    if not voiced and music is None:
        return None
    fmt = f"aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
    inputs: list[str] = []
    chains = []
    for number, scene in enumerate(voiced):
        assert scene.narration is not None
        inputs += ["-i", str(scene.narration.path)]
        chains.append(f"[{number}:a]{fmt},ebur128=framelog=quiet[m{number}]")
    if music is not None:
        inputs += ["-stream_loop", "-1", "-i", str(music)]
        total = round(timeline.duration * AUDIO_RATE)
        chains.append(f"[{len(voiced)}:a]{fmt},atrim=end_sample={total},asetpts=N/SR/TB,"
                      f"ebur128=framelog=quiet[m{len(voiced)}]")
    count = len(voiced) + (music is not None)
    labels = "".join(f"[m{n}]" for n in range(count))
    chains.append(f"{labels}concat=n={count}:v=0:a=1[aout]")
    return [*inputs, "-filter_complex", ";".join(chains), "-map", "[aout]", "-f", "null", "-"]


def music_gain(timeline: Timeline, measured: float | None) -> float:
    """The gain (dB) that sets the music `avgen.Soundtrack.music_volume` dB below the
    narration, which `voice_gains` levels to the target loudness.

    Args:
        timeline: The timeline.
        measured: The music's loudness as the video plays it (`compile_voice_probe`'s last
            meter), LUFS; ``None`` for silence, which gets no gain.
    """
    if measured is None:
        return 0.0
    track = timeline.soundtrack
    return max(-60.0, min(40.0, track.loudness - track.music_volume - measured))


def voice_gains(timeline: Timeline, measured: Sequence[float | None]) -> list[float]:
    """Per scene, the gain that brings its narration to the target loudness, so every scene
    speaks at the same level whatever the narrator did (0 for silence and silent scenes).

    Args:
        timeline: The timeline.
        measured: The loudness of each narration, in the order of `compile_voice_probe`.
    """
    values = iter(measured)
    gains = []
    for scene in timeline.scenes:
        loud = next(values, None) if scene.narration is not None else None
        gains.append(0.0 if loud is None else
                     max(-40.0, min(40.0, timeline.soundtrack.loudness - loud)))
    return gains


def compile_loudness_probe(timeline: Timeline, voice_gains: Sequence[float] = (),
                           gains: Sequence[float] = (), *, raw: bool = True,
                           music_gain_db: float = 0.0) -> list[str] | None:
    """The ffmpeg arguments that mix the soundtrack and measure it (EBU R128,
    `avgen.media._ffmpeg.measure_mix`).

    With ``raw`` (the default), the first meter measures the raw mix: its integrated
    loudness and sample peak. Then one meter per gain of ``gains`` measures the mix as the
    final encode would make it with that gain: the gain, then the peak limiter (whose work
    lowers the loudness a little, the more the louder). One decode for them all.

    The measuring passes are cheap (under a second a pass for ten minutes of sound): the mix
    is then brought to the target by one gain, which keeps speech natural, instead of a
    dynamic normaliser that would cost twenty times as much. ``None`` when there is
    nothing to hear.
    """
    if timeline.soundtrack.music is None and all(s.narration is None for s in timeline.scenes):
        return None
    inputs = _Inputs()
    add_input = inputs.add

    graph = _audio_graph(timeline, add_input, None, voice_gains, meter_gains=gains,
                         raw_meter=raw, music_gain_db=music_gain_db)
    return [*inputs, "-filter_complex", graph, "-map", "[aout]", "-f", "null", "-"]


def loudness_gain(timeline: Timeline, measured_lufs: float | None) -> float:
    """The gain (dB) that brings a mix measured at ``measured_lufs`` to the target.

    Silence (nothing above the R128 gate) gets no gain; the gain is kept within ±40 dB.
    """
    if measured_lufs is None or measured_lufs <= -69.0:
        return 0.0
    return max(-40.0, min(40.0, timeline.soundtrack.loudness - measured_lufs))


_AUDIO_CODEC_ARGS = ("-c:a", "aac", "-aac_coder", "fast")
"""ffmpeg's AAC encoder with its ``fast`` coder: at the presets' 96–160 kbit/s it takes less
CPU than the default ``twoloop`` for files of the same size."""


FEW_CORES = 4
"""On a machine of at most this many cores, a picture's filter graph runs on one thread
(`graph_threads`)."""


def graph_threads(cores: int | None) -> list[str]:
    """ffmpeg's global option for the filter graph of a picture render on a machine of
    ``cores`` cores (``None``: unknown): one thread on a machine of at most `FEW_CORES`,
    ffmpeg's default elsewhere.

    There x264 keeps every core busy, and the graph's slice threads (the cards' gradients,
    the scaling) only contend with it: on 2 cores a 720×1280 render took about 6 % less with
    one, a 1080×1920 one the same (``benchmarks/offline.py``). With more cores than the
    encoder fills, the slices run on idle ones.

    Example:
        >>> graph_threads(2), graph_threads(16)
        (['-filter_complex_threads', '1'], [])
    """
    if cores is not None and cores <= FEW_CORES:
        return ["-filter_complex_threads", "1"]
    return []


def _video_codec_args(timeline: Timeline) -> list[str]:
    p = timeline.preset
    args = ["-c:v", p.video_codec, "-preset", p.encoder_preset, "-crf", str(p.crf),
            "-pix_fmt", "yuv420p", "-r", str(p.fps)]
    if p.video_codec == "libx265":
        args += ["-tag:v", "hvc1"]
    return args


# -- video -------------------------------------------------------------------------------


def _video_graph(timeline: Timeline, add_input: _AddInput, ass: Path | None,
                 fonts_dir: Path | None, first: int = 0, stop: int | None = None,
                 stills: StillTexts | None = None) -> str:
    """The video graph of scenes ``first`` to ``stop`` (positions; all by default).

    A part that starts inside a transition also draws the tail of the scene before it, so
    the transition is whole and the part can be joined to the previous one by stream copy.
    """
    p = timeline.preset
    chains: list[str] = []
    everything = timeline.scenes
    stop = len(everything) if stop is None else stop
    scenes = everything[first:stop]
    offset = scenes[0].start
    for position, scene in enumerate(scenes, start=first):
        following = everything[position + 1] if position + 1 < stop else None
        overlap = following.transition_frames if following is not None else 0
        frames = scene.frames + overlap  # the picture lingers under the next transition
        source = _picture(timeline, scene, frames, add_input, chains)
        chains.append(f"{source}settb=1/{p.fps},setpts=N/{p.fps}/TB,format=yuv420p,"
                      f"trim=end_frame={frames}[v{scene.index}]")
    labels = [f"[v{s.index}]" for s in scenes]
    lead = scenes[0].transition_frames if first > 0 else 0
    if lead:  # the previous scene's last frames, under this part's first transition
        before = everything[first - 1]
        frames = before.frames + lead
        source = _picture(timeline, before, frames, add_input, chains)
        chains.append(f"{source}settb=1/{p.fps},setpts=N/{p.fps}/TB,format=yuv420p,"
                      f"trim=start_frame={before.frames}:end_frame={frames},"
                      f"setpts=N/{p.fps}/TB[lead]")
        labels.insert(0, "[lead]")
        scenes = (before, *scenes)  # the lead blends into this part's first scene at 0
    if all(s.transition_frames == 0 for s in scenes[1:]) and not lead:
        chains.append("".join(labels) + f"concat=n={len(labels)}:v=1:a=0[vcat]")
    else:
        current = labels[0]
        for position, scene in enumerate(scenes[1:], start=1):
            out = f"[x{position}]" if position < len(scenes) - 1 else "[vcat]"
            if scene.transition_frames == 0:
                chains.append(f"{current}{labels[position]}concat=n=2:v=1:a=0{out}")
            else:
                start = scene.start - offset
                chains.append(
                    f"{current}{labels[position]}xfade=transition={scene.transition.style}:"
                    f"duration={scene.transition_frames / p.fps:.6f}:"
                    f"offset={max(0.0, start):.6f}{out}")
            current = out
    tail = "[vcat]"
    if ass is not None:
        fonts = f":fontsdir={escape_filter_value(str(fonts_dir))}" if fonts_dir else ""
        chains.append(f"[vcat]{_drawing_clock(round(offset * p.fps), p.fps)}[vtimed]")
        tail = "[vtimed]"
        if stills is not None:
            seconds = sum(s.frames for s in everything[first:stop]) / p.fps
            tail = _put_still_texts(timeline, stills, fonts, offset, offset + seconds, tail, chains)
        tail += f"ass=filename={escape_filter_value(str(ass))}{fonts},"
        tail += f"settb=1/{p.fps},setpts=N,"  # the part's frames, from 0
    chains.append(tail + "format=yuv420p[vout]")
    return ";".join(chains)


def _drawing_clock(first_frame: int, fps: int) -> str:
    """Filters that give each frame the time what is drawn on it is looked up at: frame
    ``n`` of the video (``first_frame`` is this part's first) at ``n / fps`` seconds in
    microseconds, plus one.

    libass, and the still text's ``enable`` that follows it, take a frame's time in whole
    milliseconds, cut down from ``pts × time base × 1000`` in floating point. A frame that
    starts exactly on a cue (frame 189 at 30 fps, 6.3 s) came out a hair short (6299.99…)
    and showed the cue a frame late — depending on the time base, so one pass and a video
    in parts disagreed. One microsecond is more than that error and less than any frame's
    distance to the next millisecond at up to 120 fps (8.3 µs), so every frame is looked
    up at exactly its own millisecond. The frame count also drops the drift ``concat``
    adds (it rounds each input's start to the microsecond).
    """
    return f"settb=1/1000000,setpts=round((N+{first_frame})*1000000/{fps})+1"


def _draw_still_texts(timeline: Timeline, stills: StillTexts, chosen: Sequence[int],
                      fonts: str, chains: list[str], *, colour: bool = True,
                      crop: bool = True) -> None:
    """Draw the stills of ``chosen`` (positions in ``stills.spans``) once each: still
    ``n`` of them ends as ``[sd<n>m]``, its opacity (a grey plane), and with ``colour`` as
    ``[sd<n>c]``, its colour premultiplied by its opacity (YUV 4:4:4: luma times the
    opacity, chroma about 128, as ffmpeg's premultiplied frames hold it); with ``crop``,
    both cut to the still's box.

    libass draws still ``k`` of the script at its second ``2k`` over black (Y 0, chroma
    128) and at ``2k + 1`` over white (Y 255), in the frame's own colours (YUV, the main
    picture's range and matrix) without chroma subsampling. Blending is linear in each
    plane — ``opacity × colour + (1 - opacity) × background`` — so the render over black
    is the colour premultiplied, and the difference of the two renders' luma is the
    transparency. Built-in blend modes and look-up tables only: no expression runs per
    pixel.
    """
    p = timeline.preset
    first = min(chosen)  # the script's seconds before 2 × first are not drawn
    outputs = "".join(f"[sd{n}b][sd{n}w]" for n in range(len(chosen)))
    chains.append(
        f"color=c=black:s={p.width}x{p.height}:r=1:d={2 * (max(chosen) - first) + 2},"
        "format=yuv444p,lutyuv=y=0:u=128:v=128,lutyuv=y=255:enable='mod(n,2)',"
        f"setpts=PTS+{2 * first}/TB,"
        f"ass=filename={escape_filter_value(str(stills.script))}{fonts},"
        f"split={2 * len(chosen)}{outputs}")
    for n, index in enumerate(chosen):
        x, y, width, height = stills.spans[index].box
        cut = f",crop={width}:{height}:{x}:{y}" if crop else ""
        over_black = f"split[sd{n}k][sd{n}c]" if colour else f"null[sd{n}k]"
        frame = 2 * (index - first)
        chains += [
            f"[sd{n}b]trim=start_frame={frame}:end_frame={frame + 1},setpts=0{cut},"
            + over_black,
            f"[sd{n}w]trim=start_frame={frame + 1}:end_frame={frame + 2},setpts=0"
            f"{cut},extractplanes=y[sd{n}v]",
            f"[sd{n}k]extractplanes=y[sd{n}y]",
            f"[sd{n}y][sd{n}v]blend=all_mode=difference,negate[sd{n}m]"]


def _put_still_texts(timeline: Timeline, stills: StillTexts, fonts: str, start: float,
                     end: float, tail: str, chains: list[str]) -> str:
    """Draw the stills shown between ``start`` and ``end`` (seconds of the video) once
    (`_draw_still_texts`) and put each on its frames of ``tail`` (a label); returns the label of
    the result."""
    chosen = [index for index, still in enumerate(stills.spans)
              if still.start_ms < end * 1000 and still.end_ms > start * 1000
              and still.box[2] > 0 and still.box[3] > 0]
    if not chosen:
        return tail
    _draw_still_texts(timeline, stills, chosen, fonts, chains)
    for n, index in enumerate(chosen):
        still = stills.spans[index]
        x, y, _width, _height = still.box
        chains += [
            # tagged premultiplied: ffmpeg makes it straight once, for the overlay's
            # straight blend (the one with SIMD)
            f"[sd{n}c][sd{n}m]alphamerge,setparams=alpha_mode=premultiplied,"
            f"format=yuva420p[sd{n}]",
            # t × 1000 against whole milliseconds: true on the frames libass shows it on
            f"{tail}[sd{n}]overlay=x={x}:y={y}:eof_action=repeat:alpha=straight:"
            f"enable='gte(t*1000,{still.start_ms})*lt(t*1000,{still.end_ms})'[vst{n}]"]
        tail = f"[vst{n}]"
    return tail


def compile_still_text_probe(timeline: Timeline, stills: StillTexts,
                             fonts_dir: Path | None) -> list[str]:
    """The ffmpeg arguments that draw each still once, whole frame, and report the box of
    its visible pixels (ffmpeg's ``bbox``, at the ``info`` log level; `fitted_still_texts`
    reads it): the overlay's cost grows with the box, and the layout's boxes leave room
    for lines that were not planned."""
    fonts = f":fontsdir={escape_filter_value(str(fonts_dir))}" if fonts_dir else ""
    chains: list[str] = []
    chosen = range(len(stills.spans))
    _draw_still_texts(timeline, stills, chosen, fonts, chains, colour=False, crop=False)
    for n in chosen:
        chains.append(f"[sd{n}m]bbox@still{n}=min_val=0" + (
            "[found]" if n == len(chosen) - 1 else ",nullsink"))
    return ["-filter_complex", ";".join(chains), "-map", "[found]", "-f", "null", "-"]


_BBOX = re.compile(r"\[bbox@still(\d+) @ [^\]]*\][^\n]*crop=(\d+):(\d+):(\d+):(\d+)")


def fitted_still_texts(timeline: Timeline, stills: StillTexts, report: str) -> StillTexts:
    """``stills`` with each box fitted to the pixels `compile_still_text_probe` reported,
    with a two-pixel margin, on even pixels; a still that draws nothing gets an empty box (it
    is not put on the picture)."""
    p = timeline.preset
    found: dict[int, tuple[int, int, int, int]] = {}
    for match in _BBOX.finditer(report):
        number, width, height, x, y = map(int, match.groups())
        x0, y0 = max(0, x - 2) // 2 * 2, max(0, y - 2) // 2 * 2
        x1, y1 = min(p.width, x + width + 2), min(p.height, y + height + 2)
        found[number] = (x0, y0, min(x1 - x0 + 1, p.width - x0) // 2 * 2,
                         min(y1 - y0 + 1, p.height - y0) // 2 * 2)
    return attrs.evolve(stills, spans=[attrs.evolve(still, box=found.get(n, (0, 0, 0, 0)))
                                       for n, still in enumerate(stills.spans)])


def _fit(timeline: Timeline, label: str, width: int, height: int, chains: list[str]) -> str:
    """Fit ``[label]`` into width×height by the timeline's fit mode; returns the new label."""
    if timeline.fit == "cover":
        chains.append(f"[{label}]scale={width}:{height}:force_original_aspect_ratio=increase,"
                      f"setsar=1,crop={width}:{height}[{label}f]")
        return f"{label}f"
    small_w, small_h = _even(width / _BLUR_SCALE), _even(height / _BLUR_SCALE)
    chains.append(
        f"[{label}]split=2[{label}bg][{label}fg];"
        f"[{label}bg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase,"
        f"crop={small_w}:{small_h},boxblur=4:2,scale={width}:{height},setsar=1[{label}bb];"
        f"[{label}fg]scale={width}:{height}:force_original_aspect_ratio=decrease,setsar=1"
        f"[{label}fs];[{label}bb][{label}fs]overlay=(W-w)/2:(H-h)/2[{label}f]")
    return f"{label}f"


def _picture(timeline: Timeline, scene: TimelineScene, frames: int, add_input: _AddInput,
             chains: list[str]) -> str:
    """The start of a scene's video chain (ends with a comma or a label): its picture, or
    its shots joined end to end (the last one lingering for the frames beyond the
    scene's)."""
    if not scene.shots:
        return _one_picture(timeline, scene.visual, str(scene.index), scene.index, frames,
                            add_input, chains)
    p = timeline.preset
    labels = []
    for number, shot in enumerate(scene.shots):
        length = shot.frames + (frames - scene.frames if number == len(scene.shots) - 1
                                else 0)
        key = f"{scene.index}s{number}"
        source = _one_picture(timeline, shot.visual, key, scene.index + number, length,
                              add_input, chains)
        chains.append(f"{source}settb=1/{p.fps},setpts=N/{p.fps}/TB,format=yuv420p,"
                      f"trim=end_frame={length}[p{key}]")
        labels.append(f"[p{key}]")
    chains.append("".join(labels) + f"concat=n={len(labels)}:v=1:a=0[shots{scene.index}]")
    return f"[shots{scene.index}]"


def _one_picture(timeline: Timeline, visual: Visual, key: str, motion: int, frames: int,
                 add_input: _AddInput, chains: list[str]) -> str:
    """The start of one picture's video chain (``key`` names its labels, ``motion`` sets
    the direction of its Ken Burns zoom and the pattern of a card)."""
    p = timeline.preset
    seconds = frames / p.fps
    if isinstance(visual, ClipAsset):
        # a clip a little short holds its last frame; one much shorter loops
        loop = ["-stream_loop", "-1"] if visual.duration < seconds - CLIP_HOLD_SECONDS else []
        idx = add_input(*loop, "-i", str(visual.path))
        if (visual.width, visual.height) == (p.width, p.height) and \
                abs(visual.fps - p.fps) < 1e-3:
            fitted = f"{idx}:v"  # already the output's size and rate: nothing to convert
        else:
            chains.append(f"[{idx}:v]fps={p.fps}[c{key}]")
            fitted = _fit(timeline, f"c{key}", p.width, p.height, chains)
        # hold the last frame if the clip's picture ends early (its sound may be longer)
        return f"[{fitted}]setsar=1,tpad=stop=-1:stop_mode=clone,"
    if isinstance(visual, ImageAsset):
        # the still is decoded and fitted once; zoompan draws every frame of the scene from
        # it (looping the input instead decodes and fits the file again for every frame)
        idx = add_input("-framerate", str(p.fps), "-i", str(visual.path))
        big_w, big_h = _even(p.width * 1.5), _even(p.height * 1.5)
        chains.append(f"[{idx}:v]trim=end_frame=1[i{key}]")
        fitted = _fit(timeline, f"i{key}", big_w, big_h, chains)
        n = max(1, frames - 1)
        zoom = (f"1+{_KEN_BURNS_ZOOM}*on/{n}" if motion % 2 == 0
                else f"1+{_KEN_BURNS_ZOOM}-{_KEN_BURNS_ZOOM}*on/{n}")
        return (f"[{fitted}]zoompan=z='{zoom}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':"
                f"d={frames + 1}:s={p.width}x{p.height}:fps={p.fps},")
    assert isinstance(visual, CardVisual)
    c0, c1 = visual.colors
    scale = max(1.0, max(p.width, p.height) / _CARD_LONG_SIDE)
    w, h = max(2, round(p.width / scale)), max(2, round(p.height / scale))
    x0, y0, x1, y1 = gradient_corners(motion if visual.designed else 0, w, h)
    return (f"gradients=s={w}x{h}:r={p.fps}:c0={c0}:c1={c1}:x0={x0}:y0={y0}:x1={x1}:y1={y1}:"
            f"speed=0.015:seed={motion},scale={p.width}:{p.height}:flags=bilinear,setsar=1,")


# -- audio -------------------------------------------------------------------------------


def _audio_graph(timeline: Timeline, add_input: _AddInput, gain_db: float | None,
                 voice_gains: Sequence[float] = (), *,
                 meter_gains: Sequence[float] = (), raw_meter: bool = True,
                 music_gain_db: float = 0.0) -> str:
    """The soundtrack. ``voice_gains`` level each narration, ``music_gain_db`` sets the
    music under them; ``gain_db`` brings the mix to
    the target and the limiter keeps its peaks down. With ``gain_db=None`` it ends in
    meters instead (the measuring passes of `compile_loudness_probe`): a loudness and
    sample-peak meter of the raw mix (``raw_meter``), then a loudness meter per gain of
    ``meter_gains``, each after that gain and the limiter."""
    chains: list[str] = []
    fmt = f"aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo"
    total = round(timeline.duration * AUDIO_RATE)
    if timeline.soundtrack.music is None and all(s.narration is None for s in timeline.scenes):
        return f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=end_sample={total}[aout]"  # silence
    for position, scene in enumerate(timeline.scenes):
        samples = round(scene.duration * AUDIO_RATE)
        pad = f"apad,atrim=end_sample={samples},asetpts=N/SR/TB[a{scene.index}]"
        if scene.narration is None:
            chains.append(f"anullsrc=r={AUDIO_RATE}:cl=stereo,{fmt},{pad}")
        else:
            idx = add_input("-i", str(scene.narration.path))
            gain = voice_gains[position] if position < len(voice_gains) else 0.0
            level = f"volume={gain:.2f}dB," if gain else ""
            chains.append(f"[{idx}:a]{fmt},{level}{pad}")
    labels = "".join(f"[a{s.index}]" for s in timeline.scenes)
    chains.append(f"{labels}concat=n={len(timeline.scenes)}:v=0:a=1[narr]")
    track = timeline.soundtrack
    mix = "[narr]"
    if track.music is not None:
        idx = add_input("-stream_loop", "-1", "-i", str(track.music))
        fade = min(track.fade_seconds, timeline.duration / 2)
        music = (f"[{idx}:a]{fmt},atrim=end_sample={total},asetpts=N/SR/TB,"
                 f"volume={music_gain_db:.2f}dB")
        if fade > 0:
            music += (f",afade=t=in:d={fade:.3f},"
                      f"afade=t=out:st={timeline.duration - fade:.6f}:d={fade:.3f}")
        chains.append(music + "[music]")
        if track.duck:
            chains.append("[narr]asplit=2[voice][key]")
            chains.append("[music][key]sidechaincompress=threshold=0.02:ratio=12:attack=20:"
                          "release=400:makeup=1[ducked]")
            chains.append("[voice][ducked]amix=inputs=2:duration=first:normalize=0[mixed]")
        else:
            chains.append("[narr][music]amix=inputs=2:duration=first:normalize=0[mixed]")
        mix = "[mixed]"
    limiter = f"alimiter=limit={_PEAK_LIMIT:.4f}:level=false"
    if gain_db is not None:  # one gain for the whole mix keeps speech natural
        chains.append(f"{mix}volume={gain_db:.2f}dB,{limiter},{fmt},"
                      f"apad,atrim=end_sample={total}[aout]")
    else:
        # the sample peak, as the limiter sees it (a true-peak meter costs twice as much)
        meters = ["ebur128=peak=sample:framelog=quiet"] if raw_meter or not meter_gains else []
        meters += [f"volume={gain:.2f}dB,{limiter},ebur128=framelog=quiet"
                   for gain in meter_gains]
        count = len(meters)
        if count > 1:
            chains.append(f"{mix}asplit={count}" + "".join(f"[m{n}]" for n in range(count)))
        for n, meter in enumerate(meters):
            source = mix if count == 1 else f"[m{n}]"
            chains.append(f"{source}{meter}" + ("[aout]" if n == count - 1 else ",anullsink"))
    return ";".join(chains)
