"""The contracts between `avgen.VideoGenerator` and its agents.

An agent is any object with the right method: no base class, no registration. Methods are
``async``; a plain (blocking) method works too and is run in a worker thread. Agents write
their file at the ``target`` path they are given (a temporary name in the session that the
generator moves into place once the asset is checked), and return a value object from
`avgen.models` describing it.

An agent may also have:

- ``name`` (str): shown in the manifest and events (default: the class name);
- ``max_concurrency`` (int): how many scenes it may work on at once (default 4);
- ``check(request)``: validate a `avgen.VideoRequest` up front and raise
  `avgen.errors.UsageError`, before any agent does any work.
- ``resilience`` (`avgen.AgentPolicy`): how the generator retries and guards its calls;
- ``estimate(request)``: the `avgen.costs.Charge` objects the request is expected to cost
  (summed by `avgen.VideoGenerator.estimate`); paid calls themselves go through
  `avgen.costs.paid_call`, which enforces the run's budget;
- ``continuity`` (bool, clip generators): the generator then makes the scenes' clips in
  order and passes ``previous=`` (the previous scene's clip, or ``None``) to ``generate``,
  so a clip can start where the last one ended.
"""

from __future__ import annotations

__docformat__ = "google"

from pathlib import Path
from typing import Protocol, runtime_checkable

from avgen.media.ffmpeg import ProgressCallback
from avgen.media.timeline import Timeline
from avgen.models import AudioAsset, ClipAsset, ImageAsset, Preset, Scene, Script, VideoRequest

__all__ = ["ClipGenerator", "Composer", "ImageGenerator", "Narrator", "ScriptWriter"]


@runtime_checkable
class ScriptWriter(Protocol):
    """Turns a request (topic and/or script) into a `avgen.Script` of scenes."""

    async def write(self, request: VideoRequest) -> Script:
        """Write the script.

        Narration must be plain speakable text: no markdown, no stage directions.
        """
        ...


@runtime_checkable
class Narrator(Protocol):
    """Speaks a scene's narration into an audio file and measures it."""

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        """Write the narration of ``text`` at ``target`` (a WAV path) and describe it.

        The returned duration must be the measured length of the file; sentence timings in
        ``segments`` make captions follow the voice exactly.
        """
        ...


@runtime_checkable
class ImageGenerator(Protocol):
    """Makes a still picture for a scene; the composer adds Ken Burns motion."""

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Write a picture for ``scene`` at ``target``, in the preset's aspect ratio."""
        ...


@runtime_checkable
class ClipGenerator(Protocol):
    """Makes a video clip for a scene."""

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        """Write a clip of about ``seconds`` for ``scene`` at ``target`` (an MP4 path).

        The composer fits any size, rate and length to the preset and the narration.
        """
        ...


@runtime_checkable
class Composer(Protocol):
    """Renders a `avgen.media.timeline.Timeline` into the final video file."""

    async def compose(self, timeline: Timeline, target: Path,
                      progress: ProgressCallback | None = None) -> None:
        """Render the video at ``target``, calling ``progress`` with the fraction done."""
        ...
