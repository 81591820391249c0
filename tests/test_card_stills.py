"""Cards' text that stands still is drawn once and put on its frames by ffmpeg's overlay
(`avgen.media._graph.StillTexts`): the video looks as it did when libass drew it into every
frame — checked frame by frame against that render, on lossless encodes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from media import _ffmpeg, make_image, make_wav

from avgen import CaptionStyle, Preset, Scene, Transition
from avgen._models import AudioAsset, CardVisual, ImageAsset, Segment
from avgen.media._captions import StillText, to_ass
from avgen.media._cards import STILL_AFTER_CS
from avgen.media._composer import MAX_STILL_TEXTS, FFmpegComposer, burn_scripts
from avgen.media._ffmpeg import ffmpeg_exe, has_filter_option
from avgen.media._fonts import bundled_fonts_dir
from avgen.media._graph import StillTexts, compile_graph, fitted_still_texts
from avgen.media._timeline import Timeline

PORTRAIT = Preset("portrait", 360, 640, fps=12, crf=0, encoder_preset="ultrafast",
                  caption_margin=0.08)
LANDSCAPE = Preset("landscape", 640, 360, fps=15, crf=0, encoder_preset="ultrafast",
                   caption_margin=0.08)

CARDS = {
    "portrait, headline and phrase": (
        PORTRAIT, CardVisual("Rain on the hills", phrase="Water gathers into the streams",
                             icon="cloud-rain", accent="0xf87171")),
    "landscape, icon beside the text": (
        LANDSCAPE, CardVisual("The sun warms the sea", phrase="and lifts the water up",
                              icon="sun", colors=("0x0f172a", "0x334155"))),
    "Hebrew, set flush right": (
        PORTRAIT, CardVisual("גשם על ההרים", phrase="המים נאספים לנחלים", icon="cloud")),
    "a headline wider than its lines were planned": (
        PORTRAIT, CardVisual("WWWWWWWWW MMMMMMMMM WWWWWWWWW MMMMMMMMM", phrase="WWW MMM WWW",
                             icon="train-front")),
}


def scene(tmp: Path, index: int, seconds: float, visual: object) -> tuple[Scene, AudioAsset,
                                                                          object]:
    text = ("Every drop is on a journey.", "It never stops.", "High above, the air is cold.")
    said = text[index % 3]
    wav = make_wav(tmp / f"n{index}.wav", seconds, freq=300 + 100 * index)
    return Scene(index, said), AudioAsset(wav, seconds, (Segment(said, 0.0, seconds),)), visual


def all_by_libass(timeline: Timeline, target: Path, tmp: Path) -> Path:
    """The same timeline with libass drawing every card's text into every frame."""
    ass = tmp / "all.ass"
    ass.write_text(timeline.ass_script(), encoding="utf-8")
    args = compile_graph(timeline, target, ass=ass, fonts_dir=bundled_fonts_dir())
    _ffmpeg(*args)
    return target


def frame_differences(a: Path, b: Path, tmp: Path) -> tuple[list[float], list[float]]:
    """Per frame: SSIM of ``b`` against ``a``, and the mean squared error of its pixels."""
    ssim, psnr = tmp / "ssim.log", tmp / "psnr.log"
    _ffmpeg("-i", str(a), "-i", str(b), "-lavfi",
            f"[0:v]split[a1][a2];[1:v]split[b1][b2];[a1][b1]ssim=stats_file={ssim};"
            f"[a2][b2]psnr=stats_file={psnr}", "-f", "null", "-")
    similar = [float(re.search(r"All:([0-9.]+)", line).group(1))  # type: ignore[union-attr]
               for line in ssim.read_text().splitlines()]
    errors = [float(re.search(r"mse_avg:([0-9.]+)", line).group(1))  # type: ignore[union-attr]
              for line in psnr.read_text().splitlines()]
    return similar, errors


