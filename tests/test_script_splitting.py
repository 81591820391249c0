"""Tests of the local script writer: cleaning, sentence splitting, part splitting, scenes."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen._models import VideoRequest
from avgen.agents.local._script import (
    LocalScriptWriter,
    ScriptPart,
    clean_narration,
    split_script,
    split_sentences,
)
from avgen.errors import UsageError

NARRATION_WORDS = ("apple", "river", "mountain", "quiet", "bright", "forest", "ocean",
                   "silver", "garden", "thunder", "candle", "window", "journey", "marble")
DIRECTION_WORDS = ("pause", "beat", "music", "laughs", "sighs", "applause")
MARKUP = ("#", "**", "__", "`", "[", "]", "|")

# How a narration word may be dressed up; "{}" is the word.
DECORATIONS = ("{}", "{}", "{}", "**{}**", "*{}*", "_{}_", "__{}__", "***{}***", "`{}`",
               "[{}](https://example.com/zorp)", "[{}][ref]", "<b>{}</b>", "~~{}~~")
# Directions that may sit anywhere between words; "{}" is a direction word.
INLINE_DIRECTIONS = ("[{}]", "[{} {}]", "*({})*", "**({} {})**", "![{}](pic.png)",
                     "<!-- {} -->", "<br>", "[{} [{}]]")
LINE_PREFIXES = ("", "", "- ", "* ", "+ ", "1. ", "12) ", "> ", "> - ")
LABELS = ("", "", "NARRATOR: ", "Narrator: ", "Host: ", "VO: ", "V.O.: ", "OLD MAN: ",
          "NARRATOR (V.O.): ")

direction_word = st.sampled_from(DIRECTION_WORDS)


def words_of(text: str) -> list[str]:
    """The letters-only tokens of a text, lowercased."""
    return re.findall(r"[^\W\d_]+", text.lower())


@st.composite
def inline_direction(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(INLINE_DIRECTIONS))
    return template.format(*(draw(direction_word) for _ in range(template.count("{}"))))


@st.composite
def sentence(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A decorated sentence and its narration words."""
    words = draw(st.lists(st.sampled_from(NARRATION_WORDS), min_size=1, max_size=25))
    pieces = []
    for position, word in enumerate(words):
        shown = word.capitalize() if position == 0 else word
        piece = draw(st.sampled_from(DECORATIONS)).format(shown)
        if position and draw(st.integers(0, 5)) == 0:
            piece = draw(inline_direction()) + " " + piece
        if position < len(words) - 1 and draw(st.integers(0, 4)) == 0:
            piece += draw(st.sampled_from([",", ";"]))
        pieces.append(piece)
    return " ".join(pieces) + draw(st.sampled_from(".!?")), words


@st.composite
def direction_sentence(draw: st.DrawFn) -> str:
    first, second = draw(direction_word), draw(direction_word)
    return draw(st.sampled_from(["({} {}.)", "({}!)", "[{} {}]", "*({})*"])).format(
        first.capitalize(), second)


