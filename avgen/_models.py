"""Value objects passed between avgen's agents: requests, scripts, assets, presets, videos.

Every class here is a frozen attrs class: change one with `attrs.evolve`. Validation
happens at construction, so a bad value raises `avgen.errors.UsageError` naming the field
before any work starts.
"""

from __future__ import annotations

__docformat__ = "google"

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, TypeVar

import attrs

from avgen._validate import (
    flag,
    instance_validator,
    number,
    number_validator,
    structure,
    text,
    text_validator,
)
from avgen.errors import UnsafePathError, UsageError

__all__ = [
    "PRESETS",
    "TRANSITION_STYLES",
    "AudioAsset",
    "CaptionStyle",
    "CardVisual",
    "Character",
    "ClipAsset",
    "ImageAsset",
    "Preset",
    "Scene",
    "Script",
    "Segment",
    "Soundtrack",
    "Transition",
    "Video",
    "VideoRequest",
    "VisualStyle",
    "preset",
]

MIN_SIDE = 64
"""Smallest width or height accepted, in pixels."""
MAX_SIDE = 4096
"""Largest width or height accepted, in pixels."""
MAX_MEDIA_SECONDS = 24 * 3600.0
"""Longest narration, clip or caption time accepted, in seconds (a day)."""
MIN_DURATION = 1.0
"""Shortest target duration accepted, in seconds."""
MAX_DURATION = 3600.0
"""Longest target duration accepted, in seconds."""
MAX_SCRIPT_CHARS = 200_000
"""Longest `VideoRequest.script`, in characters (about 30 000 words: three hours of
narration)."""
MAX_TOPIC_CHARS = 5_000
"""Longest `VideoRequest.topic`, in characters."""
MAX_TITLE_CHARS = 500
"""Longest `VideoRequest.title`, in characters."""
MAX_VOICE_CHARS = 4_096
"""Longest `VideoRequest.voice` (a voice's name or the path of its file), in characters."""
MAX_LANGUAGE_CHARS = 35
"""Longest `VideoRequest.language` (a BCP 47 tag), in characters."""
MAX_DESCRIPTION_CHARS = 2_000
"""Longest look of a request: `VisualStyle.text`, and each `Character.description`."""
MAX_CHARACTERS = 20
"""Most `VideoRequest.characters`."""
MAX_LANGUAGES = 12
"""Most `VideoRequest.languages` (versions of one video)."""
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")

Fit = Literal["cover", "blur"]
"""How a picture of another shape fills the frame: ``cover`` crops it, ``blur`` shows all of
it over a blurred, enlarged copy of itself."""

TRANSITION_STYLES: tuple[str, ...] = (
    "cut", "fade", "dissolve", "fadeblack", "wipeleft", "wiperight", "slideleft", "slideright",
    "slideup", "slidedown", "circleopen", "circleclose", "radial", "smoothleft", "zoomin",
)
"""Transitions between scenes: ``cut`` or one of ffmpeg's ``xfade`` styles."""

Tier = Literal["clip", "image", "card"]
"""Where a scene's picture came from: a generated clip, a still with Ken Burns motion, or a
procedural card rendered by the composer (the tier that cannot fail)."""


def _check_side(field: str, value: int) -> None:
    if number(field, value, integer=True, low=MIN_SIDE, high=MAX_SIDE) % 2:
        raise UsageError(field, f"must be an even int from {MIN_SIDE} to {MAX_SIDE}, "
                         f"not {value!r}")


_CODECS = {"libx264": "h264", "libx265": "hevc"}


@attrs.frozen
class Preset:
    """An output format: frame size, rate, encoder speed and caption layout.

    Use a name from `PRESETS` (``preset("tiktok")``) or build your own; sizes must be even
    (H.264 with yuv420p needs it) and from 64 to 4096 pixels.
    """

    name: str = attrs.field(validator=text_validator(field="preset.name"))
    """Short name shown in logs and the manifest."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    fps: int = 30
    """Frames per second, 1 to 120."""
    crf: int = 23
    """x264 constant rate factor, 0 (lossless) to 51 (worst)."""
    encoder_preset: str = "veryfast"
    """x264 speed preset (``ultrafast`` … ``veryslow``)."""
    caption_margin: float = 0.08
    """Distance of the caption block from the bottom edge, as a fraction of the height.
    Vertical presets keep captions above the platform's own buttons and text."""
    caption_top_margin: float = 0.06
    """Distance of captions placed at the top from the top edge, as a fraction of the
    height (vertical presets keep them below the platform's header)."""
    caption_side_margin: float = 0.06
    """Distance of captions from the left and right edges, as a fraction of the width;
    a line too long for the space between is wrapped, never drawn past it."""
    audio_bitrate: str = attrs.field(default="160k", validator=text_validator(
        pattern=re.compile(r"[1-9][0-9]{1,3}k"), allowed="kilobits such as '160k'",
        field="preset.audio_bitrate"))
    """AAC bitrate of the soundtrack (``"32k"`` to ``"9999k"``)."""
    video_codec: str = "libx264"
    """Video encoder: ``libx264`` (H.264, plays everywhere) or ``libx265`` (HEVC, smaller)."""

    def __attrs_post_init__(self) -> None:
        if not self.name.strip():
            raise UsageError("preset.name", "must not be empty")
        _check_side("preset.width", self.width)
        _check_side("preset.height", self.height)
        number("preset.fps", self.fps, integer=True, low=1, high=120)
        number("preset.crf", self.crf, integer=True, low=0, high=51)
        allowed = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                   "slower", "veryslow")
        if self.encoder_preset not in allowed:
            raise UsageError("preset.encoder_preset", f"must be one of {', '.join(allowed)}")
        if self.video_codec not in _CODECS:
            raise UsageError("preset.video_codec",
                             f"must be one of {', '.join(_CODECS)}, got {self.video_codec!r}")
        for field in ("caption_margin", "caption_top_margin", "caption_side_margin"):
            number(f"preset.{field}", getattr(self, field), low=0.0, high=0.5,
                   high_inclusive=False)

    @property
    def video_codec_name(self) -> str:
        """The codec as ffmpeg names it in a file (``h264``, ``hevc``)."""
        return _CODECS[self.video_codec]

    @property
    def vertical(self) -> bool:
        """True when the frame is taller than it is wide."""
        return self.height > self.width

    @property
    def aspect_ratio(self) -> str:
        """The aspect ratio in lowest terms, e.g. ``"9:16"``."""
        from math import gcd

        g = gcd(self.width, self.height)
        return f"{self.width // g}:{self.height // g}"

    def resized(self, width: int, height: int) -> Preset:
        """Return a copy with another frame size (same rate, encoder and caption layout)."""
        return attrs.evolve(self, name=f"{self.name}-{width}x{height}", width=width,
                            height=height)


def _vertical(name: str, **fields: Any) -> Preset:
    """A 9:16 preset whose captions keep clear of the platform's header, buttons and text.

    Encoded with x264's ``superfast``: a short is an upload that the platform encodes again,
    and at these lengths the file stays small anyway. Against ``veryfast`` it is faster for
    a larger file, and the picture measures the same (SSIM against a slow, high-quality
    encode: ``benchmarks/offline.py``)."""
    fields = {"width": 1080, "height": 1920, "encoder_preset": "superfast", **fields}
    return Preset(name, caption_margin=0.22, caption_top_margin=0.12, caption_side_margin=0.08,
                  **fields)


_Named = TypeVar("_Named")


