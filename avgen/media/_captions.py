"""Captions: timed cues from narration segments, and their SRT, WebVTT and ASS forms.

The module is pure Python (no ffmpeg): `make_cues` turns the sentence (and word) timings of
a narration into cues — phrases of one to three lines, or a few words at a time, as the
`CaptionStyle` says — and `to_srt`, `to_vtt` and `to_ass` render them. The caller writes the
files; the ASS script (written with pysubs2) is what the composer burns into the picture.
Word timings travel with each cue: WebVTT gets inline ``<hh:mm:ss.mmm>`` timestamps, ASS gets
``\\k`` karaoke tags (a karaoke style lights each word up by them); SRT has no way to say
it and stays one block per cue.

Times are rounded to the format's unit (milliseconds, or centiseconds for ASS) with one
monotonic rule for both boundaries, so cues that touch stay touching and never overlap.
"""

from __future__ import annotations

__docformat__ = "google"

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import attrs
import pysubs2

from avgen._models import CaptionStyle, CardVisual, Preset, Segment, spread_words
from avgen._validate import number
from avgen.media._cards import (
    STILL_AFTER_CS,
    CardDrawing,
    CardLayout,
    Theme,
    card_drawing,
    card_styles,
    right_to_left,
)
from avgen.media._fonts import font_runs
from avgen.media._lines import (
    ATTACH,
    break_tokens,
    join_tokens,
    text_width,
    wrap_tokens,
    wrap_words,
)

__all__: list[str] = []

_CARD_MAX_LINES = 4
_CLASSIC = CaptionStyle()


def _timed(value: Iterable[Segment]) -> tuple[Segment, ...]:
    return tuple(value)


@attrs.frozen
class Cue:
    """One caption shown on screen for a stretch of time."""

    start: float
    """Start, in seconds from the start of the video."""
    end: float
    """End, in seconds from the start of the video."""
    lines: tuple[str, ...]
    """The display lines, top to bottom (one or two with the default style)."""
    words: tuple[Segment, ...] = attrs.field(default=(), converter=_timed)
    """When each word of ``lines`` is spoken, in video time: one `Segment` per word, in
    order, inside the cue's span; empty when not known."""

    @property
    def text(self) -> str:
        """The lines joined by single spaces."""
        return " ".join(self.lines)


def caption_margin(style: CaptionStyle, preset: Preset) -> float:
    """The margin from the edge the captions sit at: the style's own, or else the preset's
    (``caption_top_margin`` at the top, ``caption_margin`` otherwise)."""
    if style.margin is not None:
        return style.margin
    return preset.caption_top_margin if style.position == "top" else preset.caption_margin


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
            if text_width(join_tokens(tail)) <= max_chars or start == len(chain) - 1:
                units.extend(chain[:start])
                units.append(_GLUE.join(tail))
                break
    units.extend(pending)  # nothing follows them
    return units


def _shown(lines: Sequence[str]) -> list[str]:
    return [line.replace(_GLUE, " ") for line in lines]


def _balanced_lines(words: Sequence[str], max_chars: int) -> list[str]:
    """Wrap into as few lines as greedy wrapping needs, with widths as even as possible."""
    units = _phrases(words, max_chars)
    width = text_width(join_tokens(units))
    needed = len(_wrap_units(units, max_chars))
    for limit in range(max(1, math.ceil(width / needed)), max_chars + 1):
        lines = _wrap_units(units, limit)
        if len(lines) == needed:
            return _shown(lines)
    return _shown(_wrap_units(units, max_chars))


def _wrap_units(units: Sequence[str], max_chars: int) -> list[str]:
    """Greedy lines of tokens that may hold glued words (each counts as one word)."""
    return [join_tokens(line) for line in wrap_tokens(units, max_chars)]