@st.composite
def paragraph(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A paragraph of one or more lines, with directions, labels and list markers."""
    lines, words = [], []
    for _ in range(draw(st.integers(1, 3))):
        pieces = []
        for _ in range(draw(st.integers(1, 4))):
            if draw(st.integers(0, 3)) == 0:
                pieces.append(draw(direction_sentence()))
            text, sentence_words = draw(sentence())
            pieces.append(text)
            words += sentence_words
        prefix = draw(st.sampled_from(LINE_PREFIXES)) + draw(st.sampled_from(LABELS))
        lines.append(prefix + " ".join(pieces))
        if draw(st.integers(0, 3)) == 0:
            lines.append(draw(st.sampled_from(["({})", "[{}]", "  ({}.)  "])).format(
                draw(direction_word)))
    return "\n".join(lines), words


@st.composite
def other_block(draw: st.DrawFn) -> str:
    """A block with nothing to narrate: heading, rule, code, comment or direction."""
    word = draw(direction_word)
    return draw(st.sampled_from([
        "# {0}", "## **{0}** ##", "### {0} [{0}]", "---", "***", "_ _ _",
        "```\n{0} = 1\n\n{0}()\n```", "~~~python\nprint('{0}')\n~~~",
        "<!--\n{0}\n\n{0}\n-->", "[{0} {0}]", "({0})", "![{0}](pic.png)",
        "|---|:---:|", "[ref]: https://example.com/{0}",
    ])).format(word.capitalize())


@st.composite
def script(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A whole Markdown script and its narration words in order."""
    blocks, words = [], []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            text, paragraph_words = draw(paragraph())
            blocks.append(text)
            words += paragraph_words
        else:
            blocks.append(draw(other_block()))
    separators = [draw(st.sampled_from(["\n\n", "\n\n\n", "\n"])) for _ in blocks]
    text = "".join(block + separator for block, separator in zip(blocks, separators, strict=True))
    return text, words


def is_unsplittable(narration: str, max_chars: int) -> bool:
    """One sentence whose comma/semicolon clauses cannot all fit in max_chars."""
    clauses = re.split(r"(?<=[,;])\s+", narration)
    return len(split_sentences(narration)) == 1 and (
        len(clauses) == 1 or any(len(clause) > max_chars for clause in clauses))


# --- examples ----------------------------------------------------------------------------

EXAMPLE = """\
# The Ocean

NARRATOR: The ocean covers **most** of the planet. [Music swells]

(pause)

## Depths
---
Host: Light fades fast below 200 m. See [this map](https://example.com/map).

```python
print("not narrated")
```

*(whispers)* It is _very_ dark down there.
(Cut to the surface.)
"""


def test_markdown_script_becomes_exact_parts() -> None:
    assert split_script(EXAMPLE) == [
        ScriptPart("The Ocean", "The ocean covers most of the planet."),
        ScriptPart("Depths", "Light fades fast below 200 m. See this map."),
        ScriptPart("Depths", "It is very dark down there."),
    ]


def test_markup_and_directions_are_removed() -> None:
    text = ("> - **V.O.:** Use `print()` <i>now</i>. (Cut to the beach.) `a|b` stays.\n"
            "| one | two |\n|---|---|\n![logo](logo.png) Done [laughs], friend [beat].\n"
            "<!-- a note --> ~~Old~~ news.")
    assert clean_narration(text) == ("Use print() now. a|b stays. one two Done, friend. "
                                     "Old news.")


def test_speaker_labels_and_parenthetical_lines() -> None:
    text = "JOHN: (laughing) Yes!\nNarrator:\n(softly)\nMARY JANE: Hi there.\n(Pause.) Go."
    assert clean_narration(text) == "Yes! Hi there. Go."


def test_lowercase_label_and_long_label_are_kept() -> None:
    assert clean_narration("note: keep me.") == "note: keep me."
    assert clean_narration("Mary Jane Watson: hello.") == "Mary Jane Watson: hello."
    assert clean_narration("Mary Jane: hello.") == "Mary Jane: hello."


def test_parentheses_inside_a_sentence_are_kept() -> None:
    assert clean_narration("The sun (a star) is hot.") == "The sun (a star) is hot."
    assert clean_narration("(It is) a star, they said.") == "(It is) a star, they said."


def test_abbreviations_initials_and_decimals_do_not_split() -> None:
    text = ("Dr. Smith paid $3.14 at 5 p.m. on St. Mark's day, i.e. today. "
            "J. R. R. Tolkien wrote it in the U.S. too! Mr. Brown agreed, etc. and "
            "Mrs. Lee said \"No.\" Then we left (see No. 5). Was it 2.5 km?")
    assert split_sentences(text) == [
        "Dr. Smith paid $3.14 at 5 p.m. on St. Mark's day, i.e. today.",
        "J. R. R. Tolkien wrote it in the U.S. too!",
        "Mr. Brown agreed, etc. and Mrs. Lee said \"No.\"",
        "Then we left (see No. 5).",
        "Was it 2.5 km?",
    ]


def test_ellipsis_and_cjk_terminators_split() -> None:
    assert split_sentences("Wait… what? 你好。 再见！") == ["Wait…", "what?", "你好。", "再见！"]


def test_hebrew_and_arabic_are_preserved() -> None:
    text = "# כותרת\n\nשלום **עולם**. [מוזיקה]\n\nمرحبا بالعالم! (توقف)\n\n你好，世界。"
    assert split_script(text) == [
        ScriptPart("כותרת", "שלום עולם."),
        ScriptPart("כותרת", "مرحبا بالعالم!"),
        ScriptPart("כותרת", "你好，世界。"),
    ]


def test_long_paragraph_is_packed_at_sentence_boundaries() -> None:
    sentence_text = "This sentence has exactly forty-two chars."
    parts = split_script(" ".join([sentence_text] * 5), max_chars=90)
    assert [part.narration for part in parts] == [f"{sentence_text} {sentence_text}"] * 2 + [
        sentence_text]


def test_long_sentence_is_cut_at_commas_or_kept_whole() -> None:
    text = "one two three four five six seven, " * 4 + "the end."
    parts = split_script(text, max_chars=80)
    assert all(len(part.narration) <= 80 for part in parts)
    assert " ".join(part.narration for part in parts) == " ".join(text.split())
    whole = "x" * 50 + " " + "y" * 50 + ", z."
    assert split_script(whole, max_chars=60) == [ScriptPart("", whole)]


def test_setext_heading_and_rules() -> None:
    text = "Title\n=====\nFirst words.\n***\nSecond words.\n___\n"
    assert split_script(text) == [ScriptPart("Title", "First words."),
                                  ScriptPart("Title", "Second words.")]


def test_max_chars_below_40_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        split_script("Hello.", max_chars=39)
    assert caught.value.field == "max_chars"
    with pytest.raises(UsageError):
        LocalScriptWriter(max_chars=10)


def test_writer_uses_headings_and_first_words_as_titles() -> None:
    script_ = asyncio.run(LocalScriptWriter().write(VideoRequest(script=EXAMPLE)))
    assert script_.title == "The Ocean"
    assert [scene.title for scene in script_.scenes] == ["The Ocean", "Depths", "Depths"]
    assert [scene.visual for scene in script_.scenes] == [s.narration for s in script_.scenes]
    plain = "One two three four five six seven.\n\nShort one."
    script_ = asyncio.run(LocalScriptWriter().write(VideoRequest(script=plain, topic="Topic")))
    assert script_.title == "Topic"
    assert [scene.title for scene in script_.scenes] == ["One two three four five six…",
                                                          "Short one."]
    untitled = asyncio.run(LocalScriptWriter().write(VideoRequest(script=plain)))
    assert untitled.title == "One two three four five six…"
    named = asyncio.run(LocalScriptWriter().write(VideoRequest(script=EXAMPLE, title="Mine")))
    assert named.title == "Mine"


@pytest.mark.parametrize("request_", [VideoRequest(topic="The **deep** sea"),
                                      VideoRequest(topic="Why?", title="T"),
                                      VideoRequest(topic="Bees", script="  \n ")])
def test_a_topic_alone_is_refused_naming_the_agents_that_write_scripts(
        request_: VideoRequest) -> None:
    """The local writer writes no words of its own: no filler title sequence."""
    writer = LocalScriptWriter()
    for call in (lambda: writer.check(request_), lambda: asyncio.run(writer.write(request_))):
        with pytest.raises(UsageError) as caught:
            call()
        assert caught.value.field == "script"
        assert "cannot write one from a topic" in caught.value.problem
        assert "--script FILE" in caught.value.problem and "google" in caught.value.problem


def test_script_with_nothing_to_narrate_is_refused_up_front() -> None:
    request = VideoRequest(script="# Intro\n\n[Music]\n\n(pause)\n\n```\ncode\n```\n---\n",
                           topic="Something")
    writer = LocalScriptWriter()
    with pytest.raises(UsageError) as caught:
        writer.check(request)
    assert caught.value.field == "script"
    with pytest.raises(UsageError) as caught:
        asyncio.run(writer.write(request))
    assert caught.value.field == "script"
    assert "nothing to narrate" in str(caught.value)


# --- properties --------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(paragraph())
def test_clean_keeps_every_narration_word_in_order(case: tuple[str, list[str]]) -> None:
    text, words = case
    cleaned = clean_narration(text)
    assert words_of(cleaned) == words
    assert not any(mark in cleaned for mark in MARKUP)
    assert cleaned == " ".join(cleaned.split())


@settings(max_examples=100, deadline=None)
@given(script(), st.integers(40, 400))
def test_split_script_properties(case: tuple[str, list[str]], max_chars: int) -> None:
    text, words = case
    parts = split_script(text, max_chars=max_chars)
    narration = " ".join(part.narration for part in parts)
    assert words_of(narration) == words
    assert not set(words_of(narration)) & set(DIRECTION_WORDS)
    for part in parts:
        assert part.narration.strip() == part.narration != ""
        assert len(part.narration) <= max_chars or is_unsplittable(part.narration, max_chars)
        assert not any(mark in part.narration for mark in MARKUP)
        assert not any(mark in part.title for mark in MARKUP)
        assert set(words_of(part.title)) <= set(DIRECTION_WORDS)


@settings(max_examples=40, deadline=None)
@given(script().filter(lambda case: bool(case[1])), st.integers(40, 200))
def test_writer_numbers_scenes_from_zero(case: tuple[str, list[str]], max_chars: int) -> None:
    text, _ = case
    result = asyncio.run(LocalScriptWriter(max_chars=max_chars).write(VideoRequest(script=text)))
    assert [scene.index for scene in result.scenes] == list(range(len(result.scenes)))
    assert [scene.narration for scene in result.scenes] == [
        part.narration for part in split_script(text, max_chars=max_chars)]
    assert all(scene.title for scene in result.scenes)
    assert result.title


sentence_like_text = st.lists(
    st.sampled_from([*"abcXYZ .!?…。,'\")]\n\t", "Dr.", "e.g.", "3.14", " J.", "etc. ", "No. 5"]),
    max_size=60).map("".join)


@settings(max_examples=500, deadline=None)
@given(st.one_of(sentence_like_text, st.text(max_size=200)))
def test_split_sentences_round_trips(text: str) -> None:
    sentences = split_sentences(text)
    assert " ".join(sentences) == " ".join(text.split())
    assert all(s and s == " ".join(s.split()) for s in sentences)


@settings(max_examples=200, deadline=None)
@given(st.lists(sentence().map(lambda case: case[0]), min_size=1, max_size=6))
def test_split_sentences_finds_each_generated_sentence(texts: list[str]) -> None:
    cleaned = [clean_narration(text) for text in texts]
    assert split_sentences(" ".join(cleaned)) == cleaned
