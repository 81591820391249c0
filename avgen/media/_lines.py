"""Where text may break into lines: widths in columns, the pieces a line may break
between (any script), and greedy wrapping. Captions and cards both set their lines with it.
"""

from __future__ import annotations

__docformat__ = "google"

import unicodedata
from collections.abc import Sequence

from avgen.errors import UsageError

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
_UNSPACED = ("THAI", "LAO", "KHMER", "MYANMAR")
"""Writing systems without spaces between words and without a rule for breaking inside
one here: a word of theirs too wide for a line is cut between characters."""


def _wide(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def _cut(word: str, max_chars: int) -> list[str]:
    """``word`` as pieces a line may break between: CJK text between any two characters
    (keeping kinsoku and runs of other characters whole), a Thai, Lao, Khmer or Burmese
    word wider than a line between characters (never before a combining mark). Every
    piece after the first starts with `ATTACH`; any other word is one piece."""
    if word.startswith(ATTACH) or not word:
        return [word]
    pieces: list[str] = []
    if any(_wide(char) for char in word):
        for char in word:
            if pieces and (char in _NO_LINE_START or pieces[-1][-1] in _NO_LINE_END
                           or unicodedata.category(char) in ("Mn", "Mc", "Me")
                           or not (_wide(char) or _wide(pieces[-1][-1]))):
                pieces[-1] += char
            else:
                pieces.append(char)
    elif text_width(word) > max_chars and any(
            unicodedata.name(char, "").startswith(_UNSPACED) for char in word):
        for char in word:
            mark = unicodedata.category(char) in ("Mn", "Mc", "Me")
            if pieces and (mark or text_width(pieces[-1] + char) <= max_chars):
                pieces[-1] += char
            else:
                pieces.append(char)
    else:
        return [word]
    return [pieces[0], *(ATTACH + piece for piece in pieces[1:])]


def break_tokens(text: str, max_chars: int) -> list[str]:
    """The words of ``text`` cut into the pieces a line may break between (`_cut`)."""
    return [piece for word in text.split() for piece in _cut(word, max_chars)]


def join_tokens(tokens: Sequence[str]) -> str:
    """Tokens as one line: single spaces between words, none before an attached piece."""
    return " ".join(tokens).replace(" " + ATTACH, "").replace(ATTACH, "")


def wrap_words(text: str, max_chars: int) -> list[str]:
    """Break text into lines at most ``max_chars`` columns wide, greedily.

    Words are split on any whitespace and never broken, except in scripts written without
    spaces: Chinese and Japanese break between characters (a line never starts with a
    closing mark such as ``。`` or ``」``), and a Thai, Lao, Khmer or Burmese word wider than
    a line is cut between characters. A wide character (CJK, kana, Hangul) counts as two
    columns. Any other word longer than ``max_chars`` stands alone on its own line.

    Args:
        text: The text to wrap; runs of whitespace (newlines too) count as one space.
        max_chars: The widest line wanted, at least 1.

    Returns:
        The lines, without leading or trailing spaces; empty for blank text.
    """
    if max_chars < 1:
        raise UsageError("max_chars", f"must be at least 1, got {max_chars!r}")
    lines: list[list[str]] = []
    current: list[str] = []
    for token in break_tokens(text, max_chars):
        if current and text_width(join_tokens([*current, token])) > max_chars:
            lines.append(current)
            current = []
        current.append(token)
    if current:
        lines.append(current)
    return [join_tokens(line) for line in lines]
