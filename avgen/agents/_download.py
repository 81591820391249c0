"""Downloads from addresses a service names, under the rules every agent's download obeys.

- **Where**: the address an answer names is downloaded over ``https`` from a host that
  answer may name (`Reach.hosts`, each with its subdomains), or from the scheme, host and
  port of a base URL the user set explicitly (the only place plain ``http`` is allowed: a
  local server; ``localhost`` and the loopback addresses count as one host there). Any
  other scheme (``file:``, ``ftp:``, ``data:`` …) is refused before a connection is made.
- **Redirects**: at most `MAX_REDIRECTS`, each to ``https`` or back to the base URL the
  user set; never to another scheme.
- **Credentials** go only to their own service's origin (same scheme, host and port): a
  redirect elsewhere is followed without them.
- **Time**: every read waits at most ``read_timeout`` seconds, and the whole download
  (connecting, redirects and the body) ends within ``deadline`` seconds.
- **Size**: a body larger than ``max_bytes`` is refused: from its announced length before
  it is read, else as soon as the bytes received pass the limit.

No message names a whole address (a key may ride in a query string): only its scheme and
host.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import attrs

from avgen.errors import AgentError, RateLimited, ServiceUnavailable

if TYPE_CHECKING:
    import httpx2

__all__: list[str] = []

MAX_REDIRECTS = 5
"""The most redirects one download follows."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 1 << 16

StatusError = Callable[[int, Mapping[str, str]], Exception]
"""Turns an answer that is neither 200 nor a redirect (its status and headers) into the
error to raise."""


