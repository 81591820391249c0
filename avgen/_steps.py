"""The life of one step of a run, owned in one place.

A step (the script, a scene's narration, a scene's visual, the composition) is reused when
the manifest holds a record with the same inputs hash whose outputs still check out;
otherwise its work runs while the runner times it, meters its paid calls (a
`avgen.costs.Tab` of the run's ledger), collects what the resilience decorators did, and
records the outcome — done, fallback or failed — in the manifest. Outputs are written by
the work through `avgen.Session.atomic_path`, so a crash never leaves a half file
under a final name.

A step's record also says where its time went while it did not work: ``waits`` (each wait
for a turn of an agent or for quota: what for, when it began, how long) and ``quota``
(each quota slot it held: its name, when, how long, the limit).
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import attrs

from avgen._models import AudioAsset, Visual, asset_from_dict
from avgen._policy import summarize
from avgen._session import Session, StepRecord, StepStatus, unsaved_noted_on
from avgen._threads import to_its_end
from avgen.agents._protocols import agent_name
from avgen.costs import Charge, Ledger
from avgen.resilience import ResilienceEvent, collect
from avgen.resilience._events import emit

__all__ = []


def _total_usd(charges: Iterable[Charge]) -> float:
    """The sum of ``charges`` in US dollars."""
    return math.fsum(charge.usd for charge in charges)


T = TypeVar("T")

_NOTICED = 0.001  # a shorter wait for a turn is not reported


@attrs.frozen
class Made(Generic[T]):
    """What a step's work made: the value for the run and what the manifest keeps."""

    value: T
    """Handed back to the run."""
    outputs: tuple[Path, ...] = ()
    """Files in the session (checksummed in the record; a resume checks them)."""
    data: Mapping[str, Any] = attrs.field(factory=dict)
    """Step facts needed to resume without redoing it (e.g. the asset)."""
    agent: str | None = None
    """Who did the work, when not the step's agent (a fallback tier)."""
    tier: str | None = None
    """For visuals: the tier that delivered."""
    status: StepStatus = "done"
    """``done``, or ``fallback`` when a lower tier served."""
    error: str | None = None
    """What failed on the way (for a fallback)."""


class StepRunner:
    """Runs the steps of one session's run against one ledger.

    Args:
        session: Where outputs and records go.
        ledger: The run's spending, held against its budget.
    """

    def __init__(self, session: Session, ledger: Ledger) -> None:
        self.session = session
        self.ledger = ledger
        self._limits: dict[int, asyncio.Semaphore] = {}

    async def reusable(self, step_id: str, inputs: str) -> StepRecord | None:
        """The recorded step, if it had these inputs, succeeded and its outputs check out
        (checksummed in a worker thread: a resumed batch's other runs go on meanwhile)."""
        manifest = self.session.manifest
        step = manifest.step(step_id)
        if step is None:
            return None
        valid = (await asyncio.to_thread(manifest.is_valid, step, inputs) if step.outputs
                 else manifest.is_valid(step, inputs))  # nothing to read: no thread
        return step if valid else None

    async def reused_asset(self, step_id: str, inputs: str) -> AudioAsset | Visual | None:
        """The asset a reusable step made, or None (see `reusable`)."""
        step = await self.reusable(step_id, inputs)
        if step is None or not step.data.get("asset"):
            return None
        return asset_from_dict(step.data["asset"], self.session.root)

    @contextlib.asynccontextmanager
    async def turn(self, agent: object) -> AsyncIterator[None]:
        """Wait for a turn of ``agent`` (at most its ``max_concurrency`` at once, default 4).

        A wait is reported as a ``turn.wait`` event (see `avgen.resilience.ResilienceEvent`),
        which the step running it records.
        """
        key = id(agent)
        if key not in self._limits:
            limit = getattr(agent, "max_concurrency", 4)
            self._limits[key] = asyncio.Semaphore(max(1, int(limit)))
        limits = self._limits[key]
        busy, waiting = limits.locked(), time.time()
        async with limits:
            waited = time.time() - waiting
            if busy and waited > _NOTICED:
                name = agent_name(agent)
                emit(ResilienceEvent("turn.wait", name, {"name": name, "started": waiting,
                                                         "seconds": waited}))
            yield

    async def run(self, step_id: str, agent: str, inputs: str,
                  work: Callable[[], Awaitable[Made[T]]], *,
                  turn: object | None = None) -> Made[T]:
        """Do a step's work and record it; a failure is recorded, then raised.

        A cancelled step (a sibling failed, or the run was interrupted) records nothing.

        Args:
            step_id: The step's name in the manifest.
            agent: Who does the work.
            inputs: The inputs hash (a resume redoes the step when it changed).
            work: Makes the step's value.
            turn: An agent whose `turn` the work waits for (the wait is part of the step).
        """
        started = time.time()
        with collect() as events, self.ledger.step() as tab:
            try:
                if turn is None:
                    made = await work()
                else:
                    async with self.turn(turn):
                        made = await work()
            except Exception as exc:
                with unsaved_noted_on(exc):  # the step's own error is what is raised
                    self._record(StepRecord(
                        step_id, agent, inputs, "failed", (), started, time.time() - started,
                        cost=_total_usd(tab), error=str(exc) or repr(exc),
                        data=self._facts({}, events, tab)))
                raise
        manifest = self.session.manifest
        # the outputs are checksummed in a worker thread (a long video's file held the
        # event loop, and every other run of a batch, for a fraction of a second); the
        # work is done and may be paid for, so a cancellation meanwhile waits for the
        # record, then is raised
        outputs, cancelled = await to_its_end(
            lambda: tuple(manifest.output(path) for path in made.outputs))
        self._record(StepRecord(
            step_id, made.agent or agent, inputs, made.status, outputs, started,
            time.time() - started, tier=made.tier, cost=_total_usd(tab), error=made.error,
            data=self._facts(made.data, events, tab)))
        if cancelled:
            raise asyncio.CancelledError
        return made

    def _record(self, step: StepRecord) -> None:
        self.session.manifest.record(step)

    @staticmethod
    def _facts(data: Mapping[str, Any], events: Any, tab: Any) -> dict[str, Any]:
        return {**data, "resilience": summarize(events),
                "charges": [charge.to_dict() for charge in tab], **waits(events)}


def waits(events: Iterable[ResilienceEvent]) -> dict[str, list[dict[str, Any]]]:
    """Where a step's time went while it did not work, from its events.

    Returns:
        ``waits``: each ``turn.wait`` and ``quota.wait`` as ``for`` (``turn:<agent>`` or the
        slot's name: ``quota:<model>``, or ``flight:<key>`` for the same paid call made by
        another worker of a batch), ``started``, ``seconds`` and, for quota, ``reason``;
        ``quota``: each ``quota.held`` of a ``quota:`` slot as ``name``, ``started``,
        ``seconds``, ``limit``.
    """
    found: dict[str, list[dict[str, Any]]] = {"waits": [], "quota": []}
    for event in events:
        data = event.data
        if event.kind == "turn.wait":
            found["waits"].append({"for": f"turn:{data.get('name')}",
                                   "started": data.get("started"),
                                   "seconds": data.get("seconds")})
        elif event.kind == "quota.wait":
            found["waits"].append({"for": data.get("name"), "started": data.get("started"),
                                   "seconds": data.get("seconds"),
                                   "reason": data.get("reason")})
        elif event.kind == "quota.held" and str(data.get("name")).startswith("quota:"):
            found["quota"].append({key: data.get(key)
                                   for key in ("name", "started", "seconds", "limit")})
    return found
