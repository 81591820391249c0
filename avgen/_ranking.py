"""English word tokens for BM25 (`bm25s`), with Snowball stemming from `PyStemmer`: the one
way the media library and the cards' icons turn text into terms."""

from __future__ import annotations

__docformat__ = "google"

import threading
from collections.abc import Sequence
from typing import Any

__all__: list[str] = []

_local = threading.local()


def _stemmer() -> Any:
    """This thread's English stemmer (made once per thread: a stemmer keeps state)."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer

        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def tokenize(texts: Sequence[str]) -> Any:
    """``bm25s.tokenize`` of ``texts``: English stop words out, words stemmed."""
    import bm25s

    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False)
