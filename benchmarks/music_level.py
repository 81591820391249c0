"""Music level benchmark: does the music sit where it was asked under the voice, whatever
the file's own loudness?

Makes a narration with the default offline voice (Piper), then composes it with music files
from -40 to -8 LUFS (made with ffmpeg: three swelling tones, and low-passed pink noise, each
brought to its level and checked with ffmpeg's R128 meter) at the default
``music_volume`` (18 dB below the narration), and a few at 12 and 24:

    python benchmarks/music_level.py            # under a minute on 2 cores
    python benchmarks/music_level.py --quick    # the tones only

Method: the timeline is the narrations twice over (about 35 s of speech), with two silent
scenes of 4 s among them, so the final MP4 holds the music alone there. Everything is
measured in that final file with ffmpeg's ``ebur128`` meter: the narration's loudness over
the spoken scenes (the ducked music under it is some 25 dB down and adds nothing
measurable), the music's over the silent scenes from 1 s in (the ducking has let go: its
release is 0.4 s) to just before the next speech. The music's level below the voice is
their difference; the limit is ±1.5 LU of the level asked. The mix's own loudness
(integrated, whole file) is printed against its target (-14 LUFS) too.

A ``music_volume`` of about 10 to 12 puts the stretches of music alone at EBU R128's
relative gate (10 LU under the mix), where whether they count in the mix's loudness flips
with a fraction of a decibel: the music may then land a loudness unit or so off.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from media import loudness_between, make_music
from media import measure_loudness as measure

from avgen import Preset, Scene, Soundtrack, VideoGenerator
from avgen._models import AudioAsset, CardVisual, Segment
from avgen.media._composer import FFmpegComposer
from avgen.media._timeline import Timeline

LIMIT = 1.5  # LU off the level asked
SMALL = Preset("bench", 192, 336, fps=12, crf=30, encoder_preset="ultrafast")
SCRIPT = ("The lighthouse keeper climbed the stairs every evening at dusk.\n\n"
          "Ships far out at sea watched for the turning beam.\n\n"
          "On foggy nights a horn sounded every half minute.\n\n"
          "Today most lights run on their own, and the keepers are gone.")
GAP = 4.0  # seconds of music alone, twice


def timeline(wavs: list[Path], track: Soundtrack) -> Timeline:
    """The narrations twice over, with a silent scene after the third and the sixth."""
    parts: list[tuple[Scene, AudioAsset | None, CardVisual]] = []
    for number, wav in enumerate([*wavs, *wavs]):
        with wave.open(str(wav)) as reader:
            length = reader.getnframes() / reader.getframerate()
        audio = AudioAsset(wav, length, (Segment("Words.", 0.0, length),))
        parts.append((Scene(len(parts), "Words."), audio, CardVisual("")))
        if number in (2, 5):
            parts.append((Scene(len(parts), "Words."), None, CardVisual("")))
    return Timeline.build(SMALL, parts, burn_captions=False, soundtrack=track,
                          silent_seconds=GAP)


def below(video: Path, line: Timeline) -> tuple[float, float, float]:
    """The narration's loudness, the music's alone, and how far the music sits below."""
    speech = [(s.start, s.start + s.duration) for s in line.scenes if s.narration]
    gaps = [(s.start + 1.0, s.start + s.duration - 0.2) for s in line.scenes
            if s.narration is None]
    voice, music = loudness_between(video, speech), loudness_between(video, gaps)
    return voice, music, voice - music


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tones only")
    args = parser.parse_args()
    kinds = ["chords"] if args.quick else ["chords", "noise"]
    cases = [(kind, level, 18.0) for kind in kinds for level in (-40, -32, -24, -16, -8)]
    cases += [("chords", level, volume) for level in (-40, -8) for volume in (12.0, 24.0)]
    ok, worst = True, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = VideoGenerator(output_dir=folder).generate_sync(script=SCRIPT, preset=SMALL)
        wavs = sorted((video.session / "audio").glob("scene_*.wav"))
        print(f"narration: {len(wavs)} Piper scenes twice, music alone twice {GAP:.0f} s")
        for kind, level, volume in cases:
            music = make_music(folder / f"{kind}{level}.wav", level, 30.0, kind)
            file_level = loudness_between(music, [(0.0, 30.0)])
            track = Soundtrack(music=music, music_volume=volume)
            line = timeline(wavs, track)
            out = folder / f"{kind}{level}_{volume:.0f}.mp4"
            started = time.perf_counter()
            asyncio.run(FFmpegComposer().compose(line, out))
            spent = time.perf_counter() - started
            voice, bed, measured = below(out, line)
            mix, peak = measure(out)
            off = abs(measured - volume)
            worst = max(worst, off / LIMIT)
            good = off <= LIMIT
            ok &= good
            print(f"{kind:<6} file {file_level:6.1f} LUFS  asked {volume:4.1f} dB below  "
                  f"voice {voice:6.1f}  music {bed:6.1f}  -> {measured:5.1f} dB below "
                  f"(off {off:.1f} LU, ratio to limit {off / LIMIT:.2f})  mix {mix:6.1f} LUFS "
                  f"(target {track.loudness:.0f}), true peak {peak:5.1f} dBTP  "
                  f"({spent:.1f} s)  {'ok' if good else 'MISSED'}")
    print(f"worst ratio to the ±{LIMIT} LU limit: {worst:.2f}")
    print("all within the limit" if ok else "SOME MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
