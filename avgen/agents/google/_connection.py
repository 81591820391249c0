"""One `google.genai.Client`, set up the way the Google ecosystem expects, and what it can do.

Credentials come from the usual environment variables (the same ones the ``google-genai``
SDK and Google's samples read):

=============================== ===============================================================
``GEMINI_API_KEY``              Developer API key (``GOOGLE_API_KEY`` wins when both are set)
``GOOGLE_API_KEY``              Developer API key, or a Vertex express-mode key
``GOOGLE_GENAI_USE_VERTEXAI``   ``true``/``1``: use Vertex AI (Veo needs it)
``GOOGLE_CLOUD_PROJECT``        Vertex project (with Application Default Credentials)
``GOOGLE_CLOUD_LOCATION``       Vertex region (default ``us-central1``)
``GOOGLE_GEMINI_BASE_URL``      another endpoint for the Developer API (a proxy, a test server)
``GOOGLE_VERTEX_BASE_URL``      another endpoint for Vertex AI
=============================== ===============================================================

or from a ready `google.genai.Client` passed in. The SDK's own retries stay off: avgen's
`avgen.resilience.retry` is the one layer that retries, so a failing call is never
multiplied.

**What each mode can do** (google-genai 3.x): both serve Gemini text, structured output,
speech and Gemini image models; Veo (``generate_videos``) needs Vertex AI (which models each
surface serves, and until when, is in `avgen.agents.google.CATALOGUE`).
`GoogleConnection.supports` answers up front, so a request for clips in Developer mode gets
a clear error before anything is paid.

**Secrets** (API keys, access tokens) never appear in a repr, a log line, an event, the
manifest, an error message or a printed traceback: `GoogleConnection.redact` scrubs every
message that leaves the agents, `GoogleConnection.translate` chains a scrubbed copy of the
SDK's error instead of the error itself, and `describe` names the mode without the key.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal, Self
from urllib.parse import urlsplit

from avgen._validate import number
from avgen.agents._download import origin
from avgen.errors import (
    AgentError,
    AvgenError,
    ConfigurationError,
    ModelNotFound,
    RateLimited,
    ServiceUnavailable,
    UsageError,
)
from avgen.resilience._retry import server_delay

__all__ = ["GoogleConnection"]

Mode = Literal["developer", "vertex"]
"""``"developer"``: the Gemini Developer API (an API key); ``"vertex"``: Vertex AI."""

Capability = Literal["text", "speech", "gemini_image", "video"]
"""What a mode may serve: see `GoogleConnection.supports`."""

_CAPABILITIES: dict[Mode, frozenset[str]] = {
    "developer": frozenset({"text", "speech", "gemini_image"}),
    "vertex": frozenset({"text", "speech", "gemini_image", "video"}),
}

BLOCK_ENV = "AVGEN_BLOCK_PAID_CALLS"
"""When this environment variable is set (``avgen.testing.block_paid_calls`` sets it), a
connection refuses to be made to anything but a local server: tests cannot pay by mistake."""

_TRUE = {"1", "true", "yes", "on"}
_CHAIN_LIMIT = 8
_KEY_LIKE = re.compile(r"\b(AIza[0-9A-Za-z_\-]{20,}|ya29\.[0-9A-Za-z_\-.]{10,})")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def credentials_present(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment configures Google: an API key, or Vertex AI with a project.

    Args:
        env: The variables to read (default: ``os.environ``).
    """
    env = os.environ if env is None else env
    if env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY"):
        return True
    return _truthy(env.get("GOOGLE_GENAI_USE_VERTEXAI")) and bool(env.get("GOOGLE_CLOUD_PROJECT"))


