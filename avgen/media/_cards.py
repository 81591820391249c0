"""Procedural cards that look designed: a theme per video, an icon and a key phrase per scene.

When nothing supplies a scene's picture, the card is a layout rather than a gradient with a
heading:

- **Theme**: one per video (`theme_for` its title): two background colours, an accent and
  a text colour. Every card of the video uses it; each scene turns the gradient another
  way, so scenes differ while the video keeps one look.
- **Icon**: chosen by keyword (`icon_for`) from the bundled Lucide icon font (ISC licence,
  about 2 200 icons with their search tags), ranked with BM25 against the scene's visual
  prompt, title and narration; none when nothing matches.
- **Type on a grid**: the scene's title as the headline and a key phrase of its narration
  (`key_phrase`) below it, flush left at the grid's margin (flush right for Hebrew or
  Arabic), with an accent rule above; in a landscape frame the icon stands beside the
  text, the two as one group in the middle of the frame. With captions burned in, a
  phrase the narration says is left out (the captions show it already): the card adds
  what the captions do not.
- **Motion**: the gradient drifts, the icon rises slowly and grows a little (parallax
  against the text), the text fades and slides in.

All of it is drawn by libass in the picture's ffmpeg pass (`card_drawing` gives the ASS
events); no frame passes through Python. Once the headline, phrase and rule stand still
(`STILL_AFTER_CS`), libass draws them once per render and ffmpeg's ``overlay`` puts them on
each frame (`avgen.media._graph.StillTexts`), which costs far less than blending them again
into every frame; the icon keeps moving to the card's end and libass draws it throughout.
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import json
import re
import unicodedata
from collections.abc import Sequence
from importlib import resources
from typing import Any

import attrs

from avgen._hashing import sha256_hex
from avgen._ranking import tokenize
from avgen.media._lines import text_width, wrap_words

__all__: list[str] = []

ICON_FONT = "lucide"
"""Family name of the bundled icon font."""


@attrs.frozen
class Theme:
    """The colours of a video's cards, as ``0xRRGGBB``."""

    background: tuple[str, str]
    """The gradient's two colours."""
    accent: str
    """The icon and the rule above the headline."""
    text: str = "0xFFFFFF"
    """Headline and phrase."""


THEMES = (
    Theme(("0x0f172a", "0x1e3a8a"), "0x38bdf8"),  # night sky
    Theme(("0x134e4a", "0x0f766e"), "0xfbbf24"),  # teal and amber
    Theme(("0x3b0764", "0x7c3aed"), "0xf472b6"),  # violet and pink
    Theme(("0x7c2d12", "0xc2410c"), "0xfde68a"),  # ember
    Theme(("0x14532d", "0x15803d"), "0xbef264"),  # forest
    Theme(("0x1f2937", "0x374151"), "0xf87171"),  # slate and coral
)
"""The card themes; a video takes one by its title (`theme_for`)."""


def theme_for(title: str) -> Theme:
    """The theme of a video, the same for the same title on every machine."""
    digest = sha256_hex(title.strip().lower())
    return THEMES[int(digest[:2], 16) % len(THEMES)]


@functools.cache
def _icon_index() -> tuple[tuple[str, ...], tuple[int, ...], Any]:
    """The icons' names, code points and a BM25 index of their names and tags."""
    import bm25s

    data = json.loads(resources.files("avgen.media").joinpath("icons/lucide.json")
                      .read_text("utf-8"))
    names = tuple(sorted(data))
    retriever = bm25s.BM25()
    retriever.index(tokenize([data[n][1] for n in names]), show_progress=False)
    return names, tuple(int(data[n][0]) for n in names), retriever


def icon_names() -> tuple[str, ...]:
    """Every icon's name (``cloud-rain``, ``sun`` …)."""
    return _icon_index()[0]


def icon_glyph(name: str) -> str:
    """The character that draws icon ``name`` in the icon font.

    Raises:
        KeyError: No icon has that name.
    """
    names, points, _ = _icon_index()
    position = names.index(name) if name in names else -1
    if position < 0:
        raise KeyError(name)
    return chr(points[position])


def icon_for(text: str) -> str | None:
    """The icon whose name and tags best match ``text`` (BM25), or None when no word of
    the text is among them.

    Example:
        >>> icon_for("Rain falls on the hills and gathers into streams.")
        'umbrella'
    """
    names, _, retriever = _icon_index()
    query = tokenize([text])
    if not query.ids or not query.ids[0]:
        return None
    docs, scores = retriever.retrieve(query, k=1, show_progress=False)
    if float(scores[0][0]) <= 0:
        return None
    return names[int(docs[0][0])]


