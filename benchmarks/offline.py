"""Offline pipeline benchmark: a 60 s, 720×1280, narrated, captioned video with no network.

Prints wall time, real-time factor (wall time / video length) and peak memory, the time of
each stage, and the composer against its limit: the very same ffmpeg command run by hand.

    python benchmarks/offline.py            # target: real-time factor <= 0.5
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from avgen import PRESETS, VideoGenerator
from avgen._models import CardVisual, Scene, Script, asset_from_dict
from avgen.media._ffmpeg import ffmpeg_exe, probe
from avgen.media._fonts import bundled_fonts_dir
from avgen.media._graph import compile_graph
from avgen.media._timeline import Timeline

SCRIPT = """# Lighthouses

For centuries, lighthouses have guided sailors home. Their beams cut through fog and storm,
marking rocks and harbours that would otherwise be invisible in the dark.

The first famous lighthouse stood in Alexandria, in ancient Egypt. It was one of the seven
wonders of the world, and its fire could be seen from miles out at sea.

Later towers used oil lamps and polished mirrors. Then, in the nineteenth century, the
Fresnel lens changed everything. Its rings of glass bent the light into a single, powerful
beam.

Every lighthouse has its own signature. Some flash twice, some glow steadily, and some
rotate slowly, so a sailor can tell exactly where they are.

Keepers once lived in the towers all year round. They trimmed the wicks, wound the clockwork
that turned the lens, and kept logbooks of every ship and every storm that passed.

Today most lighthouses run automatically, and satellites do much of the work. Yet on a dark
night, a turning beam on the horizon still means the same thing it always has: safety is
near.
"""

TARGET_RTF = 0.5


class PeakMemory:
    """Samples the resident memory of this process and of its children (ffmpeg) at 50 Hz.

    (``ru_maxrss`` of children is no use here: on Linux it counts the parent's pages a child
    held between fork and exec.)
    """

    def __init__(self) -> None:
        self.own = self.children = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.02):
            own = me.memory_info().rss
            kids = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    kids = max(kids, child.memory_info().rss)
            self.own, self.children = max(self.own, own), max(self.children, kids)
            self.total = max(self.total, own + kids)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def raw_ffmpeg_seconds(session: Path) -> float:
    """Time the composer's own ffmpeg command, run by hand: the limit for composition."""
    manifest = json.loads((session / "metadata/manifest.json").read_text())
    script = Script.from_dict(json.loads((session / "scripts/script.json").read_text()))
    steps = manifest["steps"]
    parts = []
    for scene in script.scenes:
        audio = asset_from_dict(steps[f"scene-{scene.index:03d}.narration"]["data"]["asset"],
                                session)
        visual = asset_from_dict(steps[f"scene-{scene.index:03d}.visual"]["data"]["asset"],
                                 session)
        assert isinstance(visual, CardVisual) and isinstance(scene, Scene)
        parts.append((scene, audio, visual))
    from avgen._models import VideoRequest

    request = VideoRequest.from_dict(manifest["request"])
    timeline = Timeline.build(request.preset, parts)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        ass = Path(tmp) / "captions.ass"
        ass.write_text(timeline.ass_script(), encoding="utf-8")
        args = compile_graph(timeline, Path(tmp) / "raw.mp4", ass=ass,
                             fonts_dir=bundled_fonts_dir())
        started = time.perf_counter()
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error",
                        *args], check=True)
        return time.perf_counter() - started


def main() -> int:
    preset = PRESETS["shorts"].resized(720, 1280)
    with tempfile.TemporaryDirectory() as out:
        generator = VideoGenerator(output_dir=out)
        with PeakMemory() as memory:
            started = time.perf_counter()
            video = generator.generate_sync(script=SCRIPT, preset=preset)
            wall = time.perf_counter() - started
        steps = json.loads(video.manifest.read_text())["steps"]
        narration = sum(s["seconds"] for k, s in steps.items() if k.endswith("narration"))
        compose = steps["compose"]["seconds"]
        raw = raw_ffmpeg_seconds(video.session)
        info = probe(video.path)
    rtf = wall / video.duration
    print(f"video            {video.duration:6.1f} s  {info.width}x{info.height} "
          f"{len(video.tiers)} scenes")
    print(f"wall time        {wall:6.1f} s")
    print(f"real-time factor {rtf:6.2f}   (target <= {TARGET_RTF}: "
          f"{'met' if rtf <= TARGET_RTF else 'MISSED'}; ratio to target {rtf / TARGET_RTF:.2f})")
    print(f"  narration      {narration:6.1f} s  (Piper, summed over scenes)")
    print(f"  composition    {compose:6.1f} s  (loudness pass + encode)")
    print(f"  raw ffmpeg     {raw:6.1f} s  (same command by hand; composer ratio "
          f"{compose / raw:.2f})")
    mb = 1024 * 1024
    print(f"peak memory      {memory.total / mb:6.0f} MB in all: {memory.own / mb:.0f} MB python "
          f"(Piper voice loaded), {memory.children / mb:.0f} MB ffmpeg")
    return 0 if rtf <= TARGET_RTF else 1


if __name__ == "__main__":
    sys.exit(main())
