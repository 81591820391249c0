"""`StillImages`: your own pictures as scene visuals, with Ken Burns motion from the composer."""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs

from avgen._models import ImageAsset, Preset, Scene, VideoRequest
from avgen.agents.local._script import split_script
from avgen.errors import FFmpegError, MediaError, UsageError
from avgen.media._ffmpeg import probe, run_ffmpeg_sync

__all__ = ["StillImages"]


def _paths(values: Sequence[str | os.PathLike[str]]) -> tuple[Path, ...]:
    return tuple(Path(v).expanduser() for v in values)


def _reason(exc: FFmpegError) -> str:
    """What the decoder said first about a picture it could not decode."""
    for line in exc.stderr.splitlines():
        said = re.sub(r"^(?:\[[^\]]*\][ \t]*)+", "", line).strip().rstrip(".")
        if said:
            return said
    return f"ffmpeg exited with {exc.returncode}"


def _check_picture(position: int, path: Path) -> None:
    """Probe ``path`` and decode its first frame strictly; a `UsageError` if that fails."""
    where = f"picture {position + 1} ({path})"
    try:
        info = probe(path)
        if not info.has_video:
            raise MediaError("the file has no picture in it", path)
        # -err_detect explode: a truncated or damaged picture is an error, not a warning
        # (a truncated JPEG otherwise decodes "fine" with its bottom missing).
        run_ffmpeg_sync(["-err_detect", "explode", "-xerror", "-i", str(path),
                         "-frames:v", "1", "-f", "null", "-"], what=f"decoding {path}")
    except FFmpegError as exc:
        raise UsageError("images", f"{where} is damaged or not a picture ffmpeg can decode "
                         f"({_reason(exc)}); give an image file (PNG, JPEG …)") from exc
    except MediaError as exc:
        raise UsageError("images", f"{where} cannot be used: {exc}; give an image file "
                         "(PNG, JPEG …)") from exc


@attrs.frozen
class StillImages:
    """An `avgen.agents.ImageGenerator` that shows the given pictures in turn.

    Scene *n* gets picture *n*. With fewer pictures than scenes they are shown again from
    the first, with more the extra ones are not shown; either way a `UserWarning` says so
    (``avgen make`` prints it as an ``avgen: warning:`` line). Any picture ffmpeg decodes
    is accepted; each is stored in the session as PNG.
    """

    images: tuple[Path, ...] = attrs.field(converter=_paths)
    """The picture files, in order."""
    name: str = "still-images"
    """Shown in the manifest."""

    def check(self, request: VideoRequest) -> None:
        """Check every picture, before any work starts: it must exist and its first frame
        must decode with ffmpeg without an error (so an empty, truncated or corrupt file, or
        one that is not a picture, is refused here rather than half way through the run).

        With a script, also warns when there are more pictures than the local script writer
        (at its default scene length) makes scenes: the extra ones would not be shown.

        Raises:
            UsageError: No pictures, or one is missing or unreadable; the field is
                ``images`` and the message names the file and its position.
        """
        if not self.images:
            raise UsageError("images", "give at least one picture file")
        for position, path in enumerate(self.images):
            _check_picture(position, path)
        if (request.script or "").strip():
            scenes = len(split_script(request.script or ""))
            if 0 < scenes < len(self.images):
                unused = (f"picture {scenes + 1} is" if scenes + 1 == len(self.images)
                          else f"pictures {scenes + 1} to {len(self.images)} are")
                warnings.warn(f"{len(self.images)} pictures for {scenes} scene"
                              f"{'s' if scenes != 1 else ''}: {unused} not shown",
                              UserWarning, stacklevel=2)

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Store picture ``scene.index`` (modulo the count) as a PNG at ``target``.

        Warns (at the first scene past the last picture) when there are fewer pictures
        than scenes and they are shown again.
        """
        count = len(self.images)
        if scene.index == count:
            warnings.warn(f"{count} picture{'s' if count != 1 else ''} for more scenes: "
                          f"from scene {count + 1} on, the pictures are shown again from "
                          "the first", UserWarning, stacklevel=2)
        source = self.images[scene.index % count]
        await asyncio.to_thread(run_ffmpeg_sync, ["-i", str(source), "-frames:v", "1",
                                                  "-update", "1", str(target)],
                                what=f"reading picture {source}")
        info = probe(target)
        return ImageAsset(target, info.width, info.height)
