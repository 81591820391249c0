"""The names of avgen's temporary files, in one place, and the sweep that removes them.

avgen writes every file of a session under a temporary name beside its final one, and the
composer writes scratch files beside the video it renders. Both kinds of name are made here
and recognised here, so what a sweep removes is exactly what avgen itself could have made:

- `temp_path`: ``.<stem>.<8 hex>.part<suffix>`` — a file being written, moved into place
  when complete (``.scene_000.1a2b3c4d.part.wav``, ``.manifest.1a2b3c4d.part.json``);
- `scratch_path`: ``.<stem>.<8 hex><suffix>`` with a suffix from `SCRATCH_SUFFIXES` — the
  composer's caption script (``.ass``), join list (``.ffconcat``), rendered parts
  (``.part<N>.mp4``) and soundtrack (``.sound.m4a``); a clip agent's pieces of one scene
  (``.part<N>.mp4``, ``.ffconcat``) and the pictures it starts them from (``.still.png``,
  ``.frame<N>.png``).

A process that dies without running its ``finally`` blocks (``kill -9``, a power cut)
leaves such files behind; `sweep` removes them from a session's folders. It never follows
a symlink, never enters a folder it was not given, and removes only regular files whose
names match these patterns.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__: list[str] = []

_logger = logging.getLogger("avgen.session")

SCRATCH_SUFFIXES = re.compile(
    r"\.ass|\.ffconcat|\.part\d+\.mp4|\.sound\.m4a|\.still\.png|\.frame\d*\.png")
"""What may follow the random part of a scratch file's name."""

TEMP_NAME = re.compile(r"\..+\.[0-9a-f]{8}\.part(?:\.[^.]+)?", re.DOTALL)
"""A `temp_path` name (matched against the whole name)."""

SCRATCH_NAME = re.compile(rf"\..+\.[0-9a-f]{{8}}(?:{SCRATCH_SUFFIXES.pattern})", re.DOTALL)
"""A `scratch_path` name (matched against the whole name)."""


def temp_path(final: Path) -> Path:
    """A fresh temporary name beside ``final`` that keeps its extension (tools such as
    ffmpeg pick the format from it): ``.<stem>.<8 hex>.part<suffix>``."""
    return final.with_name(f".{final.stem}.{secrets.token_hex(4)}.part{final.suffix}")


def scratch_path(target: Path, suffix: str) -> Path:
    """A fresh scratch name beside ``target``: ``.<stem>.<8 hex><suffix>``.

    Raises:
        ValueError: ``suffix`` is not one of `SCRATCH_SUFFIXES` (a sweep would not know
            the file).
    """
    if not SCRATCH_SUFFIXES.fullmatch(suffix):
        raise ValueError(f"{suffix!r} is not a scratch suffix avgen sweeps")
    return target.with_name(f".{target.stem}.{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def scratch_beside(target: Path) -> Iterator[Callable[[str], Path]]:
    """Hands out `scratch_path` names beside ``target`` (``scratch(".part0.mp4")``) and
    removes those files when the block ends, however it ends.

    The files are in the target's folder (a session's, usually), not in the system's
    temporary folder: a process killed meanwhile leaves them where the session's `sweep`
    finds them when its run starts again. A name handed out but never written is no error.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     with scratch_beside(Path(folder) / "video.mp4") as scratch:
        ...         made = scratch(".ass")
        ...         _ = made.write_text("[Script Info]")
        ...         print(made.parent == Path(folder), is_debris(made.name))
        ...     print(made.exists())
        True True
        False
    """
    made: list[Path] = []

    def scratch(suffix: str) -> Path:
        path = scratch_path(target, suffix)
        made.append(path)
        return path

    try:
        yield scratch
    finally:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def is_debris(name: str) -> bool:
    """True when ``name`` (a file name, not a path) is one avgen gives temporary files."""
    return bool(TEMP_NAME.fullmatch(name) or SCRATCH_NAME.fullmatch(name))


def sweep(folders: Iterable[Path]) -> list[Path]:
    """Remove avgen's temporary files from ``folders`` (not from their subfolders).

    Only regular files whose names pass `is_debris` are removed. A folder that is a symlink
    is skipped, and an entry that is a symlink is never followed nor removed, so nothing
    outside the given folders is touched. A file that cannot be removed is logged and left.

    The caller must know that no live process is writing these files: a session is used
    by one run at a time, so a run starting (or ending) owns every temporary file in it.

    Returns:
        The files removed.
    """
    removed: list[Path] = []
    for folder in folders:
        try:
            if folder.is_symlink() or not folder.is_dir():
                continue
            with os.scandir(folder) as listing:
                entries = [entry for entry in listing if is_debris(entry.name)]
        except OSError as exc:
            _logger.warning("cannot list %s to sweep it: %s", folder, exc)
            continue
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                os.unlink(entry.path)  # removes the name itself, never a link's target
            except FileNotFoundError:
                continue
            except OSError as exc:
                _logger.warning("cannot remove the temporary file %s: %s", entry.path, exc)
                continue
            removed.append(Path(entry.path))
    return removed
