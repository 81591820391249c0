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
    CardVisual,
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
from avgen._session import Session, unsaved_noted_on
from avgen._steps import Made, StepRunner
from avgen._threads import through_thread
from avgen._versions import Version, aligned, cost_split, step_language, versions_of
from avgen.agents._protocols import AgentSet, agent_name
from avgen.agents.local._script import author_scenes
from avgen.costs import Ledger
from avgen.errors import AgentError, AvgenError, GenerationError, MediaError, UsageError
from avgen.media._cards import key_phrase, theme_for
from avgen.media._ffmpeg import MediaInfo, measure_sound, probe, run_ffmpeg
from avgen.media._timeline import Timeline, shot_cuts
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


async def run_video(context: RunContext, session: Session, request: VideoRequest,
                    saved: Mapping[str, Any] | None = None) -> Video:
    """Make (or finish) the video of ``request`` in ``session``, holding the session's lock.

    ``saved`` (the request, or a changed one, and its estimate) goes into the manifest
    once the lock is held, in the same save as the run's start.

    Raises:
        UsageError: Another run holds the session, or bad input found on the way.
        GenerationError: The run could not finish; the session keeps what was made.
    """
    # what was saved before (the session's creation) is on disk before the lock reads the
    # manifest again; a wait is a thread's, so the other runs of a batch go on meanwhile
    await session.manifest.aflush()
    with session.lock():  # one run at a time; refused at once while another holds it
        run = Run(context, session, request)
        with session, session.activate():
            # the session is this run's alone (`Session.lock`): what temporary files it
            # holds now were left by a run that died (kill -9) before it could remove them
            session.sweep()
            session.manifest.update(**(saved or {}), status="running",
                                    agents=context.agents.names(),
                                    host={"name": socket.gethostname(), "pid": os.getpid()})
            try:
                try:
                    video = await run.execute()
                except (asyncio.CancelledError, KeyboardInterrupt) as exc:
                    with unsaved_noted_on(exc):
                        session.manifest.update(status="interrupted", cost=run.cost())
                    raise
                except AvgenError as exc:
                    error = exc
                    if not isinstance(exc, UsageError):
                        error = GenerationError(f"the video could not be made: {exc}",
                                                session.root)
                        for note in getattr(exc, "__notes__", ()):  # e.g. a manifest unsaved
                            error.add_note(note)
                    with unsaved_noted_on(error):
                        session.manifest.update(status="failed", error=str(exc),
                                                cost=run.cost())
                    run.report.emit("failed", str(exc), 1.0)
                    if error is exc:
                        raise
                    raise error from exc
                except Exception as exc:  # a bug in an agent: record it, let its traceback show
                    with unsaved_noted_on(exc):
                        session.manifest.update(status="failed", error=repr(exc))
                    raise
            except BaseException as failure:
                # an agent's worker thread outlives a cancelled step and may still have
                # written into a temporary file after its step removed it
                with unsaved_noted_on(failure):
                    await session.manifest.aflush()  # (the loop goes on meanwhile)
                session.sweep()
                raise
            await session.manifest.aflush()
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
            await session.manifest.aflush()
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
        self.versions = versions_of(request)
        # the original's request: a run in one language, and the original of a run in
        # several, make the same steps from the same inputs
        self.context, self.session, self.request = context, session, self.versions[0].request
        self.slug = "video"
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
        self.report.parts = len(self.versions) + 1
        self.chain.theme = theme_for(script.title)
        script = await self._cast(script)
        await self._prepare(script)
        for note in script.notes:
            self.report.emit("note", note)
        check_text = getattr(self.agents.composer, "check_text", None)  # before narration
        self._check_text(check_text, script, self.versions[0])
        loop = asyncio.get_running_loop()
        self.pictures = {scene.index: loop.create_future() for scene in script.scenes}
        first: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                # the translations are written while the pictures are being made
                translations = {version.language: group.create_task(
                    self._translate(script, version, check_text))
                    for version in self.versions[1:]}
                tasks = [group.create_task(self._scene(scene, translations))
                         for scene in script.scenes]
        except BaseExceptionGroup as failed:  # siblings are cancelled: report the first
            first = _first(failed)
        if first is not None:
            raise first  # outside the handler: its own cause and context stay as they were
        scripts = {self.versions[0].language: script,
                   **{language: task.result() for language, task in translations.items()}}
        made = [task.result() for task in tasks]
        tiers = tuple(cast(Tier, visual.tier) for _, visual, _ in made)
        self.slug = _slug(self.request.title or script.title)
        videos: dict[str, Video] = {}
        for number, version in enumerate(self.versions):
            self.report.versions = (number, len(self.versions))
            own = scripts[version.language]
            timeline = Timeline.build(
                version.request.preset, [
                    (scene, audios[version.language],
                     _shots(audios, shots, version) if len(shots) > 1
                     else _shown(visual.value, scene, version))
                    for scene, (audios, visual, shots) in zip(own.scenes, made, strict=True)],
                style=version.request.caption_style, burn_captions=version.request.captions,
                transition=version.request.transition, soundtrack=version.request.soundtrack,
                fit=version.request.fit, language=version.language)
            videos[version.language] = await self._compose(own, timeline, tiers, version)
        original = videos[self.versions[0].language]
        if not self.versions[0].named:
            return original
        self.session.manifest.update(languages=[v.language for v in self.versions], versions={
            language: {"video": self.session.relative(video.path),
                       "captions": {kind: self.session.relative(path)
                                    for kind, path in video.captions.items()},
                       "duration": video.duration, "title": scripts[language].title}
            for language, video in videos.items()})
        return attrs.evolve(original, versions=videos)

    def _check_text(self, check_text: Any, script: Script, version: Version) -> None:
        """The composer's notes on ``version``'s text (characters no font draws)."""
        for note in check_text(script, version.request) if check_text else ():
            self.report.emit("note", note)
            warnings.warn(note, UserWarning, stacklevel=1)  # from this module: see _cli

    async def _translate(self, script: Script, version: Version, check_text: Any) -> Script:
        """``script`` in ``version``'s language: from the script you gave for it, else
        written by the script writer's ``translate(script, language)``; saved as
        ``scripts/script.<language>.json``. The composer's notes on it follow."""
        translated = await self._translated(script, version)
        self._check_text(check_text, translated, version)
        return translated

    async def _translated(self, script: Script, version: Version) -> Script:
        writer = self.agents.script_writer
        given = version.given is not None
        name = "translation" if given else agent_name(writer)
        step_id, relative = f"script{version.suffix}", f"scripts/script.{version.language}.json"
        inputs = json_sha256([script.title, [[s.title, s.narration] for s in script.scenes],
                              version.language, version.given, name])

        def pairs(translated: Script) -> list[tuple[str, str]]:
            return [(scene.title, scene.narration) for scene in translated.scenes]

        if await self.steps.reusable(step_id, inputs):
            kept = Script.from_dict(json.loads(self.session.path(relative).read_text("utf-8")))
            self.report.emit("script", f"{version.language} script reused",
                             language=version.language)
            return aligned(script, kept.title, pairs(kept), version.language, "translations")

        async def translate() -> Made[Script]:
            if version.given is not None:
                title, scenes = author_scenes(version.given, writer, script.title)
                made = aligned(script, title, scenes, version.language,
                               f"translations[{version.language!r}]")
            else:
                answer = await self._guarded("script_writer", writer, "translate")(
                    script, version.language)
                if not isinstance(answer, Script):
                    raise AgentError(f"translate() returned {type(answer).__name__}, not a "
                                     "Script", name)
                try:
                    made = aligned(script, answer.title, pairs(answer), version.language,
                                   "translation")
                except UsageError as exc:
                    raise AgentError(str(exc), name) from None
            path = self.session.write_json(relative, made.to_dict())
            self.session.write_text(f"scripts/narration.{version.language}.txt",
                                    made.narration + "\n")
            return Made(made, (path,), {"scenes": len(made.scenes), "title": made.title,
                                        "language": version.language})

        made = (await self.steps.run(step_id, name, inputs, translate)).value
        self.report.emit("script", f"{version.language} script: {len(made.scenes)} scenes, "
                         f"“{made.title}”", language=version.language)
        return made

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
            if await self.steps.reusable(step_id, inputs):
                return attrs.evolve(character, reference=self.session.path(relative))

            async def make() -> Made[Path]:
                with self.session.atomic_path(relative) as temp:
                    if given is not None:  # as a PNG, whatever picture it was
                        await run_ffmpeg(["-i", str(given), "-frames:v", "1", "-update", "1",
                                          str(temp)], what=f"reading {given}")
                    else:
                        await self._guarded("image_generator", painter, "portrait")(
                            character, script.style, self.request.preset, temp)
                    # not awaited: nothing may cancel the step between the payment and its record
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
        for agent in self.agents.distinct():  # the visual sources of `visuals` too
            prepare = getattr(agent, "prepare", None)
            if not callable(prepare):
                continue
            if asyncio.iscoroutinefunction(prepare):
                await prepare(script)
            else:
                await asyncio.to_thread(prepare, script)

    async def _scene(self, scene: Scene, scripts: Mapping[str, asyncio.Task[Script]]
                     ) -> tuple[dict[str, AudioAsset], Made[Visual],
                                list[tuple[Visual, float]]]:
        """A scene's narration in every language (each once its translation is written),
        its picture (made as long as the original narration's first shot) and its shots:
        each picture with where it starts in the original narration (one, unless its
        pictures are found footage and it is longer than a shot)."""
        picture = self.pictures[scene.index]
        original = self.versions[0]
        first: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                others = {version.language: group.create_task(self._translated_narration(
                    scripts[version.language], scene.index, version))
                    for version in self.versions[1:]}
                audio = await self._narration(scene, original)
                cuts = shot_cuts(audio, self.request.shot_seconds) if self.chain.shots else []
                bounds = [0.0, *cuts, audio.duration]
                visual = await self._visual(scene, bounds[1])
                shots = [(visual.value, 0.0)]
                seen = {_identity(visual.value)}
                for number in range(1, len(bounds) - 1) if visual.tier != "card" else ():
                    made = await self._visual(scene, bounds[number + 1] - bounds[number],
                                              number)
                    if made.tier == "card" or _identity(made.value) in seen:
                        continue  # nothing new for this shot: the shot before it lasts longer
                    seen.add(_identity(made.value))
                    shots.append((made.value, bounds[number]))
        except BaseExceptionGroup as failed:
            first = _first(failed)
        finally:
            if not picture.done():  # a scene that failed must not hold up the next one
                picture.set_result(None)
        if first is not None:
            raise first
        return {original.language: audio, **{language: task.result()
                                             for language, task in others.items()}}, \
            visual, shots

    async def _script(self) -> Script:
        writer = self.agents.script_writer
        name = agent_name(writer)
        asked = self.request.to_dict()
        for field in ("languages", "translations", "voices"):  # the versions' own
            asked.pop(field, None)
        if asked.get("max_shot") is None:  # a session made before shots keeps its hash
            asked.pop("max_shot", None)
        inputs = json_sha256([asked, name])
        if await self.steps.reusable("script", inputs):
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
            # synced to the disk in a worker thread: the other runs go on meanwhile
            path = await through_thread(self.session.write_json, "scripts/script.json",
                                        script.to_dict())
            await through_thread(self.session.write_text, "scripts/narration.txt",
                                 script.narration + "\n")
            return Made(script, (path,), {"scenes": len(script.scenes), "title": script.title})

        script = (await self.steps.run("script", name, inputs, write)).value
        self.session.manifest.update(title=script.title, notes=list(script.notes), look={
            "style": None if script.style is None else script.style.text,
            "cast": [character.description for character in script.cast]})
        self.report.scripted(f"script: {len(script.scenes)} scenes, “{script.title}”")
        return script

    async def _translated_narration(self, script: asyncio.Task[Script], index: int,
                                    version: Version) -> AudioAsset:
        """Scene ``index``'s narration in ``version``'s language, once it is translated."""
        return await self._narration((await script).scenes[index], version)

    async def _narration(self, scene: Scene, version: Version) -> AudioAsset:
        narrator = self.agents.narrator
        name = agent_name(narrator)
        step_id = f"scene-{scene.index:03d}.narration{version.suffix}"
        voice = version.request.voice
        inputs = json_sha256([scene.narration, voice, name])
        which = "narration" if version.original else f"narration ({version.language})"
        told = {} if version.original else {"language": version.language}
        reused = await self.steps.reused_asset(step_id, inputs)
        if isinstance(reused, AudioAsset):  # its recorded length is checked, not trusted
            self.report.half_scene("narration", scene.index, f"{which} reused", **told)
            return _measured(reused, reused.path, scene)
        relative = version.audio(scene.index)

        async def speak() -> Made[AudioAsset]:
            with self.session.atomic_path(relative) as temp:
                asset = await self._guarded("narrator", narrator, "speak")(
                    scene.narration, temp, voice=voice)
                if not isinstance(asset, AudioAsset):
                    raise AgentError(f"speak() returned {type(asset).__name__}, "
                                     "not an AudioAsset", name)
                asset = _measured(asset, temp, scene)
            asset = attrs.evolve(asset, path=self.session.path(relative))
            return Made(asset, (asset.path,), {"asset": _saved(asset, self.session.root)})

        audio = (await self.steps.run(step_id, name, inputs, speak, turn=narrator)).value
        self.report.half_scene("narration", scene.index, f"{which} {audio.duration:.1f} s",
                               **told)
        return audio

    async def _visual(self, scene: Scene, seconds: float, shot: int = 0) -> Made[Visual]:
        step_id = f"scene-{scene.index:03d}." + (f"shot-{shot:02d}." if shot else "") + \
            "visual"
        preset = self.request.preset
        # not the narration's exact length: a re-spoken narration (Piper's voice varies a
        # little from take to take) must not make a resume pay for the clip again; the
        # composer fits any clip to the scene's length
        references = [file_sha256(c.reference) for c in scene.characters if c.reference]
        terms = list(scene.search_terms or ())  # only when given: older sessions keep hashes
        inputs = json_sha256([scene.prompt, scene.title, preset.width, preset.height,
                              self.chain.names, *([references] if references else []),
                              *([terms] if terms else []), *([shot] if shot else [])])
        reused = await self.steps.reused_asset(step_id, inputs)
        if reused is not None and not isinstance(reused, AudioAsset):
            made: Made[Visual] = Made(reused, tier=reused.kind)
            if not shot:
                self.report.half_scene("visual", scene.index, f"{reused.kind} reused",
                                       tier=reused.kind)
        else:
            previous = await self._previous_clip(scene) if self.chain.continuity else None
            made = await self.steps.run(
                step_id, "+".join(self.chain.names) or "ffmpeg-card", inputs,
                lambda: self.chain.make(scene, seconds, preset, previous, shot))
            ready = "procedural card" if made.tier == "card" else f"{made.tier} ready"
            if not shot:
                self.report.half_scene("visual", scene.index, ready, tier=made.tier)
        if not shot:
            self.pictures[scene.index].set_result(made.value)
        return made

    async def _previous_clip(self, scene: Scene) -> Path | None:
        """The previous scene's clip, once it is made (None for a still, a card or scene 0)."""
        if scene.index == 0:
            return None
        previous = await asyncio.shield(self.pictures[scene.index - 1])
        return previous.path if previous is not None and previous.kind == "clip" else None

    async def _compose(self, script: Script, timeline: Timeline, tiers: tuple[Tier, ...],
                       version: Version) -> Video:
        composer = self.agents.composer
        stem = version.stem(self.slug)
        texts = _sidecars(composer, timeline)
        files = {f"final_output/{stem}.{kind}": text for kind, text in texts.items()}
        credits = _credits(timeline)
        if credits:
            files["final_output/credits.txt"] = credits
        # each file is synced to the disk: in a worker thread, the other runs go on
        written = await through_thread(_write_all, self.session, files)
        sidecars = {kind: written[f"final_output/{stem}.{kind}"] for kind in texts}
        relative = f"final_output/{stem}.mp4"
        step_id = f"compose{version.suffix}"
        original = self.versions[0].language
        # what this version is made of: the shared steps and its own (not another
        # version's: adding a language leaves the others' videos as they are)
        checksums = [o.sha256 for s in self.session.manifest.steps.values() for o in s.outputs
                     if not s.id.startswith("compose")
                     and step_language(s.id, original) in (None, version.language)]
        inputs = json_sha256([_fingerprint(composer, timeline), sorted(checksums),
                              agent_name(composer), *([relative] if version.named else [])])
        final = self.session.path(relative)
        if await self.steps.reusable(step_id, inputs):
            info = await asyncio.to_thread(probe, final)
        else:
            which = "" if not version.named else f" ({version.language})"
            self.report.emit("compose", f"composing {timeline.duration:.1f} s of video{which}",
                             Reporter.SCRIPT + Reporter.SCENES)

            async def render() -> Made[MediaInfo]:  # the file as probed: not probed again
                with self.session.atomic_path(relative) as temp:
                    progress = self.report.composing()
                    await self._guarded("composer", composer, "compose")(
                        timeline, temp, progress)
                    info = await asyncio.to_thread(probe, temp)
                    if not info.has_video or not info.duration:
                        raise MediaError("the composed video has no picture", temp)
                    loudness = (await self._loudness(temp, progress.sound) if info.has_audio
                                else None)
                return Made(info, (final,), {
                    "duration": info.duration, "width": info.width, "height": info.height,
                    "loudness": loudness})

            info = (await self.steps.run(step_id, agent_name(composer), inputs, render)).value
        last = version is self.versions[-1]
        if last:
            self.report.emit("done", str(final), 1.0, path=str(final),
                             language=version.language)
        else:
            self.report.emit("version", f"{version.language} video: {final}", path=str(final),
                             language=version.language)
        self.session.manifest.update(notes=list(self.report.notes))
        return Video(final, info.duration or timeline.duration, info.width, info.height,
                     self.session.root, sidecars, tiers, self.report.notes,
                     language=version.language)

    async def _loudness(self, video: Path, measured: tuple[float | None, float | None] | None
                        ) -> dict[str, float | None]:
        """The finished file's sound as ffmpeg's R128 meter measures it (integrated
        loudness, true peak), against the target; a note when it is off and the composer
        did not say so itself (whatever composer made it). ``measured``: the composer's
        own measurement of the file's sound, when it gave one (the default composer
        measures its soundtrack while the picture is encoded); else the file is
        measured here."""
        integrated, peak = measured if measured is not None else await measure_sound(video)
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
        """The manifest's run-level cost entry (with several languages, split into what
        every version shares and what each language's own steps paid)."""
        entry: dict[str, Any] = {"spent": round(self.ledger.spent, 6),
                                 "budget": self.ledger.budget}
        if self.versions[0].named:
            entry.update(cost_split(self.session.manifest.steps,
                                    [version.language for version in self.versions]))
        return entry


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first error of a task group's, inside any groups of groups."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    return found


