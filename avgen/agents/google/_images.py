"""`GeminiImages`: stills from a Gemini image model (``generateContent``), on the Developer
API and on Vertex AI alike.

It asks for the aspect ratio nearest the preset's among those the model makes (from the
catalogue), keeps a "no text in the picture" instruction in the prompt (captions are added
later), and reports a filtered image as `avgen.errors.ContentRejected` with the reason the
service gave, so the scene falls back to a procedural card and the manifest says why.
(Imagen, which Google shut down on 2026-08-17, is not called: a still of it is refused up
front, naming the Gemini image model that replaces it.)
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from avgen._hashing import sha256_hex
from avgen._models import (
    Character,
    ImageAsset,
    Preset,
    Scene,
    Source,
    VideoRequest,
    VisualStyle,
)
from avgen._validate import flag, instance, number
from avgen.agents._assets.cache import AssetCache
from avgen.agents.google._common import GoogleAgent, planned_scenes
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._prices import Price
from avgen.agents.google._rewrite import PromptRewriter, with_rewrites
from avgen.agents.google._script import MAX_CAST
from avgen.costs import Charge, paid_call
from avgen.errors import MediaError
from avgen.media._ffmpeg import probe

__all__ = ["GeminiImages"]

ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
"""The aspect ratios every image model makes (asked of a model the catalogue does not
know)."""


def aspect_ratio(preset: Preset, offered: tuple[str, ...] = ASPECT_RATIOS) -> str:
    """The aspect ratio among ``offered`` nearest to the preset's frame."""
    ratio = preset.width / preset.height

    def distance(option: str) -> float:
        w, h = (int(x) for x in option.split(":"))
        return abs(w / h - ratio)

    return min(offered or ASPECT_RATIOS, key=distance)


_NO_TEXT = "A single photograph-quality frame. No text, letters, captions or watermarks."

MAX_REFERENCES = 3
"""The most reference pictures sent with one request (the first characters of a scene)."""


def _prompt(scene: Scene, visual: str | None = None) -> str:
    """The picture prompt of ``scene`` (with ``visual`` as its own text, when given)."""
    shown = scene if visual is None else attrs.evolve(scene, visual=visual)
    return f"{shown.prompt}\n{_NO_TEXT}"


def _portrait_prompt(description: str, style: VisualStyle | None) -> str:
    """The prompt of a character's reference portrait, from their description."""
    look = f" Style: {style.text.rstrip('.')}." if style is not None else ""
    return (f"A character reference portrait of {description.strip().rstrip('.')}. Head "
            "and shoulders, facing the camera, even light, a plain light background, the "
            f"wardrobe visible.{look} No text, letters or watermarks.")


def references(scene: Scene) -> list[tuple[str, Path]]:
    """The reference pictures of the characters in ``scene`` (name, path), at most
    `MAX_REFERENCES`."""
    return [(c.name, c.reference) for c in scene.characters
            if c.reference is not None][:MAX_REFERENCES]


