"""Every Google model avgen knows, as data: `CATALOGUE`, read from ``models.toml``.

For each model the catalogue holds its kind (``text``, ``image``, ``speech``, ``video``),
the surfaces that serve it (the Gemini Developer API, Vertex AI) with the dates Google
announced for each (deprecation, shutdown), the recommended replacement, its list prices,
what it can do (structured output, input and reference images, clip lengths, resolutions,
aspect ratios, audio) and where and when each fact was checked. Prices, capability checks
and defaults are all read from it; nothing else in avgen names a model.

**Never silently behind.** Every google agent asks the catalogue about its model when it is
made and again before each run (`ModelCatalogue.vet`):

- a model past its shutdown date on the connection's surface is refused with a
  `avgen.errors.UsageError` naming the field, the date and the replacement, before anything
  is sent;
- within `WARN_DAYS` of its shutdown, or deprecated, it works with a warning;
- an id the catalogue does not list is allowed (Google ships models faster than avgen
  releases) with a note: it is priced and judged like the closest known family
  (``veo-…-fast…`` like Veo Fast), and ``avgen models --check`` asks the service itself.

The defaults (`ModelCatalogue.default`) are the models marked as such for each kind and
surface; should one of them pass its shutdown date before avgen is updated, its recorded
replacement is used instead, with a warning.
"""

from __future__ import annotations

__docformat__ = "google"

import datetime
import logging
import os
import tomllib
import warnings
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any, Literal, get_args

import attrs

from avgen.agents.google._prices import Price
from avgen.errors import UsageError

__all__ = ["CATALOGUE", "PRICES"]

_logger = logging.getLogger("avgen.agents.google")

Kind = Literal["text", "image", "speech", "video"]
"""What a model makes."""
Surface = Literal["developer", "vertex"]
"""Who serves it: the Gemini Developer API or Vertex AI (the connection's mode)."""
Status = Literal["current", "deprecated", "retiring", "retired", "unserved", "unknown"]
"""A model's state on a surface on a day: see `ModelInfo.status`."""

KINDS: tuple[Kind, ...] = get_args(Kind)
SURFACES: tuple[Surface, ...] = get_args(Surface)
WARN_DAYS = 60
"""A model this many days or fewer from its shutdown is used with a warning."""
_KIND_WORDS = {"text": "a text", "image": "an image", "speech": "a speech",
               "video": "a video"}


def _date(value: Any, where: str) -> datetime.date | None:
    if value is None:
        return None
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        return value
    raise ValueError(f"{where}: {value!r} is not a date")


ALLOW_ENV = "AVGEN_ALLOW_MODELS"
"""Model ids (comma-separated) to use even past the shutdown day the catalogue gives (with
a warning): for the day Google extends a model's life before avgen's catalogue says so."""


@attrs.frozen
class Lifecycle:
    """A model's dates on one surface."""

    deprecated: datetime.date | None = None
    """When Google deprecated the model there (``None``: it has not)."""
    shutdown: datetime.date | None = None
    """The earliest day Google may turn it off there (``None``: none announced)."""
    replacement: str | None = None
    """The model Google recommends instead on this surface, when it differs from the
    model's own `ModelInfo.replacement`."""


@attrs.frozen
class Capabilities:
    """What a model can do, as far as avgen uses it."""

    structured_output: bool = False
    """Text: answers JSON that follows a schema."""
    sampling: bool = True
    """Text and speech: takes sampling settings (``temperature``); Google refuses or
    deprecated them for its newer models."""
    audio_format: str = "pcm"
    """Speech: what an answer's audio is (``"pcm"``: raw 16-bit samples, ``"wav"``: a
    whole WAV file)."""
    aspect_ratios: tuple[str, ...] = ()
    """Image and video: the aspect ratios it makes (``"9:16"`` …)."""
    input_images: int = 0
    """Image: how many pictures it takes with a prompt (reference pictures)."""
    reference_images: int = 0
    """Video: how many asset reference images a clip may be given (0: none)."""
    image_to_video: bool = False
    """Video: whether a clip may start from an input image."""
    durations: tuple[int, ...] = ()
    """Video: the clip lengths allowed, in seconds."""
    resolutions: tuple[str, ...] = ()
    """Video: the resolutions allowed (``"720p"``, ``"1080p"``, ``"4k"``)."""
    eight_seconds_with: tuple[str, ...] = ()
    """Video: what forces an 8-second clip (``"1080p"``, ``"4k"``, ``"references"``)."""
    audio: bool = False
    """Video: whether it can make its own sound track."""
    method: str = "generateContent"
    """The API method that serves it (``generateContent``, ``predict``,
    ``predictLongRunning``)."""


