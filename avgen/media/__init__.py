"""Media: ffmpeg and the composer that turns a timeline into the video.

- `Timeline` (and its `TimelineScene`s, `Cue`s): scenes laid end to end, each as long as
  its measured narration, with captions timed from the narrator's sentences or words; a
  scene may show several pictures in turn (its `Shot`s).
- `FFmpegComposer`: the default `avgen.agents.Composer`, one ffmpeg process per video.
- `probe` and `MediaInfo`: what a media file holds, measured once per file.
- `ffmpeg_exe`: the ffmpeg binary avgen runs (the one imageio-ffmpeg ships); `run_ffmpeg`
  and `run_ffmpeg_sync` run it with avgen's flags and errors (for agents that draw).
"""

from __future__ import annotations

__docformat__ = "google"

from avgen.media._captions import Cue
from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import (
    MediaInfo,
    ProgressCallback,
    ffmpeg_exe,
    probe,
    run_ffmpeg,
    run_ffmpeg_sync,
)
from avgen.media._timeline import Shot, Timeline, TimelineScene

__all__ = [
    "Cue",
    "FFmpegComposer",
    "MediaInfo",
    "ProgressCallback",
    "Shot",
    "Timeline",
    "TimelineScene",
    "ffmpeg_exe",
    "probe",
    "run_ffmpeg",
    "run_ffmpeg_sync",
]
