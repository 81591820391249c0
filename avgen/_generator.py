"""`VideoGenerator`: the facade that makes videos from requests with a family of agents.

One run (see `avgen._run.Run`)::

    VideoRequest ─► ScriptWriter.write ─► Script(scenes)
       for each scene, concurrently (bounded per agent):
           Narrator.speak(scene.narration)        ─► AudioAsset (duration measured)
           ClipGenerator / ImageGenerator / card  ─► the scene's picture (fallback chain)
       Timeline(scenes, audio, pictures, captions) ─► Composer.compose ─► Video

Every step is recorded in the session's manifest; resuming a session redoes only the steps
whose outputs are missing or fail their checksum.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import concurrent.futures
import inspect
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import attrs

from avgen._batch import AgentSpec, BatchResult, run_batch
from avgen._language import resolved
from avgen._models import Tier, Video, VideoRequest
from avgen._policy import AgentPolicy, call_agent, check_policies
from avgen._reporting import EventHandler, RunEvent
from avgen._run import RunContext, run_video
from avgen._session import Session
from avgen._threads import on_loop, through_thread
from avgen._validate import check_budget, folder
from avgen._version import __version__
from avgen._versions import versions_of
from avgen.agents._protocols import AgentSet, agent_name
from avgen.agents._registry import load_agents
from avgen.costs import Charge, CostEstimate
from avgen.errors import BudgetExceeded, MediaError, UsageError
from avgen.media._ffmpeg import probe
from avgen.resilience import CircuitRegistry, Monitor

__all__ = ["VideoGenerator"]

_logger = logging.getLogger("avgen.generator")
T = TypeVar("T")

def _keep_files(session: Session, request: VideoRequest) -> VideoRequest:
    """The request with its files copied into the session — the music (``audio/music.*``)
    and each character's picture (``images/cast/given-N.*``) — so the session holds every
    file it reads and a resume never reaches outside it."""
    def kept(given: Path, relative: str) -> Path:
        with session.atomic_path(relative) as temp:
            shutil.copyfile(given, temp)
        return session.path(relative)

    music = request.soundtrack.music
    if music is not None:
        request = attrs.evolve(request, soundtrack=attrs.evolve(
            request.soundtrack, music=kept(music, f"audio/music{music.suffix.lower()}")))
    if any(character.reference for character in request.characters):
        request = attrs.evolve(request, characters=[
            character if character.reference is None else attrs.evolve(
                character, reference=kept(character.reference, f"images/cast/given-{index}"
                                          f"{character.reference.suffix.lower()}"))
            for index, character in enumerate(request.characters)])
    return request


def _request(request: VideoRequest | None, fields: dict[str, Any]) -> VideoRequest:
    if request is None:
        return resolved(VideoRequest(**fields))
    return resolved(attrs.evolve(request, **fields) if fields else request)


def _run_sync(coro: Coroutine[Any, Any, T],
              release: Callable[[], Awaitable[None]] | None = None) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop
    (a notebook cell): then it runs on its own loop in a worker thread. ``release`` is
    awaited on that loop when the coroutine is done, before the loop ends (what agents
    opened on the loop is closed while it still runs)."""

    async def whole() -> T:
        try:
            return await coro
        finally:
            if release is not None:
                await release()

    if not on_loop():
        return asyncio.run(whole())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="avgen") as pool:
        return pool.submit(asyncio.run, whole()).result()