@attrs.frozen
class Fact:
    """Where a fact about a model was read, and when."""

    url: str
    """The page."""
    checked: datetime.date
    """The day it was read."""
    about: str = ""
    """What it says (release, shutdown, prices, capabilities)."""


@attrs.frozen
class ModelInfo:
    """One model of the catalogue."""

    id: str
    """The model id (``gemini-3.5-flash``)."""
    kind: Kind
    """What it makes."""
    surfaces: Mapping[Surface, Lifecycle]
    """The surfaces that serve it, with their dates."""
    prices: tuple[tuple[datetime.date | None, Price], ...]
    """Its list prices, each from a day on (``None``: from its release), in order."""
    can: Capabilities = Capabilities()
    """What it can do."""
    released: datetime.date | None = None
    """When it was released (its general availability, or its preview for a preview)."""
    replacement: str | None = None
    """The model Google recommends instead, once it is deprecated."""
    default_on: tuple[Surface, ...] = ()
    """The surfaces on which it is avgen's default of its kind."""
    stage: str = "ga"
    """``"ga"`` (generally available), ``"preview"`` or ``"alias"``."""
    sources: tuple[Fact, ...] = ()
    """Where its facts come from."""

    def price_on(self, day: datetime.date | None = None) -> Price:
        """Its list price on ``day`` (default: today)."""
        day = day or datetime.date.today()
        chosen = self.prices[0][1]
        for since, price in self.prices:
            if since is None or since <= day:
                chosen = price
        return chosen

    def status(self, surface: Surface, today: datetime.date) -> Status:
        """Its state on ``surface`` on ``today``: ``"retired"`` from its shutdown date,
        ``"retiring"`` within `WARN_DAYS` of it, ``"deprecated"`` once Google has
        deprecated it, ``"unserved"`` when the surface does not serve it, else
        ``"current"`` (a planned shutdown further off is only shown)."""
        life = self.surfaces.get(surface)
        if life is None:
            return "unserved"
        if life.shutdown is not None:
            left = (life.shutdown - today).days
            if left <= 0:
                return "retired"
            if left <= WARN_DAYS:
                return "retiring"
        if life.deprecated is not None and life.deprecated <= today:
            return "deprecated"
        return "current"

    def shutdown(self, surface: Surface) -> datetime.date | None:
        """Its shutdown date on ``surface`` (``None``: none announced, or not served)."""
        life = self.surfaces.get(surface)
        return None if life is None else life.shutdown

    def replacement_on(self, surface: Surface) -> str | None:
        """The model Google recommends instead of this one on ``surface``."""
        life = self.surfaces.get(surface)
        return (life.replacement if life is not None and life.replacement
                else self.replacement)

    def usable(self, surface: Surface, today: datetime.date) -> bool:
        """Whether ``surface`` serves it on ``today`` (neither shut down nor unserved)."""
        return self.status(surface, today) not in ("retired", "unserved")


@attrs.frozen
class Verdict:
    """What the catalogue says of a model chosen for a kind on a surface."""

    model: str
    """The id judged."""
    status: Status
    """Its state (``"unknown"``: not in the catalogue)."""
    info: ModelInfo | None
    """Its entry, or for an unknown id its family's (``None``: no family either)."""
    problem: str | None = None
    """Why it cannot be used (a retired or unserved model, or one of another kind)."""
    note: str | None = None
    """What the user should know though it can be used (retiring, deprecated, unknown)."""


