"""Pixabay: `PixabayImages` (``/api/``) and `PixabayClips` (``/api/videos/``).

The key goes in the query string (never quoted in an error). Searches are kept 24 hours,
as Pixabay asks, and media is downloaded, never hotlinked: from ``pixabay.com`` and
``vimeo.com`` hosts (``https``).
"""

from __future__ import annotations

__docformat__ = "google"

import urllib.parse
from typing import Any

from avgen.agents.stock._common import (
    count_field,
    dict_field,
    results,
    seconds_field,
    text_field,
)
from avgen.agents.stock._kinds import StockClips, StockImages

__all__ = ["PixabayClips", "PixabayImages"]

PER_PAGE = 20
"""Results asked for by one search."""

_ORIENTATION = {"landscape": "horizontal", "portrait": "vertical"}


def _user_url(hit: dict[str, Any]) -> str | None:
    user, user_id = text_field(hit.get("user")), count_field(hit.get("user_id"))
    if not user or not user_id:
        return None
    return f"https://pixabay.com/users/{urllib.parse.quote(user, safe='')}-{user_id}/"


def _title(hit: dict[str, Any]) -> str | None:
    return text_field(hit.get("tags"))


def _scaled(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Pixabay:
    provider = "pixabay"
    key_variable = "PIXABAY_API_KEY"
    url_variable = "PIXABAY_API_URL"
    license = "Pixabay Content License"
    default_base_url = "https://pixabay.com"
    key_page = "https://pixabay.com/api/docs/"
    media_hosts: tuple[str, ...] = ("pixabay.com", "vimeo.com")
    api_key: str | None
    base_url: str

    def _url(self, path: str, query: str, extra: dict[str, Any]) -> str:
        params = urllib.parse.urlencode({"key": self.api_key or "", "q": query,
                                         "safesearch": "true", "per_page": PER_PAGE, **extra})
        return f"{self.base_url}{path}?{params}"

    def _credit(self, hit: dict[str, Any]) -> dict[str, Any]:
        return {"id": count_field(hit.get("id")) or None, "title": _title(hit),
                "author": text_field(hit.get("user")), "author_url": _user_url(hit),
                "page_url": text_field(hit.get("pageURL"))}


class PixabayImages(_Pixabay, StockImages):
    """Photos from Pixabay (an `avgen.agents.ImageGenerator`), credited to their author.

    Args:
        api_key: The key (default: ``$PIXABAY_API_KEY``).
        base_url: The service's address (default ``https://pixabay.com``).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds each read of an answer (and each connection) may wait.
        deadline: Seconds one search or download may take in all.
        max_bytes: The largest file downloaded.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        extra: dict[str, Any] = {"image_type": "photo"}
        if shape in _ORIENTATION:
            extra["orientation"] = _ORIENTATION[shape]
        return self._url("/api/", query, extra)

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        found = []
        for hit in results(answer, "hits", self.name):
            files: list[list[Any]] = []
            if web := text_field(hit.get("webformatURL")):
                files.append([count_field(hit.get("webformatWidth")),
                              count_field(hit.get("webformatHeight")), web])
            width = count_field(hit.get("imageWidth"))
            height = count_field(hit.get("imageHeight"))
            if (large := text_field(hit.get("largeImageURL"))) and width > 0 and height > 0:
                files.append([*_scaled(width, height, 1280), large])
            found.append({**self._credit(hit), "renditions": files})
        return found


class PixabayClips(_Pixabay, StockClips):
    """Videos from Pixabay (an `avgen.agents.ClipGenerator`), credited to their author.

    Pixabay's video search has no orientation filter: a result in the preset's
    orientation is preferred among those it returns.

    Args:
        api_key: The key (default: ``$PIXABAY_API_KEY``).
        base_url: The service's address (default ``https://pixabay.com``).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds each read of an answer (and each connection) may wait.
        deadline: Seconds one search or download may take in all.
        max_bytes: The largest file downloaded.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        return self._url("/api/videos/", query, {"video_type": "film"})

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        found = []
        for hit in results(answer, "hits", self.name):
            videos = dict_field(hit.get("videos"))
            files = [[count_field(v.get("width")), count_field(v.get("height")),
                      text_field(v.get("url")) or ""]
                     for name in ("large", "medium", "small", "tiny")
                     if isinstance(v := videos.get(name), dict)]
            found.append({**self._credit(hit), "duration": seconds_field(hit.get("duration")),
                          "renditions": files})
        return found
