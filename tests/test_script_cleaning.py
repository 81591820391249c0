"""What the stage-direction cleaner removes (speaker labels, directions) and what it keeps
(every other word), and the user's pictures (`StillImages`) refused up front when unreadable.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen import VideoGenerator
from avgen._models import PRESETS, Scene, VideoRequest
from avgen.agents.local import StillImages
from avgen.agents.local._script import clean_narration, split_script
from avgen.errors import UsageError
from avgen.testing import ToneNarrator
from tests.media import make_image

AVGEN = [sys.executable, "-m", "avgen"]

# --- the cleaner ---------------------------------------------------------------------------

_WORDS = st.sampled_from(["Bees", "NARRATOR", "HOST", "dance", "e.g.", "well-known", "Dr.",
                          "1990", "3.", "2)", "-", "--", "—", "é", "日本", "«oui»", "50%",
                          "what?", "end.", "'quoted'", '"so"', "…", "$5", "@home", "{x}",
                          "/", "!", "a.m.", "x" * 3])
_GAPS = st.sampled_from([" ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\u2028",
                         "\x0b", "\u00a0", "\n- ", "\r- ", "\n 1. ", "\r2) ", "\n---\n"])
_MARKUP = st.sampled_from(["*", "_", "[", "]", "(", ")", ":", "#", "=", "<", ">", "`", "~",
                           "&amp;", "\\", "|", "+", "\ue000", "\ue002", "NARRATOR:", "HOST:",
                           "(pause)", "[Music]", "*so*", "# Title", "===", "<b>", "> quoted"])


@settings(deadline=None, max_examples=1500)
@given(st.lists(st.tuples(st.one_of(_WORDS, _WORDS, _WORDS, _MARKUP), _GAPS), max_size=8),
       st.booleans())
def test_text_without_markup_is_cleaned_the_short_way_to_the_same_words(
        words: list[tuple[str, str]], speakers: bool) -> None:
    """Text holding no character a markup rule acts on skips the rules: it must come out
    as every rule would leave it (lines opening with digits or dashes included)."""
    from avgen.agents.local._script import _clean, _clean_marked

    text = "".join(word + gap for word, gap in words)
    assert _clean(text, speakers=speakers) == _clean_marked(text, speakers=speakers)



@pytest.mark.parametrize(("text", "spoken"), [
    # speaker labels: a role in any case, with an optional number
    ("Narrator: The sea is wide.", "The sea is wide."),
    ("narrator: the sea is wide.", "the sea is wide."),
    ("Host: Welcome back.", "Welcome back."),
    ("HOST 2: Welcome back.", "Welcome back."),
    ("Speaker 1: Hello.", "Hello."),
    ("Co-host: Hello.", "Hello."),
    ("Guest: Thanks.", "Thanks."),
    ("Voiceover: Years later.", "Years later."),
    ("Voice-over: Years later.", "Years later."),
    ("VO: Years later.", "Years later."),
    ("V.O.: Years later.", "Years later."),
    ("Interviewer: Why?", "Why?"),
    # speaker labels: a name in capitals
    ("NARRATOR: The sea is wide.", "The sea is wide."),
    ("DR. SMITH: Take two.", "Take two."),
    ("O'BRIEN: Right.", "Right."),
    ("MARY-JANE: Right.", "Right."),
    ("OLD MAN: Right.", "Right."),
    ("NARRATOR (V.O.): Years later.", "Years later."),
    ("Host (laughing): Fine.", "Fine."),
    ("JOHN: (quietly, to Mary) Yes.", "Yes."),
    ("NARRATOR:\nThe sea.", "The sea."),
    ("One line.\nHOST: Another line.", "One line. Another line."),
    ("> - **NARRATOR:** Quoted.", "Quoted."),
    # directions in square brackets
    ("[Music] The sea.", "The sea."),
    ("The sea. [music fades]", "The sea."),
    ("[SFX: door] Who is there?", "Who is there?"),
    ("[SFX: door slams] Who?", "Who?"),
    ("Wait [beat], go.", "Wait, go."),
    # directions in parentheses
    ("(pause)\nThe sea.", "The sea."),
    ("The sea (pause) is wide.", "The sea is wide."),
    ("(beat) The sea.", "The sea."),
    ("So funny (laughs).", "So funny."),
    ("(Music fades.) Then silence.", "Then silence."),
    ("Go. (Cut to the beach.) Stop.", "Go. Stop."),
    ("(Cut to the surface.)", ""),
    ("*(whispers)* Listen.", "Listen."),
    ("Listen. (sighs)", "Listen."),
    ("مرحبا بالعالم! (توقف)", "مرحبا بالعالم!"),
])
def test_labels_and_directions_are_removed(text: str, spoken: str) -> None:
    assert clean_narration(text) == spoken


KEPT = [
    "Warning: hot.",
    "Note: the oven is hot.",
    "Tip: salt the water.",
    "Step 1: boil the water.",
    "Update: the road is open.",
    "Important: read this.",
    "Fun Fact: bees dance.",
    "WARNING: hot.",
    "NOTE: read this.",
    "PRO TIP: go early.",
    "STEP 2: stir.",
    "Q: Why? A: Because.",
    "A: 12, B: 14.",
    "I: think.",
    "Mary Jane: hello.",
    "note: keep me.",
    "Remember: breathe.",
    "We meet at 10:30 today.",
    "10:30: the doors open.",
    "Mix sand and cement 3:1.",
    "See https://example.com/page for more.",
    "Read John 3:16 aloud.",
    "The cell (a tiny room) holds a prisoner.",
    "The cell divides. (This takes hours.) Then it rests.",
    "(Optional) Add salt.",
    "It works. (Mostly.)",
    "(It is) a star, they said.",
    "The score was 2 (two) to 1.",
    "Pause: a verb.",
    "Hosting: it is hard.",
    "The host said: welcome.",
    "Say it: narrator.",
]


@pytest.mark.parametrize("text", KEPT)
def test_ordinary_words_are_kept(text: str) -> None:
    assert clean_narration(text) == text


def test_an_escaped_colon_keeps_a_word_in_capitals() -> None:
    assert clean_narration("DNA: the molecule.") == "the molecule."
    assert clean_narration("DNA\\: the molecule.") == "DNA: the molecule."


def test_a_paragraph_starting_with_warning_keeps_it_in_the_scene() -> None:
    parts = split_script("# Safety\n\nWarning: the stove is hot.\n\nNote: Tip: wait.")
    assert [part.narration for part in parts] == ["Warning: the stove is hot.",
                                                  "Note: Tip: wait."]


WORDS = ("the", "river", "runs", "Warning", "Note", "Tip", "Update", "Step", "Fun", "Fact",
         "Mary", "Jane", "NASA", "Paris", "quiet", "10:30", "3:1", "https://example.com/a",
         "e.g.", "Dr.", "a", "A", "Q", "I", "host", "narrator", "music", "pause", "42",
         "(a", "tiny", "room)", "Remember", "café", "über", "NOTE", "TIP", "WARNING")
CALLOUTS = ("Warning:", "Note:", "Tip:", "Step 1:", "Update:", "Important:", "Fun Fact:",
            "Q:", "A:", "Remember:", "WARNING:", "NOTE:", "Mary Jane:", "Example:", "Paris:")


@st.composite
def prose(draw: st.DrawFn) -> str:
    """Lines of ordinary words with colons and parentheses, but no label or direction."""
    lines = []
    for _ in range(draw(st.integers(1, 4))):
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=12))
        if draw(st.booleans()):
            words.insert(0, draw(st.sampled_from(CALLOUTS)))
        if len(words) > 5 and draw(st.booleans()):  # past the three words a label may have
            at = draw(st.integers(5, len(words) - 1))
            words[at] = words[at] + ":"
        at = draw(st.integers(1, max(1, len(words) - 2)))
        first, second = [*words[at:at + 2], "", ""][:2]
        if len(words) > 3 and first.strip("():").lower() not in ("music", "pause") \
                and draw(st.booleans()):  # "(pause …)" would be a direction
            words[at:at + 2] = ["(" + first.strip("()"), second.strip("()") + ")"]
        if words[0][0] in "(0123456789":  # not a whole-line parenthesis nor "42." (a list)
            words.insert(0, "the")
        lines.append(" ".join(words) + draw(st.sampled_from(["", ".", "!", "?"])))
    return "\n".join(lines)


@settings(max_examples=150)
@given(prose())
def test_prose_keeps_every_word_in_order(text: str) -> None:
    assert clean_narration(text).split() == text.split()


# --- narration and captions ----------------------------------------------------------------


def test_narration_and_captions_get_the_cleaned_text(tmp_path: Path) -> None:
    narrator = ToneNarrator(seconds_per_word=0.05)
    script = ("NARRATOR: Warning: the stove is hot. [Music]\n\n"
              "(pause)\n\nNote: meet at 10:30 (sharp).")
    video = VideoGenerator(narrator=narrator, output_dir=tmp_path).generate_sync(script=script)
    assert narrator.spoken == ["Warning: the stove is hot.", "Note: meet at 10:30 (sharp)."]
    captions = " ".join(video.captions["srt"].read_text().split())
    assert "Warning: the stove is hot." in captions
    assert "Note: meet at 10:30 (sharp)." in captions
    assert "NARRATOR" not in captions and "Music" not in captions and "pause" not in captions


# --- the user's pictures -------------------------------------------------------------------


def corrupt_png(path: Path) -> Path:
    path.write_bytes(os.urandom(4096))
    return path


def truncated_jpeg(path: Path) -> Path:
    make_image(path.with_name("whole.jpg"), 320, 240)
    data = path.with_name("whole.jpg").read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def text_as_jpeg(path: Path) -> Path:
    path.write_text("This is not a picture.\n" * 20)
    return path


def empty_png(path: Path) -> Path:
    path.write_bytes(b"")
    return path


BAD_PICTURES = {"shot.png": corrupt_png, "photo.jpg": truncated_jpeg,
                "notes.jpg": text_as_jpeg, "blank.png": empty_png}


@pytest.mark.parametrize("name", list(BAD_PICTURES))
def test_a_bad_picture_is_refused_before_any_narration(tmp_path: Path, name: str) -> None:
    good = make_image(tmp_path / "good.png", 64, 48)
    bad = BAD_PICTURES[name](tmp_path / name)
    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, image_generator=StillImages([good, bad]),
                               output_dir=tmp_path / "out")
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(script="One.\n\nTwo.")
    assert caught.value.field == "images"
    assert str(bad) in str(caught.value) and "picture 2" in str(caught.value)
    assert narrator.calls == 0
    assert not list((tmp_path / "out").rglob("*.wav"))


def test_good_pictures_pass_and_a_count_mismatch_is_said(tmp_path: Path) -> None:
    pictures = [make_image(tmp_path / f"p{i}.{ext}", 64, 48)
                for i, ext in enumerate(["png", "jpg", "png"])]
    images = StillImages(pictures)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images.check(VideoRequest(script="One.\n\nTwo.\n\nThree."))
        assert not caught
        images.check(VideoRequest(script="One.\n\nTwo."))
    assert [str(w.message) for w in caught] == [
        "3 pictures for 2 scenes: picture 3 is not shown"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        StillImages(pictures * 2).check(VideoRequest(script="One."))
    assert [str(w.message) for w in caught] == [
        "6 pictures for 1 scene: pictures 2 to 6 are not shown"]

    one = StillImages(pictures[:2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for index in range(4):
            scene = Scene(index=index, narration="Hi.", visual="Hi.", title="Hi")
            asset = asyncio.run(one.generate(scene, PRESETS["draft"], tmp_path / f"{index}.png"))
            assert (asset.width, asset.height) == (64, 48)
    assert [str(w.message) for w in caught] == [
        "2 pictures for more scenes: from scene 3 on, the pictures are shown again from the "
        "first"]


def test_the_command_exits_2_naming_the_bad_picture(tmp_path: Path) -> None:
    bad = corrupt_png(tmp_path / "bad.png")
    (tmp_path / "s.md").write_text("One.\n\nTwo.\n")
    proc = subprocess.run([*AVGEN, "make", "--script", "s.md", "--images", str(bad),
                           "--agents", "local", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert "avgen: error: images:" in proc.stderr and str(bad) in proc.stderr
    assert not list((tmp_path / "o").rglob("*.wav"))


def test_a_run_with_fewer_pictures_than_scenes_says_so(tmp_path: Path) -> None:
    picture = make_image(tmp_path / "only.png", 64, 48)
    generator = VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.05),
                               image_generator=StillImages([picture]),
                               output_dir=tmp_path / "out")
    with pytest.warns(UserWarning, match="1 picture for more scenes: from scene 2 on"):
        video = generator.generate_sync(script="One.\n\nTwo.")
    assert video.path.is_file()
