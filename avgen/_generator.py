"""`VideoGenerator`: plan → per-scene work in parallel → compose.

One run::

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
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar, cast

import attrs

from avgen._fallback import VisualChain, VisualSource
from avgen._hashing import json_sha256
from avgen._models import (
    AudioAsset,
    Scene,
    Script,
    Tier,
    Video,
    VideoRequest,
    Visual,
    asset_from_dict,
    asset_to_dict,
)
from avgen._policy import AgentPolicy, check_policies, policy_for
from avgen._session import Session
from avgen._steps import Made, StepRunner
from avgen._version import __version__
from avgen.agents._registry import AgentSet, agent_name, load_agents
from avgen.costs import Charge, CostEstimate, Ledger, check_budget
from avgen.errors import AgentError, AvgenError, GenerationError, MediaError, UsageError
from avgen.media._ffmpeg import probe
from avgen.media._timeline import Timeline
from avgen.resilience import CircuitRegistry, Monitor, ResilienceEvent

__all__ = ["EventHandler", "RunEvent", "VideoGenerator"]

_logger = logging.getLogger("avgen._generator")
T = TypeVar("T")

@attrs.frozen
class RunEvent:
    """Something that happened during a run, for progress bars and observers."""

    kind: str
    """``session``, ``script``, ``narration``, ``visual``, ``fallback``, ``compose``,
    ``note``, ``done`` or ``failed``."""
    message: str
    """A human-readable line."""
    progress: float
    """Overall fraction done, 0.0 to 1.0."""
    scene: int | None = None
    """The scene concerned, if any."""
    data: dict[str, Any] = attrs.field(factory=dict)
    """Extra facts (paths, tiers, errors)."""


EventHandler = Callable[[RunEvent], None]
"""A callable that receives every `RunEvent` of a run."""


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    return slug or "video"


async def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await an agent method, running a plain (blocking) one in a worker thread."""
    if inspect.iscoroutinefunction(method):
        return await method(*args, **kwargs)
    result = await asyncio.to_thread(method, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def _request(request: VideoRequest | None, fields: dict[str, Any]) -> VideoRequest:
    if request is None:
        return VideoRequest(**fields)
    return attrs.evolve(request, **fields) if fields else request


def _run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even inside a running event loop
    (a notebook cell): then it runs on its own loop in a worker thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="avgen") as pool:
        return pool.submit(asyncio.run, coro).result()


