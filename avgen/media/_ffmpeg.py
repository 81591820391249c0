"""Find, run and probe ffmpeg.

The binary is the one `imageio-ffmpeg` ships (a dependency of moviepy), so no system ffmpeg
is needed; set ``AVGEN_FFMPEG`` to use another. Probing reads ffmpeg's own description of
a file, so no ffprobe is needed either.

Every ffmpeg process dies with the process that started it. On Linux the kernel sees to
it, even when the parent is killed with SIGKILL: ffmpeg is started through util-linux's
``setpriv --pdeathsig KILL``, which asks for SIGKILL on the parent's death
(``prctl(PR_SET_PDEATHSIG)``) and then executes ffmpeg, and it runs in a process group of
its own, so a signal meant for the terminal's foreground job (Ctrl-C) reaches the Python
process, which kills ffmpeg as it unwinds. No Python code runs in the child between fork
and exec: a ``preexec_fn`` there runs every at-fork handler of every library loaded, which
can deadlock the child in a process with many threads (a Dask worker with s3fs). Without
``setpriv`` (and on other platforms) ffmpeg is killed when the awaiting task is cancelled
or the waiting call raises (Ctrl-C included), but a parent killed outright leaves its
ffmpeg to finish the encode it was doing; a resume sweeps the files it leaves.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import collections
import contextlib
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import cachetools

from avgen.errors import ConfigurationError, FFmpegError, MediaError
from avgen.media._wav import wav_info

__all__ = ["ffmpeg_exe", "probe", "run_ffmpeg", "run_ffmpeg_sync"]

ProgressCallback = Callable[[float], None]
"""Called with the fraction done, from 0.0 to 1.0."""


@functools.cache
def _default_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ConfigurationError("imageio-ffmpeg is not installed: pip install avgen") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def ffmpeg_exe() -> str:
    """The ffmpeg binary avgen runs: ``$AVGEN_FFMPEG`` or the one from imageio-ffmpeg.

    Raises:
        ConfigurationError: ``AVGEN_FFMPEG`` points at a file that does not exist.
    """
    override = os.environ.get("AVGEN_FFMPEG")
    if override:
        if not Path(override).is_file():
            raise ConfigurationError(f"AVGEN_FFMPEG={override!r} is not a file")
        return override
    return _default_exe()


@functools.cache
def _setpriv() -> str | None:
    """util-linux's ``setpriv`` when it can set the parent-death signal (Linux), or None."""
    if not sys.platform.startswith("linux"):
        return None
    return shutil.which("setpriv")


def _dying(argv: list[str]) -> list[str]:
    """``argv`` started so that it dies with this process (see the module's description):
    through ``setpriv --pdeathsig KILL`` when there is one."""
    setpriv = _setpriv()
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


def _child_options() -> dict[str, Any]:
    """Keyword arguments for `subprocess.Popen` (and `asyncio.create_subprocess_exec`):
    on Linux a process group of its own, so Ctrl-C reaches the Python process first."""
    return {"process_group": 0} if sys.platform.startswith("linux") else {}


@attrs.frozen
class MediaInfo:
    """What a media file contains, as ffmpeg reports it."""

    path: Path
    """The file probed."""
    duration: float | None
    """Length in seconds (``None`` for a still image)."""
    width: int = 0
    """Frame width of the first video stream (0 when there is none)."""
    height: int = 0
    """Frame height of the first video stream."""
    fps: float = 0.0
    """Frame rate of the first video stream."""
    video_codec: str | None = None
    """Codec of the first video stream, e.g. ``"h264"``."""
    pix_fmt: str | None = None
    """Pixel format of the first video stream, e.g. ``"yuv420p"``."""
    audio_codec: str | None = None
    """Codec of the first audio stream, e.g. ``"aac"``."""
    sample_rate: int = 0
    """Sample rate of the first audio stream."""
    channels: str | None = None
    """Channel layout of the first audio stream (``"mono"``, ``"stereo"`` …)."""

    @property
    def has_video(self) -> bool:
        """True when there is a video (or image) stream."""
        return self.video_codec is not None

    @property
    def has_audio(self) -> bool:
        """True when there is an audio stream."""
        return self.audio_codec is not None


_FORMAT = re.compile(r"Input #0, ([\w,]+?), from")
_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+)(.*)")
_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)(.*)")
_SIZE = re.compile(r"(?<![\dx])(\d{2,5})x(\d{2,5})(?![\dx])")
_FPS = re.compile(r"([\d.]+)(k?) (?:fps|tbr)")
_RATE = re.compile(r"(\d+) Hz, ([\w.() ]+?)(?:,|$)")