class VideoGenerator:
    """Makes videos from requests with a family of agents.

    Args:
        agents: ``"local"`` (the default: offline), the name of an installed plugin, or an
            `avgen.agents.AgentSet`.
        agent_options: Options for the family named by ``agents`` (for instance
            ``{"cache": "gs://bucket/avgen"}`` for google). A generator made from a name and
            options, with no agent objects, can run a batch's items in other processes and
            on a Dask cluster (`generate_many`), which build the agents there.
        script_writer: Replaces the family's script writer.
        narrator: Replaces the family's narrator.
        image_generator: Replaces the family's image generator.
        clip_generator: Replaces the family's clip generator.
        composer: Replaces the family's composer.
        visuals: A scene's picture sources in the order to try them — clip and image
            generators in any order, such as your media library, then stock footage, then
            generated clips — before the procedural card (default: the clip generator,
            then the image generator). See `avgen.agents.AgentSet.visuals`.
        output_dir: Where session folders are created.
        on_event: Called with every `RunEvent` (progress, fallbacks, notes).
        required_tier: If set, a scene that cannot get a picture of this tier fails the run
            instead of falling back (``"clip"`` or ``"image"``).
        policies: Retry and circuit-breaker settings by role (``"narrator"``,
            ``"clip_generator"`` …), overriding the agents' own (see `avgen.AgentPolicy`).
        monitor: A `avgen.resilience.Monitor` that times every agent call; its report
            (calls, seconds, failures per agent, resource peaks if it samples) is saved in
            the manifest at the end of each run, with its latest samples (``monitor_samples``,
            at most 400) for the HTML report.
        budget: The most one video may cost, in US dollars, more than 0 (``None``: no
            limit). A paid call that would go over it is not made
            (`avgen.errors.BudgetExceeded`): a scene's picture falls back to a cheaper
            tier, a script or narration stops the run, which `resume` can finish later
            with a larger budget. A budget smaller than the cheapest call the script
            writer or the narrator must make is refused by `generate` before any request
            or session folder. See `estimate`.

    Example:
        >>> from avgen import VideoGenerator
        >>> generator = VideoGenerator()          # offline agents
        >>> video = generator.generate_sync(script="Hello. This is avgen.")  # doctest: +SKIP
    """

    def __init__(
        self,
        agents: str | AgentSet | None = None,
        *,
        agent_options: Mapping[str, Any] | None = None,
        script_writer: Any = None,
        narrator: Any = None,
        image_generator: Any = None,
        clip_generator: Any = None,
        composer: Any = None,
        visuals: Iterable[Any] | None = None,
        output_dir: str | Path = "outputs",
        on_event: EventHandler | None = None,
        required_tier: Tier | None = None,
        policies: dict[str, AgentPolicy] | None = None,
        monitor: Monitor | None = None,
        budget: float | None = None,
    ) -> None:
        options = dict(agent_options or {})
        if isinstance(agents, AgentSet):
            if options:
                raise UsageError("agent_options", "are for a family given by name, not for an "
                                 "AgentSet")
            base = agents
        else:
            base = load_agents(agents or "local", **options)
        overrides = {key: value for key, value in {
            "script_writer": script_writer, "narrator": narrator, "composer": composer,
            "image_generator": image_generator, "clip_generator": clip_generator,
            "visuals": None if visuals is None else tuple(visuals),
        }.items() if value is not None}
        self._agent_spec = (AgentSpec(agents or "local", options)
                            if not isinstance(agents, AgentSet) and not overrides else None)
        self.agents: AgentSet = attrs.evolve(base, **overrides)
        """The agents this generator uses."""
        if required_tier not in (None, "clip", "image"):
            raise UsageError("required_tier", "must be None, 'clip' or 'image'")
        if required_tier is not None and all(tier != required_tier
                                             for tier, _ in self.agents.sources()):
            raise UsageError("required_tier", f"{required_tier!r} needs a visual source that "
                             f"makes {'clips' if required_tier == 'clip' else 'images'}")
        self.output_dir = folder("output_dir", output_dir)
        """Where new sessions are created."""
        self.required_tier = required_tier
        """The picture tier every scene must reach, if any."""
        self.policies = check_policies(policies or {})
        """Per-role overrides of the agents' resilience policies."""
        self.monitor = monitor
        """Times every agent call; its report goes into each run's manifest."""
        self.budget = check_budget(budget)
        """The most one video may cost, in US dollars (``None``: no limit)."""
        self.breakers = CircuitRegistry()
        """This generator's circuit breakers, one per agent that asks for one; they keep
        their state from run to run, so a service found down stays skipped."""
        self._handlers: list[EventHandler] = [on_event] if on_event else []

    def _context(self, emit: EventHandler | None = None) -> RunContext:
        """What a run of this generator receives: its agents and settings, and ``emit``
        (default: this generator's subscribers) for its events."""
        return RunContext(self.agents, self.budget, self.required_tier, self.policies,
                          self.breakers, self.monitor, emit or self._emit)

    def __repr__(self) -> str:
        return f"VideoGenerator({self.agents.names()!r})"

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every agent that has a ``close()`` method (connections, pools).

        Use the generator as a context manager (``with`` or ``async with``) to close it
        when the block ends. A closed generator's agents may not be usable again.
        """
        for agent in self.agents.distinct():
            closer = getattr(agent, "close", None)
            if callable(closer) and not inspect.iscoroutinefunction(closer):
                closer()

    async def aclose(self) -> None:
        """Close every agent: its ``aclose()`` when it has one, else its ``close()``."""
        for agent in self.agents.distinct():
            closer = getattr(agent, "aclose", None) or getattr(agent, "close", None)
            if callable(closer):
                await call_agent(closer)

    async def _release_loop(self) -> None:
        """Let every agent close what it opened on the running event loop, which is about
        to end (its ``release_loop()``, when it has one); a failure is logged."""
        for agent in self.agents.distinct():
            release = getattr(agent, "release_loop", None)
            if callable(release):
                try:
                    await call_agent(release)
                except Exception as exc:
                    _logger.warning("%s could not close its connections on this event loop: "
                                    "%s", agent_name(agent), exc)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()


    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler`` with every `RunEvent`; returns a function that unsubscribes it."""
        self._handlers.append(handler)
        return lambda: self._handlers.remove(handler)

    # -- public entry points -------------------------------------------------------------

    def check(self, request: VideoRequest) -> None:
        """Validate ``request`` against every agent, before any work or paid call.

        Raises:
            UsageError: A field is not acceptable; the error names it.
        """
        for field in attrs.fields(AgentSet):
            agent = getattr(self.agents, field.name)
            checker = getattr(agent, "check", None)
            if callable(checker):
                checker(request)
        self._check_versions(request)
        for index, character in enumerate(request.characters):
            if character.reference is None:
                continue
            try:
                info = probe(character.reference)
            except MediaError:
                info = None
            if info is None or not info.has_video or not info.width:
                raise UsageError(f"characters[{index}].reference",
                                 f"{character.reference} is not a picture ffmpeg can read")

    def _check_versions(self, request: VideoRequest) -> None:
        """Each other language's version, against the agents that make it (the narrator
        speaks it; a translation you gave has its scenes where the original has them);
        a language nobody can translate is refused, naming what to give.

        Raises:
            UsageError: A version cannot be made.
        """
        if not request.languages:
            return
        versions = versions_of(resolved(request))
        writer = self.agents.script_writer
        missing = [version.language for version in versions[1:] if version.given is None]
        if missing and not callable(getattr(writer, "translate", None)):
            example = ", ".join(f"{language!r}: ..." for language in missing)
            raise UsageError("translations", (
                f"nothing can translate the script into {', '.join(missing)}: the "
                f"{agent_name(writer)} script writer does not translate. Give a translated "
                f"script for each language (avgen make --languages "
                f"{','.join(v.language for v in versions)} --script ORIGINAL.md "
                + " ".join(f"--script {language}.md" for language in missing)
                + f"; VideoRequest(translations={{{example}}})), or use a script writer "
                "that translates (--agents google with a key)"))
        count = getattr(writer, "scene_count", None)
        scenes = count(versions[0].request) if callable(count) and request.script else None
        for version in versions[1:]:
            for field in attrs.fields(AgentSet):
                agent = getattr(self.agents, field.name)
                checker = getattr(agent, "check", None)
                if field.name == "script_writer" and version.given is None:
                    continue  # nothing of its own to check before it is translated
                if callable(checker):
                    checker(version.check_request)
            if scenes is not None and version.given is not None and callable(count):
                found = count(version.request)
                if found != scenes:
                    raise UsageError(f"translations[{version.language!r}]", (
                        f"has {found} scene{'s' if found != 1 else ''}; the original "
                        f"script has {scenes}: give one paragraph per scene, in the same "
                        "order, under the same headings"))

    def estimate(self, request: VideoRequest | None = None, /, **fields: Any) -> CostEstimate:
        """What making ``request`` is expected to cost, before anything is spent.

        Each agent with an ``estimate(request)`` method prices its share (the google agents
        do, from `avgen.agents.google.PRICES`, scene by scene); agents without one cost
        nothing. What may be paid on top — what the visual sources after the first would
        make (they are its fallback: the image generator's stills when a clip generator
        comes first), and whatever an agent's
        ``estimate_extras(request)`` lists (rewrites of refused prompts) — is in
        `avgen.costs.CostEstimate.extras`, not in the total. Assets already in an agent's
        cache are not paid for again, so a re-run costs less than the estimate.

        For a video in several languages (`avgen.VideoRequest.languages`) the script and
        the pictures are priced once, shared by every version, and each language's
        translation (by the script writer's ``estimate_translation(request, language)``),
        narration and composition are lines of their own (`avgen.costs.Charge.language`):
        see `avgen.costs.CostEstimate.shared` and
        `avgen.costs.CostEstimate.by_language`.

        Args:
            request: What to make; or give `avgen.VideoRequest` fields as keywords.

        Raises:
            UsageError: Bad input.
        """
        request = _request(request, fields)
        self.check(request)
        charges: list[Charge] = []
        extras: list[Charge] = []
        agents = self.agents
        versions = versions_of(request)
        visuals = [agent for _, agent in agents.sources()]
        used = [agents.script_writer, agents.narrator, agents.composer, *visuals]
        own = [agent for agent in (agents.narrator, agents.composer)  # each version's own
               if not any(agent is other for other in (agents.script_writer, *visuals))]
        original = versions[0]
        for agent in {id(agent): agent for agent in used}.values():
            estimator = getattr(agent, "estimate", None)
            if callable(estimator):
                # a later source is the first one's fallback: paid only for a scene whose
                # pictures the sources before it could not make
                fallback = any(agent is later for later in visuals[1:]) and \
                    agent is not visuals[0]
                mine = any(agent is other for other in own)
                for version in versions if mine else versions[:1]:
                    language = version.language if mine and original.named else None
                    lines = [attrs.evolve(charge, language=language)
                             for charge in estimator(version.request)]
                    (extras if fallback else charges).extend(lines)
            possible = getattr(agent, "estimate_extras", None)
            if callable(possible):
                extras.extend(possible(original.request))
        translator = getattr(agents.script_writer, "estimate_translation", None)
        for version in versions[1:]:
            if version.given is None and callable(translator):
                charges.extend(attrs.evolve(charge, language=version.language)
                               for charge in translator(version.request, version.language))
        # an agent that serves twice (a painter that is also the image generator) lists
        # its possible extras once
        return CostEstimate(tuple(charges), self.budget, tuple(dict.fromkeys(extras)))

    async def generate(self, request: VideoRequest | None = None, /,
                       **fields: Any) -> Video:
        """Make a video.

        Args:
            request: What to make; or give `avgen.VideoRequest` fields as keywords
                (``script=...``, ``topic=...``, ``preset=...``).

        Returns:
            The finished `avgen.Video`.

        Raises:
            UsageError: Bad input, raised before any work starts.
            BudgetExceeded: The budget cannot pay for the cheapest call the script writer
                or the narrator must make (raised before any request).
            GenerationError: The run could not finish; its session keeps every asset made.
        """
        output_dir = self.output_dir
        session, begun, saved = await through_thread(
            self._begin, _request(request, fields), lambda: Session.create(output_dir))
        return await run_video(self._context(), session, begun, saved)

    def _check_affordable(self, request: VideoRequest, budget: float | None,
                         scope: str = "the run") -> None:
        """Refuse a budget too small for even one call the run cannot do without: the
        cheapest call the script writer or the narrator prices for ``request`` (a picture
        has cheaper tiers to fall back to). Checked before any work or session folder.

        Raises:
            BudgetExceeded: That call's price is over ``budget`` (no request was made).
        """
        if budget is None:
            return
        for role in ("script_writer", "narrator"):
            estimator = getattr(getattr(self.agents, role), "estimate", None)
            if not callable(estimator):
                continue
            try:
                charges = [charge for charge in estimator(request) if charge.usd > 0]
            except Exception:  # pricing never stops a run; the ledger still guards each call
                _logger.debug("no price from the %s", role, exc_info=True)
                continue
            if not charges:
                continue
            cheapest = min(charges, key=lambda charge: charge.usd)
            if cheapest.usd > budget + 1e-9:
                raise BudgetExceeded(
                    f"nothing was started: the {role.replace('_', ' ')}'s cheapest call "
                    f"({cheapest.model}) costs more than the whole budget", cheapest.agent,
                    budget=budget, price=cheapest.usd, scope=scope)

    def _begin(self, request: VideoRequest, create: Callable[[], Session]
               ) -> tuple[Session, VideoRequest, dict[str, Any]]:
        """What a run needs before it starts (blocking work, done in a worker thread:
        the checks, the new session's folder and synced manifest, the request's files
        copied in): its session, its request as the session keeps it, and what its
        manifest records of it.

        Raises:
            UsageError: Bad input (before the session is made).
            BudgetExceeded: The budget cannot pay for the first paid call.
        """
        self.check(request)
        self._check_affordable(request, self.budget)
        session = create()
        request = _keep_files(session, request)
        return session, request, {
            "request": request.to_dict(root=session.root), "created": time.time(),
            "avgen_version": __version__, **self._recorded_estimate(request)}

    def _recorded_estimate(self, request: VideoRequest) -> dict[str, Any]:
        """The manifest's ``estimate`` entry (for the run report), or nothing when an
        agent's ``estimate`` fails: pricing must never stop a run."""
        try:
            return {"estimate": self.estimate(request).to_dict()}
        except Exception:
            _logger.debug("no estimate recorded: an agent's estimate failed", exc_info=True)
            return {}

    async def resume(self, session_dir: str | Path, *,
                     languages: str | Iterable[str] | None = None,
                     translations: Mapping[str, str] | None = None,
                     voices: Mapping[str, str] | None = None) -> Video:
        """Finish an interrupted run, redoing only steps whose outputs are missing or bad.

        The temporary files the interrupted run left are removed first (`Session.sweep`).
        A session is worked on by one run at a time (`Session.lock`): resuming a session
        whose run is still going, in this process or another, is refused at once.

        Languages can be added to a run, finished or not: give every language, the
        original first (``languages=("en", "es", "de")``), and your translations and voices
        for the new ones. Only the new languages' parts are made (their translation,
        narration and video); the script and the pictures are the session's.

        Args:
            session_dir: The session folder.
            languages: Every language of the run, the original first (see
                `avgen.VideoRequest.languages`); ``None``: those of the run.
            translations: Translated scripts to add, by language.
            voices: Voices to add or change, by language.

        Raises:
            UsageError: ``session_dir`` is not a session folder, or another run is working
                on it (the error names its process); or the languages do not start with
                the run's own.
            GenerationError: The run could not finish.
        """
        session = Session.open(session_dir)
        changes: dict[str, Any] = {}
        if languages is not None or translations or voices:
            request = self._saved_request(session)
            changes = {"languages": request.languages if languages is None else languages,
                       "translations": {**request.translations, **(translations or {})},
                       "voices": {**request.voices, **(voices or {})}}
        return await self._resume(session, self._context(), changes)

    @staticmethod
    def _saved_request(session: Session) -> VideoRequest:
        try:
            return VideoRequest.from_dict(session.manifest.get("request"), root=session.root)
        except UsageError as exc:
            raise UsageError("session", f"the manifest of {session.root} has no valid "
                             f"request ({exc})") from None

    async def _resume(self, session: Session, context: RunContext,
                      changes: Mapping[str, Any] | None = None) -> Video:
        request = resolved(self._saved_request(session))
        if changes:
            request = resolved(attrs.evolve(request, **changes))
        self.check(request)
        saved = {"request": request.to_dict(root=session.root),
                 **self._recorded_estimate(request)} if changes else None
        return await run_video(context, session, request, saved)

    def generate_sync(self, request: VideoRequest | None = None, /, **fields: Any) -> Video:
        """`generate` for plain scripts and notebook cells (works in a running event loop)."""
        return _run_sync(self.generate(request, **fields), self._release_loop)

    def resume_sync(self, session_dir: str | Path, *,
                    languages: str | Iterable[str] | None = None,
                    translations: Mapping[str, str] | None = None,
                    voices: Mapping[str, str] | None = None) -> Video:
        """`resume` for plain scripts and notebook cells."""
        return _run_sync(self.resume(session_dir, languages=languages,
                                     translations=translations, voices=voices),
                         self._release_loop)

    async def generate_many(
            self, requests: Iterable[VideoRequest | Mapping[str, Any]], /, *,
            executor: object = None, concurrency: int = 4, budget: float | None = None,
            output_dir: str | Path | None = None,
            on_event: EventHandler | None = None) -> BatchResult:
        """Make many videos: a batch, resumable, under one budget and one quota.

        Every request is checked first (a bad one is a `avgen.errors.UsageError` naming
        its index and field, and nothing runs). The batch gets a folder,
        ``<output_dir>/batch_<id>/`` with ``batch.json`` and one session folder per item;
        its id is a digest of the requests and the agents, so calling again with the same
        requests finishes only what is not done (an item that ran before resumes its
        session: what it paid for is not paid again). One item's failure never stops the
        others.

        What the items share — wherever they run — is one budget (``budget``: a paid call
        reserves its price first, so no two items pass the last dollar together), one
        quota per model (the google agents' ``max_clip_operations`` and
        ``requests_per_minute``; a 429 slows every item), one paid request per asset
        (single flight), and one breaker per service.

        Args:
            requests: `avgen.VideoRequest` objects, or mappings of their fields (see
                `avgen.read_requests` for the rules).
            executor: Where the items run: ``None``, this process (at most ``concurrency``
                at once); a `concurrent.futures.Executor` (a ``ProcessPoolExecutor``: the
                items share state through a manager process on this machine); or a
                ``distributed.Client`` (Dask: the state lives on the scheduler, and an item
                whose worker died runs again elsewhere and resumes its session). Outside
                this process the generator must be made from a family name and
                ``agent_options``.
            concurrency: Items at once in this process (an executor has its own limit).
            budget: The most the whole batch may cost, in US dollars (``None``: no limit;
                the generator's own ``budget`` still caps each video).
            output_dir: Where the batch folder is made (default: the generator's).
            on_event: Called (as are the generator's own subscribers) with a
                `avgen.RunEvent` for the batch (``batch.start``,
                ``batch.item`` when an item starts or ends — ``data["status"]`` says which —
                and ``batch.done``) and with each item's own events (``script``,
                ``narration``…, as `generate` sends them); ``data`` holds ``item`` (its
                index), ``done``, ``failed``, ``running`` and ``total``, and ``progress``
                is the batch's fraction finished.

        Returns:
            A `avgen.BatchResult`: every item in the input order with its status, video,
            duration, cost, tiers, session and, when it failed, its error.

        Raises:
            UsageError: A bad request (named by index and field) or option.
        """
        return await run_batch(_BatchMaker(self), requests, executor=executor,
                               concurrency=concurrency, budget=budget, output_dir=output_dir,
                               on_event=on_event)

    def generate_many_sync(
            self, requests: Iterable[VideoRequest | Mapping[str, Any]], /, *,
            executor: object = None, concurrency: int = 4, budget: float | None = None,
            output_dir: str | Path | None = None,
            on_event: EventHandler | None = None) -> BatchResult:
        """`generate_many` for plain scripts and notebook cells."""
        return _run_sync(self.generate_many(
            requests, executor=executor, concurrency=concurrency, budget=budget,
            output_dir=output_dir, on_event=on_event), self._release_loop)

    def _emit(self, event: RunEvent) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # an observer must never break a run
                _logger.exception("event handler %r failed", handler)


