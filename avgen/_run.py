"""One run of `avgen.VideoGenerator`, in the order the data flows."""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import json
import math
import os
import re
import socket
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import attrs

from avgen._fallback import VisualChain, VisualSource
from avgen._hashing import file_sha256, json_sha256, sha256_hex
from avgen._models import (
    AudioAsset,
    Character,
    Scene,
    Script,
    Tier,
    Video,
    VideoRequest,
    Visual,
)
from avgen._models import asset_to_dict as _saved
from avgen._policy import AgentPolicy, guard
from avgen._reporting import Reporter, RunEvent
from avgen._session import Session
from avgen._steps import Made, StepRunner
from avgen.agents._protocols import AgentSet, agent_name
from avgen.costs import Ledger
from avgen.errors import AgentError, AvgenError, GenerationError, MediaError, UsageError
from avgen.media._cards import theme_for
from avgen.media._ffmpeg import measure_mix, probe, run_ffmpeg
from avgen.media._timeline import Timeline
from avgen.resilience import CircuitRegistry, Monitor
from avgen.resilience._shared import current_shared

__all__: list[str] = []


def _nobody(event: RunEvent) -> None:
    """A run nobody listens to."""


@attrs.frozen
class RunContext:
    """What one run receives from whoever starts it (`avgen.VideoGenerator`): the agents and
    the settings and services its calls go through, nothing more."""

    agents: AgentSet
    """The agents."""
    budget: float | None = None
    """The most the video may cost (``None``: no limit)."""
    required_tier: Tier | None = None
    """A picture tier every scene must reach, if any."""
    policies: Mapping[str, AgentPolicy] = attrs.field(factory=dict)
    """Retry and breaker settings by role, over the agents' own."""
    breakers: CircuitRegistry = attrs.field(factory=CircuitRegistry)
    """The breakers, which outlive the run."""
    monitor: Monitor | None = None
    """Times every agent call, when set."""
    emit: Callable[[RunEvent], None] = _nobody
    """Told every event of the run."""


