"""The versions of one video in several languages (`avgen.VideoRequest.languages`).

A version is the single-language request the run makes it from: the original language's is
the request itself (so a run in one language, and the original of a run in several, share
their steps); another language's has that language, its voice and, when you gave one, its
translated script. A run makes the script and every scene's picture once, and each
version's narration and composition; their steps are told apart by a ``@<language>``
suffix (``scene-002.narration@es``, ``compose@es``), the original's keeping the plain
names, so adding a language to a finished run finds everything it already made.

A translation keeps the original's scenes one for one: the original's visual prompts,
look and cast, the translation's narration, titles and title (`aligned`).
"""

from __future__ import annotations

__docformat__ = "google"

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from avgen._models import Scene, Script, VideoRequest
from avgen.errors import UsageError

__all__: list[str] = []

_SUFFIX = re.compile(r"@(?P<language>[A-Za-z0-9_-]+)\Z")
_ORIGINAL_STEPS = re.compile(r"(script|compose|scene-\d+\.narration)\Z")


@attrs.frozen
class Version:
    """One language's video of a run."""

    language: str
    """Its BCP 47 tag."""
    request: VideoRequest
    """The single-language request it is made from (its ``script`` is the translation
    you gave, else the original's, which prices it)."""
    original: bool
    """Whether it is the original language's (its script is written, not translated)."""
    given: str | None = None
    """Your translated script, when you gave one."""
    named: bool = False
    """Whether its files carry the language (``<title>.<language>.mp4``): with
    `avgen.VideoRequest.languages`."""

    @property
    def suffix(self) -> str:
        """What its steps' ids end with: nothing for the original, else ``@<language>``."""
        return "" if self.original else f"@{self.language}"

    def audio(self, index: int) -> str:
        """Where the narration of scene ``index`` goes in the session."""
        folder = "audio" if self.original else f"audio/{self.language}"
        return f"{folder}/scene_{index:03d}.wav"

    def stem(self, title_slug: str) -> str:
        """The name of its files in ``final_output/`` without their extension."""
        return f"{title_slug}.{self.language}" if self.named else title_slug

    @property
    def check_request(self) -> VideoRequest:
        """What an agent checks before any work: without a translation yet, the request
        has no script (the narrator checks its voice against the language alone)."""
        if self.original or self.given is not None:
            return self.request
        return attrs.evolve(self.request, script=None,
                            topic=self.request.topic or f"translation into {self.language}")


def versions_of(request: VideoRequest) -> tuple[Version, ...]:
    """The versions ``request`` asks for, the original first (one without `languages`).

    ``request`` has its language resolved (`avgen._language.resolved`).
    """
    original = request.language or "en"
    if not request.languages:
        return (Version(original, request, True),)
    voices = {key.casefold(): voice for key, voice in request.voices.items()}
    given = {key.casefold(): text for key, text in request.translations.items()}
    single = attrs.evolve(request, languages=(), translations={}, voices={},
                          voice=voices.get(original.casefold(), request.voice))
    made = [Version(original, single, True, named=True)]
    for language in request.languages[1:]:
        text = given.get(language.casefold())
        made.append(Version(language, attrs.evolve(
            single, language=language, voice=voices.get(language.casefold()),
            script=text if text is not None else single.script),
            False, text, named=True))
    return tuple(made)


def step_language(step_id: str, original: str) -> str | None:
    """The language a step is made for (``None``: shared by every version): the one after
    ``@``; the original's for its narration and composition (and its script, which is
    written for it but read by every translation: shared)."""
    found = _SUFFIX.search(step_id)
    if found:
        return found["language"]
    if _ORIGINAL_STEPS.fullmatch(step_id) and step_id != "script":
        return original
    return None


def cost_split(steps: Mapping[str, Any], languages: Sequence[str]) -> dict[str, Any]:
    """The manifest's split of what ``steps`` (records with ``cost``) paid: ``shared``
    (the script, the pictures, the cast) and ``languages`` (each version's translation,
    narration and composition), in US dollars."""
    shared: list[float] = []
    by_language: dict[str, list[float]] = {language: [] for language in languages}
    for step_id, step in steps.items():
        language = step_language(step_id, languages[0])
        cost = float(getattr(step, "cost", 0.0) or 0.0)
        if language is None:
            shared.append(cost)
        else:
            by_language.setdefault(language, []).append(cost)
    return {"shared": round(math.fsum(shared), 6),
            "languages": {language: round(math.fsum(costs), 6)
                          for language, costs in by_language.items()}}


def aligned(original: Script, title: str, scenes: Sequence[tuple[str, str]],
            language: str, where: str) -> Script:
    """The translation of ``original``: its scenes with the ``(title, narration)`` pairs
    of ``scenes``, one for one, and ``title``; pictures, look and cast stay the
    original's.

    Raises:
        UsageError: The counts differ (named by ``where``).
    """
    if len(scenes) != len(original.scenes):
        raise UsageError(where, f"the {language} script has {len(scenes)} scene"
                         f"{'s' if len(scenes) != 1 else ''}; the original has "
                         f"{len(original.scenes)}: give one paragraph per scene, in the "
                         "same order, under the same headings")
    made: list[Scene] = []
    for scene, (scene_title, narration) in zip(original.scenes, scenes, strict=True):
        made.append(attrs.evolve(scene, narration=narration,
                                 title=scene_title.strip() or scene.title))
    return attrs.evolve(original, title=title.strip() or original.title, scenes=tuple(made),
                        notes=())
