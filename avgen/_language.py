"""Which language a text is written in.

A voice speaks its own language: Piper's English voice reads a Hebrew script letter by letter
("hebrew kaf, hebrew lamed …") and a Spanish one with English sounds. Before anything is
made, a request without a ``language`` gets the one its script is written in (`resolved`),
and a narrator compares what it speaks with the request's language and the script's
(`detect`). The writing system settles it for the scripts only a few languages use
(`written_in`); Latin-script text is told apart by py3langid's naive Bayes model, trusted
only when the text is long enough and the model sure.
"""

from __future__ import annotations

__docformat__ = "google"

import functools
import logging
import re
import threading
import unicodedata
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from avgen._models import VideoRequest

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
    if text.isascii():  # no letter outside the Latin alphabet
        return None
    counts: Counter[str] = Counter()
    letters = 0
    for char in text:
        if not char.isalpha():
            continue
        letters += 1
        if char < "\u0250":  # the Latin alphabet and its extensions
            continue
        system = _system_of(char)
        if system is not None:
            counts[system] += 1
    if not letters or not counts:
        return None
    if counts["HIRAGANA"] or counts["KATAKANA"]:
        counts["HIRAGANA"] += counts.pop("CJK", 0) + counts.pop("KATAKANA", 0)
    script, count = counts.most_common(1)[0]
    if count < _SHARE * letters:
        return None
    return _SCRIPTS[script]


@functools.lru_cache(maxsize=4096)
def _system_of(char: str) -> str | None:
    """The `_SCRIPTS` prefix of ``char``'s Unicode name, if any (looked up once a
    character: a batch checks the script of every row)."""
    name = unicodedata.name(char, "")
    return next((prefix for prefix in _SCRIPTS if name.startswith(prefix)), None)


_LATIN: dict[str, str] = {
    "en": "English", "es": "Spanish", "fr": "French", "de": "German", "it": "Italian",
    "pt": "Portuguese", "nl": "Dutch", "pl": "Polish", "cs": "Czech", "sk": "Slovak",
    "sl": "Slovenian", "hr": "Croatian", "ro": "Romanian", "hu": "Hungarian", "sv": "Swedish",
    "da": "Danish", "no": "Norwegian", "fi": "Finnish", "is": "Icelandic", "lv": "Latvian",
    "lt": "Lithuanian", "tr": "Turkish", "vi": "Vietnamese", "id": "Indonesian",
    "ms": "Malay", "ca": "Catalan", "cy": "Welsh", "lb": "Luxembourgish", "sw": "Swahili",
    "tl": "Tagalog",
}
"""The Latin-script languages told apart (those narrators speak), by code."""
_MIN_WORDS = 4
"""Fewer words than this say too little to tell a Latin-script language."""
_SURE = 0.9
"""The model's probability (among `_LATIN`) above which its answer is taken."""
_MARKUP = re.compile(r"[#*_`>|\[\]()]+")
_logger = logging.getLogger("avgen")


_LOADING = threading.Lock()


def _identifier() -> Any:
    """py3langid's model, limited to `_LATIN`: loaded once per process, by the
    first thread that needs it while the others wait (threads of a Dask worker each
    loading their own copy at once took seconds)."""
    with _LOADING:
        return _loaded_identifier()


@functools.cache
def _loaded_identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = _unpacked_identifier()
    if identifier is None:
        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(_LATIN))
    return identifier


_ARRAYS = ("ptc", "pc", "classes", "nextmove", "out_feat", "nextmove_row")
"""The arrays of py3langid's model, each kept in a ``.npy`` file of its own."""


def _unpacked_identifier() -> Any:
    """py3langid's model read from an unpacked copy kept in ``<cache>/langid/`` (made on
    first use), one ``.npy`` file per array, memory-mapped: the packaged model is
    LZMA-compressed, and unpacking it was most of the load, then reading its 67 MB whole
    most of the rest; a text's classification reads a few pages of them
    (``benchmarks/offline.py`` prints both). None when the copy cannot be made or read, or
    this py3langid lays its model out otherwise: the caller loads the packaged model."""
    import lzma
    import shutil
    from importlib.metadata import version

    import numpy as np

    from avgen._cache_root import derived_file

    path: Path | None = None
    try:
        from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier
        from py3langid.modelio import _to_array

        packed = MODEL_DIR / MODEL_FILE

        def unpack(target: Path) -> None:
            target.mkdir()
            whole = target / "model.npz"
            with lzma.open(packed) as source, whole.open("wb") as unpacked:
                shutil.copyfileobj(source, unpacked, length=1 << 20)
            with np.load(whole, allow_pickle=False) as data:
                for name in _ARRAYS:  # one array in memory at a time
                    np.save(target / f"{name}.npy", data[name], allow_pickle=False)
            whole.unlink()

        stat = packed.stat()
        key = [str(packed), stat.st_size, stat.st_mtime_ns, version("py3langid"), "npy"]
        path = derived_file("langid", "model", key, unpack)
        if path is None:
            return None
        data = {name: np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
                for name in _ARRAYS}
        return LanguageIdentifier(
            data["ptc"], np.asarray(data["pc"]), data["classes"].tolist(),
            _to_array(data["nextmove"]), data["out_feat"].tolist(), norm_probs=True,
            tk_row=_to_array(data["nextmove_row"]))
    except Exception:  # a damaged copy, or a py3langid that reads its model otherwise
        _logger.debug("py3langid's unpacked model could not be used", exc_info=True)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)  # made again next time
        return None


def detect(text: str) -> tuple[str, str] | None:
    """The (language code, name) ``text`` is written in, when it can be told: from the
    writing system (`written_in`), or for Latin-script text of at least four words from
    py3langid when it is at least 90 % sure; ``None`` otherwise.

    Example:
        >>> detect("Los ríos llevan el agua de vuelta al mar cada día.")
        ('es', 'Spanish')
        >>> detect("שלום עולם")
        ('he', 'Hebrew')
        >>> detect("Hi there.") is None
        True
    """
    written = written_in(text)
    if written is not None:
        return written
    plain = _MARKUP.sub(" ", text)
    if len([w for w in plain.split() if any(c.isalpha() for c in w)]) < _MIN_WORDS:
        return None
    code, probability = _identifier().classify(plain)
    if probability < _SURE or code not in _LATIN:
        return None
    return code, _LATIN[code]


def resolved(request: VideoRequest) -> VideoRequest:
    """``request`` with its ``language`` filled in when it is ``None``: the language its
    script (or else its topic) is written in (`detect`), or English when that cannot be
    told; with `avgen.VideoRequest.languages`, the first of them."""
    if request.languages:
        return attrs.evolve(request, language=request.languages[0])
    if request.language is not None:
        return request
    found = detect(request.script or request.topic or "")
    code = found[0] if found else "en"
    _logger.info("language: %s (%s)", code, f"detected: {found[1]}" if found
                 else "not told by the text; the default")
    return attrs.evolve(request, language=code)
