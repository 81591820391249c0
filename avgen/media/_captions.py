"""Captions: timed cues from narration segments, and their SRT, WebVTT and ASS forms.

The module is pure Python (no ffmpeg): `make_cues` turns the sentence timings of a narration
into short cues of one or two lines, and `to_srt`, `to_vtt` and `to_ass` render them. The
caller writes the files; the ASS script is what the composer burns into the picture.

Times are rounded to the format's unit (milliseconds, or centiseconds for ASS) with one
monotonic rule for both boundaries, so cues that touch stay touching and never overlap.
"""

from __future__ import annotations

__docformat__ = "google"

import math
from collections.abc import Sequence

import attrs

from avgen._models import CaptionStyle, Preset, Segment
from avgen.errors import UsageError

__all__ = ["Cue"]

_CARD_MAX_LINES = 4


@attrs.frozen
class Cue:
    """One caption shown on screen for a stretch of time."""

    start: float
    """Start, in seconds from the start of the video."""
    end: float
    """End, in seconds from the start of the video."""
    lines: tuple[str, ...]
    """The display lines, top to bottom (one or two with the default style)."""

    @property
    def text(self) -> str:
        """The lines joined by single spaces."""
        return " ".join(self.lines)


def caption_margin(style: CaptionStyle, preset: Preset) -> float:
    """The bottom margin to use: the style's own, or else the preset's ``caption_margin``."""
    return preset.caption_margin if style.margin is None else style.margin


def wrap_words(text: str, max_chars: int) -> list[str]:
    """Break text into lines of at most ``max_chars`` characters, greedily.

    Words are split on any whitespace and never broken: a word longer than ``max_chars``
    stands alone on its own line.

    Args:
        text: The text to wrap; runs of whitespace (newlines too) count as one space.
        max_chars: The longest line wanted, at least 1.

    Returns:
        The lines, without leading or trailing spaces; empty for blank text.
    """
    if max_chars < 1:
        raise UsageError("max_chars", f"must be at least 1, got {max_chars!r}")
    lines: list[str] = []
    current = ""
    for word in text.split():
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= max_chars:
            current = f"{current} {word}"
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    return lines


# joins a function word to the next while wrapping (private use, not white space: str.split
# keeps it); shown as a space
_GLUE = "\ue000"
_FUNCTION_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "at", "by", "for", "from", "with", "into",
    "onto", "over", "under", "about", "as", "and", "or", "but", "nor", "so", "than", "that",
    "its", "their", "his", "her", "our", "your", "my", "this", "these", "those", "is",
})
"""English words that belong with the word after them: a caption line never ends on one."""


def _phrases(words: Sequence[str], max_chars: int) -> list[str]:
    """``words`` with function words glued to the word after them — as many of a run of
    them as fit on a line with it — so wrapping never leaves "the" or "of" dangling at the
    end of a line or a block."""
    units: list[str] = []
    pending: list[str] = []
    for word in words:
        if word.lower() in _FUNCTION_WORDS and word[-1:].isalpha():
            pending.append(word)
            continue
        chain, pending = [*pending, word], []
        for start in range(len(chain)):
            tail = chain[start:]
            if len(" ".join(tail)) <= max_chars or start == len(chain) - 1:
                units.extend(chain[:start])
                units.append(_GLUE.join(tail))
                break
    units.extend(pending)  # nothing follows them
    return units


def _shown(lines: Sequence[str]) -> list[str]:
    return [line.replace(_GLUE, " ") for line in lines]


def _balanced_lines(words: Sequence[str], max_chars: int) -> list[str]:
    """Wrap into as few lines as greedy wrapping needs, with lengths as even as possible."""
    units = _phrases(words, max_chars)
    text = " ".join(units)
    needed = len(_wrap_units(units, max_chars))
    for width in range(max(1, math.ceil(len(text) / needed)), max_chars + 1):
        lines = _wrap_units(units, width)
        if len(lines) == needed:
            return _shown(lines)
    return _shown(_wrap_units(units, max_chars))


