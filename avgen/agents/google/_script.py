"""`GeminiScriptWriter`: a Gemini model plans the video as structured JSON.

The model is asked for a title, one visual style (medium, palette, light, camera language),
a cast (each recurring character's name, appearance and wardrobe, described once) and
scenes (narration, a visual prompt for the picture, who appears, a length in seconds,
and two to four short search terms in English for stock footage)
through structured output, planned to the requested length and to the
preset's shape. The answer is checked here — the SDK returns ``parsed=None`` without an
error when the JSON is invalid or truncated — and a malformed, truncated or empty answer is
asked again with the problem stated, up to ``attempts`` times, then refused with an
`avgen.errors.AgentError` that says what was wrong. Narration is cleaned of Markdown and
stage directions whatever the model sends. A safety block is an
`avgen.errors.ContentRejected` with the reason.

When the request has a script, the model keeps its words (it splits them into scenes and
writes the visual prompts); with only a topic, it writes the narration too.

`GeminiScriptWriter.translate` puts a written script into another language (a video in
several languages, `avgen.VideoRequest.languages`) through the same path: structured output
(`TRANSLATION_SCHEMA`), the answer checked — exactly one scene for each of the script's, in
order, none empty — and asked again when it is not, paid through the budget and kept in the
cache.
"""

from __future__ import annotations

__docformat__ = "google"

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from avgen._models import (
    MAX_SEARCH_TERMS,
    Character,
    Scene,
    Script,
    VideoRequest,
    VisualStyle,
    search_terms,
)
from avgen._validate import number
from avgen.agents._assets.cache import AssetCache
from avgen.agents._keywords import extract_terms
from avgen.agents.google._common import (
    WORDS_PER_SECOND,
    GoogleAgent,
    planned_scenes,
    planned_seconds,
)
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._prices import Price
from avgen.agents.local._script import clean_narration
from avgen.costs import Charge
from avgen.errors import AgentError, UsageError

__all__ = ["GeminiScriptWriter"]

SCRIPT_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "title": {"type": "STRING"},
        "style": {
            "type": "OBJECT",
            "properties": {
                "medium": {"type": "STRING"},
                "palette": {"type": "STRING"},
                "light": {"type": "STRING"},
                "camera": {"type": "STRING"},
            },
            "required": ["medium", "palette", "light", "camera"],
        },
        "cast": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "name": {"type": "STRING"},
                    "appearance": {"type": "STRING"},
                    "wardrobe": {"type": "STRING"},
                },
                "required": ["name", "appearance"],
            },
        },
        "scenes": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "title": {"type": "STRING"},
                    "narration": {"type": "STRING"},
                    "visual": {"type": "STRING"},
                    "seconds": {"type": "NUMBER"},
                    "cast": {"type": "ARRAY", "items": {"type": "STRING"}},
                    "search_terms": {"type": "ARRAY", "items": {"type": "STRING"}},
                },
                "required": ["narration", "visual", "seconds", "search_terms"],
            },
        },
    },
    "required": ["title", "style", "scenes"],
}
"""The structured-output schema the model answers in."""

TRANSLATION_SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "title": {"type": "STRING"},
        "scenes": {
            "type": "ARRAY",
            "items": {
                "type": "OBJECT",
                "properties": {
                    "title": {"type": "STRING"},
                    "narration": {"type": "STRING"},
                },
                "required": ["title", "narration"],
            },
        },
    },
    "required": ["title", "scenes"],
}
"""The structured-output schema a translation is answered in."""

MAX_SCENES = 60
"""The most scenes a script may have."""

MAX_CAST = 4
"""The most characters the writer may cast (each may cost a portrait); more are left out."""


def _search_terms(raw: object) -> tuple[str, ...]:
    """The model's usable search terms (one that is too long or has no word is left out:
    never worth a re-ask)."""
    kept: list[str] = []
    for term in raw if isinstance(raw, list) else []:
        try:
            kept.extend(search_terms([term]))
        except UsageError:
            continue
    return search_terms(kept[:MAX_SEARCH_TERMS]) if kept else ()


