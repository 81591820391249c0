"""`FFmpegComposer`: renders a `Timeline` with one ffmpeg process.

No frame passes through Python: the timeline compiles to a single filtergraph (see
`avgen.media.timeline.Timeline.to_ffmpeg_args`), and ffmpeg reads the assets, fits them to
the frame, lays the narration in, burns the captions with libass and encodes once.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import secrets
from importlib import resources
from pathlib import Path

import attrs

from avgen.errors import MediaError
from avgen.media.ffmpeg import ProgressCallback, probe, run_ffmpeg
from avgen.media.timeline import Timeline
from avgen.models import ClipAsset, ImageAsset

__all__ = ["FFmpegComposer", "fonts_dir"]


def fonts_dir() -> Path:
    """The folder of fonts avgen ships (DejaVu Sans: Latin, Greek, Cyrillic, Hebrew, Arabic)."""
    return Path(str(resources.files("avgen.media").joinpath("fonts")))


@attrs.frozen
class FFmpegComposer:
    """The default `avgen.agents.Composer`: one filtergraph, one ffmpeg process.

    Every input is checked before the encode starts, so a corrupt or missing asset fails
    fast with its file named, and nothing already made is touched.
    """

    name: str = "ffmpeg"
    """Shown in the manifest."""

    async def compose(self, timeline: Timeline, target: Path,
                      progress: ProgressCallback | None = None) -> None:
        """Render ``timeline`` into the MP4 at ``target``.

        Raises:
            MediaError: An input is missing, empty, corrupt or lacks the stream it needs.
            FFmpegError: The encode failed.
        """
        self.check_inputs(timeline)
        ass_path = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.ass")
        ass_path.write_text(timeline.ass_script(), encoding="utf-8")
        try:
            args = timeline.to_ffmpeg_args(target, ass=ass_path, fonts_dir=fonts_dir())
            await run_ffmpeg(args, total=timeline.duration, progress=progress,
                             what=f"composing {target.name}")
        finally:
            with contextlib.suppress(FileNotFoundError):
                ass_path.unlink()

    @staticmethod
    def check_inputs(timeline: Timeline) -> None:
        """Probe every asset of the timeline; raise `MediaError` naming the scene and file."""
        for scene in timeline.scenes:
            where = f"scene {scene.index}"
            visual = scene.visual
            if isinstance(visual, (ClipAsset, ImageAsset)):
                try:
                    info = probe(visual.path)
                except MediaError as exc:
                    raise _in_scene(where, exc) from exc
                if not info.has_video:
                    raise MediaError(f"{where}: the picture has no video stream", visual.path)
            if scene.narration is not None:
                try:
                    info = probe(scene.narration.path)
                except MediaError as exc:
                    raise _in_scene(where, exc) from exc
                if not info.has_audio:
                    raise MediaError(f"{where}: the narration has no audio stream",
                                     scene.narration.path)


def _in_scene(where: str, exc: MediaError) -> MediaError:
    """``exc`` prefixed with the scene, keeping its `MediaError.path` (already in the text)."""
    error = MediaError(f"{where}: {exc}")
    error.path = exc.path
    return error
