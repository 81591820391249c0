"""The embedded default agents: no key, no network.

- `LocalScriptWriter`: your own text, split into scenes (markdown and stage directions
  are not read aloud); it writes no script from a topic (such a request is refused).
- `PiperNarrator`: neural narration with the voice that ships as a pip package.
- `StillImages`: your own pictures, one per scene, given Ken Burns motion.
- `MediaLibrary`: a folder of your pictures and clips, each matched to the scene it fits.
- Scenes with no picture show a procedural card (animated gradient and title) that
  `avgen.media.FFmpegComposer` renders in the same ffmpeg pass as everything else.
"""

from __future__ import annotations

__docformat__ = "google"

from typing import Any

from avgen.agents._protocols import AgentSet
from avgen.agents.local._images import StillImages
from avgen.agents.local._library import MediaLibrary
from avgen.agents.local._narrator import PiperNarrator
from avgen.agents.local._script import LocalScriptWriter
from avgen.errors import UsageError
from avgen.media._composer import FFmpegComposer

__all__ = ["LocalScriptWriter", "MediaLibrary", "PiperNarrator", "StillImages", "local_agents"]


def local_agents(**options: Any) -> AgentSet:
    """The offline family: local script writer, Piper narrator, ffmpeg composer.

    Args:
        **options: Passed to `PiperNarrator` (``voice``, ``sentence_pause``,
            ``length_scale``), except ``images``: a list of picture files for
            `StillImages`, and ``media``: a folder for `MediaLibrary` (its clips and
            pictures matched to the scenes). Give one of the two.

    Raises:
        UsageError: Both ``images`` and ``media`` are given.
    """
    images = options.pop("images", None)
    media = options.pop("media", None)
    if images and media:
        raise UsageError("media", "give your pictures as images (one per scene, in order) or "
                         "as a media folder (matched to the scenes), not both")
    library = MediaLibrary(media) if media else None
    return AgentSet(
        script_writer=LocalScriptWriter(),
        narrator=PiperNarrator(**options),
        composer=FFmpegComposer(),
        image_generator=(library.images if library else
                         StillImages(images) if images else None),
        clip_generator=library.clips if library else None,
    )