def _parse(path: Path, text: str) -> MediaInfo:
    duration: float | None = None
    if match := _DURATION.search(text):
        h, m, s = match.groups()
        duration = int(h) * 3600 + int(m) * 60 + float(s)
    fields: dict[str, object] = {}
    if match := _VIDEO.search(text):
        codec, rest = match.groups()
        fields["video_codec"] = codec
        fields["pix_fmt"] = rest.split(",")[1].strip().split("(")[0] if "," in rest else None
        if size := _SIZE.search(rest):
            fields["width"], fields["height"] = int(size.group(1)), int(size.group(2))
        if fps := _FPS.search(rest):
            fields["fps"] = float(fps.group(1)) * (1000 if fps.group(2) else 1)
    if (match := _FORMAT.search(text)) and (match.group(1) == "image2"
                                            or match.group(1).endswith("_pipe")):
        duration = None  # a still image
    if match := _AUDIO.search(text):
        codec, rest = match.groups()
        fields["audio_codec"] = codec
        if rate := _RATE.search(rest):
            fields["sample_rate"] = int(rate.group(1))
            fields["channels"] = rate.group(2).strip()
    return MediaInfo(path=path, duration=duration, **fields)  # type: ignore[arg-type]


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Describe a media file: duration, size, rate, codecs.

    A plain WAV file (one or two channels of PCM or float samples, whole) is described from
    its header (`avgen.media._wav`), every other file by ffmpeg.

    A file is measured once: the answer is kept for as long as the file is the same one
    (same device, inode, size and modification time), so probing it again — after it was
    moved into place, or by the composer after the generator — starts no new process.

    Raises:
        MediaError: The file is missing, empty, not media ffmpeg can read, or a picture
            too large for ffmpeg to decode (the message gives its size).
    """
    target = Path(path)
    try:
        stat = target.stat()
    except OSError:
        stat = None
    if stat is None or not target.is_file():
        raise MediaError("media file not found", target)
    if stat.st_size == 0:
        raise MediaError("media file is empty (0 bytes)", target)
    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _probed_lock:
        known = _probed.get(identity)
    if known is not None:
        return attrs.evolve(known, path=target)
    wav = wav_info(target, stat.st_size)
    info = (MediaInfo(path=target, duration=wav.duration, audio_codec=wav.codec,
                      sample_rate=wav.sample_rate, channels=wav.channels)
            if wav is not None else _ffmpeg_probe(target))
    with _probed_lock:
        _probed[identity] = info
    return info


def _ffmpeg_probe(target: Path) -> MediaInfo:
    """`probe` by ffmpeg's own description of the file."""
    proc = subprocess.run(
        _dying([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(target)]),
        capture_output=True, text=True, errors="replace", check=False, **_child_options(),
    )
    text = proc.stderr
    if "Invalid data found" in text or "Input #0" not in text:
        last = text.strip().splitlines()[-1] if text.strip() else "unreadable"
        raise MediaError(f"not a media file ffmpeg can read: {last}", target)
    info = _parse(target, text)
    if not info.has_video and not info.has_audio:
        raise MediaError("the file has neither a video nor an audio stream", target)
    oversized = _TOO_LARGE.search(text)
    if oversized and info.has_video and not (info.width and info.height):
        raise MediaError(f"the picture is {oversized[1]}x{oversized[2]} pixels, too large "
                         "for ffmpeg to decode", target)
    return info


def decodes_audio(path: str | os.PathLike[str], seconds: float = 1.0) -> bool:
    """True when ffmpeg decodes samples from the first audio stream of ``path`` (its first
    ``seconds``, at most): a file whose header looks right but whose data is not audio
    (or is cut off before any) decodes nothing."""
    proc = subprocess.run(
        _dying([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-t", f"{seconds:.3f}",
                "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", "8000", "-f", "s16le",
                "-"]),
        capture_output=True, check=False, **_child_options(),
    )
    return proc.returncode == 0 and len(proc.stdout) > 0


_TOO_LARGE = re.compile(r"Picture size (\d+)x(\d+) is invalid")
"""ffmpeg's word for a picture larger than it decodes."""

_probed: cachetools.LRUCache[tuple[int, int, int, int], MediaInfo] = cachetools.LRUCache(4096)
_probed_lock = threading.Lock()


@functools.cache
def _filter_help(exe: str, name: str) -> str:
    proc = subprocess.run([exe, "-hide_banner", "-h", f"filter={name}"], capture_output=True,
                          text=True, errors="replace", check=False, timeout=60)
    return proc.stdout if proc.returncode == 0 else ""