def _wrap_units(units: Sequence[str], max_chars: int) -> list[str]:
    """`wrap_words` over units that may hold glued words (each counts as one word)."""
    return wrap_words(" ".join(units), max_chars)


def balanced_groups(text: str, max_chars: int, max_lines: int) -> list[tuple[str, ...]]:
    """Split text into caption blocks of at most ``max_lines`` lines of ``max_chars``.

    Uses as few blocks as possible and evens out their lengths, so a sentence never ends
    with a block holding one stray word.

    Returns:
        The blocks in order, each a tuple of display lines; empty for blank text.
    """
    words = _phrases(text.split(), max_chars)
    if not words:
        return []
    total = len(" ".join(words))
    greedy = _wrap_units(words, max_chars)
    fewest = math.ceil(len(greedy) / max_lines)
    for count in range(fewest, fewest + 3):
        chunks: list[list[str]] = [[] for _ in range(count)]
        used, index = 0, 0
        for word in words:
            # move to the next block once this one has reached its share of the text
            while index < count - 1 and chunks[index] and used >= total * (index + 1) / count:
                index += 1
            chunks[index].append(word)
            used += len(word) + 1
        blocks = [tuple(_balanced_lines(_unglued(chunk), max_chars))
                  for chunk in chunks if chunk]
        if all(len(block) <= max_lines for block in blocks):
            return blocks
    return [tuple(_shown(greedy[i:i + max_lines])) for i in range(0, len(greedy), max_lines)]


def _unglued(units: Sequence[str]) -> list[str]:
    return [word for unit in units for word in unit.split(_GLUE)]


def _word_starts(segment: Segment, words: Sequence[Segment], count: int) -> list[float] | None:
    """Start times of the segment's words, if the narrator timed exactly these words."""
    inside = [w for w in words if segment.start - 1e-6 <= w.start < segment.end]
    if len(inside) != count:
        return None
    return [w.start for w in inside]


def make_cues(segments: Sequence[Segment], offset: float, style: CaptionStyle, *,
              words: Sequence[Segment] = ()) -> list[Cue]:
    """Turn timed narration segments into caption cues.

    Each segment's text is split into balanced blocks (`balanced_groups`). With word
    timings for exactly the segment's words, each block starts when its first word is
    spoken; otherwise the segment's time is shared among its blocks in proportion to their
    lengths. The cues of a segment tile its span exactly: the first starts at
    ``segment.start + offset``, the last ends at ``segment.end + offset`` and each ends where
    the next begins.

    Args:
        segments: Sentence timings inside one audio file.
        offset: Where that audio file starts in the video, in seconds.
        style: Gives the line length and the number of lines per cue.
        words: Word timings inside the same audio file, when the narrator reports them.

    Returns:
        The cues, sorted and non-overlapping. Segments with blank text or ``end <= start``
        give none; a segment that starts before the previous one ended is clipped to start
        at that end.
    """
    cues: list[Cue] = []
    floor = -math.inf
    for segment in sorted(segments, key=lambda s: s.start):
        start = max(segment.start + offset, floor)
        end = segment.end + offset
        groups = balanced_groups(segment.text, style.max_chars_per_line, style.max_lines)
        if not groups or not end > start:
            continue
        sizes = [len(" ".join(group).split()) for group in groups]
        spoken = _word_starts(segment, words, sum(sizes)) if words else None
        boundaries = [start]
        if spoken is not None:
            first = 0
            for size in sizes[:-1]:
                first += size
                boundaries.append(min(max(spoken[first] + offset, boundaries[-1]), end))
        else:
            weights = [len(" ".join(group)) for group in groups]
            total, done = sum(weights), 0
            for weight in weights[:-1]:
                done += weight
                boundaries.append(min(start + (end - start) * done / total, end))
        boundaries.append(end)
        for position, group in enumerate(groups):
            cues.append(Cue(boundaries[position], boundaries[position + 1], group))
        floor = end
    return cues


