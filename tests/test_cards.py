"""Procedural cards that look designed: one theme per video, an icon chosen by keyword from
the bundled icon font, the title and a key phrase on a grid, gentle motion — checked on
frames decoded from real videos."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from media import make_wav, mean_abs_diff, rgb_frame

from avgen import CaptionStyle, Preset, Scene, Video, VideoGenerator
from avgen._models import AudioAsset, CardVisual, Segment
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
from avgen.media._composer import FFmpegComposer
from avgen.media._fonts import find_font
from avgen.media._timeline import Timeline
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
    # Chinese and Japanese: sentences end at 。, clauses at 、 and ，
    assert key_phrase("駅はどこにあるかを教えてください。雨が降ります。") == (
        "駅はどこにあるかを教えてください")
    assert key_phrase("雨が降ると、川の水かさはすぐに増えて、海へ急いで流れていきます。"
                      "速いです。") == "雨が降ると"
    assert key_phrase("日本の川は山から海へ短い距離を急いで流れるので、雨が降るとすぐに水かさが"
                      "増えます。") == "日本の川は山から海へ短い距離を急いで…"  # a long clause: cut


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
    column = slice(0, int(0.28 * WIDE.width))  # a landscape card's icon column
    early = box(accent_mask(video, 0.45, accent)[:, column])  # faded in
    late = box(accent_mask(video, first_scene - 0.15, accent)[:, column])
    # on the left, on the grid's margin, around the middle of the space
    assert early[0] >= 0.07 * WIDE.width and late[3] < 0.75 * WIDE.height
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


# --------------------------------------------------------------------------- composition

TALL = Preset("tall", 360, 640, fps=12, crf=18, encoder_preset="ultrafast")
TEAL = THEMES[1]  # white text, amber accent


def card_video(tmp_path: Path, preset: Preset, card: CardVisual, narration: str, *,
               captions: bool, name: str = "card.mp4") -> Path:
    """One scene of ``card`` under ``narration``, composed by the real composer."""
    wav = make_wav(tmp_path / f"{name}.wav", 2.0)
    timeline = Timeline.build(preset, [(Scene(0, narration, title=card.title),
                                        AudioAsset(wav, 2.0, (Segment(narration, 0, 2.0),)),
                                        card)], burn_captions=captions)
    out = tmp_path / name
    asyncio.run(FFmpegComposer().compose(timeline, out))
    return out


def white_mask(path: Path, t: float) -> np.ndarray:
    width, height, pixels = rgb_frame(path, t)
    frame = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3)
    return (frame > 215).all(axis=2)


def amber_mask(path: Path, t: float) -> np.ndarray:
    width, height, pixels = rgb_frame(path, t)
    frame = np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3).astype(int)
    target = np.array([int(TEAL.accent[i:i + 2], 16) for i in (2, 4, 6)])
    return np.abs(frame - target).sum(axis=2) < 60


def test_with_captions_the_card_leaves_out_the_phrase_they_say(tmp_path: Path) -> None:
    narration = "Rain falls on the hills, and gathers into streams that run to the sea."
    said = CardVisual("Rain", TEAL.background, phrase=key_phrase(narration), icon="cloud-rain",
                      accent=TEAL.accent)
    own = attrs.evolve(said, phrase="Chapter two")
    wav = make_wav(tmp_path / "n.wav", 2.0)

    def shown(card: CardVisual, captions: bool) -> CardVisual:
        timeline = Timeline.build(TALL, [(Scene(0, narration), AudioAsset(
            wav, 2.0, (Segment(narration, 0, 2.0),)), card)], burn_captions=captions)
        return timeline.cards[0][2]

    assert shown(said, captions=True).phrase == ""  # the captions say it
    assert shown(said, captions=False).phrase == "Rain falls on the hills"
    assert shown(own, captions=True).phrase == "Chapter two"  # the captions do not
    # drawn: with captions the card is the heading and the icon alone
    with_captions = card_video(tmp_path, TALL, said, narration, captions=True, name="a.mp4")
    bare = card_video(tmp_path, TALL, attrs.evolve(said, phrase=""), narration, captions=True,
                      name="b.mp4")
    above_captions = (0, 0, TALL.width, int(0.7 * TALL.height))
    assert mean_abs_diff(with_captions, bare, 1.2, above_captions) < 0.5
    without = card_video(tmp_path, TALL, said, narration, captions=False, name="c.mp4")
    assert mean_abs_diff(without, bare, 1.2, above_captions) > 1.0  # the phrase is drawn


@pytest.mark.parametrize(("title", "phrase", "right"), [
    ("מחזור המים", "הגשם יורד על ההרים", True),
    ("دورة الماء", "المطر يسقط على التلال", True),
    ("The water cycle", "Rain falls on the hills", False)])
@pytest.mark.parametrize("preset", [TALL, WIDE], ids=["portrait", "landscape"])
def test_right_to_left_cards_are_set_flush_right(title: str, phrase: str, right: bool,
                                                 preset: Preset, tmp_path: Path) -> None:
    card = CardVisual(title, TEAL.background, phrase=phrase, icon="cloud-rain",
                      accent=TEAL.accent)
    video = card_video(tmp_path, preset, card, "Words.", captions=False)
    text = box(white_mask(video, 1.2))
    icon = box(amber_mask(video, 1.2))
    margin, middle = 0.12 * preset.width, preset.width / 2
    centre = (icon[0] + icon[2]) / 2 - (text[0] + text[2]) / 2
    if preset is WIDE:  # icon and text side by side, as one group in the middle
        assert centre > 0 if right else centre < 0, (icon, text)
        assert abs((min(icon[0], text[0]) + max(icon[2], text[2])) / 2 - middle) < 0.1 * middle
    elif right:  # flush right: icon, rule and text against the right margin
        assert icon[2] > preset.width - margin and text[2] > preset.width - margin
        assert icon[0] > middle and text[0] > margin, (icon, text)
    else:  # the mirror image
        assert icon[0] < margin and text[0] < margin
        assert icon[2] < middle and text[2] < preset.width - margin, (icon, text)


def test_a_landscape_card_sets_its_icon_beside_the_text(tmp_path: Path) -> None:
    card = CardVisual("The water cycle", TEAL.background, phrase="Rain falls on the hills",
                      icon="cloud-rain", accent=TEAL.accent)
    wide = card_video(tmp_path, WIDE, card, "Words.", captions=False, name="wide.mp4")
    text, icon = box(white_mask(wide, 1.2)), box(amber_mask(wide, 1.2)[:, :WIDE.width // 4])
    assert text[0] > icon[2]  # beside it
    assert icon[1] < text[3] and text[1] < icon[3]  # at the same height
    middle = (text[1] + text[3]) / 2
    assert abs((icon[1] + icon[3]) / 2 - middle) < 0.1 * WIDE.height  # centred together
    tall = card_video(tmp_path, TALL, card, "Words.", captions=False, name="tall.mp4")
    text, icon = box(white_mask(tall, 1.2)), box(amber_mask(tall, 1.2))
    assert text[1] > icon[1] + 0.1 * TALL.height  # below it, in a portrait frame
