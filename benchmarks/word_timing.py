"""Word-timing benchmark: does each word's caption start when the word is heard?

Makes offline videos end to end (the real Piper voice, the default agents), reads each
word's caption time from the video's ``.vtt`` (its timestamp tag, or its cue's start), and
compares it with the finished MP4's own sound: after every pause (a word that follows
``,``, ``.`` or ``;``) the onset of the next word can be measured from the waveform.

    python benchmarks/word_timing.py

Limits: median distance at most 50 ms, worst at most 120 ms.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from media import distances_to_onsets, onsets_after_silence, sound_of, vtt_words

from avgen import VideoGenerator

MEDIAN_LIMIT = 0.050
WORST_LIMIT = 0.120
SCRIPTS = {
    "pauses": "Rivers, lakes, oceans, and bays hold most of the water. Mountains, valleys, "
              "meadows, and dunes shape the land. Bees dance; moths drift; beetles dig. "
              "Morning comes, noon passes, evening falls. Wind blows. Rain drums. Dogs bark.",
    "numbers": "In 1999, Dr. Smith paid $5 for 3 apples. At 7:30, the 2nd bus left. "
               "On May 4, 42 people came; 17 stayed. The U.S. team won 3-1.",
    "story": "# The lighthouse\n\nEvery night, the keeper climbed the stairs. He lit the "
             "lamp, wound the clock, and watched the sea.\n\nOne winter, a storm came. The "
             "waves rose; the wind howled; the glass shook. He stayed, and the light held.",
}


def main() -> int:
    """Measure every script; returns 0 when both limits hold."""
    every: list[float] = []
    with tempfile.TemporaryDirectory(prefix="avgen-bench-") as work:
        generator = VideoGenerator(output_dir=Path(work))
        for name, script in SCRIPTS.items():
            video = generator.generate_sync(script=script, preset="draft")
            onsets = onsets_after_silence(sound_of(video.path, Path(work) / f"{name}.wav"))
            distances = distances_to_onsets(vtt_words(video.captions["vtt"]), onsets)
            every += distances
            print(f"{name:8} {len(distances):3} pauses  median {statistics.median(distances):.3f}"
                  f" s  worst {max(distances):.3f} s")
    median, worst = statistics.median(every), max(every)
    print(f"all      {len(every):3} pauses  median {median:.3f} s "
          f"({median / MEDIAN_LIMIT:.2f} of the {MEDIAN_LIMIT * 1000:.0f} ms limit)  "
          f"worst {worst:.3f} s ({worst / WORST_LIMIT:.2f} of the "
          f"{WORST_LIMIT * 1000:.0f} ms limit)")
    return 0 if median <= MEDIAN_LIMIT and worst <= WORST_LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
