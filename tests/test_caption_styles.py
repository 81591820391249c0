"""Caption styles as they are drawn: frames decoded from real videos show the karaoke
highlight following the voice, pop's few large words in the middle growing in, the lower
third's box flush left, captions at the top, and every line inside the preset's safe area.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from media import SolidImages, gray_frame, rgb_frame

from avgen import CAPTION_STYLES, CaptionStyle, Preset, Video, VideoGenerator
from avgen._models import PRESETS
from avgen.testing import ToneNarrator

LINE = "Rivers carry the water back home"
DRAFT = PRESETS["draft"]  # 360×640; safe margins 0.22 bottom, 0.12 top, 0.08 sides
WIDE = Preset("wide", 640, 360, fps=12, crf=18, encoder_preset="ultrafast")


def video_of(tmp_path: Path, text: str, style: CaptionStyle | str, preset: Preset = DRAFT,
             background: int = 0x20, seconds_per_word: float = 0.4) -> Video:
    generator = VideoGenerator(narrator=ToneNarrator(seconds_per_word),
                               image_generator=SolidImages(background), output_dir=tmp_path)
    return generator.generate_sync(script=text, preset=preset, caption_style=style)


def cue_times(video: Video) -> list[tuple[float, float]]:
    """(start, end) of each cue, from the ASS sidecar."""
    def seconds(stamp: str) -> float:
        h, m, s = stamp.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)

    return [(seconds(start), seconds(end)) for start, end in re.findall(
        r"^Dialogue: \d+,([\d:.]+),([\d:.]+),Caption", video.captions["ass"].read_text("utf-8"),
        re.MULTILINE)]


def gray(video: Video, t: float) -> np.ndarray:
    width, height, pixels = gray_frame(video.path, t)
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width)


def rgb(video: Video, t: float) -> np.ndarray:
    width, height, pixels = rgb_frame(video.path, t)
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width, 3).astype(int)


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the inked pixels, inclusive."""
    ys, xs = np.nonzero(ink)
    assert len(xs), "nothing was drawn"
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def yellow(frame: np.ndarray) -> np.ndarray:
    red, green, blue = frame[..., 0], frame[..., 1], frame[..., 2]
    return (red > 170) & (green > 140) & (blue < 140)


def white(frame: np.ndarray) -> np.ndarray:
    return (frame > 170).all(axis=2)


def test_karaoke_lights_up_each_word_as_it_is_spoken(tmp_path: Path) -> None:
    video = video_of(tmp_path, LINE, "karaoke")
    ((start, end),) = cue_times(video)
    shares, lit_right = [], []
    for fraction in (0.1, 0.45, 0.8):
        frame = rgb(video, start + (end - start) * fraction)
        lit, unlit = yellow(frame), white(frame)
        shares.append(lit.sum() / max(1, lit.sum() + unlit.sum()))
        if lit.any() and unlit.any():
            # what is lit comes first: on the left of the first line
            lit_right.append(ink_box(lit)[0] <= ink_box(unlit)[0])
    assert shares == sorted(shares) and shares[0] < 0.3 < shares[-1], shares
    assert shares[-1] - shares[0] > 0.4, shares
    assert lit_right and all(lit_right)
    # the classic style draws the same line in one colour throughout
    plain = video_of(tmp_path / "classic", LINE, "classic")
    ((start, end),) = cue_times(plain)
    assert not yellow(rgb(plain, (start + end) / 2)).any()


def test_pop_shows_a_few_words_in_the_middle_growing_in(tmp_path: Path) -> None:
    video = video_of(tmp_path, LINE, "pop")
    cues = cue_times(video)
    assert 2 <= len(cues) <= len(LINE.split())
    srt = video.captions["srt"].read_text("utf-8")
    assert all(1 <= len(block.split("\n", 2)[2].split()) <= 3
               for block in srt.strip().split("\n\n"))
    start, end = cues[0]
    settled = gray(video, start + (end - start) * 0.8) > 170
    left, top, right, bottom = ink_box(settled)
    middle = DRAFT.height / 2
    assert top < middle < bottom  # centred on the frame's middle line
    assert abs((left + right) / 2 - DRAFT.width / 2) < 0.05 * DRAFT.width
    assert bottom - top > 0.5 * 0.085 * DRAFT.width  # capitals at 8.5 % of the width
    # just after the cue starts the words are still growing: a smaller box
    early = ink_box(gray(video, start + 0.04) > 170)
    assert early[2] - early[0] < 0.97 * (right - left)