_SENTENCE = re.compile(r"(?<=[.!?…])\s+|(?<=[。！？])")
_CLAUSE = re.compile(r"(?<=[,;:—–،؛])\s+|(?<=[、，；：])")


def key_phrase(narration: str, max_words: int = 9) -> str:
    """A short phrase of the narration to set large: its first sentence when that is
    short, else the sentence's first clause, else its first ``max_words`` words (in text
    written without spaces, its first phrases up to twice as many characters) with an
    ellipsis. The final full stop is dropped.

    Example:
        >>> key_phrase("Rain falls on the hills, and gathers into streams that run to the sea.")
        'Rain falls on the hills'
        >>> key_phrase("駅はどこにあるかを教えてください。雨が降ります。")
        '駅はどこにあるかを教えてください'
    """
    sentence = (_SENTENCE.split(narration.strip(), maxsplit=1) or [""])[0].strip()
    longest = 5 * max_words  # columns: some 22 Chinese or Japanese characters
    if len(sentence.split()) > max_words or text_width(sentence) > longest:
        clause = _CLAUSE.split(sentence, maxsplit=1)[0].strip()
        if len(clause.split()) <= max_words and 4 <= text_width(clause) <= longest and (
                len(clause.split()) >= 2 or text_width(clause) > len(clause)):
            sentence = clause
        elif len(sentence.split()) > max_words:
            sentence = " ".join(sentence.split()[:max_words]) + "…"
        else:
            sentence = wrap_words(sentence, 4 * max_words)[0] + "…"
    return sentence.rstrip(" .,;:—–。、，；：،؛")


def ass_color(color: str, alpha: int = 0) -> str:
    """``0xRRGGBB`` as an ASS override colour (``&HBBGGRR&``), with ``alpha`` for ``\\\\1a``."""
    red, green, blue = color[2:4], color[4:6], color[6:8]
    return f"&H{blue}{green}{red}&".upper()


@attrs.frozen
class CardLayout:
    """Where a card's parts go, in pixels of the frame."""

    width: int
    """Frame width."""
    height: int
    """Frame height."""
    icon_middle: bool = False
    """Captions take the middle of the frame: keep the card to its upper part, no phrase."""
    bottom: int | None = None
    """The lowest the card's text may reach (above the captions); default 90 % down."""

    @property
    def short(self) -> int:
        """The frame's shorter side."""
        return min(self.width, self.height)

    @property
    def left(self) -> int:
        """The grid's left margin."""
        return round(0.1 * self.width)

    @property
    def measure(self) -> int:
        """The text column's width."""
        return self.width - 2 * self.left


ICON_SIZE, HEAD_SIZE, PHRASE_SIZE = 0.24, 0.105, 0.06
"""Icon, headline and phrase sizes, as fractions of the frame's shorter side."""