def balanced_groups(text: str, max_chars: int, max_lines: int,
                    language: str | None = None) -> list[tuple[str, ...]]:
    """Split text into caption blocks of at most ``max_lines`` lines of ``max_chars``.

    Uses as few blocks as possible and evens out their lengths, so a sentence never ends
    with a block holding one stray word. Lines and blocks break between words, and in
    Chinese, Japanese and Thai between phrases (`avgen.media._lines.wrap_words`;
    ``language`` tells Traditional Chinese from Simplified).

    Returns:
        The blocks in order, each a tuple of display lines; empty for blank text.
    """
    words = _phrases(break_tokens(text, max_chars, language), max_chars)
    if not words:
        return []
    total = text_width(join_tokens(words))
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
            used += text_width(word) + 1
        blocks = [tuple(_balanced_lines(_unglued(chunk), max_chars))
                  for chunk in chunks if chunk]
        if all(len(block) <= max_lines for block in blocks):
            return blocks
    return [tuple(_shown(greedy[i:i + max_lines])) for i in range(0, len(greedy), max_lines)]


def _unglued(units: Sequence[str]) -> list[str]:
    return [word for unit in units for word in unit.split(_GLUE)]


_CLAUSE_ENDS = frozenset(",.;:!?…،؛؟。、，！？；：")


def _ends_clause(word: str) -> bool:
    return word[-1:] in _CLAUSE_ENDS


def _is_function_word(word: str) -> bool:
    return word.lower() in _FUNCTION_WORDS and word[-1:].isalpha()


def word_groups(text: str, per_cue: int, max_chars: int, max_lines: int = 2,
                language: str | None = None) -> list[tuple[str, ...]]:
    """Split text into groups of at most ``per_cue`` words, for word-by-word captions.

    A group ends after a word that closes a clause (``,`` ``.`` ``;`` ``!`` ``?`` …), and
    never on an article or preposition when the word it belongs with can join the next
    group instead. A group whose words would not fit in ``max_lines`` lines of
    ``max_chars`` gives its last word to the next group (a single long word stands alone).
    Text written without spaces (Chinese, Japanese, Thai) is grouped by width: as many
    phrases as fit on one line of ``max_chars``, never part of one (a phrase wider than
    the line is cut between characters).

    Returns:
        The groups in order, each a tuple of display lines; empty for blank text.
    """
    groups: list[list[str]] = []
    current: list[str] = []
    for token in break_tokens(text, max_chars, language):
        attached = token.startswith(ATTACH)
        words = sum(1 for t in current if not t.startswith(ATTACH))
        full = (words >= per_cue and not attached) or (
            attached and text_width(join_tokens([*current, token])) > max_chars)
        if current and (full or _ends_clause(current[-1])
                        or len(wrap_tokens([*current, token], max_chars)) > max_lines):
            carry: list[str] = []
            while (len(current) > 1 and len(carry) + 2 <= per_cue
                   and _is_function_word(current[-1])):
                carry.insert(0, current.pop())
            groups.append(current)
            current = carry
            if carry and len(wrap_tokens([*carry, token], max_chars)) > max_lines:
                groups.append(carry)  # too long together: the small words stand alone
                current = []
        current.append(token)
    if current:
        groups.append(current)
    return [tuple(_wrap_units(group, max_chars)) for group in groups]


def _spoken(segment: Segment, words: Sequence[Segment], count: int) -> list[Segment] | None:
    """The segment's word timings, if the narrator timed exactly its ``count`` words."""
    inside = [w for w in words if segment.start - 1e-6 <= w.start < segment.end]
    if len(inside) != count:
        return None
    return inside


def _groups(text: str, style: CaptionStyle, language: str | None) -> list[tuple[str, ...]]:
    if style.words_per_cue is None:
        return balanced_groups(text, style.max_chars_per_line, style.max_lines, language)
    return word_groups(text, style.words_per_cue, style.max_chars_per_line, style.max_lines,
                       language)


def _cue_words(texts: Sequence[str], timed: Sequence[Segment] | None, offset: float,
               start: float, end: float) -> list[Segment]:
    """The cue's word timings in video time, kept inside ``start``–``end`` and in order;
    spread over the cue by length when the narrator timed none."""
    if timed is None:
        return spread_words(texts, start, end)
    out: list[Segment] = []
    floor = start
    for text, word in zip(texts, timed, strict=True):
        begin = min(max(word.start + offset, floor), end)
        out.append(Segment(text, begin, min(max(word.end + offset, begin), end)))
        floor = begin
    return out


