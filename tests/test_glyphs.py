"""No character fails a run; burned captions show the script's characters as written.

Captions fall back from the caption font to the bundled fonts (DejaVu Sans, then Noto Emoji
for emoji) and the system's (fontconfig); the ASS text names the font of every character
the caption font lacks, so libass draws it in that font whatever the machine has. A colour
emoji font (which libass cannot draw) never counts. What no font covers (CJK on a machine
without a CJK font) is left out of the burned captions, kept in the sidecars and named in
one note before any narration: an event, a `UserWarning` and one of the `Video`'s notes.

Every test here runs under fonts it sets up (`fonts.fontconfig_with`): a server (no system
font), a desktop (a colour bitmap emoji font, as ``fonts-noto-color-emoji`` installs), and
either with an outline font that has the CJK characters.
"""

from __future__ import annotations

import json
import struct
import subprocess
import warnings
from pathlib import Path

import pytest
from fonts import COLOUR_ONLY, MACHINES, colour_emoji_font, machine, outline_font
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from media import decode, mean_abs_diff, vtt_text

from avgen import Video, VideoGenerator
from avgen._models import CaptionStyle, Preset, VideoRequest
from avgen._reporting import RunEvent
from avgen.agents.local._script import LocalScriptWriter
from avgen.errors import ConfigurationError, UsageError
from avgen.media._captions import Cue, to_ass
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.media._fonts import (
    EMOJI_FAMILY,
    FontFile,
    _family_name,
    bundled_fonts,
    bundled_fonts_dir,
    coverage,
    faces,
    find_font,
    uncovered,
)
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


def libass(script: str, folder: Path, size: str = "640x360") -> tuple[bytes, str]:
    """A frame of ``script`` drawn by the libass of the ffmpeg avgen runs (bundled fonts
    as its fontsdir), as gray pixels, and what libass said."""
    path = folder / "line.ass"
    path.write_text(script, encoding="utf-8")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "warning", "-f",
                           "lavfi", "-i", f"color=black:s={size}:d=0.5", "-vf",
                           f"ass=filename={escape_filter_value(str(path))}"
                           f":fontsdir={escape_filter_value(str(bundled_fonts_dir()))}",
                           "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                          capture_output=True, check=True)
    return proc.stdout, proc.stderr.decode("utf-8", "replace")


def caption(text: str, drawn_in: dict[str, str | None]) -> str:
    return to_ass([Cue(0, 1, (text,))], width=640, height=360, style=CaptionStyle(),
                  margin=0.1, faces=drawn_in)


def differ(a: bytes, b: bytes) -> int:
    """How many pixels of two gray frames differ clearly."""
    return sum(abs(p - q) > 60 for p, q in zip(a, b, strict=True))


