"""A WAV file is described from its header as ffmpeg describes it, or left to ffmpeg.

Every narration is measured between its paid call and its record; a WAV file's header is
read there instead of starting ffmpeg. These properties hold the header's reading to
ffmpeg's own description of the same files, and show what is left to ffmpeg.
"""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from avgen.errors import MediaError
from avgen.media._ffmpeg import _ffmpeg_probe, probe
from avgen.media._wav import wav_info

RATES = st.sampled_from([8000, 11025, 16000, 22050, 24000, 44100, 48000, 96000])


def pcm_wav(path: Path, channels: int, width: int, rate: int, frames: int) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(bytes((n * 37) % 256 for n in range(frames * channels * width)))
    return path


def chunk(name: bytes, body: bytes) -> bytes:
    return name + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def float_wav(path: Path, channels: int, bits: int, rate: int, frames: int, *,
              extensible: bool, extra: bytes = b"") -> Path:
    """Float samples (format 3), plainly or as WAVE_FORMAT_EXTENSIBLE, with ``extra``
    chunks (odd lengths padded) between ``fmt`` and ``data``."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else 3, channels, rate, rate * align,
                      align, bits)
    if extensible:  # cbSize, valid bits, channel mask, the float sub-format's GUID
        fmt += struct.pack("<HHI", 22, bits, 3 if channels == 2 else 4) + \
            struct.pack("<H", 3) + bytes.fromhex("000000001000800000aa00389b71")
    sample = struct.pack("<f" if bits == 32 else "<d", 0.25)
    body = chunk(b"fmt ", fmt) + extra + chunk(b"data", sample * channels * frames)
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)
    return path


def assert_as_ffmpeg_says(path: Path) -> None:
    read = wav_info(path, path.stat().st_size)
    said = _ffmpeg_probe(path)
    assert read is not None
    assert said.duration is not None
    assert abs(read.duration - said.duration) <= 0.0101  # ffmpeg prints centiseconds
    assert (read.codec, read.sample_rate, read.channels) == (
        said.audio_codec, said.sample_rate, said.channels)
    assert said.video_codec is None


@settings(max_examples=25, deadline=None)
@given(channels=st.sampled_from([1, 2]), width=st.sampled_from([1, 2, 3, 4]), rate=RATES,
       frames=st.integers(1, 60_000))
@example(channels=1, width=2, rate=22050, frames=22050)  # Piper's voice, one second
@example(channels=1, width=2, rate=24000, frames=1)  # Google's speech, one frame
def test_pcm_reads_as_ffmpeg_describes_it(tmp_path_factory: pytest.TempPathFactory,
                                          channels: int, width: int, rate: int,
                                          frames: int) -> None:
    path = pcm_wav(tmp_path_factory.mktemp("wav") / "voice.wav", channels, width, rate,
                   frames)
    assert_as_ffmpeg_says(path)


@settings(max_examples=20, deadline=None)
@given(channels=st.sampled_from([1, 2]), bits=st.sampled_from([32, 64]), rate=RATES,
       frames=st.integers(1, 30_000), extensible=st.booleans(),
       extra=st.lists(st.binary(max_size=9), max_size=3))
def test_float_and_extensible_files_with_other_chunks_read_as_ffmpeg_describes_them(
        tmp_path_factory: pytest.TempPathFactory, channels: int, bits: int, rate: int,
        frames: int, extensible: bool, extra: list[bytes]) -> None:
    chunks = b"".join(chunk(b"JUNK", body) for body in extra)  # odd lengths are padded
    path = float_wav(tmp_path_factory.mktemp("wav") / "voice.wav", channels, bits, rate,
                     frames, extensible=extensible, extra=chunks)
    assert_as_ffmpeg_says(path)


def test_what_is_not_read_here_is_left_to_ffmpeg(tmp_path: Path) -> None:
    whole = pcm_wav(tmp_path / "whole.wav", 1, 2, 22050, 22050).read_bytes()
    tagged = float_wav(tmp_path / "tagged.wav", 1, 32, 8000, 80, extensible=False,
                       extra=chunk(b"LIST", b""))  # ffmpeg refuses an empty LIST
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole[:len(whole) // 2])  # the header claims more than the file holds
    streamed = tmp_path / "streamed.wav"
    data = whole.index(b"data")
    streamed.write_bytes(whole[:data + 4] + b"\xff\xff\xff\xff" + whole[data + 8:])
    surround = pcm_wav(tmp_path / "surround.wav", 6, 2, 48000, 4800)
    not_wave = tmp_path / "riff.avi"
    not_wave.write_bytes(b"RIFF" + whole[4:8] + b"AVI " + whole[12:])
    text = tmp_path / "text.wav"
    text.write_text("not audio at all", encoding="utf-8")
    for path in (tagged, cut, streamed, surround, not_wave, text):
        assert wav_info(path, path.stat().st_size) is None, path.name
    # ffmpeg describes the cut file and the surround one; the text it refuses
    cut_info, surround_info = probe(cut), probe(surround)
    assert cut_info.has_audio and surround_info.channels == "5.1"
    assert cut_info == _ffmpeg_probe(cut)
    for refused in (text, tagged):
        with pytest.raises(MediaError, match="not a media file"):
            probe(refused)


def test_probe_describes_a_narration_without_ffmpeg(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = pcm_wav(tmp_path / "voice.wav", 1, 2, 22050, 33075)
    monkeypatch.setenv("AVGEN_FFMPEG", str(tmp_path / "no-ffmpeg-here"))
    info = probe(path)
    assert info.duration == 1.5 and info.has_audio and not info.has_video
    assert (info.audio_codec, info.sample_rate, info.channels) == ("pcm_s16le", 22050, "mono")