class ModelCatalogue:
    """The models avgen knows (see the module docstring); iterate it for every `ModelInfo`.

    Args:
        models: The entries.
        families: ``(words, model)`` pairs, most specific first: an id that the catalogue
            does not list but that contains all the words is priced and judged like
            ``model``.
        checked: The day the catalogue as a whole was last checked against Google's pages.
        audio_tokens_per_second: The audio tokens Gemini bills per second of speech.
    """

    def __init__(self, models: Mapping[str, ModelInfo],
                 families: tuple[tuple[tuple[str, ...], str], ...],
                 checked: datetime.date, audio_tokens_per_second: float = 32.0) -> None:
        self._models = dict(models)
        self.families = families
        """``(words, model)`` pairs that place an unlisted id in a known family."""
        self.checked = checked
        """The day the catalogue was last checked against Google's pages."""
        self.audio_tokens_per_second = audio_tokens_per_second
        """The audio tokens Gemini bills per second of speech (prices per second of speech
        are made from the price per million audio tokens with it)."""
        for words, model in families:
            if model not in self._models:
                raise ValueError(f"family {words} names {model!r}, which is not listed")
        for info in self._models.values():
            named = {info.replacement, *(life.replacement for life in info.surfaces.values())}
            for replacement in named - {None}:
                other = self._models.get(str(replacement))
                if other is None:
                    raise ValueError(f"{info.id}: its replacement {replacement!r} is not "
                                     "listed")
                if other.kind != info.kind:
                    raise ValueError(f"{info.id}: its replacement {replacement!r} is "
                                     f"{_KIND_WORDS[other.kind]} model, not "
                                     f"{_KIND_WORDS[info.kind]} one")
        for kind in KINDS:
            for surface in SURFACES:
                marked = [m.id for m in self._models.values()
                          if m.kind == kind and surface in m.default_on]
                if len(marked) > 1:
                    raise ValueError(f"{len(marked)} defaults for {kind} on {surface}: "
                                     f"{marked}")

    @classmethod
    def load(cls, text: str | None = None) -> ModelCatalogue:
        """Read a catalogue from TOML ``text`` (default: the one that ships in avgen).

        Raises:
            ValueError: The text is not a well-formed catalogue (the message says where).
        """
        if text is None:
            text = resources.files("avgen.agents.google").joinpath("models.toml") \
                .read_text(encoding="utf-8")
        data = tomllib.loads(text)
        checked = _date(data.get("checked"), "checked")
        if checked is None:
            raise ValueError("checked: the catalogue needs the date it was checked")
        tokens = data.get("audio_tokens_per_second")
        if not isinstance(tokens, int | float) or tokens <= 0:
            raise ValueError("audio_tokens_per_second: the catalogue needs the audio tokens "
                             "Gemini bills per second of speech")
        models = {name: _entry(name, entry, float(tokens))
                  for name, entry in data.get("models", {}).items()}
        families = tuple((tuple(row["words"]), str(row["like"]))
                         for row in data.get("families", []))
        return cls(models, families, checked, float(tokens))

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and _bare(model) in self._models

    def get(self, model: str) -> ModelInfo | None:
        """The entry of ``model`` (``models/`` and publisher paths are ignored), or None."""
        return self._models.get(_bare(model))

    def like(self, model: str) -> ModelInfo | None:
        """The entry of ``model``, else that of the first family its id belongs to."""
        name = _bare(model)
        known = self._models.get(name)
        if known is not None:
            return known
        lowered = name.lower()
        for words, representative in self.families:
            if all(word in lowered for word in words):
                return self._models[representative]
        return None

    def default(self, kind: Kind, surface: Surface,
                today: datetime.date | None = None) -> str:
        """avgen's default model of ``kind`` on ``surface``: the one marked in the data or,
        should it be past its shutdown on ``today``, the first of its replacements that is
        served there (with a warning).

        Raises:
            UsageError: The surface serves no model of that kind, or none is left of the
                default's line.
        """
        today = today or datetime.date.today()
        marked = next((m for m in self if m.kind == kind and surface in m.default_on), None)
        if marked is None:
            raise UsageError(f"{kind} model", f"the {surface} surface has no default "
                             f"{kind} model; name one (avgen models lists them)")
        if marked.usable(surface, today):
            return marked.id
        following = self._following(marked, surface, today)
        if following is None:
            raise UsageError(f"{kind} model", f"avgen's default {kind} model {marked.id} was "
                             f"shut down on {marked.shutdown(surface)} and no replacement is "
                             "known: name one (avgen models --check), or update avgen")
        _notify(f"avgen's default {kind} model {marked.id} was shut down on "
                f"{marked.shutdown(surface)}; using its replacement {following} (update "
                "avgen for a checked choice)")
        return following

    def _following(self, info: ModelInfo, surface: Surface,
                   today: datetime.date) -> str | None:
        """The first model of ``info``'s line of replacements that ``surface`` serves on
        ``today`` (``None``: none)."""
        seen, step = {info.id}, info
        while (next_id := step.replacement_on(surface)) and next_id not in seen:
            seen.add(next_id)
            step = self._models[next_id]
            if step.usable(surface, today):
                return step.id
        return None

    def judge(self, model: str, *, kind: Kind, surface: Surface,
              today: datetime.date | None = None) -> Verdict:
        """What the catalogue says of ``model`` used for ``kind`` on ``surface`` on
        ``today`` (default: the day it runs)."""
        today = today or datetime.date.today()
        name = _bare(model)
        info = self._models.get(name)
        where = "the Developer API" if surface == "developer" else "Vertex AI"
        if info is None:
            family = self.like(name)
            if family is not None and family.kind != kind:
                return Verdict(name, "unknown", family, problem=(
                    f"{name!r} looks like {_KIND_WORDS[family.kind]} model (like "
                    f"{family.id}), not {_KIND_WORDS[kind]} model; "
                    f"{self._suggest(kind, surface, today)}"))
            like = f"priced and used like {family.id}" if family is not None else \
                "its price is unknown (pass prices=...)"
            return Verdict(name, "unknown", family, note=(
                f"{name} is not in avgen's model catalogue (checked {self.checked}): "
                f"{like}; `avgen models --check` asks the service whether your key can use "
                "it"))
        if info.kind != kind:
            return Verdict(name, "current", info, problem=(
                f"{name} is {_KIND_WORDS[info.kind]} model, not {_KIND_WORDS[kind]} model; "
                f"{self._suggest(kind, surface, today)}"))
        status = info.status(surface, today)
        replacement = self._replacement(info, surface, today)
        instead = f"; use {replacement} instead" if replacement else ""
        if status == "unserved":
            served = " and ".join("the Developer API" if s == "developer" else "Vertex AI"
                                  for s in info.surfaces)
            return Verdict(name, status, info, problem=(
                f"{name} is not served by {where} (only by {served}){instead}"))
        if status == "retired":
            gone = f"{name} was shut down on {where} on {info.shutdown(surface)}"
            if name in _allowed():
                return Verdict(name, status, info, note=(
                    f"{gone} by avgen's catalogue, and is used as {ALLOW_ENV} asks"))
            return Verdict(name, status, info, problem=(
                f"{gone}{instead} (if Google still serves it, list it in {ALLOW_ENV})"))
        if status == "retiring":
            return Verdict(name, status, info, note=(
                f"{name} shuts down on {where} on {info.shutdown(surface)}, in "
                f"{(info.shutdown(surface) - today).days} days"  # type: ignore[operator]
                f"{instead}"))
        if status == "deprecated":
            when = info.shutdown(surface)
            return Verdict(name, status, info, note=(
                f"{name} is deprecated on {where}"
                + (f" and shuts down on {when}" if when else "") + instead))
        return Verdict(name, status, info)

    def vet(self, model: str, *, kind: Kind, surface: Surface, field: str = "model",
            today: datetime.date | None = None) -> ModelInfo | None:
        """`judge` ``model``, warn of what the user should know, and return its entry (or
        its family's; ``None`` for an unknown id of no known family).

        Raises:
            UsageError: ``field``'s model cannot be used: it was shut down, is not served
                on the surface, or is of another kind. Nothing has been sent.
        """
        verdict = self.judge(model, kind=kind, surface=surface, today=today)
        if verdict.problem is not None:
            raise UsageError(field, verdict.problem)
        if verdict.note is not None:
            _notify(verdict.note)
        return verdict.info

    def replacement(self, model: str, *, kind: Kind, surface: Surface,
                    today: datetime.date | None = None) -> str | None:
        """What to use instead of ``model`` on ``surface``: the first of its recorded
        replacements that is served there, else the kind's default (``None``: nothing
        else to suggest)."""
        today = today or datetime.date.today()
        info = self._models.get(_bare(model))
        if info is not None and info.kind == kind:
            return self._replacement(info, surface, today)
        try:
            fallback = self.default(kind, surface, today)
        except UsageError:
            return None
        return fallback if fallback != _bare(model) else None

    def _replacement(self, info: ModelInfo, surface: Surface,
                     today: datetime.date) -> str | None:
        """What to use instead of ``info`` on ``surface``: the first of its replacements
        served there, else the kind's default (``None``: nothing served there)."""
        following = self._following(info, surface, today)
        if following is not None:
            return following
        try:
            fallback = self.default(info.kind, surface, today)
        except UsageError:
            return None
        return fallback if fallback != info.id else None

    def _suggest(self, kind: Kind, surface: Surface, today: datetime.date) -> str:
        try:
            return f"the default is {self.default(kind, surface, today)}"
        except UsageError:
            return f"no {kind} model is served there"


