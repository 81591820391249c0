"""Composition benchmark: avgen's composer against a hand-written ffmpeg command and moviepy.

Three cases on the same generated inputs, each run three ways in one process:

(a) eight 5 s 1280×720 clips with narration and burned captions (one encode);
(b) the same clips already in the output format, joined with nothing drawn (stream copy);
(c) a long video (10 minutes by default) — plus the same at 1 minute, to show that memory
    stays flat in the video's length.

Prints wall times, the ratio avgen / raw ffmpeg (targets: ≤ 1.15 on (a) and (c), ≤ 2 on
(b)), the ratio avgen / its own ffmpeg commands run by hand (the same filter graph and
encoder settings in one process, or for (b) its sound and join commands; target ≤ 1.10 on
every case: what the composer adds — probes, measuring passes, parts — costs at most a
tenth) and peak memory of the whole process tree (target on (c): ≤ 400 MB).

    python benchmarks/compose.py                 # all cases (about 15 minutes on 2 cores)
    python benchmarks/compose.py --minutes 2     # a shorter long case
    python benchmarks/compose.py --no-moviepy    # skip the slow moviepy runs
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import struct
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import psutil

from avgen import Preset, Scene
from avgen._models import AudioAsset, ClipAsset, Segment
from avgen.media._captions import to_srt
from avgen.media._composer import FFmpegComposer, burn_scripts, fit_still_texts
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.media._fonts import bundled_fonts_dir
from avgen.media._graph import compile_graph, compile_mux, compile_sound, graph_threads
from avgen.media._timeline import Timeline

HD = Preset("hd", 1280, 720, fps=30, crf=23, encoder_preset="veryfast", caption_margin=0.08)
SENTENCE = "The quick brown fox jumps over the lazy dog while the camera slowly pans"


class Peak:
    """Peak resident memory of this process plus all its children, sampled at 50 Hz."""

    def __init__(self) -> None:
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.02):
            total = 0
            for proc in (me, *me.children(recursive=True)):
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.bytes = max(self.bytes, total)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure(work: Callable[[], object]) -> tuple[float, float]:
    """(seconds, peak MB) of ``work``."""
    with Peak() as peak:
        started = time.perf_counter()
        work()
        seconds = time.perf_counter() - started
    return seconds, peak.bytes / 2**20


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args],
                   check=True)


def make_clip(path: Path, seconds: float, hue: int) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=1280x720:r=30:d={seconds}",
           "-vf", f"hue=h={hue}", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
           "-pix_fmt", "yuv420p", "-g", "60", str(path))
    return path


def make_voice(path: Path, seconds: float, freq: float) -> Path:
    rate = 24_000
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        frames = bytearray()
        for i in range(round(seconds * rate)):
            syllable = 0.5 + 0.5 * math.sin(2 * math.pi * 3 * i / rate)  # speech-like bursts
            frames += struct.pack("<h", int(9000 * syllable * math.sin(2 * math.pi * freq * i
                                                                         / rate)))
        wav.writeframes(bytes(frames))
    return path


def timeline_for(clips: list[Path], voices: list[Path] | None, seconds: float,
                 captions: bool) -> Timeline:
    parts = []
    for i, clip in enumerate(clips):
        audio = None
        if voices is not None:
            audio = AudioAsset(voices[i % len(voices)], seconds,
                               (Segment(SENTENCE + ".", 0.0, seconds),))
        parts.append((Scene(i, SENTENCE + "."), audio,
                      ClipAsset(clip, seconds, 1280, 720, 30.0)))
    return Timeline.build(HD, parts, burn_captions=captions)


def run_avgen(timeline: Timeline, out: Path) -> None:
    asyncio.run(FFmpegComposer().compose(timeline, out))


def raw_encode(timeline: Timeline, out: Path, srt: Path) -> None:
    """What a person writes by hand for the same job: concat, subtitles, loudnorm, one encode."""
    n = len(timeline.scenes)
    srt.write_text(to_srt(timeline.cues), encoding="utf-8")
    inputs: list[str] = []
    for scene in timeline.scenes:
        inputs += ["-i", str(scene.visual.path)]  # type: ignore[union-attr]
    for scene in timeline.scenes:
        assert scene.narration is not None
        inputs += ["-i", str(scene.narration.path)]
    video = "".join(f"[{i}:v]" for i in range(n)) + f"concat=n={n}:v=1:a=0,"
    video += f"subtitles={srt}:fontsdir={Path(__file__).parent.parent / 'avgen/media/fonts'}[v]"
    audio = "".join(f"[{n + i}:a]" for i in range(n)) + f"concat=n={n}:v=0:a=1,"
    audio += "loudnorm=I=-14:TP=-1.5:LRA=11,aresample=48000[a]"
    ffmpeg(*inputs, "-filter_complex", f"{video};{audio}", "-map", "[v]", "-map", "[a]",
           "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "160k", "-movflags", "+faststart", str(out))


def own_commands(timeline: Timeline, out: Path, tmp: Path, *, copy: bool = False) -> None:
    """The composer's own ffmpeg work without the composer: its whole-timeline command (the
    same filter graph and encoder settings), or for a stream-copy plan its two commands
    (the sound, then the join)."""
    if copy:
        sound = tmp / "own-sound.m4a"
        listing = tmp / "own.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(
            f"file '{scene.visual.path}'\n" for scene in timeline.scenes))  # type: ignore[union-attr]
        ffmpeg(*compile_sound(timeline, sound))
        ffmpeg(*compile_mux(listing, sound, out))
        return
    def write(suffix: str, text: str) -> Path:
        path = tmp / f"own{len(list(tmp.glob('own*.ass')))}{suffix}"
        path.write_text(text, encoding="utf-8")
        return path

    ass, stills = burn_scripts(timeline, {}, write)  # as the composer does
    stills = asyncio.run(fit_still_texts(timeline, stills, bundled_fonts_dir()))
    ffmpeg(*graph_threads(os.cpu_count()),
           *compile_graph(timeline, out, ass=ass, fonts_dir=bundled_fonts_dir(), stills=stills))


def raw_copy(clips: list[Path], out: Path, listing: Path) -> None:
    listing.write_text("".join(f"file '{c}'\n" for c in clips))
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-f", "lavfi", "-i",
           "anullsrc=r=48000:cl=stereo", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
           "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(out))


def run_moviepy(clips: list[Path], voices: list[Path] | None, out: Path) -> None:
    from moviepy import AudioFileClip, VideoFileClip, concatenate_audioclips, concatenate_videoclips

    videos = [VideoFileClip(str(c), audio=False) for c in clips]
    joined = concatenate_videoclips(videos)
    sounds = []
    if voices is not None:
        sounds = [AudioFileClip(str(voices[i % len(voices)])) for i in range(len(clips))]
        joined = joined.with_audio(concatenate_audioclips(sounds))
    joined.write_videofile(str(out), codec="libx264", preset="veryfast", fps=30,
                           ffmpeg_params=["-crf", "23", "-pix_fmt", "yuv420p"],
                           audio_codec="aac", logger=None)
    for clip in (*videos, *sounds):
        clip.close()


def row(label: str, seconds: float, mb: float, raw: float | None,
        own: float | None = None) -> str:
    ratio = f"{seconds / raw:5.2f}×" if raw else "     "
    mine = f"   {seconds / own:5.2f}× its own commands" if own else ""
    return f"  {label:<16} {seconds:7.2f} s  {ratio} raw{mine}   peak {mb:6.0f} MB"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--no-moviepy", action="store_true")
    args = parser.parse_args()
    verdicts: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="avgen-bench-") as tmp_name:
        tmp = Path(tmp_name)
        clips = [make_clip(tmp / f"clip{i}.mp4", 5.0, i * 40) for i in range(8)]
        voices = [make_voice(tmp / f"voice{i}.wav", 5.0, 180 + 20 * i) for i in range(8)]

        print("(a) eight 5 s 1280x720 clips, narration, burned captions")
        timeline = timeline_for(clips, voices, 5.0, captions=True)
        raw_s, raw_mb = measure(lambda: raw_encode(timeline, tmp / "a-raw.mp4", tmp / "a.srt"))
        own_s, own_mb = measure(lambda: own_commands(timeline, tmp / "a-own.mp4", tmp))
        ours_s, ours_mb = measure(lambda: run_avgen(timeline, tmp / "a-avgen.mp4"))
        print(row("raw ffmpeg", raw_s, raw_mb, None))
        print(row("own commands", own_s, own_mb, raw_s))
        print(row("avgen", ours_s, ours_mb, raw_s, own_s) + "   (targets ≤ 1.15× raw, "
              "≤ 1.10× its own)")
        verdicts += [ours_s / raw_s <= 1.15, ours_s / own_s <= 1.10]
        if not args.no_moviepy:
            mp_s, mp_mb = measure(lambda: run_moviepy(clips, voices, tmp / "a-moviepy.mp4"))
            print(row("moviepy", mp_s, mp_mb, raw_s) + "   (no captions: it does less)")

        print("(b) the same clips already in the output format: stream copy")
        timeline = timeline_for(clips, None, 5.0, captions=False)
        raw_s, raw_mb = measure(lambda: raw_copy(clips, tmp / "b-raw.mp4", tmp / "b.txt"))
        own_s, own_mb = measure(lambda: own_commands(timeline, tmp / "b-own.mp4", tmp,
                                                     copy=True))
        ours_s, ours_mb = measure(lambda: run_avgen(timeline, tmp / "b-avgen.mp4"))
        print(row("raw ffmpeg", raw_s, raw_mb, None))
        print(row("own commands", own_s, own_mb, raw_s))
        print(row("avgen", ours_s, ours_mb, raw_s, own_s) + "   (targets ≤ 2× raw, "
              "≤ 1.10× its own)")
        verdicts += [ours_s / raw_s <= 2.0, ours_s / own_s <= 1.10]
        if not args.no_moviepy:
            mp_s, mp_mb = measure(lambda: run_moviepy(clips, None, tmp / "b-moviepy.mp4"))
            print(row("moviepy", mp_s, mp_mb, raw_s) + "   (re-encodes: it cannot copy)")

        long_clip = make_clip(tmp / "long.mp4", 30.0, 90)
        long_voice = make_voice(tmp / "long.wav", 30.0, 200)
        peaks = {}
        for minutes in (1.0, args.minutes):
            count = max(1, round(minutes * 2))
            label = f"(c) {count * 30 / 60:g} min: {count} scenes of 30 s, narration, captions"
            print(label)
            timeline = timeline_for([long_clip] * count, [long_voice], 30.0, captions=True)
            raw_s, raw_mb = measure(lambda t=timeline: raw_encode(t, tmp / "c-raw.mp4",
                                                                  tmp / "c.srt"))
            own_s, own_mb = measure(lambda t=timeline: own_commands(t, tmp / "c-own.mp4", tmp))
            ours_s, ours_mb = measure(lambda t=timeline: run_avgen(t, tmp / "c-avgen.mp4"))
            print(row("raw ffmpeg", raw_s, raw_mb, None))
            print(row("own commands", own_s, own_mb, raw_s))
            print(row("avgen", ours_s, ours_mb, raw_s, own_s) + "   (targets ≤ 1.15× raw, "
                  "≤ 1.10× its own, ≤ 400 MB)")
            peaks[minutes] = ours_mb
            verdicts.append(ours_s / own_s <= 1.10)
            if minutes == args.minutes:
                verdicts += [ours_s / raw_s <= 1.15, ours_mb <= 400]
                if not args.no_moviepy:
                    mp_s, mp_mb = measure(lambda c=count: run_moviepy(
                        [long_clip] * c, [long_voice], tmp / "c-moviepy.mp4"))
                    print(row("moviepy", mp_s, mp_mb, raw_s))
        ratio = peaks[args.minutes] / peaks[1.0]
        print(f"memory, {args.minutes:g} min against 1 min: {ratio:.2f}× (flat ≈ 1)")
        verdicts.append(ratio <= 1.25)
    print("all targets met" if all(verdicts) else "SOME TARGETS MISSED")
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
