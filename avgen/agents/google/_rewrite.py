"""Rephrase before falling back: a prompt a safety filter refused is rewritten by a Gemini
model within `REWRITE_POLICY` and tried again.

Only the subject of a prompt is rewritten — a scene's own visual text, a portrait's
description — never the look: the style and the cast's descriptions are added back by code
around every rewrite (`avgen.Scene.prompt`), so a rewritten scene looks like the others.

`PromptRewriter` asks for one rewrite (paid per token, held against the budget, kept in the
`avgen.agents.AssetCache`); an answer that is empty, one word or the text unchanged
is a failed rewrite. `with_rewrites` drives the tries of one picture or clip: each refusal
is remembered in the cache with its rewrite, so a later run of the same request goes
straight to the prompt that worked — it neither sends the refused prompt nor pays for the
rewrite again.
"""

from __future__ import annotations

__docformat__ = "google"

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from avgen._validate import number
from avgen.agents._assets.cache import AssetCache
from avgen.agents.google._common import GoogleAgent
from avgen.agents.google._connection import GoogleConnection
from avgen.agents.google._prices import Price
from avgen.costs import Charge
from avgen.errors import (
    AgentError,
    BudgetExceeded,
    ContentRejected,
    RateLimited,
    ServiceUnavailable,
)
from avgen.resilience import ResilienceEvent
from avgen.resilience._events import emit

__all__: list[str] = []

T = TypeVar("T")

REWRITE_POLICY = (
    "Keep the scene's meaning: its subject, setting, action, the characters as described "
    "and the visual style. Change only what could have been refused under Google's "
    "Generative AI Prohibited Use Policy: no real public figures or their names, no minors "
    "in any risky situation, no graphic violence, injury or gore, no weapons pointed at "
    "people, no sexual content, no hateful symbols, no self-harm, no dangerous acts shown "
    "in detail, no trademarks or copyrighted characters. Soften or leave out the refused "
    "part; never add anything new."
)
"""What a rewrite keeps and what it drops (sent with every rewrite request)."""

_PROMPT_CHARACTERS = 700
"""The length of a typical picture prompt, for estimates."""
_LOOK_LINE = re.compile(r"^\s*(?:style|characters)\s*:", re.IGNORECASE)
"""A line of the look that the code adds (a rewrite that repeats it has it dropped)."""
_MEMO_FIELD = "rewritten_text"
"""Where a remembered refusal keeps the rewritten text (the subject alone)."""


class PromptRewriter(GoogleAgent):
    """Rewrites refused picture and clip prompts with a Gemini text model.

    Args:
        connection: The shared `avgen.agents.google.GoogleConnection`.
        model: A Gemini text model (``None``: the catalogue's default).
        cache: Where rewrites (and the refusals they answer) are kept.
        prices: Price overrides by model id.
        requests_per_minute: Requests started in any 60 s (``None``: no limit).
    """

    kind = "gemini-rewrite"
    """Names the agent (``gemini-rewrite:<model>``)."""

    def __init__(self, connection: GoogleConnection, model: str | None = None, *,
                 cache: AssetCache | None = None, prices: Mapping[str, Price] | None = None,
                 requests_per_minute: float | None = None) -> None:
        super().__init__(connection, model, cache=cache, prices=prices, max_concurrency=4,
                         requests_per_minute=requests_per_minute)

    def estimate_one(self) -> Charge:
        """The expected price of one rewrite of a typical prompt."""
        asked, answered = self._tokens(_PROMPT_CHARACTERS)
        return Charge(self.name, self.model, round(asked + answered), "token",
                      self.price.tokens(asked, answered))

    @staticmethod
    def _tokens(characters: int) -> tuple[float, float]:
        return (characters + len(REWRITE_POLICY) + 300) / 4, characters / 4 * 1.1

    async def rewrite(self, text: str, reason: str, *, what: str) -> str:
        """A version of ``text`` — the subject of a refused prompt, without its style and
        cast, which stay as they are — that the filter should let through (from the cache
        when this refusal was rewritten before).

        Args:
            text: The subject of the refused prompt: a scene's visual text.
            reason: What the filter said.
            what: ``"picture"`` or ``"video clip"``.

        Raises:
            ContentRejected: The rewrite request itself was blocked.
            AgentError: The model answered with nothing usable: nothing, one word, or
                the text unchanged.
        """
        agent = self
        key = AssetCache.key("rewrite", model=agent.model, prompt=text, reason=reason,
                             what=what, policy=REWRITE_POLICY, part="subject")
        kept = agent.cache.get_json(key, source=self.name) if agent.cache else None
        if isinstance(kept, str) and len(kept.split()) > 1:
            return kept
        from google.genai import types

        asked = (f"A safety filter refused a prompt for a {what} generation model"
                 f"{f' ({reason})' if reason else ''}. Below is what the prompt shows; its "
                 "visual style and the descriptions of its characters are added to it "
                 "separately and stay as they are. Rewrite what it shows so it can be made. "
                 f"{REWRITE_POLICY} Answer with the new text only, as plain text, without "
                 f"the style or the characters' descriptions.\n\nPROMPT:\n{text}")
        expected_in, expected_out = self._tokens(len(text))
        sampling = self.info is None or self.info.can.sampling
        config = types.GenerateContentConfig(temperature=0.4 if sampling else None)
        response = await self._paid_text(asked, config, expected_in, expected_out)
        agent._refuse_blocked(response, "rewrite")
        answer = (response.text or "").strip().strip('"').strip()
        if answer.upper().startswith("PROMPT:"):
            answer = answer[7:].strip()
        answer = "\n".join(line for line in answer.splitlines()
                           if not _LOOK_LINE.match(line)).strip()
        if len(answer.split()) < 2:
            raise AgentError(f"the rewrite came back {'empty' if not answer else 'one word'}"
                             f"{f' ({answer!r})' if answer else ''}", self.name)
        if answer.split() == text.split():
            raise AgentError("the rewrite came back unchanged", self.name)
        if agent.cache is not None:
            agent.cache.set_json(key, answer, source=self.name)
        return answer


