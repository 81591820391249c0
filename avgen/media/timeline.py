"""The timeline: scenes laid end to end, timed from measured narration, compiled to ffmpeg.

`Timeline.build` is pure arithmetic: each scene lasts as long as its narration, rounded *up*
to a whole frame so no word is cut, and starts where the previous one ends. Captions are
placed from the narrator's measured sentence timings. `Timeline.to_ffmpeg_args` compiles the
whole video into one filtergraph for one ffmpeg process, and is there for you to read:
nothing else runs.
"""

from __future__ import annotations

__docformat__ = "google"

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

from avgen.media.captions import CaptionStyle, Cue, caption_margin, make_cues, to_ass
from avgen.models import (
    AudioAsset,
    CardVisual,
    ClipAsset,
    ImageAsset,
    Preset,
    Scene,
    Segment,
    Visual,
)

__all__ = ["AUDIO_RATE", "Timeline", "TimelineScene", "escape_filter_value"]

AUDIO_RATE = 48_000
"""Sample rate of the final soundtrack."""

def _cues(value: Iterable[Cue]) -> tuple[Cue, ...]:
    return tuple(value)


def _scenes(value: Iterable[TimelineScene]) -> tuple[TimelineScene, ...]:
    return tuple(value)


_AddInput = Callable[..., int]  # registers an ffmpeg input, returns its index
_KEN_BURNS_ZOOM = 0.12
_CARD_SCALE = 4  # procedural gradients are drawn at 1/4 size and scaled up: smooth anyway


def escape_filter_value(value: str) -> str:
    """Escape a string to be an option value inside an ffmpeg filtergraph.

    Two levels, as ffmpeg parses them: the option value (``\\``, ``'``, ``:``) and then the
    graph (``\\``, ``'``, ``[``, ``]``, ``,``, ``;``).
    """
    level1 = "".join("\\" + c if c in "\\':" else c for c in value)
    return "".join("\\" + c if c in "\\'[],;" else c for c in level1)


@attrs.frozen
class TimelineScene:
    """A scene placed on the timeline."""

    index: int
    """Scene number, from 0."""
    start: float
    """Start in the video, seconds."""
    frames: int
    """Length in frames (at least one)."""
    fps: int
    """Frame rate of the video."""
    visual: Visual
    """What is shown."""
    narration: AudioAsset | None
    """What is heard (``None``: silence)."""
    cues: tuple[Cue, ...] = attrs.field(converter=_cues)
    """Captions, in video time."""

    @property
    def duration(self) -> float:
        """Length in seconds (a whole number of frames)."""
        return self.frames / self.fps

    @property
    def end(self) -> float:
        """End in the video, seconds."""
        return self.start + self.duration