def _allowed() -> frozenset[str]:
    """The ids `ALLOW_ENV` lists."""
    return frozenset(_bare(part) for part in os.environ.get(ALLOW_ENV, "").split(",")
                     if part.strip())


def _bare(model: str) -> str:
    """A model id without ``models/`` or a ``projects/…/publishers/google/`` path."""
    return model.strip().rsplit("/", 1)[-1]


def _notify(message: str) -> None:
    """Tell the user, once per message: a `UserWarning` and a log record."""
    warnings.warn(message, UserWarning, stacklevel=2)
    _logger.warning("%s", message)


def _entry(name: str, entry: Mapping[str, Any], tokens_per_second: float) -> ModelInfo:
    """One ``[models."<id>"]`` table as a `ModelInfo`."""
    where = f"models.{name}"
    known = {"kind", "released", "replacement", "default", "stage", "price", "can",
             "sources", *SURFACES}
    unknown = set(entry) - known
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    kind = entry.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: {kind!r} is not one of {KINDS}")
    surfaces = {surface: _lifecycle(entry[surface], f"{where}.{surface}")
                for surface in SURFACES if surface in entry}
    if not surfaces:
        raise ValueError(f"{where}: names no surface ({' or '.join(SURFACES)})")
    default = tuple(entry.get("default", ()))
    if not set(default) <= set(surfaces):
        raise ValueError(f"{where}.default: {default} names a surface that does not serve it")
    prices = tuple(_price(row, f"{where}.price", tokens_per_second)
                   for row in entry.get("price", ()))
    if not prices or prices[0][0] is not None:
        raise ValueError(f"{where}.price: the first price must have no 'from' day")
    days = [since for since, _ in prices[1:]]
    if any(day is None for day in days) or days != sorted(set(days)):  # type: ignore[type-var]
        raise ValueError(f"{where}.price: each later price needs a 'from' day, in order")
    can = dict(entry.get("can", {}))
    _known_keys(can, Capabilities, f"{where}.can")
    for key in ("aspect_ratios", "durations", "resolutions", "eight_seconds_with"):
        if key in can:
            can[key] = tuple(can[key])
    sources = tuple(Fact(str(s["url"]), _date(s["checked"], f"{where}.sources")
                         or datetime.date.min, str(s.get("about", "")))
                    for s in entry.get("sources", ()))
    return ModelInfo(id=name, kind=kind, surfaces=surfaces, prices=prices,
                     can=Capabilities(**can), released=_date(entry.get("released"),
                                                             f"{where}.released"),
                     replacement=entry.get("replacement"), default_on=default,
                     stage=str(entry.get("stage", "ga")), sources=sources)