class GeminiImages(GoogleAgent):
    """Stills from a Gemini image model (served by the Developer API and by Vertex AI).

    Args:
        connection: The shared connection.
        model: A Gemini image model (``None``: the catalogue's default for the connection's
            surface).
        cache: Where pictures are kept: the same prompt and shape is paid once.
        prices: Price overrides by model id.
        max_concurrency: Requests in flight at once.
        requests_per_minute: Requests started in any 60 s (``None``: no limit).
        rewriter: Rewrites a prompt the safety filter refused (``None``: no rewrite).
        rewrites: Rewrites at most per picture.
        references: Send the reference pictures of the characters in a scene with its
            prompt (when the model takes input pictures).
    """

    kind = "gemini-image"
    needs = "gemini_image"
    model_kind = "image"

    def __init__(self, connection: GoogleConnection, model: str | None = None, *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 max_concurrency: int = 4, requests_per_minute: float | None = None,
                 rewriter: PromptRewriter | None = None, rewrites: int = 2,
                 references: bool = True) -> None:
        super().__init__(connection, model, cache=cache, prices=prices,
                         max_concurrency=max_concurrency,
                         requests_per_minute=requests_per_minute)
        instance("rewriter", rewriter, PromptRewriter, optional=True)
        self.rewriter = rewriter
        """Who rewrites a refused prompt (``None``: a refusal is final)."""
        self.rewrites = int(number("rewrites", rewrites, integer=True, low=0, high=10))
        """Rewrites at most per picture."""
        can = self.info.can if self.info is not None else None
        self.aspect_ratios: tuple[str, ...] = (can.aspect_ratios if can is not None
                                               and can.aspect_ratios else ASPECT_RATIOS)
        """The aspect ratios asked of the model."""
        self.max_references = min(MAX_REFERENCES, can.input_images if can is not None
                                  else MAX_REFERENCES)
        """The most reference pictures sent with one prompt."""
        self.takes_references = flag("references", references) and self.max_references > 0
        """Whether the model is sent the reference pictures of the characters in a scene."""

    async def generate(self, scene: Scene, preset: Preset, target: Path) -> ImageAsset:
        """Write a picture for ``scene`` at ``target`` in the preset's aspect ratio.

        The prompt is `avgen.Scene.prompt` (its visual, the characters present, the
        video's style); a model that `takes_references` is also sent their reference
        pictures. A prompt a safety filter refuses is rewritten and tried again (up to
        ``rewrites`` times, with a ``rewriter``).

        Raises:
            ContentRejected: The prompt or the picture was filtered (with the reason), and
                every rewrite was too.
            AgentError: The service answered without a picture.
        """
        ratio = aspect_ratio(preset, self.aspect_ratios)
        pictures = references(scene)[:self.max_references] if self.takes_references else []
        images = [(name, path.read_bytes()) for name, path in pictures]
        method = ("reference images: " + ", ".join(name for name, _ in images) if images
                  else "text-to-image")

        async def attempt(prompt: str) -> ImageAsset:
            return await self._paint(prompt, ratio, [data for _, data in images], target)

        def memo(prompt: str) -> str:
            return self._key(prompt, ratio, [data for _, data in images], refused=True)

        asset, notes, _ = await with_rewrites(
            self, (scene.visual or scene.narration).strip(),
            lambda visual: _prompt(scene, visual), attempt, rewriter=self.rewriter,
            rewrites=self.rewrites, what="picture", memo=memo)
        if scene.characters and not images:
            named = ", ".join(c.name for c in scene.characters if c.reference is not None)
            if named:
                notes.insert(0, f"{self.model} takes no reference picture: {named} "
                             "described in words only")
        return attrs.evolve(asset, source=Source(self.name, method=method, notes=notes))

    async def portrait(self, character: Character, style: VisualStyle | None,
                       preset: Preset, target: Path) -> ImageAsset:
        """Write a reference picture of ``character`` at ``target`` (kept in the cache:
        the same character and style are painted once).

        Raises:
            ContentRejected: The portrait was filtered (and its rewrites too).
            AgentError: The service answered without a picture.
        """
        del preset  # a portrait is upright whatever the video's shape

        async def attempt(prompt: str) -> ImageAsset:
            return await self._paint(prompt, "3:4", [], target)

        asset, notes, _ = await with_rewrites(
            self, character.description, lambda text: _portrait_prompt(text, style), attempt,
            rewriter=self.rewriter, rewrites=self.rewrites, what="picture",
            memo=lambda prompt: self._key(prompt, "3:4", [], refused=True))
        return attrs.evolve(asset, source=Source(self.name, title=character.name,
                                                 method="portrait", notes=notes))

    def _key(self, prompt: str, ratio: str, images: list[bytes], *,
             refused: bool = False) -> str:
        extra: dict[str, Any] = {}
        if images:
            extra["references"] = [sha256_hex(i) for i in images]
        return AssetCache.key("image" if not refused else "image-refused", model=self.model,
                              prompt=prompt, aspect=ratio, **extra)

    async def _paint(self, prompt: str, ratio: str, images: list[bytes],
                     target: Path) -> ImageAsset:
        key = self._key(prompt, ratio, images)
        if self._fetch(key, target, report_miss=False):
            return self._describe(target)
        async with self._flight(key):  # one request per picture, whoever asks
            if self._fetch(key, target):  # stored by whoever held the flight before
                return self._describe(target)
            async with self._quota():
                with paid_call(agent=self.name, model=self.model, quantity=1, unit="image",
                               usd=self.price.per_image):
                    target.write_bytes(await self._picture(prompt, ratio, images))
                    # not awaited: nothing may cancel this between the payment and _keep
                    asset = self._describe(target)
            await self._keep(key, target)
        return asset

    def _describe(self, target: Path) -> ImageAsset:
        info = probe(target)
        if not info.has_video or not info.width or not info.height:
            raise MediaError(f"{self.name} sent something that is not a picture", target)
        return ImageAsset(target, info.width, info.height)

    def estimate(self, request: VideoRequest) -> list[Charge]:
        """One picture per planned scene and, for a model that `takes_references`, a
        portrait of each character you gave without a picture."""
        charges = [Charge(self.name, self.model, 1, "image", self.price.per_image, scene=i)
                   for i in range(planned_scenes(request))]
        portraits = sum(1 for c in request.characters if c.reference is None)
        if portraits and self.takes_references:
            charges.append(Charge(self.name, self.model, portraits, "image",
                                  portraits * self.price.per_image))
        return charges

    def estimate_extras(self, request: VideoRequest) -> list[Charge]:
        """What may be paid on top of `estimate`: ``rewrites`` rewrites of a refused prompt
        per picture, and, for a model that `takes_references`, portraits of characters the
        script writer may add (`MAX_CAST` at most)."""
        extras: list[Charge] = []
        if self.rewriter is not None and self.rewrites:
            one = self.rewriter.estimate_one()
            count = planned_scenes(request) * self.rewrites
            extras.append(attrs.evolve(one, quantity=one.quantity * count,
                                       usd=one.usd * count))
        if self.takes_references and not request.characters:
            extras.append(Charge(self.name, self.model, MAX_CAST, "image",
                                 MAX_CAST * self.price.per_image))
        return extras

    async def _picture(self, prompt: str, ratio: str, images: list[bytes]) -> bytes:
        from google.genai import types

        config = types.GenerateContentConfig(response_modalities=["IMAGE"],
                                             image_config=types.ImageConfig(aspect_ratio=ratio))
        contents: Any = prompt
        if images:
            contents = [types.Part.from_text(text=prompt + "\nKeep each character exactly as "
                                             "in the reference pictures (in the order named)."),
                        *(types.Part.from_bytes(data=image, mime_type=mime_of(image))
                          for image in images)]
        response = await self._api(lambda: self.connection.client.aio.models.generate_content(
            model=self.model, contents=contents, config=config))
        return bytes(self._inline(response, "image/", "picture").data)


def mime_of(image: bytes) -> str:
    """The mime type of a JPEG or PNG picture's bytes."""
    return "image/jpeg" if image.startswith(b"\xff\xd8") else "image/png"
