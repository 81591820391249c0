"""Your own agents: a sync script writer and an image generator, no avgen base classes.

An agent is any object with the right method. ``FactsWriter.write`` is a plain (blocking)
method, so avgen runs it in a worker thread; ``TitleCards.generate`` is ``async``. Both are
passed to `VideoGenerator`, which keeps the offline Piper narrator and composer.

Run it from the repository root::

    python examples/custom_agent.py                     # draft preset, into ./outputs
    python examples/custom_agent.py --preset square --out /tmp/videos
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import avgen
from avgen import PRESETS, ImageAsset, Preset, Scene, Script, VideoGenerator, VideoRequest
from avgen.media import run_ffmpeg_sync

FACTS = [
    "Honey never spoils.",
    "Bananas are berries, but strawberries are not.",
]

# The bold DejaVu font ships inside the avgen package, so drawtext needs no system fonts.
FONT = Path(avgen.__file__).parent / "media" / "fonts" / "DejaVuSans-Bold.ttf"
COLORS = ["0x1d4ed8", "0x0f766e", "0x9d174d", "0x7c2d12"]


class FactsWriter:
    """A `avgen.agents.ScriptWriter`: one scene per fact, numbered titles, no LLM."""

    name = "facts-writer"  # shown in the manifest and events

    def __init__(self, facts: list[str]) -> None:
        self.facts = facts

    def write(self, request: VideoRequest) -> Script:  # plain def: run in a thread
        scenes = [Scene(index=i, narration=fact, visual=f"an illustration of: {fact}",
                        title=f"Fact {i + 1}")
                  for i, fact in enumerate(self.facts)]
        return Script(title=request.topic or "Facts", scenes=scenes)


class TitleCards:
    """A `avgen.agents.ImageGenerator`: a solid colour with the scene title, sized to the preset."""

    name = "title-cards"
    max_concurrency = 2  # at most two ffmpeg processes at once

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        color = COLORS[scene.index % len(COLORS)]
        # Keep the text filter-safe: letters, digits and spaces only.
        text = "".join(c for c in scene.title if c.isalnum() or c == " ") or "Scene"
        size = max(16, preset.width // 8)
        drawtext = (f"drawtext=fontfile='{FONT.as_posix()}':text='{text}':fontcolor=white:"
                    f"fontsize={size}:x=(w-text_w)/2:y=(h-text_h)/2")
        args = ["-f", "lavfi", "-i", f"color=c={color}:s={preset.width}x{preset.height}",
                "-vf", drawtext, "-frames:v", "1", str(target)]
        # run_ffmpeg_sync blocks, so keep the event loop free by running it in a thread.
        await asyncio.to_thread(run_ffmpeg_sync, args, what="title card")
        # Write the file at `target` (the generator moves it into place) and describe it.
        return ImageAsset(target, preset.width, preset.height)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs", help="folder for session folders")
    parser.add_argument("--preset", default="draft", choices=sorted(PRESETS))
    args = parser.parse_args()

    generator = VideoGenerator(script_writer=FactsWriter(FACTS), image_generator=TitleCards(),
                               output_dir=args.out)
    print(f"agents: {generator.agents.names()}")
    video = generator.generate_sync(topic="Surprising food facts", preset=args.preset)

    print(f"video: {video.path}")
    print(f"duration: {video.duration:.2f} s ({video.width}x{video.height})")
    # "image" for every scene our TitleCards drew; "card" would mean it failed and the
    # composer's procedural card stood in (the manifest records why).
    print(f"tiers: {', '.join(video.tiers)}")


if __name__ == "__main__":
    main()
