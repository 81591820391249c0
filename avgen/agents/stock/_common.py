"""What the stock agents share: keys, the HTTP client, errors, the cache, rendition choice.

Searches and downloads go through `avgen.agents._download`: ``https`` only (plain ``http``
only from a base URL set explicitly), files only from the hosts a service's answers may
name, the key only to the service's own origin, bounded redirects, a deadline and a size
cap. The key never appears in an error message or a log line (Pixabay takes it in the
query string, so no URL is ever quoted). Answers are read field by field: a field of the
wrong type counts as missing.
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import json
import math
import os
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from email.message import Message
from pathlib import Path
from typing import Any

import attrs

from avgen._cache_root import cache_root
from avgen._language import detect
from avgen._models import Preset, Scene, Source, VideoRequest
from avgen._policy import AgentPolicy
from avgen._validate import instance, number, text
from avgen.agents._assets.cache import AssetCache
from avgen.agents._download import Limits, Reach, download, origin
from avgen.agents._keywords import scene_terms
from avgen.errors import (
    AgentError,
    ConfigurationError,
    ContentRejected,
    MediaError,
    NoMatch,
    RateLimited,
    ServiceUnavailable,
    UsageError,
)
from avgen.media._ffmpeg import MediaInfo, probe
from avgen.resilience import CircuitSettings, RetryPolicy

__all__ = ["STOCK_POLICY"]

SEARCH_TTL = 24 * 3600.0
"""Seconds a search answer is reused (Pixabay asks that results be cached for 24 h)."""

MAX_DOWNLOAD_BYTES = 1 << 30
"""The largest file a stock agent downloads by default (1 GiB)."""

MAX_ANSWER_BYTES = 8 << 20
"""The largest search answer read (8 MiB; a real one is a few tens of KiB)."""

DOWNLOAD_DEADLINE = 300.0
"""Seconds a search or a download may take in all, by default."""

MAX_QUERY_CHARS = 100
"""Pixabay refuses longer queries; Pexels is given the same."""


STOCK_POLICY = AgentPolicy(
    retry=RetryPolicy(attempts=3, timeout=300.0, wait_initial=1.0, wait_max=60.0),
    circuit=CircuitSettings(window_size=10, minimum_calls=3, failure_rate_threshold=50.0,
                            wait_open=60.0,
                            ignore=(NoMatch, ContentRejected, UsageError, ConfigurationError),
                            ignore_rate_limits=True),
)
"""How the generator calls a stock agent: a rate-limit answer (429) is retried once the
limit resets (``X-Ratelimit-Reset`` or ``Retry-After``; a reset further off than 60 s stops
with `avgen.errors.RateLimited` saying when to come back), outages (5xx, refused
connections) are retried with backoff, and a breaker per agent opens when half of its last
calls (at least 3) failed, so the remaining scenes fall back at once. A search with no
result, a refused key and a rate limit never count as the service being down."""


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the stock agents keep searches and downloads: ``<avgen cache>/stock``."""
    return cache_root(env) / "stock"


@attrs.frozen
class Rendition:
    """One file of a stock asset: its size and where to download it."""

    width: int
    """Width in pixels."""
    height: int
    """Height in pixels."""
    url: str
    """Where to download it."""


def choose_rendition(renditions: Sequence[Rendition], width: int, height: int) -> Rendition:
    """The smallest rendition at least ``width`` x ``height``, else the largest one.

    "Smallest" and "largest" go by pixel count; ties keep the first listed.

    Raises:
        UsageError: ``renditions`` is empty.
    """
    if not renditions:
        raise UsageError("renditions", "must list at least one rendition")
    covering = [r for r in renditions if r.width >= width and r.height >= height]
    if covering:
        return min(covering, key=lambda r: r.width * r.height)
    return max(renditions, key=lambda r: r.width * r.height)


def orientation(preset: Preset) -> str:
    """``"landscape"``, ``"portrait"`` or ``"square"``, from the preset's frame."""
    if preset.width > preset.height:
        return "landscape"
    if preset.width < preset.height:
        return "portrait"
    return "square"


def search_text(scene: Scene) -> str:
    """What to search for: the scene's visual prompt, else its title, else its narration
    (whitespace folded, cut at a word boundary to `MAX_QUERY_CHARS`)."""
    text = next((t for t in (scene.visual, scene.title, scene.narration) if t.strip()), "")
    text = " ".join(text.split())
    if len(text) > MAX_QUERY_CHARS:
        text = text[:MAX_QUERY_CHARS].rsplit(" ", 1)[0] or text[:MAX_QUERY_CHARS]
    return text


