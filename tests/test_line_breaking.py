"""Chinese, Japanese and Thai break between phrases, in caption lines, caption cues and cards.

The phrases are BudouX's (the models inside the package); every line and cue boundary must
fall between two of them, never inside one ("…どこにあ | るかを…" is the failure), except in
a phrase wider than a whole line. The Japanese rules stay: no line starts with a closing
mark or a small kana.
"""

from __future__ import annotations

from pathlib import Path

import budoux
import pytest

from avgen._models import AudioAsset, CaptionStyle, CardVisual, Preset, Scene, Segment
from avgen.media._captions import balanced_groups, make_cues, word_groups
from avgen.media._cards import CardLayout, Theme, card_events
from avgen.media._lines import _NO_LINE_START, break_tokens, phrase_model, text_width, wrap_words
from avgen.media._timeline import Timeline

JAPANESE = "あなたに寄り添う最先端のテクノロジー。どこにあるかを教えてください。"
SIMPLIFIED = "请告诉我哪里有过摇摆的音乐，我们一起去吧。"
TRADITIONAL = "我們在圖書館裡學習了一整個下午。這個軟體的介面設計得很直覺。"
THAI = "สวัสดีชาวโลกวันนี้อากาศดีมากเราจะไปเที่ยวทะเลกัน"
PARSERS = {"ja": budoux.load_default_japanese_parser(),
           "zh-hans": budoux.load_default_simplified_chinese_parser(),
           "zh-hant": budoux.load_default_traditional_chinese_parser(),
           "th": budoux.load_default_thai_parser()}


def allowed(text: str, model: str, max_chars: int) -> set[int]:
    """Offsets (in characters, spaces left out) where a line of at most ``max_chars``
    columns may end: between two phrases, or anywhere inside a phrase wider than that."""
    offsets, at = set(), 0
    for phrase in PARSERS[model].parse(text.replace(" ", "")):
        if text_width(phrase) > max_chars:
            offsets.update(range(at + 1, at + len(phrase)))
        at += len(phrase)
        offsets.add(at)
    return offsets


def ends(blocks: list[list[str]]) -> list[int]:
    """The offset (spaces left out) where each line ends."""
    out, at = [], 0
    for lines in blocks:
        for line in lines:
            at += len(line.replace(" ", ""))
            out.append(at)
    return out


def test_the_parser_follows_the_text_and_the_language() -> None:
    assert phrase_model("こんにちは世界") == "ja"  # kana: Japanese, Han or not
    assert phrase_model("你好世界") == "zh-hans"
    assert phrase_model("你好世界", "zh") == "zh-hans"
    for tag in ("zh-Hant", "zh-TW", "zh_HK", "zh-Hant-TW"):
        assert phrase_model("你好世界", tag) == "zh-hant"
    assert phrase_model("你好世界", "ja") == "zh-hans"  # no kana: read as Chinese
    assert phrase_model("สวัสดี") == "th"
    assert phrase_model("안녕하세요") is None  # Korean is written with spaces
    assert phrase_model("hello") is None
    # the pieces are the phrases of the model chosen
    assert [p.lstrip("\ue001") for p in break_tokens(TRADITIONAL, 80, "zh-TW")] == \
        PARSERS["zh-hant"].parse(TRADITIONAL)
    assert [p.lstrip("\ue001") for p in break_tokens(TRADITIONAL, 80)] == \
        PARSERS["zh-hans"].parse(TRADITIONAL)


@pytest.mark.parametrize(("text", "model", "language"), [
    (JAPANESE, "ja", "ja"), (SIMPLIFIED, "zh-hans", "zh"), (TRADITIONAL, "zh-hant", "zh-TW"),
    (THAI, "th", "th")])
def test_lines_break_between_phrases(text: str, model: str, language: str) -> None:
    for max_chars in range(6, 41):
        lines = wrap_words(text, max_chars, language)
        assert "".join(lines) == text
        assert all(text_width(line) <= max_chars for line in lines), lines
        assert set(ends([lines])) <= allowed(text, model, max_chars), (max_chars, lines)
        assert not any(line[0] in _NO_LINE_START for line in lines[1:]), lines


@pytest.mark.parametrize("text", ["駅はどこにあるかを教えてください。",
                                  "図書館がどこにあるかを知っていますか。"])
def test_a_line_never_breaks_inside_doko_ni_aru(text: str) -> None:
    for max_chars in range(6, 41):
        for lines in (wrap_words(text, max_chars), *balanced_groups(text, max_chars, 2),
                      *word_groups(text, 3, max_chars)):
            assert not any(line.endswith("どこにあ") for line in lines), lines


@pytest.mark.parametrize("per_cue", [None, 2, 3])
@pytest.mark.parametrize(("text", "model", "language"), [
    (JAPANESE, "ja", None), (TRADITIONAL, "zh-hant", "zh-Hant"), (THAI, "th", None)])
def test_caption_lines_and_cues_break_between_phrases(
        text: str, model: str, language: str | None, per_cue: int | None) -> None:
    for max_chars in (10, 14, 16, 20, 24, 32):
        style = CaptionStyle(max_chars_per_line=max_chars, words_per_cue=per_cue)
        cues = make_cues([Segment(text, 0.0, 6.0)], 0.0, style, language=language)
        assert "".join("".join(cue.lines) for cue in cues) == text
        assert set(ends([list(cue.lines) for cue in cues])) <= allowed(text, model, max_chars)


def test_a_timeline_breaks_by_its_language(tmp_path: Path) -> None:
    style = CaptionStyle(max_chars_per_line=12)
    parts = [(Scene(0, TRADITIONAL), AudioAsset(tmp_path / "a.wav", 4.0), CardVisual(""))]
    timeline = Timeline.build(Preset("p", 320, 320), parts, style=style, language="zh-TW")
    lines = [list(cue.lines) for cue in timeline.cues]
    assert set(ends(lines)) <= allowed(TRADITIONAL, "zh-hant", 12)
    # read as Simplified, 我們 (we) and 圖書館 (library) could be cut
    simplified = Timeline.build(Preset("p", 320, 320), parts, style=style)
    assert [c.lines for c in simplified.cues] != [c.lines for c in timeline.cues]


def test_card_lines_break_between_phrases() -> None:
    layout = CardLayout(360, 640)
    events = card_events(0, 100, title=JAPANESE, phrase="", icon=None,
                         theme=Theme(("0x000000", "0x111111"), "0xffffff"), layout=layout,
                         escape=lambda line: line)
    title = next(text for _, _, _, style, text in events if style == "CardTitle")
    lines = title.split("}", 1)[1].split("\\N")
    assert len(lines) >= 2
    # the last line may be cut short with an ellipsis: every break before it is a phrase's
    assert set(ends([lines[:-1]])) <= allowed(JAPANESE, "ja", 100)
