"""Where text may break into lines: widths in columns, the pieces a line may break
between (any script), and greedy wrapping. Captions and cards both set their lines with it.

Chinese, Japanese and Thai are written without spaces between words; BudouX (its models
ship inside the package) cuts them into phrases, and lines and caption cues break between
phrases, never inside one, with the Japanese rules (kinsoku) on top: a line never starts
with a closing mark or a small kana, and never ends with an opening bracket. The parser
is chosen by the text: kana means Japanese, Han characters without kana Chinese
(Traditional when the language says so: ``zh-Hant``, ``zh-TW``, ``zh-HK``, ``zh-MO``,
else Simplified), Thai letters Thai.
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import unicodedata
from collections.abc import Callable, Sequence

from avgen._validate import number

__all__: list[str] = []


def text_width(text: str) -> int:
    """How wide ``text`` is drawn, in columns: an East Asian wide or full-width character
    (CJK, kana, Hangul) counts two, a combining mark or format character none, anything
    else one (a glued space, `_GLUE`, one; the `ATTACH` mark none)."""
    width = 0
    for char in text:
        if char == ATTACH or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


# a piece of a word that follows the one before it with no space: scripts written without
# spaces (Chinese, Japanese) are cut into such pieces where a line may break
ATTACH = "\ue001"
_NO_LINE_START = frozenset(
    "、。，．・：；？！ー）」』】〕〉》］｝〟ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ々〻"
    "ゝゞヽヾ〜…‥!?,.:;)]}%’”")
"""Characters a line never starts with (Japanese kinsoku): they stay with the one before."""
_NO_LINE_END = frozenset("（「『【〔〈《［｛〝([{‘“")
"""Characters a line never ends with: they stay with the one after."""
_UNSPACED = ("LAO", "KHMER", "MYANMAR")
"""Writing systems without spaces between words and without a phrase model here: a word of
theirs too wide for a line is cut between characters."""
_TRADITIONAL = frozenset({"hant", "tw", "hk", "mo"})
"""Subtags of a language tag that mean Traditional Chinese."""


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _is_mark(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Mc", "Me")


Phrases = Callable[[str], list[str]]
"""Cuts a word written without spaces into its phrases."""


@functools.cache
def _budoux(model: str) -> Phrases:
    """BudouX's parser for ``model`` (``ja``, ``zh-hans``, ``zh-hant`` or ``th``), loaded
    once per process."""
    import budoux

    loaders = {"ja": budoux.load_default_japanese_parser,
               "zh-hans": budoux.load_default_simplified_chinese_parser,
               "zh-hant": budoux.load_default_traditional_chinese_parser,
               "th": budoux.load_default_thai_parser}
    parse: Phrases = loaders[model]().parse
    return parse


def phrase_model(text: str, language: str | None = None) -> str | None:
    """The BudouX model that cuts ``text`` into phrases: ``ja`` when it has kana,
    ``zh-hant`` or ``zh-hans`` when it has Han characters (Traditional when ``language``
    says so), ``th`` when it has Thai letters; ``None`` for any other text."""
    names = [unicodedata.name(char, "") for char in text if ord(char) > 0x2FF]
    if any(name.startswith(("HIRAGANA", "KATAKANA")) for name in names):
        return "ja"
    if any(name.startswith("CJK UNIFIED IDEOGRAPH") for name in names):
        subtags = set((language or "").lower().replace("_", "-").split("-"))
        return "zh-hant" if "zh" in subtags and subtags & _TRADITIONAL else "zh-hans"
    if any(name.startswith("THAI") for name in names):
        return "th"
    return None


def _kinsoku(phrases: list[str]) -> list[str]:
    """Phrases joined where a break would put a closing mark or small kana at the start of
    a line, or an opening bracket at its end."""
    out: list[str] = []
    for phrase in phrases:
        if out and (phrase[0] in _NO_LINE_START or out[-1][-1] in _NO_LINE_END
                    or _is_mark(phrase[0])):
            out[-1] += phrase
        else:
            out.append(phrase)
    return out


def _characters(word: str, max_chars: int) -> list[str]:
    """``word`` cut between characters where a line may break: CJK text between any two
    wide characters (keeping kinsoku and runs of other characters whole), any other
    script between characters while a piece fits on a line (never before a combining
    mark)."""
    pieces: list[str] = []
    if any(_wide(char) for char in word):
        for char in word:
            if pieces and (char in _NO_LINE_START or pieces[-1][-1] in _NO_LINE_END
                           or _is_mark(char) or not (_wide(char) or _wide(pieces[-1][-1]))):
                pieces[-1] += char
            else:
                pieces.append(char)
        return pieces
    for char in word:
        if pieces and (_is_mark(char) or text_width(pieces[-1] + char) <= max_chars):
            pieces[-1] += char
        else:
            pieces.append(char)
    return pieces


def _cut(word: str, max_chars: int, model: str | None) -> list[str]:
    """``word`` as pieces a line may break between: with a phrase ``model``, between
    phrases (a phrase wider than a line between characters); a Lao, Khmer or Burmese word
    wider than a line between characters. Every piece after the first starts with
    `ATTACH`; any other word (Korean too: it is written with spaces) is one piece."""
    if word.startswith(ATTACH) or not word:
        return [word]
    if model is not None and phrase_model(word, None) is not None:
        pieces = [piece for phrase in _kinsoku(_budoux(model)(word))
                  for piece in ([phrase] if text_width(phrase) <= max_chars
                                else _characters(phrase, max_chars))]
    elif text_width(word) > max_chars and (any(_wide(char) for char in word) or any(
            unicodedata.name(char, "").startswith(_UNSPACED) for char in word)):
        pieces = _characters(word, max_chars)
    else:
        return [word]
    return [pieces[0], *(ATTACH + piece for piece in pieces[1:])]


def break_tokens(text: str, max_chars: int, language: str | None = None) -> list[str]:
    """The words of ``text`` cut into the pieces a line may break between (`_cut`), with
    the phrase model the text and ``language`` call for (`phrase_model`)."""
    model = phrase_model(text, language)
    return [piece for word in text.split() for piece in _cut(word, max_chars, model)]


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens as one line: single spaces between words, none before an attached piece."""
    return " ".join(tokens).replace(" " + ATTACH, "").replace(ATTACH, "")


