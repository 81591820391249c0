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
import hashlib
import inspect
import json
import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import attrs

from avgen._version import __version__
from avgen.agents.registry import AgentSet, agent_name, load_agents
from avgen.costs import Charge, CostEstimate, Ledger, check_budget, total_usd
from avgen.errors import AgentError, AvgenError, GenerationError, MediaError, UsageError
from avgen.media.captions import CaptionStyle, caption_margin, to_ass, to_srt, to_vtt
from avgen.media.ffmpeg import probe
from avgen.media.timeline import Timeline
from avgen.models import (
    AudioAsset,
    CardVisual,
    ClipAsset,
    ImageAsset,
    Scene,
    Script,
    Tier,
    Video,
    VideoRequest,
    Visual,
    asset_from_dict,
    asset_to_dict,
)
from avgen.policy import AgentPolicy, check_policies, policy_for, summarize
from avgen.resilience import CircuitRegistry, Monitor, ResilienceEvent, collect
from avgen.session import OutputRecord, Session, StepRecord

__all__ = ["Event", "EventHandler", "VideoGenerator"]

_logger = logging.getLogger("avgen.generator")
T = TypeVar("T")

_PALETTES = (("0x1e3a8a", "0x7c3aed"), ("0x0f766e", "0x1d4ed8"), ("0x9d174d", "0xea580c"),
             ("0x065f46", "0x0e7490"), ("0x312e81", "0xbe185d"), ("0x7c2d12", "0xb45309"))


@attrs.frozen
class Event:
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


EventHandler = Callable[[Event], None]
"""A callable that receives every `Event` of a run."""


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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


def _charges(charges: list[Charge]) -> list[dict[str, Any]]:
    return [charge.to_dict() for charge in charges]


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
        on_event: Called with every `Event` (progress, fallbacks, notes).
        caption_style: How captions look.
        required_tier: If set, a scene that cannot get a picture of this tier fails the run
            instead of falling back (``"clip"`` or ``"image"``).
        policies: Retry and circuit-breaker settings by role (``"narrator"``,
            ``"clip_generator"`` …), overriding the agents' own (see `avgen.policy`).
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
        caption_style: CaptionStyle | None = None,
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
        self.caption_style = caption_style or CaptionStyle()
        """How captions look."""
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

    def subscribe(self, handler: EventHandler) -> Callable[[], None]:
        """Call ``handler`` with every `Event`; returns a function that unsubscribes it."""
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
        do, from `avgen.agents.google.prices`); agents without one cost nothing. Assets
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

    def _emit(self, event: Event) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:  # an observer must never break a run
                _logger.exception("event handler %r failed", handler)


