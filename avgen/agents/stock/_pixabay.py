"""Pixabay: `PixabayImages` (``/api/``) and `PixabayClips` (``/api/videos/``).

The key goes in the query string (never quoted in an error). Searches are kept 24 hours,
as Pixabay asks, and media is downloaded, never hotlinked.
"""

from __future__ import annotations

__docformat__ = "google"

import urllib.parse
from typing import Any

from avgen.agents.stock._kinds import StockClips, StockImages

__all__ = ["PixabayClips", "PixabayImages"]

PER_PAGE = 20
"""Results asked for by one search."""

_ORIENTATION = {"landscape": "horizontal", "portrait": "vertical"}


def _user_url(hit: dict[str, Any]) -> str | None:
    user, user_id = hit.get("user"), hit.get("user_id")
    return f"https://pixabay.com/users/{user}-{user_id}/" if user and user_id else None


def _title(hit: dict[str, Any]) -> str | None:
    tags = hit.get("tags")
    return str(tags) if tags else None


def _scaled(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = min(1.0, longest / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Pixabay:
    provider = "pixabay"
    key_variable = "PIXABAY_API_KEY"
    license = "Pixabay Content License"
    default_base_url = "https://pixabay.com"
    key_page = "https://pixabay.com/api/docs/"
    api_key: str | None
    base_url: str

    def _url(self, path: str, query: str, extra: dict[str, Any]) -> str:
        params = urllib.parse.urlencode({"key": self.api_key or "", "q": query,
                                         "safesearch": "true", "per_page": PER_PAGE, **extra})
        return f"{self.base_url}{path}?{params}"

    def _credit(self, hit: dict[str, Any]) -> dict[str, Any]:
        return {"id": hit.get("id"), "title": _title(hit), "author": hit.get("user"),
                "author_url": _user_url(hit), "page_url": hit.get("pageURL")}


class PixabayImages(_Pixabay, StockImages):
    """Photos from Pixabay (an `avgen.agents.ImageGenerator`), credited to their author.

    Args:
        api_key: The key (default: ``$PIXABAY_API_KEY``).
        base_url: The service's address (default ``https://pixabay.com``).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds one HTTP request may take.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        extra: dict[str, Any] = {"image_type": "photo"}
        if shape in _ORIENTATION:
            extra["orientation"] = _ORIENTATION[shape]
        return self._url("/api/", query, extra)

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        hits = answer.get("hits") if isinstance(answer, dict) else None
        found = []
        for hit in hits or []:
            if not isinstance(hit, dict):
                continue
            files: list[list[Any]] = []
            if hit.get("webformatURL"):
                files.append([hit.get("webformatWidth") or 0, hit.get("webformatHeight") or 0,
                              hit["webformatURL"]])
            width, height = int(hit.get("imageWidth") or 0), int(hit.get("imageHeight") or 0)
            if hit.get("largeImageURL") and width > 0 and height > 0:
                files.append([*_scaled(width, height, 1280), hit["largeImageURL"]])
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
        timeout: Seconds one HTTP request may take.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        return self._url("/api/videos/", query, {"video_type": "film"})

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        hits = answer.get("hits") if isinstance(answer, dict) else None
        found = []
        for hit in hits or []:
            if not isinstance(hit, dict):
                continue
            videos = hit.get("videos") or {}
            files = [[v.get("width") or 0, v.get("height") or 0, v.get("url") or ""]
                     for name in ("large", "medium", "small", "tiny")
                     if isinstance(v := videos.get(name), dict)]
            found.append({**self._credit(hit), "duration": hit.get("duration"),
                          "renditions": files})
        return found
