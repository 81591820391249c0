"""`VeoClips`: a scene's clip from Google's Veo models (Vertex AI only).

**Modes.** *Text-to-video*: the scene's ``visual`` (else its narration) is the prompt.
*Image-to-video*: with ``still=`` (an `avgen.agents.ImageGenerator`, such as a Gemini image
agent) a still is made first and animated. *Continuity* (``continuity=True``): each clip
starts on the last frame of the previous scene's clip, which `avgen.VideoGenerator` passes
as ``previous=``. The aspect ratio follows the preset (``9:16`` when taller than wide, else
``16:9``); the length is the shortest the model allows that covers the narration (Veo 3.1:
4, 6 or 8 s; the lengths, resolutions and reference images each model takes are in
`avgen.agents.google.CATALOGUE`), capped at its maximum — the composer fits any clip.

**Cost and cache.** A clip's price (per second, `avgen.agents.google.PRICES`) is reserved
against the run's budget before anything is sent (`avgen.costs.paid_call`), and charged
only when the clip arrives. Clips are kept in the `avgen.agents.AssetCache`
under a key of model, prompt, aspect, length, audio, resolution, negative prompt and the
SHA-256 of the input image: an identical request is answered from disk, free.

**Retries.** A submit the service *refused* (429, 5xx) created nothing: its error
propagates and the generator's policy may resubmit. A submit *sent* without an answer (a
read timeout, a dropped connection, a body that is not JSON) may have been accepted and
billed: it is never retried
(`avgen.errors.AgentError`; the scene falls back). Polling is retried on transient errors,
and an operation whose polling or download failed is remembered, so a retried call resumes
it instead of paying again. Operations in flight are bounded by ``max_concurrency`` per
event loop, across every run sharing the agent.

**Crashes.** With a cache, an accepted operation is also written down at once in the
cache folder, or under the cache's URL (``operations/<clip key>.json``, an atomic write;
see `avgen.agents.AssetCache.journal`) and its record removed when
the clip is stored or the operation failed for good. A process asking for the same clip
later — the resume of a session killed while it polled, or another run — polls the
recorded operation instead of submitting it again; only an operation the service no longer
knows (HTTP 400, 403, 404, 410 on its poll) or reports as failed is submitted anew. A
record that is unsound, or whose name is not a Veo operation of this model, is ignored and
logged. Without a cache, operations are remembered in memory only.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import functools
import inspect
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from avgen._hashing import sha256_hex
from avgen._models import (
    ClipAsset,
    Preset,
    Scene,
    Source,
    VideoRequest,
)
from avgen._scratch import scratch_beside
from avgen._threads import through_thread
from avgen._validate import flag, instance, number, text
from avgen.agents._assets.cache import AssetCache
from avgen.agents._assets.journal import OperationJournal
from avgen.agents._download import Limits, Reach, download
from avgen.agents.google._common import GoogleAgent, planned_scenes, planned_seconds
from avgen.agents.google._connection import Capability, GoogleConnection, RedactedError
from avgen.agents.google._images import mime_of, references
from avgen.agents.google._polling import OperationTimes, next_poll
from avgen.agents.google._prices import Price
from avgen.agents.google._rewrite import PromptRewriter, with_rewrites
from avgen.agents.google._script import MAX_CAST
from avgen.costs import Charge, paid_call
from avgen.errors import (
    AgentError,
    ContentRejected,
    MediaError,
    RateLimited,
    ServiceUnavailable,
    UsageError,
)
from avgen.media._ffmpeg import ffconcat, probe, run_ffmpeg
from avgen.media._graph import CLIP_HOLD_SECONDS
from avgen.resilience import retry
from avgen.resilience._retry import RetryDecorator

__all__ = ["VeoClips"]

_logger = logging.getLogger("avgen.agents.google")

_MEDIA_HOSTS = ("googleapis.com",)
"""Where Veo's answers may name a clip to download (over https)."""
HOLD_SECONDS = CLIP_HOLD_SECONDS
"""How long before its narration a scene's clips may end (the composer holds the last
frame for that long; a clip shorter by more is looped)."""
NARRATION_SPREAD = 0.12
"""How far a written scene's narration runs from its planned length, as a fraction (one
standard deviation): estimates price the clips of the lengths around the plan."""
_DECILES = (-1.645, -1.036, -0.674, -0.385, -0.126, 0.126, 0.385, 0.674, 1.036, 1.645)
"""The middles of a normal distribution's ten deciles, in standard deviations."""
PERSON_GENERATION = ("dont_allow", "allow_adult", "allow_all")
"""Veo's ``person_generation`` values."""
# transport errors raised before the request left this machine: nothing was created
_NOT_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout", "ClientConnectorError")
# after the request was sent: the service may have accepted (and billed) it
_NO_ANSWER = ("ReadError", "WriteError", "RemoteProtocolError", "ServerDisconnectedError",
              "NetworkError")
