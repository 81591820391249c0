"""Loudness benchmark: does the final file land on the target at every length?

Makes one narrated video end to end with the default offline agents (the real Piper
voice), then composes its narrations again into videos of 10 s, 1 min and 14 min (the
long one rendered in parts: a clip every third scene), with and without music, and
measures each final MP4 with ffmpeg's own ``ebur128=peak=true`` meter:

    python benchmarks/loudness.py            # about five minutes on 2 cores
    python benchmarks/loudness.py --quick    # 10 s and 1 min only

Limits: integrated loudness within 0.5 LU of the target, true peak at or under -1 dBTP.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

from offline import SCRIPT  # the benchmarks folder is on the path when run as a script

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from media import measure_loudness as measure

from avgen import PRESETS, Preset, Scene, Soundtrack, VideoGenerator
from avgen._models import AudioAsset, CardVisual, ClipAsset, Segment, Visual
from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.media._graph import part_ranges
from avgen.media._timeline import Timeline

TOLERANCE = 0.5  # LU
CEILING = -1.0  # dBTP
SMALL = Preset("bench", 360, 640, fps=25, crf=30, encoder_preset="ultrafast")


def timeline(wavs: list[Path], clip: Path, seconds: float, track: Soundtrack) -> Timeline:
    """Scenes of Piper speech (the narrations repeated) for about ``seconds``."""
    parts: list[tuple[Scene, AudioAsset | None, Visual]] = []
    total, index = 0.0, 0
    while total < seconds - 5:  # the nearest whole scene
        wav = wavs[index % len(wavs)]
        with wave.open(str(wav)) as reader:
            length = reader.getnframes() / reader.getframerate()
        text = "Words of the scene."
        visual: Visual = (ClipAsset(clip, 2.0, SMALL.width, SMALL.height, SMALL.fps)
                          if index % 3 == 2 else CardVisual(""))
        parts.append((Scene(index, text), AudioAsset(wav, length, (Segment(text, 0, length),)),
                      visual))
        total += length
        index += 1
    return Timeline.build(SMALL, parts, burn_captions=False, soundtrack=track)


def report(label: str, target: float, loud: float, peak: float, extra: str = "") -> bool:
    off = abs(loud - target)
    ok = off <= TOLERANCE and peak <= CEILING
    print(f"{label:<34} I {loud:6.1f} LUFS (target {target:5.1f}; off {off:.1f} LU, "
          f"ratio to limit {off / TOLERANCE:.2f})  true peak {peak:5.1f} dBTP "
          f"(limit {CEILING:.1f}; margin {CEILING - peak:.1f} dB)  "
          f"{'ok' if ok else 'MISSED'}{extra}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s and 1 min only")
    args = parser.parse_args()
    lengths = [10, 60] if args.quick else [10, 60, 14 * 60]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        video = VideoGenerator(output_dir=folder).generate_sync(
            script=SCRIPT, preset=PRESETS["shorts"].resized(360, 640))
        loud, peak = measure(video.path)
        ok &= report(f"end to end, {video.duration:.0f} s, Piper", -14.0, loud, peak,
                     f"  ({time.perf_counter() - started:.1f} s)")
        wavs = sorted((video.session / "audio").glob("scene_*.wav"))
        clip = folder / "clip.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=s={SMALL.width}x{SMALL.height}:r={SMALL.fps}:d=2",
                        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                        str(clip)], check=True)
        music = folder / "music.wav"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        "sine=frequency=220:sample_rate=44100:d=20", "-af", "volume=-6dB",
                        str(music)], check=True)
        for seconds in lengths:
            for target, track in ((-14.0, Soundtrack()),
                                  (-16.0, Soundtrack(loudness=-16.0, music=music))):
                line = timeline(wavs, clip, seconds, track)
                out = folder / f"{seconds}_{target}.mp4"
                started = time.perf_counter()
                asyncio.run(FFmpegComposer().compose(line, out))
                spent = time.perf_counter() - started
                loud, peak = measure(out)
                parts = len(part_ranges(line, FFmpegComposer().max_scenes_per_pass))
                what = f"{line.duration:.0f} s, {'music' if track.music else 'voice'}"
                ok &= report(f"{what}, {parts} part(s)", target, loud, peak,
                             f"  (composed in {spent:.1f} s)")
    print("all within the limits" if ok else "SOME MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