def make_cues(segments: Sequence[Segment], offset: float, style: CaptionStyle, *,
              words: Sequence[Segment] = (), language: str | None = None) -> list[Cue]:
    """Turn timed narration segments into caption cues.

    Each segment's text is split into balanced blocks of lines (`balanced_groups`) or, for
    a style with ``words_per_cue``, into groups of a few words (`word_groups`). With word
    timings for exactly the segment's words, each cue starts when its first word is
    spoken; otherwise the segment's time is shared among its cues in proportion to their
    lengths. The cues of a segment tile its span exactly: the first starts at
    ``segment.start + offset``, the last ends at ``segment.end + offset`` and each ends where
    the next begins. Every cue carries its words' timings (`Cue.words`): measured ones
    when the narrator gave them, else spread over the cue by length.

    Args:
        segments: Sentence timings inside one audio file.
        offset: Where that audio file starts in the video, in seconds.
        style: Gives the line length, the lines per cue, or the words per cue.
        words: Word timings inside the same audio file, when the narrator reports them.
        language: The narration's BCP 47 language, when known (it tells Traditional
            Chinese from Simplified where lines may break).

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
        groups = _groups(segment.text, style, language)
        if not groups or not end > start:
            continue
        texts = [" ".join(group).split() for group in groups]
        spoken = _spoken(segment, words, sum(map(len, texts))) if words else None
        boundaries = [start]
        if spoken is not None:
            first = 0
            for group_words in texts[:-1]:
                first += len(group_words)
                boundaries.append(min(max(spoken[first].start + offset, boundaries[-1]), end))
        else:
            weights = [len(" ".join(group)) for group in groups]
            total, done = sum(weights), 0
            for weight in weights[:-1]:
                done += weight
                boundaries.append(min(start + (end - start) * done / total, end))
        boundaries.append(end)
        first = 0
        for position, group in enumerate(groups):
            low, high = boundaries[position], boundaries[position + 1]
            mine = texts[position]
            timed = None if spoken is None else spoken[first:first + len(mine)]
            cues.append(Cue(low, high, group, _cue_words(mine, timed, offset, low, high)))
            first += len(mine)
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


def _word_ticks(cue: Cue, lines: Sequence[str], per_second: int) -> list[int] | None:
    """Each displayed word's rounded start, or None when the cue's timings do not match
    its words."""
    count = sum(len(line.split()) for line in lines)
    if not cue.words or len(cue.words) != count:
        return None
    return [_ticks(word.start, per_second) for word in cue.words]


def to_srt(cues: Sequence[Cue]) -> str:
    """Render cues as SubRip (``.srt``) text.

    Cues are numbered from 1 and timed ``HH:MM:SS,mmm``; a cue whose rounded duration is
    zero, or that has no text, is left out. SubRip cannot time words: one block per cue.
    """
    blocks = [f"{n}\n{_clock(s, ',')} --> {_clock(e, ',')}\n" + "\n".join(lines) + "\n"
              for n, (s, e, lines) in enumerate(_timed_blocks(cues, 1000), start=1)]
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_lines(cue: Cue, start: int, end: int) -> list[str]:
    """The cue's lines, escaped, with a ``<hh:mm:ss.mmm>`` timestamp before each word
    spoken strictly inside the cue (WebVTT wants them increasing and inside it)."""
    lines = _plain_lines(cue)
    ticks = _word_ticks(cue, lines, 1000)
    if ticks is None:
        return [_vtt_escape(line) for line in lines]
    out, index, last = [], 0, start
    for line in lines:
        parts = []
        for word in line.split():
            at = ticks[index]
            index += 1
            if last < at < end:
                parts.append(f"<{_clock(at, '.')}>{_vtt_escape(word)}")
                last = at
            else:
                parts.append(_vtt_escape(word))
        out.append(" ".join(parts))
    return out


def to_vtt(cues: Sequence[Cue]) -> str:
    """Render cues as WebVTT (``.vtt``) text.

    Starts with the ``WEBVTT`` header; cues are timed ``HH:MM:SS.mmm`` and ``&``, ``<`` and
    ``>`` in the text are escaped. A cue with word timings has a timestamp tag
    (``<00:00:01.200>``) before each word after the first, so players can follow the
    spoken word. Empty or zero-length cues are left out.
    """
    blocks = []
    for cue in sorted(cues, key=lambda c: c.start):
        start, end = _ticks(cue.start, 1000), _ticks(cue.end, 1000)
        lines = _vtt_lines(cue, start, end)
        if lines and end > start:
            blocks.append(f"{_clock(start, '.')} --> {_clock(end, '.')}\n"
                          + "\n".join(lines) + "\n")
    return "\n".join(["WEBVTT\n", *blocks])


def _rgb(color: str, opacity: float = 1.0) -> pysubs2.Color:
    """``#RRGGBB`` and an opacity as a pysubs2 colour (ASS alpha: 0 is opaque)."""
    return pysubs2.Color(int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16),
                         round(255 * (1.0 - opacity)))


