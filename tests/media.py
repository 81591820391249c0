"""Real media for tests: make it with ffmpeg (or Python's `wave`), and decode it back.

Nothing here is mocked: `make_clip` and `make_image` run the ffmpeg avgen runs, and
`decode`, `gray_frame` and `mean_luma` decode the real output, so a test checks what a
player would see and hear.
"""

from __future__ import annotations

import itertools
import math
import re
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import TypedDict

from avgen.media._ffmpeg import ffmpeg_exe, probe

__all__ = [
    "DECODE_RATE",
    "Decoded",
    "decode",
    "gray_frame",
    "make_clip",
    "make_image",
    "make_wav",
    "mean_abs_diff",
    "mean_luma",
]

DECODE_RATE = 48_000
"""Sample rate `decode` resamples audio to before counting samples."""

Box = tuple[int, int, int, int]
"""A rectangle of a frame: x, y, width, height in pixels."""


def _ffmpeg(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    """Run ffmpeg quietly (errors only); raise with its stderr when it fails."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error", *args],
                          capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"ffmpeg {' '.join(args)} failed ({proc.returncode}):\n"
                             + proc.stderr.decode("utf-8", "replace"))
    return proc


def make_wav(path: Path, seconds: float, rate: int = 22050, freq: float = 440) -> Path:
    """Write a mono 16-bit sine WAV of exactly ``round(seconds * rate)`` samples."""
    count = round(seconds * rate)
    samples = (round(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(count))
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def make_clip(path: Path, seconds: float, width: int, height: int, fps: int = 25,
              audio: bool = False) -> Path:
    """Write an H.264 MP4 of ffmpeg's ``testsrc2`` pattern, with a sine track if ``audio``."""
    args = ["-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={fps}:d={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:d={seconds}",
                 "-c:a", "aac", "-b:a", "64k"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)]
    _ffmpeg(*args)
    return path


def make_image(path: Path, width: int, height: int) -> Path:
    """Write one frame of ffmpeg's ``testsrc2`` pattern as an image (format from the suffix)."""
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s={width}x{height}", "-frames:v", "1",
            "-update", "1", str(path))
    return path


class Decoded(TypedDict):
    """What `decode` found in a file."""

    errors: str
    """Everything ffmpeg printed at ``-v error`` while decoding every stream: empty when
    the file decodes cleanly."""
    frames: int
    """Video frames decoded (0 without video)."""
    audio_samples: int
    """Audio samples decoded, per channel, at `DECODE_RATE` (0 without audio)."""
    audio_duration: float
    """``audio_samples / DECODE_RATE``: the exact length of the decoded sound, seconds."""
    width: int
    """Frame width, from `avgen.media._ffmpeg.probe`."""
    height: int
    """Frame height."""
    fps: float
    """Frame rate."""
    duration: float | None
    """Container duration."""
    has_video: bool
    """There is a video stream."""
    has_audio: bool
    """There is an audio stream."""


def decode(path: Path) -> Decoded:
    """Decode every frame and sample of ``path`` in one ffmpeg run and describe the result.

    The video stream is decoded to ``framemd5`` (one line per frame, every frame kept) and
    the audio to raw mono 16-bit samples at `DECODE_RATE`, whose bytes are counted; any
    decoding error ffmpeg reports ends up in ``errors``.
    """
    info = probe(path)
    with tempfile.TemporaryDirectory(prefix="avgen-decode-") as tmp:
        md5, raw = Path(tmp) / "frames.md5", Path(tmp) / "audio.raw"
        args = ["-i", str(path)]
        if info.has_video:
            args += ["-map", "0:v:0", "-fps_mode", "passthrough", "-f", "framemd5", str(md5)]
        if info.has_audio:
            args += ["-map", "0:a:0", "-ac", "1", "-ar", str(DECODE_RATE), "-f", "s16le",
                     "-c:a", "pcm_s16le", str(raw)]
        proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *args],
                              capture_output=True, timeout=120, check=False)
        errors = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0:
            errors = errors or f"ffmpeg exited with {proc.returncode}"
        frames = 0
        if md5.exists():
            frames = sum(1 for line in md5.read_text().splitlines()
                         if line.strip() and not line.startswith("#"))
        samples = raw.stat().st_size // 2 if raw.exists() else 0
    return Decoded(errors=errors, frames=frames, audio_samples=samples,
                   audio_duration=samples / DECODE_RATE, width=info.width, height=info.height,
                   fps=info.fps, duration=info.duration, has_video=info.has_video,
                   has_audio=info.has_audio)


