"""No character fails a run; burned captions show the script's characters as written.

Captions fall back from the caption font to the bundled fonts and the system's (fontconfig);
what no font covers (colour emoji, or CJK on a machine without a CJK font) is left out of
the burned captions, kept in the sidecars and named in one note, before any narration.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from media import decode, mean_abs_diff, vtt_text

from avgen import Video, VideoGenerator
from avgen._models import CaptionStyle, Preset
from avgen._reporting import RunEvent
from avgen.errors import UsageError
from avgen.media._captions import Cue, to_ass
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.media._fonts import bundled_fonts, bundled_fonts_dir, coverage, uncovered
from avgen.media._graph import escape_filter_value
from avgen.testing import PatternImages, ToneNarrator

TINY = Preset("t", 160, 288, fps=12, encoder_preset="ultrafast")
DEJAVU = bundled_fonts()[0]
RAIN = "Rain 🌧 falls on 中 today."


def made(tmp_path: Path, script: str, seconds_per_word: float = 0.2,
         **fields: object) -> tuple[Video, list[RunEvent]]:
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(seconds_per_word),
                               image_generator=PatternImages(),
                               output_dir=tmp_path, on_event=events.append)
    return generator.generate_sync(script=script, **fields), events


def notes(events: list[RunEvent]) -> list[str]:
    return [e.message for e in events if e.kind == "note"]


# --------------------------------------------------------------------------- coverage


def test_coverage_names_the_font_of_each_character() -> None:
    found = coverage(DEJAVU, ["a ש", "🌧"])
    assert found["a"] == DEJAVU and found["ש"] == DEJAVU  # Hebrew is in DejaVu Sans
    assert found["🌧"] is None  # no colour emoji font anywhere in the chain
    assert " " not in found  # spaces need no glyph
    assert uncovered(DEJAVU, ["a🌧b🌧\u200d"]) == "🌧"  # each once; joiners need no glyph


def test_a_character_only_a_system_font_has_falls_back_to_it(tmp_path: Path) -> None:
    # "⌒" (U+2312) is not in the bundled DejaVu Sans; fontconfig may know a font that has it
    found = coverage(DEJAVU, ["⌒"])["⌒"]
    listed = subprocess.run(["fc-list", ":charset=2312", "file"], capture_output=True,
                            text=True, check=False).stdout if shutil.which("fc-list") else ""
    if listed.strip():
        assert found is not None and str(found.path) in listed
    else:
        assert found is None
    # and libass, drawing it, agrees: it finds a fallback exactly when the chain does
    script = tmp_path / "arc.ass"
    script.write_text(to_ass([Cue(0, 1, ("⌒",))], width=320, height=180, style=CaptionStyle(),
                             margin=0.1), encoding="utf-8")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "warning", "-f",
                           "lavfi", "-i", "color=s=320x180:d=0.5", "-vf",
                           f"ass=filename={escape_filter_value(str(script))}"
                           f":fontsdir={escape_filter_value(str(bundled_fonts_dir()))}",
                           "-f", "null", "-"], capture_output=True, text=True, check=True)
    assert ("failed to find any fallback with glyph" in proc.stderr) == (found is None)


# --------------------------------------------------------------------------- a whole run


def test_emoji_and_cjk_make_a_video_and_one_note(tmp_path: Path) -> None:
    video, events = made(tmp_path / "rain", RAIN)
    assert decode(video.path)["errors"] == ""
    missing = uncovered(DEJAVU, [RAIN])
    assert "🌧" in missing
    # one note, naming what is left out; it is in the session log too
    said = [n for n in notes(events) if n.startswith("captions:")]
    assert len(said) == 1 and all(char in said[0] for char in missing)
    log = (video.session / "logs/session.log").read_text("utf-8")
    assert said[0] in log
    # the note comes before any narration is made
    kinds = [e.kind for e in events]
    assert kinds.index("note") < kinds.index("narration")
    # the sidecars keep every character; the burned script leaves out what no font has
    captions = video.captions
    assert RAIN in captions["srt"].read_text("utf-8")
    assert RAIN in vtt_text(captions["vtt"])
    assert "🌧" not in captions["ass"].read_text("utf-8")

    # the frame shows the covered characters, and nothing (no boxes) for the rest: it
    # matches a run of the same line without them (as long: the still's slow zoom is the
    # same), and differs from one without captions
    covered = "".join(char for char in RAIN if char not in missing)
    same, _ = made(tmp_path / "covered", covered,
                   seconds_per_word=0.2 * len(RAIN.split()) / len(covered.split()))
    bare, _ = made(tmp_path / "bare", RAIN, captions=False)
    lower = (0, 288, 360, 352)  # draft preset: 360×640, captions in the lower half
    assert mean_abs_diff(video.path, bare.path, 0.4, lower) > 1
    assert mean_abs_diff(video.path, same.path, 0.4, lower) < 0.2


def test_with_captions_off_no_character_matters(tmp_path: Path) -> None:
    text = "Odd {\\b1} \\N text 🌧 中 🎉 end."
    video, events = made(tmp_path, text, captions=False)
    assert decode(video.path)["errors"] == ""
    assert not [n for n in notes(events) if n.startswith("captions:")]
    assert text in video.captions["srt"].read_text("utf-8")


def test_a_caption_font_that_is_not_found_fails_before_narration(tmp_path: Path) -> None:
    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path)
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(script=RAIN, caption_style=CaptionStyle(font="No Such Font"))
    assert caught.value.field == "caption_style.font"
    assert narrator.calls == 0


# --------------------------------------------------------------------------- escaping

W, H = 640, 120


def _gray(video_filter: str) -> bytes:
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                           f"color=black:s={W}x{H}:d=1", "-vf", video_filter, "-frames:v", "1",
                           "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          capture_output=True, check=True)
    assert len(proc.stdout) == W * H
    return proc.stdout


def _libass(text: str, folder: Path) -> bytes:
    style = CaptionStyle(outline=0.0, font_size=0.25, max_chars_per_line=80)
    script = folder / "line.ass"
    script.write_text(to_ass([Cue(0, 1, (text,))], width=W, height=H, style=style, margin=0.1),
                      encoding="utf-8")
    return _gray(f"ass=filename={escape_filter_value(str(script))}"
                 f":fontsdir={escape_filter_value(str(bundled_fonts_dir()))}")


def _drawtext(text: str, folder: Path) -> bytes:
    """The text drawn by ffmpeg's drawtext from a file: no ASS parsing at all."""
    source = folder / "line.txt"
    source.write_text(text, encoding="utf-8")
    font = bundled_fonts_dir() / "DejaVuSans.ttf"
    return _gray(f"drawtext=fontfile={escape_filter_value(str(font))}"
                 f":textfile={escape_filter_value(str(source))}:expansion=none:fontsize=26"
                 ":fontcolor=white:x=20:y=40")


