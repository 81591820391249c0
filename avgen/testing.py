"""Test doubles for code that uses avgen: fast agents that make real media.

They follow the agent protocols, write real files (a tone WAV, test-pattern pictures and
clips made by ffmpeg) so the composer and your checks run for real, count their calls,
and fail on request to exercise fallbacks and resumes::

    from avgen import VideoGenerator
    from avgen.testing import PatternImages, ToneNarrator

    narrator = ToneNarrator()
    generator = VideoGenerator(narrator=narrator, image_generator=PatternImages())
    video = generator.generate_sync(script="One. Two.", preset="draft")
    assert narrator.calls == 1

`block_paid_calls` makes paid calls impossible in a test run: a google connection then
refuses to talk to anything but a local server (such as a fake API server the tests start).
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import math
import os
import struct
import wave
from collections.abc import Iterator
from pathlib import Path

import attrs

from avgen._models import AudioAsset, ClipAsset, ImageAsset, Preset, Scene, Segment
from avgen.agents.google._connection import BLOCK_ENV
from avgen.errors import AgentError
from avgen.media._ffmpeg import probe, run_ffmpeg_sync

__all__ = ["PatternClips", "PatternImages", "ToneNarrator", "block_paid_calls"]


def _split(text: str) -> list[str]:
    from avgen.agents.local._script import split_sentences

    return split_sentences(text) or [text]


@attrs.define
class ToneNarrator:
    """A `avgen.agents.Narrator` that "speaks" a quiet tone, ``seconds_per_word`` a word.

    Each sentence gets its own stretch of tone (reported in ``segments``), so captions are
    timed as with a real voice.
    """

    seconds_per_word: float = 0.2
    """Length of each word's tone."""
    rate: int = 16_000
    """Sample rate of the WAV."""
    fail_on: frozenset[str] = attrs.field(factory=frozenset, converter=frozenset)
    """Texts for which `speak` raises `avgen.errors.AgentError`."""
    calls: int = 0
    """How many times `speak` ran."""
    spoken: list[str] = attrs.field(factory=list)
    """The texts spoken, in call order."""
    name: str = "tone"
    """Shown in the manifest."""

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        """Write the tone WAV at ``target``."""
        self.calls += 1
        self.spoken.append(text)
        if text in self.fail_on:
            raise AgentError(f"refusing to speak {text[:30]!r} (fail_on)", self.name)
        segments: list[Segment] = []
        frames = bytearray()
        for sentence in _split(text):
            start = len(frames) // 2
            count = round(max(1, len(sentence.split())) * self.seconds_per_word * self.rate)
            frames += b"".join(struct.pack("<h", int(3000 * math.sin(2 * math.pi * 330 * i
                                                                     / self.rate)))
                               for i in range(count))
            segments.append(Segment(sentence, start / self.rate, (start + count) / self.rate))
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.rate)
            wav.writeframes(bytes(frames))
        return AudioAsset(target, len(frames) / 2 / self.rate, tuple(segments))


@attrs.define
class PatternImages:
    """A `avgen.agents.ImageGenerator` that draws ffmpeg's test pattern, sized for the preset."""

    fail_on: frozenset[int] = attrs.field(factory=frozenset, converter=frozenset)
    """Scene indexes for which `generate` raises `avgen.errors.AgentError`."""
    calls: int = 0
    """How many times `generate` ran."""
    name: str = "pattern-images"
    """Shown in the manifest."""

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Write a PNG at ``target``."""
        self.calls += 1
        if scene.index in self.fail_on:
            raise AgentError(f"no image for scene {scene.index + 1} (fail_on)", self.name)
        size = f"{preset.width}x{preset.height}"
        await asyncio.to_thread(run_ffmpeg_sync, ["-f", "lavfi", "-i", f"testsrc2=s={size}",
                                                  "-frames:v", "1", str(target)])
        return ImageAsset(target, preset.width, preset.height)


@attrs.define
class PatternClips:
    """A `avgen.agents.ClipGenerator` that renders a short test-pattern clip.

    The clip is deliberately landscape and ``seconds_factor`` times the asked length, so the
    composer's fitting and looping are exercised.
    """

    seconds_factor: float = 0.5
    """Clip length as a fraction of the seconds asked for."""
    fail_on: frozenset[int] = attrs.field(factory=frozenset, converter=frozenset)
    """Scene indexes for which `generate` raises `avgen.errors.AgentError`."""
    calls: int = 0
    """How many times `generate` ran."""
    name: str = "pattern-clips"
    """Shown in the manifest."""

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        """Write an MP4 at ``target``."""
        self.calls += 1
        if scene.index in self.fail_on:
            raise AgentError(f"no clip for scene {scene.index + 1} (fail_on)", self.name)
        length = max(0.2, seconds * self.seconds_factor)
        await asyncio.to_thread(run_ffmpeg_sync, [
            "-f", "lavfi", "-i", f"testsrc2=s=320x180:r=25:d={length:.3f}",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(target)])
        info = probe(target)
        return ClipAsset(target, info.duration or length, info.width, info.height, info.fps)


@contextlib.contextmanager
def block_paid_calls() -> Iterator[None]:
    """Inside the block, a `avgen.agents.google.GoogleConnection` refuses any endpoint but a
    local one (``127.0.0.1``, ``localhost``), so no test can reach Google and pay.

    It sets the ``AVGEN_BLOCK_PAID_CALLS`` environment variable (inherited by child
    processes, such as an ``avgen`` command a test runs) and restores it on exit. In pytest,
    use it in an autouse fixture::

        @pytest.fixture(autouse=True)
        def _no_paid_calls():
            with block_paid_calls():
                yield
    """
    old = os.environ.get(BLOCK_ENV)
    os.environ[BLOCK_ENV] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(BLOCK_ENV, None)
        else:
            os.environ[BLOCK_ENV] = old