def has_filter_option(name: str, option: str) -> bool:
    """Whether the ffmpeg avgen runs (`ffmpeg_exe`) has filter ``name`` with ``option``
    (asked once per binary): an ``AVGEN_FFMPEG`` older than the bundled one may lack it.

    Example:
        >>> has_filter_option("setparams", "alpha_mode"), has_filter_option("setparams", "x")
        (True, False)
    """
    return re.search(rf"^\s+{re.escape(option)}\s", _filter_help(ffmpeg_exe(), name),
                     re.MULTILINE) is not None


def ffconcat(paths: Sequence[Path]) -> str:
    """An ffconcat list of ``paths`` for ffmpeg's concat demuxer: absolute, each quoted (a
    ``'`` in a folder's name is escaped, not taken for the quote's end)."""
    lines = ["ffconcat version 1.0"]
    for path in paths:
        quoted = str(path.resolve()).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
    return "\n".join(lines) + "\n"


def _command(args: Sequence[str], progress: bool, loglevel: str = "error") -> list[str]:
    head = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-y", "-loglevel", loglevel]
    if progress:
        head += ["-progress", "pipe:1"]
    return _dying(head + list(args))


_VERSION = re.compile(r"ffmpeg version n?(\d+)\.")


@functools.cache
def _graph_file_option(exe: str) -> str:
    """The option that reads a ``-filter_complex`` graph from a file: ``-/filter_complex``
    (ffmpeg 7 and later), ``-filter_complex_script`` before (removed in ffmpeg 8). A build
    whose version is not a release number (``N-…``, from git) is taken as recent."""
    proc = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True,
                          errors="replace", check=False, timeout=60)
    found = _VERSION.match(proc.stdout)
    return "-filter_complex_script" if found and int(found[1]) < 7 else "-/filter_complex"


