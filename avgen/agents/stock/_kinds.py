"""The two jobs of a stock agent: a still for a scene, or a clip for a scene."""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avgen._models import ClipAsset, ImageAsset, Preset, Scene
from avgen.agents._download import Reach
from avgen.agents.stock._common import (
    Rendition,
    StockAgent,
    choose_rendition,
    count_field,
    list_field,
    seconds_field,
    text_field,
)
from avgen.errors import AgentError, MediaError, NoMatch
from avgen.media._ffmpeg import MediaInfo

__all__: list[str] = []


def _listed(candidate: dict[str, Any]) -> list[Rendition]:
    """Every rendition of a candidate whose size and address are given."""
    found = []
    for item in list_field(candidate.get("renditions")):
        if not isinstance(item, list) or len(item) != 3:
            continue
        width, height, url = count_field(item[0]), count_field(item[1]), text_field(item[2])
        if width > 0 and height > 0 and url:
            found.append(Rendition(width, height, url))
    return found


def renditions(candidate: dict[str, Any], reach: Reach) -> list[Rendition]:
    """The usable renditions of a candidate: size known, an address ``reach`` allows."""
    return [r for r in _listed(candidate) if reach.refusal(r.url) is None]


def _shape(usable: Sequence[Rendition]) -> str:
    biggest = max(usable, key=lambda r: r.width * r.height)
    if biggest.width > biggest.height:
        return "landscape"
    return "portrait" if biggest.width < biggest.height else "square"


def choose_candidate(candidates: Sequence[dict[str, Any]], shape: str, reach: Reach,
                     seconds: float | None = None) -> dict[str, Any] | None:
    """The result to use: the first (the service's best match) with a usable rendition,
    preferring one in the preset's orientation and, for clips, one lasting ``seconds``."""
    usable = [(c, files) for c in candidates if (files := renditions(c, reach))]
    if not usable:
        return None

    def rank(item: tuple[int, tuple[dict[str, Any], list[Rendition]]]) -> tuple[int, int, int]:
        index, (candidate, files) = item
        long_enough = seconds is None or seconds_field(candidate.get("duration")) >= seconds
        return (_shape(files) != shape, not long_enough, index)

    return min(enumerate(usable), key=rank)[1][0]


def nothing_usable(agent: StockAgent, candidates: Sequence[dict[str, Any]], query: str,
                   kind: str) -> AgentError:
    """Why no candidate can be used: the search found nothing (`NoMatch`), or what it
    found names no file with a size and an address the agent may download."""
    if not candidates:
        return NoMatch(f"no {kind} found for {query!r}", agent.name)
    refused = next((reason for c in candidates for r in _listed(c)
                    if (reason := agent.reach.refusal(r.url)) is not None), None)
    why = refused or "no file has both a size and an address"
    return AgentError(f"the {agent.provider} search for {query!r} gave {len(candidates)} "
                      f"result{'s' if len(candidates) != 1 else ''}, none with a file avgen "
                      f"may download ({why})", agent.name)


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
            AgentError: Nothing usable was found: no result, or none naming a file that
                may be downloaded (the scene falls back to the next tier).
            RateLimited: The service asked to slow down (retried once the limit resets).
            ServiceUnavailable: The service is down (retried, then the breaker opens).
            MediaError: The download is not a picture.
        """
        query, shape = self._pick(scene, preset)
        candidates = await self._candidates(query, shape)
        chosen = choose_candidate(candidates, shape, self.reach)
        if chosen is None:
            raise nothing_usable(self, candidates, query, "photo")
        rendition = choose_rendition(renditions(chosen, self.reach), preset.width,
                                     preset.height)
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
            AgentError: Nothing usable was found: no result, or none naming a file that
                may be downloaded (the scene falls back to the next tier).
            RateLimited: The service asked to slow down (retried once the limit resets).
            ServiceUnavailable: The service is down (retried, then the breaker opens).
            MediaError: The download is not a video.
        """
        query, shape = self._pick(scene, preset)
        candidates = await self._candidates(query, shape)
        chosen = choose_candidate(candidates, shape, self.reach, seconds)
        if chosen is None:
            raise nothing_usable(self, candidates, query, "video")
        rendition = choose_rendition(renditions(chosen, self.reach), preset.width,
                                     preset.height)
        info = await self._fetch_file(rendition.url, target, _moving)
        return ClipAsset(target, float(info.duration or 0.0), info.width, info.height,
                         fps=info.fps or 30.0, has_audio=info.has_audio,
                         source=self.source(chosen))
