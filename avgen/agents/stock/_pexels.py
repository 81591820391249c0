"""Pexels: `PexelsImages` (``/v1/search``) and `PexelsClips` (``/videos/search``).

The key goes in the ``Authorization`` header. Photos list one original size and a few
resized ``src`` addresses whose sizes follow from Pexels' documented bounds; videos list
their ``video_files`` with sizes.
"""

from __future__ import annotations

__docformat__ = "google"

import urllib.parse
from typing import Any

from avgen.agents.stock._common import title_from_page
from avgen.agents.stock._kinds import StockClips, StockImages

__all__ = ["PexelsClips", "PexelsImages"]

PER_PAGE = 15
"""Results asked for by one search."""

_BOUNDS = (("large2x", 1880, 1300), ("large", 940, 650), ("medium", None, 350),
           ("small", None, 130))
"""Pexels' resized photos: fit within width x height (None: any width), never enlarged."""


def photo_renditions(photo: dict[str, Any]) -> list[list[Any]]:
    """``[width, height, url]`` of a Pexels photo's original and resized files."""
    src = photo.get("src") or {}
    width, height = int(photo.get("width") or 0), int(photo.get("height") or 0)
    found: list[list[Any]] = []
    if width <= 0 or height <= 0:
        return found
    if src.get("original"):
        found.append([width, height, src["original"]])
    for name, max_w, max_h in _BOUNDS:
        if not src.get(name):
            continue
        scale = min(1.0, max_h / height, (max_w / width) if max_w else 1.0)
        found.append([max(1, round(width * scale)), max(1, round(height * scale)), src[name]])
    return found


class _Pexels:
    provider = "pexels"
    key_variable = "PEXELS_API_KEY"
    license = "Pexels License"
    default_base_url = "https://api.pexels.com"
    key_page = "https://www.pexels.com/api/"
    api_key: str | None

    base_url: str

    def _headers(self) -> dict[str, str]:
        return {"Authorization": self.api_key or ""}

    def _url(self, path: str, query: str, shape: str) -> str:
        params = urllib.parse.urlencode({"query": query, "orientation": shape,
                                         "per_page": PER_PAGE})
        return f"{self.base_url}{path}?{params}"


class PexelsImages(_Pexels, StockImages):
    """Photos from Pexels (an `avgen.agents.ImageGenerator`), credited to the photographer.

    Args:
        api_key: The key (default: ``$PEXELS_API_KEY``).
        base_url: The API's address (default ``https://api.pexels.com``).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds one HTTP request may take.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        return self._url("/v1/search", query, shape)

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        photos = answer.get("photos") if isinstance(answer, dict) else None
        return [{"id": p.get("id"), "title": p.get("alt") or title_from_page(p.get("url") or ""),
                 "author": p.get("photographer"), "author_url": p.get("photographer_url"),
                 "page_url": p.get("url"), "renditions": photo_renditions(p)}
                for p in photos or [] if isinstance(p, dict)]


class PexelsClips(_Pexels, StockClips):
    """Videos from Pexels (an `avgen.agents.ClipGenerator`), credited to the videographer.

    Args:
        api_key: The key (default: ``$PEXELS_API_KEY``).
        base_url: The API's address (default ``https://api.pexels.com``).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds one HTTP request may take.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        return self._url("/videos/search", query, shape)

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        videos = answer.get("videos") if isinstance(answer, dict) else None
        found = []
        for video in videos or []:
            if not isinstance(video, dict):
                continue
            user = video.get("user") or {}
            files = [[f.get("width") or 0, f.get("height") or 0, f.get("link") or ""]
                     for f in video.get("video_files") or []
                     if isinstance(f, dict) and (f.get("file_type") or "video/mp4") == "video/mp4"]
            found.append({"id": video.get("id"),
                          "title": title_from_page(video.get("url") or ""),
                          "author": user.get("name"), "author_url": user.get("url"),
                          "page_url": video.get("url"), "duration": video.get("duration"),
                          "renditions": files})
        return found
