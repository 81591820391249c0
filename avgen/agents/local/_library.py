"""`MediaLibrary`: your own pictures and clips, each matched to the scene it fits.

A folder (searched with its subfolders) of pictures and video clips becomes the visuals of a
video: every scene gets the file whose words best match what the scene says and shows.

- **What a file says**: its name split into words (``river_at-dawn2.mp4``, ``RiverAtDawn``
  → river, at, dawn), the names of the subfolders it is in, and, when there is one, the
  words of a tags file beside it with the same stem (``river_at-dawn2.txt``).
- **What a scene says**: its visual prompt, its title and its narration.
- **Ranking**: BM25 (the `bm25s` library, with Snowball stemming from `PyStemmer` and
  English stop words), so a rare word ("lighthouse") counts for more than a common one
  and "rivers" finds ``river.mp4``. A file shares no word with a scene: no match.
- **Assignment**, over the whole script before any scene is made (`MediaLibrary.prepare`):
  as many scenes as possible get a file of their own, each scene's best-scoring file
  first; only a scene whose every matching file is taken gets one again. A scene that
  matches nothing falls through to the next tier (a generated picture, or the card).

A clip shows its middle stretch as long as the scene (shorter clips are looped by the
composer); a picture gets Ken Burns motion; pictures and clips of another shape are fitted
by the request's ``fit``. The match, its score and the runner-up are recorded in the
manifest (`avgen.Source`). Every file is checked before anything is made: a file ffmpeg
cannot decode is refused, naming it (a picture too large for ffmpeg to decode says so).
A file or a tags file that is a link to somewhere outside the folder is skipped, with a
note: logged as a warning, kept in `MediaLibrary.notes` and in each match's
`avgen.Source`.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import functools
import logging
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import attrs

from avgen._models import ClipAsset, ImageAsset, Preset, Scene, Script, Source, VideoRequest
from avgen._ranking import tokenize
from avgen.agents.local._images import _reason
from avgen.errors import FFmpegError, MediaError, NoMatch, UsageError
from avgen.media._ffmpeg import MediaInfo, probe, run_ffmpeg_sync

__all__ = ["MediaLibrary"]

_logger = logging.getLogger("avgen.agents.local")

PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
"""File suffixes read as pictures (any case)."""
CLIP_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi"})
"""File suffixes read as video clips (any case)."""
Kind = Literal["image", "clip"]
MAX_TAGS_BYTES = 64 << 10
"""The most of a tags file that is read (64 KiB)."""


@attrs.frozen
class LibraryFile:
    """A checked picture or clip of the library."""

    path: Path
    """The file."""
    kind: Kind
    """``image`` or ``clip``."""
    words: str
    """What it is matched on: its name's words, its folders' and its tags'."""
    width: int
    """Width in pixels."""
    height: int
    """Height in pixels."""
    duration: float = 0.0
    """Length in seconds (clips)."""
    fps: float = 30.0
    """Frames per second (clips)."""


@attrs.frozen
class Match:
    """The file a scene gets, and how it was chosen."""

    file: LibraryFile
    """The file."""
    score: float
    """Its BM25 score for the scene."""
    runner_up: LibraryFile | None = None
    """The next best file for the scene, if any matched."""
    runner_up_score: float | None = None
    """The runner-up's score."""


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_SEPARATORS = re.compile(r"[\W_]+")