def origin(url: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of ``url``, the port filled in for ``http`` and ``https``
    (lowercase; an address that cannot be read gives empty parts)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "", "", None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or {"http": 80, "https": 443}.get(scheme)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_names(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(name.lower().strip(".") for name in names)


@attrs.frozen
class Reach:
    """Where a service's downloads may go.

    Args:
        hosts: The host names its answers may name (each with its subdomains), reached
            over ``https``.
        base: A base URL the user set explicitly (``None``: the service's own): its
            scheme, host and port are allowed too, ``http`` included.
    """

    hosts: tuple[str, ...] = attrs.field(default=(), converter=_host_names)
    """Host names reached over ``https``, with their subdomains."""
    base: str | None = None
    """A base URL the user set explicitly."""

    def refusal(self, url: str, *, redirect: bool = False) -> str | None:
        """Why ``url`` may not be downloaded, or None when it may.

        Args:
            url: The address.
            redirect: It is where a redirect leads (then any ``https`` host will do).
        """
        scheme, host, port = origin(url)
        if self._is_base(scheme, host, port):
            return None
        if scheme != "https":
            shown = f"{scheme}://" if scheme else "an address without a scheme"
            return (f"{shown} is never downloaded (only https, or http from a base URL "
                    "set explicitly)")
        if not host:
            return "an https address without a host"
        if redirect or any(host == name or host.endswith("." + name) for name in self.hosts):
            return None
        return f"{host} is not a host the answer may name ({', '.join(self.hosts)})"

    def _is_base(self, scheme: str, host: str, port: int | None) -> bool:
        if self.base is None:
            return False
        base_scheme, base_host, base_port = origin(self.base)
        same_host = host == base_host or (_loopback(host) and _loopback(base_host))
        return bool(host) and scheme == base_scheme and port == base_port and same_host


@attrs.frozen
class Limits:
    """How long and how large one download may be.

    Args:
        read_timeout: Seconds each read (and the connection) may wait.
        deadline: Seconds the whole download may take.
        max_bytes: The largest body accepted.
        max_redirects: The most redirects followed.
    """

    read_timeout: float = 60.0
    """Seconds each read (and the connection) may wait."""
    deadline: float = 300.0
    """Seconds the whole download may take: connecting, redirects and the body."""
    max_bytes: int = 1 << 30
    """The largest body accepted."""
    max_redirects: int = MAX_REDIRECTS
    """The most redirects followed."""


def status_error(what: str, agent: str) -> StatusError:
    """The usual reading of a failed answer: 429 is a rate limit, 408 and 5xx an outage
    (both retried), anything else a refusal."""
    def error(status: int, headers: Mapping[str, str]) -> Exception:
        if status == 429:
            return RateLimited(f"the {what} was rate limited (HTTP 429)", agent)
        if status >= 500 or status == 408:
            return ServiceUnavailable(f"the {what} failed (HTTP {status})", agent)
        return AgentError(f"the {what} failed (HTTP {status})", agent)

    return error


async def download(url: str, *, reach: Reach, agent: str, what: str = "download",
                   target: Path | None = None, limits: Limits | None = None,
                   credentials: Callable[[str], Mapping[str, str]] | None = None,
                   on_status: StatusError | None = None) -> bytes:
    """GET ``url`` under the module's rules: into ``target``, else into memory.

    Args:
        url: The address.
        reach: Where the download may go.
        agent: The agent named by errors.
        what: What the download is, for messages (``"pexels search"``).
        target: The file to write (its parts are removed if the download fails).
        limits: Time and size limits (default: `Limits()`).
        credentials: The headers to send to an address (called for each hop: it must
            answer nothing for an address outside its service's origin).
        on_status: Turns a failed answer into the error to raise (default: 429 a rate
            limit, 408 and 5xx an outage, the rest a refusal).

    Returns:
        The body (``b""`` when it went to ``target``).

    Raises:
        AgentError: The address, a redirect or the body's size is refused, or the answer
            is a refusal.
        ServiceUnavailable: No answer in time, the deadline passed, or the connection
            failed.
        RateLimited: The answer is a 429 (with the default ``on_status``).
    """
    import httpx2

    limits = limits or Limits()
    on_status = on_status or status_error(what, agent)
    try:
        async with asyncio.timeout(limits.deadline) as clock, httpx2.AsyncClient(
                timeout=limits.read_timeout, follow_redirects=False) as client:
            return await _follow(client, url, reach, agent, what, target, limits,
                                 credentials, on_status)
    except TimeoutError:
        error: Exception = ServiceUnavailable(
            f"the {what} did not finish within its deadline of {limits.deadline:g} s", agent)
        if not clock.expired():
            error = ServiceUnavailable(f"the {what} got no answer in time", agent)
    except httpx2.TimeoutException:
        error = ServiceUnavailable(f"the {what} waited more than {limits.read_timeout:g} s "
                                   "for the service", agent)
    except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as exc:
        error = AgentError(f"the {what} was refused: the address cannot be read "
                           f"({type(exc).__name__})", agent)
    except (httpx2.TransportError, OSError) as exc:
        error = ServiceUnavailable(f"the {what} failed ({type(exc).__name__}: "
                                   f"{_reason(exc)})", agent)
    except BaseException:
        _remove(target)
        raise
    _remove(target)
    raise error


async def _follow(client: httpx2.AsyncClient, url: str, reach: Reach, agent: str,
                  what: str, target: Path | None, limits: Limits,
                  credentials: Callable[[str], Mapping[str, str]] | None,
                  on_status: StatusError) -> bytes:
    import httpx2

    current = url
    for hop in range(limits.max_redirects + 1):
        current = str(httpx2.URL(current))  # as the client reads it, for every check below
        reason = reach.refusal(current, redirect=hop > 0)
        if reason is not None:
            where = "redirected to an address that is refused" if hop else "refused"
            raise AgentError(f"the {what} was {where}: {reason}", agent)
        headers = {"User-Agent": "avgen", **(credentials(current) if credentials else {})}
        async with client.stream("GET", current, headers=headers) as answer:
            status = answer.status_code
            if status in _REDIRECTS:
                location = answer.headers.get("location")
                if not location:
                    raise AgentError(f"the {what} was redirected nowhere (HTTP {status} "
                                     "without a Location)", agent)
                current = urljoin(current, location)
                continue
            if status != 200:
                raise on_status(status, answer.headers)
            announced = answer.headers.get("content-length", "")
            if announced.strip().isdigit() and int(announced) > limits.max_bytes:
                raise AgentError(_too_large(what, limits), agent)
            return await _body(answer, target, limits, what, agent)
    raise AgentError(f"the {what} was redirected more than {limits.max_redirects} times",
                     agent)


async def _body(answer: httpx2.Response, target: Path | None, limits: Limits, what: str,
                agent: str) -> bytes:
    received = 0
    parts: list[bytes] = []
    with open(target, "wb") if target is not None else contextlib.nullcontext() as out:
        async for chunk in answer.aiter_bytes(_CHUNK):
            received += len(chunk)
            if received > limits.max_bytes:
                raise AgentError(_too_large(what, limits), agent)
            if out is None:
                parts.append(chunk)
            else:
                await asyncio.to_thread(out.write, chunk)
    return b"".join(parts)


def _too_large(what: str, limits: Limits) -> str:
    size = limits.max_bytes
    shown = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size} bytes"
    return f"the {what} is larger than {shown}, the most accepted"


def _reason(exc: BaseException) -> str:
    """A transport error's reason without any address in it."""
    text = str(exc) or type(exc).__name__
    return "connection failed" if "://" in text else text[:200]


def _remove(target: Path | None) -> None:
    if target is not None:
        with contextlib.suppress(OSError):
            target.unlink()