def _is_local(url: str | None) -> bool:
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GoogleConnection:
    """A `google.genai.Client` with its mode, its capabilities and its secrets.

    Build one with `from_env` (or `from_client` for a client you made); the google agents
    share it. Close it when done (`close`, `aclose`, or ``with`` / ``async with``): a
    connection made by `from_env` closes its client's HTTP connections; one made by
    `from_client` leaves your client open (it is yours to close). Closing twice is harmless.

    Args:
        client: The SDK client.
        mode: ``"developer"`` or ``"vertex"``.
        secrets: Strings to scrub from every message (API keys, tokens).
        describe: How to name this connection to a user (never includes a secret).
        owns_client: Whether `close` closes ``client``.
    """

    def __init__(self, client: Any, mode: Mode, *, secrets: tuple[str, ...] = (),
                 describe: str = "", owns_client: bool = True) -> None:
        self.client = client
        """The `google.genai.Client`."""
        self.mode: Mode = mode
        """``"developer"`` or ``"vertex"``."""
        self._secrets = tuple(s for s in secrets if s)
        self._describe = describe or f"{mode} mode"
        self._owns_client = owns_client
        self.closed = False
        """True once `close` or `aclose` ran."""
        base_url = _http_option(client, "base_url")
        if os.environ.get(BLOCK_ENV) and not _is_local(base_url):
            raise ConfigurationError(
                f"paid calls are blocked ({BLOCK_ENV} is set): point the client at a local "
                f"server (base_url), not {base_url or 'Google'}")

    def __repr__(self) -> str:
        return f"GoogleConnection({self._describe})"

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the client's HTTP connections (sync and async) if this connection owns it."""
        if self.closed:
            return
        self.closed = True
        if self._owns_client:
            self.client.close()

    async def aclose(self) -> None:
        """`close` from async code: the async client's connections are closed too."""
        if self.closed:
            return
        self.closed = True
        if self._owns_client:
            await self.client.aio.aclose()
            self.client.close()

    async def release_loop(self) -> None:
        """Close the connections the async client opened on the running event loop, which
        is about to end; the connection stays usable (another loop opens its own).

        google-genai keeps a pool of connections per event loop (an aiohttp session, or an
        httpx client). Once its loop is closed nothing can close that pool: its sockets
        stay open until the garbage collector finds it, and warn then. avgen's ``*_sync``
        methods, which run each call on a loop of their own, release it before the loop
        ends. Nothing is done for a client you passed in (`from_client`): its connections
        are yours.
        """
        if self.closed or not self._owns_client:
            return
        loop = asyncio.get_running_loop()
        api = getattr(self.client, "_api_client", None)
        sessions = getattr(api, "_aiohttp_sessions", None)  # aiohttp: a session per loop
        if isinstance(sessions, dict):
            with getattr(api, "_sync_auth_lock", None) or contextlib.nullcontext():
                session = sessions.pop(loop, None)
            if session is not None:
                await session.close()
        pools = getattr(getattr(api, "_async_httpx_client", None), "_loop_clients", None)
        if isinstance(pools, dict):  # httpx: a client per loop
            pool = pools.pop(loop, None)
            if pool is not None:
                await pool.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, timeout: float = 120.0,
                 base_url: str | None = None, credentials: Any = None) -> GoogleConnection:
        """Make a client from environment variables (see the module docstring).

        Args:
            env: The variables to read (default: ``os.environ``).
            timeout: Seconds an HTTP request may take before it is abandoned.
            base_url: Another endpoint (default: the SDK's, or the ``*_BASE_URL`` variable).
            credentials: Google auth credentials for Vertex AI (default: Application
                Default Credentials, found by the SDK).

        Raises:
            ConfigurationError: No credentials are configured.
            UsageError: ``timeout`` is not positive.
        """
        from google import genai
        from google.genai import types

        env = os.environ if env is None else env
        number("timeout", timeout, low=0, low_inclusive=False, unit="seconds")
        vertex = _truthy(env.get("GOOGLE_GENAI_USE_VERTEXAI"))
        api_key = env.get("GOOGLE_API_KEY") or env.get("GEMINI_API_KEY") or None
        if vertex:
            base_url = base_url or env.get("GOOGLE_VERTEX_BASE_URL") or None
        else:
            base_url = base_url or env.get("GOOGLE_GEMINI_BASE_URL") or None
        options = types.HttpOptions(base_url=base_url, timeout=int(timeout * 1000))
        secrets: list[str] = [api_key] if api_key else []
        token = getattr(credentials, "token", None)
        if isinstance(token, str):
            secrets.append(token)
        if vertex:
            project = env.get("GOOGLE_CLOUD_PROJECT") or None
            location = env.get("GOOGLE_CLOUD_LOCATION") or "us-central1"
            if project:
                client = genai.Client(vertexai=True, project=project, location=location,
                                      credentials=credentials, http_options=options)
                where = f"vertex mode, project {project!r} in {location}"
            elif api_key:
                client = genai.Client(vertexai=True, api_key=api_key, http_options=options)
                where = "vertex mode (express, API key)"
            else:
                raise ConfigurationError(
                    "GOOGLE_GENAI_USE_VERTEXAI is set but neither GOOGLE_CLOUD_PROJECT nor "
                    "GOOGLE_API_KEY is: set the project (with Application Default "
                    "Credentials) or an express-mode API key")
            return cls(client, "vertex", secrets=tuple(secrets), describe=where)
        if not api_key:
            raise ConfigurationError(
                "no Google credentials: set GEMINI_API_KEY (Developer API), or "
                "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT (Vertex AI), or "
                "pass a google.genai.Client")
        client = genai.Client(api_key=api_key, http_options=options)
        return cls(client, "developer", secrets=tuple(secrets), describe="developer mode")

    @classmethod
    def from_client(cls, client: Any) -> GoogleConnection:
        """Wrap a `google.genai.Client` you made.

        Raises:
            UsageError: The client has the SDK's retries switched on (they would multiply
                with avgen's), or is not a client.
        """
        api = getattr(client, "_api_client", None)
        if api is None or not hasattr(client, "models"):
            raise UsageError("client", f"must be a google.genai.Client, not "
                             f"{type(client).__name__}")
        if _http_option(client, "retry_options") is not None:
            raise UsageError("client", "has HttpOptions(retry_options=...) set; avgen retries "
                             "failed calls itself, so make the client without retry_options")
        mode: Mode = "vertex" if getattr(api, "vertexai", False) else "developer"
        secrets = tuple(s for s in (getattr(api, "api_key", None),
                                    getattr(getattr(api, "_credentials", None), "token", None))
                        if isinstance(s, str))
        return cls(client, mode, secrets=secrets, describe=f"{mode} mode (client given)",
                   owns_client=False)

    # -- what it can do ------------------------------------------------------------------

    def supports(self, capability: Capability) -> bool:
        """Whether this mode serves ``capability``: ``text``, ``speech``, ``gemini_image``
        (every mode) and ``video`` (Vertex AI only)."""
        return capability in _CAPABILITIES[self.mode]

    @property
    def base_url(self) -> str | None:
        """The endpoint the client talks to, when one was set (``None``: Google's own)."""
        url = _http_option(self.client, "base_url")
        return url if isinstance(url, str) else None

    @property
    def timeout(self) -> float:
        """Seconds an HTTP request may take (the client's setting, else 120)."""
        millis = _http_option(self.client, "timeout")
        return millis / 1000 if isinstance(millis, int | float) and millis > 0 else 120.0

    def auth_headers(self, url: str) -> dict[str, str]:
        """The API-key header for a download from ``url`` — only when ``url`` is on the
        connection's own endpoint (same scheme, host and port); else none, so a key is
        never sent to another host."""
        key = getattr(getattr(self.client, "_api_client", None), "api_key", None)
        base = self.base_url
        if isinstance(key, str) and key and base and origin(base) == origin(url):
            return {"x-goog-api-key": key}
        return {}

    def describe(self) -> str:
        """The mode in words, for messages (never contains a secret)."""
        return self._describe

    # -- messages and errors -------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every secret of this connection (and anything shaped like a Google
        API key or access token) replaced by ``[redacted]``."""
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return _KEY_LIKE.sub("[redacted]", text)

    def translate(self, exc: BaseException, agent: str, *, model: str | None = None,
                  replacement: str | None = None) -> AvgenError:
        """Turn an SDK or transport error into avgen's error tree, with no secret in it.

        429 → `avgen.errors.RateLimited` and 408 and 5xx → `avgen.errors.ServiceUnavailable`,
        each with the delay the service asked for (``Retry-After`` or ``RetryInfo``) in
        ``retry_after``; timeouts and connection failures → `avgen.errors.ServiceUnavailable`
        (retried by `avgen.resilience.retry`), and so is an answer whose body is not JSON
        (HTTP 200 with an HTML page: a proxy or a captive portal); 401/403 → an
        `avgen.errors.AgentError` naming the credentials; 404 about ``model`` (shut down,
        unknown, not open to this account) → `avgen.errors.ModelNotFound` naming
        ``replacement``; other errors → `avgen.errors.AgentError`. Errors that already belong
        to avgen pass through unchanged.

        The message is redacted, and the new error's ``__cause__`` is not ``exc`` (whose text,
        response and request may hold a key) but a `RedactedError`: ``exc``'s type and text
        with every secret scrubbed, with ``exc``'s traceback, and the same for the errors
        chained to it. Raise the result outside the ``except`` block that caught ``exc``, so
        ``exc`` is not chained as its context either::

            try:
                return await call()
            except Exception as exc:
                error = connection.translate(exc, "gemini")
            raise error
        """
        if isinstance(exc, AvgenError):
            return exc
        error = self._translated(exc, agent, model, replacement)
        error.__cause__ = self._scrubbed(exc)
        return error

    def _translated(self, exc: BaseException, agent: str, model: str | None,
                    replacement: str | None) -> AvgenError:
        code = getattr(exc, "code", None)
        status = getattr(exc, "status", None) or ""
        detail = self.redact(str(getattr(exc, "message", None) or exc))[:500]
        name = type(exc).__name__
        if isinstance(code, int) and type(exc).__module__.startswith("google.genai"):
            delay = server_delay(exc)
            if code == 429:
                return RateLimited(f"quota exceeded (429 {status}): {detail}", agent,
                                   retry_after=delay)
            if code in (408, 500, 502, 503, 504):
                asked = "" if delay is None else f" (it asked to retry after {delay:g} s)"
                return ServiceUnavailable(f"service error ({code} {status}): {detail}{asked}",
                                          agent, retry_after=delay)
            if code == 404 and model and _about_model(detail, model):
                return ModelNotFound(f"404 {status}: {detail}", agent, model=model,
                                     replacement=replacement)
            if code in (401, 403):
                return AgentError(f"the credentials were refused ({code} {status}; "
                                  f"{self.describe()}): {detail}", agent)
            return AgentError(f"request refused ({code} {status}): {detail}", agent)
        if isinstance(exc, json.JSONDecodeError):
            return ServiceUnavailable(
                "the service answered with something that is not the JSON expected (an HTML "
                "page from a proxy or a network sign-in page?); retrying", agent)
        lineage = [klass.__name__ for klass in type(exc).__mro__]  # httpx's or aiohttp's
        if any("Timeout" in each for each in lineage) or isinstance(exc, TimeoutError):
            return ServiceUnavailable(f"no answer in time ({name})", agent)
        if any(part in each for each in lineage for part in (
                "ConnectError", "ConnectionError", "RemoteProtocol")) \
                or isinstance(exc, ConnectionError):
            return ServiceUnavailable(f"cannot reach the service ({name}: {detail})", agent)
        return AgentError(f"{name}: {detail}", agent)

    def _scrubbed(self, exc: BaseException, depth: int = 0) -> RedactedError:
        """``exc`` and what is chained to it, as `RedactedError` stand-ins."""
        klass = type(exc)
        stand_in = RedactedError(f"{klass.__module__}.{klass.__qualname__}: "
                                 f"{self.redact(str(exc))}")
        stand_in.original_type = f"{klass.__module__}.{klass.__qualname__}"
        code = getattr(exc, "code", None)
        stand_in.code = code if isinstance(code, int) and not isinstance(code, bool) else None
        stand_in.__traceback__ = exc.__traceback__
        for note in getattr(exc, "__notes__", None) or ():
            stand_in.add_note(self.redact(str(note)))
        if depth < _CHAIN_LIMIT:
            if exc.__cause__ is not None:
                stand_in.__cause__ = self._scrubbed(exc.__cause__, depth + 1)
            elif exc.__context__ is not None and not exc.__suppress_context__:
                stand_in.__context__ = self._scrubbed(exc.__context__, depth + 1)
        return stand_in


class RedactedError(Exception):
    """An SDK or transport error as `GoogleConnection.translate` chains it: its type and
    text with every secret scrubbed, and its traceback (frames show code, never values)."""

    original_type: str = ""
    """The qualified name of the error it stands for (``google.genai.errors.ClientError``)."""
    code: int | None = None
    """The HTTP status of the error it stands for, when it had one."""


def _about_model(message: str, model: str) -> bool:
    """Whether a 404's message is about a model (not about an operation or a file)."""
    return "/operations/" not in message and model.rsplit("/", 1)[-1] in message


def _http_option(client: Any, name: str) -> Any:
    """One of the client's ``HttpOptions`` (the SDK keeps them on its API client)."""
    options = getattr(getattr(client, "_api_client", None), "_http_options", None)
    return getattr(options, name, None)