Grid = list[list[int]]


def _ink(pixels: bytes, cols: int = 96, rows: int = 16) -> tuple[Grid, int, int]:
    """The inked pixels scaled to a grid over their bounding box, and the box's size."""
    ink = [(i % W, i // W) for i, value in enumerate(pixels) if value > 110]
    assert ink, "nothing was drawn"
    x0, x1 = min(x for x, _ in ink), max(x for x, _ in ink) + 1
    y0, y1 = min(y for _, y in ink), max(y for _, y in ink) + 1
    grid = [[0] * cols for _ in range(rows)]
    for x, y in ink:
        grid[(y - y0) * rows // (y1 - y0)][(x - x0) * cols // (x1 - x0)] = 1
    return grid, x1 - x0, y1 - y0


def _mismatch(a: Grid, b: Grid) -> float:
    differ = sum(p != q for ra, rb in zip(a, b, strict=True) for p, q in zip(ra, rb, strict=True))
    return differ / max(1, sum(map(sum, a)) + sum(map(sum, b)))


@pytest.mark.parametrize("text", ["a\\b {c} \\N x}", "{\\b1}bold\\h"])
def test_backslashes_and_braces_are_drawn_as_written(text: str, tmp_path: Path) -> None:
    reference, _, _ = _ink(_drawtext(text, tmp_path))
    drawn, _, height = _ink(_libass(text, tmp_path))
    # what avgen wrote before (\ → /, { → (, } → )) looks measurably different
    substituted, _, _ = _ink(_libass(
        text.replace("\\", "/").replace("{", "(").replace("}", ")"), tmp_path))
    assert height < 40  # one line: "\N" did not break it
    assert _mismatch(drawn, reference) < 0.26
    assert _mismatch(substituted, reference) > _mismatch(drawn, reference) + 0.12


def test_the_escapes_in_the_ass_text() -> None:
    style = CaptionStyle()
    script = to_ass([Cue(0, 1, ("a\\b {c} \\N \\n \\h \\{d}",))], width=320, height=180,
                    style=style, margin=0.1, omit="")
    line = script.splitlines()[-1]
    assert line.endswith(",a\\b \\{c\\} \\\u2060N \\\u2060n \\\u2060h \\\\{d\\}")


# --------------------------------------------------------------------------- any text

TEXT = st.text(alphabet=st.one_of(st.characters(categories=["L", "N", "P", "S", "Zs"]),
                                  st.sampled_from("\\{}🌧🎉中👨\u200d👩 ")),
               min_size=1, max_size=24).filter(lambda t: any(c.isalnum() for c in t))


@settings(max_examples=15)
@given(text=TEXT, captions=st.booleans())
def test_any_text_makes_a_video_and_its_sidecars_keep_it(
        text: str, captions: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("any")
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.1), output_dir=folder,
                               on_event=events.append)
    video = generator.generate_sync(script=text, preset=TINY, captions=captions)
    assert decode(video.path)["errors"] == ""
    srt = video.captions["srt"].read_text("utf-8")
    said = " ".join(line for block in srt.strip().split("\n\n")
                    for line in block.splitlines()[2:])
    # the sidecars say exactly what the script narrates (the script step reads the text
    # as Markdown-ish, so compare with the scenes it made)
    script = json.loads((video.session / "scripts/script.json").read_text("utf-8"))
    narrated = " ".join(scene["narration"] for scene in script["scenes"])
    assert said.split() == narrated.split()
    vtt = vtt_text(video.captions["vtt"])
    assert all(char in vtt for char in narrated if char not in "&<> \n")
    glyph_notes = [n for n in notes(events) if n.startswith("captions:")]
    assert len(glyph_notes) == (1 if captions and uncovered(DEJAVU, [text]) else 0)


def test_resume_of_a_script_with_emoji_finishes(tmp_path: Path) -> None:
    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path)
    video = generator.generate_sync(script="Sun ☀ and rain 🌧. Then 🎉!",
                                    caption_style=CaptionStyle(
                                        font=str(bundled_fonts_dir() / "DejaVuSans-Bold.ttf")))
    video.path.unlink()
    again = generator.resume_sync(video.session)
    assert decode(again.path)["errors"] == ""
    assert narrator.calls == 1  # the narration is reused, only the video is made again
