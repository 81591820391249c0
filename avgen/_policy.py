"""How `avgen.VideoGenerator` calls each agent: through `monitored`, `retry` and `circuit`.

Every agent call in a run goes through `AgentPolicy.wrap`: it is timed (`monitored`),
transient failures are retried (`retry`, stamina underneath) and, when the policy has
breaker settings, judged by a circuit breaker that fails fast once the service is down —
so the scene falls back to the next tier at once instead of waiting. What the decorators
did (retries, breaker transitions, refusals) is recorded in the step of the manifest and
sent as generator events.

An agent chooses its own policy with a ``resilience`` attribute (the google agents do: a
paid clip submit is never retried blindly); `VideoGenerator(policies={...})` overrides it
per role. Agents without one get `DEFAULT_POLICY`: a few retries of transient errors, no
breaker.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from typing import Any

import attrs

from avgen.errors import UsageError
from avgen.resilience import (
    CircuitRegistry,
    CircuitSettings,
    Monitor,
    ResilienceEvent,
    RetryPolicy,
    monitored,
    retry,
)
from avgen.resilience._events import Hook

__all__ = ["AgentPolicy"]

ROLES = ("script_writer", "narrator", "image_generator", "clip_generator", "composer")
"""The agent roles a policy can be set for."""

AsyncCall = Callable[..., Coroutine[Any, Any, Any]]
_AGENT_RETRY = RetryPolicy(attempts=3, timeout=600.0, wait_initial=1.0, wait_max=30.0)


@attrs.frozen
class AgentPolicy:
    """Retry and circuit-breaker settings for one agent.

    Example:
        >>> from avgen.resilience import CircuitSettings, RetryPolicy
        >>> veo = AgentPolicy(retry=None,   # the agent retries its own polling
        ...                   circuit=CircuitSettings(minimum_calls=2, wait_open=120))
    """

    retry: RetryPolicy | None = _AGENT_RETRY
    """How to retry transient failures; ``None``: never retry (one attempt)."""
    circuit: CircuitSettings | None = None
    """Breaker settings (the breaker is shared by every call of the agent); ``None``: none."""

    def wrap(self, call: AsyncCall, *, name: str, registry: CircuitRegistry,
             hooks: Iterable[Hook] = (), monitor: Monitor | None = None) -> AsyncCall:
        """Wrap an async agent call: ``monitored(retry(circuit(call)))``.

        Args:
            call: The agent's (async) method.
            name: The agent's name: names the breaker and the events.
            registry: Where the breaker lives (one per generator, so it outlives a run).
            hooks: Receive the events of `retry` and `monitored` as they happen (the
                breaker's own go to its settings' hooks and to `collect` blocks, since the
                breaker outlives this wrapper).
            monitor: Receives every call for its run report.
        """
        hooks = tuple(hooks)
        wrapped = call
        if self.circuit is not None:
            wrapped = registry.get(name, self.circuit)(wrapped)
        if self.retry is not None:
            settings = attrs.asdict(self.retry, recurse=False)
            settings["hooks"] = (*self.retry.hooks, *hooks)
            settings["name"] = self.retry.name or name
            wrapped = retry(**settings)(wrapped)
        return monitored(name, hooks=hooks, monitor=monitor)(wrapped)


DEFAULT_POLICY = AgentPolicy()
"""For agents that declare none: up to 3 attempts on transient errors, no breaker."""

LOCAL_POLICY = AgentPolicy(retry=None)
"""For work done on this machine (the composer): a failure will not pass by retrying."""


_calling: contextvars.ContextVar[asyncio.Event | threading.Event | None] = \
    contextvars.ContextVar("avgen_calling", default=None)


@contextlib.contextmanager
def first_call(called: asyncio.Event | threading.Event) -> Iterator[None]:
    """Within, the first agent call (`call_agent`) sets ``called``: a run's own set-up
    is over once it asks an agent for something."""
    token = _calling.set(called)
    try:
        yield
    finally:
        _calling.reset(token)


async def call_agent(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Await an agent method, running a plain (blocking) one in a worker thread."""
    called = _calling.get()
    if called is not None:
        called.set()
    if inspect.iscoroutinefunction(method):
        return await method(*args, **kwargs)
    result = await asyncio.to_thread(method, *args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def guard(role: str, agent: object, method: str, *, overrides: Mapping[str, AgentPolicy],
          registry: CircuitRegistry, hooks: Iterable[Hook] = (),
          monitor: Monitor | None = None) -> AsyncCall:
    """``agent.method`` as a run calls it: async, through the role's policy (`policy_for`)."""
    bound = getattr(agent, method)

    async def call(*args: Any, **kwargs: Any) -> Any:
        return await call_agent(bound, *args, **kwargs)

    name = getattr(agent, "name", None)
    name = name if isinstance(name, str) and name else type(agent).__name__
    return policy_for(role, agent, overrides).wrap(call, name=name, registry=registry,
                                                   hooks=hooks, monitor=monitor)


def policy_for(role: str, agent: object, overrides: Mapping[str, AgentPolicy]) -> AgentPolicy:
    """The policy of ``agent`` in ``role``: the override, the agent's own, or the default."""
    if role in overrides:
        return overrides[role]
    own = getattr(agent, "resilience", None)
    if isinstance(own, AgentPolicy):
        return own
    return LOCAL_POLICY if role == "composer" else DEFAULT_POLICY


def check_policies(policies: Mapping[str, AgentPolicy]) -> dict[str, AgentPolicy]:
    """Validate a ``policies`` mapping.

    Raises:
        UsageError: An unknown role, or a value that is not an `AgentPolicy`.
    """
    for role, policy in policies.items():
        if role not in ROLES:
            raise UsageError("policies", f"unknown role {role!r}; choose from {', '.join(ROLES)}")
        if not isinstance(policy, AgentPolicy):
            raise UsageError(f"policies[{role!r}]", "must be an AgentPolicy")
    return dict(policies)


def summarize(events: Iterable[ResilienceEvent]) -> dict[str, Any]:
    """What the decorators did during one step, for the manifest.

    Returns:
        ``attempts`` (calls of the agent, retries included), ``retries`` (each with the
        seconds waited, the delay the service asked for if any, and the error),
        ``circuit`` (transitions and refusals), ``seconds`` (time in the agent, retries and
        waits included), when the agent keeps an asset cache, ``cache`` (``"hit"`` or
        ``"miss"`` for each lookup) and, when a refused prompt was rewritten, ``rewrites``
        (the agent, the attempt and the refusal's reason).
    """
    summary: dict[str, Any] = {"attempts": 0, "retries": [], "circuit": []}
    for event in events:
        if event.kind == "retry.attempt":
            summary["retries"].append({"attempt": event.data.get("attempt"),
                                       "delay": event.data.get("delay"),
                                       "requested": event.data.get("requested"),
                                       "error": event.data.get("error")})
        elif event.kind == "retry.giveup":
            summary["gave_up"] = event.data.get("reason")
        elif event.kind.startswith("circuit."):
            summary["circuit"].append({"event": event.kind, **{
                k: v for k, v in event.data.items() if isinstance(v, (str, int, float))}})
        elif event.kind in ("cache.hit", "cache.miss"):
            summary.setdefault("cache", []).append(event.kind.removeprefix("cache."))
        elif event.kind == "call":
            summary["seconds"] = event.data.get("seconds")
        elif event.kind == "prompt.rewrite":
            summary.setdefault("rewrites", []).append({
                "agent": event.source, "attempt": event.data.get("attempt"),
                "reason": event.data.get("reason")})
    summary["attempts"] = 1 + len(summary["retries"])
    return summary