def _shown(visual: Visual, scene: Scene, version: Version) -> Visual:
    """The shared picture as ``version`` shows it: a procedural card gets the version's
    title and key phrase (its icon and colours stay)."""
    if version.original or not isinstance(visual, CardVisual):
        return visual
    return attrs.evolve(visual, title=scene.title,
                        phrase=key_phrase(scene.narration) if visual.phrase else "")


def _shots(audios: Mapping[str, AudioAsset], shots: list[tuple[Visual, float]],
            version: Version) -> list[tuple[Visual, float]]:
    """A scene's shots in ``version``: each starts at the same share of the narration as in
    the original (a version's narration has its own length)."""
    if version.original:
        return shots
    original = next(iter(audios.values())).duration
    ratio = audios[version.language].duration / original if original > 0 else 1.0
    return [(visual, start * ratio) for visual, start in shots]


def _sidecars(composer: object, timeline: Timeline) -> dict[str, str]:
    """The caption files the composer gives (``sidecars(timeline)``), or the timeline's
    own: their text by kind (``srt``, ``vtt``, ``ass``)."""
    own = getattr(composer, "sidecars", None)
    return dict(own(timeline) if callable(own) else timeline.caption_files())


def _write_all(session: Session, files: Mapping[str, str]) -> dict[str, Path]:
    """Write each text at its path in the session (atomic, synced); returns the paths."""
    return {relative: session.write_text(relative, text) for relative, text in files.items()}


