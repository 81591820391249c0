"""Media: ffmpeg and the composer that turns a timeline into the video.

- `Timeline` (its scenes and caption cues): scenes laid end to end, each as long as
  its measured narration, with captions timed from the narrator's sentences or words;
  a scene may show several pictures in turn (its shots).
- `FFmpegComposer`: the default `avgen.agents.Composer`: ffmpeg encodes the picture and the
  sound side by side, then joins them by stream copy.
- `probe`: what a media file holds, measured once per file.
- `ffmpeg_exe`: the ffmpeg binary avgen runs (the one imageio-ffmpeg ships); `run_ffmpeg`
  and `run_ffmpeg_sync` run it with avgen's flags and errors (for agents that draw).
"""

from __future__ import annotations

__docformat__ = "google"

from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import ffmpeg_exe, probe, run_ffmpeg, run_ffmpeg_sync
from avgen.media._timeline import Timeline

__all__ = [
    "FFmpegComposer",
    "Timeline",
    "ffmpeg_exe",
    "probe",
    "run_ffmpeg",
    "run_ffmpeg_sync",
]
