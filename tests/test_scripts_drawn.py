"""Every script is drawn as it is written: frames decoded from real videos are compared with
the same text laid out by another engine (Pillow with libraqm: FriBiDi and HarfBuzz).

Hebrew and Arabic run right to left with the final period on the left, Arabic letters are
joined, Japanese, Devanagari and Thai come from the system font that covers them, and an
English script full of emoji shows its words and its emoji (in the bundled Noto Emoji, on a
machine with a colour emoji font too), never boxes.
The system fonts are Debian's ``fonts-ipafont-gothic``, ``fonts-lohit-deva`` and
``fonts-tlwg-loma-ttf`` (``.ci/run`` installs them); a missing one fails its test, naming
the package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fonts import MACHINES, machine
from media import SolidImages, gray_frame
from PIL import Image, ImageDraw, ImageFont

from avgen import CaptionStyle, Preset, Video, VideoGenerator
from avgen.media._fonts import (
    EMOJI_FAMILY,
    FontFile,
    bundled_fonts,
    coverage,
    faces,
    find_font,
    font_runs,
    uncovered,
)
from avgen.testing import ToneNarrator

STRIP = Preset("strip", 640, 160, fps=10, crf=18, encoder_preset="ultrafast")
STYLE = CaptionStyle(font_size=0.2, outline=0.0, bold=False, max_chars_per_line=60,
                     max_lines=1, margin=0.15)
BACKGROUND = 0x20
INK = 110  # white text over a dark picture


def video_of(tmp_path: Path, text: str, language: str) -> Video:
    generator = VideoGenerator(narrator=ToneNarrator(0.3), image_generator=SolidImages(BACKGROUND),
                               output_dir=tmp_path)
    return generator.generate_sync(script=text, preset=STRIP, caption_style=STYLE,
                                   language=language)


Grid = np.ndarray


def grid(ink: np.ndarray, cols: int = 128, rows: int = 24) -> Grid:
    """The inked pixels scaled onto a grid over their bounding box."""
    ys, xs = np.nonzero(ink)
    assert len(xs), "nothing was drawn"
    y0, x0 = ys.min(), xs.min()
    height, width = ys.max() - y0 + 1, xs.max() - x0 + 1
    out = np.zeros((rows, cols), dtype=bool)
    out[(ys - y0) * rows // height, (xs - x0) * cols // width] = True
    return out


def _near(cells: Grid) -> Grid:
    """The cells within one cell of an inked one."""
    padded = np.pad(cells, 1)
    out = np.zeros_like(cells)
    for dy in range(3):
        for dx in range(3):
            out |= padded[dy:dy + cells.shape[0], dx:dx + cells.shape[1]]
    return out


def mismatch(a: Grid, b: Grid) -> float:
    """The inked cells of each grid with no ink near them in the other, over all inked
    cells: 0 for the same shapes (strokes a little thicker or shifted by one cell
    included), larger the more the shapes differ."""
    stray = (a & ~_near(b)).sum() + (b & ~_near(a)).sum()
    return float(stray / max(1, a.sum() + b.sum()))


def drawn(video: Video) -> Grid:
    """The caption's ink in the middle frame of the video."""
    width, height, pixels = gray_frame(video.path, video.duration / 2)
    frame = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width)
    return grid(frame > INK)


def laid_out(text: str, font: FontFile, direction: str) -> Grid:
    """``text`` laid out by Pillow's libraqm engine in ``font``."""
    face = ImageFont.truetype(str(font.path), 48, layout_engine=ImageFont.Layout.RAQM)
    image = Image.new("L", (1800, 120))
    ImageDraw.Draw(image).text((20, 20), text, font=face, fill=255, direction=direction)
    return grid(np.asarray(image) > INK)


def the_font(text: str, package: str) -> FontFile:
    """The one font avgen's fallback chain picks for every character of ``text``."""
    fonts = {font.path for font in coverage(find_font(STYLE.font), [text]).values()
             if font is not None}
    missing = uncovered(find_font(STYLE.font), [text])
    assert not missing, f"no font here draws {missing!r}: install the Debian package {package}"
    assert len(fonts) == 1, fonts
    return FontFile.read(fonts.pop())


