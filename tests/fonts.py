"""Font setups a test controls, whatever fonts the machine has.

`fontconfig_with` writes a fontconfig file listing exactly the font folders a test means and
points ``FONTCONFIG_FILE`` at it: ``fc-list``, and the libass inside the ffmpeg avgen runs,
then see those fonts and no others (the bundled fonts reach libass through its
``fontsdir``). `colour_emoji_font` makes a real colour bitmap emoji font (``CBDT``/``CBLC``
tables of PNG pictures, no outlines, as Debian's ``fonts-noto-color-emoji`` ships): what a
desktop machine has, and what libass cannot draw.
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont
from PIL import Image

__all__ = ["COLOUR_ONLY", "MACHINES", "colour_emoji_font", "fontconfig_with", "machine",
           "outline_font"]

MACHINES = ("server", "desktop")
"""No font beyond avgen's own; a colour bitmap emoji font installed (`machine`)."""

COLOUR_ONLY = "⌒"
"""A character of `colour_emoji_font` that no bundled font has."""
COLOUR_EMOJI = "🌧🌈🌊🎉😀" + COLOUR_ONLY
"""The characters `colour_emoji_font` has pictures for."""


def fontconfig_with(monkeypatch: pytest.MonkeyPatch, folder: Path, *font_dirs: Path) -> Path:
    """Make fontconfig (``fc-list`` and ffmpeg's libass) see exactly the fonts in
    ``font_dirs`` for the rest of the test; its cache goes to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    dirs = "".join(f"  <dir>{_xml(str(d))}</dir>\n" for d in font_dirs)
    conf = folder / "fonts.conf"
    conf.write_text('<?xml version="1.0"?>\n'
                    '<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
                    f"<fontconfig>\n{dirs}  <cachedir>{_xml(str(folder / 'cache'))}</cachedir>\n"
                    "</fontconfig>\n", encoding="utf-8")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    monkeypatch.delenv("FONTCONFIG_PATH", raising=False)
    return conf


def machine(kind: str, monkeypatch: pytest.MonkeyPatch, folder: Path, *,
            cjk: bool = False) -> None:
    """Make fontconfig see the fonts of ``kind`` (`MACHINES`) for the rest of the test, and
    an outline font with 中 and 文 (family "Test Outline") when ``cjk``."""
    dirs = []
    if kind == "desktop":
        dirs.append(colour_emoji_font(folder / "colour" / "TestColourEmoji.ttf").parent)
    if cjk:
        dirs.append(outline_font(folder / "outline" / "TestOutline.ttf", "中文").parent)
    fontconfig_with(monkeypatch, folder / "fontconfig", *dirs)


def outline_font(path: Path, chars: str, family: str = "Test Outline") -> Path:
    """Write an outline (TrueType) font at ``path`` that draws each character of ``chars``
    as a different pattern of bars, so which characters were drawn can be told apart."""
    names = [".notdef", *(f"u{ord(char):X}" for char in chars)]
    glyphs = {}
    for index, name in enumerate(names):
        pen = TTGlyphPen(None)
        if index:
            for bar in range(1 + index % 4):  # 1 to 4 upright bars
                left = 150 + bar * 450
                pen.moveTo((left, 0))
                pen.lineTo((left, 1500))
                pen.lineTo((left + 250, 1500))
                pen.lineTo((left + 250, 0))
                pen.closePath()
        glyphs[name] = pen.glyph()
    builder = FontBuilder(2048, isTTF=True)
    builder.setupGlyphOrder(names)
    builder.setupCharacterMap({ord(char): name for char, name in zip(chars, names[1:],
                                                                     strict=True)})
    builder.setupGlyf(glyphs)
    builder.setupHorizontalMetrics({name: (2048, 150) for name in names})
    builder.setupHorizontalHeader(ascent=1900, descent=-500)
    builder.setupNameTable({"familyName": family, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=1900, sTypoDescender=-500, usWinAscent=1900,
                     usWinDescent=500)
    builder.setupPost()
    path.parent.mkdir(parents=True, exist_ok=True)
    builder.save(str(path))
    return path


def _xml(text: str) -> str:
    return quoteattr(text)[1:-1]


def colour_emoji_font(path: Path, family: str = "Test Colour Emoji") -> Path:
    """Write a colour bitmap font at ``path``: a 109 ppem strike of PNG pictures (one
    coloured square per character of `COLOUR_EMOJI`) in ``CBDT``/``CBLC`` tables, with no
    outlines: the structure of ``NotoColorEmoji.ttf``."""
    names = [f"u{ord(char):X}" for char in COLOUR_EMOJI]
    order = [".notdef", *names]
    builder = FontBuilder(2048, isTTF=True)
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord(char): name
                               for char, name in zip(COLOUR_EMOJI, names, strict=True)})
    builder.setupHorizontalMetrics({name: (2550, 0) for name in order})
    builder.setupHorizontalHeader(ascent=1900, descent=-500)
    builder.setupNameTable({"familyName": family, "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=1900, sTypoDescender=-500, usWinAscent=1900,
                     usWinDescent=500)
    builder.setupPost()
    builder.setupMaxp()
    font = builder.font
    font["maxp"].tableVersion = 0x00005000  # no outlines
    pictures = []
    for index, name in enumerate(names):
        image = Image.new("RGBA", (136, 128), (255, 80 + 30 * index, 0, 255))
        data = io.BytesIO()
        image.save(data, format="PNG")
        pictures.append(
            f'<cbdt_bitmap_format_17 name="{name}"><SmallGlyphMetrics>'
            '<height value="128"/><width value="136"/><BearingX value="0"/>'
            '<BearingY value="101"/><Advance value="136"/></SmallGlyphMetrics>'
            f"<rawimagedata>{data.getvalue().hex()}</rawimagedata></cbdt_bitmap_format_17>")
    line = "".join(f'<{tag} value="{value}"/>' for tag, value in (
        ("ascender", 101), ("descender", -27), ("widthMax", 136),
        ("caretSlopeNumerator", 0), ("caretSlopeDenominator", 0), ("caretOffset", 0),
        ("minOriginSB", 0), ("minAdvanceSB", 0), ("maxBeforeBL", 0), ("minAfterBL", 0),
        ("pad1", 0), ("pad2", 0)))
    locations = "".join(f'<glyphLoc id="{i}" name="{name}"/>'
                        for i, name in enumerate(names, start=1))
    ttx = (
        '<?xml version="1.0" encoding="UTF-8"?><ttFont sfntVersion="\\x00\\x01\\x00\\x00">'
        f'<CBDT><header version="3.0"/><strikedata index="0">{"".join(pictures)}'
        '</strikedata></CBDT>'
        '<CBLC><header version="3.0"/><strike index="0"><bitmapSizeTable>'
        f'<sbitLineMetrics direction="hori">{line}</sbitLineMetrics>'
        f'<sbitLineMetrics direction="vert">{line}</sbitLineMetrics>'
        f'<colorRef value="0"/><startGlyphIndex value="1"/>'
        f'<endGlyphIndex value="{len(names)}"/><ppemX value="109"/><ppemY value="109"/>'
        '<bitDepth value="32"/><flags value="1"/></bitmapSizeTable>'
        f'<eblc_index_sub_table_1 imageFormat="17" firstGlyphIndex="1" '
        f'lastGlyphIndex="{len(names)}">{locations}</eblc_index_sub_table_1>'
        "</strike></CBLC></ttFont>")
    font.importXML(io.StringIO(ttx))
    path.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(path))
    check = TTFont(str(path))
    assert "glyf" not in check and "CBDT" in check
    return path