class _NamedTable(Mapping[str, _Named]):
    """Values by name, read-only, in a fixed order (`PRESETS`, `CAPTION_STYLES`)."""

    def __init__(self, label: str, values: Mapping[str, _Named]) -> None:
        self._label = label
        self._values = dict(values)

    def __getitem__(self, name: str) -> _Named:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{self._label}({', '.join(self._values)})"


PRESETS: Mapping[str, Preset] = _NamedTable("PRESETS", {p.name: p for p in [
    _vertical("tiktok"),
    _vertical("reels"),
    _vertical("shorts"),
    Preset("youtube", 1920, 1080),
    Preset("square", 1080, 1080, caption_margin=0.1),
    _vertical("draft", width=360, height=640, fps=24, crf=28, encoder_preset="ultrafast",
              audio_bitrate="96k"),
]})
"""The built-in presets by name, read-only: ``tiktok``, ``reels`` and ``shorts``
(1080×1920, encoded ``superfast``: short uploads the platform encodes again), ``youtube``
(1920×1080) and ``square`` (1080×1080), encoded ``veryfast`` (smaller files for longer
videos), and ``draft`` (360×640, ``ultrafast``, for previews and tests)."""


@attrs.frozen
class Transition:
    """How one scene gives way to the next.

    A transition never changes the video's length or the timing of narration and captions:
    the outgoing picture lingers for ``seconds`` into the next scene's narration while the
    incoming one takes over.
    """

    style: str = "cut"
    """``cut`` or an ``xfade`` style (see `TRANSITION_STYLES`)."""
    seconds: float = 0.5
    """Length of the overlap (ignored for ``cut``), 0.04 to 3 seconds."""

    def __attrs_post_init__(self) -> None:
        if self.style not in TRANSITION_STYLES:
            raise UsageError("transition.style", f"unknown transition {self.style!r}; choose one "
                             f"of {', '.join(TRANSITION_STYLES)}")
        number("transition.seconds", self.seconds, low=0.04, high=3.0)

    @property
    def is_cut(self) -> bool:
        """True for a plain cut (no overlap)."""
        return self.style == "cut"


def _transition(value: str | Transition) -> Transition:
    return value if isinstance(value, Transition) else Transition(str(value))


def _optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value).expanduser()


@attrs.frozen
class Soundtrack:
    """The final mix: optional background music, ducked under the narration, and loudness.

    The music is measured (EBU R128 integrated loudness, over the stretch the video plays)
    and set `music_volume` dB below the narration, whatever the file's own level: a quiet
    recording and a loud master sit at the same place under the voice. While words are
    spoken it is ducked further (``duck``). Without narration the music is the soundtrack,
    brought to ``loudness`` like any mix.

    Raises:
        UsageError: A field out of its range (the error names it and the range), or a
            music file that does not exist.
    """

    music: Path | None = attrs.field(default=None, converter=_optional_path)
    """A music file, looped or trimmed to the video's length; ``None`` for narration only."""
    music_volume: float = 18.0
    """How many dB (LU) the music sits below the narration, 0 to 40, before ducking: the
    music's loudness is the narration's minus this. 18 keeps the music clearly under the
    voice — speech stays easy to follow, for listeners with weaker hearing too — while it
    is still heard between sentences; lower it (12) for a livelier bed, raise it (24) for a
    faint one."""
    duck: bool = True
    """Lower the music while the narration speaks (a sidechain compressor)."""
    fade_seconds: float = 2.0
    """Music fade-in and fade-out at the ends, in seconds (0 to 10)."""
    loudness: float = -14.0
    """Integrated loudness of the final mix in LUFS (EBU R128), -36 to -8; -14 suits social
    platforms."""

    def __attrs_post_init__(self) -> None:
        number("soundtrack.music_volume", self.music_volume, low=0, high=40,
               unit="dB the music sits below the narration, e.g. 18")
        flag("soundtrack.duck", self.duck)
        number("soundtrack.fade_seconds", self.fade_seconds, low=0, high=10)
        number("soundtrack.loudness", self.loudness, low=-36, high=-8)  # LUFS
        if self.music is not None and not self.music.is_file():
            raise UsageError("soundtrack.music", f"no such music file: {str(self.music)!r}")


def preset(name_or_preset: str | Preset) -> Preset:
    """Look up a preset by name, or pass a `Preset` through.

    Raises:
        UsageError: The name is not one of `PRESETS`.
    """
    if isinstance(name_or_preset, Preset):
        return name_or_preset
    key = str(name_or_preset).strip().lower()
    if key not in PRESETS:
        raise UsageError("preset", f"unknown preset {name_or_preset!r}; "
                         f"choose one of {', '.join(sorted(PRESETS))}")
    return PRESETS[key]


def _music_in(fields: dict[str, Any], root: Path | None) -> dict[str, Any]:
    music = fields.get("music")
    if music is not None and root is not None:
        fields["music"] = contained(root, music, "music")
    return fields


def _reference_in(item: object, root: Path, field: str) -> object:
    """A saved character with its picture's path checked to lie inside ``root``."""
    if isinstance(item, Mapping) and item.get("reference") is not None:
        return {**item, "reference": contained(root, item["reference"], field)}
    return item


def _to_preset(value: str | Preset) -> Preset:
    return preset(value)


def _scenes(value: Iterable[Scene]) -> tuple[Scene, ...]:
    return tuple(value)


