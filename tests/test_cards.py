"""Procedural cards that look designed: one theme per video, an icon chosen by keyword from
the bundled icon font, the title and a key phrase on a grid, gentle motion — checked on
frames decoded from real videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from media import rgb_frame

from avgen import CaptionStyle, Preset, Video, VideoGenerator
from avgen.media._cards import (
    THEMES,
    CardLayout,
    Theme,
    card_events,
    icon_for,
    icon_names,
    key_phrase,
    theme_for,
)
from avgen.media._fonts import find_font
from avgen.testing import ToneNarrator

WIDE = Preset("wide", 640, 360, fps=12, crf=18, encoder_preset="ultrafast")
SCRIPT = ("# The water cycle\n\n## Rain\n\nRain falls on the hills and gathers into streams."
          "\n\n## The sun\n\nThe sun warms the sea and lifts the water into the clouds."
          "\n\n## Trains\n\nA train carries the harvest to the city at night.")


def video_of(tmp_path: Path, script: str = SCRIPT, **fields: object) -> Video:
    generator = VideoGenerator(narrator=ToneNarrator(0.3), output_dir=tmp_path)
    return generator.generate_sync(script=script, preset=WIDE, captions=False, **fields)


def cards(video: Video) -> list[dict[str, object]]:
    steps = json.loads(video.manifest.read_text())["steps"]
    return [steps[k]["data"]["asset"] for k in sorted(steps) if k.endswith(".visual")]


def accent_mask(video: Video, t: float, accent: str) -> np.ndarray:
    width, height, pixels = rgb_frame(video.path, t)
    frame = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3).astype(int)
    target = np.array([int(accent[2:4], 16), int(accent[4:6], 16), int(accent[6:8], 16)])
    return np.abs(frame - target).sum(axis=2) < 60


def box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    assert len(xs), "nothing in the accent colour"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def test_key_phrases() -> None:
    assert key_phrase("Rain falls on the hills.") == "Rain falls on the hills"
    assert key_phrase("Rain falls on the hills, and gathers into streams that run to the "
                      "sea. Then the sun.") == "Rain falls on the hills"
    assert key_phrase("One two three four five six seven eight nine ten eleven.") == (
        "One two three four five six seven eight nine…")


@given(st.text(alphabet=st.characters(categories=["L", "Zs", "P"]), min_size=1, max_size=200))
def test_a_key_phrase_is_short(narration: str) -> None:
    phrase = key_phrase(narration)
    assert len(phrase.split()) <= 9
    assert all(word.rstrip("…") in narration for word in phrase.split())


def test_icons_are_chosen_by_keyword() -> None:
    assert "sun" in (icon_for("The sun warms the sea") or "")
    assert "train" in (icon_for("A train carries the harvest") or "")
    assert icon_for("qwzx vvkj") is None
    assert len(icon_names()) > 1500


def test_a_video_keeps_one_theme_and_each_card_its_icon_and_phrase(tmp_path: Path) -> None:
    video = video_of(tmp_path)
    made = cards(video)
    assert [c["kind"] for c in made] == ["card"] * 3
    theme = theme_for("The water cycle")
    assert all(tuple(c["colors"]) == theme.background and c["accent"] == theme.accent
               for c in made)
    assert [c["title"] for c in made] == ["Rain", "The sun", "Trains"]
    assert made[1]["phrase"] == "The sun warms the sea and lifts the water…"
    assert "sun" in str(made[1]["icon"]) and "train" in str(made[2]["icon"])
    assert len({theme_for(f"title {n}") for n in range(40)}) == len(THEMES)


def test_the_icon_is_drawn_and_rises(tmp_path: Path) -> None:
    video = video_of(tmp_path)
    card = cards(video)[0]
    accent = str(card["accent"])
    steps = json.loads(video.manifest.read_text())["steps"]
    first_scene = steps["scene-000.narration"]["data"]["asset"]["duration"]
    early = box(accent_mask(video, 0.45, accent))  # faded in
    late = box(accent_mask(video, first_scene - 0.15, accent))
    # upper left, on the grid's margin, above the middle
    assert early[0] >= 0.08 * WIDE.width and late[3] < 0.6 * WIDE.height
    assert late[1] < early[1]  # it rises


def test_the_icon_is_drawn_with_a_caption_font_from_elsewhere(tmp_path: Path) -> None:
    """The caption font's folder has no icon font: the composer links them together."""
    ipa = find_font("IPAGothic")
    assert ipa.path.parent != find_font("DejaVu Sans").path.parent
    video = video_of(tmp_path, caption_style=CaptionStyle(font=str(ipa.path)))
    accent = str(cards(video)[0]["accent"])
    assert accent_mask(video, 0.5, accent).sum() > 200


@pytest.mark.parametrize("position", ["bottom", "middle"])
def test_captions_in_the_middle_keep_the_card_to_the_top(position: str, tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(0.3), output_dir=tmp_path)
    video = generator.generate_sync(script=SCRIPT, preset=WIDE,
                                    caption_style=CaptionStyle(position=position))
    ass = video.captions["ass"].read_text("utf-8")
    burned = (video.session / "final_output").glob("*.ass")
    assert ass and list(burned)
    accent = str(cards(video)[0]["accent"])
    top = box(accent_mask(video, 0.5, accent))[3]
    if position == "middle":
        assert top < 0.45 * WIDE.height


def test_a_themes_text_colour_reaches_its_headline_and_phrase() -> None:
    theme = Theme(("0x000000", "0x101010"), "0xff8800", text="0x112233")
    events = card_events(0, 300, title="Rain", phrase="Rain falls on the hills", icon="sun",
                         theme=theme, layout=CardLayout(360, 640), escape=lambda text: text)
    styles = {style: text for _start, _layer, _end, style, text in events}
    assert "\\1c&H332211&" in styles["CardTitle"] and "\\1c&H332211&" in styles["CardPhrase"]
    assert "\\1c&H0088FF&" in styles["CardIcon"] and "\\1c&H0088FF&" in styles["CardText"]