class VideoGenerator:
    """Makes videos from requests with a family of agents.

    Args:
        agents: ``"local"`` (the default: offline), the name of an installed plugin, or an
            `avgen.agents.AgentSet`.
        script_writer: Replaces the family's script writer.
        narrator: Replaces the family's narrator.
        image_generator: Replaces the family's image generator.
        clip_generator: Replaces the family's clip generator.
        composer: Replaces the family's composer.
        output_dir: Where session folders are created.
        on_event: Called with every `RunEvent` (progress, fallbacks, notes).
        required_tier: If set, a scene that cannot get a picture of this tier fails the run
            instead of falling back (``"clip"`` or ``"image"``).
        policies: Retry and circuit-breaker settings by role (``"narrator"``,
            ``"clip_generator"`` …), overriding the agents' own (see `avgen.AgentPolicy`).
        monitor: A `avgen.resilience.Monitor` that times every agent call; its report
            (calls, seconds, failures per agent, resource peaks if it samples) is saved in
            the manifest at the end of each run.
        budget: The most one video may cost, in US dollars (``None``: no limit). A paid
            call that would go over it is not made (`avgen.errors.BudgetExceeded`): a
            scene's picture falls back to a cheaper tier, a script or narration stops the
            run, which `resume` can finish later with a larger budget. See `estimate`.

    Example:
        >>> from avgen import VideoGenerator
        >>> generator = VideoGenerator()          # offline agents
        >>> video = generator.generate_sync(script="Hello. This is avgen.")  # doctest: +SKIP
    """

    def __init__(
        self,
        agents: str | AgentSet | None = None,
        *,
        script_writer: Any = None,
        narrator: Any = None,
        image_generator: Any = None,
        clip_generator: Any = None,
        composer: Any = None,
        output_dir: str | Path = "outputs",
        on_event: EventHandler | None = None,
        required_tier: Tier | None = None,
        policies: dict[str, AgentPolicy] | None = None,
        monitor: Monitor | None = None,
        budget: float | None = None,
    ) -> None:
        base = load_agents(agents or "local") if not isinstance(agents, AgentSet) else agents
        overrides = {key: value for key, value in {
            "script_writer": script_writer, "narrator": narrator, "composer": composer,
            "image_generator": image_generator, "clip_generator": clip_generator,
        }.items() if value is not None}
        self.agents: AgentSet = attrs.evolve(base, **overrides)
        """The agents this generator uses."""
        if required_tier not in (None, "clip", "image"):
            raise UsageError("required_tier", "must be None, 'clip' or 'image'")
        if required_tier == "clip" and self.agents.clip_generator is None:
            raise UsageError("required_tier", "'clip' needs a clip generator")
        if required_tier == "image" and self.agents.image_generator is None:
            raise UsageError("required_tier", "'image' needs an image generator")
        self.output_dir = Path(output_dir)
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

    def __repr__(self) -> str:
        return f"VideoGenerator({self.agents.names()!r})"

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every agent that has a ``close()`` method (connections, pools).

        Use the generator as a context manager (``with`` or ``async with``) to close it
        when the block ends. A closed generator's agents may not be usable again.
        """
        for agent in self._distinct_agents():
            closer = getattr(agent, "close", None)
            if callable(closer) and not inspect.iscoroutinefunction(closer):
                closer()

    async def aclose(self) -> None:
        """Close every agent: its ``aclose()`` when it has one, else its ``close()``."""
        for agent in self._distinct_agents():
            closer = getattr(agent, "aclose", None) or getattr(agent, "close", None)
            if callable(closer):
                await _call(closer)

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

    def _distinct_agents(self) -> list[object]:
        agents = [getattr(self.agents, field.name) for field in attrs.fields(AgentSet)]
        unique = {id(agent): agent for agent in agents if agent is not None}
        return list(unique.values())

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

    def estimate(self, request: VideoRequest | None = None, /, **fields: Any) -> CostEstimate:
        """What making ``request`` is expected to cost, before anything is spent.

        Each agent with an ``estimate(request)`` method prices its share (the google agents
        do, from `avgen.agents.google.PRICES`); agents without one cost nothing. Assets
        already in an agent's cache are not paid for again, so a re-run costs less than
        the estimate.

        Args:
            request: What to make; or give `avgen.VideoRequest` fields as keywords.

        Raises:
            UsageError: Bad input.
        """
        request = _request(request, fields)
        self.check(request)
        charges: list[Charge] = []
        for field in attrs.fields(AgentSet):
            estimator = getattr(getattr(self.agents, field.name), "estimate", None)
            if callable(estimator):
                charges.extend(estimator(request))
        return CostEstimate(tuple(charges), self.budget)

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
            GenerationError: The run could not finish; its session keeps every asset made.
        """
        request = _request(request, fields)
        self.check(request)
        session = Session.create(self.output_dir)
        session.manifest.update(request=request.to_dict(), created=time.time(),
                                avgen_version=__version__)
        return await self._run(session, request)

    async def resume(self, session_dir: str | Path) -> Video:
        """Finish an interrupted run, redoing only steps whose outputs are missing or bad.

        Raises:
            UsageError: ``session_dir`` is not a session folder.
            GenerationError: The run could not finish.
        """
        session = Session.open(session_dir)
        try:
            request = VideoRequest.from_dict(session.manifest["request"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError("session", f"the manifest of {session_dir} has no valid request: "
                             f"{exc}") from exc
        self.check(request)
        return await self._run(session, request)

    def generate_sync(self, request: VideoRequest | None = None, /, **fields: Any) -> Video:
        """`generate` for plain scripts and notebook cells (works in a running event loop)."""
        return _run_sync(self.generate(request, **fields))

    def resume_sync(self, session_dir: str | Path) -> Video:
        """`resume` for plain scripts and notebook cells."""
        return _run_sync(self.resume(session_dir))

    # -- the run -------------------------------------------------------------------------

    async def _run(self, session: Session, request: VideoRequest) -> Video:
        run = _Run(self, session, request)
        with session, session.activate():
            session.manifest.update(status="running", agents=self.agents.names())
            try:
                video = await run.execute()
            except (asyncio.CancelledError, KeyboardInterrupt):
                session.manifest.update(status="interrupted", cost=run.cost())
                raise
            except AvgenError as exc:
                session.manifest.update(status="failed", error=str(exc), cost=run.cost())
                run.emit("failed", str(exc), 1.0)
                if isinstance(exc, UsageError):
                    raise
                raise GenerationError(f"the video could not be made: {exc}", session.root) \
                    from exc
            except Exception as exc:  # a bug in an agent: record it, let its traceback show
                session.manifest.update(status="failed", error=repr(exc))
                raise
            session.manifest.update(status="done", video=session.relative(video.path),
                                    cost=run.cost())
            if self.monitor is not None:
                session.manifest.update(report=self.monitor.report())
            return video

    def _emit(self, event: RunEvent) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # an observer must never break a run
                _logger.exception("event handler %r failed", handler)


class _Run:
    """One run, in the order the data flows::

        script step ─► scenes under one task group (each: narration step, then visual step)
                   ─► timeline ─► caption sidecars ─► compose step ─► Video

    Every step goes through the `StepRunner` (reuse, timing, charges, the manifest record);
    a scene's picture comes from the `VisualChain` (clip → image → card). A failing scene
    cancels its siblings before any of them starts another paid call.
    """

    SCRIPT_SHARE, SCENES_SHARE = 0.05, 0.55

    def __init__(self, generator: VideoGenerator, session: Session, request: VideoRequest):
        self.generator, self.session, self.request = generator, session, request
        self.agents = generator.agents
        # a resumed run counts what its session already paid
        spent = math.fsum(step.cost for step in session.manifest.steps.values())
        self.ledger = Ledger(generator.budget, spent=spent)
        self.steps = StepRunner(session, self.ledger)
        self.chain = VisualChain(self._visual_sources(), session=session, turn=self.steps.turn,
                                 required=generator.required_tier, on_fallback=self._fallback)
        self.progress = self.scenes_done = 0.0
        self.scene_count = 1
        self.pictures: dict[int, asyncio.Future[Visual | None]] = {}  # for continuity

    # -- the flow ------------------------------------------------------------------------

    async def execute(self) -> Video:
        self.emit("session", f"session {self.session.root}", 0.0, path=str(self.session.root))
        script = await self._script()
        self.scene_count = len(script.scenes)
        for note in script.notes:
            self.emit("note", note, self.SCRIPT_SHARE)
        loop = asyncio.get_running_loop()
        self.pictures = {scene.index: loop.create_future() for scene in script.scenes}
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._scene(scene)) for scene in script.scenes]
        except BaseExceptionGroup as failed:  # siblings are cancelled: report the first
            raise failed.exceptions[0] from None
        made = [task.result() for task in tasks]
        timeline = Timeline.build(
            self.request.preset, [(scene, audio, visual.value) for scene, (audio, visual)
                                  in zip(script.scenes, made, strict=True)],
            style=self.request.caption_style, burn_captions=self.request.captions,
            transition=self.request.transition, soundtrack=self.request.soundtrack,
            fit=self.request.fit)
        tiers = tuple(cast(Tier, visual.tier) for _, visual in made)
        return await self._compose(script, timeline, tiers)

    async def _scene(self, scene: Scene) -> tuple[AudioAsset, Made[Visual]]:
        picture = self.pictures[scene.index]
        try:
            audio = await self._narration(scene)
            visual = await self._visual(scene, audio.duration)
        finally:
            if not picture.done():  # a scene that failed must not hold up the next one
                picture.set_result(None)
        return audio, visual

    # -- steps ---------------------------------------------------------------------------

    async def _script(self) -> Script:
        writer = self.agents.script_writer
        name = agent_name(writer)
        inputs = json_sha256([self.request.to_dict(), name])
        if self.steps.reusable("script", inputs):
            script = Script.from_dict(json.loads(
                self.session.path("scripts/script.json").read_text("utf-8")))
            self.emit("script", f"script reused: {len(script.scenes)} scenes", self.SCRIPT_SHARE)
            return script

        async def write() -> Made[Script]:
            script = await self._guarded("script_writer", writer, "write")(self.request)
            if not isinstance(script, Script):
                raise AgentError(f"write() returned {type(script).__name__}, not a Script",
                                 name)
            path = self.session.write_json("scripts/script.json", script.to_dict())
            self.session.write_text("scripts/narration.txt", script.narration + "\n")
            return Made(script, (path,), {"scenes": len(script.scenes), "title": script.title})

        script = (await self.steps.run("script", name, inputs, write)).value
        self.session.manifest.update(title=script.title, notes=list(script.notes))
        self.emit("script", f"script: {len(script.scenes)} scenes, “{script.title}”",
                  self.SCRIPT_SHARE)
        return script

    async def _narration(self, scene: Scene) -> AudioAsset:
        narrator = self.agents.narrator
        name, step_id = agent_name(narrator), f"scene-{scene.index:03d}.narration"
        inputs = json_sha256([scene.narration, self.request.voice, name])
        reused = self._reused(step_id, inputs)
        if isinstance(reused, AudioAsset):
            self._scene_event("narration", scene, "narration reused")
            return reused
        relative = f"audio/scene_{scene.index:03d}.wav"

        async def speak() -> Made[AudioAsset]:
            with self.session.atomic_path(relative) as temp:
                asset = await self._guarded("narrator", narrator, "speak")(
                    scene.narration, temp, voice=self.request.voice)
                if not isinstance(asset, AudioAsset):
                    raise AgentError(f"speak() returned {type(asset).__name__}, "
                                     "not an AudioAsset", name)
                info = probe(temp)
                if not info.has_audio or not info.duration:
                    raise MediaError(f"scene {scene.index}: the narration has no audio", temp)
            # the file's length rules, not the narrator's claim (ffmpeg reports 10 ms steps,
            # so a claim within that of the measurement keeps its precision)
            duration = asset.duration if abs(asset.duration - info.duration) <= 0.02 \
                else info.duration
            asset = attrs.evolve(asset, path=self.session.path(relative), duration=duration)
            return Made(asset, (asset.path,), {"asset": self._saved(asset)})

        async with self.steps.turn(narrator):
            audio = (await self.steps.run(step_id, name, inputs, speak)).value
        self._scene_event("narration", scene, f"narration {audio.duration:.1f} s")
        return audio

    async def _visual(self, scene: Scene, seconds: float) -> Made[Visual]:
        step_id = f"scene-{scene.index:03d}.visual"
        preset = self.request.preset
        # not the narration's exact length: a re-spoken narration (Piper's voice varies a
        # little from take to take) must not make a resume pay for the clip again; the
        # composer fits any clip to the scene's length
        inputs = json_sha256([scene.visual, scene.title, preset.width, preset.height,
                              self.chain.names])
        reused = self._reused(step_id, inputs)
        if reused is not None and not isinstance(reused, AudioAsset):
            made: Made[Visual] = Made(reused, tier=reused.kind)
            self._scene_event("visual", scene, f"{reused.kind} reused", tier=reused.kind)
        else:
            previous = await self._previous_clip(scene) if self.chain.continuity else None
            made = await self.steps.run(
                step_id, "+".join(self.chain.names) or "ffmpeg-card", inputs,
                lambda: self.chain.make(scene, seconds, preset, previous))
            ready = "procedural card" if made.tier == "card" else f"{made.tier} ready"
            self._scene_event("visual", scene, ready, tier=made.tier)
        self.pictures[scene.index].set_result(made.value)
        return made

    async def _previous_clip(self, scene: Scene) -> Path | None:
        """The previous scene's clip, once it is made (None for a still, a card or scene 0)."""
        if scene.index == 0:
            return None
        previous = await asyncio.shield(self.pictures[scene.index - 1])
        return previous.path if previous is not None and previous.kind == "clip" else None

    async def _compose(self, script: Script, timeline: Timeline,
                       tiers: tuple[Tier, ...]) -> Video:
        composer = self.agents.composer
        stem = _slug(self.request.title or script.title)
        own = getattr(composer, "sidecars", None)
        texts = own(timeline) if callable(own) else timeline.caption_files()
        sidecars = {kind: self.session.write_text(f"final_output/{stem}.{kind}", text)
                    for kind, text in texts.items()}
        relative = f"final_output/{stem}.mp4"
        checksums = [o.sha256 for s in self.session.manifest.steps.values() for o in s.outputs
                     if s.id != "compose"]
        inputs = json_sha256([_fingerprint(composer, timeline), sorted(checksums),
                              agent_name(composer)])
        base = self.SCRIPT_SHARE + self.SCENES_SHARE
        if not self.steps.reusable("compose", inputs):
            self.emit("compose", f"composing {timeline.duration:.1f} s of video", base)

            def progress(fraction: float) -> None:
                self.emit("compose", "composing", base + (1 - base) * fraction, quiet=True)

            async def render() -> Made[None]:
                with self.session.atomic_path(relative) as temp:
                    await self._guarded("composer", composer, "compose")(timeline, temp,
                                                                         progress)
                    info = probe(temp)
                    if not info.has_video or not info.duration:
                        raise MediaError("the composed video has no picture", temp)
                return Made(None, (self.session.path(relative),), {
                    "duration": info.duration, "width": info.width, "height": info.height})

            await self.steps.run("compose", agent_name(composer), inputs, render)
        final = self.session.path(relative)
        info = probe(final)
        video = Video(final, info.duration or timeline.duration, info.width, info.height,
                      self.session.root, sidecars, tiers)
        self.emit("done", str(final), 1.0, path=str(final))
        return video

    # -- helpers -------------------------------------------------------------------------

    def _visual_sources(self) -> list[VisualSource]:
        sources = []
        for tier, role in (("clip", "clip_generator"), ("image", "image_generator")):
            agent = getattr(self.agents, role)
            if agent is not None:
                sources.append(VisualSource(cast(Tier, tier), agent, agent_name(agent),
                                            self._guarded(role, agent, "generate")))
        return sources

    def _guarded(self, role: str, agent: Any, method: str) -> Callable[..., Any]:
        """The agent's method wrapped by its policy (monitored, retried, breaker)."""
        bound = getattr(agent, method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await _call(bound, *args, **kwargs)

        policy = policy_for(role, agent, self.generator.policies)
        return policy.wrap(call, name=agent_name(agent), registry=self.generator.breakers,
                           hooks=(self._on_resilience,), monitor=self.generator.monitor)

    def _reused(self, step_id: str, inputs: str) -> AudioAsset | Visual | None:
        step = self.steps.reusable(step_id, inputs)
        if step is None or not step.data.get("asset"):
            return None
        return asset_from_dict(step.data["asset"], self.session.root)

    def _saved(self, asset: AudioAsset | Visual) -> dict[str, Any]:
        return asset_to_dict(asset, self.session.root)

    def cost(self) -> dict[str, Any]:
        """The manifest's run-level cost entry."""
        return {"spent": round(self.ledger.spent, 6), "budget": self.ledger.budget}

    def emit(self, kind: str, message: str, progress: float, scene: int | None = None,
             quiet: bool = False, **data: Any) -> None:
        progress = self.progress = max(self.progress, progress)  # never moves backwards
        if not quiet:
            self.session.log(logging.WARNING if kind in ("fallback", "failed") else logging.INFO,
                             "%s", message)
        self.generator._emit(RunEvent(kind, message, progress, scene, data))

    def _scene_event(self, kind: str, scene: Scene, what: str, **data: Any) -> None:
        """Half of a scene is done (its narration or its visual)."""
        self.scenes_done += 0.5
        progress = self.SCRIPT_SHARE + self.SCENES_SHARE * self.scenes_done / self.scene_count
        self.emit(kind, f"scene {scene.index}: {what}", progress, scene.index, **data)

    def _fallback(self, scene: Scene, tier: Tier, exc: AvgenError) -> None:
        self.emit("fallback", f"scene {scene.index}: {tier} failed, falling back: {exc}",
                  self.SCRIPT_SHARE, scene.index, tier=tier, error=str(exc))

    def _on_resilience(self, event: ResilienceEvent) -> None:
        if event.kind == "retry.attempt":
            data = event.data
            self.emit("retry", f"{event.source}: attempt {data.get('attempt')} failed "
                      f"({data.get('error')}); retried after {data.get('delay', 0):.1f} s",
                      self.progress, **dict(data))


def _fingerprint(composer: object, timeline: Timeline) -> str:
    """What the composer would render: its own ``fingerprint(timeline)`` when it has one,
    else the whole timeline (any change to it renders again)."""
    own = getattr(composer, "fingerprint", None)
    if callable(own):
        return str(own(timeline))
    return json_sha256(attrs.asdict(timeline, value_serializer=lambda _i, _a, v: (
        str(v) if isinstance(v, Path) else v)))