async def with_rewrites(agent: GoogleAgent, text: str, compose: Callable[[str], str],
                        attempt: Callable[[str], Awaitable[T]], *,
                        rewriter: PromptRewriter | None, rewrites: int, what: str,
                        memo: Callable[[str], str]) -> tuple[T, list[str], str]:
    """Call ``attempt(compose(text))``; when a safety filter refuses it, rewrite ``text``
    and try again, up to ``rewrites`` times.

    Only ``text`` is rewritten; ``compose`` makes the whole prompt of each try from it, so
    what it adds (the style, the cast's descriptions) is the same in every try.

    Args:
        agent: Who makes the picture or clip (its cache remembers refusals).
        text: The subject of the prompt: the part a rewrite may change.
        compose: The whole prompt for a subject.
        attempt: Makes the picture or clip from a whole prompt.
        rewriter: Who rewrites (``None``: a refusal is final).
        rewrites: Rewrites at most.
        what: ``"picture"`` or ``"video clip"``.
        memo: The cache key under which a refusal of a whole prompt is remembered.

    Returns:
        What ``attempt`` made, a note per rewrite (for `avgen.Source.notes`), and the
        subject it was made from.

    Raises:
        ContentRejected: The last prompt was refused too, or a rewrite came back unusable.
        RateLimited: The rewrite request was refused for quota (retry the call).
        ServiceUnavailable: The rewriter could not be reached (retry the call).
        BudgetExceeded: The rewrite did not fit the budget.
    """
    number("rewrites", rewrites, integer=True, low=0, high=10)
    notes: list[str] = []
    cache = agent.cache
    tried = text
    used = 0
    while True:
        prompt = compose(tried)
        remembered: Any = cache.get_json(memo(prompt), source=agent.name, report_miss=False) \
            if cache is not None and rewriter is not None and used < rewrites else None
        if isinstance(remembered, dict) and isinstance(remembered.get(_MEMO_FIELD), str) \
                and len(remembered[_MEMO_FIELD].split()) > 1:
            used += 1
            notes.append(f"refused before ({remembered.get('reason') or 'no reason given'}); "
                         f"its rewrite was reused: “{' '.join(remembered[_MEMO_FIELD].split())}”")
            tried = remembered[_MEMO_FIELD]
            continue
        try:
            return await attempt(prompt), notes, tried
        except ContentRejected as refused:
            if rewriter is None or used >= rewrites:
                if notes:
                    raise ContentRejected(
                        f"refused again after {used} rewrite(s) of its prompt (the last: "
                        f"{prompt!r})", agent.name, reason=refused.reason) from refused
                raise
            reason = refused.reason or str(refused)
            try:
                rewritten = await rewriter.rewrite(tried, reason, what=what)
            except (RateLimited, ServiceUnavailable, BudgetExceeded):
                raise  # not an answer about the prompt: the policy retries, or the budget says
            except AgentError as failed:
                raise ContentRejected(f"refused, and its prompt could not be rewritten "
                                      f"({failed})", agent.name,
                                      reason=refused.reason) from refused
            used += 1
            emit(ResilienceEvent("prompt.rewrite", agent.name,
                                 {"attempt": used, "reason": reason[:200]}))
            notes.append(f"refused ({reason}); rewritten by {rewriter.name}: "
                         f"“{' '.join(rewritten.split())}”")
            if cache is not None:
                cache.set_json(memo(prompt), {"reason": reason, _MEMO_FIELD: rewritten},
                               source=agent.name)
            tried = rewritten