async def run_video(context: RunContext, session: Session, request: VideoRequest) -> Video:
    """Make (or finish) the video of ``request`` in ``session``, holding the session's lock.

    Raises:
        UsageError: Another run holds the session, or bad input found on the way.
        GenerationError: The run could not finish; the session keeps what was made.
    """
    with session.lock():  # one run at a time; refused at once while another holds it
        run = Run(context, session, request)
        with session, session.activate():
            # the session is this run's alone (`Session.lock`): what temporary files it
            # holds now were left by a run that died (kill -9) before it could remove them
            session.sweep()
            session.manifest.update(status="running", agents=context.agents.names(),
                                    host={"name": socket.gethostname(), "pid": os.getpid()})
            try:
                video = await run.execute()
            except (asyncio.CancelledError, KeyboardInterrupt):
                session.manifest.update(status="interrupted", cost=run.cost())
                raise
            except AvgenError as exc:
                session.manifest.update(status="failed", error=str(exc), cost=run.cost())
                run.report.emit("failed", str(exc), 1.0)
                if isinstance(exc, UsageError):
                    raise
                raise GenerationError(f"the video could not be made: {exc}", session.root) \
                    from exc
            except Exception as exc:  # a bug in an agent: record it, let its traceback show
                session.manifest.update(status="failed", error=repr(exc))
                raise
            finally:
                # an agent's worker thread outlives a cancelled step and may still have
                # written into a temporary file after its step removed it
                session.sweep()
            session.manifest.update(status="done", video=session.relative(video.path),
                                    cost=run.cost())
            if context.monitor is not None:
                # the report's peaks, and the latest samples (at most 400, evenly thinned)
                # for the HTML report's CPU and memory chart
                samples = list(context.monitor.samples)
                step = max(1, -(-len(samples) // 400))
                session.manifest.update(report=context.monitor.report(),
                                        monitor_samples=samples[::step])
            return video


class Run:
    """One run::

        script step ─► scenes under one task group (each: narration step, then visual step)
                   ─► timeline ─► caption sidecars ─► compose step ─► Video

    Every step goes through the `StepRunner` (reuse, timing, charges, the manifest record);
    a scene's picture comes from the `VisualChain` (clip → image → card). A failing scene
    cancels its siblings before any of them starts another paid call.
    """

    def __init__(self, context: RunContext, session: Session, request: VideoRequest):
        self.context, self.session, self.request = context, session, request
        self.agents = context.agents
        # a resumed run counts what its session already paid
        spent = math.fsum(step.cost for step in session.manifest.steps.values())
        self.ledger = Ledger(context.budget, spent=spent, shared=current_shared())
        self.steps = StepRunner(session, self.ledger)
        self.report = Reporter(session, context.emit)
        sources = [VisualSource(tier, agent, agent_name(agent),
                                self._guarded(f"{tier}_generator", agent, "generate"))
                   for tier, agent in self.agents.sources()]
        self.chain = VisualChain(sources, session=session, turn=self.steps.turn,
                                 required=context.required_tier,
                                 on_fallback=lambda scene, tier, exc:
                                     self.report.fallback(scene.index, tier, exc))
        self.pictures: dict[int, asyncio.Future[Visual | None]] = {}  # for continuity

    async def execute(self) -> Video:
        self.report.emit("session", f"session {self.session.root}", 0.0,
                         path=str(self.session.root))
        script = await self._script()
        self.report.scene_count = len(script.scenes)
        self.chain.theme = theme_for(script.title)
        script = await self._cast(script)
        await self._prepare(script)
        for note in script.notes:
            self.report.emit("note", note)
        check_text = getattr(self.agents.composer, "check_text", None)  # before narration
        for note in check_text(script, self.request) if check_text else ():
            self.report.emit("note", note)
            warnings.warn(note, UserWarning, stacklevel=1)  # from this module: see _cli
        loop = asyncio.get_running_loop()
        self.pictures = {scene.index: loop.create_future() for scene in script.scenes}
        first: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._scene(scene)) for scene in script.scenes]
        except BaseExceptionGroup as failed:  # siblings are cancelled: report the first
            first = failed.exceptions[0]
        if first is not None:
            raise first  # outside the handler: its own cause and context stay as they were
        made = [task.result() for task in tasks]
        timeline = Timeline.build(
            self.request.preset, [(scene, audio, visual.value) for scene, (audio, visual)
                                  in zip(script.scenes, made, strict=True)],
            style=self.request.caption_style, burn_captions=self.request.captions,
            transition=self.request.transition, soundtrack=self.request.soundtrack,
            fit=self.request.fit, language=self.request.language)
        tiers = tuple(cast(Tier, visual.tier) for _, visual in made)
        return await self._compose(script, timeline, tiers)

    async def _cast(self, script: Script) -> Script:
        """A reference picture of every character, in ``images/cast/``: the one you gave,
        copied; else one painted by the ``portrait`` member of the first visual source's
        ``painter``, or of the first visual source that has one, when a visual source of
        this run takes reference pictures (``takes_references``). A portrait that fails
        is a note, not a failed run: the scenes are made from words alone."""
        visuals = [agent for _, agent in self.agents.sources()]
        candidates = [candidate for agent in visuals
                      for candidate in (getattr(agent, "painter", None), agent)]
        painter = next((agent for agent in candidates
                        if callable(getattr(agent, "portrait", None))), None)
        wanted = painter is not None and any(getattr(agent, "takes_references", False)
                                             for agent in visuals)
        # a picture is the request's (copied into the session), never one a saved script
        # names: scripts/script.json is read back on a resume, and is not trusted
        given_pictures = {c.name.casefold(): c.reference for c in self.request.characters}
        script = script.cast_as(characters=[
            attrs.evolve(c, reference=given_pictures.get(c.name.casefold()))
            for c in script.cast])
        if not script.cast or not (wanted or any(c.reference for c in script.cast)):
            return script

        slugs = _cast_slugs(script.cast)

        async def one(character: Character) -> Character:
            slug = slugs[character.name]
            given = character.reference
            if given is None and not wanted:
                return character
            relative = f"images/cast/{slug}.png"
            name = "reference" if given is not None else agent_name(painter)
            inputs = json_sha256([character.description, script.style and script.style.text,
                                  file_sha256(given) if given is not None else None, name])
            step_id = f"cast-{slug}"
            if self.steps.reusable(step_id, inputs):
                return attrs.evolve(character, reference=self.session.path(relative))

            async def make() -> Made[Path]:
                with self.session.atomic_path(relative) as temp:
                    if given is not None:  # as a PNG, whatever picture it was
                        await run_ffmpeg(["-i", str(given), "-frames:v", "1", "-update", "1",
                                          str(temp)], what=f"reading {given}")
                    else:
                        await self._guarded("image_generator", painter, "portrait")(
                            character, script.style, self.request.preset, temp)
                    info = probe(temp)
                    if not info.has_video or not info.width:
                        raise MediaError(f"the reference picture of {character.name} is "
                                         "not a picture", given or temp)
                path = self.session.path(relative)
                return Made(path, (path,), {"character": character.name})

            try:
                made = await self.steps.run(step_id, name, inputs, make)
            except (AgentError, MediaError) as exc:
                if given is not None:
                    raise
                self.report.emit("note", f"no reference picture of {character.name} "
                                 f"({exc}); their scenes are made from words alone")
                return character
            return attrs.evolve(character, reference=made.value)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(character)) for character in script.cast]
        return script.cast_as(characters=[task.result() for task in tasks])

    async def _prepare(self, script: Script) -> None:
        """Show the whole script to every agent with a ``prepare(script)`` member (each
        once), before any scene is made: a media library matches files to scenes there."""
        seen: set[int] = set()
        for field in attrs.fields(type(self.agents)):
            agent = getattr(self.agents, field.name)
            prepare = getattr(agent, "prepare", None)
            if agent is None or id(agent) in seen or not callable(prepare):
                continue
            seen.add(id(agent))
            if asyncio.iscoroutinefunction(prepare):
                await prepare(script)
            else:
                await asyncio.to_thread(prepare, script)

    async def _scene(self, scene: Scene) -> tuple[AudioAsset, Made[Visual]]:
        picture = self.pictures[scene.index]
        try:
            audio = await self._narration(scene)
            visual = await self._visual(scene, audio.duration)
        finally:
            if not picture.done():  # a scene that failed must not hold up the next one
                picture.set_result(None)
        return audio, visual

    async def _script(self) -> Script:
        writer = self.agents.script_writer
        name = agent_name(writer)
        inputs = json_sha256([self.request.to_dict(), name])
        if self.steps.reusable("script", inputs):
            script = Script.from_dict(json.loads(
                self.session.path("scripts/script.json").read_text("utf-8")))
            self.report.scripted(f"script reused: {len(script.scenes)} scenes")
            return script

        async def write() -> Made[Script]:
            script = await self._guarded("script_writer", writer, "write")(self.request)
            if isinstance(script, Script):  # one look: the request's style and cast win
                script = script.cast_as(self.request.style, self.request.characters)
            if not isinstance(script, Script):
                raise AgentError(f"write() returned {type(script).__name__}, not a Script",
                                 name)
            path = self.session.write_json("scripts/script.json", script.to_dict())
            self.session.write_text("scripts/narration.txt", script.narration + "\n")
            return Made(script, (path,), {"scenes": len(script.scenes), "title": script.title})

        script = (await self.steps.run("script", name, inputs, write)).value
        self.session.manifest.update(title=script.title, notes=list(script.notes), look={
            "style": None if script.style is None else script.style.text,
            "cast": [character.description for character in script.cast]})
        self.report.scripted(f"script: {len(script.scenes)} scenes, “{script.title}”")
        return script

    async def _narration(self, scene: Scene) -> AudioAsset:
        narrator = self.agents.narrator
        name, step_id = agent_name(narrator), f"scene-{scene.index:03d}.narration"
        inputs = json_sha256([scene.narration, self.request.voice, name])
        reused = self.steps.reused_asset(step_id, inputs)
        if isinstance(reused, AudioAsset):  # its recorded length is checked, not trusted
            self.report.half_scene("narration", scene.index, "narration reused")
            return _measured(reused, reused.path, scene)
        relative = f"audio/scene_{scene.index:03d}.wav"

        async def speak() -> Made[AudioAsset]:
            with self.session.atomic_path(relative) as temp:
                asset = await self._guarded("narrator", narrator, "speak")(
                    scene.narration, temp, voice=self.request.voice)
                if not isinstance(asset, AudioAsset):
                    raise AgentError(f"speak() returned {type(asset).__name__}, "
                                     "not an AudioAsset", name)
                asset = _measured(asset, temp, scene)
            asset = attrs.evolve(asset, path=self.session.path(relative))
            return Made(asset, (asset.path,), {"asset": _saved(asset, self.session.root)})

        audio = (await self.steps.run(step_id, name, inputs, speak, turn=narrator)).value
        self.report.half_scene("narration", scene.index, f"narration {audio.duration:.1f} s")
        return audio

    async def _visual(self, scene: Scene, seconds: float) -> Made[Visual]:
        step_id = f"scene-{scene.index:03d}.visual"
        preset = self.request.preset
        # not the narration's exact length: a re-spoken narration (Piper's voice varies a
        # little from take to take) must not make a resume pay for the clip again; the
        # composer fits any clip to the scene's length
        references = [file_sha256(c.reference) for c in scene.characters if c.reference]
        inputs = json_sha256([scene.prompt, scene.title, preset.width, preset.height,
                              self.chain.names, *([references] if references else [])])
        reused = self.steps.reused_asset(step_id, inputs)
        if reused is not None and not isinstance(reused, AudioAsset):
            made: Made[Visual] = Made(reused, tier=reused.kind)
            self.report.half_scene("visual", scene.index, f"{reused.kind} reused",
                                   tier=reused.kind)
        else:
            previous = await self._previous_clip(scene) if self.chain.continuity else None
            made = await self.steps.run(
                step_id, "+".join(self.chain.names) or "ffmpeg-card", inputs,
                lambda: self.chain.make(scene, seconds, preset, previous))
            ready = "procedural card" if made.tier == "card" else f"{made.tier} ready"
            self.report.half_scene("visual", scene.index, ready, tier=made.tier)
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
        sidecars = _write_sidecars(self.session, composer, timeline, stem)
        _write_credits(self.session, timeline)
        relative = f"final_output/{stem}.mp4"
        checksums = [o.sha256 for s in self.session.manifest.steps.values() for o in s.outputs
                     if s.id != "compose"]
        inputs = json_sha256([_fingerprint(composer, timeline), sorted(checksums),
                              agent_name(composer)])
        if not self.steps.reusable("compose", inputs):
            self.report.emit("compose", f"composing {timeline.duration:.1f} s of video",
                             Reporter.SCRIPT + Reporter.SCENES)

            async def render() -> Made[None]:
                with self.session.atomic_path(relative) as temp:
                    await self._guarded("composer", composer, "compose")(
                        timeline, temp, self.report.composing)
                    info = probe(temp)
                    if not info.has_video or not info.duration:
                        raise MediaError("the composed video has no picture", temp)
                    loudness = await self._loudness(temp) if info.has_audio else None
                return Made(None, (self.session.path(relative),), {
                    "duration": info.duration, "width": info.width, "height": info.height,
                    "loudness": loudness})

            await self.steps.run("compose", agent_name(composer), inputs, render)
        final = self.session.path(relative)
        info = probe(final)
        self.report.emit("done", str(final), 1.0, path=str(final))
        self.session.manifest.update(notes=list(self.report.notes))
        return Video(final, info.duration or timeline.duration, info.width, info.height,
                     self.session.root, sidecars, tiers, self.report.notes)

    async def _loudness(self, video: Path) -> dict[str, float | None]:
        """The finished file's sound as ffmpeg's R128 meter measures it (integrated
        loudness, true peak), against the target; a note when it is off and the composer
        did not say so itself (whatever composer made it)."""
        ((integrated, peak),) = await measure_mix([
            "-i", str(video), "-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"])
        target = self.request.soundtrack.loudness
        said = any("loudness" in note for note in self.report.composer_notes)
        if integrated is not None and not said and (abs(integrated - target) > 0.5
                                                    or (peak is not None and peak > -1.0)):
            self.report.emit("note", f"the video's sound measures {integrated:.1f} LUFS, "
                             f"true peak {peak if peak is None else round(peak, 1)} dBTP "
                             f"(asked: {target:.1f} LUFS, at most -1 dBTP)")
        return {"integrated_lufs": integrated, "true_peak_dbtp": peak, "target_lufs": target}

    def _guarded(self, role: str, agent: Any, method: str) -> Any:
        return guard(role, agent, method, overrides=self.context.policies,
                     registry=self.context.breakers, hooks=(self.report.resilience,),
                     monitor=self.context.monitor)

    def cost(self) -> dict[str, Any]:
        """The manifest's run-level cost entry."""
        return {"spent": round(self.ledger.spent, 6), "budget": self.ledger.budget}


