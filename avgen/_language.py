"""Which language a text is written in, as far as its writing system tells.

A voice speaks its own language: Piper's English voice reads a Hebrew script letter by letter
("hebrew kaf, hebrew lamed …"). Before anything is made, a narrator compares what it speaks
with the request's language and with the script's writing system (`written_in`), which is
unambiguous for the scripts that only a few languages use; Latin-script languages are not
told apart here (the request's ``language`` says which).
"""

from __future__ import annotations

__docformat__ = "google"

import unicodedata
from collections import Counter

__all__: list[str] = []

# Unicode character-name prefixes of writing systems, and the languages they mean.
_SCRIPTS: dict[str, tuple[str, str]] = {
    "HEBREW": ("he", "Hebrew"),
    "ARABIC": ("ar", "Arabic"),
    "CJK": ("zh", "Chinese"),
    "HIRAGANA": ("ja", "Japanese"),
    "KATAKANA": ("ja", "Japanese"),
    "HANGUL": ("ko", "Korean"),
    "DEVANAGARI": ("hi", "Hindi"),
    "THAI": ("th", "Thai"),
    "CYRILLIC": ("ru", "Russian"),
    "GREEK": ("el", "Greek"),
    "BENGALI": ("bn", "Bengali"),
    "TAMIL": ("ta", "Tamil"),
    "GEORGIAN": ("ka", "Georgian"),
    "ARMENIAN": ("hy", "Armenian"),
}
_SHARE = 0.3  # of the letters: enough to be what the text is written in


def base(language: str) -> str:
    """``en`` for ``en``, ``en-US``, ``en_US``."""
    return language.replace("_", "-").split("-")[0].lower()


def written_in(text: str) -> tuple[str, str] | None:
    """The (language code, writing system) the letters of ``text`` are mostly written in,
    when it is not the Latin alphabet (``None`` for Latin text, or no letters). Japanese
    wins over Chinese when kana are present; Cyrillic is taken for Russian."""
    counts: Counter[str] = Counter()
    letters = 0
    for char in text:
        if not char.isalpha():
            continue
        letters += 1
        name = unicodedata.name(char, "")
        for prefix in _SCRIPTS:
            if name.startswith(prefix):
                counts[prefix] += 1
                break
    if not letters or not counts:
        return None
    if counts["HIRAGANA"] or counts["KATAKANA"]:
        counts["HIRAGANA"] += counts.pop("CJK", 0) + counts.pop("KATAKANA", 0)
    script, count = counts.most_common(1)[0]
    if count < _SHARE * letters:
        return None
    return _SCRIPTS[script]
