"""A scene's picture from a chain of visual agents: clip → image → procedural card.

`VisualChain` is itself a visual agent: it asks each source in turn and the first that
delivers a checked picture wins; the procedural card is the source that cannot fail. What
failed on the way is kept (the manifest records the tier that served and why the ones
above it did not); a source that has nothing for the scene (`avgen.errors.NoMatch`: a
media library with no file for it) is passed over, and recorded as such, not as a
failure. A source marked as the required tier stops the chain instead of falling
back, and so does a model the service does not serve (`avgen.errors.ModelNotFound`): that
is a setting to change, not a moment's failure to hide behind a card.
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

from avgen._models import (
    CardVisual,
    ClipAsset,
    ImageAsset,
    Preset,
    Scene,
    Tier,
    Visual,
    asset_to_dict,
)
from avgen._session import Session
from avgen._steps import Made
from avgen.errors import AgentError, AvgenError, MediaError, ModelNotFound, NoMatch
from avgen.media._cards import THEMES, Theme, icon_for, key_phrase
from avgen.media._ffmpeg import probe

__all__ = []


def design_card(scene: Scene, theme: Theme) -> CardVisual:
    """The procedural card of ``scene`` in the video's ``theme``: its title, a key phrase
    of its narration and an icon chosen by its words."""
    words = " ".join((scene.visual, scene.title, scene.narration))
    return CardVisual(scene.title, theme.background, phrase=key_phrase(scene.narration),
                      icon=icon_for(words), accent=theme.accent)


Generate = Callable[..., Awaitable[Any]]
Turn = Callable[[object], Any]
OnFallback = Callable[[Scene, Tier, AvgenError], None]


@attrs.frozen
class VisualSource:
    """One link of the chain: a clip or image agent and how to call it."""

    tier: Tier
    """``clip`` or ``image``."""
    agent: object
    """The agent (its ``max_concurrency`` bounds the scenes it works on at once)."""
    name: str
    """The agent's name in the manifest."""
    generate: Generate
    """The agent's ``generate`` method, as the run guards it (retries, breaker)."""

    @property
    def continuity(self) -> bool:
        """Whether the agent wants the previous scene's clip (``previous=``)."""
        return self.tier == "clip" and bool(getattr(self.agent, "continuity", False))

    @property
    def finds(self) -> bool:
        """Whether the agent finds footage (``finds_footage``: stock) rather than making
        it: a scene longer than a shot then shows several of its files in turn."""
        return bool(getattr(self.agent, "finds_footage", False))

    def relative(self, scene: Scene, shot: int = 0) -> str:
        """Where the scene's file (of its ``shot``, after the first) of this tier goes in
        the session."""
        suffix = f"_{shot}" if shot else ""
        if self.tier == "clip":
            return f"video_clips/scene_{scene.index:03d}{suffix}.mp4"
        return f"images/scene_{scene.index:03d}{suffix}.png"

    async def make(self, scene: Scene, seconds: float, preset: Preset, target: Path,
                   previous: Path | None) -> ClipAsset | ImageAsset:
        """Ask the agent for the scene's picture at ``target`` and check what it returns."""
        if self.tier == "clip":
            extra = {"previous": previous} if self.continuity else {}
            made = await self.generate(scene, seconds, preset, target, **extra)
        else:
            made = await self.generate(scene, preset, target)
        expected: type[ClipAsset | ImageAsset] = ClipAsset if self.tier == "clip" else ImageAsset
        if not isinstance(made, expected):
            raise AgentError(f"generate() returned {type(made).__name__}, "
                             f"not {expected.__name__}", self.name)
        if not probe(target).has_video:
            raise MediaError(f"scene {scene.index + 1}: the {self.tier} has no picture", target)
        return made


class VisualChain:
    """Clip, image, then card: the first source that delivers makes the scene's picture.

    Args:
        sources: The clip and/or image sources, best first.
        session: Where the pictures are written (atomically).
        turn: ``turn(agent)`` — an async context manager that waits for a turn of the
            agent (its concurrency limit).
        required: A tier every scene must reach: its failure stops the chain.
        on_fallback: Told of each source that failed before the next is tried.
    """

    def __init__(self, sources: Sequence[VisualSource], *, session: Session, turn: Turn,
                 required: Tier | None = None, on_fallback: OnFallback | None = None) -> None:
        self.sources = tuple(sources)
        self.session = session
        self.required = required
        self.theme: Theme = THEMES[0]
        """The video's card theme (the run sets it from the script's title)."""
        self._turn = turn
        self._on_fallback = on_fallback

    @property
    def names(self) -> list[str]:
        """The sources' agent names, best first (part of a visual step's inputs)."""
        return [source.name for source in self.sources]

    @property
    def continuity(self) -> bool:
        """Whether a source wants the previous scene's clip."""
        return any(source.continuity for source in self.sources)

    @property
    def shots(self) -> bool:
        """Whether a long scene is cut into shots: the first source finds footage."""
        return bool(self.sources) and self.sources[0].finds

    async def make(self, scene: Scene, seconds: float, preset: Preset,
                   previous: Path | None = None, shot: int = 0) -> Made[Visual]:
        """The scene's picture (of its ``shot``, after the first), with the tier that
        served, what failed above it and which sources had nothing for it.

        Raises:
            AvgenError: The required tier failed (or had nothing for the scene).
            ModelNotFound: A source's model is not served.
        """
        errors: list[str] = []
        passed: list[str] = []
        for source in self.sources:
            try:
                async with self._turn(source.agent):
                    with self.session.atomic_path(source.relative(scene, shot)) as temp:
                        made = await source.make(scene, seconds, preset, temp, previous)
            except NoMatch as exc:  # nothing for this scene: not a failure
                said = str(exc).removeprefix(f"{exc.agent}: ")
                passed.append(f"{source.tier} ({source.name}): {said}")
                if source.tier == self.required:
                    raise
                continue
            except AvgenError as exc:
                if isinstance(exc, ModelNotFound):
                    raise
                errors.append(f"{source.tier} ({source.name}): {exc}")
                if self._on_fallback is not None:
                    self._on_fallback(scene, source.tier, exc)
                if source.tier == self.required:
                    raise
                continue
            placed = attrs.evolve(made, path=self.session.path(source.relative(scene, shot)))
            return self._made(scene, placed, source.name, source.tier, errors, passed)
        return self._made(scene, design_card(scene, self.theme), "ffmpeg-card", "card",
                          errors, passed)

    def _made(self, scene: Scene, visual: Visual, agent: str, tier: Tier, errors: list[str],
              passed: list[str]) -> Made[Visual]:
        outputs = (visual.path,) if isinstance(visual, ClipAsset | ImageAsset) else ()
        data: dict[str, Any] = {"asset": asset_to_dict(visual, self.session.root)}
        if scene.search_terms:
            data["search_terms"] = list(scene.search_terms)
        if passed:
            data["passed"] = passed  # sources with nothing for the scene, and why
        return Made(visual, outputs, data, agent=agent, tier=tier,
                    status="fallback" if errors else "done", error="; ".join(errors) or None)
