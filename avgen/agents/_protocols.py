"""The contracts between `avgen.VideoGenerator` and its agents.

An agent is any object with the right method: no base class, no registration. Methods are
``async``; a plain (blocking) method works too and is run in a worker thread. Agents write
their file at the ``target`` path they are given (a temporary name in the session that the
generator moves into place once the asset is checked), and return a value object from
`avgen` describing it.

Beyond its method, an agent may have any of the members `AgentCapabilities` documents
(``name``, ``max_concurrency``, ``check``, ``prepare``, ``estimate``, ``resilience``,
``continuity``, ``close``/``aclose``; a composer also ``fingerprint`` and ``check_text``):
the generator uses each one it finds and does without the others.
"""

from __future__ import annotations

__docformat__ = "google"

import inspect
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from avgen._models import (
    AudioAsset,
    ClipAsset,
    ImageAsset,
    Preset,
    Scene,
    Script,
    Tier,
    VideoRequest,
)
from avgen.errors import UsageError
from avgen.media._ffmpeg import ProgressCallback
from avgen.media._timeline import Timeline

if TYPE_CHECKING:
    from avgen._policy import AgentPolicy
    from avgen.costs import Charge

__all__ = ["AgentCapabilities", "AgentSet", "ClipGenerator", "Composer", "ImageGenerator",
           "Narrator", "ScriptWriter"]


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
    """Renders a `avgen.media.Timeline` into the final video file."""

    async def compose(self, timeline: Timeline, target: Path,
                      progress: ProgressCallback | None = None) -> None:
        """Render the video at ``target``, calling ``progress`` with the fraction done.

        A run's ``progress`` also has ``note(message, **data)``, for what the composer has
        to tell (a ``note`` event), and ``measured(integrated_lufs, true_peak_dbtp)``: a
        composer that measured the finished file's sound itself with ffmpeg's R128 meter
        (``ebur128=peak=true``) says so, and the run does not measure the file again.
        Look them up with ``getattr``: a callback given by hand may have neither."""
        ...


class AgentCapabilities(Protocol):
    """The optional members of an agent: implement any of them, none is required.

    `avgen.VideoGenerator` looks each one up on every agent and uses what it finds; an
    agent without a member gets the default given here. This protocol documents them (and
    lets a type checker check an agent that declares it); it is not used with
    ``isinstance``.
    """

    name: str
    """Shown in the manifest, the events and the errors (default: the class name)."""
    max_concurrency: int
    """How many scenes the agent may work on at once in one run (default 4)."""
    resilience: AgentPolicy
    """How its calls are retried and guarded by a circuit breaker (default: a few retries of
    transient errors, no breaker; see `avgen.AgentPolicy`)."""
    continuity: bool
    """Clip generators only: True to make the scenes' clips in order and receive
    ``previous=`` (the previous scene's clip, or ``None``) in ``generate``."""

    def check(self, request: VideoRequest) -> None:
        """Validate ``request`` before any agent works or pays.

        Raises:
            avgen.errors.UsageError: A field is not acceptable; the error names it.
        """
        ...

    def prepare(self, script: Script) -> None:
        """Look at the whole script once it is written, before any scene is made (a plain
        or ``async`` method): an agent that chooses across scenes, such as a media library
        matching its files to them, does it here."""
        ...

    def estimate(self, request: VideoRequest) -> Iterable[Charge]:
        """What ``request`` is expected to cost with this agent (`avgen.costs.Charge`
        lines summed by `avgen.VideoGenerator.estimate`). Paid calls themselves go
        through `avgen.costs.paid_call`, which holds the run's budget."""
        ...

    def fingerprint(self, timeline: Timeline) -> str:
        """Composers only: a digest of what rendering ``timeline`` would produce; a resume
        renders again only when it changes (default: a digest of the whole timeline)."""
        ...

    def check_text(self, script: Script, request: VideoRequest) -> list[str]:
        """Composers only: notes on the script's text (e.g. characters no caption font can
        draw), called once the script exists and before any narration; each becomes a run
        event of kind ``"note"``. Must not fail a run for the text it cannot draw."""
        ...

    def close(self) -> None:
        """Release what the agent holds (connections, pools); called by
        `avgen.VideoGenerator.close` and when a ``with`` block ends."""
        ...

    async def aclose(self) -> None:
        """The async form of `close`, preferred by `avgen.VideoGenerator.aclose` and
        ``async with``."""
        ...

    async def release_loop(self) -> None:
        """Close what the agent opened on the running event loop, which is about to end,
        and stay usable (a later call on another loop opens its own). The ``*_sync``
        methods of `avgen.VideoGenerator` run each call on a loop of their own and call it
        before that loop ends: an HTTP client's pool bound to the loop could not be closed
        once the loop is gone."""
        ...


