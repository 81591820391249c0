"""The google agents: Gemini writes the script, Gemini TTS narrates, a Gemini image model
paints stills, Veo films clips — all through the ``google-genai`` SDK.

::

    from avgen import VideoGenerator

    generator = VideoGenerator("google", budget=5.00)    # credentials from the environment
    print(generator.estimate(topic="How bees dance", duration=40, preset="shorts"))
    video = generator.generate_sync(topic="How bees dance", duration=40, preset="shorts")

`google_agents` builds the family from a `GoogleConnection` (environment variables, or a
`google.genai.Client` you pass). In Vertex AI mode every scene gets a Veo clip, with a
Gemini still and then a procedural card as its fallbacks. The Developer API cannot serve
Veo (google-genai 3.x): there, ``clips="auto"`` (the default) makes stills and warns that
clips need Vertex AI, and ``clips=True`` refuses up front.

**Models.** Every model avgen knows is in `CATALOGUE` (data: ``models.toml``): its kind,
the surfaces that serve it and until when, its replacement, prices and capabilities, and
where each fact was read. The defaults are the catalogue's current models for the
connection's surface; a model you name that Google has shut down is refused before
anything is sent, naming its replacement (``avgen models`` lists them all, and
``avgen models --check`` asks the service which ones your key can use).

Every call is priced (`avgen.agents.google.PRICES`), checked against the generator's
budget before it is sent, recorded in the manifest, and kept in the
`avgen.agents.AssetCache` so the same request is never paid for twice. Quota errors and
outages are retried with backoff and judged by a circuit breaker per agent
(`GOOGLE_POLICY`); safety refusals make the scene fall back. Keys and tokens never reach
a log, an event, the manifest or an error message.
"""

from __future__ import annotations

__docformat__ = "google"

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from avgen._validate import flag, number
from avgen.agents._assets.cache import AssetCache
from avgen.agents._protocols import AgentSet
from avgen.agents.google._catalogue import CATALOGUE, PRICES
from avgen.agents.google._check import check_models
from avgen.agents.google._clips import VeoClips
from avgen.agents.google._common import GOOGLE_POLICY
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._images import GeminiImages
from avgen.agents.google._narrator import GeminiNarrator
from avgen.agents.google._prices import Price
from avgen.agents.google._rewrite import PromptRewriter
from avgen.agents.google._script import GeminiScriptWriter
from avgen.errors import UsageError
from avgen.media._composer import FFmpegComposer

__all__ = [
    "CATALOGUE",
    "GOOGLE_POLICY",
    "PRICES",
    "GeminiImages",
    "GeminiNarrator",
    "GeminiScriptWriter",
    "GoogleConnection",
    "Price",
    "VeoClips",
    "check_models",
    "google_agents",
]

_logger = logging.getLogger("avgen.agents.google")
T = TypeVar("T")


