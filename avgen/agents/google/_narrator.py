"""`GeminiNarrator`: narration spoken by a Gemini text-to-speech model.

Older models answer with raw 16-bit little-endian mono PCM whose sample rate is in the mime
type (``audio/L16;codec=pcm;rate=24000``); Gemini 3.8 speech models answer with a whole WAV
file. The narrator reads either (by what the bytes are, not what the label says), writes
one WAV of its own, and measures the duration from the samples. Long narration is
split at sentence boundaries into parts of at most ``max_chars`` characters, spoken one
after the other and joined; each sentence gets a caption segment, timed within its part in
proportion to its length.
"""

from __future__ import annotations

__docformat__ = "google"

import io
import re
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avgen._models import AudioAsset, Segment, VideoRequest
from avgen._validate import number
from avgen.agents._assets.cache import AssetCache
from avgen.agents.google._common import (
    WORDS_PER_SECOND,
    GoogleAgent,
    planned_scenes,
    planned_seconds,
)
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._prices import Price
from avgen.agents.local._script import split_sentences
from avgen.costs import Charge, paid_call
from avgen.errors import AgentError, UsageError

__all__ = ["GeminiNarrator"]

VOICES = ("Achernar", "Achird", "Algenib", "Algieba", "Alnilam", "Aoede", "Autonoe",
          "Callirrhoe", "Charon", "Despina", "Enceladus", "Erinome", "Fenrir", "Gacrux",
          "Iapetus", "Kore", "Laomedeia", "Leda", "Orus", "Puck", "Pulcherrima", "Rasalgethi",
          "Sadachbia", "Sadaltager", "Schedar", "Sulafat", "Umbriel", "Vindemiatrix",
          "Zephyr", "Zubenelgenubi")
"""The prebuilt voices of the Gemini speech models."""

_RATE = re.compile(r"rate=(\d+)")


def pcm_rate(mime_type: str | None, default: int = 24000) -> int:
    """The sample rate in a PCM mime type such as ``audio/L16;codec=pcm;rate=24000``."""
    match = _RATE.search(mime_type or "")
    return int(match.group(1)) if match else default


def _parts(text: str, max_chars: int) -> list[list[str]]:
    """Sentences grouped into parts of at most ``max_chars`` (a longer sentence stays whole)."""
    parts: list[list[str]] = []
    size = 0
    for sentence in split_sentences(text) or [text.strip()]:
        if parts and size + len(sentence) + 1 <= max_chars:
            parts[-1].append(sentence)
            size += len(sentence) + 1
        else:
            parts.append([sentence])
            size = len(sentence)
    return parts