class _BatchMaker:
    """A `VideoGenerator` as a batch's maker (`avgen._batch.Maker`): the batch drives, the
    generator makes each item in its stable session folder."""

    def __init__(self, generator: VideoGenerator, *, owned: bool = False) -> None:
        self.generator = generator
        self.owned = owned
        self.output_dir = generator.output_dir

    def names(self) -> Mapping[str, str | None]:
        return self.generator.agents.names()

    def check(self, request: VideoRequest, budget: float | None) -> None:
        self.generator.check(request)
        self.generator._check_affordable(request, budget, "the batch")

    def spec(self) -> _WorkerSpec | None:
        generator = self.generator
        if generator._agent_spec is None:
            return None
        return _WorkerSpec(generator._agent_spec, generator.budget, generator.required_tier,
                           generator.policies)

    def emit(self, event: RunEvent) -> None:
        self.generator._emit(event)

    async def make(self, root: Path, request: VideoRequest,
                   on_event: EventHandler) -> Video:
        generator = self.generator
        context = generator._context(on_event)

        def begin() -> tuple[Session, VideoRequest | None, dict[str, Any]]:
            if (root / "metadata" / "manifest.json").is_file():
                session = Session.open(root)
                if session.manifest.get("request") is not None:
                    return session, None, {}  # resumed
                # the run that made the folder was killed before it recorded its request
                # (so before any step): the item starts again in the same folder
                return generator._begin(resolved(request), lambda: session)
            return generator._begin(resolved(request),
                                    lambda: Session.create(root.parent, name=root.name))

        session, begun, saved = await through_thread(begin)
        if begun is None:
            return await generator._resume(session, context)
        return await run_video(context, session, begun, saved)

    async def aclose(self) -> None:
        if self.owned:
            await self.generator.aclose()


@attrs.frozen
class _WorkerSpec:
    """How a worker builds the caller's generator again (picklable: a family by name and
    plain settings)."""

    agents: AgentSpec
    budget: float | None
    required_tier: Tier | None
    policies: Mapping[str, AgentPolicy]

    def build(self) -> _BatchMaker:
        return _BatchMaker(VideoGenerator(self.agents.family,
                                          agent_options=self.agents.options,
                                          budget=self.budget, required_tier=self.required_tier,
                                          policies=dict(self.policies)), owned=True)
