"""The offline quick start: a short script in, a narrated, captioned MP4 out.

Everything runs locally: the script is split into scenes, the Piper voice reads it, each
scene gets a procedural card, and ffmpeg composes the video in one pass.

Run it from the repository root::

    python examples/quickstart.py                       # draft preset, into ./outputs
    python examples/quickstart.py --preset shorts --out /tmp/videos
"""

from __future__ import annotations

import argparse

from avgen import PRESETS, RunEvent, VideoGenerator

SCRIPT = "Octopuses have three hearts. Two pump blood through the gills, one through the body."


def show_progress(event: RunEvent) -> None:
    """Print one line per event; the composer's many fine-grained ticks are skipped."""
    if event.kind == "compose" and event.message == "composing":
        return
    print(f"[{event.progress:4.0%}] {event.kind}: {event.message}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs", help="folder for session folders")
    parser.add_argument("--preset", default="draft", choices=sorted(PRESETS))
    args = parser.parse_args()

    # The default agents are the offline ones ("local"); no API keys, no downloads.
    generator = VideoGenerator(output_dir=args.out)
    generator.subscribe(show_progress)  # or VideoGenerator(on_event=show_progress)

    # generate_sync works in plain scripts and in notebook cells alike.
    video = generator.generate_sync(script=SCRIPT, preset=args.preset)

    print(f"video: {video.path}")
    print(f"duration: {video.duration:.2f} s ({video.width}x{video.height})")
    for kind, path in video.captions.items():  # srt, vtt and ass sidecars
        print(f"captions {kind}: {path}")
    # One tier per scene: "clip", "image" or "card" (the offline agents draw cards).
    print(f"tiers: {', '.join(video.tiers)}")


if __name__ == "__main__":
    main()
