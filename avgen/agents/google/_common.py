"""What every google agent shares: the connection, the cache, prices, policy, error mapping."""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from avgen._models import VideoRequest
from avgen._policy import AgentPolicy
from avgen._threads import through_thread
from avgen._validate import instance, number, text
from avgen.agents._assets.cache import AssetCache
from avgen.agents.google._catalogue import CATALOGUE, Kind, ModelInfo, price_of
from avgen.agents.google._connection import Capability, GoogleConnection
from avgen.agents.google._prices import Price
from avgen.costs import paid_call
from avgen.errors import (
    AgentError,
    BudgetExceeded,
    ContentRejected,
    ModelNotFound,
    RateLimited,
    UsageError,
)
from avgen.resilience import CircuitSettings, RetryPolicy
from avgen.resilience._shared import LocalCoordination, Shared, current_shared

T = TypeVar("T")

__all__ = ["GOOGLE_POLICY"]

GOOGLE_POLICY = AgentPolicy(
    retry=RetryPolicy(attempts=4, timeout=600.0, wait_initial=2.0, wait_max=60.0),
    circuit=CircuitSettings(window_size=10, minimum_calls=4, failure_rate_threshold=50.0,
                            wait_open=60.0, ignore=(ContentRejected, BudgetExceeded,
                                                    UsageError, ModelNotFound),
                            ignore_rate_limits=True),
)
"""How the generator calls a google agent: quota answers (429) and outages (5xx) are
retried, never earlier than a ``Retry-After`` or ``RetryInfo`` asks (a wait longer than 60 s
or than the time left stops with `avgen.errors.RateLimited` saying when to come back); a
safety refusal, a budget stop or a model the service does not serve is not retried. A
breaker per agent opens when half of its last calls failed, so the remaining scenes fall
back at once instead of waiting on a service that is down; quota answers, safety refusals,
budget stops and unserved models count as neither success nor failure: they never mean the
service is down."""

BLOCKED_FINISH = frozenset({"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII",
                            "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT"})
"""Finish reasons of a ``generate_content`` answer that mean a safety filter kept it back."""

WORDS_PER_SECOND = 2.5
"""Speaking rate used to plan narration length (about 150 words a minute)."""

SCENE_SECONDS = 8.0
"""The length a planned scene aims at (one Veo clip)."""


def planned_seconds(request: VideoRequest) -> float:
    """How long the narration of ``request`` is expected to last."""
    if request.duration:
        return float(request.duration)
    if request.script:
        return max(4.0, len(request.script.split()) / WORDS_PER_SECOND)
    return 30.0


def planned_scenes(request: VideoRequest) -> int:
    """How many scenes the script of ``request`` is expected to have."""
    return max(1, math.ceil(planned_seconds(request) / SCENE_SECONDS))