def name_words(name: str) -> str:
    """The words of a file or folder name: split at separators, case changes and digits.

    Example:
        >>> name_words("RiverAtDawn_02-wide")
        'River At Dawn 02 wide'
    """
    return " ".join(_CAMEL.sub(" ", _SEPARATORS.sub(" ", name)).split())


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, links followed, lies inside ``folder`` (a resolved path)."""
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # RuntimeError: a link loop (Python < 3.13)
        return False


def _outside_note(path: Path, folder: Path, what: str = "") -> str:
    return (f"skipped {path.relative_to(folder).as_posix()}{what}: it links to a file "
            f"outside {folder}")


def _checked(path: Path, folder: Path) -> tuple[LibraryFile, str | None]:
    """Probe ``path`` and decode its first frame strictly; read its tags file, unless it
    links outside ``folder`` (then the note says so).

    Raises:
        UsageError: The file is empty, damaged, too large to decode, or has no picture
            (field ``media``).
    """
    kind: Kind = "clip" if path.suffix.lower() in CLIP_SUFFIXES else "image"
    try:
        info: MediaInfo = probe(path)
        if not info.has_video or not info.width or not info.height:
            raise MediaError("the file has no picture in it", path)
        if kind == "clip" and not info.duration:
            raise MediaError("the clip has no length", path)
        run_ffmpeg_sync(["-err_detect", "explode", "-xerror", "-i", str(path),
                         "-frames:v", "1", "-f", "null", "-"], what=f"decoding {path}")
    except FFmpegError as exc:
        what = "video" if kind == "clip" else "picture"
        raise UsageError("media", f"{path} is damaged or not a {what} ffmpeg can decode "
                         f"({_reason(exc)}); fix or remove it") from exc
    except MediaError as exc:
        raise UsageError("media", f"{path} cannot be used: {exc}; fix or remove it") from exc
    parts = [name_words(part) for part in path.relative_to(folder).parent.parts]
    parts.append(name_words(path.stem))
    tags = path.with_suffix(".txt")
    note = None
    if tags.is_file():
        if _inside(tags, folder):
            with tags.open("rb") as text:
                parts.append(text.read(MAX_TAGS_BYTES).decode("utf-8", errors="replace"))
        else:
            note = _outside_note(tags, folder, " (tags)")
    return LibraryFile(path, kind, " ".join(parts), info.width, info.height,
                       info.duration or 0.0, info.fps or 30.0), note


@attrs.frozen
class _Scan:
    files: tuple[LibraryFile, ...]
    notes: tuple[str, ...]


@functools.lru_cache(maxsize=64)
def _scan(folder: Path, stamp: tuple[tuple[str, int, int], ...],
          skipped: tuple[str, ...]) -> _Scan:
    """The checked files of ``folder`` and the notes on what was skipped (``stamp``: every
    file's name, size and mtime, so a changed folder is scanned again). The notes are
    logged once per scan."""
    files, notes = [], list(skipped)
    for name, _size, _mtime in stamp:
        file, note = _checked(folder / name, folder)
        files.append(file)
        if note is not None:
            notes.append(note)
    for note in notes:
        _logger.warning("media library: %s", note)
    return _Scan(tuple(files), tuple(notes))


def _stamp(folder: Path) -> tuple[tuple[tuple[str, int, int], ...], tuple[str, ...]]:
    """Every picture and clip of ``folder`` (name, size, mtime), and a note for each one
    skipped because it links outside the folder."""
    found, skipped = [], []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES | CLIP_SUFFIXES \
                and not any(part.startswith(".") for part in path.relative_to(folder).parts):
            if not _inside(path, folder):
                skipped.append(_outside_note(path, folder))
                continue
            stat = path.stat()
            found.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(found), tuple(skipped)


def rank(files: Sequence[LibraryFile], queries: Sequence[str]) -> list[list[float]]:
    """BM25 scores of every file for every query: ``scores[query][file]``."""
    import bm25s

    if not files or not queries:
        return [[0.0] * len(files) for _ in queries]
    retriever = bm25s.BM25()
    retriever.index(tokenize([f.words for f in files]), show_progress=False)
    query_tokens = tokenize(queries)
    docs, scores = retriever.retrieve(query_tokens, k=len(files), show_progress=False)
    table = [[0.0] * len(files) for _ in queries]
    for row, (ids, values) in enumerate(zip(docs, scores, strict=True)):
        for doc, value in zip(ids, values, strict=True):
            table[row][int(doc)] = float(value)
    return table


def assign(scores: Sequence[Sequence[float]]) -> list[int | None]:
    """For each scene (row), the file (column) it gets.

    As many scenes as possible get a file of their own (a maximum matching over the pairs
    that score above zero, found with augmenting paths that try each scene's files best
    first, the scenes with the strongest match first); then scenes still without one take
    their best file again. A scene that scores nothing above zero gets ``None``.
    """
    owner: dict[int, int] = {}  # file -> scene

    def place(scene: int, seen: set[int]) -> bool:
        row = scores[scene]
        for file in sorted((f for f, v in enumerate(row) if v > 0), key=lambda f: (-row[f], f)):
            if file in seen:
                continue
            seen.add(file)
            if file not in owner or place(owner[file], seen):
                owner[file] = scene
                return True
        return False

    order = sorted(range(len(scores)), key=lambda s: (-max(scores[s], default=0.0), s))
    for scene in order:
        if any(value > 0 for value in scores[scene]):
            place(scene, set())
    chosen: list[int | None] = [None] * len(scores)
    for file, scene in owner.items():
        chosen[scene] = file
    for scene, row in enumerate(scores):
        if chosen[scene] is None and any(value > 0 for value in row):
            chosen[scene] = max(range(len(row)), key=lambda f: (row[f], -f))
    return chosen


def _scene_key(scene: Scene) -> tuple[int, str, str, str]:
    return scene.index, scene.visual, scene.title, scene.narration


class MediaLibrary:
    """A folder of your pictures and clips, matched to the scenes they fit.

    Use its two views as a family's generators — ``clips`` as the clip generator and
    ``images`` as the image generator (``local_agents(media="my-media/")``, ``avgen make
    --media my-media/``): a scene matched to a clip gets it from ``clips``, one matched to a
    picture from ``images``, and one matched to nothing falls through to the card.

    Args:
        folder: The folder; subfolders are searched too, hidden files are skipped.

    Raises:
        UsageError: (from `check`) The folder is missing or holds no picture or clip, or a
            file cannot be decoded; the field is ``media`` and the message names it.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()
        self.clips = LibraryClips(self)
        """The clip generator view."""
        self.images = LibraryImages(self)
        """The image generator view."""
        self._lock = threading.Lock()
        self._matches: dict[tuple[int, str, str, str], Match | None] = {}
        self._prepared: tuple[tuple[int, str, str, str], ...] = ()  # the last script matched
        self._notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"MediaLibrary({str(self.folder)!r})"

    def files(self) -> tuple[LibraryFile, ...]:
        """Every picture and clip of the folder, checked (scanned again when it changes).

        Raises:
            UsageError: See the class.
        """
        if not self.folder.is_dir():
            raise UsageError("media", f"{self.folder} is not a folder")
        folder = self.folder.resolve()
        scan = _scan(folder, *_stamp(folder))
        with self._lock:
            self._notes = scan.notes
        found = scan.files
        if not found:
            suffixes = ", ".join(sorted(PICTURE_SUFFIXES | CLIP_SUFFIXES))
            raise UsageError("media", f"{self.folder} holds no picture or clip ({suffixes})")
        return found

    @property
    def notes(self) -> tuple[str, ...]:
        """What the last look at the folder skipped, and why (a file or a tags file that
        links outside the folder)."""
        with self._lock:
            return self._notes

    def check(self, request: VideoRequest) -> None:
        """Check every file of the folder before anything is made.

        Raises:
            UsageError: See the class.
        """
        self.files()

    def prepare(self, script: Script) -> None:
        """Match the whole script's scenes to the files (see the module), before any
        scene is made. The same script again (the other view of this library, in the same
        run) is matched once."""
        keys = tuple(_scene_key(scene) for scene in script.scenes)
        with self._lock:
            if keys == self._prepared:
                return
        files = self.files()
        queries = [" ".join((s.visual, s.title, s.narration)) for s in script.scenes]
        scores = rank(files, queries)
        matches: dict[tuple[int, str, str, str], Match | None] = {}
        for scene, row, chosen in zip(script.scenes, scores, assign(scores), strict=True):
            if chosen is None:
                matches[_scene_key(scene)] = None
                continue
            others = sorted((f for f in range(len(files)) if f != chosen and row[f] > 0),
                            key=lambda f: -row[f])
            runner = others[0] if others else None
            matches[_scene_key(scene)] = Match(
                files[chosen], row[chosen], files[runner] if runner is not None else None,
                row[runner] if runner is not None else None)
        with self._lock:
            self._matches.update(matches)
            self._prepared = keys

    def match(self, scene: Scene) -> Match | None:
        """The file `prepare` chose for ``scene`` (matching it alone when the script was
        not prepared), or None when nothing matches."""
        with self._lock:
            key = _scene_key(scene)
            if key in self._matches:
                return self._matches[key]
        self.prepare(Script(scene.title or "video", (scene,)))
        with self._lock:
            return self._matches.get(_scene_key(scene))

    def source(self, match: Match) -> Source:
        """The manifest's record of a match."""
        def name(file: LibraryFile) -> str:
            return file.path.relative_to(self.folder.resolve()).as_posix()

        runner = match.runner_up
        return Source("library", title=name(match.file), score=round(match.score, 4),
                      runner_up=name(runner) if runner is not None else None,
                      runner_up_score=(round(match.runner_up_score, 4)
                                       if match.runner_up_score is not None else None),
                      notes=self.notes)


class _View:
    """What the two views share: the library, and the kind of file each serves."""

    def __init__(self, library: MediaLibrary, kind: Kind) -> None:
        self.library = library
        self.kind: Kind = kind

    @property
    def name(self) -> str:
        """Shown in the manifest."""
        return f"media-library-{'clips' if self.kind == 'clip' else 'pictures'}"

    def check(self, request: VideoRequest) -> None:
        """See `MediaLibrary.check`."""
        self.library.check(request)

    def prepare(self, script: Script) -> None:
        """See `MediaLibrary.prepare`."""
        self.library.prepare(script)

    def _matched(self, scene: Scene) -> Match:
        match = self.library.match(scene)
        if match is None:
            raise NoMatch(f"no file of {self.library.folder} matches scene "
                          f"{scene.index + 1}", self.name)
        if match.file.kind != self.kind:
            raise NoMatch(f"scene {scene.index + 1} matches a "
                          f"{'clip' if match.file.kind == 'clip' else 'picture'} "
                          f"({match.file.path.name})", self.name)
        return match


class LibraryClips(_View):
    """The clips of a `MediaLibrary`, as an `avgen.agents.ClipGenerator`."""

    def __init__(self, library: MediaLibrary) -> None:
        super().__init__(library, "clip")

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        """Copy the middle ``seconds`` of the scene's clip to ``target`` (all of a shorter
        one: the composer loops it).

        Raises:
            NoMatch: The scene matches no clip (it goes on to the pictures).
        """
        match = self._matched(scene)
        file = match.file
        start = max(0.0, (file.duration - seconds) / 2)
        length = min(file.duration, seconds + 1.0)
        await asyncio.to_thread(run_ffmpeg_sync, [
            "-ss", f"{start:.3f}", "-i", str(file.path), "-t", f"{length:.3f}", "-map", "0:v:0",
            "-an", "-c:v", "copy", "-f", "mp4", "-movflags", "+faststart", str(target)],
            what=f"taking a stretch of {file.path}")
        info = probe(target)
        return ClipAsset(target, info.duration or length, info.width or file.width,
                         info.height or file.height, info.fps or file.fps,
                         source=self.library.source(match))


class LibraryImages(_View):
    """The pictures of a `MediaLibrary`, as an `avgen.agents.ImageGenerator`."""

    def __init__(self, library: MediaLibrary) -> None:
        super().__init__(library, "image")

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Store the scene's picture at ``target`` as a PNG, no larger than twice the
        frame.

        Raises:
            NoMatch: The scene matches no picture (it goes on to the card).
        """
        match = self._matched(scene)
        side = 2 * max(preset.width, preset.height)
        await asyncio.to_thread(run_ffmpeg_sync, [
            "-i", str(match.file.path), "-frames:v", "1", "-vf",
            f"scale='min(iw,{side})':'min(ih,{side})':force_original_aspect_ratio=decrease",
            "-update", "1", str(target)], what=f"reading picture {match.file.path}")
        info = probe(target)
        return ImageAsset(target, info.width, info.height, source=self.library.source(match))