@pytest.mark.parametrize("case", CARDS)
def test_cards_look_as_libass_draws_them_on_every_frame(case: str, tmp_path: Path) -> None:
    preset, card = CARDS[case]
    other = CardVisual("Evaporation", phrase="The vapour rises", icon="wind",
                       colors=("0x1e3a8a", "0x7c3aed"))
    timeline = Timeline.build(preset, [scene(tmp_path, 0, 1.9, card),
                                       scene(tmp_path, 1, 1.4, other),
                                       scene(tmp_path, 2, 0.6, card)],  # too short to stand
                              transition=Transition("fade", 0.3))
    stills = timeline.still_texts()
    assert len(stills) == 2  # the last card ends before its text stands still
    made = tmp_path / "made.mp4"
    asyncio.run(FFmpegComposer().compose(timeline, made))
    before = all_by_libass(timeline, tmp_path / "libass.mp4", tmp_path)
    similar, errors = frame_differences(before, made, tmp_path)
    assert len(similar) == timeline.frames
    # the text is there, and only once, on every frame: the first frame it stands still on,
    # the last one, and the frame after it (the next card's first) included
    assert min(similar) >= 0.995, (min(similar), similar.index(min(similar)))
    assert max(errors) <= 6.0, (max(errors), errors.index(max(errors)))


def test_stills_across_parts_look_as_one_pass_by_libass(tmp_path: Path) -> None:
    """A long video is rendered in parts; each part draws the stills its frames show."""
    still = make_image(tmp_path / "still.png", 360, 640)
    card = CardVisual("Rain on the hills", phrase="Water gathers", icon="cloud-rain")
    parts = [scene(tmp_path, n, 1.0 + 0.13 * n,
                   ImageAsset(still, 360, 640) if n % 2 else card) for n in range(5)]
    timeline = Timeline.build(PORTRAIT, parts, transition=Transition("fade", 0.25),
                              style=CaptionStyle(position="top"))
    assert len(timeline.still_texts()) == 3
    made = tmp_path / "made.mp4"
    asyncio.run(FFmpegComposer(max_scenes_per_pass=1).compose(timeline, made))
    similar, errors = frame_differences(all_by_libass(timeline, tmp_path / "one.mp4", tmp_path),
                                        made, tmp_path)
    assert len(similar) == timeline.frames
    assert min(similar) >= 0.995 and max(errors) <= 6.0, (min(similar), max(errors))


def test_the_scripts_split_the_still_text_from_what_moves() -> None:
    card = CardVisual("Rain", phrase="It falls on the hills", icon="cloud-rain")
    cards = [(0.0, 2.0, card), (2.0, 2.5, card), (2.5, 6.0, card)]
    fields = {"width": 360, "height": 640, "style": CaptionStyle(), "margin": 0.08,
              "cards": cards}

    def events(part: str) -> list[tuple[str, str, str]]:
        script = to_ass([], part=part, **fields)  # type: ignore[arg-type]
        return [tuple(line.split(",", 4)[1:4]) for line in script.splitlines()  # type: ignore[misc]
                if line.startswith("Dialogue:")]

    everything, moving, still = events("all"), events("moving"), events("still")
    assert len(everything) == len(moving) == 12  # icon, rule, headline, phrase per card
    cut = f"0:00:00.{STILL_AFTER_CS:02d}"
    standing = ("CardText", "CardTitle", "CardPhrase")
    # the first card's text moves until it stands still; the second is too short to
    assert sorted(e for e in moving if e[0] == "0:00:00.00") == sorted(
        (e[0], cut if e[2] in standing else e[1], e[2])
        for e in everything if e[0] == "0:00:00.00")
    assert [e for e in moving if e[0] == "0:00:02.00"] == [
        e for e in everything if e[0] == "0:00:02.00"]
    # the still script holds the two that stand, at seconds 0–2 and 2–4, and nothing else
    assert sorted(still) == sorted([(start, end, style) for start, end in (
        ("0:00:00.00", "0:00:02.00"), ("0:00:02.00", "0:00:04.00")) for style in standing])
    script = to_ass([], part="still", **fields)  # type: ignore[arg-type]
    assert "\\move" not in script and "\\fad" not in script
    with pytest.raises(ValueError, match="part must be one of all, moving, still"):
        to_ass([], part="some", **fields)  # type: ignore[arg-type]