class GoogleAgent:
    """Base of the google agents (not part of the public protocols: any agent will do).

    Args:
        connection: The shared `avgen.agents.google.GoogleConnection`.
        model: The model id (``None``: the catalogue's default of the agent's kind for the
            connection's surface).
        cache: Where paid results are kept (``None``: no cache).
        prices: Price overrides by model id.
        max_concurrency: Calls in flight at once for this model (across every worker of a
            batch).
        requests_per_minute: Requests this model may start in any 60 s (across every
            worker of a batch); ``None``: no limit.

    Raises:
        UsageError: An argument is out of range, or the model cannot be used on the
            connection's surface (shut down, not served there, or of another kind); the
            error names the replacement. Nothing has been sent.
    """

    kind = "google"
    """A word naming the agent's job, used in its name."""
    needs: Capability = "text"
    """What the connection must be able to serve."""
    model_kind: Kind = "text"
    """The kind of model the agent calls (``text``, ``image``, ``speech``, ``video``)."""
    method = "generateContent"
    """The API method the agent calls its model with."""

    def __init__(self, connection: GoogleConnection, model: str | None = None, *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 max_concurrency: int = 4, requests_per_minute: float | None = None) -> None:
        instance("connection", connection, GoogleConnection)
        instance("cache", cache, AssetCache, optional=True)
        self.connection = connection
        """The shared connection."""
        self._served()
        if model is None:
            model = CATALOGUE.default(self.model_kind, connection.mode)
        text("model", model, blank=False)  # a model id
        self.info: ModelInfo | None = CATALOGUE.vet(model, kind=self.model_kind,
                                                    surface=connection.mode)
        """The model's catalogue entry (for an id the catalogue does not list, its
        family's; ``None`` when it has none)."""
        if self.info is not None and self.info.can.method != self.method:
            raise UsageError("model", f"{model} is served through the {self.info.can.method} "
                             f"API, and {self.kind} calls {self.method}; give a model it can "
                             "call (avgen models lists them)")
        number("max_concurrency", max_concurrency, integer=True, low=1)
        number("requests_per_minute", requests_per_minute, low=0, low_inclusive=False,
               optional=True)
        self.model = model
        """The model id."""
        self.cache = cache
        """Where paid results are kept (``None``: nothing is cached)."""
        self.price: Price = price_of(model, prices)
        """The model's price."""
        self.max_concurrency = max_concurrency
        """Calls in flight at once."""
        self.requests_per_minute = requests_per_minute
        """Requests started in any 60 s (``None``: no limit)."""
        self._own_quota = Shared(LocalCoordination(), owner=self.name)
        self.resilience = GOOGLE_POLICY
        """How the generator retries and guards this agent's calls."""

    def close(self) -> None:
        """Close the shared connection (the other agents on it are closed with it)."""
        self.connection.close()

    async def aclose(self) -> None:
        """`close` from async code."""
        await self.connection.aclose()

    async def release_loop(self) -> None:
        """Close the shared connection's pool on the running event loop, which is about to
        end (`GoogleConnection.release_loop`); the agent stays usable."""
        await self.connection.release_loop()

    @property
    def name(self) -> str:
        """``<kind>:<model>``, as the manifest and events show it."""
        return f"{self.kind}:{self.model}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, {self.connection.describe()})"

    def check(self, request: VideoRequest) -> None:
        """Validate a request up front: the connection's mode must serve this agent, and
        its model must not have been shut down since the agent was made.

        Raises:
            UsageError: The mode cannot serve it (for instance clips in Developer mode), or
                the model was shut down.
        """
        self._served()
        verdict = CATALOGUE.judge(self.model, kind=self.model_kind,
                                  surface=self.connection.mode)
        if verdict.problem is not None:
            raise UsageError("model", verdict.problem)

    def _served(self) -> None:
        """Refuse a connection whose mode cannot serve this agent."""
        if not self.connection.supports(self.needs):
            raise UsageError(
                "agents", f"{self.kind} needs Vertex AI ({self.needs} is not served in "
                f"{self.connection.describe()}); set GOOGLE_GENAI_USE_VERTEXAI=true with "
                "GOOGLE_CLOUD_PROJECT, or leave this agent out")

    @property
    def replacement(self) -> str | None:
        """The model to use instead of this one, should the service stop serving it."""
        return CATALOGUE.replacement(self.model, kind=self.model_kind,
                                     surface=self.connection.mode)

    @contextlib.asynccontextmanager
    async def _flight(self, key: str) -> AsyncIterator[None]:
        """`AssetCache.flight` of ``key`` (nothing to hold without a cache); in a batch,
        also the batch's lock of ``key``, which holds across its workers and machines."""
        if self.cache is None:
            yield
            return
        shared = current_shared()
        async with contextlib.AsyncExitStack() as stack:
            if shared is not None:
                await stack.enter_async_context(shared.slot(f"flight:{key}", 1))
            await stack.enter_async_context(self.cache.flight(key, source=self.name))
            yield

    @contextlib.asynccontextmanager
    async def _quota(self) -> AsyncIterator[None]:
        """Around one paid request (a Veo operation from submit until it is done): at most
        `max_concurrency` of this model at once and `requests_per_minute` starts — across
        every worker when run in a batch, else in this agent. A quota answer (429) holds
        every one of them off for the delay the service asked for (5 s if it said none)."""
        quota = current_shared() or self._own_quota
        name = f"quota:{self.model}"
        async with quota.slot(name, self.max_concurrency):
            await quota.pace(name, self.requests_per_minute)
            try:
                yield
            except RateLimited as exc:
                quota.hold_off(name, exc.retry_after if exc.retry_after is not None else 5.0)
                raise

    async def _paid_text(self, contents: Any, config: Any, expected_in: float,
                         expected_out: float) -> Any:
        """One ``generate_content`` call of this model under its quota, priced at the
        expected tokens when reserved and settled at the tokens the answer reports."""
        async with self._quota():
            with paid_call(agent=self.name, model=self.model,
                           quantity=expected_in + expected_out, unit="token",
                           usd=self.price.tokens(expected_in, expected_out)) as bill:
                response = await self._api(lambda: self.connection.client.aio.models
                                           .generate_content(model=self.model,
                                                             contents=contents, config=config))
                usage = response.usage_metadata
                if usage is not None:
                    used_in = usage.prompt_token_count or 0
                    used_out = ((usage.candidates_token_count or 0)
                                + (usage.thoughts_token_count or 0))
                    bill.settle(quantity=used_in + used_out,
                                usd=self.price.tokens(used_in, used_out))
        return response

    def _fetch(self, key: str, target: Path, *, report_miss: bool = True) -> bool:
        """Whether the cache had ``key`` (then copied to ``target``)."""
        return self.cache is not None and self.cache.fetch(key, target, source=self.name,
                                                           report_miss=report_miss)

    async def _keep(self, key: str, path: Path) -> None:
        """Keep the file at ``path`` under ``key`` (when there is a cache), copied in a
        worker thread: a cancellation waits for the copy, so whoever waits for this asset
        (`_flight`) finds it kept instead of paying for it again."""
        if self.cache is not None:
            await through_thread(self.cache.keep, key, path, source=self.name)

    async def _api(self, call: Callable[[], Awaitable[T]]) -> T:
        """Await one SDK call, turning its errors into avgen's (redacted, and chained to a
        redacted copy of the SDK's error, never to the error itself)."""
        try:
            return await call()
        except Exception as exc:
            error = self.connection.translate(exc, self.name, model=self.model,
                                              replacement=self.replacement)
        raise error

    def _redact(self, value: Any) -> str:
        return self.connection.redact(str(value))

    def _refuse_blocked(self, response: Any, what: str) -> str:
        """Raise `avgen.errors.ContentRejected` when a ``generate_content`` answer was
        blocked (the prompt, or the answer); else return the first finish reason."""
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason:
            raise ContentRejected(f"the {what} prompt was blocked", self.name,
                                  reason=_value(feedback.block_reason))
        finish = ""
        for candidate in response.candidates or []:
            reason = _value(candidate.finish_reason)
            if reason in BLOCKED_FINISH:
                raise ContentRejected(f"the {what} was blocked", self.name, reason=reason)
            finish = finish or reason
        return finish

    def _inline(self, response: Any, mime_prefix: str, what: str) -> Any:
        """The first inline part whose mime type starts with ``mime_prefix`` (its
        ``data`` and ``mime_type``), after refusing a blocked answer.

        Raises:
            ContentRejected: The answer was blocked.
            AgentError: No such part came back.
        """
        self._refuse_blocked(response, what)
        for candidate in response.candidates or []:
            for part in (candidate.content.parts or []) if candidate.content else []:
                data = part.inline_data
                if data is not None and data.data and (data.mime_type or "").startswith(
                        mime_prefix):
                    return data
        raise AgentError(f"the model answered without {what}", self.name)


def _value(reason: Any) -> str:
    """An SDK enum (or string) as its plain value."""
    return str(getattr(reason, "value", reason) or "")
