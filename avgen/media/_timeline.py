"""The timeline: scenes laid end to end, timed from measured narration, compiled to ffmpeg.

`Timeline.build` is pure arithmetic: each scene lasts as long as its narration, rounded *up*
to a whole frame so no word is cut, and starts where the previous one ends. Captions are
placed from the narrator's measured sentence (or word) timings. Transitions never move
anything: the outgoing picture lingers under the start of the next scene while the new one
takes over, so the length and every caption stay where the narration puts them.
The composer compiles a timeline into the single ffmpeg command that renders it all.
"""

from __future__ import annotations

__docformat__ = "google"

import math
from collections.abc import Iterable, Mapping, Sequence

import attrs

from avgen._models import (
    AudioAsset,
    CaptionStyle,
    CardVisual,
    ClipAsset,
    Fit,
    Preset,
    Scene,
    Segment,
    Soundtrack,
    Transition,
    Visual,
)
from avgen.media._captions import (
    Cue,
    StillText,
    caption_margin,
    card_still_texts,
    make_cues,
    to_ass,
    to_srt,
    to_vtt,
)

__all__ = ["Timeline"]

_CUT = Transition()


def _cues(value: Iterable[Cue]) -> tuple[Cue, ...]:
    return tuple(value)


def _scenes(value: Iterable[TimelineScene]) -> tuple[TimelineScene, ...]:
    return tuple(value)


def _letters(text: str) -> str:
    """``text`` with case, spaces and punctuation left out."""
    return "".join(char for char in text.casefold() if char.isalnum())


def _said(phrase: str, cues: Iterable[Cue]) -> bool:
    """True when the captions ``cues`` show ``phrase`` (an ellipsis cut included)."""
    wanted = _letters(phrase)
    return bool(wanted) and wanted in _letters(" ".join(cue.text for cue in cues))


def shot_cuts(audio: AudioAsset, max_shot: float) -> list[float]:
    """Where to cut a scene's picture so no shot lasts longer than ``max_shot`` seconds:
    the times (in the narration, seconds) between shots, empty for a scene that fits.

    The scene gets as few shots as its length allows, of about equal length; each cut goes
    to the end of a sentence when one is within a third of a shot of the even cut, else to
    the gap between two words nearest it, else to the even cut itself. A shot is never
    longer than ``max_shot`` when the words allow it, and never shorter than half of it.

    Example:
        >>> words = AudioAsset("a.wav", 9.0, segments=[Segment("One two.", 0, 3.9),
        ...                                             Segment("Three four five.", 4.1, 9)])
        >>> shot_cuts(words, 5.0)
        [4.0]
    """
    length = audio.duration
    count = math.ceil(round(length / max_shot, 6))
    if count <= 1:
        return []
    even = length / count
    ends = [(a.end + b.start) / 2 for a, b in zip(audio.segments, audio.segments[1:],
                                                  strict=False)]
    gaps = [(a.end + b.start) / 2 for a, b in zip(audio.words, audio.words[1:], strict=False)]
    cuts: list[float] = []
    previous = 0.0
    for k in range(1, count):
        target = previous + (length - previous) / (count - k + 1)

        def fits(at: float, prior: float = previous, left: int = count - k) -> bool:
            return (max_shot / 2 <= at - prior <= max_shot + 1e-6
                    and (length - at) <= left * max_shot + 1e-6)

        chosen = target
        for found, reach in ((ends, even / 3), (gaps, even)):
            near = [at for at in found if abs(at - target) <= reach and fits(at)]
            if near:
                chosen = min(near, key=lambda at: abs(at - target))
                break
        cuts.append(round(chosen, 3))
        previous = chosen
    return cuts


@attrs.frozen
class Shot:
    """One picture of a scene that shows several in turn."""

    visual: Visual
    """What is shown."""
    frames: int
    """Its length in frames (the last shot also lingers under the next transition)."""


