"""What a WAV file's header says, read without starting a process.

Narrators write WAV files (Piper's voice, Google's speech), and every narration is measured
as soon as it is made, between the paid call and its record, where nothing may wait on the
event loop. A plain WAV file of one or two channels of PCM or float samples, whose data
chunk lies whole in the file after nothing but its ``fmt`` chunk (and ``fact`` or ``JUNK``
ones), is described here from its header, as ffmpeg would describe it; any other file
(another codec, more channels, tags, a header that claims more data than the file holds, a
stream of unknown length) is left to ffmpeg (`wav_info` returns ``None``).
"""

from __future__ import annotations

__docformat__ = "google"

import struct
from pathlib import Path

import attrs

__all__: list[str] = []

_PCM, _FLOAT, _EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_CODECS = {(_PCM, 8): "pcm_u8", (_PCM, 16): "pcm_s16le", (_PCM, 24): "pcm_s24le",
           (_PCM, 32): "pcm_s32le", (_FLOAT, 32): "pcm_f32le", (_FLOAT, 64): "pcm_f64le"}
"""ffmpeg's names of the sample formats read here, by format tag and bits per sample."""
_LAYOUTS = {1: "mono", 2: "stereo"}
_SKIPPED = (b"fact", b"JUNK")
"""Chunks that may stand before the data: ffmpeg skips them as well."""
_HEADER_BYTES = 64 * 1024
"""How far into the file the ``data`` chunk's header may start (the chunks before it —
``fmt``, ``LIST``, ``fact`` — are small)."""


@attrs.frozen
class WavInfo:
    """A WAV file as its header describes it."""

    duration: float
    """Length in seconds: the data chunk's frames over the sample rate."""
    codec: str
    """The samples' format as ffmpeg names it (``pcm_s16le`` …)."""
    sample_rate: int
    """Frames per second."""
    channels: str
    """``mono`` or ``stereo``."""


def wav_info(path: Path, size: int) -> WavInfo | None:
    """The header of the WAV file at ``path`` (``size`` bytes long), or ``None`` when it is
    not a WAV file described here (see the module's description)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEADER_BYTES)
    except OSError:
        return None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    fmt: tuple[int, int, int, int, int] | None = None
    at = 12
    while at + 8 <= len(head):
        chunk, length = head[at:at + 4], struct.unpack_from("<I", head, at + 4)[0]
        body = at + 8
        if chunk == b"fmt ":
            if length < 16 or body + length > len(head):
                return None
            tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", head, body)
            if tag == _EXTENSIBLE:
                if length < 40:
                    return None
                tag = struct.unpack_from("<H", head, body + 24)[0]  # the sub-format's tag
            fmt = (tag, channels, rate, align, bits)
        elif chunk == b"data":
            return _described(fmt, length, size - body)
        elif chunk not in _SKIPPED:
            return None  # ffmpeg reads it (a LIST of tags …), and may refuse it
        at = body + length + (length & 1)  # chunks are padded to an even length
    return None


def _described(fmt: tuple[int, int, int, int, int] | None, length: int,
               available: int) -> WavInfo | None:
    """The file's description from its ``fmt`` chunk and its ``data`` chunk's declared
    ``length`` (``available``: the bytes the file holds from the data on)."""
    if fmt is None:
        return None
    tag, channels, rate, align, bits = fmt
    codec = _CODECS.get((tag, bits))
    layout = _LAYOUTS.get(channels)
    if (codec is None or layout is None or rate <= 0 or align != channels * bits // 8
            or length > available or length % align):
        return None  # another codec or layout, or a cut or streamed file: ffmpeg decides
    return WavInfo(length // align / rate, codec, rate, layout)