@pytest.mark.parametrize(("language", "text", "package"), [
    ("he", "שלום עולם יפה.", "fonts-dejavu (bundled)"),
    ("ar", "مرحبا بالعالم الجميل.", "fonts-dejavu (bundled)"),
])
def test_right_to_left_scripts_run_right_to_left_with_the_period_on_the_left(
        language: str, text: str, package: str, tmp_path: Path) -> None:
    font = the_font(text, package)
    shown = drawn(video_of(tmp_path, text, language))
    right = mismatch(shown, laid_out(text, font, "rtl"))
    wrong = mismatch(shown, laid_out(text, font, "ltr"))  # the period on the right
    assert right < 0.08, (right, wrong)
    assert wrong > right + 0.15, (right, wrong)


def test_arabic_letters_are_joined(tmp_path: Path) -> None:
    text = "مرحبا بالعالم الجميل."
    font = the_font(text, "fonts-dejavu (bundled)")
    shown = drawn(video_of(tmp_path, text, "ar"))
    joined = mismatch(shown, laid_out(text, font, "rtl"))
    # the same letters kept apart by zero-width non-joiners: each in its isolated form
    apart = "\u200c".join(text)
    assert joined < 0.08
    assert mismatch(shown, laid_out(apart, font, "rtl")) > joined + 0.15


@pytest.mark.parametrize(("language", "text", "shuffled", "package"), [
    ("ja", "こんにちは世界。", "世界にちはこん。", "fonts-ipafont-gothic"),
    ("hi", "नमस्ते दुनिया", "दुनिया नमस्ते", "fonts-lohit-deva"),
    ("th", "สวัสดีชาวโลก", "ชาวโลกสวัสดี", "fonts-tlwg-loma-ttf"),
])
def test_scripts_drawn_by_a_system_font(language: str, text: str, shuffled: str,
                                        package: str, tmp_path: Path) -> None:
    font = the_font(text, package)
    assert font.path.parent != find_font(STYLE.font).path.parent  # a system font, not ours
    shown = drawn(video_of(tmp_path, text, language))
    right = mismatch(shown, laid_out(text, font, "ltr"))
    assert right < 0.08
    # the same characters in another order look measurably different
    assert mismatch(shown, laid_out(shuffled, font, "ltr")) > right + 0.15


def laid_out_runs(runs: list[tuple[str, FontFile]]) -> Grid:
    """Pieces of text laid out one after another by Pillow, each in its own font."""
    image = Image.new("L", (2400, 120))
    draw, x = ImageDraw.Draw(image), 20.0
    for text, font in runs:
        face = ImageFont.truetype(str(font.path), 48, layout_engine=ImageFont.Layout.RAQM)
        draw.text((x, 20), text, font=face, fill=255)
        x += face.getlength(text)
    return grid(np.asarray(image) > INK)


@pytest.mark.parametrize("kind", MACHINES)
def test_an_emoji_laden_script_shows_its_words_and_its_emoji(
        kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a server and on a desktop with a colour emoji font: the words in DejaVu Sans,
    every emoji in the bundled monochrome Noto Emoji, no box anywhere."""
    machine(kind, monkeypatch, tmp_path / "fonts")
    text = "Rain 🌧 falls 🌈 on 🌊 ☔ 🎉"  # one line of the strip
    dejavu = find_font(STYLE.font)
    emoji = next(font for font in bundled_fonts() if font.family == EMOJI_FAMILY)
    assert uncovered(dejavu, [text]) == ""
    drawn_in = faces(dejavu, [text])
    assert set(drawn_in) == {"🌧", "🌈", "🌊", "🎉"}  # ☔ is in DejaVu Sans
    shown = drawn(video_of(tmp_path, text, "en"))
    runs = [(piece, dejavu if family is None else emoji)
            for piece, family in font_runs(text, drawn_in)]
    right = mismatch(shown, laid_out_runs(runs))
    assert right < 0.08, right
    # the words alone (emoji left out), or a box in place of each emoji, would show
    words = " ".join("".join(c for c in text if c not in drawn_in).split())
    assert mismatch(shown, laid_out(words, dejavu, "ltr")) > right + 0.15
    boxed = "".join("\u25a1" if c in drawn_in else c for c in text)
    assert mismatch(shown, laid_out(boxed, dejavu, "ltr")) > right + 0.06