# --------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("kind", MACHINES)
def test_coverage_names_the_font_of_each_character(
        kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    machine(kind, monkeypatch, tmp_path)
    found = coverage(DEJAVU, ["a ש", "🌧", "中"])
    assert found["a"] == DEJAVU and found["ש"] == DEJAVU  # Hebrew is in DejaVu Sans
    by = found["🌧"]
    assert by is not None and by.family == EMOJI_FAMILY  # the bundled monochrome emoji
    assert by.path.parent == bundled_fonts_dir()
    assert found["中"] is None  # no CJK font here
    assert " " not in found  # spaces need no glyph
    # each once; joiners and variation selectors need no glyph
    assert uncovered(DEJAVU, ["a中b中\u200d❤\ufe0f🌧"]) == "中"


def test_a_colour_emoji_font_never_counts(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    machine("desktop", monkeypatch, tmp_path)
    listed = subprocess.run(["fc-list", f":charset={ord(COLOUR_ONLY):x}", "file"],
                            capture_output=True, text=True, check=True).stdout
    assert "TestColourEmoji.ttf" in listed  # fontconfig says it has the character
    colour = FontFile.read(tmp_path / "colour" / "TestColourEmoji.ttf")
    assert colour.covers(COLOUR_ONLY) and colour.covers("🌧") and not colour.drawable
    assert coverage(DEJAVU, [COLOUR_ONLY])[COLOUR_ONLY] is None
    assert coverage(DEJAVU, ["🌧"])["🌧"].family == EMOJI_FAMILY  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError, match="colour pictures"):
        find_font(str(tmp_path / "colour" / "TestColourEmoji.ttf"))
    # and libass, left to fontconfig, draws the colour font's characters as boxes: the
    # reason it never counts
    boxes, _ = libass(caption("🌧🌈", {}), tmp_path)
    nothing, _ = libass(caption("", {}), tmp_path)
    assert differ(boxes, nothing) > 40  # two hollow boxes


@pytest.mark.parametrize("kind", MACHINES)
def test_a_character_only_a_system_font_has_falls_back_to_it(
        kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    machine(kind, monkeypatch, tmp_path, cjk=True)
    found = coverage(DEJAVU, ["中"])["中"]
    assert found is not None and found.path == tmp_path / "outline" / "TestOutline.ttf"
    drawn_in = faces(DEJAVU, ["a 中 🌧"])
    assert drawn_in == {"中": "Test Outline", "🌧": EMOJI_FAMILY}
    script = caption("a 中 🌧", drawn_in)
    assert ",a {\\fnTest Outline}中{\\fn} {\\fnNoto Emoji}🌧{\\fn}" in script
    # libass draws each in the font named, needing no fallback of its own
    shown, said = libass(script, tmp_path)
    assert "fallback" not in said
    without, _ = libass(caption("a", drawn_in), tmp_path)
    assert differ(shown, without) > 100


def test_libass_draws_the_same_whatever_the_machine_has(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    frames = {}
    for kind in MACHINES:
        with monkeypatch.context() as patched:
            machine(kind, patched, tmp_path / kind)
            script = caption("Party 🎉 time 🌧 ⌒", faces(DEJAVU, ["Party 🎉 time 🌧 ⌒"]))
            frames[kind], said = libass(script, tmp_path / kind)
            assert "fallback" not in said
    assert frames["server"] == frames["desktop"]
    # the emoji are drawn: without them the frame differs
    plain, _ = libass(caption("Party time", {}), tmp_path)
    assert differ(frames["server"], plain) > 100


# --------------------------------------------------------------------------- a whole run


@pytest.mark.parametrize("kind", MACHINES)
def test_emoji_are_drawn_and_a_character_no_font_has_is_one_note(
        kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    machine(kind, monkeypatch, tmp_path / "fonts")
    with pytest.warns(UserWarning, match="中") as warned:
        video, events = made(tmp_path / "rain", RAIN)
    assert decode(video.path)["errors"] == ""
    assert uncovered(DEJAVU, [RAIN]) == "中"
    # one note, naming what is left out and a package that has it: an event, a warning,
    # one of the video's notes, in the session log and the manifest
    said = [n for n in notes(events) if n.startswith("captions:")]
    assert len(said) == 1 and "中" in said[0] and "fonts-noto-cjk" in said[0]
    assert "🌧" not in said[0]
    assert [str(w.message) for w in warned if "中" in str(w.message)] == said
    assert said[0] in video.notes
    log = (video.session / "logs/session.log").read_text("utf-8")
    assert said[0] in log
    manifest = json.loads(video.manifest.read_text("utf-8"))
    assert said[0] in manifest["notes"]
    # the note comes before any narration is made
    kinds = [e.kind for e in events]
    assert kinds.index("note") < kinds.index("narration")
    # the sidecars keep every character; the burned script draws the emoji in the
    # bundled emoji font and leaves out what no font has
    captions = video.captions
    assert RAIN in captions["srt"].read_text("utf-8")
    assert RAIN in vtt_text(captions["vtt"])
    ass = captions["ass"].read_text("utf-8")
    assert "{\\fnNoto Emoji}🌧{\\fn}" in ass and "中" not in ass

    # the frame shows the emoji, and nothing (no box) for 中: it matches a run of the
    # same line without 中 (as long: the still's slow zoom is the same), and differs from
    # one without the emoji
    lower = (0, 288, 360, 352)  # draft preset: 360×640, captions in the lower half
    same, _ = made(tmp_path / "same", RAIN.replace("中 ", ""),
                   seconds_per_word=0.2 * len(RAIN.split()) / (len(RAIN.split()) - 1))
    assert mean_abs_diff(video.path, same.path, 0.4, lower) < 0.2
    bare, _ = made(tmp_path / "bare", RAIN.replace("中 ", "").replace("🌧 ", ""),
                   seconds_per_word=0.2 * len(RAIN.split()) / (len(RAIN.split()) - 2))
    assert mean_abs_diff(video.path, bare.path, 0.4, lower) > 0.5


def test_with_a_cjk_font_nothing_is_left_out(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    machine("desktop", monkeypatch, tmp_path / "fonts", cjk=True)
    video, events = made(tmp_path / "rain", RAIN)
    assert not [n for n in notes(events) if n.startswith("captions:")]
    assert video.notes == ()
    ass = video.captions["ass"].read_text("utf-8")
    assert "{\\fnTest Outline}中{\\fn}" in ass


def test_with_captions_off_no_character_matters(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    machine("server", monkeypatch, tmp_path / "fonts")
    text = "Odd {\\b1} \\N text 🌧 中 🎉 end."
    video, events = made(tmp_path, text, captions=False)
    assert decode(video.path)["errors"] == ""
    assert not [n for n in notes(events) if n.startswith("captions:")]
    assert text in video.captions["srt"].read_text("utf-8")


def test_with_captions_off_what_a_card_cannot_draw_is_a_note(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    machine("desktop", monkeypatch, tmp_path / "fonts")
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(0.2), output_dir=tmp_path,
                               on_event=events.append)  # no pictures: every scene a card
    video = generator.generate_sync(script="# Rain 中\n\n## Rain 中 🌧\n\nRain falls.",
                                    captions=False)
    said = [n for n in notes(events) if n.startswith("cards:")]
    assert len(said) == 1 and "中" in said[0] and "fonts-noto-cjk" in said[0]
    assert "🌧" not in said[0]  # drawn from the bundled emoji font
    assert said == [n for n in video.notes if n.startswith("cards:")]


def test_a_caption_font_that_is_not_found_fails_before_narration(tmp_path: Path) -> None:
    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path)
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(script=RAIN, caption_style=CaptionStyle(font="No Such Font"))
    assert caught.value.field == "caption_style.font"
    assert narrator.calls == 0


def test_a_colour_font_as_the_caption_font_is_refused_before_narration(
        tmp_path: Path) -> None:
    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path)
    colour = colour_emoji_font(tmp_path / "TestColourEmoji.ttf")
    with pytest.raises(UsageError, match="colour pictures") as caught:
        generator.generate_sync(script=RAIN, caption_style=CaptionStyle(font=str(colour)))
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
                    style=style, margin=0.1)
    line = script.splitlines()[-1]
    assert line.endswith(",a\\b \\{c\\} \\\u2060N \\\u2060n \\\u2060h \\\\{d\\}")
    # a font change right after a backslash: the backslash stays a backslash
    script = to_ass([Cue(0, 1, ("a\\🌧 中 b",))], width=320, height=180, style=style,
                    margin=0.1, faces={"🌧": "Noto Emoji", "中": None})
    line = script.splitlines()[-1]
    assert line.endswith(",a\\\u2060{\\fnNoto Emoji}🌧{\\fn} b")


# --------------------------------------------------------------------------- any text

TEXT = st.text(alphabet=st.one_of(st.characters(categories=["L", "N", "P", "S", "Zs"]),
                                  st.sampled_from("\\{}🌧🎉中👨\u200d👩 ")),
               min_size=1, max_size=24).filter(lambda t: any(c.isalnum() for c in t))


def narrates(text: str) -> bool:
    """Whether the script writer finds something to say in the text."""
    try:
        LocalScriptWriter().check(VideoRequest(script=text))
    except UsageError:
        return False
    return True


@settings(max_examples=15)
@given(text=TEXT, captions=st.booleans(), kind=st.sampled_from(MACHINES))
@example(text="AA:", captions=False, kind=MACHINES[0])
@example(text="Sun ☀ and rain 🌧", captions=True, kind=MACHINES[-1])
def test_any_text_makes_a_video_and_its_sidecars_keep_it(
        text: str, captions: bool, kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("any")
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.1), output_dir=folder,
                               on_event=events.append)
    with pytest.MonkeyPatch.context() as patched, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the note on missing characters
        machine(kind, patched, folder / "fonts")
        if not narrates(text):
            # only a speaker label or a stage direction: refused up front, nothing made
            with pytest.raises(UsageError, match=r"^script: contains nothing to narrate"):
                generator.generate_sync(script=text, preset=TINY, captions=captions)
            assert not any(folder.glob("*/video.mp4"))
            assert not [event for event in events if event.kind in ("session", "script")]
            return
        video = generator.generate_sync(script=text, preset=TINY, captions=captions)
        missing = uncovered(DEJAVU, [text])
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
    assert len(glyph_notes) == (1 if captions and missing else 0)
    assert all(char in glyph_notes[0] for char in missing) if glyph_notes else True
    assert video.notes == tuple(notes(events))


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


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(family=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                      min_size=1, max_size=24).filter(str.strip),
       collection=st.booleans())
def test_the_catalogue_reads_the_family_a_full_parse_reads(
        family: str, collection: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The catalogue of installed fonts reads only each file's table directory and name
    table (a desktop has thousands of fonts); it names the same family as a full parse, in
    a single font and in a collection (``.ttc``)."""
    folder = tmp_path_factory.mktemp("family")
    path = outline_font(folder / "one.ttf", "ab", family=family)
    if collection:
        from fontTools.ttLib import TTCollection, TTFont

        bundle = TTCollection()
        bundle.fonts = [TTFont(str(path)), TTFont(str(path))]
        path = folder / "two.ttc"
        bundle.save(str(path))
    assert _family_name(path) == FontFile.read(path).family == family


def test_the_catalogue_leaves_out_what_is_not_a_font(tmp_path: Path) -> None:
    fonts = tmp_path / "fonts"
    good = outline_font(fonts / "good.ttf", "ab", family="Good Family")
    data = good.read_bytes()
    (fonts / "text.ttf").write_text("not a font at all\n")
    (fonts / "cut.ttf").write_bytes(data[:40])  # the table directory cut short
    (fonts / "empty.otf").write_bytes(b"")
    for bad in ("text.ttf", "cut.ttf", "empty.otf"):
        with pytest.raises((OSError, KeyError, struct.error, ValueError)):
            _family_name(fonts / bad)
    found = find_font("good family", extra_dirs=[fonts])
    assert found.path == good and found.family == "Good Family"
    with pytest.raises(ConfigurationError):
        find_font("text", extra_dirs=[fonts])