@attrs.frozen
class Timeline:
    """The whole video: output format, scenes in order, caption style."""

    preset: Preset
    """Output format."""
    scenes: tuple[TimelineScene, ...] = attrs.field(converter=_scenes)
    """Scenes in order, end to end."""
    style: CaptionStyle = attrs.field(factory=CaptionStyle)
    """How captions look."""
    burn_captions: bool = True
    """Draw captions into the picture (sidecar files are written either way)."""

    @classmethod
    def build(
        cls,
        preset: Preset,
        parts: Sequence[tuple[Scene, AudioAsset | None, Visual]],
        *,
        style: CaptionStyle | None = None,
        burn_captions: bool = True,
        silent_seconds: float = 3.0,
    ) -> Timeline:
        """Lay scenes end to end, each as long as its measured narration.

        Args:
            preset: Output format.
            parts: For each scene, in order: the scene, its narration (or ``None`` for a
                silent scene of ``silent_seconds``), and its picture.
            style: Caption style; the default suits every preset.
            burn_captions: Draw captions into the picture.
            silent_seconds: Length of a scene without narration.
        """
        style = style or CaptionStyle()
        scenes: list[TimelineScene] = []
        start = 0.0
        frames_so_far = 0
        for scene, audio, visual in parts:
            seconds = audio.duration if audio is not None else silent_seconds
            frames = max(1, math.ceil(round(seconds * preset.fps, 6)))
            start = frames_so_far / preset.fps
            segments: Sequence[Segment] = ()
            if audio is not None:
                segments = audio.segments or (Segment(scene.narration, 0.0, audio.duration),)
            cues = make_cues(segments, start, style)
            scenes.append(TimelineScene(scene.index, start, frames, preset.fps, visual, audio,
                                        cues))
            frames_so_far += frames
        return cls(preset, tuple(scenes), style, burn_captions)

    @property
    def frames(self) -> int:
        """Total length in frames."""
        return sum(scene.frames for scene in self.scenes)

    @property
    def duration(self) -> float:
        """Total length in seconds."""
        return self.frames / self.preset.fps

    @property
    def cues(self) -> tuple[Cue, ...]:
        """Every caption, in video time."""
        return tuple(cue for scene in self.scenes for cue in scene.cues)

    @property
    def cards(self) -> tuple[tuple[float, float, str], ...]:
        """``(start, end, title)`` of each procedural card that shows a title."""
        return tuple((s.start, s.end, s.visual.title) for s in self.scenes
                     if isinstance(s.visual, CardVisual) and s.visual.title.strip())

    def ass_script(self) -> str:
        """The ASS subtitle script the composer burns in: captions and card titles."""
        cues = self.cues if self.burn_captions else ()
        return to_ass(cues, width=self.preset.width, height=self.preset.height, style=self.style,
                      margin=caption_margin(self.style, self.preset), cards=self.cards)

    # -- compilation ---------------------------------------------------------------------

    def to_ffmpeg_args(self, output: Path, *, ass: Path | None,
                       fonts_dir: Path | None) -> list[str]:
        """The ffmpeg arguments (after the binary and global flags) that render the video.

        Args:
            output: The MP4 to write.
            ass: The subtitle script to burn in (from `ass_script`), or ``None``.
            fonts_dir: A folder of fonts for libass, so no system font is needed.
        """
        p = self.preset
        inputs: list[str] = []
        graph: list[str] = []
        count = 0

        def add_input(*args: str) -> int:
            nonlocal count
            inputs.extend(args)
            count += 1
            return count - 1

        pairs = []
        for scene in self.scenes:
            vlabel, alabel = f"v{scene.index}", f"a{scene.index}"
            graph.append(self._video_chain(scene, add_input) + f"[{vlabel}]")
            graph.append(self._audio_chain(scene, add_input) + f"[{alabel}]")
            pairs.append(f"[{vlabel}][{alabel}]")
        graph.append("".join(pairs) + f"concat=n={len(self.scenes)}:v=1:a=1[vcat][acat]")
        video_tail = "[vcat]"
        if ass is not None:
            option = f"ass=filename={escape_filter_value(str(ass))}"
            if fonts_dir is not None:
                option += f":fontsdir={escape_filter_value(str(fonts_dir))}"
            video_tail += option + ","
        else:
            video_tail += "null,"
        graph.append(video_tail + "format=yuv420p[vout]")
        graph.append("[acat]aformat=sample_fmts=fltp:channel_layouts=stereo[aout]")
        return [
            *inputs,
            "-filter_complex", ";".join(graph),
            "-map", "[vout]", "-map", "[aout]",
            "-c:v", "libx264", "-preset", p.encoder_preset, "-crf", str(p.crf),
            "-pix_fmt", "yuv420p", "-r", str(p.fps),
            "-c:a", "aac", "-b:a", p.audio_bitrate, "-ar", str(AUDIO_RATE),
            "-movflags", "+faststart",
            "-frames:v", str(self.frames),
            str(output),
        ]

    def _video_chain(self, scene: TimelineScene, add_input: _AddInput) -> str:
        p, visual = self.preset, scene.visual
        fit = f"setsar=1,format=yuv420p,trim=end_frame={scene.frames},setpts=PTS-STARTPTS"
        if isinstance(visual, ClipAsset):
            loop = ["-stream_loop", "-1"] if visual.duration < scene.duration else []
            idx = add_input(*loop, "-i", str(visual.path))
            # tpad: a clip whose video ends before its declared duration (e.g. its own
            # sound track is longer) holds its last frame instead of ending the scene early
            return (f"[{idx}:v]fps={p.fps},scale={p.width}:{p.height}:"
                    f"force_original_aspect_ratio=increase,crop={p.width}:{p.height},"
                    f"tpad=stop=-1:stop_mode=clone,{fit}")
        if isinstance(visual, ImageAsset):
            idx = add_input("-loop", "1", "-framerate", str(p.fps),
                            "-t", f"{scene.duration + 1 / p.fps:.6f}", "-i", str(visual.path))
            return f"[{idx}:v]" + self._ken_burns(scene) + "," + fit
        colors = visual.colors
        w, h = max(2, p.width // _CARD_SCALE), max(2, p.height // _CARD_SCALE)
        return (f"gradients=s={w}x{h}:r={p.fps}:c0={colors[0]}:c1={colors[1]}:"
                f"x0=0:y0=0:x1={w}:y1={h}:speed=0.015:seed={scene.index},"
                f"scale={p.width}:{p.height}:flags=bicubic,{fit}")

    def _ken_burns(self, scene: TimelineScene) -> str:
        """Slow zoom (in on even scenes, out on odd ones) centred on the picture."""
        p = self.preset
        big_w, big_h = p.width * 3 // 2 // 2 * 2, p.height * 3 // 2 // 2 * 2
        n = max(1, scene.frames - 1)
        zoom = (f"1+{_KEN_BURNS_ZOOM}*on/{n}" if scene.index % 2 == 0
                else f"1+{_KEN_BURNS_ZOOM}-{_KEN_BURNS_ZOOM}*on/{n}")
        return (f"scale={big_w}:{big_h}:force_original_aspect_ratio=increase,"
                f"crop={big_w}:{big_h},"
                f"zoompan=z='{zoom}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:"
                f"s={p.width}x{p.height}:fps={p.fps}")

    def _audio_chain(self, scene: TimelineScene, add_input: _AddInput) -> str:
        samples = round(scene.duration * AUDIO_RATE)
        tail = (f"aresample={AUDIO_RATE},aformat=sample_fmts=fltp:channel_layouts=stereo,"
                f"apad,atrim=end_sample={samples},asetpts=PTS-STARTPTS")
        if scene.narration is None:
            return f"anullsrc=r={AUDIO_RATE}:cl=stereo," + tail
        idx = add_input("-i", str(scene.narration.path))
        return f"[{idx}:a]" + tail
