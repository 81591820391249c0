"""The two jobs of a stock agent: a still for a scene, or a clip for a scene."""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Sequence, Set
from pathlib import Path
from typing import Any

import attrs

from avgen._models import ClipAsset, ImageAsset, Preset, Scene, Source
from avgen.agents._download import Reach
from avgen.agents.stock._common import (
    Rendition,
    StockAgent,
    choose_rendition,
    count_field,
    list_field,
    orientation,
    seconds_field,
    text_field,
)
from avgen.errors import AgentError, MediaError, NoMatch
from avgen.media._ffmpeg import MediaInfo

__all__: list[str] = []

MAX_SEARCHES = 3
"""Searches made for one scene before it falls to the next source."""


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


def candidate_key(provider: str, candidate: dict[str, Any]) -> str:
    """What tells a result apart within a video: the service's id, else its page, else its
    first file's address."""
    found = (candidate.get("id") or text_field(candidate.get("page_url"))
             or next((r.url for r in _listed(candidate)), ""))
    return f"{provider}:{found}"


@attrs.frozen
class Ranked:
    """A usable result with how well it fits the shot."""

    candidate: dict[str, Any]
    """The result, as the agent parsed it."""
    score: float
    """1 for a result in the frame's orientation, lasting the shot (clips) and at least as
    large as the frame; less for each that it misses, and a little less down the list."""
    misses: tuple[str, ...]
    """What it misses: ``"orientation"``, ``"length"``, ``"resolution"``."""


def rank_candidates(candidates: Sequence[dict[str, Any]], shape: str, reach: Reach,
                    frame: tuple[int, int], seconds: float | None = None,
                    used: Set[str] = frozenset(), provider: str = "") -> list[Ranked]:
    """The usable results not already used, best first.

    A result loses 0.4 when its orientation is not the frame's, up to 0.3 when (a clip) it
    is shorter than ``seconds`` (in proportion), 0.2 when its largest file is smaller than
    the frame, and 0.01 per place down the service's list (at most 0.1); ties keep the
    service's order.

    Args:
        candidates: The search's results, in the service's order.
        shape: The frame's orientation (``"landscape"``, ``"portrait"``, ``"square"``).
        reach: Where files may be downloaded from (a result naming none is left out).
        frame: The frame's width and height.
        seconds: The shot's length (clips), or None.
        used: `candidate_key` of each result the video already shows.
        provider: The service, for `candidate_key`.
    """
    ranked: list[tuple[float, int, Ranked]] = []
    for index, candidate in enumerate(candidates):
        files = renditions(candidate, reach)
        if not files or candidate_key(provider, candidate) in used:
            continue
        misses: list[str] = []
        score = 1.0
        if _shape(files) != shape:
            score -= 0.4
            misses.append("orientation")
        if seconds:
            duration = seconds_field(candidate.get("duration"))
            if duration < seconds:
                score -= 0.3 * (1.0 - duration / seconds)
                misses.append("length")
        biggest = max(files, key=lambda r: r.width * r.height)
        if biggest.width < frame[0] or biggest.height < frame[1]:
            score -= 0.2
            misses.append("resolution")
        score -= min(0.1, 0.01 * index)
        ranked.append((round(score, 4), index, Ranked(candidate, round(score, 4),
                                                       tuple(misses))))
    ranked.sort(key=lambda item: (-item[0], item[1]))
    return [item[2] for item in ranked]


def choose_candidate(candidates: Sequence[dict[str, Any]], shape: str, reach: Reach,
                     seconds: float | None = None) -> dict[str, Any] | None:
    """The best result (`rank_candidates`) for a frame of any size, or None."""
    ranked = rank_candidates(candidates, shape, reach, (0, 0), seconds)
    return ranked[0].candidate if ranked else None


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


def _label(candidate: dict[str, Any]) -> str:
    return (text_field(candidate.get("title")) or text_field(candidate.get("page_url"))
            or str(candidate.get("id") or "untitled"))