def _known_keys(table: Mapping[str, Any], klass: type, where: str) -> None:
    """Refuse keys ``klass`` (an attrs class) has no field for."""
    unknown = set(table) - {field.name for field in attrs.fields(klass)}
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")


def _lifecycle(table: Mapping[str, Any], where: str) -> Lifecycle:
    """One surface's table (``{ deprecated = DAY, shutdown = DAY, replacement = ID }``)."""
    _known_keys(table, Lifecycle, where)
    replacement = table.get("replacement")
    return Lifecycle(_date(table.get("deprecated"), f"{where}.deprecated"),
                     _date(table.get("shutdown"), f"{where}.shutdown"),
                     None if replacement is None else str(replacement))


def _price(row: Mapping[str, Any], where: str,
           tokens_per_second: float) -> tuple[datetime.date | None, Price]:
    """One entry of a model's ``price`` list: the day it applies from, and the price."""
    fields = dict(row)
    since = _date(fields.pop("from", None), f"{where}.from")
    speech = fields.pop("audio_output_per_million", None)
    if speech is not None:  # speech is billed per audio token: priced per second here
        fields["per_audio_second"] = float(speech) * tokens_per_second / 1e6
    _known_keys(fields, Price, where)
    return since, Price(**fields)


CATALOGUE = ModelCatalogue.load()
"""The catalogue that ships with avgen."""

PRICES: Mapping[str, Price] = {info.id: info.price_on() for info in CATALOGUE}
"""List prices by model id, as of the day avgen was imported (from `CATALOGUE`)."""


def price_of(model: str, prices: Mapping[str, Price] | None = None) -> Price:
    """The price of ``model``: from ``prices`` (your overrides), the catalogue, or the
    catalogue's entry of its family.

    Example:
        >>> price_of("veo-3.1-fast-generate-001").video(8, audio=False)
        0.8
        >>> price_of("veo-3.1-generate-001").video(8, audio=False, resolution="4k")
        3.2
        >>> price_of("veo-3.2-fast-generate-001").per_video_second   # priced by its family
        0.1

    Raises:
        UsageError: No price is known for ``model``.
    """
    name = _bare(model)
    if prices and name in prices:
        return prices[name]
    info = CATALOGUE.like(name)
    if info is not None:
        return info.price_on()
    raise UsageError("model", f"no price is known for {model!r}; pass prices={{{name!r}: "
                     "Price(...)}} to google_agents")
