"""The price of every Google model the google agents call, in one table.

Prices are Google's public list prices in US dollars, as published on the Gemini API and
Vertex AI pricing pages (ai.google.dev/gemini-api/docs/pricing,
cloud.google.com/vertex-ai/generative-ai/pricing) on `SOURCE_DATE`. They change, and
discounts (batch, committed use, free tiers) are not modelled: treat an estimate as the
list price of the work, and pass your own `Price` objects (``prices=`` of
`avgen.agents.google.google_agents`) when yours differ.

A model id that is not in the table is priced by its family (``veo-3…-fast…`` as Veo Fast,
``imagen-…-ultra…`` as Imagen Ultra, …), so a new dated release of a known family is still
priced; an id of no known family is refused up front.
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Mapping

import attrs

from avgen.errors import UsageError

__all__ = ["PRICES", "SOURCE_DATE", "Price", "price_of"]

SOURCE_DATE = "2026-11-26"
"""The day the table was last reviewed against published list prices."""

TTS_TOKENS_PER_SECOND = 32
"""Audio tokens Gemini counts per second of speech (used to price speech per second)."""


@attrs.frozen
class Price:
    """What one model costs, per unit (all in US dollars; 0 where the unit does not apply)."""

    input_per_million: float = 0.0
    """Per million input (prompt) tokens."""
    output_per_million: float = 0.0
    """Per million output tokens (text)."""
    per_image: float = 0.0
    """Per generated image."""
    per_video_second: float = 0.0
    """Per second of generated video without audio."""
    per_video_second_audio: float = 0.0
    """Per second of generated video with audio (Veo 3); equals the silent price if 0."""
    per_video_second_4k: float = 0.0
    """Per second of 4k video without audio; equals the 720p/1080p price if 0."""
    per_video_second_4k_audio: float = 0.0
    """Per second of 4k video with audio; equals the 4k silent price if 0."""
    per_audio_second: float = 0.0
    """Per second of generated speech."""

    def video(self, seconds: float, audio: bool, resolution: str | None = None) -> float:
        """The price of ``seconds`` of video (720p and 1080p cost the same; 4k more)."""
        rate = self.per_video_second_audio if audio and self.per_video_second_audio \
            else self.per_video_second
        if resolution == "4k" and self.per_video_second_4k:
            rate = self.per_video_second_4k_audio if audio and self.per_video_second_4k_audio \
                else self.per_video_second_4k
        return rate * seconds

    def tokens(self, input_tokens: float, output_tokens: float) -> float:
        """The price of a text call."""
        return (input_tokens * self.input_per_million
                + output_tokens * self.output_per_million) / 1e6


def _veo(silent: float, audio: float, silent_4k: float = 0.0, audio_4k: float = 0.0) -> Price:
    return Price(per_video_second=silent, per_video_second_audio=audio,
                 per_video_second_4k=silent_4k, per_video_second_4k_audio=audio_4k)


def _speech(input_per_million: float, output_per_million: float) -> Price:
    return Price(input_per_million=input_per_million,
                 per_audio_second=output_per_million * TTS_TOKENS_PER_SECOND / 1e6)


PRICES: Mapping[str, Price] = {
    # text (structured scripts)
    "gemini-2.5-flash": Price(input_per_million=0.30, output_per_million=2.50),
    "gemini-2.5-flash-lite": Price(input_per_million=0.10, output_per_million=0.40),
    "gemini-2.5-pro": Price(input_per_million=1.25, output_per_million=10.00),
    # speech
    "gemini-2.5-flash-preview-tts": _speech(0.50, 10.00),
    "gemini-2.5-pro-preview-tts": _speech(1.00, 20.00),
    # stills
    "gemini-2.5-flash-image": Price(per_image=0.039),
    "imagen-4.0-generate-001": Price(per_image=0.04),
    "imagen-4.0-fast-generate-001": Price(per_image=0.02),
    "imagen-4.0-ultra-generate-001": Price(per_image=0.06),
    "imagen-3.0-generate-002": Price(per_image=0.04),
    # clips: Veo 3.1 (standard and fast tiers), Veo 3, Veo 2
    "veo-3.1-generate-001": _veo(0.20, 0.40, 0.40, 0.60),
    "veo-3.1-fast-generate-001": _veo(0.10, 0.15, 0.30, 0.35),
    "veo-3.1-generate-preview": _veo(0.20, 0.40, 0.40, 0.60),
    "veo-3.1-fast-generate-preview": _veo(0.10, 0.15, 0.30, 0.35),
    "veo-3.0-generate-001": _veo(0.20, 0.40),
    "veo-3.0-fast-generate-001": _veo(0.10, 0.15),
    "veo-2.0-generate-001": Price(per_video_second=0.50),
}
"""List prices by model id."""

# (words the id must contain, the table entry to use), most specific first
_FAMILIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("veo-2",), "veo-2.0-generate-001"),
    (("veo", "fast"), "veo-3.1-fast-generate-001"),
    (("veo",), "veo-3.1-generate-001"),
    (("imagen", "ultra"), "imagen-4.0-ultra-generate-001"),
    (("imagen", "fast"), "imagen-4.0-fast-generate-001"),
    (("imagen",), "imagen-4.0-generate-001"),
    (("gemini", "pro", "tts"), "gemini-2.5-pro-preview-tts"),
    (("gemini", "tts"), "gemini-2.5-flash-preview-tts"),
    (("gemini", "image"), "gemini-2.5-flash-image"),
    (("gemini", "lite"), "gemini-2.5-flash-lite"),
    (("gemini", "pro"), "gemini-2.5-pro"),
    (("gemini",), "gemini-2.5-flash"),
)


def price_of(model: str, prices: Mapping[str, Price] | None = None) -> Price:
    """The price of ``model``: from ``prices`` (your overrides), the table, or its family.

    Example:
        >>> price_of("veo-3.1-fast-generate-001").video(8, audio=False)
        0.8
        >>> price_of("veo-3.1-generate-001").video(8, audio=False, resolution="4k")
        3.2
        >>> price_of("imagen-5.0-ultra-generate-002").per_image   # priced by its family
        0.06

    Raises:
        UsageError: No price is known for ``model``.
    """
    name = model.removeprefix("models/").rsplit("/", 1)[-1]
    for table in (prices or {}, PRICES):
        if name in table:
            return table[name]
    for words, known in _FAMILIES:
        if all(word in name for word in words):
            return PRICES[known]
    raise UsageError("model", f"no price is known for {model!r}; pass prices={{{name!r}: "
                     "Price(...)}} to google_agents")
