"""`Price`: what one model costs per unit.

The prices themselves are data, in the model catalogue (`avgen.agents.google.CATALOGUE`):
Google's public list prices in US dollars, as published on the Gemini API and Vertex AI
pricing pages on the day each was checked. Discounts (batch, committed use, free tiers) are
not modelled: treat an estimate as the list price of the work, and pass your own `Price`
objects (``prices=`` of `avgen.agents.google.google_agents`) when yours differ.
"""

from __future__ import annotations

__docformat__ = "google"

import attrs

__all__ = ["Price"]

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