def _texts(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _optional_texts(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None or isinstance(value, str):  # a lone string is refused by the check
        return value  # type: ignore[return-value]
    return tuple(value)


MIN_SHOT = 1.0
"""Shortest `VideoRequest.max_shot`, in seconds."""
MAX_SHOT = 60.0
"""Longest `VideoRequest.max_shot`, in seconds."""

MAX_SEARCH_TERMS = 8
"""Most search terms a scene carries."""
MAX_TERM_WORDS = 3
"""Most words in one search term."""
MAX_TERM_CHARS = 60
"""Longest search term, in characters."""


def search_terms(value: object, field: str = "search_terms") -> tuple[str, ...]:
    """A scene's search terms, checked: a list of one to `MAX_SEARCH_TERMS` strings, each
    of one to `MAX_TERM_WORDS` words (with at least one letter or digit) and at most
    `MAX_TERM_CHARS` characters; whitespace is folded and repeats (in any case) dropped.

    Example:
        >>> search_terms(["coral  reef", "Coral reef", "ocean"])
        ('coral reef', 'ocean')

    Raises:
        UsageError: Anything else; the error names ``field`` (and the term's position).
    """
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise UsageError(field, f"must be a list of short search terms, not "
                         f"{type(value).__name__} {value!r}")
    if not value:
        raise UsageError(field, "must list at least one search term (or be left out)")
    if len(value) > MAX_SEARCH_TERMS:
        raise UsageError(field, f"lists {len(value)} terms; at most {MAX_SEARCH_TERMS}")
    found: list[str] = []
    for position, term in enumerate(value):
        where = f"{field}[{position}]"
        if not isinstance(term, str):
            raise UsageError(where, f"must be a string, not {type(term).__name__}")
        words = term.split()
        if not words or not any(ch.isalnum() for ch in term):
            raise UsageError(where, f"{term!r} has no letter or digit: a search term is one "
                             f"to {MAX_TERM_WORDS} words such as 'coral reef'")
        if len(words) > MAX_TERM_WORDS or len(" ".join(words)) > MAX_TERM_CHARS:
            raise UsageError(where, f"{term!r} is too long: a search term is one to "
                             f"{MAX_TERM_WORDS} words (at most {MAX_TERM_CHARS} characters)"
                             ", most specific first, e.g. ['coral reef', 'tropical fish', "
                             "'ocean']")
        if "\x00" in term:
            raise UsageError(where, "must not contain a NUL character")
        folded = " ".join(words)
        if folded.casefold() not in {f.casefold() for f in found}:
            found.append(folded)
    return tuple(found)


def _segments(value: Iterable[Segment]) -> tuple[Segment, ...]:
    return tuple(value)


def _tiers(value: Iterable[Tier]) -> tuple[Tier, ...]:
    return tuple(value)


_COLOR = re.compile(r"#[0-9A-Fa-f]{6}")


CaptionPosition = Literal["bottom", "middle", "top"]
"""Where captions sit: above the bottom edge, in the middle, or below the top edge."""
CaptionAlign = Literal["center", "left"]
"""How caption lines line up: centred, or flush left (a lower third)."""
_POSITIONS = ("bottom", "middle", "top")
_ALIGNS = ("center", "left")


@attrs.frozen
class CaptionStyle:
    """How captions look, how their text is broken up, and how the spoken word shows.

    A style is a value: the named ones are in `CAPTION_STYLES` (``classic``, ``karaoke``,
    ``pop``, ``lower-third``, ``boxed``), and a new one is a `CaptionStyle` with other
    fields, e.g. ``CAPTION_STYLES["pop"].replace(color="#FFE600")``. Sizes are fractions of
    the frame's shorter side, so vertical and landscape videos get captions of similar
    visual weight; captions always stay inside the preset's safe area (its caption margins).

    Raises:
        UsageError: A field is out of range (the error's ``field`` names it).
    """

    font: str = "DejaVu Sans"
    """Font family name, as fontconfig knows it, or the path of a .ttf/.otf file."""
    font_size: float = 0.045
    """Text height as a fraction of the frame's shorter side, above 0 and below 0.3."""
    max_chars_per_line: int = 32
    """Longest line, in characters, from 8 to 80 (a longer single word stands alone)."""
    max_lines: int = 2
    """Most lines shown at once, from 1 to 3."""
    color: str = "#FFFFFF"
    """Text colour as ``#RRGGBB``."""
    outline_color: str = "#000000"
    """Outline colour as ``#RRGGBB``."""
    outline: float = 0.004
    """Outline width as a fraction of the shorter side, from 0 to below 0.3."""
    margin: float | None = None
    """Distance from the bottom (or, at the top, the top) edge as a fraction of the height,
    from 0 to below 0.5; ``None`` takes the preset's safe margin."""
    bold: bool = True
    """Use the bold face."""
    words_per_cue: int | None = None
    """Show this many words at a time (1 to 3), each group from the moment its first word
    is spoken; ``None`` shows phrases of up to ``max_lines`` lines."""
    highlight_color: str | None = None
    """Karaoke: each word turns this colour (``#RRGGBB``) as it is spoken while the line
    stays; ``None`` draws every word in ``color``."""
    position: CaptionPosition = "bottom"
    """Where captions sit: ``bottom``, ``middle`` or ``top``."""
    align: CaptionAlign = "center"
    """``center``, or ``left`` (flush with the safe area's left edge)."""
    box: bool = False
    """Draw the text on an opaque box (``box_color``) instead of with an outline."""
    box_color: str = "#000000"
    """Colour of the box as ``#RRGGBB``."""
    box_opacity: float = 0.6
    """Opacity of the box, from 0 (clear) to 1 (solid)."""
    uppercase: bool = False
    """Draw the captions in capitals (the ``.srt``/``.vtt`` keep the script's case)."""
    entrance: bool = False
    """Each caption grows in from 80 % of its size over its first 0.12 s."""

    def __attrs_post_init__(self) -> None:
        if (not isinstance(self.font, str) or not self.font.strip()
                or any(c in self.font for c in ",\r\n")):
            raise UsageError("caption_style.font", "must be a non-empty font name without commas")
        number("caption_style.font_size", self.font_size, low=0.0, high=0.3,
               low_inclusive=False, high_inclusive=False, unit="of the shorter side")
        number("caption_style.max_chars_per_line", self.max_chars_per_line, integer=True,
               low=8, high=80)
        number("caption_style.max_lines", self.max_lines, integer=True, low=1, high=3)
        for name in ("color", "outline_color", "box_color", "highlight_color"):
            value = getattr(self, name)
            if name == "highlight_color" and value is None:
                continue
            if not isinstance(value, str) or not _COLOR.fullmatch(value):
                raise UsageError(f"caption_style.{name}", f"must be #RRGGBB, got {value!r}")
        number("caption_style.outline", self.outline, low=0.0, high=0.3,
               high_inclusive=False, unit="of the shorter side")
        number("caption_style.margin", self.margin, low=0.0, high=0.5, high_inclusive=False,
               optional=True, unit="of the height")
        number("caption_style.words_per_cue", self.words_per_cue, integer=True, low=1, high=3,
               optional=True)
        if self.position not in _POSITIONS:
            raise UsageError("caption_style.position",
                             f"must be one of {', '.join(_POSITIONS)}, got {self.position!r}")
        if self.align not in _ALIGNS:
            raise UsageError("caption_style.align",
                             f"must be one of {', '.join(_ALIGNS)}, got {self.align!r}")
        number("caption_style.box_opacity", self.box_opacity, low=0.0, high=1.0)
        for name in ("bold", "box", "uppercase", "entrance"):
            flag(f"caption_style.{name}", getattr(self, name))

    def replace(self, **changes: Any) -> CaptionStyle:
        """A copy with some fields changed (checked like a new style).

        Raises:
            UsageError: A changed field is out of range, or no such field exists.
        """
        unknown = sorted(set(changes) - {f.name for f in attrs.fields(CaptionStyle)})
        if unknown:
            raise UsageError(f"caption_style.{unknown[0]}", "is not a caption style field")
        return attrs.evolve(self, **changes)


CAPTION_STYLES: Mapping[str, CaptionStyle] = _NamedTable("CAPTION_STYLES", {
    "classic": CaptionStyle(),
    "karaoke": CaptionStyle(highlight_color="#FFD84D"),
    "pop": CaptionStyle(words_per_cue=3, font_size=0.085, max_chars_per_line=14,
                        outline=0.008, position="middle", uppercase=True, entrance=True),
    "lower-third": CaptionStyle(font_size=0.038, max_chars_per_line=40, align="left",
                                box=True, box_opacity=0.7, bold=False),
    "boxed": CaptionStyle(box=True, box_opacity=0.65),
})
"""The named caption styles, read-only:

- ``classic``: one or two lines of white bold text with a thin outline, bottom centre;
- ``karaoke``: the same lines, each word turning yellow as it is spoken;
- ``pop``: one to three words at a time, large, in capitals, in the middle of the frame,
  each group growing in as its first word is spoken;
- ``lower-third``: smaller text flush left on a dark box, as a news strap;
- ``boxed``: ``classic`` on a dark box, readable over any picture.
"""


def caption_style(name_or_style: str | CaptionStyle) -> CaptionStyle:
    """Look up a caption style by name, or pass a `CaptionStyle` through.

    Raises:
        UsageError: The name is not one of `CAPTION_STYLES`.
    """
    if isinstance(name_or_style, CaptionStyle):
        return name_or_style
    key = str(name_or_style).strip().lower()
    if key not in CAPTION_STYLES:
        raise UsageError("caption_style", f"unknown caption style {name_or_style!r}; "
                         f"choose one of {', '.join(CAPTION_STYLES)}")
    return CAPTION_STYLES[key]


@attrs.frozen
class VisualStyle:
    """One look for every picture and clip of a video: written once (by the script writer,
    or given as `VideoRequest.style`) and put into every picture prompt in the same words.

    Example:
        >>> VisualStyle("watercolour illustration", palette="pastel blues").text
        'watercolour illustration; palette: pastel blues'

    Raises:
        UsageError: Every field is empty.
    """

    medium: str = attrs.field(default="", validator=text_validator())
    """What the pictures are: ``"35 mm documentary photograph"``, ``"flat vector
    illustration"`` … (a plain-text style given as a string lands here)."""
    palette: str = attrs.field(default="", validator=text_validator())
    """Colours: ``"muted teal and amber"``."""
    light: str = attrs.field(default="", validator=text_validator())
    """Light: ``"soft morning light"``."""
    camera: str = attrs.field(default="", validator=text_validator())
    """Camera language: ``"slow dolly moves, shallow depth of field"``."""

    def __attrs_post_init__(self) -> None:
        if not self.text:
            raise UsageError("style", "give at least one of medium, palette, light, camera")

    @property
    def text(self) -> str:
        """The style as one line of prompt text (empty fields left out)."""
        parts = [self.medium.strip()] if self.medium.strip() else []
        parts += [f"{label}: {value.strip()}" for label, value in (
            ("palette", self.palette), ("light", self.light), ("camera", self.camera))
            if value.strip()]
        return "; ".join(parts)


def visual_style(value: VisualStyle | str | Mapping[str, Any] | None) -> VisualStyle | None:
    """A `VisualStyle` from itself, a plain-text description (its `VisualStyle.medium`), a
    mapping of its fields, or ``None``.

    Raises:
        UsageError: An empty text, an unknown field, or no field given.
    """
    if value is None or isinstance(value, VisualStyle):
        return value
    if isinstance(value, str):
        if not value.strip():
            raise UsageError("style", "must not be empty or whitespace only")
        return VisualStyle(medium=value.strip())
    return structure(VisualStyle, value, "style")


_NAME = re.compile(r"[^\W_](?:[\w .'-]{0,58}[^\W_])?")


def _reference(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)


@attrs.frozen
class Character:
    """Someone who appears in the video, described once so that every picture and clip
    prompt uses the same words for them.

    Args:
        name: How the script names them (letters, digits, spaces, ``.'-``; up to 60).
        appearance: Face, age, build, hair: what makes them recognisable.
        wardrobe: What they wear throughout.
        reference: A picture of them. Given by you, it must exist; the google agents make
            one when it is missing and pass it to every later picture and clip of them.

    Raises:
        UsageError: A bad name, an empty appearance, or a reference that is not a file.
    """

    name: str = attrs.field(validator=text_validator(pattern=_NAME, allowed=(
        "a name of letters, digits, spaces and .'- (1 to 60 characters)")))
    """How the script names them."""
    appearance: str = attrs.field(validator=text_validator())
    """Face, age, build, hair."""
    wardrobe: str = attrs.field(default="", validator=text_validator())
    """What they wear."""
    reference: Path | None = attrs.field(default=None, converter=_reference)
    """A picture of them, or ``None``."""

    def __attrs_post_init__(self) -> None:
        if not self.appearance.strip():
            raise UsageError("appearance", f"describe how {self.name} looks")

    @property
    def description(self) -> str:
        """``Name: appearance, wearing wardrobe`` — the words every prompt uses."""
        wearing = f", wearing {self.wardrobe.strip()}" if self.wardrobe.strip() else ""
        return f"{self.name}: {self.appearance.strip()}{wearing}"

    def mentioned_in(self, text: str) -> bool:
        """Whether ``text`` names this character (whole words, any case)."""
        return re.search(rf"(?<!\w){re.escape(self.name)}(?!\w)", text, re.IGNORECASE) \
            is not None


def _characters(value: Iterable[Character | Mapping[str, Any]] | None,
                ) -> tuple[Character, ...]:
    if value is None:
        return ()
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise UsageError("characters", f"must be a list of Character, not {value!r}")
    cast: list[Character] = []
    for index, item in enumerate(value):
        if not isinstance(item, Character):
            item = structure(Character, item, f"characters[{index}]")
        if any(other.name.casefold() == item.name.casefold() for other in cast):
            raise UsageError(f"characters[{index}].name", f"{item.name!r} is given twice")
        cast.append(item)
    return tuple(cast)


def _languages(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"en,es"`` or ``["en", "es"]`` as a tuple of checked BCP 47 tags, each once."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    tags: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise UsageError("languages", f"must be BCP 47 tags such as 'en', not "
                             f"{type(item).__name__} {item!r}")
        tag = item.strip()
        if len(tag) > MAX_LANGUAGE_CHARS or not _LANGUAGE_TAG.fullmatch(tag):
            raise UsageError("languages", f"must be BCP 47 tags such as 'en' or 'pt-BR', "
                             f"got {item!r}")
        if tag.casefold() in (known.casefold() for known in tags):
            raise UsageError("languages", f"{tag!r} is given twice")
        tags.append(tag)
    if len(tags) > MAX_LANGUAGES:
        raise UsageError("languages", f"has {len(tags)} languages; the limit is "
                         f"{MAX_LANGUAGES}")
    return tuple(tags)


def _by_language(field: str, max_chars: int, value: Mapping[str, str] | None
                 ) -> dict[str, str]:
    """A mapping from language tags to texts, as a checked copy."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(field, "must be a mapping of language tags to texts, such as "
                         f"{{'es': '...'}}, not {type(value).__name__}")
    found: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _LANGUAGE_TAG.fullmatch(key.strip()):
            raise UsageError(field, f"keys must be BCP 47 tags such as 'es', got {key!r}")
        text(f"{field}[{key!r}]", item, max_chars=max_chars)
        if not item.strip():
            raise UsageError(f"{field}[{key!r}]", "must not be empty")
        found[key.strip()] = item
    return found


def _translations(value: Mapping[str, str] | None) -> dict[str, str]:
    """`VideoRequest.translations`, checked."""
    return _by_language("translations", MAX_SCRIPT_CHARS, value)


def _voices(value: Mapping[str, str] | None) -> dict[str, str]:
    """`VideoRequest.voices`, checked."""
    return _by_language("voices", MAX_VOICE_CHARS, value)


def _characters_exist(_instance: Any, _attribute: Any, value: tuple[Character, ...]) -> None:
    for index, character in enumerate(value):
        if character.reference is not None and not character.reference.is_file():
            raise UsageError(f"characters[{index}].reference",
                             f"{character.reference} is not a file (give a picture of "
                             f"{character.name}, or leave it out)")


@attrs.frozen
class VideoRequest:
    """What to make: a topic, a script, or both, and the output format.

    Give ``script`` to have your own words narrated; give only ``topic`` to let a script
    writer (an LLM agent, such as the google agents') write them. The embedded local writer
    writes none: it refuses a request without a script.

    A request's size is bounded, checked here, before any work or paid call: ``script`` up
    to 200 000 characters (about three hours of narration), ``topic`` up to 5 000,
    ``title`` up to 500, ``voice`` up to 4 096, ``language`` up to 35, ``style`` and each
    character's description up to 2 000, and at most 20 ``characters``.

    Raises:
        UsageError: Both texts are empty, a field is out of range, or a text is longer than
            its limit (the error names the field and the limit).
    """

    topic: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, max_chars=MAX_TOPIC_CHARS))
    """What the video is about; also its title when the script has no heading."""
    script: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, max_chars=MAX_SCRIPT_CHARS))
    """The narration as text or Markdown: paragraphs become scenes."""
    preset: Preset = attrs.field(default=PRESETS["draft"], converter=_to_preset)
    """Output format, a `Preset` or the name of one in `PRESETS`."""
    duration: float | None = None
    """Target length in seconds for script writers that plan the length (LLM agents);
    the video always lasts as long as its measured narration."""
    voice: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, max_chars=MAX_VOICE_CHARS))
    """Voice for the narrator; ``None`` uses the narrator's default."""
    captions: bool = True
    """Burn captions into the picture (the ``.srt``/``.vtt`` sidecars are always written)."""
    language: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, max_chars=MAX_LANGUAGE_CHARS))
    """BCP 47 language of the narration (e.g. ``"en"``, ``"he"``); ``None`` takes the
    language the script (or topic) is written in, or English when the text cannot tell
    (the manifest records the language used)."""
    title: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, max_chars=MAX_TITLE_CHARS))
    """Title of the video; defaults to the script's first heading or the topic."""
    transition: Transition = attrs.field(default=Transition(), converter=_transition)
    """Between scenes: a `Transition` or a style name (``"fade"``, ``"slideleft"`` …)."""
    soundtrack: Soundtrack = attrs.field(factory=Soundtrack,
                                         validator=instance_validator(Soundtrack))
    """Background music and loudness of the final mix."""
    fit: Fit = "cover"
    """How pictures of another shape fill the frame: ``cover`` or ``blur``."""
    caption_style: CaptionStyle = attrs.field(factory=CaptionStyle, converter=caption_style,
                                              validator=instance_validator(CaptionStyle))
    """How captions look: a `CaptionStyle` or a name in `CAPTION_STYLES` (kept in the
    manifest, so a resume draws them the same)."""
    style: VisualStyle | None = attrs.field(default=None, converter=visual_style)
    """One look for every picture: a `VisualStyle` or a plain-text description; ``None``
    lets the script writer choose (the google writer does; the local one does not)."""
    characters: tuple[Character, ...] = attrs.field(
        default=(), converter=_characters, validator=_characters_exist)
    """Who appears: described once, used in every prompt of a scene they are in (a scene's
    cast is who the script writer lists, else who its narration or visual names)."""
    languages: tuple[str, ...] = attrs.field(default=(), converter=_languages)
    """One video per language, the first being the original (``("en", "es", "de")``, or
    ``"en,es,de"``); empty: one video in `language`. The script is written (or read) once,
    in the first language, and translated scene by scene into the others (by the script
    writer's ``translate``, or from `translations`); every scene's picture is made once and
    shared by every version, while narration, captions, card text and voice are each
    version's own. Each version is ``final_output/<title>.<language>.mp4``."""
    translations: Mapping[str, str] = attrs.field(
        factory=dict, converter=_translations, hash=False)
    """Your own translated scripts by language (``{"es": "..."}``), for languages of
    `languages` after the first: their paragraphs (and headings) must line up with the
    original script's scenes, one for one. A language without one is translated by the
    script writer (the google writer does; the local one cannot)."""
    voices: Mapping[str, str] = attrs.field(
        factory=dict, converter=_voices, hash=False)
    """A voice for each language of `languages` (``{"es": "Puck"}``); a language without
    one is spoken in `voice` if it is the original, else in the narrator's default."""
    max_shot: float | None = None
    """The longest shot in seconds, `MIN_SHOT` to `MAX_SHOT`: a scene longer than it shows
    several clips or photos in turn when its pictures are found (stock footage), cut where
    a sentence (else a word) ends. ``None``: 5 s for vertical presets, 7 s for others (see
    `shot_seconds`)."""

    def __new__(cls, *args: Any, **fields: Any) -> Self:
        """Refuse an unknown field by name, listing the fields there are."""
        known = [field.alias for field in attrs.fields(cls) if field.init]
        for name in fields:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"VideoRequest has no field {name!r}{hint}; its fields are "
                                f"{', '.join(known)}")
        return super().__new__(cls)

    def __attrs_post_init__(self) -> None:
        topic = (self.topic or "").strip()
        script = (self.script or "").strip()
        if not topic and not script:
            raise UsageError(
                "script", "give a script or a topic: both are empty or whitespace only"
            )
        number("duration", self.duration, low=MIN_DURATION, high=MAX_DURATION, optional=True)
        number("max_shot", self.max_shot, low=MIN_SHOT, high=MAX_SHOT, optional=True)
        flag("captions", self.captions)
        if self.fit not in ("cover", "blur"):
            raise UsageError("fit", f"must be 'cover' or 'blur', got {self.fit!r}")
        if self.language is not None and not self.language.replace("-", "").isalnum():
            raise UsageError("language",
                             f"must be a BCP 47 tag such as 'en', got {self.language!r}")
        if self.style is not None and len(self.style.text) > MAX_DESCRIPTION_CHARS:
            raise UsageError("style", f"has {len(self.style.text):,} characters; the limit is "
                             f"{MAX_DESCRIPTION_CHARS:,}")
        self._check_languages()
        if len(self.characters) > MAX_CHARACTERS:
            raise UsageError("characters", f"has {len(self.characters)} characters; the limit "
                             f"is {MAX_CHARACTERS}")
        for index, character in enumerate(self.characters):
            if len(character.description) > MAX_DESCRIPTION_CHARS:
                raise UsageError(f"characters[{index}]", f"{character.name} is described in "
                                 f"{len(character.description):,} characters; the limit is "
                                 f"{MAX_DESCRIPTION_CHARS:,}")

    def _check_languages(self) -> None:
        """`languages`, `translations` and `voices` agree with each other and `language`."""
        folded = [tag.casefold() for tag in self.languages]
        if self.languages and self.language is not None and \
                self.language.replace("_", "-").casefold() != folded[0].replace("_", "-"):
            raise UsageError("language", f"is {self.language!r} but languages starts with "
                             f"{self.languages[0]!r}: the first of languages is the "
                             "original's; leave language out or make them the same")
        for field, given, allowed in (("translations", self.translations, folded[1:]),
                                      ("voices", self.voices, folded)):
            for key in given:
                if key.casefold() not in allowed:
                    what = ("the languages after the first (the original is `script`)"
                            if field == "translations" else "the languages")
                    listed = self.languages[1:] if field == "translations" else self.languages
                    raise UsageError(f"{field}[{key!r}]", f"is for a language not in "
                                     f"{what}: {', '.join(listed) or 'none'}")

    @property
    def shot_seconds(self) -> float:
        """The longest shot: `max_shot`, else 5 s for a vertical preset and 7 s for others.

        Example:
            >>> VideoRequest(script="Hi.", preset="shorts").shot_seconds
            5.0
            >>> VideoRequest(script="Hi.", preset="youtube", max_shot=3).shot_seconds
            3.0
        """
        if self.max_shot is not None:
            return float(self.max_shot)
        return 5.0 if self.preset.height > self.preset.width else 7.0

    def to_dict(self, *, root: Path | None = None) -> dict[str, Any]:
        """A JSON-ready form (the preset is stored in full); paths inside ``root`` are kept
        relative to it."""
        return _json_ready(self, root)

    @classmethod
    def from_dict(cls, data: object, *, root: Path | None = None) -> VideoRequest:
        """Rebuild a request saved with `to_dict` (untrusted: every field is checked).

        Args:
            data: The saved form.
            root: Where a relative music or character picture path lies (the session);
                it must stay inside.

        Raises:
            UsageError: An unknown or missing field, or a bad value; the error names it.
        """
        nested: dict[str, type[Any]] = {"preset": Preset, "transition": Transition,
                                        "soundtrack": Soundtrack,
                                        "caption_style": CaptionStyle}

        def convert(fields: dict[str, Any]) -> dict[str, Any]:
            for name, kind in nested.items():
                if name in fields:
                    fields[name] = structure(kind, fields[name], name, (
                        (lambda sound: _music_in(sound, root)) if name == "soundtrack"
                        else None))
            if root is not None and isinstance(fields.get("characters"), list | tuple):
                fields["characters"] = [  # their pictures were copied into the session
                    _reference_in(item, root, f"characters[{index}].reference")
                    for index, item in enumerate(fields["characters"])]
            return fields

        return structure(cls, data, "request", convert)