def _check(protocol: type, optional: bool = False) -> Callable[[Any, Any, Any], None]:
    def validator(_inst: Any, attribute: Any, value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, protocol):
            raise UsageError(attribute.name, f"{type(value).__name__} does not implement "
                             f"{protocol.__name__} (it needs the method(s) the protocol lists)")
    return validator


def makes(agent: object) -> Tier | None:
    """What a visual agent makes, ``"clip"`` or ``"image"``: its ``makes`` member when it
    has one, else what its ``generate`` method takes (a ``seconds`` parameter: a
    `ClipGenerator`; none: an `ImageGenerator`); ``None`` for an object with no
    ``generate``."""
    declared = getattr(agent, "makes", None)
    if declared in ("clip", "image"):
        return declared  # type: ignore[no-any-return]
    generate = getattr(agent, "generate", None)
    if not callable(generate):
        return None
    try:
        parameters = inspect.signature(generate).parameters
    except (TypeError, ValueError):
        return None
    return "clip" if "seconds" in parameters else "image"


def _visuals(_inst: Any, attribute: Any, value: tuple[Any, ...]) -> None:
    for index, agent in enumerate(value):
        if makes(agent) is None:
            raise UsageError(f"{attribute.name}[{index}]", f"{type(agent).__name__} is "
                             "neither a ClipGenerator nor an ImageGenerator (it needs "
                             "generate(scene, seconds, preset, target) or generate(scene, "
                             "preset, target))")


@attrs.frozen
class AgentSet:
    """The agents one run uses. Image and clip generators are optional: without them,
    scenes show a procedural card rendered by the composer.

    A scene's picture comes from its **visual sources**, tried in order until one
    delivers, then the procedural card (which cannot fail): ``visuals`` when given — any
    clip and image generators in any order, a media library first, then stock footage,
    then generated clips — else the clip generator, then the image generator.
    """

    script_writer: ScriptWriter = attrs.field(validator=_check(ScriptWriter))
    """Writes the script."""
    narrator: Narrator = attrs.field(validator=_check(Narrator))
    """Speaks each scene."""
    composer: Composer = attrs.field(validator=_check(Composer))
    """Renders the final video."""
    image_generator: ImageGenerator | None = attrs.field(
        default=None, validator=_check(ImageGenerator, optional=True))
    """Makes stills (the second tier of the fallback chain)."""
    clip_generator: ClipGenerator | None = attrs.field(
        default=None, validator=_check(ClipGenerator, optional=True))
    """Makes clips (the first tier of the fallback chain)."""
    visuals: tuple[ClipGenerator | ImageGenerator, ...] = attrs.field(
        default=(), converter=tuple, validator=_visuals)
    """The visual sources in the order they are tried (empty: the clip generator, then the
    image generator)."""

    def sources(self) -> tuple[tuple[Tier, Any], ...]:
        """The visual sources in the order they are tried, each with what it makes."""
        order = self.visuals or tuple(agent for agent in (self.clip_generator,
                                                          self.image_generator)
                                      if agent is not None)
        return tuple((makes(agent) or "image", agent) for agent in order)

    def distinct(self) -> list[Any]:
        """Every agent of the set once (one that serves in two roles counts once)."""
        agents = [self.script_writer, self.narrator, self.composer, self.clip_generator,
                  self.image_generator, *self.visuals]
        return list({id(agent): agent for agent in agents if agent is not None}.values())

    def names(self) -> dict[str, str | None]:
        """The name of each agent by role, as the manifest records it (``visuals``: the
        sources' names joined by ``+``, when they are given)."""
        names = {field.name: None if (agent := getattr(self, field.name)) is None
                 else agent_name(agent) for field in attrs.fields(AgentSet)
                 if field.name != "visuals"}
        if self.visuals:
            names["visuals"] = "+".join(agent_name(agent) for agent in self.visuals)
        return names


def agent_name(agent: object) -> str:
    """An agent's ``name`` attribute, or its class name."""
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else type(agent).__name__