def rate_limit_delay(headers: Mapping[str, str] | Message, now: float) -> float | None:
    """Seconds to wait before calling again, from a 429's headers, or None.

    Reads ``X-Ratelimit-Reset`` (a UNIX time, as Pexels sends it, or seconds from now, as
    Pixabay does: a value above 10⁹ is taken as a time) and ``Retry-After`` (seconds); the
    longest wins.

    Args:
        headers: The response headers (any case).
        now: The current UNIX time.
    """
    found: list[float] = []
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    reset = _number(lowered.get("x-ratelimit-reset"))
    if reset is not None:
        found.append(reset - now if reset > 1e9 else reset)
    after = _number(lowered.get("retry-after"))
    if after is not None:
        found.append(after)
    usable = [max(0.0, d) for d in found if math.isfinite(d)]
    return max(usable) if usable else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def text_field(value: object) -> str | None:
    """``value`` when it is a non-blank string without a NUL, else None (an answer's field
    of another type counts as missing)."""
    return value if isinstance(value, str) and value.strip() and "\x00" not in value else None


def count_field(value: object) -> int:
    """``value`` as a whole number of pixels when it is a positive finite number, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, int(value))


def seconds_field(value: object) -> float:
    """``value`` as seconds when it is a finite number at least 0, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0
    return max(0.0, float(value))


def dict_field(value: object) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def list_field(value: object) -> list[Any]:
    """``value`` when it is a JSON list, else an empty one."""
    return value if isinstance(value, list) else []


def results(answer: object, key: str, agent: str) -> list[dict[str, Any]]:
    """The objects listed under ``key`` in a search answer (other items are left out).

    Raises:
        AgentError: The answer is not an object, or ``key`` is there but not a list.
    """
    if not isinstance(answer, dict):
        raise AgentError(f"the search was not understood: the answer is a "
                         f"{type(answer).__name__}, not an object", agent)
    listed = answer.get(key)
    if listed is not None and not isinstance(listed, list):
        raise AgentError(f"the search was not understood: the answer's {key!r} is a "
                         f"{type(listed).__name__}, not a list", agent)
    return [item for item in listed or [] if isinstance(item, dict)]


_SLUG = re.compile(r"/(?:video|photo)/([a-z0-9-]+?)-?\d*/?$")


def title_from_page(url: object) -> str | None:
    """A title read from a stock page address (``.../video/waves-at-dusk-1234/`` gives
    ``"Waves at dusk"``), or None."""
    if not isinstance(url, str):
        return None
    try:
        path = urllib.parse.urlparse(url).path
    except ValueError:
        return None
    match = _SLUG.search(path)
    if not match or not match.group(1).strip("-"):
        return None
    words = match.group(1).strip("-").replace("-", " ")
    return words[:1].upper() + words[1:]


