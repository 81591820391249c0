"""Typical user code, type-checked with ``mypy --strict`` by tests/test_typing.py, never run.

It uses avgen the way the README and the guides do; if a public signature changes so that
code like this no longer type-checks, the test fails.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import avgen
from avgen import (
    PRESETS,
    AgentPolicy,
    AudioAsset,
    ImageAsset,
    Preset,
    RunEvent,
    Scene,
    Script,
    Soundtrack,
    Transition,
    Video,
    VideoGenerator,
    VideoRequest,
    preset,
)
from avgen.agents import AgentSet, ImageGenerator, Narrator, ScriptWriter, load_agents
from avgen.notebook import ProgressBar
from avgen.resilience import CircuitSettings, RetryPolicy


class Silence:
    """A narrator, written as a user would: an ``async def speak`` of the protocol's shape."""

    name = "silence"
    max_concurrency = 2

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        seconds = max(1.0, len(text.split()) / 2.5)
        target.write_bytes(b"")  # a real narrator writes a WAV here
        return AudioAsset(target, seconds)


class Solid:
    """An image generator: one colour per scene, at the preset's size."""

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        target.write_bytes(b"")
        return ImageAsset(target, preset.width, preset.height)


class OneScene:
    """A script writer: the whole text as one scene."""

    async def write(self, request: VideoRequest) -> Script:
        text = request.script or request.topic or "Hello."
        return Script(title=request.title or "Untitled",
                      scenes=[Scene(index=0, narration=text, title="Intro")],
                      notes=("written by OneScene",))


# The classes satisfy the protocols structurally: no base class, no registration.
narrator: Narrator = Silence()
images: ImageGenerator = Solid()
writer: ScriptWriter = OneScene()

progress: list[float] = []


def show(event: RunEvent) -> None:
    progress.append(event.progress)
    where = f"scene {event.scene}" if event.scene is not None else "run"
    print(f"{event.progress:4.0%} {event.kind} ({where}): {event.message} {event.data}")


def build_generator() -> VideoGenerator:
    local = load_agents("local")
    agents: AgentSet = AgentSet(script_writer=writer, narrator=narrator,
                                composer=local.composer, image_generator=images)
    return VideoGenerator(
        agents,
        output_dir=Path("outputs"),
        on_event=show,
        required_tier="image",
        policies={
            "image_generator": AgentPolicy(
                retry=RetryPolicy(attempts=3, timeout=30.0),
                circuit=CircuitSettings(minimum_calls=2, wait_open=60.0)),
            "narrator": AgentPolicy(retry=None),
        },
    )


def build_request(text: str) -> VideoRequest:
    return VideoRequest(
        script=text,
        preset=PRESETS["draft"] if len(text) < 100 else preset("shorts").resized(720, 1280),
        transition=Transition("fade", seconds=0.4),
        soundtrack=Soundtrack(loudness=-16.0),
        fit="blur",
        language="en",
        duration=30.0,
    )


async def make(text: str) -> Video | None:
    generator = build_generator()
    unsubscribe = generator.subscribe(lambda event: None)
    try:
        request = build_request(text)
        generator.check(request)
        with ProgressBar(generator, description="making", widget=False) as bar:
            video = await generator.generate(request, title="My video")
        print(bar.progress, bar.closed, bar.runs)
    except avgen.errors.UsageError as e:
        field: str = e.field
        problem: str = e.problem
        print(f"fix {field}: {problem}")
        return None
    except avgen.errors.GenerationError as e:
        session: Path | None = e.session
        if session is not None:
            return await generator.resume(session)
        raise
    except avgen.errors.AgentError as e:
        print(e)
        return None
    finally:
        unsubscribe()
    seconds: float = video.duration
    srt: Path = video.captions["srt"]
    manifest: Path = video.manifest
    print(video.path.name, seconds, srt, manifest, ", ".join(video.tiers))
    html: str = video._repr_html_()
    print(len(html))
    return video


def make_many(rows_file: Path) -> list[Path]:
    generator = VideoGenerator("local", agent_options={"voice": "joe"})
    requests = avgen.read_requests(rows_file)
    more = avgen.requests_from_rows([{"topic": "Tides", "preset": "shorts"}])
    result: avgen.BatchResult = generator.generate_many_sync(
        [*requests, *more], concurrency=2, budget=5.0, on_event=lambda event: None)
    made: list[Path] = []
    for item in result:
        status: str = item.status
        if item.video is not None:
            made.append(item.video)
        elif item.resume_command is not None:
            print(status, item.error, item.resume_command, item.session)
    print(result.cost, result.ok, len(result.failed), result.directory / "batch.json")
    return made


def make_sync(text: str) -> Path:
    video = VideoGenerator(on_event=ProgressBar()).generate_sync(script=text, preset="draft")
    return video.path


if __name__ == "__main__":
    asyncio.run(make("Hello. This is avgen."))
