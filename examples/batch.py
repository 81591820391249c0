"""Several videos at once: `asyncio.gather` over `VideoGenerator.generate`.

One generator runs many requests concurrently; each run gets its own session folder
(``OUT/session_YYYYMMDD_HHMMSS_<suffix>/``) with its own assets, manifest and log, so the
runs never touch each other's files.

Run it from the repository root::

    python examples/batch.py                            # draft preset, into ./outputs
    python examples/batch.py --preset youtube --out /tmp/videos
"""

from __future__ import annotations

import argparse
import asyncio

from avgen import PRESETS, Video, VideoGenerator

SCRIPTS = [
    "The Moon drifts away from Earth by about four centimetres a year.",
    "A day on Venus is longer than its year.",
    "Saturn would float in a big enough bathtub.",
]


async def make_all(generator: VideoGenerator, preset: str) -> list[Video]:
    """Start every video at once and wait for all of them (results keep the input order)."""
    return await asyncio.gather(*(generator.generate(script=text, preset=preset)
                                  for text in SCRIPTS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs", help="folder for session folders")
    parser.add_argument("--preset", default="draft", choices=sorted(PRESETS))
    args = parser.parse_args()

    generator = VideoGenerator(output_dir=args.out)
    videos = asyncio.run(make_all(generator, args.preset))

    for number, video in enumerate(videos, start=1):
        print(f"[{number}] session: {video.session}")
        print(f"[{number}] video: {video.path} ({video.duration:.2f} s)")
    sessions = {video.session for video in videos}
    print(f"distinct sessions: {len(sessions)} for {len(videos)} videos")


if __name__ == "__main__":
    main()
