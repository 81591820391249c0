"""Media: ffmpeg lookup, runs and probes, the timeline and its compiler, captions, fonts and
the composer.

- `avgen.media.ffmpeg` — the ffmpeg binary (from imageio-ffmpeg), runs with progress, probes.
- `avgen.media.timeline` — scenes timed from measured narration; `Timeline.to_ffmpeg_args`.
- `avgen.media.graph` — the compiler from a timeline to ffmpeg filtergraphs.
- `avgen.media.captions` — caption blocks, `.srt`, `.vtt` and `.ass`.
- `avgen.media.fonts` — finding a font and checking it covers the text.
- `avgen.media.composer` — `FFmpegComposer`, the default composer.
"""

__docformat__ = "google"
