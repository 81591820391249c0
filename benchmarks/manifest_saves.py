"""Manifest saves benchmark: what recording a step costs a run as its video grows.

Every finished step of a run (a scene's narration, its picture...) is recorded in the
session's ``metadata/manifest.json`` from the run's event loop. The promise: a save costs
the run the same whatever the number of steps already recorded, so a long video's last
scenes are not held up by its first ones.

For sessions of 100, 300 and 1 000 scenes (a narration and a picture record each, with the
data the run records), the benchmark plays a run on an event loop: for each step, some
Python work of the run's own (about 0.3 ms), then the step's record. It prints the run's
wall time against the same work without any record (the lower bound: a save that cost
nothing), the time per save that adds, and how long the loop waited inside the saves.
Writes are the real ones (synced files, on this machine's disk); the writer thread competes
for the interpreter with the loop, which is why the run's own wall time is what counts.

    python benchmarks/manifest_saves.py          # about ten seconds
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgen._session import OutputRecord, Session
from avgen._steps import StepRecord

WORK = 3000
"""Iterations of the run's own work per step (about 0.3 ms of Python)."""


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


def own_work() -> int:
    total = 0
    for number in range(WORK):
        total += number * number % 7
    return total


async def play(session: Session | None, steps: list[StepRecord]) -> tuple[float, float]:
    """(the run's wall seconds until every record is on disk, seconds inside the saves)."""
    inside = 0.0
    started = time.perf_counter()
    for step in steps:
        own_work()
        if session is not None:
            before = time.perf_counter()
            session.manifest.record(step)
            inside += time.perf_counter() - before
        await asyncio.sleep(0)  # the run's other tasks go on between steps
    if session is not None:
        await session.manifest.aflush()
    return time.perf_counter() - started, inside


def one_size(scenes: int) -> tuple[float, float, float]:
    """(the run's wall seconds with saves, without, seconds inside the saves)."""
    steps = records(scenes)
    alone, _ = asyncio.run(play(None, steps))
    with tempfile.TemporaryDirectory() as tmp:
        session = Session.create(tmp)
        wall, inside = asyncio.run(play(session, steps))
        if len(session.manifest.steps) != len(steps):
            raise SystemExit("a record was lost")
        session.close()
    return wall, alone, inside


def main() -> None:
    per_save = {}
    for scenes in (100, 300, 1000):
        wall, alone, inside = one_size(scenes)
        saves = 2 * scenes
        per_save[scenes] = (wall - alone) / saves
        print(f"{scenes:5d} scenes, {saves} saves: the run {wall:.2f} s against {alone:.2f} s "
              f"without saves (ratio {wall / alone:.2f}); {1e6 * per_save[scenes]:.0f} µs "
              f"added per save, the loop inside a save {1e6 * inside / saves:.0f} µs")
    print(f"time added per save, 1 000 scenes against 100: "
          f"{per_save[1000] / max(per_save[100], 1e-9):.2f}× (a save that put every step "
          "into words would grow about 10×)")


if __name__ == "__main__":
    main()
