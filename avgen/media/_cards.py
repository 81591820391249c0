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
  (`key_phrase`) below it, flush left at the grid's margin, with an accent rule above.
- **Motion**: the gradient drifts, the icon rises slowly and grows a little (parallax
  against the text), the text fades and slides in.

All of it is drawn by libass in the one ffmpeg pass (`card_events` gives the ASS events);
no frame passes through Python.
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from importlib import resources
from typing import Any

import attrs

from avgen._ranking import tokenize
from avgen.media._lines import wrap_words

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
    digest = hashlib.sha256(title.strip().lower().encode("utf-8")).digest()
    return THEMES[digest[0] % len(THEMES)]


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


_SENTENCE = re.compile(r"(?<=[.!?…])\s+")
_CLAUSE = re.compile(r"(?<=[,;:—–])\s+")


def key_phrase(narration: str, max_words: int = 9) -> str:
    """A short phrase of the narration to set large: its first sentence when that is
    short, else the sentence's first clause, else its first ``max_words`` words with an
    ellipsis. The final full stop is dropped.

    Example:
        >>> key_phrase("Rain falls on the hills, and gathers into streams that run to the sea.")
        'Rain falls on the hills'
    """
    sentence = (_SENTENCE.split(narration.strip(), maxsplit=1) or [""])[0].strip()
    if len(sentence.split()) > max_words:
        clause = _CLAUSE.split(sentence, maxsplit=1)[0].strip()
        if 2 <= len(clause.split()) <= max_words:
            sentence = clause
        else:
            sentence = " ".join(sentence.split()[:max_words]) + "…"
    return sentence.rstrip(" .,;:—–")


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
    chars = max(8, int(measure / (0.56 * size)))
    lines = wrap_words(text, chars, language)
    if len(lines) > most:
        lines = [*lines[:most - 1], " ".join(lines[most - 1:])[:chars - 1].rstrip() + "…"]
    return lines


def card_events(start: int, end: int, *, title: str, phrase: str, icon: str | None,
                theme: Theme, layout: CardLayout, escape: Any,
                language: str | None = None) -> list[tuple[int, int, int, str, str]]:
    """The ASS events that draw one card: ``(start_cs, layer, end_cs, style, text)``.

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
    events: list[tuple[int, int, int, str, str]] = []
    span = max(1, (end - start) * 10)  # milliseconds
    left, short, height = layout.left, layout.short, layout.height
    headline, sub = (title, phrase) if title.strip() else (phrase, "")
    if layout.icon_middle:
        sub = ""
    icon_size, head_size, sub_size = (round(f * short) for f in (ICON_SIZE, HEAD_SIZE,
                                                                  PHRASE_SIZE))
    try:
        glyph = icon_glyph(icon) if icon is not None else None
    except KeyError:
        glyph = None
    head_lines = [line for line in (escape(line) for line in
                                    _lines(headline, head_size, layout.measure, 3,
                                           language)) if line]
    sub_lines = [line for line in (escape(line) for line in
                                   _lines(sub, sub_size, layout.measure, 3, language))
                 if line] \
        if sub.strip() else []
    rule_w, rule_h = round(0.14 * layout.width), max(2, round(0.007 * height))
    gap = round(0.025 * height)
    parts = [icon_size + gap if glyph else 0, rule_h + gap,
             round(len(head_lines) * head_size * 1.2) + gap if head_lines else 0,
             round(len(sub_lines) * sub_size * 1.25)]
    # the block sits in the middle of the space above the captions (or the upper part)
    floor = layout.bottom if layout.bottom is not None else round(0.9 * height)
    ceiling = round(0.08 * height)
    if layout.icon_middle:
        floor = round(0.45 * height)
    top = max(ceiling, ceiling + (floor - ceiling - sum(parts)) // 2)
    accent = ass_color(theme.accent)
    if glyph is not None:
        rise = round(0.025 * height)
        events.append((start, 2, end, "CardIcon",
                       f"{{\\an7\\move({left},{top + rise},{left},{top},0,{span})"
                       f"\\fscx94\\fscy94\\t(0,{span},\\fscx104\\fscy104)"
                       f"\\fad(400,0)\\1c{accent}}}{glyph}"))
    top += parts[0]
    events.append((start, 2, end, "CardText",
                   f"{{\\an7\\pos({left},{top})\\fad(300,0)\\1c{accent}\\bord0\\shad0\\p1}}"
                   f"m 0 0 l {rule_w} 0 l {rule_w} {rule_h} l 0 {rule_h}{{\\p0}}"))
    top += parts[1]
    slide = round(0.012 * height)
    colour = ass_color(theme.text)
    if head_lines:
        events.append((start, 2, end, "CardTitle",
                       f"{{\\an7\\move({left},{top + slide},{left},{top},0,500)\\fad(350,0)"
                       f"\\1c{colour}}}" + "\\N".join(head_lines)))
        top += parts[2]
    if sub_lines:
        events.append((start, 2, end, "CardPhrase",
                       f"{{\\an7\\move({left},{top + slide},{left},{top},150,700)"
                       f"\\fad(500,0)\\1c{colour}}}" + "\\N".join(sub_lines)))
    return events


def gradient_corners(index: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The gradient's start and end points for scene ``index``: each scene turns it."""
    corners = ((0, 0, width, height), (width, 0, 0, height), (0, height, width, 0),
               (width // 2, 0, width // 2, height))
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