class _Run:
    """The state of one run (kept off the generator, so one generator runs many at once)."""

    SCRIPT_SHARE, SCENES_SHARE = 0.05, 0.55

    def __init__(self, generator: VideoGenerator, session: Session, request: VideoRequest):
        self.generator, self.session, self.request = generator, session, request
        self.agents = generator.agents
        self.limits: dict[int, asyncio.Semaphore] = {}
        self.guards: dict[tuple[str, int], Callable[..., Any]] = {}
        self.progress = 0.0
        self.scenes_done = 0.0
        self.scene_count = 1
        # scenes whose visual step has finished, and what it made (for continuity)
        self.visuals: dict[int, Visual] = {}
        self.visual_done: dict[int, asyncio.Event] = {}
        # a resumed run counts what its session already paid
        self.ledger = Ledger(generator.budget, spent=math.fsum(
            step.cost for step in session.manifest.steps.values()))

    def cost(self) -> dict[str, Any]:
        """The manifest's run-level cost entry."""
        return {"spent": round(self.ledger.spent, 6), "budget": self.ledger.budget}

    def emit(self, kind: str, message: str, progress: float, scene: int | None = None,
             **data: Any) -> None:
        progress = self.progress = max(self.progress, progress)  # never moves backwards
        self.session.log(logging.WARNING if kind in ("fallback", "failed") else logging.INFO,
                         "%s", message)
        self.generator._emit(Event(kind, message, progress, scene, data))

    def _guarded(self, role: str, agent: Any, method: str) -> Callable[..., Any]:
        """The agent's method wrapped by its policy (monitored, retried, breaker)."""
        key = (role, id(agent))
        if key not in self.guards:
            bound = getattr(agent, method)

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await _call(bound, *args, **kwargs)

            policy = policy_for(role, agent, self.generator.policies)
            self.guards[key] = policy.wrap(call, name=agent_name(agent),
                                           registry=self.generator.breakers,
                                           hooks=(self._on_resilience,),
                                           monitor=self.generator.monitor)
        return self.guards[key]

    def _on_resilience(self, event: ResilienceEvent) -> None:
        if event.kind == "retry.attempt":
            data = event.data
            self.emit("retry", f"{event.source}: attempt {data.get('attempt')} failed "
                      f"({data.get('error')}); retrying in {data.get('delay', 0):.1f} s",
                      self.progress, **dict(data))

    def _limit(self, agent: object) -> asyncio.Semaphore:
        key = id(agent)
        if key not in self.limits:
            self.limits[key] = asyncio.Semaphore(max(1, int(getattr(agent, "max_concurrency", 4))))
        return self.limits[key]

    def _scene_progress(self, amount: float) -> float:
        self.scenes_done += amount
        return self.SCRIPT_SHARE + self.SCENES_SHARE * self.scenes_done / self.scene_count

    async def execute(self) -> Video:
        self.emit("session", f"session {self.session.root}", 0.0, path=str(self.session.root))
        script = await self._script()
        self.scene_count = len(script.scenes)
        for note in script.notes:
            self.emit("note", note, self.SCRIPT_SHARE)
        results = await asyncio.gather(*(self._scene(scene) for scene in script.scenes))
        timeline = Timeline.build(
            self.request.preset, [(scene, audio, visual) for scene, (audio, visual, _)
                                  in zip(script.scenes, results, strict=True)],
            style=self.generator.caption_style, burn_captions=self.request.captions,
            transition=self.request.transition, soundtrack=self.request.soundtrack,
            fit=self.request.fit)
        tiers = tuple(tier for _, _, tier in results)
        return await self._compose(script, timeline, tiers)

    # -- steps ---------------------------------------------------------------------------

    async def _script(self) -> Script:
        writer = self.agents.script_writer
        inputs = _hash([self.request.to_dict(), agent_name(writer)])
        step = self.session.manifest.step("script")
        if step and self.session.manifest.is_valid(step, inputs):
            script = Script.from_dict(json.loads(self.session.path("scripts/script.json")
                                                 .read_text("utf-8")))
            self.emit("script", f"script reused: {len(script.scenes)} scenes", self.SCRIPT_SHARE)
            return script
        started = time.time()
        with collect() as events, self.ledger.step() as charges:
            script = await self._guarded("script_writer", writer, "write")(self.request)
        if not isinstance(script, Script):
            raise AgentError(f"write() returned {type(script).__name__}, not a Script",
                             agent_name(writer))
        path = self.session.write_json("scripts/script.json", script.to_dict())
        self.session.write_text("scripts/narration.txt", script.narration + "\n")
        self.session.manifest.record(StepRecord(
            "script", agent_name(writer), inputs, "done",
            (self.session.manifest.output(path),), started, time.time() - started,
            cost=total_usd(charges),
            data={"scenes": len(script.scenes), "title": script.title,
                  "resilience": summarize(events), "charges": _charges(charges)}))
        self.session.manifest.update(title=script.title, notes=list(script.notes))
        self.emit("script", f"script: {len(script.scenes)} scenes, “{script.title}”",
                  self.SCRIPT_SHARE)
        return script

    async def _scene(self, scene: Scene) -> tuple[AudioAsset, Visual, Tier]:
        done = self.visual_done.setdefault(scene.index, asyncio.Event())
        try:
            audio = await self._narration(scene)
            visual, tier = await self._visual(scene, audio.duration)
            self.visuals[scene.index] = visual
        finally:
            done.set()  # a scene that failed must not hold up the next one
        return audio, visual, tier

    async def _previous_clip(self, scene: Scene) -> Path | None:
        """For a clip generator with ``continuity``: wait for the previous scene's visual
        and return its clip (None when it is not a clip, or for the first scene)."""
        if scene.index == 0:
            return None
        await self.visual_done.setdefault(scene.index - 1, asyncio.Event()).wait()
        previous = self.visuals.get(scene.index - 1)
        return previous.path if isinstance(previous, ClipAsset) else None

    def _reuse(self, step_id: str, inputs: str) -> Any | None:
        step = self.session.manifest.step(step_id)
        if step and step.data.get("asset") and self.session.manifest.is_valid(step, inputs):
            return asset_from_dict(step.data["asset"], self.session.root)
        return None

    async def _narration(self, scene: Scene) -> AudioAsset:
        narrator = self.agents.narrator
        name = agent_name(narrator)
        step_id = f"scene-{scene.index:03d}.narration"
        inputs = _hash([scene.narration, self.request.voice, name])
        reused = self._reuse(step_id, inputs)
        if isinstance(reused, AudioAsset):
            self.emit("narration", f"scene {scene.index}: narration reused",
                      self._scene_progress(0.5), scene.index)
            return reused
        relative = f"audio/scene_{scene.index:03d}.wav"
        async with self._limit(narrator):
            started = time.time()  # the time spent working, not waiting for a turn
            with self.session.atomic_path(relative) as temp, collect() as events, \
                    self.ledger.step() as charges:
                asset = await self._guarded("narrator", narrator, "speak")(
                    scene.narration, temp, voice=self.request.voice)
                if not isinstance(asset, AudioAsset):
                    raise AgentError(f"speak() returned {type(asset).__name__}, "
                                     "not an AudioAsset", name)
                info = probe(temp)
                if not info.has_audio or not info.duration or asset.duration <= 0:
                    raise MediaError(f"scene {scene.index}: the narration has no audio", temp)
        asset = attrs.evolve(asset, path=self.session.path(relative))
        self.session.manifest.record(StepRecord(
            step_id, name, inputs, "done", (self.session.manifest.output(asset.path),),
            started, time.time() - started, cost=total_usd(charges),
            data={"asset": asset_to_dict(asset, self.session.root),
                  "resilience": summarize(events), "charges": _charges(charges)}))
        self.emit("narration", f"scene {scene.index}: narration {asset.duration:.1f} s",
                  self._scene_progress(0.5), scene.index)
        return asset

    async def _visual(self, scene: Scene, seconds: float) -> tuple[Visual, Tier]:
        step_id = f"scene-{scene.index:03d}.visual"
        preset = self.request.preset
        tiers: list[tuple[Tier, Any, str]] = []
        if self.agents.clip_generator is not None:
            tiers.append(("clip", self.agents.clip_generator,
                          f"video_clips/scene_{scene.index:03d}.mp4"))
        if self.agents.image_generator is not None:
            tiers.append(("image", self.agents.image_generator,
                          f"images/scene_{scene.index:03d}.png"))
        names = [agent_name(agent) for _, agent, _ in tiers]
        # not the narration's exact length: a re-spoken narration (Piper's voice varies a
        # little from take to take) must not make a resume pay for the clip again; the
        # composer fits any clip to the scene's length
        inputs = _hash([scene.visual, scene.title, preset.width, preset.height, names])
        reused = self._reuse(step_id, inputs)
        if reused is not None:
            tier: Tier = reused.kind
            self.emit("visual", f"scene {scene.index}: {tier} reused", self._scene_progress(0.5),
                      scene.index, tier=tier)
            return reused, tier
        errors: list[str] = []
        previous = None
        if getattr(self.agents.clip_generator, "continuity", False):
            previous = await self._previous_clip(scene)
        started = time.time()
        with collect() as events, self.ledger.step() as charges:
            return await self._fall_through(scene, seconds, tiers, step_id, inputs, started,
                                            errors, events, charges, previous)

    async def _fall_through(self, scene: Scene, seconds: float,
                            tiers: list[tuple[Tier, Any, str]], step_id: str, inputs: str,
                            started: float, errors: list[str],
                            events: list[ResilienceEvent], charges: list[Charge],
                            previous: Path | None) -> tuple[Visual, Tier]:
        """Try each tier in turn; the procedural card is the tier that cannot fail."""
        def record(agent: str, status: str, tier: Tier, visual: Visual | None) -> None:
            self._record_visual(step_id, inputs, agent, status, tier, visual, started, errors,
                                summarize(events), charges)

        for tier, agent, relative in tiers:
            try:
                visual = await self._make(tier, agent, relative, scene, seconds, previous)
            except AvgenError as exc:
                errors.append(f"{tier} ({agent_name(agent)}): {exc}")
                self.emit("fallback", f"scene {scene.index}: {tier} failed, falling back: {exc}",
                          self.SCRIPT_SHARE, scene.index, tier=tier, error=str(exc))
                if tier == self.generator.required_tier:
                    record(agent_name(agent), "failed", tier, None)
                    raise
                continue
            record(agent_name(agent), "done" if not errors else "fallback", tier, visual)
            self.emit("visual", f"scene {scene.index}: {tier} ready", self._scene_progress(0.5),
                      scene.index, tier=tier)
            return visual, tier
        card = CardVisual(scene.title, _PALETTES[scene.index % len(_PALETTES)])
        record("ffmpeg-card", "fallback" if errors else "done", "card", card)
        self.emit("visual", f"scene {scene.index}: procedural card", self._scene_progress(0.5),
                  scene.index, tier="card")
        return card, "card"

    async def _make(self, tier: Tier, agent: Any, relative: str, scene: Scene,
                    seconds: float, previous: Path | None) -> Visual:
        preset = self.request.preset
        async with self._limit(agent):
            with self.session.atomic_path(relative) as temp:
                if tier == "clip":
                    extra = ({"previous": previous} if getattr(agent, "continuity", False)
                             else {})
                    made = await self._guarded("clip_generator", agent, "generate")(
                        scene, seconds, preset, temp, **extra)
                else:
                    made = await self._guarded("image_generator", agent, "generate")(
                        scene, preset, temp)
                expected = ClipAsset if tier == "clip" else ImageAsset
                if not isinstance(made, expected):
                    raise AgentError(f"generate() returned {type(made).__name__}, "
                                     f"not {expected.__name__}", agent_name(agent))
                if not probe(temp).has_video:
                    raise MediaError(f"scene {scene.index}: the {tier} has no picture", temp)
        return attrs.evolve(made, path=self.session.path(relative))

    def _record_visual(self, step_id: str, inputs: str, agent: str, status: Any, tier: Tier,
                       visual: Visual | None, started: float, errors: list[str],
                       resilience: dict[str, Any], charges: list[Charge]) -> None:
        outputs: tuple[OutputRecord, ...] = ()
        if isinstance(visual, (ClipAsset, ImageAsset)):
            outputs = (self.session.manifest.output(visual.path),)
        data: dict[str, Any] = {"resilience": resilience, "charges": _charges(charges)}
        if visual is not None:
            data["asset"] = asset_to_dict(visual, self.session.root)
        self.session.manifest.record(StepRecord(
            step_id, agent, inputs, status, outputs, started, time.time() - started, tier=tier,
            cost=total_usd(charges), error="; ".join(errors) or None, data=data))

    async def _compose(self, script: Script, timeline: Timeline,
                       tiers: tuple[Tier, ...]) -> Video:
        composer = self.agents.composer
        preset = self.request.preset
        stem = _slug(self.request.title or script.title)
        sidecars = {
            "srt": self.session.write_text(f"final_output/{stem}.srt", to_srt(timeline.cues)),
            "vtt": self.session.write_text(f"final_output/{stem}.vtt", to_vtt(timeline.cues)),
            "ass": self.session.write_text(f"final_output/{stem}.ass", to_ass(
                timeline.cues, width=preset.width, height=preset.height, style=timeline.style,
                margin=caption_margin(timeline.style, preset))),
        }
        relative = f"final_output/{stem}.mp4"
        checksums = [o.sha256 for s in self.session.manifest.steps.values() for o in s.outputs
                     if not s.id.startswith("compose")]
        inputs = _hash([timeline.to_ffmpeg_args(Path("out.mp4"), ass=None, fonts_dir=None),
                        timeline.ass_script(), sorted(checksums), agent_name(composer)])
        step = self.session.manifest.step("compose")
        base = self.SCRIPT_SHARE + self.SCENES_SHARE
        if not (step and self.session.manifest.is_valid(step, inputs)):
            started = time.time()
            self.emit("compose", f"composing {timeline.duration:.1f} s of video", base)

            def progress(fraction: float) -> None:
                self.generator._emit(Event("compose", "composing", base + (1 - base) * fraction))

            with self.session.atomic_path(relative) as temp:
                await self._guarded("composer", composer, "compose")(timeline, temp, progress)
                info = probe(temp)
                if not info.has_video or not info.duration:
                    raise MediaError("the composed video has no picture", temp)
            final = self.session.path(relative)
            self.session.manifest.record(StepRecord(
                "compose", agent_name(composer), inputs, "done",
                (self.session.manifest.output(final),), started, time.time() - started,
                data={"duration": info.duration, "width": info.width, "height": info.height}))
        final = self.session.path(relative)
        info = probe(final)
        video = Video(final, info.duration or timeline.duration, info.width, info.height,
                      self.session.root, sidecars, tiers)
        self.emit("done", str(final), 1.0, path=str(final))
        return video