def _shots(value: Iterable[Shot]) -> tuple[Shot, ...]:
    return tuple(value)


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
    transition: Transition = _CUT
    """How this scene takes over from the previous one (ignored for the first)."""
    transition_frames: int = 0
    """Frames of overlap with the previous scene's picture (0 for a cut or the first
    scene; never more than this scene's own frames)."""
    shots: tuple[Shot, ...] = attrs.field(default=(), converter=_shots)
    """The pictures shown in turn, when there are several (the first is `visual`); their
    frames add up to the scene's."""

    @property
    def visuals(self) -> tuple[Visual, ...]:
        """Every picture of the scene, in order of appearance."""
        return tuple(shot.visual for shot in self.shots) or (self.visual,)

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
    soundtrack: Soundtrack = attrs.field(factory=Soundtrack)
    """Music and loudness of the final mix."""
    fit: Fit = "cover"
    """How pictures of another shape fill the frame."""
    language: str | None = None
    """The narration's BCP 47 language, when known: where caption and card lines break."""

    @classmethod
    def build(
        cls,
        preset: Preset,
        parts: Sequence[tuple[Scene, AudioAsset | None, Visual | Sequence[
            tuple[Visual, float]]]],
        *,
        style: CaptionStyle | None = None,
        burn_captions: bool = True,
        silent_seconds: float = 3.0,
        transition: Transition | str = _CUT,
        soundtrack: Soundtrack | None = None,
        fit: Fit = "cover",
        language: str | None = None,
    ) -> Timeline:
        """Lay scenes end to end, each as long as its measured narration.

        Args:
            preset: Output format.
            parts: For each scene, in order: the scene, its narration (or ``None`` for a
                silent scene: as long as its clip, or ``silent_seconds``), and its picture,
                or its shots: each picture with the time it starts (the first at 0).
            style: Caption style; the default suits every preset.
            burn_captions: Draw captions into the picture.
            silent_seconds: Length of a silent scene that has no clip.
            transition: Between every two scenes (a `Transition` or a style name).
            soundtrack: Music and loudness of the final mix.
            fit: How pictures of another shape fill the frame.
            language: The narration's BCP 47 language, when known (it tells Traditional
                Chinese from Simplified where lines break).
        """
        style = style or CaptionStyle()
        if isinstance(transition, str):
            transition = Transition(transition)
        scenes: list[TimelineScene] = []
        frames_so_far = 0
        for position, (scene, audio, shown) in enumerate(parts):
            starts: Sequence[tuple[Visual, float]] = (
                list(shown) if isinstance(shown, Sequence) else [(shown, 0.0)])
            visual = starts[0][0]
            if audio is not None:
                seconds = audio.duration
            elif isinstance(visual, ClipAsset):
                seconds = visual.duration
            else:
                seconds = silent_seconds
            frames = max(1, math.ceil(round(seconds * preset.fps, 6)))
            start = frames_so_far / preset.fps
            cues: list[Cue] = []
            if audio is not None:
                segments: Sequence[Segment] = audio.segments or (
                    Segment(scene.narration, 0.0, audio.duration),)
                cues = make_cues(segments, start, style, words=audio.words,
                                 language=language)
            overlap = 0
            if position > 0 and not transition.is_cut:
                overlap = min(frames, max(1, round(transition.seconds * preset.fps)))
            shots: list[Shot] = []
            if len(starts) > 1:
                marks = [min(frames - 1, max(1, round(at * preset.fps)))
                         for _, at in starts[1:]]
                bounds = [0, *sorted(set(marks)), frames]
                shots = [Shot(item, end - begin) for (item, _), begin, end
                         in zip(starts, bounds, bounds[1:], strict=False) if end > begin]
            scenes.append(TimelineScene(scene.index, start, frames, preset.fps, visual, audio,
                                        cues, transition if overlap else _CUT, overlap,
                                        shots if len(shots) > 1 else ()))
            frames_so_far += frames
        return cls(preset, tuple(scenes), style, burn_captions,
                   soundtrack or Soundtrack(), fit, language)

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
    def cards(self) -> tuple[tuple[float, float, CardVisual], ...]:
        """``(start, end, card)`` of each procedural card that shows some text or an
        icon, as it is drawn: with captions burned in, without a phrase its scene's
        captions say (the viewer would read it twice)."""
        shown = []
        for scene in self.scenes:
            card = scene.visual
            if not isinstance(card, CardVisual):
                continue
            if self.burn_captions and _said(card.phrase, scene.cues):
                card = attrs.evolve(card, phrase="")
            if card.title.strip() or card.designed:
                shown.append((scene.start, scene.end, card))
        return tuple(shown)

    def caption_files(self, faces: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """The captions as sidecar files, by extension: ``srt``, ``vtt`` and ``ass`` (the
        captions alone, without card titles; written whether or not they are burned in).
        The SRT and WebVTT keep every character; the ASS draws them in the fonts of
        ``faces`` (see `ass_script`)."""
        return {"srt": to_srt(self.cues), "vtt": to_vtt(self.cues),
                "ass": self._ass(self.cues, (), faces)}

    def ass_script(self, faces: Mapping[str, str | None] | None = None,
                   part: str = "all") -> str:
        """The ASS subtitle script the composer burns in: captions and card titles.

        Args:
            faces: The font family of each character the caption font does not draw, or
                ``None`` for one no font has (left out): `avgen.media._fonts.faces`.
            part: What it draws (`avgen.media._captions.ASS_PARTS`): everything; all but
                the cards' text that `still_texts` puts on the frames; only that text.
        """
        return self._ass(self.cues if self.burn_captions else (), self.cards, faces, part)

    def still_texts(self) -> list[StillText]:
        """Where and when each card's headline, phrase and rule stand still
        (`avgen.media._captions.card_still_texts`), in the order the script of
        ``ass_script(part="still")`` draws them."""
        return card_still_texts(self.cards, width=self.preset.width,
                                height=self.preset.height, style=self.style,
                                margin=caption_margin(self.style, self.preset),
                                language=self.language)

    def _ass(self, cues: Sequence[Cue], cards: Sequence[tuple[float, float, CardVisual]],
             faces: Mapping[str, str | None] | None, part: str = "all") -> str:
        return to_ass(cues, width=self.preset.width, height=self.preset.height, style=self.style,
                      margin=caption_margin(self.style, self.preset),
                      side_margin=self.preset.caption_side_margin, cards=cards,
                      faces=faces or {}, language=self.language, part=part)

    def drawn_texts(self) -> list[str]:
        """The texts drawn over the pictures: the burned captions and the card titles."""
        texts = [cue.text for cue in self.cues] if self.burn_captions else []
        return texts + [text for _, _, card in self.cards for text in (card.title, card.phrase)
                        if text]

    @property
    def draws_on_picture(self) -> bool:
        """True when something is drawn over the pictures (captions or card titles)."""
        return bool(self.cards) or (self.burn_captions and bool(self.cues)) or any(
            isinstance(s.visual, CardVisual) for s in self.scenes)