@attrs.frozen
class Scene:
    """One scene: what is said, and what is shown while it is said."""

    index: int = attrs.field(validator=number_validator(integer=True, low=0))
    """Position in the script, from 0."""
    narration: str = attrs.field(validator=text_validator())
    """Plain text read aloud; no markdown, no stage directions."""
    visual: str = attrs.field(default="", validator=text_validator())
    """A description of the picture, used as the prompt of image and clip generators."""
    title: str = attrs.field(default="", validator=text_validator())
    """Short text shown on a procedural card when no picture is generated."""
    duration_hint: float | None = attrs.field(default=None, validator=number_validator(
        low=0, optional=True))
    """Planned length in seconds; the measured narration decides the real length."""
    style: VisualStyle | None = attrs.field(default=None, converter=visual_style)
    """The video's look (the same for every scene of a run)."""
    characters: tuple[Character, ...] = attrs.field(default=(), converter=_characters)
    """Who appears in this scene, as the whole video describes them."""
    search_terms: tuple[str, ...] | None = attrs.field(default=None,
                                                       converter=_optional_texts)
    """Short queries for a media search (stock footage, a media library), most specific
    first and a broader one last: one to three words each, at most eight
    (`MAX_SEARCH_TERMS`). ``None``: not given (a stock agent extracts them from the
    scene's title and narration)."""

    def __attrs_post_init__(self) -> None:
        if not self.narration.strip():
            raise UsageError(f"scenes[{self.index}].narration", "must not be empty")
        if self.search_terms is not None:
            object.__setattr__(self, "search_terms", search_terms(
                self.search_terms, f"scenes[{self.index}].search_terms"))

    @property
    def prompt(self) -> str:
        """The picture prompt: the scene's `visual` (else its narration), then each
        character present as `Character.description`, then the video's style — the same
        words for the same person and look in every scene.

        Example:
            >>> ada = Character("Ada", "a woman of sixty with short grey hair")
            >>> print(Scene(0, "Ada opens the shop.", "Ada unlocks a bakery door",
            ...             style="watercolour", characters=[ada]).prompt)
            Ada unlocks a bakery door
            Characters: Ada: a woman of sixty with short grey hair.
            Style: watercolour.
        """
        lines = [(self.visual or self.narration).strip()]
        if self.characters:
            lines.append("Characters: " + " ".join(
                character.description.rstrip(".") + "." for character in self.characters))
        if self.style is not None:
            lines.append(f"Style: {self.style.text.rstrip('.')}.")
        return "\n".join(lines)