class StockAgent:
    """Base of the stock agents: find a picture or clip for a scene in a stock library.

    Args:
        api_key: The service's key (default: its environment variable).
        base_url: The service's address (default: its environment variable, else the
            service's own; tests point it at a local server).
        cache: Where searches and downloads are kept (``None``: nothing is kept).
        max_concurrency: Scenes searched at once.
        timeout: Seconds each read of an answer (and each connection) may wait.
        deadline: Seconds one search or download may take in all.
        max_bytes: The largest file downloaded (a larger one is refused).
        env: Where keys are read (default: ``os.environ``).

    Raises:
        UsageError: An argument is out of range, or ``base_url`` is not an ``http://`` or
            ``https://`` address.
    """

    provider = ""
    """``"pexels"`` or ``"pixabay"``."""
    kind = ""
    finds_footage = True
    """It finds footage rather than making it: a scene longer than a shot
    (`avgen.VideoRequest.max_shot`) shows several of its files in turn."""
    """``"clips"`` or ``"images"``."""
    key_variable = ""
    """The environment variable holding the key."""
    url_variable = ""
    """The environment variable that may hold the service's address (instead of
    ``base_url``; a proxy, or a local server in tests)."""
    license = ""
    """The licence every asset of the service comes under."""
    default_base_url = ""
    """The service's address."""
    key_page = ""
    """Where a key is obtained."""
    media_hosts: tuple[str, ...] = ()
    """The hosts (with their subdomains) the service's answers may name for its files."""

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None,
                 cache: AssetCache | None = None, max_concurrency: int = 2,
                 timeout: float = 60.0, deadline: float = DOWNLOAD_DEADLINE,
                 max_bytes: int = MAX_DOWNLOAD_BYTES,
                 env: Mapping[str, str] | None = None) -> None:
        instance("cache", cache, AssetCache, optional=True)
        text("api_key", api_key, optional=True, blank=False)  # None: read key_variable
        number("max_concurrency", max_concurrency, integer=True, low=1)
        number("timeout", timeout, low=0, low_inclusive=False)
        number("deadline", deadline, low=0, low_inclusive=False)
        number("max_bytes", max_bytes, integer=True, low=1)
        environ = os.environ if env is None else env
        field = "base_url"
        if base_url is None and (environ.get(self.url_variable) or "").strip():
            base_url, field = environ[self.url_variable].strip(), self.url_variable
        if base_url is not None and (not isinstance(base_url, str) or origin(base_url)[0]
                                     not in ("http", "https") or not origin(base_url)[1]):
            raise UsageError(field, f"must be an http:// or https:// address, not "
                             f"{base_url!r}")
        self.api_key: str | None = api_key or (environ.get(self.key_variable) or "").strip() \
            or None
        """The key (``None`` when none was given: `check` refuses every request)."""
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        """The service's address."""
        self.cache = cache
        """Where searches and downloads are kept (``None``: nothing is kept)."""
        self.max_concurrency = max_concurrency
        """Scenes searched at once."""
        self.timeout = float(timeout)
        """Seconds each read of an HTTP answer (and each connection) may wait."""
        self.deadline = float(deadline)
        """Seconds one search or download may take in all."""
        self.max_bytes = int(max_bytes)
        """The largest file downloaded."""
        self.reach = Reach(self.media_hosts, base=self.base_url if base_url else None)
        """Where searches and downloads may go: ``https`` to `media_hosts`, and the base
        URL when one was given (plain ``http`` is allowed only there)."""
        self.resilience = STOCK_POLICY
        """How the generator retries and guards this agent's calls."""
        self._resume_at = 0.0
        self._used: dict[Path, set[str]] = {}
        self._asked: dict[Path, dict[tuple[str, str], list[dict[str, Any]]]] = {}

    @property
    def name(self) -> str:
        """``<provider>:<kind>``, as the manifest and events show it."""
        return f"{self.provider}:{self.kind}"

    def __repr__(self) -> str:
        key = "key set" if self.api_key else "no key"
        return f"{type(self).__name__}({self.base_url!r}, {key})"

    def check(self, request: VideoRequest) -> None:
        """Refuse a request up front when there is no key.

        Raises:
            UsageError: No key was given and the environment variable is not set.
        """
        if not self.api_key:
            raise UsageError(self.key_variable, f"{self.name} needs a {self.provider} API "
                             f"key: set {self.key_variable} or pass api_key= (a free key "
                             f"comes with an account: {self.key_page})")

    # -- searching

    async def _candidates(self, query: str, shape: str) -> list[dict[str, Any]]:
        """The search's results as plain candidates (cached for `SEARCH_TTL`)."""
        key = AssetCache.key(f"stock-search:{self.name}", base=self.base_url, query=query,
                             orientation=shape)
        found = self._cached_search(key, report_miss=False)
        if found is not None:
            return found
        async with self._flight(key):
            found = self._cached_search(key)
            if found is not None:
                return found
            body = await self._request(self._search_url(query, shape), "search")
            try:
                answer = json.loads(body)
            except ValueError as exc:
                raise ServiceUnavailable(f"{self.provider} answered the search with "
                                         "something that is not JSON", self.name) from exc
            candidates = self._parse(answer)
            if self.cache is not None:
                self.cache.set_json(key, {"at": time.time(), "candidates": candidates},
                                    source=self.name)
        return candidates

    def _cached_search(self, key: str, *, report_miss: bool = True
                       ) -> list[dict[str, Any]] | None:
        if self.cache is None:
            return None
        value = self.cache.get_json(key, source=self.name, report_miss=report_miss)
        if (isinstance(value, dict) and isinstance(value.get("candidates"), list)
                and isinstance(value.get("at"), int | float)
                and 0 <= time.time() - value["at"] < SEARCH_TTL):
            return [c for c in value["candidates"] if isinstance(c, dict)]
        return None

    def _search_url(self, query: str, shape: str) -> str:
        raise NotImplementedError

    def _headers(self) -> dict[str, str]:
        return {}

    def _parse(self, answer: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def terms(self, scene: Scene) -> tuple[str, ...]:
        """What to search for, in order: the scene's `avgen.Scene.search_terms`, else terms
        extracted from its title and narration (in the language they are written in),
        else its old query (`search_text`).

        Raises:
            NoMatch: The scene has nothing to search for.
        """
        if scene.search_terms:
            return scene.search_terms
        found = detect(scene.narration)
        terms = scene_terms(scene, found[0] if found else None)
        if not terms and (text := search_text(scene)):
            terms = (text,)
        if not terms:
            raise NoMatch(f"scene {scene.index + 1} has nothing to search for", self.name)
        return terms

    def used(self, target: Path) -> set[str]:
        """The results already shown in the video whose file is being written at
        ``target`` (one set per session folder, the folder above ``target``'s)."""
        session = target.parent.parent.resolve()
        return self._used.setdefault(session, set())

    async def search(self, query: str, shape: str, target: Path) -> list[dict[str, Any]]:
        """The results of a search, asked once per video (the shots of a scene share it,
        with or without a cache) and kept in the cache as `_candidates` keeps them."""
        asked = self._asked.setdefault(target.parent.parent.resolve(), {})
        if (query, shape) not in asked:
            asked[query, shape] = await self._candidates(query, shape)
        return asked[query, shape]

    # -- downloading

    async def _fetch_file(self, url: str, target: Path, check: Any) -> MediaInfo:
        """Download ``url`` to ``target`` once (then from the cache), checked by ``check``
        (a function of the probed `MediaInfo` raising `MediaError`)."""
        key = AssetCache.key(f"stock-file:{self.provider}", url=url)
        if self._from_cache(key, target, report_miss=False):
            return self._verify(target, check)
        async with self._flight(key):
            if self._from_cache(key, target):
                return self._verify(target, check)
            await self._download(url, target)
            info = self._verify(target, check)
            if self.cache is not None:
                self.cache.keep(key, target, source=self.name)
        return info

    def _from_cache(self, key: str, target: Path, *, report_miss: bool = True) -> bool:
        return self.cache is not None and self.cache.fetch(key, target, source=self.name,
                                                           report_miss=report_miss)

    def _verify(self, target: Path, check: Any) -> MediaInfo:
        try:
            info = probe(target)
        except MediaError as exc:
            raise MediaError(f"{self.name} downloaded a file that does not decode ({exc})",
                             target) from exc
        check(info)
        return info

    @contextlib.asynccontextmanager
    async def _flight(self, key: str) -> AsyncIterator[None]:
        if self.cache is None:
            yield
            return
        async with self.cache.flight(key, source=self.name):
            yield

    def source(self, candidate: Mapping[str, Any]) -> Source:
        """The `avgen.Source` of a chosen candidate."""
        return Source(self.provider, title=text_field(candidate.get("title")),
                      author=text_field(candidate.get("author")),
                      author_url=text_field(candidate.get("author_url")),
                      page_url=text_field(candidate.get("page_url")), license=self.license)

    # -- HTTP

    async def _request(self, url: str, what: str) -> bytes:
        """GET ``url`` (with the key, on the service's own origin only) and return the
        body, errors turned into avgen's."""
        self._wait_for_reset()
        return await download(url, reach=self.reach, agent=self.name,
                              what=provider_what(self.provider, what),
                              limits=Limits(self.timeout, self.deadline, MAX_ANSWER_BYTES),
                              credentials=self._credentials,
                              on_status=lambda status, headers: self._http_error(
                                  status, headers, what))

    async def _download(self, url: str, target: Path) -> None:
        """Stream ``url`` (no key is sent: the media is on a CDN) to ``target``."""
        self._wait_for_reset()
        await download(url, reach=self.reach, agent=self.name, target=target,
                       what=provider_what(self.provider, "download"),
                       limits=Limits(self.timeout, self.deadline, self.max_bytes),
                       on_status=lambda status, headers: self._http_error(
                           status, headers, "download"))

    def _credentials(self, url: str) -> dict[str, str]:
        """The key's headers for ``url``: only on the service's own origin."""
        return self._headers() if origin(url) == origin(self.base_url) else {}

    def _wait_for_reset(self) -> None:
        remaining = self._resume_at - time.time()
        if remaining > 0:
            raise RateLimited(f"{self.provider} is rate limited for {remaining:.3g} s more",
                              self.name, retry_after=remaining)

    def _http_error(self, status: int, headers: Mapping[str, str] | Message,
                    what: str) -> Exception:
        action = provider_what(self.provider, what)
        if status == 429:
            delay = rate_limit_delay(headers, time.time())
            if delay is not None:
                self._resume_at = max(self._resume_at, time.time() + delay)
            return RateLimited(f"the {action} was rate limited (HTTP 429)", self.name,
                               retry_after=delay)
        if status >= 500 or status == 408:
            return ServiceUnavailable(f"the {action} failed (HTTP {status})", self.name,
                                      retry_after=rate_limit_delay(
                                          {"Retry-After": headers.get("Retry-After", "")},
                                          time.time()))
        if status in (401, 403):
            return AgentError(f"the {action} was refused (HTTP {status}): check "
                              f"{self.key_variable}", self.name)
        return AgentError(f"the {action} failed (HTTP {status})", self.name)


def provider_what(provider: str, what: str) -> str:
    """``"pexels search"``, ``"pixabay download"``…"""
    return f"{provider} {what}"
