"""Run report benchmark: the HTML page of a 60-scene session, its time and size.

Makes a real 60-scene session offline (a tone narrator, test-pattern pictures with every
third scene falling to a card, the draft preset, a monitor sampling), then writes its report
several times and prints the time and the file's size against the limits (≤ 1 s, ≤ 5 MB):

- cold: the first report of the video, everything included (reading the manifest, one
  ffmpeg process decoding the final video for the 60 thumbnails, the charts, the page);
- warm: a later report of the same video, whose thumbnails are kept in
  ``metadata/thumbnails/`` (everything else is done again).

Both are checked against the limit (the exit status is 1 if either run was over). The cold
figure grows with the video's length and resolution: it is one decode of the video (up to
its last scene's middle); this session's video is 120 s at 360×640.

    python benchmarks/report.py                # about 30 s on 2 cores (most of it the video)
    python benchmarks/report.py --scenes 120   # a larger session
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgen import VideoGenerator, write_report
from avgen.resilience import Monitor
from avgen.testing import PatternImages, ToneNarrator

TIME_LIMIT = 1.0
SIZE_LIMIT = 5 * 1024 * 1024


def make_session(folder: Path, scenes: int) -> Path:
    script = "\n\n".join(f"Scene {i} tells one short fact about the water cycle."
                         for i in range(scenes))
    monitor = Monitor(interval=0.1)
    generator = VideoGenerator(narrator=ToneNarrator(),
                               image_generator=PatternImages(fail_on=set(range(0, scenes, 3))),
                               output_dir=folder, monitor=monitor)
    with monitor:
        video = generator.generate_sync(script=script, preset="draft")
    return video.session


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="avgen-report-bench-") as folder:
        started = time.perf_counter()
        session = make_session(Path(folder), args.scenes)
        print(f"session: {args.scenes} scenes made in {time.perf_counter() - started:.1f} s")
        cold, times = [], []
        for _ in range(args.runs):
            shutil.rmtree(session / "metadata" / "thumbnails", ignore_errors=True)
            started = time.perf_counter()
            write_report(session)
            cold.append(time.perf_counter() - started)
        for _ in range(args.runs):
            started = time.perf_counter()
            page = write_report(session)
            times.append(time.perf_counter() - started)
        size = page.stat().st_size
        text = page.read_text("utf-8")
        thumbnails = text.count("data:image/jpeg;base64,")
    median, worst = statistics.median(times), max(times)
    print(f"cold (thumbnails decoded): median {statistics.median(cold):.3f} s, "
          f"slowest {max(cold):.3f} s of {args.runs} runs (limit {TIME_LIMIT:.1f} s): "
          f"{'ok' if max(cold) <= TIME_LIMIT else 'OVER'}")
    print(f"warm: median {median:.3f} s, slowest {worst:.3f} s of {args.runs} runs "
          f"(limit {TIME_LIMIT:.1f} s): {'ok' if worst <= TIME_LIMIT else 'OVER'}")
    print(f"size: {size / 1024:.0f} KiB, {thumbnails} thumbnails "
          f"(limit {SIZE_LIMIT / 2**20:.0f} MiB): {'ok' if size <= SIZE_LIMIT else 'OVER'}")
    return 0 if max(worst, *cold) <= TIME_LIMIT and size <= SIZE_LIMIT else 1


if __name__ == "__main__":
    raise SystemExit(main())