_WORD_JOINER = "\u2060"
_NO_FACES: Mapping[str, str | None] = MappingProxyType({})


def _ass_escape(text: str, faces: Mapping[str, str | None] = _NO_FACES) -> str:
    """Make user text literal for libass, in the fonts ``faces`` names.

    ``{`` and ``}`` become ``\\{`` and ``\\}`` (libass draws them as braces, never as an
    override block); a backslash stays a backslash, with an invisible word joiner (U+2060)
    put after it when an ``N``, ``n`` or ``h`` (or an override block) follows, so ``\\N``,
    ``\\n`` and ``\\h`` are drawn as written. Runs of whitespace (newlines too) become
    one space. A run of characters another font draws (`avgen.media._fonts.faces`) is put
    between ``{\\fn<family>}`` and ``{\\fn}`` (back to the style's font), so libass
    draws it in that font; characters no font has are left out.
    """
    kept = "".join(char for char in text if char not in faces or faces[char] is not None)
    out: list[str] = []
    for piece, family in font_runs(" ".join(kept.split()), faces):
        named = family is not None and not any(c in family for c in "{}\\")
        if named:
            if out and out[-1] == "\\":
                out.append(_WORD_JOINER)
            out.append(f"{{\\fn{family}}}")
        for char in piece:
            if char in "{}":
                out.append("\\" + char)
            elif char in "Nnh" and out and out[-1] == "\\":
                out.append(_WORD_JOINER + char)
            else:
                out.append(char)
        if named:
            if out[-1] == "\\":
                out.append(_WORD_JOINER)
            out.append("{\\fn}")
    return "".join(out)


_ALIGNMENT = {("bottom", "center"): 2, ("bottom", "left"): 1, ("middle", "center"): 5,
              ("middle", "left"): 4, ("top", "center"): 8, ("top", "left"): 7}
"""ASS alignment (numpad layout) of each position and alignment."""

_AUTO_DIRECTION = -1
"""ASS ``Encoding`` -1: libass takes each line's base direction from its first strong
character, so a Hebrew or Arabic sentence runs right to left with its final period on the
left (with the usual 1 it is laid out left to right, the period on the wrong side)."""

_ENTRANCE = "{\\fscx80\\fscy80\\t(0,120,\\fscx100\\fscy100)}"
"""Grow from 80 % to full size over the first 0.12 s."""


_ONE_BOX = 4
"""ASS ``BorderStyle`` 4 (libass): one box in ``BackColour`` behind the whole caption,
padded by the outline width (style 3 boxes each run of text apart, and where the boxes of
neighbouring words overlap a translucent box shows darker bands)."""


def _caption_style(style: CaptionStyle, size: int, short: int, width: int, height: int,
                   margin: float, side_margin: float) -> pysubs2.SSAStyle:
    """The ASS style of the captions. Karaoke draws spoken words in the primary colour and
    the rest in the secondary, so both are ``color`` unless the style highlights."""
    box = style.box
    return pysubs2.SSAStyle(
        fontname=style.font, fontsize=size,
        primarycolor=_rgb(style.highlight_color or style.color),
        secondarycolor=_rgb(style.color),
        outlinecolor=pysubs2.Color(0, 0, 0, 0xFF) if box else _rgb(style.outline_color),
        backcolor=_rgb(style.box_color, style.box_opacity) if box
        else pysubs2.Color(0, 0, 0, 0x80), bold=style.bold,
        borderstyle=_ONE_BOX if box else 1,
        outline=round(0.3 * size, 2) if box else round(style.outline * short, 2),
        shadow=0, alignment=pysubs2.Alignment(_ALIGNMENT[style.position, style.align]),
        marginl=round(side_margin * width), marginr=round(side_margin * width),
        marginv=round(margin * height) if style.position != "middle" else 0,
        encoding=_AUTO_DIRECTION)