def _credits(timeline: Timeline) -> str:
    """The text of ``final_output/credits.txt``: a line for each picture or clip (each
    shot of a scene that shows several, in order of appearance) that names an author or a
    licence (`avgen.Source.credit`); empty (no file) when none does."""
    lines = []
    for scene in timeline.scenes:
        shown = scene.visuals
        for number, visual in enumerate(shown, 1):
            source = getattr(visual, "source", None)
            credit = source.credit if source is not None else None
            if credit:
                where = f", shot {number} of {len(shown)}" if len(shown) > 1 else ""
                lines.append(f"Scene {scene.index + 1}{where}: {credit}")
    return "\n".join(lines) + "\n" if lines else ""


def _identity(visual: Visual) -> object:
    """What tells two pictures apart: their source (provider, page, title), else their
    file."""
    source = getattr(visual, "source", None)
    if source is not None and (source.page_url or source.title):
        return (source.provider, source.page_url, source.title)
    return getattr(visual, "path", None) or id(visual)


def _measured(asset: AudioAsset, path: Path, scene: Scene) -> AudioAsset:
    """The narration as its file measures: the file's length rules, not the narrator's
    claim (ffmpeg reports 10 ms steps, so a claim within that keeps its precision); its
    words timed (`AudioAsset.with_words`).

    Not awaited: it follows a paid call, and nothing may cancel the step between the
    payment and its record — a cancelled step would lose what was paid for, and its resume
    would pay again. A WAV file (what narrators write) is measured from its header, so the
    event loop waits on no process (`avgen.media._ffmpeg.probe`)."""
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