def test_lower_third_sits_flush_left_on_a_box(tmp_path: Path) -> None:
    video = video_of(tmp_path, LINE, "lower-third", preset=WIDE, background=0x90)
    ((start, end),) = cue_times(video)
    frame = gray(video, (start + end) / 2)
    box = frame < 0x60  # the dark box over the mid-grey picture
    left, top, right, bottom = ink_box(box)
    text = frame > 0xD0
    t_left, t_top, t_right, t_bottom = ink_box(text)
    assert abs(t_left - 0.06 * WIDE.width) <= 4  # the text starts at the safe area's edge
    assert left < t_left and t_right < right and top < t_top and t_bottom < bottom
    assert t_bottom < WIDE.height * (1 - 0.08) + 4 and bottom > WIDE.height * 0.75
    assert right < WIDE.width * 0.8  # the box is only as wide as the text


@pytest.mark.parametrize("line", ["הנהרות מחזירים את המים", "الأنهار تعيد الماء"])
def test_lower_third_sets_right_to_left_lines_flush_right(line: str, tmp_path: Path) -> None:
    video = video_of(tmp_path, line, "lower-third", preset=WIDE, background=0x90)
    ((start, end),) = cue_times(video)
    frame = gray(video, (start + end) / 2)
    left, _, right, _ = ink_box(frame < 0x60)  # the box
    t_left, _, t_right, _ = ink_box(frame > 0xD0)  # the text
    assert abs(t_right - (1 - 0.06) * WIDE.width) <= 4  # ends at the safe area's edge
    assert left > WIDE.width * 0.2 and left < t_left and t_right < right


def test_captions_at_the_top_stay_below_the_top_safe_margin(tmp_path: Path) -> None:
    video = video_of(tmp_path, LINE, CaptionStyle(position="top"))
    ((start, end),) = cue_times(video)
    _, top, _, bottom = ink_box(gray(video, (start + end) / 2) > 170)
    assert top >= DRAFT.caption_top_margin * DRAFT.height - 4
    assert bottom < DRAFT.height * 0.35


@pytest.mark.parametrize("style", ["classic", "karaoke", "pop", "lower-third", "boxed"])
def test_every_line_stays_inside_the_safe_area(style: str, tmp_path: Path) -> None:
    """Long words at a large size: lines that would run past the side margins are wrapped."""
    big = CAPTION_STYLES[style].replace(font_size=0.085, max_chars_per_line=40)
    text = "Photosynthesis transforms sunlight everywhere continuously."
    video = video_of(tmp_path, text, big)
    side = DRAFT.caption_side_margin * DRAFT.width
    for start, end in cue_times(video):
        frame = gray(video, start + (end - start) * 0.7)
        left, _, right, bottom = ink_box(frame > 170)
        assert left >= side - 3 and right <= DRAFT.width - side + 3, (style, left, right)
        if CAPTION_STYLES[style].position == "bottom":
            assert bottom <= DRAFT.height * (1 - DRAFT.caption_margin) + 3


def test_the_command_takes_a_style_and_its_changes(tmp_path: Path) -> None:
    script = tmp_path / "s.md"
    script.write_text(LINE + ".\n", encoding="utf-8")
    made = subprocess.run(
        [sys.executable, "-m", "avgen", "make", "--agents", "local", "--script", str(script),
         "--captions", "pop", "--caption-position", "top", "--caption-size", "0.05",
         "--caption-font", "DejaVu Sans", "--out", str(tmp_path / "out"), "-q"],
        capture_output=True, text=True, timeout=600, check=False)
    assert made.returncode == 0, made.stderr
    ass = Path(made.stdout.strip().splitlines()[-1]).with_suffix(".ass").read_text("utf-8")
    style = next(line for line in ass.splitlines() if line.startswith("Style: Caption"))
    fields = style.split(",")
    assert fields[18] == "8" and fields[2] == str(round(0.05 * 360))  # top, 5 % of 360
    assert "{\\fscx80" in ass  # pop's entrance
    refused = subprocess.run(
        [sys.executable, "-m", "avgen", "make", "--agents", "local", "--script", str(script),
         "--captions", "neon", "--out", str(tmp_path / "no")],
        capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2
    assert "caption_style" in refused.stderr and "karaoke" in refused.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("style", ["classic", "pop"])
def test_a_long_japanese_sentence_is_wrapped_inside_the_safe_area(style: str,
                                                                  tmp_path: Path) -> None:
    """Japanese has no spaces: lines break between characters (it ran off both sides)."""
    text = "日本の川は山から海へ短い距離を急いで流れるので、雨が降るとすぐに水かさが増えます。"
    video = video_of(tmp_path, text, style, seconds_per_word=6.0)  # one "word": no spaces
    side = DRAFT.caption_side_margin * DRAFT.width
    cues = cue_times(video)
    assert len(cues) >= 2
    for start, end in cues:
        left, _, right, _ = ink_box(gray(video, start + (end - start) * 0.7) > 170)
        assert left >= side - 3 and right <= DRAFT.width - side + 3, (left, right)
    srt = video.captions["srt"].read_text("utf-8")
    blocks = [block.split("\n")[2:] for block in srt.strip().split("\n\n")]
    assert "".join("".join(lines) for lines in blocks) == text
