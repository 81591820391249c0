"""The two jobs of a stock agent: a still for a scene, or a clip for a scene."""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avgen._models import ClipAsset, ImageAsset, Preset, Scene
from avgen.agents.stock._common import NoMatch, Rendition, StockAgent, choose_rendition
from avgen.errors import MediaError
from avgen.media._ffmpeg import MediaInfo

__all__: list[str] = []


def renditions(candidate: dict[str, Any]) -> list[Rendition]:
    """The usable renditions of a candidate (size known, address given)."""
    found = []
    for item in candidate.get("renditions") or []:
        try:
            width, height, url = int(item[0]), int(item[1]), str(item[2])
        except (TypeError, ValueError, IndexError):
            continue
        if width > 0 and height > 0 and url:
            found.append(Rendition(width, height, url))
    return found


def _shape(candidate: dict[str, Any]) -> str:
    usable = renditions(candidate)
    biggest = max(usable, key=lambda r: r.width * r.height)
    if biggest.width > biggest.height:
        return "landscape"
    return "portrait" if biggest.width < biggest.height else "square"


def choose_candidate(candidates: Sequence[dict[str, Any]], shape: str,
                     seconds: float | None = None) -> dict[str, Any] | None:
    """The result to use: the first (the service's best match) with a usable rendition,
    preferring one in the preset's orientation and, for clips, one lasting ``seconds``."""
    usable = [c for c in candidates if renditions(c)]
    if not usable:
        return None

    def rank(item: tuple[int, dict[str, Any]]) -> tuple[int, int, int]:
        index, candidate = item
        long_enough = seconds is None or float(candidate.get("duration") or 0) >= seconds
        return (_shape(candidate) != shape, not long_enough, index)

    return min(enumerate(usable), key=rank)[1]


def _still(info: MediaInfo) -> None:
    if not info.has_video or not info.width or not info.height:
        raise MediaError("the download is not a picture", info.path)


def _moving(info: MediaInfo) -> None:
    if not info.has_video or not info.width or not info.height or not info.duration:
        raise MediaError("the download is not a video clip", info.path)


class StockImages(StockAgent):
    """A stock library's photos as an `avgen.agents.ImageGenerator`."""

    kind = "images"

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Find a photo for ``scene`` in the preset's orientation and write it at ``target``.

        The search and the download are made once: a later run with the same cache asks
        the service nothing.

        Raises:
            AgentError: Nothing was found (the scene falls back to the next tier).
            RateLimited: The service asked to slow down (retried once the limit resets).
            ServiceUnavailable: The service is down (retried, then the breaker opens).
            MediaError: The download is not a picture.
        """
        query, shape = self._pick(scene, preset)
        chosen = choose_candidate(await self._candidates(query, shape), shape)
        if chosen is None:
            raise NoMatch(f"no photo found for {query!r}", self.name)
        rendition = choose_rendition(renditions(chosen), preset.width, preset.height)
        info = await self._fetch_file(rendition.url, target, _still)
        return ImageAsset(target, info.width, info.height, source=self.source(chosen))


class StockClips(StockAgent):
    """A stock library's videos as an `avgen.agents.ClipGenerator`."""

    kind = "clips"

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        """Find a video for ``scene`` (preferring one in the preset's orientation lasting
        ``seconds``) and write it at ``target``; the composer fits it to the narration.

        The search and the download are made once: a later run with the same cache asks
        the service nothing.

        Raises:
            AgentError: Nothing was found (the scene falls back to the next tier).
            RateLimited: The service asked to slow down (retried once the limit resets).
            ServiceUnavailable: The service is down (retried, then the breaker opens).
            MediaError: The download is not a video.
        """
        query, shape = self._pick(scene, preset)
        chosen = choose_candidate(await self._candidates(query, shape), shape, seconds)
        if chosen is None:
            raise NoMatch(f"no video found for {query!r}", self.name)
        rendition = choose_rendition(renditions(chosen), preset.width, preset.height)
        info = await self._fetch_file(rendition.url, target, _moving)
        return ClipAsset(target, float(info.duration or 0.0), info.width, info.height,
                         fps=info.fps or 30.0, has_audio=info.has_audio,
                         source=self.source(chosen))
