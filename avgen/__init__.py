"""avgen turns a topic or a script into a finished, narrated, captioned video.

Offline out of the box (a local script splitter, the Piper neural voice, procedural visuals
and one ffmpeg pass), with pluggable agents for anything else.

Quick start (the README's)::

    from avgen import VideoGenerator

    video = VideoGenerator().generate_sync(
        script="Octopuses have three hearts. Two pump blood through the gills, "
               "one through the body.",
        preset="shorts",
    )
    print(video.path)   # outputs/session_…/final_output/….mp4 (1080×1920, narrated, captioned)

In async code, ``video = await VideoGenerator().generate(script=...)``. In Jupyter, await it
in a cell: the `Video` displays as a player, and `avgen.notebook.ProgressBar` draws a
progress bar (``examples/quickstart.ipynb`` walks through it). Many videos at once — in this
process, on a process pool or on a Dask cluster, under one budget and one quota — with
`VideoGenerator.generate_many` or ``avgen batch REQUESTS.csv``. From the shell:
``avgen make --script examples/scripts/water_cycle.md``; ``avgen docs`` builds this API
reference into ``docs/api/``.
"""

from __future__ import annotations

__docformat__ = "google"

import logging as _logging

from avgen._batch import AgentSpec, BatchItem, BatchResult
from avgen._generator import VideoGenerator
from avgen._models import (
    CAPTION_STYLES,
    PRESETS,
    TRANSITION_STYLES,
    AudioAsset,
    CaptionStyle,
    CardVisual,
    Character,
    ClipAsset,
    ImageAsset,
    Preset,
    Scene,
    Script,
    Segment,
    Soundtrack,
    Source,
    Transition,
    Video,
    VideoRequest,
    VisualStyle,
    preset,
)
from avgen._policy import AgentPolicy
from avgen._report import ReportView, write_report
from avgen._reporting import RunEvent
from avgen._rows import read_requests, requests_from_rows
from avgen._session import Session, StepRecord
from avgen._version import __version__

_logging.getLogger("avgen").addHandler(_logging.NullHandler())

__all__ = [
    "CAPTION_STYLES",
    "PRESETS",
    "TRANSITION_STYLES",
    "AgentPolicy",
    "AgentSpec",
    "AudioAsset",
    "BatchItem",
    "BatchResult",
    "CaptionStyle",
    "CardVisual",
    "Character",
    "ClipAsset",
    "ImageAsset",
    "Preset",
    "ReportView",
    "RunEvent",
    "Scene",
    "Script",
    "Segment",
    "Session",
    "Soundtrack",
    "Source",
    "StepRecord",
    "Transition",
    "Video",
    "VideoGenerator",
    "VideoRequest",
    "VisualStyle",
    "__version__",
    "preset",
    "read_requests",
    "requests_from_rows",
    "write_report",
]
