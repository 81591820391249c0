"""Resuming an interrupted run: only the missing pieces are made again.

The example makes a two-scene video, then simulates a crash by deleting the second scene's
narration WAV and the final MP4 from the session. `VideoGenerator.resume_sync` reads the
session's ``metadata/manifest.json`` and redoes only the steps whose outputs are missing or
fail their checksum. Comparing each step's ``started`` time before and after shows which
steps ran again.

Run it from the repository root::

    python examples/resume.py                           # draft preset, into ./outputs
    python examples/resume.py --preset square --out /tmp/videos
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from avgen import PRESETS, VideoGenerator

# Two paragraphs, so two scenes, each with its own narration step.
SCRIPT = "Bees dance to give directions.\n\nThe dance points toward the flowers."


def step_starts(manifest: Path) -> dict[str, float]:
    """Each recorded step's start time, by step id (``script``, ``scene-000.narration``…)."""
    steps = json.loads(manifest.read_text("utf-8"))["steps"]
    return {step_id: float(step["started"]) for step_id, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs", help="folder for session folders")
    parser.add_argument("--preset", default="draft", choices=sorted(PRESETS))
    args = parser.parse_args()

    generator = VideoGenerator(output_dir=args.out)
    first = generator.generate_sync(script=SCRIPT, preset=args.preset)
    print(f"session: {first.session}")
    before = step_starts(first.manifest)

    # Simulate an interruption: one narration and the final video are gone.
    deleted = [first.session / "audio" / "scene_001.wav", first.path]
    for path in deleted:
        path.unlink()
        print(f"deleted: {path.relative_to(first.session)}")

    video = generator.resume_sync(first.session)  # the same session folder, finished again
    after = step_starts(video.manifest)

    # Expect the deleted narration and "compose" to be redone, while the script and the
    # first scene are reused. The Piper voice is not bit-for-bit repeatable: a re-spoken WAV
    # can be a few milliseconds longer or shorter. That scene's visual is planned from the
    # narration's length, so it can be redone as well (a procedural card is cheap).
    redone = sorted(step for step, started in after.items() if started != before.get(step))
    kept = sorted(step for step in after if step not in redone)
    print(f"redone: {', '.join(redone)}")
    print(f"kept: {', '.join(kept)}")
    print(f"video: {video.path} ({video.duration:.2f} s)")


if __name__ == "__main__":
    main()