def parse_script(text: str | None, *, title: str | None = None,
                 language: str | None = "en") -> Script:
    """Check and convert the model's JSON answer into a `avgen.Script`.

    Args:
        text: The JSON text of the answer.
        title: A title that wins over the model's.
        language: The narration's language: a scene the model gave no usable search term
            gets terms extracted from its title and narration in it.

    Raises:
        ValueError: The text is not JSON of the schema's shape, or a scene has nothing
            speakable; the message says what is wrong (it is sent back to the model).
    """
    if not text or not text.strip():
        raise ValueError("the answer was empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at character {exc.pos}; "
                         "was it cut off?)") from None
    if not isinstance(data, dict):
        raise ValueError("the answer must be a JSON object with 'title' and 'scenes'")
    raw_scenes = data.get("scenes")
    if not isinstance(raw_scenes, list) or not raw_scenes:
        raise ValueError("'scenes' must be a non-empty list")
    if len(raw_scenes) > MAX_SCENES:
        raise ValueError(f"'scenes' has {len(raw_scenes)} items; at most {MAX_SCENES}")
    style = _style(data.get("style"))
    cast = _cast(data.get("cast"))
    by_name = {character.name.casefold(): character for character in cast}
    scenes: list[Scene] = []
    for index, raw in enumerate(raw_scenes):
        if not isinstance(raw, dict):
            raise ValueError(f"scenes[{index}] must be an object")
        narration = clean_narration(str(raw.get("narration") or ""))
        if not narration:
            raise ValueError(f"scenes[{index}].narration is empty once markdown and stage "
                             "directions are removed")
        visual = str(raw.get("visual") or "").strip() or narration
        seconds = raw.get("seconds")
        hint = float(seconds) if isinstance(seconds, int | float) and not isinstance(
            seconds, bool) and math.isfinite(seconds) and 0 < seconds <= 120 else None
        scene_title = str(raw.get("title") or "").strip() or " ".join(narration.split()[:6])
        listed = raw.get("cast")
        names: list[Any] = listed if isinstance(listed, list) else []
        present = tuple(dict.fromkeys(by_name[name.strip().casefold()] for name in names
                                      if isinstance(name, str)
                                      and name.strip().casefold() in by_name))
        terms = (_search_terms(raw.get("search_terms"))
                 or extract_terms(str(raw.get("title") or ""), narration, language))
        scenes.append(Scene(index=index, narration=narration, visual=visual,
                            title=scene_title, duration_hint=hint, style=style,
                            characters=present, search_terms=terms or None))
    model_title = str(data.get("title") or "").strip()
    return Script(title or model_title or scenes[0].title, scenes, style=style, cast=cast)


def parse_translation(text: str | None, original: Script) -> Script:
    """Check and convert the model's JSON translation of ``original`` into a `avgen.Script`
    with the translated title, scene titles and narration (the rest is ``original``'s).

    Raises:
        ValueError: The text is not JSON of `TRANSLATION_SCHEMA`'s shape, has not exactly
            one scene per scene of ``original``, or a scene has nothing speakable; the
            message says what is wrong (it is sent back to the model).
    """
    if not text or not text.strip():
        raise ValueError("the answer was empty")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at character {exc.pos}; "
                         "was it cut off?)") from None
    raw_scenes = data.get("scenes") if isinstance(data, dict) else None
    if not isinstance(raw_scenes, list):
        raise ValueError("the answer must be a JSON object with 'title' and a list 'scenes'")
    if len(raw_scenes) != len(original.scenes):
        raise ValueError(f"'scenes' has {len(raw_scenes)} items; the script has "
                         f"{len(original.scenes)} scenes: translate each one, in order, "
                         "neither merging nor splitting them")
    scenes: list[Scene] = []
    for scene, raw in zip(original.scenes, raw_scenes, strict=True):
        if not isinstance(raw, dict):
            raise ValueError(f"scenes[{scene.index}] must be an object")
        narration = clean_narration(str(raw.get("narration") or ""))
        if not narration:
            raise ValueError(f"scenes[{scene.index}].narration is empty once markdown and "
                             "stage directions are removed")
        scenes.append(Scene(index=scene.index, narration=narration, visual=scene.visual,
                            title=str(raw.get("title") or "").strip() or scene.title,
                            duration_hint=scene.duration_hint, style=scene.style,
                            characters=scene.characters))
    assert isinstance(data, dict)
    title = str(data.get("title") or "").strip() or original.title
    return Script(title, scenes, style=original.style, cast=original.cast)