def gray_frame(path: Path, t: float) -> tuple[int, int, bytes]:
    """Decode the frame shown at ``t`` seconds as 8-bit gray: ``(width, height, pixels)``."""
    info = probe(path)
    proc = _ffmpeg("-ss", f"{t:.6f}", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
                   "-f", "rawvideo", "-pix_fmt", "gray", "-")
    pixels = proc.stdout
    if len(pixels) != info.width * info.height:
        raise AssertionError(f"expected a {info.width}x{info.height} frame at {t} s of {path}, "
                             f"got {len(pixels)} bytes")
    return info.width, info.height, pixels


def _box(width: int, height: int, pixels: bytes, box: Box) -> list[int]:
    x, y, w, h = box
    if not (x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height):
        raise ValueError(f"box {box} is not inside a {width}x{height} frame")
    return [pixels[row * width + col] for row in range(y, y + h) for col in range(x, x + w)]


def mean_luma(path: Path, t: float, box: Box) -> float:
    """Mean brightness (0-255) of ``box`` (x, y, w, h) in the frame shown at ``t`` seconds."""
    values = _box(*gray_frame(path, t), box)
    return sum(values) / len(values)


def mean_abs_diff(a: Path, b: Path, t: float, box: Box) -> float:
    """Mean absolute brightness difference of ``box`` between two videos at ``t`` seconds.

    Zero when the box looks the same in both (e.g. two renders of one deterministic
    timeline); text drawn in one of them makes it clearly positive.
    """
    wa, ha, pa = gray_frame(a, t)
    wb, hb, pb = gray_frame(b, t)
    if (wa, ha) != (wb, hb):
        raise AssertionError(f"frame sizes differ: {wa}x{ha} and {wb}x{hb}")
    va, vb = _box(wa, ha, pa, box), _box(wb, hb, pb, box)
    return sum(abs(p - q) for p, q in zip(va, vb, strict=True)) / len(va)


def measure_loudness(path: Path) -> tuple[float, float]:
    """Integrated loudness (LUFS) and true peak (dBTP) of ``path``'s sound."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
                           "-map", "0:a", "-af", "ebur128=peak=true", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    loud = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"True peak:\s*\n\s*Peak:\s+(-?[\d.]+) dBFS", summary)
    assert loud and peak, summary
    return float(loud.group(1)), float(peak.group(1))


_VTT_TIMESTAMP = re.compile(r"<\d\d:\d\d:\d\d\.\d\d\d>")


def vtt_text(path: Path) -> str:
    """A WebVTT file's text with the word timestamp tags (``<00:00:01.200>``) taken out."""
    return _VTT_TIMESTAMP.sub("", path.read_text("utf-8"))