@attrs.frozen
class Found:
    """What a scene's searches found: the result to use and how it was chosen."""

    chosen: Ranked
    """The result used."""
    runner_up: Ranked | None
    """The next best result of the same search, if any."""
    query: str
    """The search term that found it."""
    tried: tuple[str, ...]
    """The terms searched before it, each with why it gave nothing usable."""

    def source(self, agent: StockAgent) -> Source:
        """The `avgen.Source` of the chosen result: its credit, the term that found it,
        its score and the runner-up."""
        notes = [f"searched {line}" for line in self.tried]
        if self.chosen.misses:
            notes.append("the best result misses the shot's " + ", ".join(self.chosen.misses))
        return attrs.evolve(
            agent.source(self.chosen.candidate), query=self.query, score=self.chosen.score,
            runner_up=None if self.runner_up is None else _label(self.runner_up.candidate),
            runner_up_score=None if self.runner_up is None else self.runner_up.score,
            notes=notes)


async def find(agent: StockAgent, scene: Scene, preset: Preset, target: Path, kind: str,
               seconds: float | None = None) -> Found:
    """Search the scene's terms in order (at most `MAX_SEARCHES`) and take the best result
    of the first search that has one the video does not show yet.

    Raises:
        NoMatch: No search found anything unused.
        AgentError: Results were found, none naming a file that may be downloaded.
    """
    terms = agent.terms(scene)
    shape = orientation(preset)
    used = agent.used(target)
    tried: list[str] = []
    undownloadable: AgentError | None = None
    for term in terms[:MAX_SEARCHES]:
        candidates = await agent.search(term, shape, target)
        ranked = rank_candidates(candidates, shape, agent.reach, (preset.width, preset.height),
                                 seconds, used, agent.provider)
        if ranked:
            used.add(candidate_key(agent.provider, ranked[0].candidate))
            return Found(ranked[0], ranked[1] if len(ranked) > 1 else None, term,
                         tuple(tried))
        if not candidates:
            tried.append(f"{term!r}: no {kind}")
        elif all(candidate_key(agent.provider, c) in used for c in candidates):
            tried.append(f"{term!r}: every result already shown in this video")
        else:
            undownloadable = nothing_usable(agent, candidates, term, kind)
            tried.append(f"{term!r}: {str(undownloadable).removeprefix(agent.name + ': ')}")
    if undownloadable is not None and len(tried) == 1:
        raise undownloadable
    if undownloadable is not None:
        raise AgentError("; ".join(tried), agent.name)
    raise NoMatch(f"nothing unused found for scene {scene.index + 1} ("
                  + "; ".join(tried) + ")", agent.name)


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
        """Find a photo for ``scene`` and write it at ``target``: its search terms are
        searched in turn (at most `MAX_SEARCHES`) and the best result not already in the
        video is taken (`rank_candidates`: orientation, then size against the frame).

        The search and the download are made once: a later run with the same cache asks
        the service nothing.

        Raises:
            AgentError: Nothing usable was found: no result, or none naming a file that
                may be downloaded (the scene falls back to the next tier).
            RateLimited: The service asked to slow down (retried once the limit resets).
            ServiceUnavailable: The service is down (retried, then the breaker opens).
            MediaError: The download is not a picture.
        """
        found = await find(self, scene, preset, target, "photo")
        rendition = choose_rendition(renditions(found.chosen.candidate, self.reach),
                                     preset.width, preset.height)
        info = await self._fetch_file(rendition.url, target, _still)
        return ImageAsset(target, info.width, info.height, source=found.source(self))


class StockClips(StockAgent):
    """A stock library's videos as an `avgen.agents.ClipGenerator`."""

    kind = "clips"

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        """Find a video for ``scene`` and write it at ``target``; the composer fits it to
        the narration. Its search terms are searched in turn (at most `MAX_SEARCHES`) and
        the best result not already in the video is taken (`rank_candidates`:
        orientation, length against ``seconds``, size against the frame).

        The search and the download are made once: a later run with the same cache asks
        the service nothing.

        Raises:
            AgentError: Nothing usable was found: no result, or none naming a file that
                may be downloaded (the scene falls back to the next tier).
            RateLimited: The service asked to slow down (retried once the limit resets).
            ServiceUnavailable: The service is down (retried, then the breaker opens).
            MediaError: The download is not a video.
        """
        found = await find(self, scene, preset, target, "video", seconds)
        rendition = choose_rendition(renditions(found.chosen.candidate, self.reach),
                                     preset.width, preset.height)
        info = await self._fetch_file(rendition.url, target, _moving)
        return ClipAsset(target, float(info.duration or 0.0), info.width, info.height,
                         fps=info.fps or 30.0, has_audio=info.has_audio,
                         source=found.source(self))
