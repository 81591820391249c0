"""Pexels: `PexelsImages` (``/v1/search``) and `PexelsClips` (``/videos/search``).

The key goes in the ``Authorization`` header (to ``api.pexels.com`` only). Photos list one
original size and a few resized ``src`` addresses whose sizes follow from Pexels' documented
bounds; videos list their ``video_files`` with sizes. Files are downloaded from
``pexels.com`` and ``vimeo.com`` hosts (``https``).
"""

from __future__ import annotations

__docformat__ = "google"

import urllib.parse
from typing import Any

from avgen.agents.stock._common import (
    count_field,
    dict_field,
    list_field,
    results,
    seconds_field,
    text_field,
    title_from_page,
)
from avgen.agents.stock._kinds import StockClips, StockImages

__all__ = ["PexelsClips", "PexelsImages"]

PER_PAGE = 15
"""Results asked for by one search."""

_BOUNDS = (("large2x", 1880, 1300), ("large", 940, 650), ("medium", None, 350),
           ("small", None, 130))
"""Pexels' resized photos: fit within width x height (None: any width), never enlarged."""


def photo_renditions(photo: dict[str, Any]) -> list[list[Any]]:
    """``[width, height, url]`` of a Pexels photo's original and resized files."""
    src = dict_field(photo.get("src"))
    width, height = count_field(photo.get("width")), count_field(photo.get("height"))
    found: list[list[Any]] = []
    if width <= 0 or height <= 0:
        return found
    if original := text_field(src.get("original")):
        found.append([width, height, original])
    for name, max_w, max_h in _BOUNDS:
        link = text_field(src.get(name))
        if not link:
            continue
        scale = min(1.0, max_h / height, (max_w / width) if max_w else 1.0)
        found.append([max(1, round(width * scale)), max(1, round(height * scale)), link])
    return found


class _Pexels:
    provider = "pexels"
    key_variable = "PEXELS_API_KEY"
    url_variable = "PEXELS_API_URL"
    license = "Pexels License"
    default_base_url = "https://api.pexels.com"
    key_page = "https://www.pexels.com/api/"
    media_hosts: tuple[str, ...] = ("pexels.com", "vimeo.com")
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
        timeout: Seconds each read of an answer (and each connection) may wait.
        deadline: Seconds one search or download may take in all.
        max_bytes: The largest file downloaded.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        return self._url("/v1/search", query, shape)

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        return [{"id": count_field(p.get("id")) or None,
                 "title": text_field(p.get("alt")) or title_from_page(p.get("url")),
                 "author": text_field(p.get("photographer")),
                 "author_url": text_field(p.get("photographer_url")),
                 "page_url": text_field(p.get("url")), "renditions": photo_renditions(p)}
                for p in results(answer, "photos", self.name)]


class PexelsClips(_Pexels, StockClips):
    """Videos from Pexels (an `avgen.agents.ClipGenerator`), credited to the videographer.

    Args:
        api_key: The key (default: ``$PEXELS_API_KEY``).
        base_url: The API's address (default ``https://api.pexels.com``).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds each read of an answer (and each connection) may wait.
        deadline: Seconds one search or download may take in all.
        max_bytes: The largest file downloaded.
        env: Where the key is read (default: ``os.environ``).
    """

    def _search_url(self, query: str, shape: str) -> str:
        return self._url("/videos/search", query, shape)

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        found = []
        for video in results(answer, "videos", self.name):
            user = dict_field(video.get("user"))
            files = [[count_field(f.get("width")), count_field(f.get("height")),
                      text_field(f.get("link")) or ""]
                     for f in list_field(video.get("video_files"))
                     if isinstance(f, dict)
                     and (text_field(f.get("file_type")) or "video/mp4") == "video/mp4"]
            found.append({"id": count_field(video.get("id")) or None,
                          "title": title_from_page(video.get("url")),
                          "author": text_field(user.get("name")),
                          "author_url": text_field(user.get("url")),
                          "page_url": text_field(video.get("url")),
                          "duration": seconds_field(video.get("duration")),
                          "renditions": files})
        return found