@attrs.frozen
class Script:
    """The narration split into scenes, as a script writer returns it."""

    title: str = attrs.field(validator=text_validator())
    """The video's title."""
    scenes: tuple[Scene, ...] = attrs.field(converter=_scenes)
    """The scenes in order; at least one."""
    notes: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    """Messages for the user from the script writer (shown by the CLI, kept in the manifest)."""
    style: VisualStyle | None = attrs.field(default=None, converter=visual_style)
    """The look of every picture, when the writer (or the request) chose one."""
    cast: tuple[Character, ...] = attrs.field(default=(), converter=_characters)
    """Everyone who appears, described once."""

    def __attrs_post_init__(self) -> None:
        if not self.scenes:
            raise UsageError("script.scenes", "a script needs at least one scene")
        for position, scene in enumerate(self.scenes):
            if scene.index != position:
                raise UsageError("script.scenes", f"scene at position {position} has "
                                 f"index {scene.index}; indexes must run 0, 1, 2, …")

    @property
    def narration(self) -> str:
        """All narration, scene by scene, separated by blank lines."""
        return "\n\n".join(scene.narration for scene in self.scenes)

    def cast_as(self, style: VisualStyle | None = None,
                characters: Sequence[Character] = ()) -> Script:
        """This script with one look in every scene.

        ``style`` replaces the script's own; each of ``characters`` replaces the script's
        character of the same name (any case) or joins the cast. Every scene then carries
        the style and the cast members it lists (as the cast now describes them), or, when
        it lists none, those its narration or visual names.
        """
        cast = {character.name.casefold(): character for character in self.cast}
        cast.update((character.name.casefold(), character) for character in characters)
        chosen = style or self.style
        scenes = []
        for scene in self.scenes:
            listed = [cast[c.name.casefold()] for c in scene.characters
                      if c.name.casefold() in cast]
            if not listed:
                said = f"{scene.narration}\n{scene.visual}"
                listed = [c for c in cast.values() if c.mentioned_in(said)]
            scenes.append(attrs.evolve(scene, style=chosen, characters=tuple(listed)))
        return attrs.evolve(self, scenes=tuple(scenes), style=chosen,
                            cast=tuple(cast.values()))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return _json_ready(self, None)

    @classmethod
    def from_dict(cls, data: object) -> Script:
        """Rebuild a script saved with `to_dict` (untrusted: every field is checked).

        Raises:
            UsageError: An unknown or missing field, or a bad value; the error names it.
        """
        def convert(fields: dict[str, Any]) -> dict[str, Any]:
            fields["scenes"] = _structured_list(Scene, fields["scenes"], "scenes")
            if "notes" in fields:
                notes = fields["notes"]
                if not isinstance(notes, list | tuple):
                    raise UsageError("notes", "must be a list of strings")
                fields["notes"] = tuple(text("notes", note) for note in notes)
            return fields

        return structure(cls, data, "script", convert)