def _ticks(seconds: float, per_second: int) -> int:
    """Round a time to whole units; one monotonic rule for every boundary."""
    return max(0, math.floor(seconds * per_second + 0.5))


def _clock(ms: int, fraction_sep: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{fraction_sep}{millis:03d}"


def _plain_lines(cue: Cue) -> list[str]:
    flat = (" ".join(line.split()) for line in cue.lines)
    return [line for line in flat if line]


def _timed_blocks(cues: Sequence[Cue], per_second: int) -> list[tuple[int, int, list[str]]]:
    """Rounded (start, end, lines) of every cue that keeps some text and some duration."""
    blocks = []
    for cue in sorted(cues, key=lambda c: c.start):
        start, end = _ticks(cue.start, per_second), _ticks(cue.end, per_second)
        lines = _plain_lines(cue)
        if lines and end > start:
            blocks.append((start, end, lines))
    return blocks


def to_srt(cues: Sequence[Cue]) -> str:
    """Render cues as SubRip (``.srt``) text.

    Cues are numbered from 1 and timed ``HH:MM:SS,mmm``; a cue whose rounded duration is
    zero, or that has no text, is left out.
    """
    blocks = [f"{n}\n{_clock(s, ',')} --> {_clock(e, ',')}\n" + "\n".join(lines) + "\n"
              for n, (s, e, lines) in enumerate(_timed_blocks(cues, 1000), start=1)]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue]) -> str:
    """Render cues as WebVTT (``.vtt``) text.

    Starts with the ``WEBVTT`` header; cues are timed ``HH:MM:SS.mmm`` and ``&``, ``<`` and
    ``>`` in the text are escaped. Empty or zero-length cues are left out.
    """
    blocks = [f"{_clock(s, '.')} --> {_clock(e, '.')}\n"
              + "\n".join(_vtt_escape(line) for line in lines) + "\n"
              for s, e, lines in _timed_blocks(cues, 1000)]
    return "\n".join(["WEBVTT\n", *blocks])


def _ass_time(centis: int) -> str:
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6000)
    seconds, cs = divmod(rest, 100)
    return f"{hours:d}:{minutes:02d}:{seconds:02d}.{cs:02d}"


def _ass_color(color: str, alpha: int = 0) -> str:
    red, green, blue = color[1:3], color[3:5], color[5:7]
    return f"&H{alpha:02X}{blue}{green}{red}".upper()


_WORD_JOINER = "\u2060"


def _ass_escape(text: str, omit: str = "") -> str:
    """Make user text literal for libass, and drop the characters of ``omit``.

    ``{`` and ``}`` become ``\\{`` and ``\\}`` (libass draws them as braces, never as an
    override block); a backslash stays a backslash, with an invisible word joiner (U+2060)
    put after it when an ``N``, ``n`` or ``h`` follows, so ``\\N``, ``\\n`` and ``\\h`` are
    drawn as written. Runs of whitespace (newlines too) become one space.
    """
    if omit:
        text = "".join(char for char in text if char not in omit)
    out: list[str] = []
    for position, char in enumerate(" ".join(text.split())):
        if char in "{}":
            out.append("\\" + char)
        elif char in "Nnh" and position and out[-1] == "\\":
            out.append(_WORD_JOINER + char)
        else:
            out.append(char)
    return "".join(out)


def _num(value: float) -> str:
    return f"{round(value, 2):g}"


_STYLE_FORMAT = ("Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
                 "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, "
                 "Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, "
                 "Encoding")