def _translation_prompt(script: Script, language: str) -> str:
    """What the model is asked: the title and each scene's title and narration, as JSON,
    to be put into ``language`` scene by scene."""
    given = {"title": script.title,
             "scenes": [{"title": scene.title, "narration": scene.narration}
                        for scene in script.scenes]}
    return "\n".join([
        "You translate the narration of a short video. Answer with JSON only, matching the "
        "schema.",
        f"Translate into the language with the BCP 47 tag {language!r}: the title, and each "
        "scene's title and narration.",
        f"Keep exactly {len(script.scenes)} scenes, in the same order: never merge, split, "
        "drop or add one. Keep the meaning, names, numbers and any markup or punctuation "
        "of the text as it is; write natural spoken sentences for a narrator, no stage "
        "directions, no notes.",
        "SCRIPT:\n" + json.dumps(given, ensure_ascii=False, indent=1),
    ])


def _style(raw: object) -> VisualStyle | None:
    """The model's style, or None when it wrote none (a style is never worth a re-ask)."""
    if not isinstance(raw, dict):
        return None
    fields = {key: str(raw.get(key) or "").strip()
              for key in ("medium", "palette", "light", "camera")}
    return VisualStyle(**fields) if any(fields.values()) else None


def _cast(raw: object) -> tuple[Character, ...]:
    """The model's cast: each member with a usable name and appearance, each name once."""
    cast: dict[str, Character] = {}
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            character = Character(str(item.get("name") or "").strip(),
                                  str(item.get("appearance") or "").strip(),
                                  str(item.get("wardrobe") or "").strip())
        except UsageError:
            continue  # an unusable member is left out; the scenes still name the others
        cast.setdefault(character.name.casefold(), character)
    return tuple(cast.values())[:MAX_CAST]


def _shape(request: VideoRequest) -> str:
    preset = request.preset
    if preset.height > preset.width:
        return "vertical (9:16, for phones)"
    return "square" if preset.height == preset.width else "horizontal (16:9)"


def _prompt(request: VideoRequest) -> str:
    seconds = planned_seconds(request)
    scenes = planned_scenes(request)
    lines = [
        "You plan short narrated videos. Answer with JSON only, matching the schema.",
        f"Length: about {seconds:.0f} seconds of narration (about "
        f"{seconds * WORDS_PER_SECOND:.0f} words) in about {scenes} scenes of 4 to 8 "
        "seconds each; 'seconds' is each scene's spoken length.",
        f"Picture format: {_shape(request)}. Each 'visual' is a concrete prompt for an "
        "image or video model: subject, setting, camera, light; no text on screen.",
        "Each scene's 'search_terms' are 2 to 4 queries for a stock footage search, in "
        "English whatever the narration's language, 1 to 3 words each, naming what can be "
        "filmed (e.g. 'coral reef', 'tropical fish', 'ocean'): the most specific first, a "
        "broader one last.",
        f"Narration language: {request.language}. Narration is plain spoken sentences: no "
        "markdown, no headings, no lists, no stage directions, no speaker labels, no emoji.",
    ]
    if request.script:
        lines.append("Keep the narration's words exactly as given below, in order, split "
                     "into scenes at sentence boundaries; write the visuals and a title.")
        lines.append("NARRATION:\n" + request.script.strip())
    else:
        lines.append(f"Topic: {(request.topic or '').strip()}")
    if request.title:
        lines.append(f"Title: {request.title}")
    if request.style is not None:
        lines.append(f"Visual style (given; copy it into 'style'): {request.style.text}")
    else:
        lines.append("Choose one visual style for the whole video in 'style' (medium, "
                     "palette, light, camera language); do not repeat it in the visuals.")
    if request.characters:
        lines.append("Cast (given; copy it into 'cast' and list in each scene's 'cast' who "
                     "appears): " + " ".join(c.description + "." for c in request.characters))
    else:
        lines.append(f"If people or recurring characters appear (at most {MAX_CAST}), "
                     "describe each once in "
                     "'cast' (name, appearance, wardrobe) and list in each scene's 'cast' "
                     "the names of those who appear; describe them only there, never in "
                     "the visuals. Leave 'cast' empty when nobody recurs.")
    return "\n".join(lines)