@attrs.frozen
class Segment:
    """A stretch of narration with its measured time inside the audio file."""

    text: str = attrs.field(validator=text_validator())
    """The words spoken."""
    start: float = attrs.field(validator=number_validator(low=0, high=MAX_MEDIA_SECONDS))
    """Start, in seconds from the start of the audio file."""
    end: float = attrs.field(validator=number_validator(low=0, high=MAX_MEDIA_SECONDS))
    """End, in seconds from the start of the audio file."""


def _path(value: str | Path) -> Path:
    return Path(value)


@attrs.frozen
class AudioAsset:
    """A narration file with its measured length."""

    path: Path = attrs.field(converter=_path)
    """The WAV (or any ffmpeg-readable audio) file."""
    duration: float = attrs.field(validator=number_validator(low=0, high=MAX_MEDIA_SECONDS))
    """Measured length in seconds."""
    segments: tuple[Segment, ...] = attrs.field(default=(), converter=_segments)
    """Sentence timings, when the narrator knows them; captions follow them."""
    words: tuple[Segment, ...] = attrs.field(default=(), converter=_segments)
    """Word timings, when the narrator reports them; caption blocks then start and end on
    the words they show."""
    words_estimated: bool = attrs.field(default=False,
                                        validator=lambda _i, a, v: flag(a.name, v))
    """True when `words` were not measured but spread over the sentences by length."""
    kind: Literal["audio"] = attrs.field(default="audio", validator=attrs.validators.in_(
        ("audio",)))

    def with_words(self) -> AudioAsset:
        """This narration with word timings: its own, or — for a narrator that reports
        none — each sentence's words spread over the sentence by their length (letters and
        digits), marked `words_estimated`."""
        if self.words:
            return self
        spans = self.segments or ()
        words: list[Segment] = []
        for span in spans:
            words.extend(spread_words(span.text.split(), span.start, span.end))
        if not words:
            return self
        return attrs.evolve(self, words=tuple(words), words_estimated=True)