def _card_style(style: CaptionStyle, short: int, width: int,
                height: int) -> pysubs2.SSAStyle:
    """Card titles: twice the classic caption size whatever the caption style, centred, or
    in the upper part of the frame when the captions take the middle."""
    outline = _CLASSIC.outline * short
    middle = style.position == "middle"
    return pysubs2.SSAStyle(
        fontname=style.font, fontsize=2 * max(1, round(_CLASSIC.font_size * short)),
        primarycolor=_rgb(style.color), secondarycolor=_rgb(style.color),
        outlinecolor=_rgb(style.outline_color),
        backcolor=pysubs2.Color(0, 0, 0, 0x96), bold=True, borderstyle=1,
        outline=round(outline, 2), shadow=round(max(1.0, 2 * outline), 2),
        alignment=pysubs2.Alignment(8 if middle else 5), marginl=round(0.08 * width),
        marginr=round(0.08 * width), marginv=round(0.2 * height) if middle else 0,
        encoding=_AUTO_DIRECTION)


def _caption_text(cue: Cue, style: CaptionStyle, faces: Mapping[str, str | None]) -> str:
    """The cue's ASS text: lines joined by ``\\N``, each word after a ``\\k`` tag when
    its timing is known (its length in centiseconds, so the highlight reaches each word as
    it is spoken), the entrance first when the style has one. A flush-left style sets a
    cue that starts right to left (Hebrew, Arabic) flush right."""
    lines = _plain_lines(cue)
    if style.uppercase:
        lines = [line.upper() for line in lines]
    ticks = _word_ticks(cue, lines, 100)
    start, end = _ticks(cue.start, 100), _ticks(cue.end, 100)
    head = _ENTRANCE if style.entrance else ""
    if style.align == "left" and right_to_left(" ".join(lines)):  # flush right instead
        head = f"{{\\an{_ALIGNMENT[style.position, 'left'] + 2}}}" + head
    if ticks is None:
        shown = [text for text in (_ass_escape(line, faces) for line in lines) if text]
        return head + "\\N".join(shown) if shown else ""
    bounds = [min(max(tick, start), end) for tick in ticks]
    bounds = [*itertools.accumulate(bounds, max), end]
    if bounds[0] > start:
        head += f"{{\\k{bounds[0] - start}}}"
    out: list[str] = []
    carry, index = "", 0  # the tags of words with nothing to draw go with the next word
    for line in lines:
        parts = []
        for word in line.split():
            tag = f"{{\\k{bounds[index + 1] - bounds[index]}}}"
            index += 1
            drawn = _ass_escape(word, faces)
            if drawn:
                parts.append(carry + tag + drawn)
                carry = ""
            else:
                carry += tag
        if parts:
            out.append(" ".join(parts))
    if not out:
        return ""
    out[-1] += carry
    return head + "\\N".join(out)


def _above_captions(style: CaptionStyle, size: int, height: int, margin: float) -> int:
    """How far down a card's text may reach: above two lines of bottom captions."""
    if style.position != "bottom":
        return round(0.9 * height)
    return round(height * (1 - margin) - (style.max_lines + 0.5) * 1.2 * size)


@attrs.frozen
class StillText:
    """Card text that stands still over part of the video: drawn once by libass and put on
    each frame from ``start_ms`` to ``end_ms`` by ffmpeg's ``overlay`` filter, which costs
    a fraction of libass blending it into every frame (`card_still_texts`)."""

    start_ms: int
    """The first millisecond of the video it is shown at (as libass counts a frame's
    time: its time in whole milliseconds)."""
    end_ms: int
    """The millisecond it is no longer shown at."""
    box: tuple[int, int, int, int]
    """``(x, y, width, height)`` of the part of the frame that holds it (even numbers)."""


ASS_PARTS = ("all", "moving", "still")
"""What an ASS script of `to_ass` draws: everything as it moves; all but the card text
`card_still_texts` puts on the frames; only that text, still number ``k`` at seconds ``2k`` and
``2k + 1`` (drawn once over black, once over white, which tells its transparency)."""