def _write_sidecars(session: Session, composer: object, timeline: Timeline,
                    stem: str) -> dict[str, Path]:
    """Write the caption files the composer gives (``sidecars(timeline)``), or the
    timeline's own, into ``final_output/``."""
    own = getattr(composer, "sidecars", None)
    texts = own(timeline) if callable(own) else timeline.caption_files()
    return {kind: session.write_text(f"final_output/{stem}.{kind}", text)
            for kind, text in texts.items()}


def _write_credits(session: Session, timeline: Timeline) -> None:
    """``final_output/credits.txt``: a line for each scene whose picture or clip names an
    author or a licence (`avgen.Source.credit`); no file when none does."""
    lines = []
    for scene in timeline.scenes:
        source = getattr(scene.visual, "source", None)
        credit = source.credit if source is not None else None
        if credit:
            lines.append(f"Scene {scene.index + 1}: {credit}")
    if lines:
        session.write_text("final_output/credits.txt", "\n".join(lines) + "\n")


def _measured(asset: AudioAsset, path: Path, scene: Scene) -> AudioAsset:
    """The narration as its file measures: the file's length rules, not the narrator's
    claim (ffmpeg reports 10 ms steps, so a claim within that keeps its precision); its
    words timed (`AudioAsset.with_words`)."""
    info = probe(path)
    if not info.has_audio or not info.duration:
        raise MediaError(f"scene {scene.index + 1}: the narration has no audio", path)
    if abs(asset.duration - info.duration) > 0.02:
        asset = attrs.evolve(asset, duration=info.duration)
    return asset.with_words()  # a narrator that times no word gets them estimated


def _fingerprint(composer: object, timeline: Timeline) -> str:
    """What the composer would render: its own ``fingerprint(timeline)`` when it has one,
    else the whole timeline (any change to it renders again)."""
    own = getattr(composer, "fingerprint", None)
    if callable(own):
        return str(own(timeline))
    return json_sha256(attrs.asdict(timeline, value_serializer=lambda _i, _a, v: (
        str(v) if isinstance(v, Path) else v)))


def _cast_slugs(cast: Sequence[Character]) -> dict[str, str]:
    """A file name for each character's picture, distinct within the cast: the name's
    ASCII slug, with a digest of the name when that is empty or shared (``Ana Maria`` and
    ``Ana-Maria``; two names in another script)."""
    plain = {c.name: re.sub(r"[^a-z0-9]+", "-", unicodedata.normalize("NFKD", c.name)
                            .encode("ascii", "ignore").decode().lower()).strip("-")[:40]
             for c in cast}
    shared = Counter(plain.values())
    return {name: slug if slug and shared[slug] == 1
            else f"{slug or 'character'}-{sha256_hex(name)[:8]}"
            for name, slug in plain.items()}


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:60].strip("-")
    return slug or "video"
