"""`StillImages`: your own pictures as scene visuals, with Ken Burns motion from the composer."""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import attrs

from avgen._models import ImageAsset, Preset, Scene, VideoRequest
from avgen.errors import MediaError, UsageError
from avgen.media._ffmpeg import probe, run_ffmpeg_sync

__all__ = ["StillImages"]


def _paths(values: Sequence[str | os.PathLike[str]]) -> tuple[Path, ...]:
    return tuple(Path(v).expanduser() for v in values)


@attrs.frozen
class StillImages:
    """An `avgen.agents.ImageGenerator` that shows the given pictures in turn.

    Scene *n* gets picture *n* (wrapping around when there are fewer pictures than
    scenes). Any format ffmpeg reads is accepted; each is stored in the session as PNG.
    """

    images: tuple[Path, ...] = attrs.field(converter=_paths)
    """The picture files, in order."""
    name: str = "still-images"
    """Shown in the manifest."""

    def check(self, request: VideoRequest) -> None:
        """Check that every picture exists and is an image, before any work starts.

        Raises:
            UsageError: A picture is missing or unreadable; the field names its position.
        """
        if not self.images:
            raise UsageError("images", "give at least one picture file")
        for i, path in enumerate(self.images):
            try:
                info = probe(path)
            except MediaError as exc:
                raise UsageError(f"images[{i}]", f"{exc}; give an image file (PNG, JPEG …)") \
                    from exc
            if not info.has_video:
                raise UsageError(f"images[{i}]", f"{path} has no picture in it")

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Store picture ``scene.index`` (modulo the count) as a PNG at ``target``."""
        source = self.images[scene.index % len(self.images)]
        await asyncio.to_thread(run_ffmpeg_sync, ["-i", str(source), "-frames:v", "1",
                                                  "-update", "1", str(target)],
                                what=f"reading picture {source}")
        info = probe(target)
        return ImageAsset(target, info.width, info.height)