def _anonymous_file() -> int:
    """A descriptor of a new file with no name: nothing is left behind, however the
    process ends (Linux: in memory, ``memfd_create``)."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("avgen-graph", os.MFD_CLOEXEC)
    with tempfile.TemporaryFile() as named_by_no_one:  # pragma: no cover - not Linux
        return os.dup(named_by_no_one.fileno())


@contextlib.contextmanager
def _graphs_by_descriptor(args: Sequence[str]) -> Iterator[tuple[list[str], tuple[int, ...]]]:
    """``args`` with each ``-filter_complex`` graph read by ffmpeg from an inherited
    descriptor (``pipe:<fd>``) instead of taken as an argument, and those descriptors
    (``pass_fds``), open for the block.

    A picture's graph grows with its scenes and cards, and Linux takes at most 128 KiB in
    one argument ("argument list too long"); a file has no such limit. The files have no
    name, so nothing is left behind. Where a process inherits no descriptor (Windows), the
    graphs stay arguments.
    """
    command = list(args)
    fds: list[int] = []
    try:
        if os.name == "posix" and "-filter_complex" in command[:-1]:
            option = _graph_file_option(ffmpeg_exe())
            for position, arg in enumerate(command[:-1]):
                if arg == "-filter_complex":
                    fd = _anonymous_file()
                    fds.append(fd)
                    with open(fd, "wb", closefd=False) as graph:
                        graph.write(command[position + 1].encode())
                    os.lseek(fd, 0, os.SEEK_SET)
                    command[position:position + 2] = [option, f"pipe:{fd}"]
        yield command, tuple(fds)
    finally:
        for fd in fds:
            os.close(fd)


def run_ffmpeg_sync(args: Sequence[str], *, what: str = "ffmpeg",
                    cwd: Path | None = None) -> None:
    """Run ffmpeg with ``args`` (after the common flags) and wait.

    The process dies with this one (see the module's description), and is killed if the
    wait is interrupted (Ctrl-C). A ``-filter_complex`` graph may be of any length: it
    reaches ffmpeg through an inherited descriptor, not as an argument.

    Raises:
        FFmpegError: ffmpeg failed; its last lines of output are attached.
    """
    with _graphs_by_descriptor(args) as (command, fds):
        proc = subprocess.run(_command(command, False), capture_output=True, text=True,
                              errors="replace", cwd=cwd, check=False, pass_fds=fds,
                              **_child_options())
    if proc.returncode != 0:
        raise FFmpegError(what, proc.returncode, proc.stderr)


async def run_ffmpeg(
    args: Sequence[str],
    *,
    total: float | None = None,
    progress: ProgressCallback | None = None,
    what: str = "ffmpeg",
    cwd: Path | None = None,
    loglevel: str = "error",
    keep_lines: int = 40,
) -> str:
    """Run ffmpeg without blocking the event loop, reporting progress.

    Args:
        args: Arguments after the common flags (inputs, filters, output).
        total: Expected output length in seconds, to turn ffmpeg's position into a fraction.
        progress: Called with the fraction done as ffmpeg reports it.
        what: Names the work in an error message.
        cwd: Working folder for the process.
        loglevel: ffmpeg's ``-loglevel`` (``info`` to read a filter's report).
        keep_lines: How many of the last lines of ffmpeg's error stream to keep.

    Returns:
        The last lines ffmpeg printed on its error stream.

    The process dies with this one, even by SIGKILL on Linux (see the module's
    description). If the task is cancelled, or reading the output fails, the process is
    killed and reaped before the exception propagates. A ``-filter_complex`` graph may be
    of any length: it reaches ffmpeg through an inherited descriptor, not as an argument.

    Raises:
        FFmpegError: ffmpeg failed; its last lines of output are attached.
    """
    with _graphs_by_descriptor(args) as (command, fds):
        proc = await asyncio.create_subprocess_exec(
            *_command(command, progress is not None and bool(total), loglevel),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd,
            pass_fds=fds, **_child_options(),
        )
    assert proc.stdout is not None and proc.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=keep_lines)

    async def read_progress() -> None:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            key, _, value = raw.decode("ascii", "replace").strip().partition("=")
            if key == "out_time_us" and progress and total and value.isdigit():
                progress(min(1.0, int(value) / 1e6 / total))

    async def read_errors() -> None:
        assert proc.stderr is not None
        async for raw in proc.stderr:
            tail.append(raw.decode("utf-8", "replace").rstrip())

    try:
        await asyncio.gather(read_progress(), read_errors())
        code = await proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.shield(proc.wait())
        raise
    if code != 0:
        raise FFmpegError(what, code, "\n".join(tail))
    if progress:
        progress(1.0)
    return "\n".join(tail)


_LOUDNESS = re.compile(r"^\s*I:\s+(-?[\d.]+|-inf) LUFS", re.MULTILINE)


_SUMMARY = re.compile(r"Parsed_ebur128_(\d+) @ [^\]]*\] Summary:")


async def measure_loudness(args: Sequence[str]) -> list[float | None]:
    """Run an ffmpeg command whose graph has ``ebur128`` meters; their integrated loudness.

    Returns:
        One value (LUFS) per meter, in the order the meters appear in the graph; ``None``
        where a meter measured nothing above the R128 gate (silence).
    """
    report = await run_ffmpeg([*args], what="measuring loudness", loglevel="info",
                              keep_lines=100_000)
    found: list[tuple[int, float | None]] = []
    marks = list(_SUMMARY.finditer(report))
    for position, mark in enumerate(marks):
        end = marks[position + 1].start() if position + 1 < len(marks) else len(report)
        value = _LOUDNESS.search(report, mark.end(), end)
        loud = float(value.group(1)) if value and value.group(1) != "-inf" else None
        found.append((int(mark.group(1)), None if loud is not None and loud <= -69.0
                      else loud))
    return [loud for _, loud in sorted(found)]


_PEAK = re.compile(r"(?:True|Sample) peak:\s*\n\s*Peak:\s+(-?[\d.]+|-inf) dBFS")


async def measure_mix(args: Sequence[str]) -> list[tuple[float | None, float | None]]:
    """Run an ffmpeg command whose graph has ``ebur128`` meters.

    Returns:
        Per meter, in the order the meters appear in the graph: the integrated loudness
        (LUFS; ``None`` when nothing is above the R128 gate) and the peak the meter was
        asked for (``peak=sample``: dBFS, ``peak=true``: dBTP; ``None`` when it was not
        asked for, or for digital silence).
    """
    report = await run_ffmpeg([*args], what="measuring loudness", loglevel="info",
                              keep_lines=100_000)
    found: list[tuple[int, tuple[float | None, float | None]]] = []
    marks = list(_SUMMARY.finditer(report))
    for position, mark in enumerate(marks):
        end = marks[position + 1].start() if position + 1 < len(marks) else len(report)
        loud = _LOUDNESS.search(report, mark.end(), end)
        peak = _PEAK.search(report, mark.end(), end)
        integrated = float(loud.group(1)) if loud and loud.group(1) != "-inf" else None
        true_peak = float(peak.group(1)) if peak and peak.group(1) != "-inf" else None
        if integrated is not None and integrated <= -69.0:
            integrated = None
        found.append((int(mark.group(1)), (integrated, true_peak)))
    return [levels for _, levels in sorted(found)]


async def measure_sound(path: Path) -> tuple[float | None, float | None]:
    """The first sound stream of the media file at ``path`` as ffmpeg's R128 meter measures
    it: its integrated loudness (LUFS) and its true peak (dBTP), each ``None`` for
    silence."""
    ((integrated, peak),) = await measure_mix([
        "-i", str(path), "-map", "0:a:0", "-af", "ebur128=peak=true", "-f", "null", "-"])
    return integrated, peak
