"""Search terms for a scene, found offline: `extract_terms` runs YAKE (the ``yake``
package: statistical keyword extraction, stop-word lists for some thirty languages in the
package, no model, no network) over the scene's heading and narration.

A stock engine answers two or three well-chosen words, not a sentence: the terms are short
(one to three words), the most specific first (the best two-word phrases), then single
words, the broadest last. Languages without spaces between words (Chinese, Japanese, Thai)
and languages YAKE keeps no stop words for are not served: there the heading's first words
stand in, or nothing.
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import unicodedata
from collections import Counter
from collections.abc import Sequence
from typing import Any

from avgen._models import MAX_TERM_CHARS, MAX_TERM_WORDS, Scene, search_terms
from avgen.errors import UsageError

__all__: list[str] = []

SERVED_LANGUAGES = frozenset({
    "ar", "bg", "br", "cs", "da", "de", "el", "en", "es", "et", "fa", "fi", "fr", "hi", "hr",
    "hu", "hy", "id", "it", "lt", "lv", "nl", "no", "nb", "pl", "pt", "ro", "ru", "sk", "sl",
    "sv", "tr", "uk"})
"""Languages (ISO 639-1) YAKE extracts terms for: those it ships stop words for, written
with spaces between words."""

_YAKE_CODES = {"cs": "cz", "nb": "no"}
"""Where YAKE names a stop-word list differently from ISO 639-1."""

MAX_TERMS = 3
"""Terms extracted for a scene."""


def _language(language: str | None) -> str:
    code = (language or "en").replace("_", "-").split("-")[0].lower()
    return code or "en"


_VAGUE = {"en": frozenset({
    "time", "times", "day", "days", "morning", "evening", "night", "year", "years", "way",
    "part", "long", "work", "lot", "thing", "things", "hundreds", "thousands", "millions",
    "miles", "kilometres", "kilometers", "quarter", "single", "first", "last", "today",
    "moment", "kind", "place", "people"})}
"""Words too vague to film (a stock engine answers them with anything), by language."""


def _filmable(word: str, language: str) -> bool:
    """Whether a word can name what a shot shows: not in `_VAGUE`, and (in English) not
    an adverb in ``-ly``."""
    if word in _VAGUE.get(language, ()):
        return False
    return not (language == "en" and len(word) > 4 and word.endswith("ly"))


def _words(text: str) -> list[str]:
    """The words of ``text``: split at spaces, punctuation and symbols stripped from each
    end (combining marks stay: Devanagari, Arabic vowels), numbers and empty ones left
    out."""
    found = []
    for token in text.split():
        start, end = 0, len(token)
        while start < end and unicodedata.category(token[start])[0] in "PSZC":
            start += 1
        while end > start and unicodedata.category(token[end - 1])[0] in "PSZC":
            end -= 1
        word = token[start:end]
        if any(ch.isalnum() for ch in word):
            found.append(word)
    return found


def _clean(phrase: str) -> str:
    return " ".join(_words(phrase)).lower()


def _usable(term: str) -> bool:
    """Whether ``term`` is a valid `avgen.Scene.search_terms` entry."""
    try:
        search_terms([term])
    except UsageError:
        return False
    return True


def _extractor(language: str, size: int) -> Any:
    """A YAKE extractor (a new one per call: it keeps caches of its own), with the
    language's stop words read once (`_stopwords`)."""
    import yake  # here, not at import: it loads numpy and networkx

    code = _YAKE_CODES.get(language, language)
    return yake.KeywordExtractor(lan=code, n=size, dedupLim=0.9, top=20,
                                 stopwords=_stopwords(code))


@functools.cache
def _stopwords(code: str) -> frozenset[str]:
    """YAKE's stop words of the language ``code`` (its file read once per process)."""
    import yake

    return frozenset(yake.KeywordExtractor(lan=code).stopword_set)


def extract_terms(title: str, text: str, language: str | None = "en") -> tuple[str, ...]:
    """Up to `MAX_TERMS` search terms for a scene, most specific first, a broader one last.

    The best two-word phrase comes first, then the single words most of the top five
    phrases share (a word of the heading first among equals, then YAKE's order). Words
    too vague to film (``time``, ``day``, ``people``… in English) and English adverbs
    are left out, and so are numbers. The heading counts twice (it names what the scene
    is about). Words are lower-cased.

    Example:
        >>> extract_terms("Coral reefs", "Coral reefs shelter a quarter of all fish.")
        ('coral reefs', 'reefs', 'coral')

    Args:
        title: The scene's heading (may be empty).
        text: The scene's narration.
        language: Its BCP 47 language (``None``: English).

    Returns:
        The terms; empty when the language is not served and there is no heading, or the
        text has no word.
    """
    code = _language(language)
    if code not in SERVED_LANGUAGES:
        words = _words(title)[:MAX_TERM_WORDS]
        term = " ".join(words).lower()[:MAX_TERM_CHARS].strip()
        return (term,) if words and _usable(term) else ()
    heading = title.strip().rstrip(".!?:;")
    body = " ".join(f"{heading}. {heading}. {text}".split()) if heading else " ".join(
        text.split())
    if not _words(body):
        return ()
    found = _extractor(code, 2).extract_keywords(body)
    phrases = [_clean(str(k)) for k, _ in found]
    phrases = [p for p in phrases if p and not any(w.isdigit() for w in p.split())]
    filmable = [p for p in phrases if all(_filmable(w, code) for w in p.split())]
    pairs = [p for p in filmable if len(p.split()) == 2]
    singles = [p for p in filmable if len(p.split()) == 1]
    heading_words = set(_clean(heading).split())
    shared = Counter(word for pair in pairs[:5] for word in pair.split())
    broad = [word for _, word in sorted(enumerate(singles), key=lambda item: (
        -shared[item[1]], item[1] not in heading_words, item[0]))]
    terms: list[str] = []
    for term in [*pairs[:1], *broad, *pairs[1:], *phrases]:
        if len(terms) >= MAX_TERMS:
            break
        if term not in terms and _usable(term):
            terms.append(term)
    return tuple(terms)


def scene_terms(scene: Scene, language: str | None = "en",
                fallback: Sequence[str] = ()) -> tuple[str, ...]:
    """The scene's own `Scene.search_terms`, else terms extracted from its title and
    narration (`extract_terms`), else ``fallback``."""
    if scene.search_terms:
        return scene.search_terms
    return extract_terms(scene.title, scene.narration, language) or tuple(fallback)
