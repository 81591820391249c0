"""Narration memory benchmark: does Piper's memory stay flat however long a sentence is?

Narrates 250, 2 000 and 20 000 words without a single punctuation mark (one sentence) with
the default offline narrator (`PiperNarrator`, the bundled voice), each in a fresh process,
and prints that process's peak memory (its resident-set high-water mark, as the system
counts it when the process ends) beside the narration's length.

    python benchmarks/narration_memory.py                 # 250, 2 000 and 20 000 words
    python benchmarks/narration_memory.py 250 2000        # chosen sizes

Limits: every peak under 1 GB; and flat: the most words (80 times the fewest, by default)
at most 1.5 times the peak of the fewest. The ONNX runtime's memory pool grows to fit the
pieces it speaks and then stays, at one of two sizes from run to run (about 500 or 680 MB
in all) whatever the length; spoken whole, the same sentence needed 1.9 GB at 250 words.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

LIMIT_BYTES = 1_000_000_000
FLATNESS = 1.5
WORDS = ("river", "stone", "meadow", "seven", "lantern", "harbour", "copper", "willow")

# the narration, in a process of its own: its peak is then the narration's alone
CHILD = """
import asyncio, sys, tempfile
from pathlib import Path
from avgen.agents.local import PiperNarrator

count, words = int(sys.argv[1]), sys.argv[2].split(",")
text = " ".join(words[n % len(words)] for n in range(count))
with tempfile.TemporaryDirectory(prefix="avgen-bench-") as work:
    audio = asyncio.run(PiperNarrator().speak(text, Path(work) / "narration.wav"))
    print(audio.duration, len(audio.words), audio.words_estimated)
"""


def narrate(count: int) -> tuple[int, float, float, int]:
    """Peak memory in bytes, wall seconds, audio seconds and timed words for ``count``."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(count), ",".join(WORDS)],
                             stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    assert child.stdout is not None
    output = child.stdout.read()
    child.stdout.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{count} words: the narration failed ({child.returncode})")
    duration, timed, _estimated = output.split()
    return usage.ru_maxrss * 1024, seconds, float(duration), int(timed)  # Linux: KiB


def main(argv: list[str]) -> int:
    """Measure each size; returns 0 when the peaks are under the limit and flat."""
    sizes = [int(arg) for arg in argv] or [250, 2_000, 20_000]
    peaks = []
    for count in sizes:
        peak, seconds, duration, timed = narrate(count)
        peaks.append(peak)
        print(f"{count:>6} words  {duration:8.1f} s of narration  {timed:>6} words timed  "
              f"peak {peak / 1e6:6.0f} MB ({peak / LIMIT_BYTES:.2f} of 1 GB)  "
              f"{seconds:6.1f} s wall")
    flat = peaks[-1] / peaks[0]
    if len(peaks) > 1:
        print(f"peak at {sizes[-1]} words / peak at {sizes[0]} words: {flat:.2f} "
              f"(limit {FLATNESS})")
    return 0 if max(peaks) < LIMIT_BYTES and flat <= FLATNESS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