# a Veo operation's name, as Vertex AI (with or without a project) and the Gemini API give it
_OPERATION_NAME = re.compile(
    r"(?:projects/[A-Za-z0-9][A-Za-z0-9.:_-]{0,127}/locations/[a-z0-9][a-z0-9-]{0,62}/)?"
    r"(?:publishers/[a-z0-9][a-z0-9_-]{0,62}/)?"
    r"models/(?P<model>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
    r"/operations/[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
# what a poll of a recorded operation answers when the service does not know it (any more)
_GONE = frozenset({400, 403, 404, 410})


def _sent_without_answer(exc: BaseException) -> bool:
    """Whether a transport error means the request was sent but its answer was lost."""
    if isinstance(exc, json.JSONDecodeError):
        return True  # something answered in the service's place: it may have been accepted
    names = [klass.__name__ for klass in type(exc).__mro__]
    if any(name in _NOT_SENT for name in names) or isinstance(exc, ConnectionRefusedError):
        return False
    return isinstance(exc, TimeoutError | ConnectionError) or any(
        "Timeout" in name or name in _NO_ANSWER for name in names)


class _Overdue(AgentError):
    """An operation ran past the deadline (kept, so a later identical call resumes it)."""


class _ReferencesRefused(AgentError):
    """Veo refused a submit's reference images (400, "not supported"): nothing was made."""


class _Gone(AgentError):
    """The service does not know the operation polled (expired, or never this account's)."""


class VeoClips(GoogleAgent):
    """A `avgen.agents.ClipGenerator` backed by Veo (needs a Vertex AI connection).

    Args:
        connection: The shared `avgen.agents.google.GoogleConnection` (Vertex).
        model: A Veo model id (``None``: the catalogue's default, ``veo-3.1-fast-generate-001``;
            ``veo-3.1-generate-001`` takes reference images).
        cache: Where clips are kept, and accepted operations recorded until their clip is
            (``None``: no cache, operations are remembered in memory only).
        prices: Price overrides by model id.
        max_concurrency: Operations in flight at once (Veo quotas are small).
        audio: Ask Veo for a sound track (priced higher; the narration stays the
            soundtrack), for a model that makes one.
        continuity: Start each clip on the last frame of the previous scene's clip.
        still: An image generator whose still each clip animates (image-to-video).
        resolution: ``"auto"`` (from the preset), one the model makes (``"720p"``,
            ``"1080p"``, ``"4k"``), or ``None`` (the model's default).
        negative_prompt: What the clips should not show.
        poll_interval: Seconds before the first poll; each wait grows 1.5 times. Once
            operations of the same length and resolution have been seen done, later ones
            are also polled around the time those took, and every `poll_interval` from
            then on.
        poll_max_interval: The longest wait between two polls.
        deadline: Seconds an operation may run before it is given up (not resubmitted).

    Raises:
        UsageError: An argument is out of range; the error names it.
    """

    kind = "veo"
    """Names the agent (``veo:<model>``)."""
    needs: Capability = "video"
    """Veo is served by Vertex AI only."""
    model_kind = "video"
    method = "predictLongRunning"

    def __init__(self, connection: GoogleConnection,
                 model: str | None = None, *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 max_concurrency: int = 2, requests_per_minute: float | None = None,
                 audio: bool = False, continuity: bool = False,
                 still: Any = None, resolution: str | None = "auto",
                 negative_prompt: str | None = None, seed: int | None = None,
                 person_generation: str | None = None, references: bool | None = None,
                 painter: Any = None, rewriter: PromptRewriter | None = None,
                 rewrites: int = 2, poll_interval: float = 5.0,
                 poll_max_interval: float = 30.0, deadline: float = 900.0) -> None:
        super().__init__(connection, model, cache=cache, prices=prices,
                         max_concurrency=max_concurrency,
                         requests_per_minute=requests_per_minute)
        if self.info is None:
            raise UsageError("model", f"{self.model} is not a Veo model avgen knows of; give a "
                             "Veo model id (veo-…)")
        self.can = self.info.can
        """What the model can do (lengths, resolutions, reference images, audio), from the
        catalogue."""
        flag("audio", audio)
        flag("continuity", continuity)
        if audio and not self.can.audio:
            raise UsageError("audio", f"{self.model} makes silent clips; use a model that "
                             "makes sound (avgen models lists them)")
        for name, agent in (("still", still), ("painter", painter)):
            if agent is not None and not callable(getattr(agent, "generate", None)):
                raise UsageError(name, "must be an ImageGenerator (with generate(scene, "
                                 f"preset, target)) or None, not {type(agent).__name__}")
        allowed = self.can.resolutions
        if resolution is not None and resolution != "auto" and resolution not in allowed:
            raise UsageError("resolution", f"must be 'auto', None or one of "
                             f"{', '.join(allowed)} for {self.model}, not {resolution!r}")
        text("negative_prompt", negative_prompt, optional=True, blank=False)
        number("seed", seed, integer=True, low=0, high=2**32 - 1, optional=True)
        if person_generation is not None and person_generation not in PERSON_GENERATION:
            raise UsageError("person_generation", f"must be None or one of "
                             f"{', '.join(PERSON_GENERATION)}, not {person_generation!r}")
        if references is not None:
            flag("references", references)
        instance("rewriter", rewriter, PromptRewriter, optional=True)
        self.poll_interval = float(number("poll_interval", poll_interval, low=0,
                                          low_inclusive=False))
        """Seconds before the first poll."""
        self.poll_max_interval = float(number("poll_max_interval", poll_max_interval, low=0,
                                              low_inclusive=False))
        """The longest wait between two polls."""
        if self.poll_max_interval < self.poll_interval:
            raise UsageError("poll_max_interval", f"must be >= poll_interval "
                             f"({poll_interval!r}), not {poll_max_interval!r}")
        self.deadline = float(number("deadline", deadline, low=0, low_inclusive=False))
        """Seconds an operation may run before it is given up."""
        self.audio = audio
        """Whether Veo makes a sound track."""
        self.continuity = continuity
        """Whether a clip starts on the last frame of the previous one."""
        self.still = still
        """The image generator whose stills are animated, or None."""
        self.resolution = resolution
        """The resolution asked for: ``"auto"`` (from the preset), a value, or None (the
        model's default)."""
        self.negative_prompt = negative_prompt
        """What the clips should not show."""
        self.seed = seed
        """The seed of every clip (part of the cache key), or None."""
        self.person_generation = person_generation
        """Veo's ``person_generation`` setting, or None (the model's default)."""
        if references and not self.can.reference_images:
            raise UsageError("references", f"{self.model} takes no reference images; use "
                             "a model that does (avgen models lists them), or leave it None")
        self.reference_images = bool(self.can.reference_images) if references is None \
            else references
        """Whether scenes with characters send their reference pictures to Veo."""
        self.painter = painter
        """The image agent that paints the characters' portraits (its ``portrait``) and,
        when the model takes no reference images, the still a scene with characters is
        animated from."""
        self.rewriter = rewriter
        """Who rewrites a refused prompt (None: a refusal is final)."""
        self.rewrites = int(number("rewrites", rewrites, integer=True, low=0, high=10))
        """Rewrites at most per clip."""
        self._references_refused = False  # Veo refused reference images once: send none
        self._pending: dict[str, Any] = {}  # cache key → an operation whose polling failed
        self._times: dict[tuple[int, str | None], OperationTimes] = {}  # by (seconds, resolution)
        self._recalled: set[str] = set()  # keys whose pending operation came from a record

    @property
    def takes_references(self) -> bool:
        """Whether a scene's characters' reference pictures shape its clip: sent to Veo, or
        to the painter whose still is animated. Not with ``still``: every clip then
        animates that agent's still (Veo takes no reference images with an input image),
        and with ``continuity`` only a first scene's clip uses them."""
        if self.still is not None:
            return False
        return self.reference_images or bool(getattr(self.painter, "takes_references", False))

    @property
    def durations(self) -> tuple[int, ...]:
        """The clip lengths the model allows, in seconds."""
        return self.can.durations

    def duration_for(self, seconds: float) -> int:
        """The shortest allowed length >= ``seconds``, or the longest one when none is.

        Raises:
            UsageError: ``seconds`` is not a finite number > 0.
        """
        wanted = float(number("seconds", seconds, low=0, low_inclusive=False))
        return next((d for d in self.durations if d >= wanted), self.durations[-1])

    def resolution_for(self, preset: Preset) -> str | None:
        """The resolution asked for a preset: with ``resolution="auto"``, ``"1080p"`` for a
        frame whose short side is 1080 pixels or more (``"4k"`` from 2160), else
        ``"720p"`` — the largest of these the model makes."""
        if self.resolution != "auto":
            return self.resolution
        short = min(preset.width, preset.height)
        wanted = "4k" if short >= 2160 else "1080p" if short >= 1080 else "720p"
        ladder = ("720p", "1080p", "4k")
        offered = [r for r in ladder[:ladder.index(wanted) + 1] if r in self.can.resolutions]
        return offered[-1] if offered else None

    def plan(self, seconds: float, resolution: str | None = None,
             references: bool = False) -> list[int]:
        """The clips that cover ``seconds`` of narration: as many of the longest length as
        it takes, the last one the shortest allowed that covers the rest. The clips may
        end up to `HOLD_SECONDS` before the narration (the composer holds their last
        frame): a scene a few words over a clip's length is not paid a second clip. Veo 3.1
        makes 8-second clips only at 1080p and 4k and with reference images (the
        catalogue's ``eight_seconds_with``).

        Raises:
            UsageError: ``seconds`` is not a finite number > 0.
        """
        wanted = max(0.1, float(number("seconds", seconds, low=0, low_inclusive=False))
                     - HOLD_SECONDS)
        longest = self.durations[-1]
        count = max(1, math.ceil(wanted / longest - 1e-9))
        last = next((d for d in self.durations if d >= wanted - longest * (count - 1)),
                    longest)
        forced = resolution in self.can.eight_seconds_with or (
            references and "references" in self.can.eight_seconds_with)
        if forced and 8 in self.durations:
            last = 8
        return [longest] * (count - 1) + [last]

    def _planned_clips(self, request: VideoRequest) -> tuple[int, list[int]]:
        """How many scenes are planned, and the clips a scene of the planned length needs."""
        scenes = planned_scenes(request)
        references = self.reference_images and bool(request.characters)
        return scenes, self.plan(planned_seconds(request) / scenes,
                                 self.resolution_for(request.preset), references)

    def expected_seconds(self, request: VideoRequest) -> float:
        """The clip seconds a planned scene is expected to need: the average over scenes
        whose narration runs `NARRATION_SPREAD` around the plan (a scene a little over a
        clip's length needs a second clip; one a little under, a shorter clip)."""
        scenes = planned_scenes(request)
        planned = planned_seconds(request) / scenes
        resolution = self.resolution_for(request.preset)
        references = self.reference_images and bool(request.characters)
        return sum(sum(self.plan(planned * (1 + NARRATION_SPREAD * z), resolution,
                                 references)) for z in _DECILES) / len(_DECILES)

    def estimate(self, request: VideoRequest) -> list[Charge]:
        """Each planned scene's clips (`expected_seconds`, at the preset's resolution); the
        painter's stills of
        scenes with characters when the model takes no reference images (every scene,
        when you gave characters), its portraits of them; and ``still``'s own estimate."""
        scenes = planned_scenes(request)
        seconds = round(self.expected_seconds(request), 2)
        resolution = self.resolution_for(request.preset)
        audio = self.audio
        charges = [Charge(self.name, self.model, seconds, "video_second",
                          self.price.video(seconds, audio, resolution), scene=i)
                   for i in range(scenes)]
        painter = getattr(self.painter, "estimate", None)
        if request.characters and callable(painter):
            painted = painter(request)
            if self.reference_images:  # Veo takes the pictures: only the portraits are made
                painted = [charge for charge in painted if charge.scene is None]
            charges.extend(painted)
        estimator = getattr(self.still, "estimate", None)
        if callable(estimator):
            charges.extend(estimator(request))
        return charges

    def estimate_extras(self, request: VideoRequest) -> list[Charge]:
        """What may be paid on top of `estimate`: ``rewrites`` rewrites of a refused prompt
        per clip and, when the script writer may add characters (you gave none), their
        portraits (`MAX_CAST` at most) and, for a model that takes no reference images, a
        still per scene for the clip to animate."""
        scenes, clips = self._planned_clips(request)
        extras: list[Charge] = []
        if self.rewriter is not None and self.rewrites:
            one = self.rewriter.estimate_one()
            count = scenes * len(clips) * self.rewrites
            extras.append(attrs.evolve(one, quantity=one.quantity * count,
                                       usd=one.usd * count))
        price = getattr(self.painter, "price", None)
        if not request.characters and self.takes_references and price is not None:
            name, model = str(self.painter.name), str(self.painter.model)
            extras.append(Charge(name, model, MAX_CAST, "image", MAX_CAST * price.per_image))
            if not self.reference_images:
                extras.append(Charge(name, model, scenes, "image", scenes * price.per_image))
        return extras

    async def generate(self, scene: Scene, seconds: float, preset: Preset, target: Path, *,
                       previous: Path | None = None) -> ClipAsset:
        """Write a clip for ``scene`` at ``target`` (see the module docstring).

        Args:
            scene: The scene; its `avgen.Scene.prompt` (visual, characters present, the
                video's style) is the prompt.
            seconds: The narration's length; the clips cover it (see `plan`).
            preset: The output format (gives the aspect ratio and the resolution).
            target: Where to write the MP4.
            previous: The previous scene's clip (used with ``continuity``).

        Raises:
            UsageError: The connection cannot serve Veo (Developer mode).
            BudgetExceeded: The clip does not fit the run's budget; nothing was sent.
            RateLimited: The submit was refused for quota (nothing was created).
            ServiceUnavailable: The service refused or could not be reached, or polling
                kept failing (a retried call resumes the same operation).
            ContentRejected: Veo's safety filters kept the clip back, and every rewrite of
                its prompt too.
            AgentError: The operation failed or ran past ``deadline``, or the submit got no
                answer (not retried: it may have been billed).
            MediaError: What came back is not a video.
        """
        if not self.connection.supports(self.needs):
            raise UsageError("agents", f"{self.name} needs Vertex AI (video is not served in "
                             f"{self.connection.describe()}); set GOOGLE_GENAI_USE_VERTEXAI=true")
        send = self.reference_images and not self._references_refused
        try:
            return await self._scene(scene, seconds, preset, target, previous, send)
        except _ReferencesRefused as refused:
            self._references_refused = True  # for every later scene of this agent too
            reason = str(refused)
        asset = await self._scene(scene, seconds, preset, target, previous, False)
        source = asset.source or Source(self.name)
        note = (f"{self.model} refused reference images ({reason}); made instead by "
                f"{source.method or 'text-to-video'}")
        _logger.warning("%s: %s", self.name, note)
        return attrs.evolve(asset, source=attrs.evolve(source, notes=[note, *source.notes]))

    async def _scene(self, scene: Scene, seconds: float, preset: Preset, target: Path,
                     previous: Path | None, send_references: bool) -> ClipAsset:
        """The clips of one scene, joined at ``target``; reference images sent to Veo only
        with ``send_references`` (else a painter that takes them paints the first still)."""
        aspect = "9:16" if preset.height > preset.width else "16:9"
        resolution = self.resolution_for(preset)
        audio = self.audio
        pictures = references(scene)
        with scratch_beside(target) as scratch:
            image, method = await self._input_image(scene, preset, previous, scratch,
                                                    pictures, send_references)
            refs = [path.read_bytes() for _, path in pictures][:self.can.reference_images] \
                if image is None and send_references else []
            if refs:
                method = "reference images: " + ", ".join(name for name, _ in pictures)
            clips = self.plan(seconds, resolution, bool(refs))
            visual = (scene.visual or scene.narration).strip()
            notes, parts = [], []

            def compose(text: str) -> str:
                return attrs.evolve(scene, visual=text).prompt  # the look added back

            for part, duration in enumerate(clips):
                ask = _Ask(compose(visual), image, tuple(refs), duration, aspect, audio,
                           resolution, part)
                out = target if len(clips) == 1 else scratch(f".part{part}.mp4")
                made, more, visual = await with_rewrites(
                    self, visual, compose, functools.partial(self._clip_of, ask, out),
                    rewriter=self.rewriter, rewrites=self.rewrites, what="video clip",
                    memo=functools.partial(self._refusal_key, ask))
                notes.extend(more)
                parts.append(made)
                if part + 1 < len(clips) and not refs:  # the next clip goes on from here
                    image = await _last_frame(made.path, scratch(f".frame{part}.png"))
            if len(parts) > 1:
                await _join(parts, target, scratch(".ffconcat"))
                method += f"; {len(parts)} clips of {'+'.join(map(str, clips))} s joined"
            asset = await self._asset(target)
        return attrs.evolve(asset, source=Source(self.name, method=method, notes=notes))

    def _key(self, ask: _Ask, *, refused: bool = False) -> str:
        """The cache key of one clip: every setting that changes what Veo makes. (The seed,
        person generation, reference images and part enter it only when set; the
        resolution always does, and is now always sent, so a clip kept before without one
        is made again once.)"""
        extra: dict[str, Any] = {}
        if self.seed is not None:
            extra["seed"] = self.seed
        if self.person_generation is not None:
            extra["person_generation"] = self.person_generation
        if ask.references:
            extra["references"] = [sha256_hex(r) for r in ask.references]
        if ask.part:
            extra["part"] = ask.part
        return AssetCache.key(
            "veo-refused" if refused else "veo", model=self.model, prompt=ask.prompt,
            aspect=ask.aspect, seconds=ask.duration, audio=ask.audio,
            resolution=ask.resolution, negative_prompt=self.negative_prompt,
            image=sha256_hex(ask.image) if ask.image is not None else None,
            **extra)

    def _refusal_key(self, ask: _Ask, prompt: str) -> str:
        """Where a refusal of ``ask`` with ``prompt`` is remembered."""
        return self._key(attrs.evolve(ask, prompt=prompt), refused=True)

    async def _clip_of(self, ask: _Ask, target: Path, prompt: str) -> ClipAsset:
        """`_clip` of ``ask`` with ``prompt``."""
        return await self._clip(attrs.evolve(ask, prompt=prompt), target)

    async def _clip(self, ask: _Ask, target: Path) -> ClipAsset:
        """One clip: from the cache, or from one paid operation (whoever asks)."""
        key = self._key(ask)
        journal = self._journal()
        if self._fetch(key, target, report_miss=False):
            if journal is not None:
                # left by a crash between storing the clip and this (a record's writes
                # sync the disk: in a worker thread, the event loop goes on meanwhile)
                await through_thread(journal.forget, key)
            return await self._asset(target)
        # one operation per clip, whoever asks: the others wait here, then find it stored
        async with self._flight(key):
            if self._fetch(key, target):
                if journal is not None:
                    await through_thread(journal.forget, key)
                return await self._asset(target)
            async with contextlib.AsyncExitStack() as quota:
                await quota.enter_async_context(self._quota())
                with paid_call(agent=self.name, model=self.model, quantity=ask.duration,
                               unit="video_second",
                               usd=self.price.video(ask.duration, ask.audio, ask.resolution)):
                    # the quota counts operations in flight: the slot is given back as
                    # soon as the operation is done, before its clip is downloaded
                    asset = await self._produce(key, target, ask, done=quota.aclose)
            await self._keep(key, target)
            if journal is not None:
                await through_thread(journal.forget, key)
        return asset

    # -- steps ---------------------------------------------------------------------------

    async def _input_image(self, scene: Scene, preset: Preset, previous: Path | None,
                           scratch: Callable[[str], Path], pictures: list[tuple[str, Path]],
                           send_references: bool) -> tuple[bytes | None, str]:
        """The first clip's input image (or None: from words alone), and how it was found."""
        if self.continuity and previous is not None:
            if not Path(previous).is_file():
                raise MediaError("the previous scene's clip is missing", previous)
            frame = await _last_frame(Path(previous), scratch(".frame.png"))
            return frame, "image-to-video from the previous clip's last frame"
        painter = self.still
        method = "image-to-video from a still"
        if painter is None and pictures and not send_references and \
                getattr(self.painter, "takes_references", False):
            painter = self.painter
            method = ("image-to-video from the scene's still (reference images: "
                      + ", ".join(name for name, _ in pictures) + ")")
        if painter is not None:
            still, make = scratch(".still.png"), painter.generate
            if inspect.iscoroutinefunction(make):
                await make(scene, preset, still)
            else:  # a plain (blocking) image generator runs in a worker thread
                await asyncio.to_thread(make, scene, preset, still)
            if not still.is_file() or not still.stat().st_size:
                raise MediaError(f"{type(painter).__name__} wrote no still", still)
            return still.read_bytes(), method
        return None, "text-to-video"

    def _journal(self) -> OperationJournal | None:
        """Where accepted operations are written down: with the cache (None: no cache)."""
        if self.cache is None:
            return None
        return self.cache.journal()

    def _pollable(self, name: str) -> bool:
        """Whether ``name`` (read back from a record) is a Veo operation of this model."""
        match = _OPERATION_NAME.fullmatch(name)
        return match is not None and match["model"] == self.model.rpartition("/")[2]

    def _recall(self, key: str) -> Any:
        """The operation recorded for ``key`` (by an earlier process), or None."""
        journal = self._journal()
        entry = None if journal is None else journal.recall(key, agent=self.name,
                                                             valid=self._pollable)
        if entry is None:
            return None
        from google.genai import types

        _logger.info("%s: resuming operation %s, accepted %.0f s ago, instead of submitting "
                     "its clip again", self.name, entry.operation,
                     max(0.0, time.time() - entry.submitted))
        self._recalled.add(key)
        return types.GenerateVideosOperation.model_validate({"name": entry.operation})

    async def _submit_recorded(self, key: str, ask: _Ask) -> Any:
        """Submit, and write the accepted operation down before anything else happens."""
        operation = await self._submit(ask)
        self._recalled.discard(key)
        self._pending[key] = operation
        journal = self._journal()
        name = operation.name
        if journal is not None and isinstance(name, str) and self._pollable(name):
            await through_thread(journal.record, key, agent=self.name, operation=name)
        elif journal is not None and not operation.done:
            _logger.warning("%s: operation %r is not a Veo operation name avgen knows; it "
                            "was not recorded, so a crash now would submit its clip again",
                            self.name, name)
        return operation

    async def _produce(self, key: str, target: Path, ask: _Ask, *,
                       done: Callable[[], Awaitable[object]] | None = None) -> ClipAsset:
        """Submit (or resume) the operation for ``key``, wait for it (then call ``done``),
        save and check the clip.

        An operation is remembered — in memory, and in the cache folder's journal — until
        its clip is saved or it has failed for good: a call retried after a transient
        failure (or a cancellation, or the deadline), or a later process after a crash,
        resumes it instead of paying for a new one. A recorded operation the service no
        longer knows, or reports as failed, is submitted anew (once); one deadline covers
        the waits for both.
        """
        operation = self._pending.get(key)
        if operation is None:
            operation = self._recall(key)
        fresh = operation is None  # submitted here: its wait times a whole operation
        if operation is None:
            operation = await self._submit_recorded(key, ask)
        self._pending[key] = operation
        started = time.monotonic()  # the deadline counts from here, as it always did
        try:
            try:
                operation = self._pending[key] = await self._wait(
                    operation, started, kind=(ask.duration, ask.resolution) if fresh else None)
                stale = None
                if operation.error and key in self._recalled:
                    stale = f"it failed with code {dict(operation.error).get('code')}"
            except _Gone as exc:
                if key not in self._recalled:
                    raise
                stale = str(exc).removeprefix(f"{self.name}: ")
            if stale is not None:
                _logger.warning("%s: the recorded operation %s cannot make the clip (%s); "
                                "submitting it again", self.name, operation.name, stale)
                self._forget(key, operation)
                operation = await self._submit_recorded(key, ask)
                operation = self._pending[key] = await self._wait(operation, started)
            if done is not None:
                await done()
            await self._save(self._video(operation), target)
            asset = await self._asset(target)
        except (ServiceUnavailable, RateLimited, _Overdue, asyncio.CancelledError):
            raise
        except BaseException:
            self._forget(key, operation)
            raise
        self._pending.pop(key, None)
        self._recalled.discard(key)
        return asset

    def _forget(self, key: str, operation: Any) -> None:
        """Drop ``operation``, failed for good, from memory and from the journal."""
        self._pending.pop(key, None)
        self._recalled.discard(key)
        journal = self._journal()
        if journal is not None and isinstance(operation.name, str):
            journal.forget(key, operation=operation.name)

    async def _submit(self, ask: _Ask) -> Any:
        from google.genai import types

        image = ask.image
        config = types.GenerateVideosConfig(
            duration_seconds=ask.duration, aspect_ratio=ask.aspect, resolution=ask.resolution,
            negative_prompt=self.negative_prompt,
            generate_audio=ask.audio if self.can.audio else None, seed=self.seed,
            person_generation=self.person_generation,
            reference_images=[types.VideoGenerationReferenceImage(
                image=types.Image(image_bytes=picture, mime_type=mime_of(picture)),
                reference_type=types.VideoGenerationReferenceType.ASSET)
                for picture in ask.references] or None)
        source = types.GenerateVideosSource(prompt=ask.prompt, image=None if image is None else
                                            types.Image(image_bytes=image,
                                                        mime_type=mime_of(image)))
        client = self.connection.client
        try:
            return await client.aio.models.generate_videos(model=self.model, source=source,
                                                           config=config)
        except Exception as exc:
            error = self.connection.translate(exc, self.name, model=self.model,
                                              replacement=self.replacement)
            if ask.references and _status(exc) == 400 and \
                    "use case is currently not supported" in str(exc):
                refused = _ReferencesRefused(self._redact(getattr(exc, "message", None)
                                                          or exc), self.name)
                refused.__cause__ = error
                error = refused
            # refused or never sent: nothing was created, a retry is safe; else it is not
            if isinstance(error, ServiceUnavailable) and _sent_without_answer(exc):
                lost = AgentError(self._redact(
                    f"the clip request was sent but no usable answer came back "
                    f"({type(exc).__name__}); Veo may have accepted and billed it, so it was "
                    "not retried"), self.name)
                lost.__cause__ = error
                error = lost
        raise error

    async def _wait(self, operation: Any, started: float, *,
                    kind: tuple[int, str | None] | None = None) -> Any:
        """Poll ``operation`` until it is done, with backoff, until ``deadline`` seconds
        after ``started`` (a `time.monotonic` reading).

        With ``kind`` (the clip's length and resolution; ``started`` is then when it was
        submitted), the polls are also timed from how long such operations took before
        (`avgen.agents.google._polling`), and what these polls find is learnt for the
        next ones.

        Raises:
            _Overdue: The deadline passed.
            _Gone: The service does not know the operation (HTTP 400, 403, 404 or 410).
        """
        client = self.connection.client
        interval = self.poll_interval
        times = self._times.setdefault(kind, OperationTimes()) if kind is not None else None
        if times is not None and times.done_by is None:
            interval *= times.stagger()  # operations submitted together poll apart
        running_at: float | None = None  # when the last poll found it still running
        asked_at: float | None = None
        polled = 0.0  # when it was last polled, or meant to be
        aim: float | None = None  # when the next poll is meant to be, once woken before it
        while not operation.done:
            elapsed = time.monotonic() - started
            if elapsed >= self.deadline:
                raise _Overdue(self._redact(
                    f"operation {operation.name} ran past its deadline ({elapsed:.1f} s > "
                    f"{self.deadline:g} s); it was not resubmitted"), self.name)
            wait, following = next_poll(elapsed, interval,
                                        times.due() if times is not None else (),
                                        self.poll_interval, self.poll_max_interval, polled)
            if aim is not None:
                wait = min(wait, max(0.0, aim - elapsed))
            wait = min(wait, self.deadline - elapsed)
            if times is None:
                await asyncio.sleep(wait)
            elif wait > 0 and await times.nap(wait):
                # another operation of its kind was seen done: look again at when this
                # one is due (at once, if that time has passed since its last poll)
                aim = elapsed + wait
                continue
            aim, interval, running_at = None, following, asked_at

            async def poll(current: Any = operation) -> Any:
                try:
                    return await self._api(lambda: client.aio.operations.get(current))
                except AgentError as exc:
                    status = _status(exc.__cause__)
                    if status in _GONE:
                        raise _Gone(self._redact(
                            f"the service does not know operation {current.name} (HTTP "
                            f"{status})"), self.name) from exc
                    raise

            asked_at = time.monotonic() - started
            # a timer may fire a hair early: the time it was meant for counts as polled
            polled = max(asked_at, elapsed + wait)
            remaining = max(0.001, self.deadline - asked_at)
            operation = await self._retry(remaining)(poll)()
        if times is not None and asked_at is not None and not operation.error:
            times.learn(running_at, asked_at)
        return operation

    def _retry(self, budget: float) -> RetryDecorator:
        """Retries for the safe calls (polls, downloads) within ``budget`` seconds."""
        return retry(attempts=5, timeout=budget, wait_initial=min(self.poll_interval, 2.0),
                     wait_max=self.poll_max_interval, name=self.name)

    def _video(self, operation: Any) -> Any:
        if operation.error:
            error = dict(operation.error)
            raise AgentError(self._redact(
                f"operation {operation.name} failed (code {error.get('code')}): "
                f"{error.get('message') or error}"), self.name)
        response = operation.response or operation.result
        if response is None:
            raise AgentError(f"operation {operation.name} ended with neither a result nor "
                             "an error", self.name)
        videos = [g.video for g in response.generated_videos or [] if g.video is not None]
        if not videos:
            reasons = response.rai_media_filtered_reasons or []
            raise ContentRejected("Veo returned no clip: its safety filters kept it back",
                                  self.name, reason=self._redact("; ".join(reasons)
                                                                 or "no reason given"))
        return videos[0]

    async def _save(self, video: Any, target: Path) -> None:
        if video.video_bytes:
            await asyncio.to_thread(target.write_bytes, video.video_bytes)
            return
        uri = str(video.uri or "")
        if uri.startswith("gs://"):
            raise AgentError(self._redact(
                f"Veo stored the clip in Cloud Storage ({uri}); avgen does not set an output "
                "bucket and cannot read gs:// URIs, so the clip was expected inline"), self.name)
        if not uri.startswith(("http://", "https://")):
            raise AgentError("Veo returned neither video bytes nor a URI", self.name)

        await self._retry(self.deadline)(self._http_get)(uri, target)

    async def _http_get(self, uri: str, target: Path) -> None:
        """Stream ``uri`` to ``target`` under `avgen.agents._download`'s rules: from Google's
        hosts or the connection's own endpoint, the API key only to that endpoint."""
        await download(uri, reach=Reach(_MEDIA_HOSTS, base=self.connection.base_url),
                       agent=self.name, what="clip download", target=target,
                       limits=Limits(read_timeout=self.connection.timeout),
                       credentials=self.connection.auth_headers)

    async def _asset(self, target: Path) -> ClipAsset:
        info = await asyncio.to_thread(probe, target)
        if not info.has_video or not info.duration:
            raise MediaError(f"{self.name} returned a file with no video stream", target)
        return ClipAsset(target, info.duration, info.width, info.height, info.fps or 24.0,
                         info.has_audio)


def _status(exc: BaseException | None) -> int | None:
    """The HTTP status of an SDK error, or of its scrubbed stand-in (None for anything
    else)."""
    if isinstance(exc, RedactedError):
        return exc.code
    code = getattr(exc, "code", None)
    if exc is None or not type(exc).__module__.startswith("google.genai"):
        return None
    return code if isinstance(code, int) else None



@attrs.frozen
class _Ask:
    """What one clip is asked with."""

    prompt: str
    image: bytes | None
    references: tuple[bytes, ...]
    duration: int
    aspect: str
    audio: bool
    resolution: str | None
    part: int = 0


async def _last_frame(clip: Path, frame: Path) -> bytes:
    """The last frame of ``clip`` as PNG bytes (written at ``frame``)."""
    await run_ffmpeg(["-sseof", "-1", "-i", str(clip), "-an", "-update", "1", str(frame)],
                     what="taking the last frame of a clip")
    if not frame.is_file() or not frame.stat().st_size:
        raise MediaError("no frame could be taken from the clip", clip)
    return frame.read_bytes()


async def _join(parts: list[ClipAsset], target: Path, listing: Path) -> None:
    """Join clips of one model end to end into ``target`` (stream copy: same codecs),
    through the ffconcat list written at ``listing``."""
    listing.write_text(ffconcat([part.path for part in parts]), encoding="utf-8")
    await run_ffmpeg(["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy",
                      "-movflags", "+faststart", "-f", "mp4", str(target)],
                     what="joining a scene's clips")