class GeminiScriptWriter(GoogleAgent):
    """Writes the `avgen.Script` with a Gemini model and structured output.

    Args:
        connection: The shared connection.
        model: A Gemini text model with structured output (``None``: the catalogue's
            default).
        cache: Where answers are kept: the same request is never paid for twice.
        prices: Price overrides by model id.
        attempts: Answers asked for at most when one is malformed (each is paid).
        temperature: The model's sampling temperature (``None``: the model's own; Gemini
            3.6 and later take none).
        requests_per_minute: Requests started in any 60 s (``None``: no limit).
    """

    kind = "gemini-script"

    def __init__(self, connection: GoogleConnection, model: str | None = None, *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 attempts: int = 3, temperature: float | None = None,
                 requests_per_minute: float | None = None) -> None:
        super().__init__(connection, model, cache=cache, prices=prices, max_concurrency=4,
                         requests_per_minute=requests_per_minute)
        self.attempts = number("attempts", attempts, integer=True, low=1, high=10)
        """Answers asked for at most."""
        number("temperature", temperature, low=0, high=2, optional=True)
        if self.info is not None and not self.info.can.structured_output:
            raise UsageError("model", f"{self.model} does not answer JSON that follows a "
                             "schema; a script model must (avgen models lists them)")
        if temperature is not None and self.info is not None and not self.info.can.sampling:
            raise UsageError("temperature", f"{self.model} takes no temperature (Google "
                             "refuses sampling settings for it); leave it None")
        self.temperature = None if temperature is None else float(temperature)
        """The sampling temperature (``None``: the model's own)."""

    def _expected_tokens(self, request: VideoRequest) -> tuple[float, float]:
        prompt = len(_prompt(request)) / 4 + 300  # the schema travels with the prompt
        answer = planned_seconds(request) * WORDS_PER_SECOND * 1.4 \
            + planned_scenes(request) * 60
        return prompt, answer

    def estimate(self, request: VideoRequest) -> list[Charge]:
        """The expected price of one answer (a re-ask costs as much again)."""
        prompt, answer = self._expected_tokens(request)
        return [Charge(self.name, self.model, round(prompt + answer), "token",
                       self.price.tokens(prompt, answer))]

    def _translation_tokens(self, text: str) -> tuple[float, float]:
        """Expected tokens of a translation of ``text`` (the narration and titles)."""
        prompt = len(text) / 4 + 500
        return prompt, len(text) / 4 * 1.5 + 100

    def estimate_translation(self, request: VideoRequest, language: str) -> list[Charge]:
        """The expected price of translating ``request``'s script into ``language`` (one
        answer), from the script's length or the planned narration's."""
        words = (len(request.script.split()) if request.script
                 else planned_seconds(request) * WORDS_PER_SECOND)
        prompt, answer = self._translation_tokens("x" * round(words * 6.5))
        return [Charge(self.name, self.model, round(prompt + answer), "token",
                       self.price.tokens(prompt, answer))]

    async def translate(self, script: Script, language: str) -> Script:
        """``script`` in ``language``, scene for scene: titles and narration translated,
        the pictures' prompts, look and cast kept.

        Raises:
            UsageError: ``language`` is not a BCP 47 tag.
            ContentRejected: The prompt or the answer was blocked by a safety filter.
            AgentError: No valid answer (one scene per scene) after `attempts` tries.
        """
        if not language or len(language) > 35 or not language.replace("-", "").replace(
                "_", "").isalnum():
            raise UsageError("language", f"must be a BCP 47 tag such as 'es', got "
                             f"{language!r}")
        prompt = _translation_prompt(script, language)
        key = AssetCache.key("translation", model=self.model, prompt=prompt,
                             temperature=self.temperature, schema=TRANSLATION_SCHEMA)
        expected = self._translation_tokens(prompt)

        def parse(text: str | None) -> Script:
            return parse_translation(text, script)

        def kept(report_miss: bool) -> Script | None:
            if self.cache is None:
                return None
            found = self.cache.get_json(key, source=self.name, report_miss=report_miss)
            return parse(found) if isinstance(found, str) else None

        found = kept(False)
        if found is not None:
            return found
        async with self._flight(key):
            found = kept(True)
            if found is not None:
                return found
            return await self._answers(prompt, key, parse, TRANSLATION_SCHEMA, expected,
                                       "translation")

    async def write(self, request: VideoRequest) -> Script:
        """Plan the video.

        Raises:
            ContentRejected: The prompt or the answer was blocked by a safety filter.
            AgentError: No valid answer after `attempts` tries.
        """
        prompt = _prompt(request)
        key = AssetCache.key("script", model=self.model, prompt=prompt,
                             temperature=self.temperature, schema=SCRIPT_SCHEMA)
        kept = self._kept(key, request, report_miss=False)
        if kept is not None:
            return kept
        async with self._flight(key):  # one answer per request, whoever asks
            kept = self._kept(key, request)  # stored by whoever held the flight before
            if kept is not None:
                return kept
            return await self._answer(prompt, request, key)

    def _kept(self, key: str, request: VideoRequest, *,
              report_miss: bool = True) -> Script | None:
        """The script kept under ``key``, or None."""
        if self.cache is None:
            return None
        kept = self.cache.get_json(key, source=self.name, report_miss=report_miss)
        if not isinstance(kept, str):
            return None
        return parse_script(kept, title=request.title, language=request.language)

    async def _answer(self, prompt: str, request: VideoRequest, key: str) -> Script:
        """Ask (and pay) until an answer is a valid script, up to `attempts` times."""
        return await self._answers(
            prompt, key,
            lambda text: parse_script(text, title=request.title, language=request.language),
            SCRIPT_SCHEMA, self._expected_tokens(request), "script")

    async def _answers(self, prompt: str, key: str, parse: Callable[[str | None], Script],
                       schema: dict[str, Any], expected: tuple[float, float],
                       what: str) -> Script:
        """Ask (and pay) until ``parse`` takes an answer, up to `attempts` times; the
        text it took is kept in the cache under ``key``."""
        problems: list[str] = []
        for _ in range(self.attempts):
            asked = prompt if not problems else (
                f"{prompt}\n\nYour previous answer was rejected: {problems[-1]}. Answer "
                "again with complete, valid JSON matching the schema.")
            text, cut_off = await self._ask(asked, schema, expected, what)
            if cut_off:
                problems.append("the answer was cut off at the output token limit; "
                                "write fewer, shorter scenes")
                continue
            try:
                script = parse(text)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if self.cache is not None and text is not None:
                self.cache.set_json(key, text, source=self.name)
            return script
        raise AgentError(f"no valid {what} after {self.attempts} answers: "
                         + "; ".join(problems), self.name)

    async def _ask(self, prompt: str, schema: dict[str, Any], expected: tuple[float, float],
                   what: str) -> tuple[str | None, bool]:
        """One paid answer: its text, and whether it was cut off."""
        from google.genai import types

        config = types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=schema,
            temperature=self.temperature)
        response = await self._paid_text(prompt, config, *expected)
        finish = self._refuse_blocked(response, what)
        return response.text, finish == "MAX_TOKENS"