def google_agents(
    connection: GoogleConnection | None = None,
    *,
    client: Any = None,
    env: Mapping[str, str] | None = None,
    script_model: str | None = None,
    tts_model: str | None = None,
    image_model: str | None = None,
    video_model: str | None = None,
    voice: str = "Kore",
    clips: bool | Literal["auto"] = "auto",
    images: bool = True,
    clip_audio: bool = False,
    continuity: bool = False,
    references: bool = True,
    portrait_model: str | None = None,
    rewrites: int = 2,
    resolution: str | None = "auto",
    negative_prompt: str | None = None,
    seed: int | None = None,
    person_generation: str | None = None,
    max_clip_operations: int = 2,
    requests_per_minute: Mapping[str, float] | None = None,
    poll_interval: float = 5.0,
    poll_max_interval: float | None = None,
    cache: AssetCache | str | os.PathLike[str] | bool | None = True,
    cache_options: Mapping[str, Any] | None = None,
    prices: Mapping[str, Price] | None = None,
    timeout: float = 120.0,
) -> AgentSet:
    """The google family of agents.

    Args:
        connection: A `GoogleConnection`; default: ``client`` or the environment.
        client: A `google.genai.Client` to use (made without ``retry_options``).
        env: Environment variables to read instead of ``os.environ``.
        script_model: The Gemini model that writes the script (and rewrites refused
            prompts). Each ``*_model`` defaults to `CATALOGUE`'s current model of its kind
            for the connection's surface (``avgen models`` lists them); a model past its
            shutdown date is refused, one close to it is used with a warning.
        tts_model: The Gemini speech model.
        image_model: The Gemini image model of the stills.
        video_model: The Veo model.
        voice: The narrator's default voice (one of `VOICES`).
        clips: ``"auto"``: Veo clips when the mode serves them, else stills with a warning;
            ``True``: clips or a `avgen.errors.UsageError`; ``False``: no clips.
        images: Make stills (as the picture, or as the clips' fallback).
        clip_audio: Ask Veo for its own sound (mixed under the narration; costs more).
        continuity: Start each clip from the last frame of the previous one.
        references: Keep characters' faces: a reference picture of each (yours, or painted
            once by ``portrait_model``) goes with every later still of them and to Veo as
            reference images where the model takes them, else the clip animates a still
            painted from them.
        portrait_model: The Gemini image model that paints portraits (and those stills);
            default: ``image_model``.
        rewrites: Rewrites of a prompt a safety filter refused, per picture or clip, by
            ``script_model`` (0: a refusal makes the scene fall back at once).
        resolution: Veo's resolution: ``"auto"`` (1080p for a preset 1080 pixels or more
            on its short side, else 720p), ``"720p"``, ``"1080p"``, ``"4k"`` or ``None``.
        negative_prompt: What the clips should not show.
        seed: Veo's seed, for repeatable clips (part of the cache key).
        person_generation: Veo's ``person_generation`` (``"dont_allow"``,
            ``"allow_adult"``, ``"allow_all"``; ``None``: the model's default).
        max_clip_operations: Veo operations in flight at once (in a batch: across every
            worker).
        requests_per_minute: Requests each model may start in any 60 s, by model id (in a
            batch: across every worker); a model not named has no limit.
        poll_interval: Seconds before the first poll of a Veo operation (the wait grows to
            30 s between polls).
        poll_max_interval: The longest wait between two polls (default: 30 s, or
            ``poll_interval`` if longer).
        cache: ``True``: an `AssetCache` in ``<avgen cache>/google``; a folder or an fsspec
            URL (``"s3://bucket/prefix"``: see `AssetCache`), for ``AssetCache(cache)``
            — a plain value that pickles, for workers that build their agents from
            options; an `AssetCache`; or ``False``/``None``: no cache (every run pays
            again).
        cache_options: fsspec storage options for a cache given as a URL (an endpoint,
            credentials, a project); workers of a batch get them with the other options,
            and ``batch.json`` does not keep them.
        prices: Price overrides by model id.
        timeout: Seconds an HTTP request may take.

    Raises:
        ConfigurationError: No credentials are configured.
        UsageError: A bad option; a model that was shut down, is not served on the
            connection's surface or is of the wrong kind (the error names the option and the
            replacement); or clips asked for in a mode that cannot make them. Nothing has
            been sent.
    """
    if connection is None:
        connection = (GoogleConnection.from_client(client) if client is not None
                      else GoogleConnection.from_env(env, timeout=timeout))
    store: AssetCache | None
    if cache_options is not None and not isinstance(cache, str | os.PathLike):
        raise UsageError("cache_options", "are for a cache given as a URL (cache='s3://…')")
    if cache is True:
        store = AssetCache()
    elif cache is False or cache is None:
        store = None
    elif isinstance(cache, AssetCache):
        store = cache
    elif isinstance(cache, str | os.PathLike) and _text(os.fspath(cache)):
        store = AssetCache(os.fspath(cache), storage_options=cache_options)
    else:
        raise UsageError("cache", f"must be True, False, None, a folder, a URL "
                         f"(s3://bucket/prefix…) or an AssetCache, not {cache!r}")
    if clips not in ("auto", True, False):
        raise UsageError("clips", f"must be 'auto', True or False, not {clips!r}")
    rpm = dict(requests_per_minute or {})
    flag("references", references)

    def shared(model: str | None) -> dict[str, Any]:
        return {"cache": store, "prices": prices, "requests_per_minute": rpm.get(model or "")}

    number("rewrites", rewrites, integer=True, low=0, high=10)
    script_writer = _named("script_model", lambda: GeminiScriptWriter(
        connection, script_model, **shared(script_model)))
    narrator = _named("tts_model", lambda: GeminiNarrator(
        connection, tts_model, voice=voice, **shared(tts_model)))
    rewriter = PromptRewriter(connection, script_writer.model,
                              **shared(script_writer.model)) if rewrites else None
    fixes: dict[str, Any] = {"rewriter": rewriter, "rewrites": rewrites}
    if images or references:
        image_model = image_model or CATALOGUE.default("image", connection.mode)
    portrait_model = portrait_model or image_model
    painter = _named("portrait_model" if portrait_model != image_model else "image_model",
                     lambda: GeminiImages(connection, portrait_model, **shared(portrait_model),
                                          **fixes)) \
        if references and connection.supports("gemini_image") else None
    clip_generator = None
    if clips is not False:
        if connection.supports("video"):
            clip_generator = _named("video_model", lambda: VeoClips(
                connection, video_model, audio=clip_audio, continuity=continuity,
                poll_interval=poll_interval,
                poll_max_interval=max(30.0, poll_interval) if poll_max_interval is None
                else poll_max_interval, max_concurrency=max_clip_operations,
                resolution=resolution, negative_prompt=negative_prompt, seed=seed,
                person_generation=person_generation,
                references=None if references else False, painter=painter, **fixes,
                **shared(video_model)))
        elif clips is True:
            raise UsageError("clips", f"Veo clips need Vertex AI and this is "
                             f"{connection.describe()}: set GOOGLE_GENAI_USE_VERTEXAI=true "
                             "with GOOGLE_CLOUD_PROJECT, or pass clips='auto' to make "
                             "stills instead")
        else:
            message = (f"Veo clips need Vertex AI ({connection.describe()}; the Developer "
                       "API's own video models answer through its Interactions API, which "
                       "avgen does not call): every scene gets a still with Ken Burns motion "
                       "instead")
            warnings.warn(message, UserWarning, stacklevel=2)
            _logger.warning("%s", message)
    image_generator: GeminiImages | None = None
    if images:
        if painter is not None and image_model == painter.model:
            image_generator = painter
        else:
            image_generator = _named("image_model", lambda: GeminiImages(
                connection, image_model, **shared(image_model), **fixes,
                references=references))
    return AgentSet(script_writer=script_writer, narrator=narrator, composer=FFmpegComposer(),
                    image_generator=image_generator, clip_generator=clip_generator)


def _named(field: str, make: Callable[[], T]) -> T:
    """``make()``, with a `UsageError` about its model reported as one about ``field``."""
    try:
        return make()
    except UsageError as exc:
        if exc.field != "model":
            raise
        error = UsageError(field, exc.problem)
    raise error


def _text(path: str | bytes) -> bool:
    """Whether ``path`` names a folder or a URL (a non-empty `str`)."""
    return isinstance(path, str) and bool(path)
