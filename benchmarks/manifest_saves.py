"""Manifest saves benchmark: what a step record costs the event loop as a video grows.

Every finished step of a run (a scene's narration, its picture...) is recorded in the
session's ``metadata/manifest.json`` from the run's event loop. The promise: the loop's
thread spends the same time on a save whatever the number of steps already recorded (the
file is written, and put into words, by a writer thread), so a long video's last scenes
are not held up by its first ones.

For sessions of 100, 300 and 1 000 scenes (a narration and a picture record each, with the
data the run records), the benchmark records every step from an event loop and prints the
loop thread's CPU time per save, against the least any save can cost: putting the final
manifest into words once (``json.dumps``, as written), divided by the saves.

    python benchmarks/manifest_saves.py          # a few seconds
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgen._session import OutputRecord, Session
from avgen._steps import StepRecord


def records(scenes: int) -> list[StepRecord]:
    made = []
    for index in range(scenes):
        for kind, path in (("narration", f"audio/scene_{index:03d}.wav"),
                           ("visual", f"video_clips/scene_{index:03d}.mp4")):
            made.append(StepRecord(
                f"scene-{index:03d}.{kind}", "agent", "ab" * 32, "done",
                outputs=[OutputRecord(path, 123_456, "cd" * 32)], started=1.8e9,
                seconds=2.5, data={"asset": {"kind": "audio", "path": path,
                                             "duration": 3.25, "segments": []}}))
    return made


async def save_all(session: Session, steps: list[StepRecord]) -> tuple[float, float]:
    """(the loop thread's CPU seconds for every save, the wall seconds until on disk)."""
    started, cpu = time.perf_counter(), time.thread_time()
    for step in steps:
        session.manifest.record(step)
        await asyncio.sleep(0)  # the run's other work goes on between steps
    loop_cpu = time.thread_time() - cpu
    await session.manifest.aflush()
    return loop_cpu, time.perf_counter() - started


def one_size(scenes: int) -> tuple[float, float, float]:
    """(loop CPU per save, the lower bound per save, wall seconds)."""
    steps = records(scenes)
    with tempfile.TemporaryDirectory() as tmp:
        session = Session.create(tmp)
        loop_cpu, wall = asyncio.run(save_all(session, steps))
        data = json.loads(session.manifest.path.read_text("utf-8"))
        assert len(data["steps"]) == len(steps), "a record was lost"
        cpu = time.thread_time()
        json.dumps(data, indent=2, sort_keys=True, default=str)
        once = time.thread_time() - cpu
        session.close()
    return loop_cpu / len(steps), once / len(steps), wall


def main() -> None:
    figures = {}
    for scenes in (100, 300, 1000):
        per_save, bound, wall = one_size(scenes)
        figures[scenes] = per_save
        print(f"{scenes:5d} scenes, {2 * scenes} saves: the loop's thread {1e6 * per_save:7.1f} µs "
              f"CPU per save; the final manifest put into words once, per save: "
              f"{1e6 * bound:6.1f} µs (ratio {per_save / bound:.2f}); on disk after "
              f"{wall:.2f} s")
    print(f"loop CPU per save, 1 000 scenes against 100: {figures[1000] / figures[100]:.2f}× "
          "(a save that put every step into words would grow 10×)")


if __name__ == "__main__":
    main()