def _designed_cards(cards: Sequence[tuple[float, float, str | CardVisual]], *, width: int,
                    height: int, style: CaptionStyle, margin: float,
                    faces: Mapping[str, str | None], language: str | None
                    ) -> list[tuple[int, int, CardVisual, CardDrawing]]:
    """Each designed card's start and end (centiseconds), the card, and how it is drawn."""
    size = max(1, round(style.font_size * min(width, height)))
    drawn = []
    for start, end, card in cards:
        if isinstance(card, CardVisual) and card.designed:
            first, last = _ticks(start, 100), _ticks(end, 100)
            drawn.append((first, last, card, card_drawing(
                first, last, title=card.title, phrase=card.phrase,
                icon=card.icon, theme=Theme(card.colors, card.accent),
                layout=CardLayout(width, height, icon_middle=style.position == "middle",
                                  bottom=_above_captions(style, size, height, margin)),
                escape=lambda line: _ass_escape(line, faces), language=language)))
    return drawn


def _stands_still(start: int, end: int) -> bool:
    """Whether a card from ``start`` to ``end`` (centiseconds) is long enough for its text
    to stand still after `STILL_AFTER_CS` (a frame of 60 fps at least)."""
    return end - start >= STILL_AFTER_CS + 2


def card_still_texts(cards: Sequence[tuple[float, float, str | CardVisual]], *, width: int,
                     height: int, style: CaptionStyle, margin: float,
                     language: str | None = None) -> list[StillText]:
    """Where and when each designed card's headline, phrase and rule stand still, in the
    order `to_ass` with ``part="still"`` draws them.

    Args:
        cards: As for `to_ass`.
        width: Frame width in pixels.
        height: Frame height in pixels.
        style: The caption style (where captions are decides where cards' text goes).
        margin: As for `to_ass`.
        language: As for `to_ass`.
    """
    return [StillText(10 * (start + STILL_AFTER_CS), 10 * end, drawing.box)
            for start, end, _card, drawing in _designed_cards(
                cards, width=width, height=height, style=style, margin=margin,
                faces=_NO_FACES, language=language)
            if drawing.still and _stands_still(start, end)]