def _lines(text: str, size: int, measure: int, most: int,
           language: str | None = None) -> list[str]:
    """``text`` in at most ``most`` lines of the ``measure``, as even as they can be (no
    line left with one word), the last cut short with an ellipsis when it is too long."""
    chars = max(8, int(measure / (0.56 * size)))
    lines = wrap_words(text, chars, language)
    if 1 < len(lines) <= most:
        for limit in range(max(1, text_width(text) // len(lines)), chars):
            even = wrap_words(text, limit, language)
            if len(even) == len(lines):
                return even
    if len(lines) > most:
        lines = [*lines[:most - 1], " ".join(lines[most - 1:])[:chars - 1].rstrip() + "…"]
    return lines


def right_to_left(text: str) -> bool:
    """True when the first strong character of ``text`` is written right to left (Hebrew,
    Arabic …): the card is then set flush right."""
    for char in text:
        direction = unicodedata.bidirectional(char)
        if direction in ("R", "AL"):
            return True
        if direction == "L":
            return False
    return False


Event = tuple[int, int, int, str, str]
"""An ASS event: ``(start_cs, layer, end_cs, style, text)``."""

STILL_AFTER_CS = 70
"""Centiseconds into a card after which its headline, phrase and rule stand still (the
headline slides in over 0.5 s, the phrase from 0.15 s to 0.7 s; the fades are shorter)."""


@attrs.frozen
class CardDrawing:
    """One card as libass draws it (`card_drawing`)."""

    events: list[Event]
    """Every event of the card, moving as designed."""
    still: list[Event]
    """The headline, phrase and rule as they stand once still (after `STILL_AFTER_CS`):
    the same text, at its final place, without motion or fade."""
    box: tuple[int, int, int, int]
    """``(x, y, width, height)``: a part of the frame (even numbers) that holds everything
    ``still`` draws, with room for a line more than planned and its shadow."""


def card_events(start: int, end: int, *, title: str, phrase: str, icon: str | None,
                theme: Theme, layout: CardLayout, escape: Any,
                language: str | None = None) -> list[Event]:
    """The ASS events that draw one card: ``(start_cs, layer, end_cs, style, text)``
    (`card_drawing`'s ``events``)."""
    return card_drawing(start, end, title=title, phrase=phrase, icon=icon, theme=theme,
                        layout=layout, escape=escape, language=language).events


def card_drawing(start: int, end: int, *, title: str, phrase: str, icon: str | None,
                 theme: Theme, layout: CardLayout, escape: Any,
                 language: str | None = None) -> CardDrawing:
    """The ASS events that draw one card, and the same text standing still.

    In a portrait or square frame the icon, the rule, the headline and the phrase stand
    one above the other; in a landscape frame the icon stands beside the text, the two as
    one group in the middle of the frame, centred in the space above the captions. Text
    that starts right to left (Hebrew, Arabic) is set flush right, the icon and the rule
    on the right too.

    Args:
        start: Start in centiseconds.
        end: End in centiseconds.
        title: The headline (the scene's title; the phrase takes its place when empty).
        phrase: The key phrase set below the headline.
        icon: An icon name, or None.
        theme: The video's colours.
        layout: The frame and where captions are.
        escape: Makes user text literal for libass (``_ass_escape``).
        language: The text's BCP 47 language, when known: where lines may break.
    """
    events: list[Event] = []
    still: list[Event] = []
    span = max(1, (end - start) * 10)  # milliseconds
    width, short, height = layout.width, layout.short, layout.height
    headline, sub = (title, phrase) if title.strip() else (phrase, "")
    if layout.icon_middle:
        sub = ""
    try:
        glyph = icon_glyph(icon) if icon is not None else None
    except KeyError:
        glyph = None
    wide = width >= 1.3 * height and glyph is not None and not layout.icon_middle
    icon_size, head_size, sub_size = (round(f * short) for f in (ICON_SIZE, HEAD_SIZE,
                                                                  PHRASE_SIZE))
    left, measure = layout.left, layout.measure
    if wide:  # the icon in a column of its own, the type a little larger
        icon_size, head_size, sub_size = (round(f * short) for f in (
            1.3 * ICON_SIZE, 1.1 * HEAD_SIZE, 1.1 * PHRASE_SIZE))
        left = round(0.08 * width)
        column = left + icon_size + round(0.04 * width)
        measure = width - column - left
    raw_head = _lines(headline, head_size, measure, 3, language)
    raw_sub = _lines(sub, sub_size, measure, 3, language) if sub.strip() else []
    head_lines = [line for line in map(escape, raw_head) if line]
    sub_lines = [line for line in map(escape, raw_sub) if line]
    rule_w, rule_h = round(0.14 * width), max(2, round(0.007 * height))
    if wide:  # the icon and the text as one group in the middle of the frame
        rule_w = min(rule_w, round(0.5 * measure))
        text_w = max([rule_w, *(round(0.52 * head_size * text_width(line)) for line in raw_head),
                      *(round(0.52 * sub_size * text_width(line)) for line in raw_sub)])
        group = column - left + min(measure, text_w)
        left = max(left, (width - group) // 2)
        column = left + icon_size + round(0.04 * width)
    gap = round(0.025 * height)
    icon_part = icon_size + gap if glyph and not wide else 0
    text_parts = [rule_h + gap,
                  round(len(head_lines) * head_size * 1.2) + gap if head_lines else 0,
                  round(len(sub_lines) * sub_size * 1.25)]
    # the block sits in the middle of the space above the captions (or the upper part)
    floor = layout.bottom if layout.bottom is not None else round(0.9 * height)
    ceiling = round(0.08 * height)
    if layout.icon_middle:
        floor = round(0.45 * height)
    block = max(icon_size, sum(text_parts)) if wide else icon_part + sum(text_parts)
    top = max(ceiling, ceiling + (floor - ceiling - block) // 2)
    flush_right = right_to_left(headline + sub)
    text_x = column if wide else left

    def x(at: int, size: int = 0) -> int:
        """``at`` from the side the card is set from (the left, or the right for RTL)."""
        return width - at - size if flush_right else at

    anchor = "\\an9" if flush_right else "\\an7"
    accent = ass_color(theme.accent)
    if glyph is not None:
        icon_top = top + (block - icon_size) // 2 if wide else top
        rise = round(0.025 * height)
        scale = f"\\fs{icon_size}" if wide else ""
        events.append((start, 2, end, "CardIcon",
                       f"{{{anchor}\\move({x(left)},{icon_top + rise},{x(left)},{icon_top},0,"
                       f"{span}){scale}\\fscx94\\fscy94\\t(0,{span},\\fscx104\\fscy104)"
                       f"\\fad(400,0)\\1c{accent}}}{glyph}"))
    top = top + (block - sum(text_parts)) // 2 if wide else top + icon_part
    first = top
    rule = (f"\\an7\\pos({x(text_x, rule_w)},{top})", "\\fad(300,0)",
            f"\\1c{accent}\\bord0\\shad0\\p1}}m 0 0 l {rule_w} 0 l {rule_w} {rule_h} "
            f"l 0 {rule_h}{{\\p0}}")
    events.append((start, 2, end, "CardText", "{" + "".join(rule)))
    still.append((start, 2, end, "CardText", "{" + rule[0] + rule[2]))
    top += text_parts[0]
    slide = round(0.012 * height)
    colour = ass_color(theme.text)
    sizes = (f"\\fs{head_size}", f"\\fs{sub_size}") if wide else ("", "")
    if head_lines:
        text = f"\\1c{colour}}}" + "\\N".join(head_lines)
        events.append((start, 2, end, "CardTitle",
                       f"{{{anchor}\\move({x(text_x)},{top + slide},{x(text_x)},{top},0,500)"
                       f"{sizes[0]}\\fad(350,0){text}"))
        still.append((start, 2, end, "CardTitle",
                      f"{{{anchor}\\pos({x(text_x)},{top}){sizes[0]}{text}"))
        top += text_parts[1]
    if sub_lines:
        text = f"\\1c{colour}}}" + "\\N".join(sub_lines)
        events.append((start, 2, end, "CardPhrase",
                       f"{{{anchor}\\move({x(text_x)},{top + slide},{x(text_x)},{top},150,700)"
                       f"{sizes[1]}\\fad(500,0){text}"))
        still.append((start, 2, end, "CardPhrase",
                      f"{{{anchor}\\pos({x(text_x)},{top}){sizes[1]}{text}"))
        top += text_parts[2]
    # from the side the text is set from to the frame's other edge (a line libass wraps
    # further may reach it), and from a little above the rule to a line and a half below
    # the last planned line
    pad = round(0.1 * head_size) + 2
    x0 = max(0, x(text_x) - pad) // 2 * 2 if not flush_right else 0
    x1 = min(width, x(text_x) + pad) if flush_right else width
    y0 = max(0, first - round(0.25 * head_size)) // 2 * 2
    y1 = min(height, top + round(1.5 * head_size))
    return CardDrawing(events, still, (x0, y0, max(2, (x1 - x0) // 2 * 2),
                                       max(2, (y1 - y0) // 2 * 2)))


def gradient_corners(index: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The gradient's start and end points for scene ``index`` in a width×height frame:
    each scene turns it. The points are pixels of the frame (ffmpeg's ``gradients`` puts
    a point outside it somewhere at random).

    Example:
        >>> [gradient_corners(index, 45, 80) for index in range(4)]
        [(0, 0, 44, 79), (44, 0, 0, 79), (0, 79, 44, 0), (22, 0, 22, 79)]
    """
    right, bottom = width - 1, height - 1
    corners = ((0, 0, right, bottom), (right, 0, 0, bottom), (0, bottom, right, 0),
               (right // 2, 0, right // 2, bottom))
    return corners[index % len(corners)]


def card_styles(font: str, short: int) -> Sequence[dict[str, Any]]:
    """The pysubs2 style fields of the card's styles: icon, headline, phrase, rule (each
    card's theme colours them in its events)."""
    text = "0xFFFFFF"
    return (
        {"name": "CardIcon", "fontname": ICON_FONT, "fontsize": round(ICON_SIZE * short),
         "color": text, "bold": False, "outline": 0.0, "shadow": 0.0},
        {"name": "CardTitle", "fontname": font, "fontsize": round(HEAD_SIZE * short),
         "color": text, "bold": True, "outline": 0.0, "shadow": max(1.0, 0.004 * short)},
        {"name": "CardPhrase", "fontname": font, "fontsize": round(PHRASE_SIZE * short),
         "color": text, "bold": False, "outline": 0.0, "shadow": max(1.0, 0.003 * short)},
        {"name": "CardText", "fontname": font, "fontsize": round(PHRASE_SIZE * short),
         "color": text, "bold": False, "outline": 0.0, "shadow": 0.0},
    )