class GeminiNarrator(GoogleAgent):
    """Speaks narration with a Gemini TTS model.

    Args:
        connection: The shared connection.
        model: A Gemini speech model (``None``: the catalogue's default).
        voice: The default voice, one of `VOICES` (``VideoRequest.voice`` overrides it).
        cache: Where narrations are kept: the same text in the same voice is paid once.
        prices: Price overrides by model id.
        max_chars: The longest part spoken in one request.
        max_concurrency: Requests in flight at once.
        requests_per_minute: Requests started in any 60 s (``None``: no limit).
    """

    kind = "gemini-tts"
    needs = "speech"
    model_kind = "speech"

    def __init__(self, connection: GoogleConnection,
                 model: str | None = None, *, voice: str = "Kore",
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 max_chars: int = 800, max_concurrency: int = 4,
                 requests_per_minute: float | None = None) -> None:
        super().__init__(connection, model, cache=cache, prices=prices,
                         max_concurrency=max_concurrency,
                         requests_per_minute=requests_per_minute)
        self.voice = self._voice(voice, "voice")
        """The default voice."""
        self.max_chars = number("max_chars", max_chars, integer=True, low=80)
        """The longest part spoken in one request."""

    @staticmethod
    def _voice(voice: str, field: str) -> str:
        for known in VOICES:
            if voice.strip().lower() == known.lower():
                return known
        raise UsageError(field, f"unknown Gemini voice {voice!r}; choose one of "
                         f"{', '.join(VOICES)}")

    def check(self, request: VideoRequest) -> None:
        """Validate the request's voice before any work.

        Raises:
            UsageError: The voice is not one of `VOICES`, or the mode cannot speak.
        """
        super().check(request)
        if request.voice is not None:
            self._voice(request.voice, "voice")

    def estimate(self, request: VideoRequest) -> list[Charge]:
        """The expected price of each planned scene's narration."""
        scenes = planned_scenes(request)
        seconds = planned_seconds(request) / scenes
        tokens = seconds * WORDS_PER_SECOND * 1.4
        usd = seconds * self.price.per_audio_second + self.price.tokens(tokens, 0)
        return [Charge(self.name, self.model, round(seconds, 1), "audio_second", usd, scene=i)
                for i in range(scenes)]

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        """Speak ``text`` into a 16-bit mono WAV at ``target``.

        Raises:
            ContentRejected: A safety filter blocked the text.
            AgentError: The model sent no audio.
        """
        chosen = self._voice(voice, "voice") if voice else self.voice
        key = AssetCache.key("speech", model=self.model, voice=chosen, text=text,
                             max_chars=self.max_chars)
        if self._fetch(key, target, report_miss=False):
            return self._describe(target, text)
        async with self._flight(key):  # one request per narration, whoever asks
            if self._fetch(key, target):  # stored by whoever held the flight before
                return self._describe(target, text)
            asset = await self._spoken(text, chosen, target)
            await self._keep(key, target)
        return asset

    async def _spoken(self, text: str, voice: str, target: Path) -> AudioAsset:
        """Speak ``text`` part by part (paid) into the WAV at ``target``."""
        pcm_parts: list[bytes] = []
        rate = 0
        for sentences in _parts(text, self.max_chars):
            pcm, part_rate = await self._say(" ".join(sentences), voice)
            if rate and part_rate != rate:
                raise AgentError(f"the speech changed sample rate ({rate} → {part_rate})",
                                 self.name)
            rate = part_rate
            pcm_parts.append(pcm[: len(pcm) // 2 * 2])
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            for pcm in pcm_parts:
                wav.writeframes(pcm)
        return self._describe(target, text)

    def _describe(self, path: Path, text: str) -> AudioAsset:
        """Measure the WAV and time its sentences (in proportion to their length per part)."""
        with wave.open(str(path), "rb") as wav:
            duration = wav.getnframes() / wav.getframerate()
        if duration <= 0:
            raise AgentError("the speech is empty", self.name)
        sentences = split_sentences(text) or [text.strip()]
        weights = [max(1, len(s)) for s in sentences]
        total = sum(weights)
        segments, start = [], 0.0
        for sentence, weight in zip(sentences, weights, strict=True):
            end = min(duration, start + duration * weight / total)
            segments.append(Segment(sentence, start, end))
            start = end
        return AudioAsset(path, duration, tuple(segments))

    async def _say(self, text: str, voice: str) -> tuple[bytes, int]:
        """One paid request: the PCM of ``text`` and its sample rate."""
        from google.genai import types

        config = types.GenerateContentConfig(
            response_modalities=["AUDIO"],
            speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
                prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice))))
        expected = max(1.0, len(text.split()) / WORDS_PER_SECOND)
        async with self._quota():
            with paid_call(agent=self.name, model=self.model, quantity=round(expected, 2),
                           unit="audio_second", usd=expected * self.price.per_audio_second
                           + self.price.tokens(len(text) / 4, 0)) as bill:
                response = await self._api(lambda: self.connection.client.aio.models
                                           .generate_content(model=self.model, contents=text,
                                                             config=config))
                pcm, rate = self._audio(response)
                seconds = len(pcm) / 2 / rate
                bill.settle(quantity=round(seconds, 3), usd=seconds * self.price.per_audio_second
                            + self.price.tokens(len(text) / 4, 0))
        return pcm, rate

    def _audio(self, response: Any) -> tuple[bytes, int]:
        """The 16-bit mono samples of an answer and their rate: from a WAV file, or raw
        PCM at the rate its mime type names."""
        data = self._inline(response, "audio/", "narration")
        audio = bytes(data.data)
        if audio[:4] == b"RIFF":
            try:
                with wave.open(io.BytesIO(audio), "rb") as wav:
                    if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                        raise AgentError(f"the speech is a WAV of {wav.getnchannels()} "
                                         f"channel(s) of {8 * wav.getsampwidth()}-bit "
                                         "samples, not 16-bit mono", self.name)
                    rate = wav.getframerate()
                    audio = wav.readframes(wav.getnframes())
            except (wave.Error, EOFError) as exc:
                raise AgentError(f"the speech is not a readable WAV file ({exc})",
                                 self.name) from None
        else:
            rate = pcm_rate(data.mime_type)
        if not 8000 <= rate <= 192000:
            raise AgentError(f"unusable sample rate {rate} in {data.mime_type!r}", self.name)
        return audio, rate
