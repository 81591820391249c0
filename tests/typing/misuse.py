"""Mistakes the public signatures must catch, type-checked by tests/test_typing.py.

Each line below is wrong, and is marked ``# type: ignore[<code>]`` with the error mypy
must report for it. mypy runs with ``--warn-unused-ignores``: if a signature loosens so
that a mistake is no longer caught (or is caught as another error), the ignore becomes
unused or wrong, and the check fails.
"""

from __future__ import annotations

from pathlib import Path

import avgen
from avgen import (
    AgentPolicy,
    AudioAsset,
    Preset,
    RunEvent,
    Transition,
    VideoGenerator,
    VideoRequest,
)
from avgen.agents import Narrator
from avgen.notebook import ProgressBar


class SyncNarrator:
    """``speak`` forgot the keyword-only ``voice`` argument."""

    async def speak(self, text: str, target: Path) -> AudioAsset:
        return AudioAsset(target, 1.0)


class WrongReturn:
    """``speak`` returns a path, not an `AudioAsset`."""

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> Path:
        return target


def handler_of_strings(message: str) -> None:
    print(message)


def handler_of_nothing() -> None:
    print("something happened")


async def mistakes() -> None:
    narrator: Narrator = SyncNarrator()  # type: ignore[assignment]
    other: Narrator = WrongReturn()  # type: ignore[assignment]
    print(narrator, other)

    VideoRequest(script="Hi.", preset=720)  # type: ignore[arg-type]
    VideoRequest(script="Hi.", duration="30 s")  # type: ignore[arg-type]
    VideoRequest(script="Hi.", fit="stretch")  # type: ignore[arg-type]
    VideoRequest(script="Hi.", transition=0.5)  # type: ignore[arg-type]
    VideoRequest(script="Hi.", colour="red")  # type: ignore[call-arg]
    Preset("mine", 720)  # type: ignore[call-arg]
    Transition(style=3)  # type: ignore[arg-type]
    AgentPolicy(retry=3)  # type: ignore[arg-type]

    VideoGenerator(on_event=handler_of_strings)  # type: ignore[arg-type]
    VideoGenerator(required_tier="video")  # type: ignore[arg-type]
    VideoGenerator(policies=["narrator"])  # type: ignore[arg-type]
    generator = VideoGenerator()
    generator.subscribe(print)
    generator.subscribe(handler_of_nothing)  # type: ignore[arg-type]
    ProgressBar(generator, "description")  # type: ignore[call-arg]

    # Forgot to await: a coroutine has no path.
    pending = generator.generate(script="Hi.")
    print(pending.path)  # type: ignore[attr-defined]
    pending.close()

    video = await generator.generate(script="Hi.")
    print(video.duration + " s")  # type: ignore[operator]
    video.duration = 2.0  # type: ignore[misc]
    video.path.upper()  # type: ignore[attr-defined]

    event = RunEvent("done", "finished", 1.0)
    event.progress = 0.5  # type: ignore[misc]

    try:
        VideoRequest()
    except avgen.errors.UsageError as e:
        print(e.field + 1)  # type: ignore[operator]
        print(e.fields)  # type: ignore[attr-defined]

    # A batch is not one video, and its items are read-only.
    batch = generator.generate_many_sync([VideoRequest(script="Hi.")])
    print(batch.path)  # type: ignore[attr-defined]
    batch[0].status = "done"  # type: ignore[misc]
    generator.generate_many_sync(VideoRequest(script="Hi."))  # type: ignore[arg-type]