def wrap_tokens(tokens: Sequence[str], max_chars: int) -> list[list[str]]:
    """Tokens (`break_tokens`) as greedy lines at most ``max_chars`` columns wide; a token
    wider than that stands alone on its line."""
    lines: list[list[str]] = []
    current: list[str] = []
    for token in tokens:
        if current and text_width(join_tokens([*current, token])) > max_chars:
            lines.append(current)
            current = []
        current.append(token)
    if current:
        lines.append(current)
    return lines


def wrap_words(text: str, max_chars: int, language: str | None = None) -> list[str]:
    """Break text into lines at most ``max_chars`` columns wide, greedily.

    Words are split on any whitespace and never broken, except in scripts written without
    spaces: Chinese, Japanese and Thai break between phrases (BudouX; a phrase wider than
    a line between characters, and a Japanese line never starts with a closing mark such
    as ``。`` or ``」``), and a Lao, Khmer or Burmese word wider than a line is cut between
    characters. A wide character (CJK, kana, Hangul) counts as two columns. Any other word
    longer than ``max_chars`` stands alone on its own line.

    Args:
        text: The text to wrap; runs of whitespace (newlines too) count as one space.
        max_chars: The widest line wanted, at least 1.
        language: The text's BCP 47 language, when known: it tells Traditional Chinese
            (``zh-Hant``, ``zh-TW`` …) from Simplified.

    Returns:
        The lines, without leading or trailing spaces; empty for blank text.
    """
    number("max_chars", max_chars, integer=True, low=1)
    return [join_tokens(line)
            for line in wrap_tokens(break_tokens(text, max_chars, language), max_chars)]