def to_ass(cues: Sequence[Cue], *, width: int, height: int, style: CaptionStyle, margin: float,
           cards: Sequence[tuple[float, float, str]] = (), omit: str = "") -> str:
    """Render cues (and optional title cards) as an Advanced SubStation Alpha v4.00+ script.

    The script has ``PlayResX``/``PlayResY`` equal to the frame size, ``WrapStyle: 2`` (lines
    are broken here and joined with ``\\N``) and ``ScaledBorderAndShadow: yes``. Style
    ``Caption`` sits bottom-centre, ``margin`` × height above the bottom edge; style ``Card``
    is centred, twice as large, bold and softly shadowed. User text is drawn as written:
    ``{``, ``}`` and ``\\`` are escaped so they never act as override tags or ``\\N``-style
    escapes. Right-to-left text is passed as-is (libass orders it).

    Args:
        cues: The captions, e.g. from `make_cues`.
        width: Frame width in pixels.
        height: Frame height in pixels.
        style: The caption style (font, size, colours, line length).
        margin: Bottom margin as a fraction of the height (see `caption_margin`).
        cards: ``(start, end, title)`` title cards shown centred; a title is wrapped at about
            0.7 × ``style.max_chars_per_line`` characters, up to 4 lines.
        omit: Characters to leave out of the drawn text (those no font can draw); a line
            left empty is dropped.

    Returns:
        The script text.

    Raises:
        UsageError: The frame size or the margin is out of range.
    """
    for field, side in (("width", width), ("height", height)):
        if not isinstance(side, int) or isinstance(side, bool) or side < 1:
            raise UsageError(field, f"must be a positive number of pixels, got {side!r}")
    if not 0.0 <= margin < 0.5:
        raise UsageError("margin", f"must be from 0 to below 0.5 (of the height), got {margin!r}")
    short = min(width, height)
    size = max(1, round(style.font_size * short))
    outline = style.outline * short
    bold = -1 if style.bold else 0
    primary, edge = _ass_color(style.color), _ass_color(style.outline_color)
    side_margin = round(0.06 * width)
    caption = (f"Style: Caption,{style.font},{size},{primary},{primary},{edge},&H80000000,"
               f"{bold},0,0,0,100,100,0,0,1,{_num(outline)},0,2,{side_margin},{side_margin},"
               f"{round(margin * height)},1")
    card = (f"Style: Card,{style.font},{2 * size},{primary},{primary},{edge},&H96000000,"
            f"-1,0,0,0,100,100,0,0,1,{_num(outline)},{_num(max(1.0, 2 * outline))},5,"
            f"{round(0.08 * width)},{round(0.08 * width)},0,1")

    events: list[tuple[int, int, int, str, str]] = []
    for cue in cues:
        text = "\\N".join(line for line in (_ass_escape(line, omit) for line in cue.lines)
                          if line)
        events.append((_ticks(cue.start, 100), 0, _ticks(cue.end, 100), "Caption", text))
    card_chars = max(8, round(style.max_chars_per_line * 0.7))
    for start, end, title in cards:
        lines = wrap_words(title, card_chars)
        if len(lines) > _CARD_MAX_LINES:
            rest = " ".join(lines[_CARD_MAX_LINES - 1:])[:card_chars - 1].rstrip()
            lines = [*lines[:_CARD_MAX_LINES - 1], rest + "…"]
        text = "\\N".join(line for line in (_ass_escape(line, omit) for line in lines) if line)
        events.append((_ticks(start, 100), 1, _ticks(end, 100), "Card", text))

    out = ["[Script Info]", "; Script generated by avgen", "ScriptType: v4.00+",
           f"PlayResX: {width}", f"PlayResY: {height}", "WrapStyle: 2",
           "ScaledBorderAndShadow: yes", "", "[V4+ Styles]", f"Format: {_STYLE_FORMAT}",
           caption, card, "", "[Events]",
           "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text"]
    for start_cs, layer, end_cs, name, text in sorted(events):
        if text and end_cs > start_cs:
            out.append(f"Dialogue: {layer},{_ass_time(start_cs)},{_ass_time(end_cs)},{name},,"
                       f"0,0,0,,{text}")
    return "\n".join(out) + "\n"
