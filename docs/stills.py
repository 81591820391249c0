"""Make the stills shown in README.md and the docs from real renders.

Usage::

    python docs/stills.py            # docs/images/caption-<style>.png, cards-after.png

For each style in `avgen.CAPTION_STYLES`, a short video is made with the offline agents (the
Piper voice, the procedural pictures) and one frame is taken from it, mid-caption, with
ffmpeg; then two procedural cards of one video are put side by side
(``cards-before.png`` is the same script rendered by avgen before cards were designed).
Importing this file does nothing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from avgen import CAPTION_STYLES, VideoGenerator
from avgen.media._ffmpeg import ffmpeg_exe

__all__ = ["CARDS_SCRIPT", "SCRIPT", "cards", "main", "still"]

IMAGES = Path(__file__).resolve().parent / "images"
SCRIPT = "# Where rain goes\n\nRivers carry the water back to the sea, and the sun lifts it again."
"""The narration of every still."""
_AT = {"karaoke": 0.55, "pop": 0.8}
"""Where in its first caption each style's still is taken (default: the middle)."""


def _first_cue(ass: str) -> tuple[float, float]:
    stamp = r"(\d+):(\d\d):(\d\d\.\d\d)"
    match = re.search(rf"^Dialogue: \d+,{stamp},{stamp},Caption", ass, re.MULTILINE)
    if match is None:
        raise RuntimeError("the video has no caption")
    h1, m1, s1, h2, m2, s2 = match.groups()
    return (int(h1) * 3600 + int(m1) * 60 + float(s1),
            int(h2) * 3600 + int(m2) * 60 + float(s2))


def still(style: str, out: Path, work: Path) -> Path:
    """Render a video in ``style`` and save one frame of its first caption at ``out``."""
    video = VideoGenerator(output_dir=work).generate_sync(
        script=SCRIPT, preset="draft", caption_style=style)
    start, end = _first_cue(video.captions["ass"].read_text("utf-8"))
    at = start + (end - start) * _AT.get(style, 0.5)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", f"{at:.3f}", "-i", str(video.path),
                    "-frames:v", "1", "-vf", "scale=270:480", str(out)], check=True)
    return out


CARDS_SCRIPT = ("# The water cycle\n\n## Rain\n\nRain falls on the hills and gathers into "
                "streams that run down to the sea.\n\n## The sun\n\nThe sun warms the sea "
                "and lifts the water back into the clouds.")
"""The script of the card stills (its two scenes have no picture: they are cards)."""


def cards(out: Path, work: Path) -> Path:
    """Render `CARDS_SCRIPT` without captions and put a frame of each card side by side."""
    video = VideoGenerator(output_dir=work).generate_sync(
        script=CARDS_SCRIPT, preset="draft", captions=False)
    frames = []
    for number, at in enumerate((1.0, video.duration - 1.0)):
        frame = work / f"card-{number}.png"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-ss", f"{at:.3f}", "-i",
                        str(video.path), "-frames:v", "1", "-vf", "scale=270:480", str(frame)],
                       check=True)
        frames.append(frame)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(frames[0]), "-i",
                    str(frames[1]), "-filter_complex",
                    "[0:v]pad=280:480:0:0:white[a];[a][1:v]hstack", str(out)], check=True)
    return out


def main() -> int:
    """Write one still per caption style and the cards' still; returns the exit status."""
    IMAGES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="avgen-stills-") as work:
        for style in CAPTION_STYLES:
            path = still(style, IMAGES / f"caption-{style}.png", Path(work) / style)
            print(path)
        print(cards(IMAGES / "cards-after.png", Path(work) / "cards"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
