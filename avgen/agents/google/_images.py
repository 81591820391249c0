"""Stills from Google: `ImagenImages` (Imagen, Vertex AI) and `GeminiImages` (a Gemini image
model, which the Developer API serves too).

Both ask for the preset's aspect ratio (the nearest the model offers), keep a "no text in
the picture" instruction in the prompt (captions are added later), and report a filtered
image as `avgen.errors.ContentRejected` with the reason the service gave, so the scene
falls back to a procedural card and the manifest says why.
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avgen._models import ImageAsset, Preset, Scene, VideoRequest
from avgen.agents.google._cache import AssetCache
from avgen.agents.google._common import GoogleAgent, planned_scenes
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._prices import Price
from avgen.costs import Charge, paid_call
from avgen.errors import ContentRejected, MediaError, UsageError
from avgen.media._ffmpeg import probe

__all__ = ["GeminiImages", "ImagenImages"]

ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
"""The aspect ratios both image services accept."""


def aspect_ratio(preset: Preset) -> str:
    """The accepted aspect ratio nearest to the preset's frame."""
    ratio = preset.width / preset.height

    def distance(option: str) -> float:
        w, h = (int(x) for x in option.split(":"))
        return abs(w / h - ratio)

    return min(ASPECT_RATIOS, key=distance)


def _prompt(scene: Scene) -> str:
    return (f"{scene.visual or scene.narration}\n"
            "A single photograph-quality frame. No text, letters, captions or watermarks.")


class _Stills(GoogleAgent):
    """What both image agents share: cache, charge, checks on the file."""

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Write a picture for ``scene`` at ``target`` in the preset's aspect ratio.

        Raises:
            ContentRejected: The prompt or the picture was filtered (with the reason).
            AgentError: The service answered without a picture.
        """
        prompt, ratio = _prompt(scene), aspect_ratio(preset)
        key = AssetCache.key("image", model=self.model, prompt=prompt, aspect=ratio)
        if self._fetch(key, target, report_miss=False):
            return self._describe(target)
        async with self._flight(key):  # one request per picture, whoever asks
            if self._fetch(key, target):  # stored by whoever held the flight before
                return self._describe(target)
            async with self._quota():
                with paid_call(agent=self.name, model=self.model, quantity=1, unit="image",
                               usd=self.price.per_image):
                    target.write_bytes(await self._picture(prompt, ratio))
                    asset = self._describe(target)
            self._keep(key, target)
        return asset

    def _describe(self, target: Path) -> ImageAsset:
        info = probe(target)
        if not info.has_video or not info.width or not info.height:
            raise MediaError(f"{self.name} sent something that is not a picture", target)
        return ImageAsset(target, info.width, info.height)

    async def _picture(self, prompt: str, ratio: str) -> bytes:
        raise NotImplementedError

    def estimate(self, request: VideoRequest) -> list[Charge]:
        """One picture per planned scene."""
        count = planned_scenes(request)
        return [Charge(self.name, self.model, count, "image", count * self.price.per_image)]


class ImagenImages(_Stills):
    """Stills from Imagen (needs Vertex AI in google-genai 3.x).

    Args:
        connection: The shared connection.
        model: An Imagen model.
        cache: Where pictures are kept: the same prompt and shape is paid once.
        prices: Price overrides by model id.
        max_concurrency: Requests in flight at once.
        requests_per_minute: Requests started in any 60 s (``None``: no limit).
        person_generation: Imagen's ``person_generation`` setting (``None``: its default).
    """

    kind = "imagen"
    needs = "imagen"

    def __init__(self, connection: GoogleConnection,
                 model: str = "imagen-4.0-fast-generate-001", *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 max_concurrency: int = 4,
                 requests_per_minute: float | None = None,
                 person_generation: str | None = None) -> None:
        super().__init__(connection, model, cache=cache, prices=prices,
                         max_concurrency=max_concurrency,
                         requests_per_minute=requests_per_minute)
        from google.genai import types

        allowed = [member.value for member in types.PersonGeneration]
        if person_generation is not None and person_generation not in allowed:
            raise UsageError("person_generation", f"must be one of {', '.join(allowed)} or "
                             f"None, not {person_generation!r}")
        self.person_generation = person_generation
        """Imagen's ``person_generation`` setting."""

    def _person(self) -> Any:
        from google.genai import types

        if self.person_generation is None:
            return None
        return types.PersonGeneration(self.person_generation)

    async def _picture(self, prompt: str, ratio: str) -> bytes:
        from google.genai import types

        config = types.GenerateImagesConfig(number_of_images=1, aspect_ratio=ratio,
                                            include_rai_reason=True,
                                            person_generation=self._person())
        response = await self._api(lambda: self.connection.client.aio.models.generate_images(
            model=self.model, prompt=prompt, config=config))
        for generated in response.generated_images or []:
            image = generated.image
            if image is not None and image.image_bytes:
                return bytes(image.image_bytes)
            if generated.rai_filtered_reason:
                raise ContentRejected("the picture was filtered", self.name,
                                      reason=self._redact(generated.rai_filtered_reason))
        raise ContentRejected("no picture came back (filtered)", self.name,
                              reason="no image in the answer")


class GeminiImages(_Stills):
    """Stills from a Gemini image model (served by the Developer API and by Vertex AI).

    Args:
        connection: The shared connection.
        model: A Gemini image model.
        cache: Where pictures are kept: the same prompt and shape is paid once.
        prices: Price overrides by model id.
        max_concurrency: Requests in flight at once.
        requests_per_minute: Requests started in any 60 s (``None``: no limit).
    """

    kind = "gemini-image"
    needs = "gemini_image"

    def __init__(self, connection: GoogleConnection, model: str = "gemini-2.5-flash-image", *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 max_concurrency: int = 4,
                 requests_per_minute: float | None = None) -> None:
        super().__init__(connection, model, cache=cache, prices=prices,
                         max_concurrency=max_concurrency,
                         requests_per_minute=requests_per_minute)

    async def _picture(self, prompt: str, ratio: str) -> bytes:
        from google.genai import types

        config = types.GenerateContentConfig(response_modalities=["IMAGE"],
                                             image_config=types.ImageConfig(aspect_ratio=ratio))
        response = await self._api(lambda: self.connection.client.aio.models.generate_content(
            model=self.model, contents=prompt, config=config))
        return bytes(self._inline(response, "image/", "picture").data)