def rgb_frame(path: Path, t: float) -> tuple[int, int, bytes]:
    """Decode the frame shown at ``t`` seconds as 8-bit RGB: ``(width, height, pixels)``."""
    info = probe(path)
    proc = _ffmpeg("-ss", f"{t:.6f}", "-i", str(path), "-map", "0:v:0", "-frames:v", "1",
                   "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    if len(proc.stdout) != 3 * info.width * info.height:
        raise AssertionError(f"expected a {info.width}x{info.height} frame at {t} s of {path}")
    return info.width, info.height, proc.stdout


class SolidImages:
    """An image generator whose pictures are one grey (``level``, 0-255), so what is drawn
    over them can be told from the picture."""

    name = "solid-images"

    def __init__(self, level: int = 0x20) -> None:
        self.level = level

    async def generate(self, scene: object, preset: object, target: Path) -> object:
        """Write a PNG at ``target``."""
        import asyncio

        from avgen import ImageAsset, Preset
        from avgen.media._ffmpeg import run_ffmpeg_sync

        assert isinstance(preset, Preset)
        color = f"0x{self.level:02x}{self.level:02x}{self.level:02x}"
        await asyncio.to_thread(run_ffmpeg_sync, [
            "-f", "lavfi", "-i", f"color=c={color}:s={preset.width}x{preset.height}",
            "-frames:v", "1", str(target)])
        return ImageAsset(target, preset.width, preset.height)


def _loudness_frames(path: Path, ms: int = 5) -> tuple[list[float], float]:
    """RMS of each ``ms`` frame of a 16-bit mono WAV, and the frame length in seconds."""
    with wave.open(str(path)) as audio:
        rate = audio.getframerate()
        data = audio.readframes(audio.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    hop = rate * ms // 1000
    return [math.sqrt(sum(v * v for v in samples[i:i + hop]) / hop)
            for i in range(0, len(samples) - hop + 1, hop)], ms / 1000


def onsets_after_silence(path: Path, shortest: float = 0.06) -> list[float]:
    """Where sound starts again, in seconds, after each silence of at least ``shortest``
    seconds in a 16-bit mono WAV (silence: under 3 % of the loudest 5 ms)."""
    rms, step = _loudness_frames(path)
    loudest = max(rms, default=0.0)
    loud = [value > loudest * 0.03 for value in rms]
    found, index = [], 0
    while index < len(loud):
        if loud[index]:
            index += 1
            continue
        end = index
        while end < len(loud) and not loud[end]:
            end += 1
        if (end - index) * step >= shortest and end < len(loud):
            found.append(end * step)
        index = end
    return found


def sound_of(video: Path, target: Path, rate: int = 22050) -> Path:
    """The video's sound as a 16-bit mono WAV at ``target``."""
    _ffmpeg("-i", str(video), "-map", "0:a:0", "-ac", "1", "-ar", str(rate),
            "-c:a", "pcm_s16le", "-y", str(target))
    return target


_VTT_CUE = re.compile(r"^(\d\d):(\d\d):(\d\d\.\d\d\d) --> [\d:.]+\n(.+?)(?:\n\n|\Z)",
                      re.MULTILINE | re.DOTALL)
_VTT_WORD = re.compile(r"(?:<(\d\d):(\d\d):(\d\d\.\d\d\d)>)?(\S+)")


def vtt_words(path: Path) -> list[tuple[str, float]]:
    """Each word of a WebVTT file with the time its caption shows it spoken: its timestamp
    tag, or for a cue's first word the cue's start."""
    words = []
    for h, m, s, body in _VTT_CUE.findall(path.read_text("utf-8")):
        at = int(h) * 3600 + int(m) * 60 + float(s)
        for wh, wm, ws, word in _VTT_WORD.findall(body):
            if ws:
                at = int(wh) * 3600 + int(wm) * 60 + float(ws)
            words.append((word, at))
    return words


def distances_to_onsets(words: list[tuple[str, float]], onsets: list[float]) -> list[float]:
    """For each word after a pause (the word before it ends in ``,`` ``.`` or ``;``), how
    far the time given for it (``(word, seconds)``) is from the nearest onset of sound
    within 0.25 s: where a word's start can be heard in the waveform."""
    distances = []
    for (before, _), (word, at) in itertools.pairwise(words):
        if before[-1] not in ",.;":
            continue
        near = [onset for onset in onsets if at - 0.25 <= onset <= at + 0.25]
        if not near:
            raise AssertionError(f"no pause heard before {word!r} at {at:.3f} s")
        distances.append(min(abs(at - onset) for onset in near))
    return distances


def make_music(path: Path, lufs: float, seconds: float = 12.0, kind: str = "chords") -> Path:
    """Write a music-like WAV (32-bit float: loud ones do not clip) whose integrated loudness
    (EBU R128) is ``lufs`` within 0.1 LU: ``chords`` (three tones that swell twice a
    second) or ``noise`` (pink noise, low-passed)."""
    source = {
        "chords": (f"sine=f=220:d={seconds}[a];sine=f=277:d={seconds}[b];"
                   f"sine=f=330:d={seconds}[c];[a][b][c]amix=inputs=3,tremolo=f=2:d=0.7"),
        "noise": f"anoisesrc=color=pink:amplitude=0.3:seed=7:d={seconds},lowpass=f=2500",
    }[kind]
    raw = path.with_name(f"{path.stem}.raw.wav")
    _ffmpeg("-f", "lavfi", "-i", f"{source},aformat=sample_rates=44100:channel_layouts=stereo",
            "-c:a", "pcm_f32le", str(raw))
    for _ in range(3):  # a gain moves the integrated loudness by as much: one pass suffices
        measured = loudness_between(raw, [(0.0, seconds)])
        _ffmpeg("-i", str(raw), "-af", f"volume={lufs - measured:.3f}dB", "-c:a",
                "pcm_f32le", str(path))
        if abs(loudness_between(path, [(0.0, seconds)]) - lufs) <= 0.1:
            break
        raw.write_bytes(path.read_bytes())
    raw.unlink(missing_ok=True)
    return path


def loudness_between(path: Path, stretches: list[tuple[float, float]]) -> float:
    """The integrated loudness (LUFS, EBU R128) of ``path``'s sound in the given stretches
    (start and end, seconds), measured as one: the stretches are cut out and joined."""
    cuts = "".join(f"[s{n}]atrim=start={a:.3f}:end={b:.3f},asetpts=N/SR/TB[t{n}];"
                   for n, (a, b) in enumerate(stretches))
    graph = (f"[0:a]asplit={len(stretches)}" + "".join(f"[s{n}]" for n in range(len(stretches)))
             + ";" + cuts + "".join(f"[t{n}]" for n in range(len(stretches)))
             + f"concat=n={len(stretches)}:v=0:a=1,ebur128=framelog=quiet[out]")
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
                           "-filter_complex", graph, "-map", "[out]", "-f", "null", "-"],
                          capture_output=True, text=True, check=True)
    summary = proc.stderr[proc.stderr.rindex("Summary:"):]
    loud = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    assert loud, summary
    return float(loud.group(1))