def spread_words(words: Sequence[str], start: float, end: float) -> list[Segment]:
    """``words`` spread over ``start``–``end`` in proportion to their length (letters and
    digits, at least one each): word timings estimated from a sentence's."""
    if not words:
        return []
    weights = [max(1, sum(ch.isalnum() for ch in word)) for word in words]
    total = sum(weights)
    segments, at = [], start
    for word, weight in zip(words, weights, strict=True):
        until = min(end, at + (end - start) * weight / total)
        segments.append(Segment(word, at, until))
        at = until
    return segments


@attrs.frozen
class Source:
    """Where a picture or clip came from: shown in the manifest, and in the video's
    ``credits.txt`` when it names an author or a licence.

    Agents that find media (a media library, stock footage) fill it in; generated media
    may leave it out.
    """

    provider: str = attrs.field(validator=text_validator())
    """Who supplied it: ``"library"``, ``"pexels"``, ``"pixabay"``, a model's name …"""
    title: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """What it shows, or its file name."""
    author: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """Who made it (a photographer, a videographer)."""
    author_url: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """The author's page."""
    page_url: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """The asset's own page."""
    license: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """Its licence, e.g. ``"Pexels License"``."""
    score: float | None = attrs.field(default=None, validator=number_validator(optional=True))
    """How well it matched the scene (0 to 1), when it was chosen by matching."""
    runner_up: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """The next best candidate, when it was chosen by matching."""
    runner_up_score: float | None = attrs.field(default=None,
                                                validator=number_validator(optional=True))
    """The next best candidate's score."""
    query: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """The search term that found it, for media found by a search (stock footage)."""
    method: str | None = attrs.field(default=None, validator=text_validator(optional=True))
    """How it was made, for generated media: ``"text-to-video"``, ``"reference images:
    Ada"``, ``"image-to-video from the scene's still"`` …"""
    notes: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    """What happened on the way (a refused prompt and how it was rewritten …)."""

    @property
    def credit(self) -> str | None:
        """A line for ``credits.txt`` (``"Title" by Author (Provider, Licence) <page>``), or
        ``None`` when there is no author or licence to credit."""
        if self.author is None and self.license is None:
            return None
        parts = [f'"{self.title}"' if self.title else "Untitled"]
        if self.author:
            parts.append(f"by {self.author}")
        parts.append(f"({', '.join(p for p in (self.provider, self.license) if p)})")
        if self.page_url:
            parts.append(f"<{self.page_url}>")
        return " ".join(parts)


def _source(value: Source | Mapping[str, Any] | None) -> Source | None:
    if value is None or isinstance(value, Source):
        return value
    return structure(Source, value, "source")


@attrs.frozen
class ImageAsset:
    """A still picture; the composer gives it Ken Burns motion."""

    path: Path = attrs.field(converter=_path)
    """The image file (PNG, JPEG or anything ffmpeg reads)."""
    width: int = attrs.field(validator=number_validator(integer=True, low=0, high=65536))
    """Width in pixels."""
    height: int = attrs.field(validator=number_validator(integer=True, low=0, high=65536))
    """Height in pixels."""
    kind: Literal["image"] = attrs.field(default="image", validator=attrs.validators.in_(
        ("image",)))
    source: Source | None = attrs.field(default=None, converter=_source)
    """Where it came from (author, licence, how well it matched), when known."""


@attrs.frozen
class ClipAsset:
    """A video clip; the composer fits it to the frame and to the narration's length."""

    path: Path = attrs.field(converter=_path)
    """The video file."""
    duration: float = attrs.field(validator=number_validator(low=0, high=MAX_MEDIA_SECONDS))
    """Length in seconds."""
    width: int = attrs.field(validator=number_validator(integer=True, low=0, high=65536))
    """Width in pixels."""
    height: int = attrs.field(validator=number_validator(integer=True, low=0, high=65536))
    """Height in pixels."""
    fps: float = attrs.field(default=30.0, validator=number_validator(low=0, high=1000,
                                                                      low_inclusive=False))
    """Frames per second."""
    has_audio: bool = attrs.field(default=False, validator=lambda _i, a, v: flag(a.name, v))
    """Whether the clip has its own sound track (ignored: narration is the soundtrack)."""
    kind: Literal["clip"] = attrs.field(default="clip", validator=attrs.validators.in_(
        ("clip",)))
    source: Source | None = attrs.field(default=None, converter=_source)
    """Where it came from (author, licence, how well it matched), when known."""


_HEX_COLOR = re.compile(r"0x[0-9A-Fa-f]{6}")