@settings(deadline=None, max_examples=60)
@given(found=st.lists(st.one_of(st.none(), st.tuples(
    st.integers(0, 359), st.integers(0, 639), st.integers(1, 360), st.integers(1, 640))),
    min_size=1, max_size=6))
def test_fitted_boxes_hold_what_ffmpeg_found_on_even_pixels_inside_the_frame(
        found: list[tuple[int, int, int, int] | None], tmp_path_factory: pytest.TempPathFactory
        ) -> None:
    folder = tmp_path_factory.mktemp("fit")
    card = CardVisual("Rain", phrase="It falls", icon="cloud-rain")
    timeline = Timeline.build(PORTRAIT, [scene(folder, 0, 1.5, card)])
    spans = [StillText(700 + n, 1500, (0, 0, 360, 640)) for n in range(len(found))]
    lines = ["[Parsed_ass_3 @ 0x55] Loading font file 'lucide.ttf'"]
    for n, rect in enumerate(found):
        if rect is None:  # nothing drawn: ffmpeg reports no box
            lines.append(f"[bbox@still{n} @ 0x7f] n:0 pts:0 pts_time:0")
            continue
        x, y, width, height = rect
        width, height = min(width, 360 - x), min(height, 640 - y)
        lines.append(f"[bbox@still{n} @ 0x7f] n:0 pts:0 pts_time:0 x1:{x} x2:{x + width - 1} "
                     f"y1:{y} y2:{y + height - 1} w:{width} h:{height} "
                     f"crop={width}:{height}:{x}:{y} drawbox={x}:{y}:{width}:{height}")
    fitted = fitted_still_texts(timeline, StillTexts(Path("stills.ass"), spans), "\n".join(lines))
    for rect, still, before in zip(found, fitted.spans, spans, strict=True):
        assert (still.start_ms, still.end_ms) == (before.start_ms, before.end_ms)
        if rect is None:
            assert still.box == (0, 0, 0, 0)
            continue
        x, y, width, height = rect
        width, height = min(width, 360 - x), min(height, 640 - y)
        bx, by, bw, bh = still.box
        assert all(value % 2 == 0 for value in still.box)
        assert bx >= 0 and by >= 0 and bx + bw <= 360 and by + bh <= 640
        # the box holds what was found, with at most a few pixels more on each side
        assert x - 3 <= bx <= x and y - 3 <= by <= y
        assert x + width <= bx + bw <= x + width + 3 and y + height <= by + bh <= y + height + 3


def scripts_of(timeline: Timeline) -> tuple[list[str], StillTexts | None]:
    written: list[str] = []

    def keep(suffix: str, text: str) -> Path:
        written.append(text)
        return Path(f"script{len(written)}{suffix}")

    _ass, stills = burn_scripts(timeline, {}, keep)
    return written, stills


def test_beyond_the_most_cards_or_on_an_older_ffmpeg_libass_draws_it_all(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    card = CardVisual("Rain", phrase="It falls", icon="cloud-rain")

    def timeline(cards: int) -> Timeline:
        return Timeline.build(PORTRAIT, [scene(tmp_path, n, 1.0, card) for n in range(cards)])

    few, many = timeline(MAX_STILL_TEXTS), timeline(MAX_STILL_TEXTS + 1)
    written, stills = scripts_of(few)
    assert stills is not None and len(stills.spans) == MAX_STILL_TEXTS and len(written) == 2
    written, stills = scripts_of(many)  # overlays on every frame would cost more than they save
    assert stills is None and written == [many.ass_script()]
    # an ffmpeg whose setparams has no alpha_mode (before 8): everything by libass
    older = tmp_path / "ffmpeg"
    older.write_text('#!/bin/sh\ncase "$*" in *filter=setparams*) exit 0;; esac\n'
                     f'exec "{ffmpeg_exe()}" "$@"\n')
    older.chmod(0o755)
    monkeypatch.setenv("AVGEN_FFMPEG", str(older))
    assert not has_filter_option("setparams", "alpha_mode")
    written, stills = scripts_of(few)
    assert stills is None and written == [few.ass_script()]