def to_ass(cues: Sequence[Cue], *, width: int, height: int, style: CaptionStyle, margin: float,
           side_margin: float = 0.06,
           cards: Sequence[tuple[float, float, str | CardVisual]] = (),
           faces: Mapping[str, str | None] = _NO_FACES, language: str | None = None,
           part: str = "all") -> str:
    """Render cues (and optional title cards) as an Advanced SubStation Alpha v4.00+ script.

    The script has ``PlayResX``/``PlayResY`` equal to the frame size, ``WrapStyle: 0``
    (lines are broken here and joined with ``\\N``; libass wraps one further only if it is
    wider than the space between the side margins) and ``ScaledBorderAndShadow: yes``.
    Style ``Caption`` sits where ``style.position`` and ``style.align`` say, ``margin`` ×
    height from its edge and ``side_margin`` × width from the sides (a boxed style draws
    one box behind each caption: libass's ``BorderStyle`` 4); style ``Card`` is twice the
    classic caption size, bold and softly shadowed, centred (or in the upper part when the
    captions take the middle). Words with timings are preceded by
    ``\\k`` karaoke tags. User text is drawn as written: ``{``, ``}`` and ``\\`` are
    escaped so they never act as override tags or ``\\N``-style escapes. Right-to-left
    text is passed as-is: the styles ask libass for each line's own base direction.

    Args:
        cues: The captions, e.g. from `make_cues`.
        width: Frame width in pixels.
        height: Frame height in pixels.
        style: The caption style (font, size, colours, layout, highlight, entrance).
        margin: Margin from the bottom or top edge as a fraction of the height (see
            `caption_margin`; unused in the middle).
        side_margin: Margin from the left and right edges as a fraction of the width.
        cards: ``(start, end, card)``: a `CardVisual` with a phrase or an icon is laid out
            on a grid (`avgen.media._cards.card_drawing`); a plain one, or a title given as
            text, is centred, wrapped at about 22 characters (0.7 × the classic line), up
            to 4 lines.
        faces: The font family of each character the style's font does not draw, or
            ``None`` for one no font here has (`avgen.media._fonts.faces`): the text names
            that family for those characters, and leaves out those no font has (a line
            left empty is dropped).
        language: The text's BCP 47 language, when known: where card lines may break.
        part: One of `ASS_PARTS`: everything (the default), what moves, or the card text
            that stands still (`card_still_texts`).

    Returns:
        The script text.

    Raises:
        UsageError: The frame size or a margin is out of range.
    """
    number("width", width, integer=True, low=1, unit="pixels")
    number("height", height, integer=True, low=1, unit="pixels")
    number("margin", margin, low=0.0, high=0.5, high_inclusive=False, unit="of the height")
    number("side_margin", side_margin, low=0.0, high=0.5, high_inclusive=False,
           unit="of the width")
    short = min(width, height)
    size = max(1, round(style.font_size * short))
    subs = pysubs2.SSAFile()
    subs.info.clear()
    subs.info.update({"Title": "avgen captions", "PlayResX": str(width),
                      "PlayResY": str(height), "WrapStyle": "0",
                      "ScaledBorderAndShadow": "yes"})
    subs.styles.clear()
    subs.styles["Caption"] = _caption_style(style, size, short, width, height, margin,
                                            side_margin)
    subs.styles["Card"] = _card_style(style, short, width, height)

    events: list[tuple[int, int, int, str, str]] = []
    if part not in ASS_PARTS:
        raise ValueError(f"part must be one of {', '.join(ASS_PARTS)}, not {part!r}")
    drawings = _designed_cards(cards, width=width, height=height, style=style, margin=margin,
                               faces=faces, language=language)
    designed = bool(drawings)
    if part == "still":  # still k over black at 2k s, over white at 2k + 1 s
        stilled = (drawing.still for begins, ends, _card, drawing in drawings
                   if drawing.still and _stands_still(begins, ends))
        for index, still in enumerate(stilled):
            events.extend((200 * index, layer, 200 * index + 200, name, text)
                          for _start, layer, _end, name, text in still)
        cues, cards = (), ()
    else:
        for begins, ends, _card, drawing in drawings:
            cut = part == "moving" and bool(drawing.still) and _stands_still(begins, ends)
            still_styles = {name for _start, _layer, _end, name, _text in drawing.still}
            events.extend((first, layer, begins + STILL_AFTER_CS if cut and name in still_styles
                           else last, name, text)
                          for first, layer, last, name, text in drawing.events)
    for cue in cues:
        text = _caption_text(cue, style, faces)
        events.append((_ticks(cue.start, 100), 0, _ticks(cue.end, 100), "Caption", text))
    card_chars = max(8, round(_CLASSIC.max_chars_per_line * 0.7))
    for start, end, card in cards:
        if isinstance(card, CardVisual) and card.designed:
            continue
        title = card.title if isinstance(card, CardVisual) else card
        lines = wrap_words(title, card_chars, language)
        if len(lines) > _CARD_MAX_LINES:
            rest = " ".join(lines[_CARD_MAX_LINES - 1:])[:card_chars - 1].rstrip()
            lines = [*lines[:_CARD_MAX_LINES - 1], rest + "…"]
        text = "\\N".join(line for line in (_ass_escape(line, faces) for line in lines) if line)
        events.append((_ticks(start, 100), 1, _ticks(end, 100), "Card", text))
    if designed:
        for fields in card_styles(style.font, short):
            subs.styles[fields["name"]] = pysubs2.SSAStyle(
                fontname=fields["fontname"], fontsize=fields["fontsize"],
                primarycolor=_rgb(f"#{fields['color'][2:]}"),
                secondarycolor=_rgb(f"#{fields['color'][2:]}"),
                outlinecolor=pysubs2.Color(0, 0, 0, 0x60), backcolor=pysubs2.Color(0, 0, 0, 0xA0),
                bold=fields["bold"], borderstyle=1, outline=fields["outline"],
                shadow=round(fields["shadow"], 2), alignment=pysubs2.Alignment(7),
                marginl=0, marginr=0, marginv=0, encoding=_AUTO_DIRECTION)
    for start_cs, layer, end_cs, name, text in sorted(events):
        if text and end_cs > start_cs:
            subs.events.append(pysubs2.SSAEvent(start=10 * start_cs, end=10 * end_cs,
                                                layer=layer, style=name, text=text))
    script: str = subs.to_string("ass")  # pysubs2 before 1.8 ships no type information
    return script