def _color_pair(value: Iterable[str]) -> tuple[str, str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise UsageError("colors", f"must be two 0xRRGGBB colours, not {value!r}")
    pair = tuple(value)
    if len(pair) != 2:
        raise UsageError("colors", f"must be two 0xRRGGBB colours, not {len(pair)}")
    for color in pair:
        text("colors", color, pattern=_HEX_COLOR, allowed="0xRRGGBB")
    return pair[0], pair[1]


_ICON_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@attrs.frozen
class CardVisual:
    """A procedural card the composer renders itself: a drifting gradient in the video's
    theme, and the scene's title, a key phrase and an icon set on a grid.

    A card with neither ``phrase`` nor ``icon`` is the plain kind: the title alone, large
    in the middle of the frame.
    """

    title: str = attrs.field(validator=text_validator())
    """The headline (may be empty)."""
    colors: tuple[str, str] = attrs.field(default=("0x1e3a8a", "0x7c3aed"),
                                          converter=_color_pair)
    """Two gradient colours as ``0xRRGGBB``."""
    kind: Literal["card"] = attrs.field(default="card", validator=attrs.validators.in_(
        ("card",)))
    phrase: str = attrs.field(default="", validator=text_validator())
    """A key phrase of the narration, set below the headline."""
    icon: str | None = attrs.field(default=None, validator=text_validator(
        optional=True, pattern=_ICON_NAME, allowed="an icon name such as 'cloud-rain'"))
    """The name of a bundled icon (Lucide) drawn above the text, or None."""
    accent: str = attrs.field(default="0x38bdf8", validator=text_validator(
        pattern=_HEX_COLOR, allowed="0xRRGGBB"))
    """The colour of the icon and of the rule above the headline, ``0xRRGGBB``."""

    @property
    def designed(self) -> bool:
        """True for a card with a phrase or an icon (laid out on a grid)."""
        return bool(self.phrase.strip()) or self.icon is not None


Visual = ClipAsset | ImageAsset | CardVisual
"""What a scene shows."""


def asset_to_dict(asset: AudioAsset | Visual, root: Path | None = None) -> dict[str, Any]:
    """A JSON-ready form of an asset; paths are made relative to ``root`` when given."""
    return _json_ready(asset, root)


def _json_ready(value: Any, root: Path | None) -> dict[str, Any]:
    """``attrs.asdict`` with paths as strings, relative to ``root`` when inside it."""
    def serialise(_inst: Any, _field: Any, item: Any) -> Any:
        if isinstance(item, Path):
            if root is not None and item.is_relative_to(root):
                return item.relative_to(root).as_posix()
            return str(item)
        return item

    return attrs.asdict(value, value_serializer=serialise)


_ASSETS: dict[str, type[AudioAsset | ClipAsset | ImageAsset | CardVisual]] = {
    "audio": AudioAsset, "image": ImageAsset, "clip": ClipAsset, "card": CardVisual}


def contained(root: Path, relative: object, field: str = "path") -> Path:
    """``root / relative``, refusing a path that is absolute or leads outside ``root``
    (``..`` or a symlink).

    Raises:
        UnsafePathError: The path escapes ``root``.
        UsageError: ``relative`` is not a string.
    """
    name = text(field, relative)
    assert name is not None
    candidate = Path(name)
    if candidate.is_absolute() or not name:
        raise UnsafePathError(field, f"{name!r} must be a path inside {root}")
    base = root.resolve()
    resolved = (base / candidate).resolve()
    if not resolved.is_relative_to(base):
        raise UnsafePathError(field, f"{name!r} leads outside {root}")
    return resolved


def asset_from_dict(data: object, root: Path | None = None) -> AudioAsset | Visual:
    """Rebuild an asset saved with `asset_to_dict` (untrusted: every field is checked).

    With ``root``, the asset's path must lie inside it.

    Raises:
        UsageError: An unknown kind or field, a bad value, or a path outside ``root``.
    """
    if not isinstance(data, Mapping):
        raise UsageError("asset", f"must be an object, not {type(data).__name__}")
    kind = data.get("kind")
    cls = _ASSETS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise UsageError("asset.kind", f"must be one of {', '.join(_ASSETS)}, not {kind!r}")

    def convert(fields: dict[str, Any]) -> dict[str, Any]:
        if "path" in fields:
            fields["path"] = (contained(root, fields["path"]) if root is not None
                              else Path(str(text("path", fields["path"]))))
        for name in ("segments", "words"):
            if name in fields:
                fields[name] = _structured_list(Segment, fields[name], name)
        return fields

    return structure(cls, data, "asset", convert)


def _structured_list(cls: type[Any], value: object, where: str) -> tuple[Any, ...]:
    if not isinstance(value, list | tuple):
        raise UsageError(where, f"must be a list, not {type(value).__name__}")
    return tuple(structure(cls, item, f"{where}[{i}]") for i, item in enumerate(value))


_PLAYER_BOX = (640, 480)
"""The largest inline player, in CSS pixels (width, height): a vertical video is shown 270
pixels wide, not 1080."""


def _player_size(width: int, height: int) -> tuple[int, int]:
    """The size of the inline player: the frame scaled down (never up) into `_PLAYER_BOX`."""
    scale = min(1.0, _PLAYER_BOX[0] / max(width, 1), _PLAYER_BOX[1] / max(height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _player_source(path: Path, limit: int) -> tuple[str | None, str]:
    """Where a notebook front-end can load ``path`` from: a ``data:`` URI when the file is at
    most ``limit`` bytes, else a URL relative to the working directory when the
    file lies under it, else ``None``; and a sentence saying why, for the page."""
    import base64
    from urllib.parse import quote

    try:
        size = path.stat().st_size
    except OSError:
        return None, "The video file does not exist (any more), so it cannot be shown."
    if size <= limit:
        return f"data:video/mp4;base64,{base64.b64encode(path.read_bytes()).decode('ascii')}", ""
    megabytes = f"{size / 2**20:.3g} MiB, over the {limit / 2**20:.3g} MiB limit"
    try:
        relative = path.resolve().relative_to(Path.cwd().resolve())
    except (OSError, ValueError):
        return None, (f"The video is too large to embed ({megabytes}) and lies outside the "
                      "working directory, where the notebook cannot serve it from, so it is "
                      "not shown here. Open the file above in a player, or copy it under "
                      "the notebook's folder.")
    return quote(relative.as_posix()), (f"Played from a path relative to the working "
                                        f"directory ({megabytes}).")


@attrs.frozen
class Video:
    """A finished video and everything that describes it.

    In Jupyter, a `Video` as the last expression of a cell displays as a player: the MP4 is
    embedded in the page when it is at most `embed_limit` bytes (20 MiB), else played
    from its path relative to the working directory, else (a large file elsewhere) named.
    """

    embed_limit: ClassVar[int] = 20 * 1024 * 1024
    """Largest MP4, in bytes (20 MiB), that a `Video` displayed in a notebook embeds in the
    page.

    Embedded, the video plays wherever the notebook goes (saved, exported, on another
    machine), but as base64 text a third larger, which the saved notebook keeps and the
    browser holds in memory. A larger file is played from a path relative to the working
    directory (where notebook front-ends serve files from), and one outside it is only
    named. Change it with ``avgen.Video.embed_limit = ...``."""

    path: Path = attrs.field(converter=_path)
    """The MP4 file in the session's ``final_output/``."""
    duration: float
    """Length in seconds."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    session: Path = attrs.field(converter=_path)
    """The session folder that holds the assets, manifest and logs."""
    captions: Mapping[str, Path] = attrs.field(factory=dict)
    """Caption sidecars by format (``"srt"``, ``"vtt"``, ``"ass"``)."""
    tiers: tuple[Tier, ...] = attrs.field(default=(), converter=_tiers)
    """Where each scene's picture came from, in scene order."""
    notes: tuple[str, ...] = attrs.field(default=(), converter=_texts)
    """What the run had to tell, in order (its ``note`` events): characters no font here
    draws and a font package that has them, a loudness not reached …"""
    language: str | None = None
    """The language of its narration and captions."""
    versions: Mapping[str, Video] = attrs.field(factory=dict, hash=False)
    """With `VideoRequest.languages`: every language's video, the original's (this one)
    first, by language; each has its own `path`, `duration` and `captions`, and all
    share the pictures. Empty for a video in one language."""

    @property
    def manifest(self) -> Path:
        """The session's ``metadata/manifest.json``."""
        return self.session / "metadata" / "manifest.json"

    def to_moviepy(self) -> Any:
        """Open the video as a ``moviepy.VideoFileClip`` for further editing.

        Close the clip (or use it as a context manager) when done.
        """
        from moviepy import VideoFileClip

        return VideoFileClip(str(self.path))

    def _repr_html_(self) -> str:
        """The notebook display: an inline player sized to fit 640×480, and the facts."""
        from html import escape

        source, note = _player_source(self.path, self.embed_limit)
        facts = (f"<code>{escape(str(self.path))}</code> · {self.width}×{self.height} · "
                 f"{self.duration:.1f} s")
        if source is None:
            return f"<p>{facts}</p><p><strong>{escape(note)}</strong></p>"
        width, height = _player_size(self.width, self.height)
        player = (f'<video controls preload="metadata" width="{width}" height="{height}">'
                  f'<source src="{escape(source)}" type="video/mp4">'
                  "Your browser cannot play this video.</video>")
        return f"{player}<br>{facts}" + (f"<br><small>{escape(note)}</small>" if note else "")
