"""What a run will cost, what it spent, and a budget it cannot go over.

An agent that pays per call wraps each paid request in `paid_call`::

    with paid_call(agent="veo", model="veo-3.1-fast-generate-001", quantity=8,
                   unit="video_second", usd=0.80) as bill:
        clip = await submit_and_wait(...)
        bill.settle(quantity=clip_seconds)       # when the amount billed differs

Before the request is sent, its price is reserved against the run's budget: if it does not
fit, `avgen.errors.BudgetExceeded` is raised and the request is never made. When the block
ends normally the `Charge` is recorded in the current step (the manifest's ``cost`` and
``charges``); when it raises, nothing is charged. `avgen.VideoGenerator` opens a `Ledger`
per run (``VideoGenerator(budget=...)``) and a `Tab` per manifest step; outside a run,
`paid_call` only measures, and ``with Ledger(budget=1.0).step() as tab:`` meters agent
calls made by hand.

The step's `Tab` reaches `paid_call` in the task that runs the step and in the threads it
starts with `asyncio.to_thread` (both copy the context). A thread of an agent's own pool
does not inherit it: take the tab in the agent's coroutine with `current_tab` and hand it
over explicitly, ``paid_call(..., tab=tab)``. A paid call that finds no tab while a step
is being metered in this process is refused (`avgen.errors.UsageError`) before anything is
sent: spending can never slip past a budget unseen.

Agents may also price a request before any work: an ``estimate(request)`` method returning
`Charge` objects, summed by `avgen.VideoGenerator.estimate` into a `CostEstimate`.

Example:
    >>> ledger = Ledger(budget=1.00)
    >>> with ledger.step() as tab:
    ...     with paid_call(agent="gemini-image", model="gemini-3.1-flash-image",
    ...                    quantity=1, unit="image", usd=0.04):
    ...         pass                                   # the request goes here
    >>> tab[0].usd, ledger.spent
    (0.04, 0.04)
    >>> with ledger.step():
    ...     with paid_call(agent="veo", model="veo-3.1-generate-001", quantity=8,
    ...                    unit="video_second", usd=3.20):
    ...         pass
    Traceback (most recent call last):
    avgen.errors.BudgetExceeded: veo: ... over its budget of $1.00
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import contextvars
import math
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import attrs

from avgen._validate import check_budget
from avgen.errors import BudgetExceeded, UsageError

if TYPE_CHECKING:
    from avgen.resilience._shared import Shared

__all__ = ["Bill", "Charge", "CostEstimate", "Ledger", "Tab", "current_tab", "paid_call"]


@attrs.frozen
class Charge:
    """The price of one paid call (or, in an estimate, of a group of calls)."""

    agent: str
    """The agent that paid."""
    model: str
    """The model billed."""
    quantity: float
    """How much was billed, in `unit`."""
    unit: str
    """``video_second``, ``image``, ``input_token``, ``output_token`` or ``audio_second``."""
    usd: float
    """The price in US dollars."""
    scene: int | None = None
    """In an estimate: the scene (from 0) the line is for; ``None`` for the whole video."""
    language: str | None = None
    """In an estimate of a video in several languages: the language whose version alone
    pays the line (its translation, narration); ``None`` for what every version shares
    (the script, the pictures)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``scene`` and ``language`` only when set)."""
        data = attrs.asdict(self)
        for key in ("scene", "language"):
            if data[key] is None:
                del data[key]
        return data


@attrs.frozen
class CostEstimate:
    """What a request is expected to cost, line by line, before anything is spent.

    The `total` is what a fresh run that meets no refusal and no error is expected to pay:
    the planned scenes' clips (or stills), narration and the script. `extras` lists what
    may be paid on top: fallback stills when a clip fails, rewrites of refused prompts,
    portraits of characters the script writer may add. Retries of calls the service
    refused cost nothing; assets already cached cost nothing either.
    """

    charges: tuple[Charge, ...] = attrs.field(converter=tuple[Charge, ...])
    """One line per agent and model, or per scene (`Charge.scene`)."""
    budget: float | None = None
    """The generator's budget, if it has one."""
    extras: tuple[Charge, ...] = attrs.field(default=(), converter=tuple[Charge, ...])
    """What may be paid on top of `total`, each at its most."""

    @property
    def extras_total(self) -> float:
        """The sum of `extras`, in US dollars."""
        return math.fsum(charge.usd for charge in self.extras)

    def by_scene(self) -> dict[int | None, tuple[Charge, ...]]:
        """The charges grouped by scene (``None``: the whole video), in scene order."""
        groups: dict[int | None, list[Charge]] = {}
        for charge in sorted(self.charges, key=lambda c: -1 if c.scene is None else c.scene):
            groups.setdefault(charge.scene, []).append(charge)
        return {scene: tuple(lines) for scene, lines in groups.items()}

    @property
    def total(self) -> float:
        """The sum of every line, in US dollars."""
        return math.fsum(charge.usd for charge in self.charges)

    @property
    def shared(self) -> float:
        """What every version shares (the lines of no `Charge.language`), in US dollars:
        the whole `total` for a video in one language."""
        return math.fsum(charge.usd for charge in self.charges if charge.language is None)

    def by_language(self) -> dict[str, float]:
        """What each language's version alone adds (its translation, narration), in US
        dollars, in the order the languages first appear; empty for a video in one
        language."""
        found: dict[str, list[float]] = {}
        for charge in self.charges:
            if charge.language is not None:
                found.setdefault(charge.language, []).append(charge.usd)
        return {language: math.fsum(costs) for language, costs in found.items()}

    @property
    def within_budget(self) -> bool:
        """Whether the total fits the budget (always true without one)."""
        return self.budget is None or self.total <= self.budget + 1e-9

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (with ``shared`` and ``languages`` for several languages)."""
        data: dict[str, Any] = {"total": self.total, "budget": self.budget,
                                "charges": [charge.to_dict() for charge in self.charges],
                                "extras": [charge.to_dict() for charge in self.extras],
                                "extras_total": self.extras_total}
        languages = self.by_language()
        if languages:
            data.update(shared=self.shared, languages=languages)
        return data

    def __str__(self) -> str:
        def line(c: Charge) -> str:
            who = c.agent if c.agent.endswith(c.model) else f"{c.agent} ({c.model})"
            who = who if c.language is None else f"{who} [{c.language}]"
            return f"  {who:<50} {c.quantity:>9.1f} {c.unit:<13} ${c.usd:>8.4f}"

        lines = []
        for scene, charges in self.by_scene().items():
            heading = "whole video" if scene is None else f"scene {scene + 1}"
            subtotal = math.fsum(c.usd for c in charges)
            lines.append(f"{heading:<84} ${subtotal:>8.4f}")
            lines.extend(line(c) for c in charges)
        languages = self.by_language()
        if languages:
            lines.append(f"{'shared by every language (script, pictures)':<84} "
                         f"${self.shared:>8.4f}")
            lines.extend(f"{'  ' + language + ' alone':<84} ${usd:>8.4f}"
                         for language, usd in languages.items())
        lines.append(f"{'total':<84} ${self.total:>8.4f}")
        if self.budget is not None:
            lines.append(f"{'budget':<84} ${self.budget:>8.4f}")
        if self.extras:
            lines.append(f"{'possible extras (not in the total)':<84} "
                         f"${self.extras_total:>8.4f}")
            merged: dict[tuple[str, str, str], Charge] = {}
            for c in self.extras:  # one line per agent, model and unit
                key = (c.agent, c.model, c.unit)
                seen = merged.get(key)
                merged[key] = c if seen is None else attrs.evolve(
                    seen, quantity=seen.quantity + c.quantity, usd=seen.usd + c.usd)
            lines.extend(line(attrs.evolve(c, scene=None)) for c in merged.values())
        return "\n".join(lines)


class Tab(list[Charge]):
    """The charges of one step, held against a `Ledger`: what `Ledger.step` yields.

    A list of the `Charge` objects recorded so far; hand it to `paid_call` (``tab=``)
    from a thread that does not inherit the step's context.
    """

    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        """The ledger the charges are held against."""


_tab: contextvars.ContextVar[Tab | None] = contextvars.ContextVar("avgen_tab", default=None)


class _OpenTabs:
    """How many steps are being metered in this process (a paid call with no tab in reach
    while one is open comes from a thread that lost the step's context)."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self._count > 0

    def change(self, delta: int) -> None:
        with self._lock:
            self._count += delta


_open_tabs = _OpenTabs()


def current_tab() -> Tab | None:
    """The `Tab` of the step being metered in this task or thread, if any.

    Call it in an agent's coroutine and pass the result to `paid_call` (``tab=``) from a
    thread of the agent's own pool, which does not inherit the step's context.
    """
    return _tab.get()


class Ledger:
    """The spending of one run, held against an optional budget (thread- and task-safe).

    Args:
        budget: The most the run may spend, in US dollars; ``None``: no limit.
        spent: Dollars already spent (a resumed run counts what it paid before).
        shared: The budget of the batch the run belongs to (internal: ``Shared``):
            every price is reserved against it too, so the workers of a batch never pass
            its last dollar together.

    Raises:
        UsageError: A bad budget.
    """

    def __init__(self, budget: float | None = None, *, spent: float = 0.0,
                 shared: Shared | None = None) -> None:
        self.budget = check_budget(budget)
        """The most the run may spend, in US dollars (``None``: no limit)."""
        self.shared = shared
        """The batch budget this ledger also reserves against, if any."""
        self._spent = float(spent)
        self._reserved = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Ledger(budget={self.budget}, spent={self.spent:.4f})"

    @property
    def spent(self) -> float:
        """Dollars charged so far."""
        return self._spent

    @property
    def reserved(self) -> float:
        """Dollars held by paid calls in flight."""
        return self._reserved

    @contextlib.contextmanager
    def step(self) -> Iterator[Tab]:
        """Meter the paid calls made inside the block (in this task and the threads and
        tasks it starts); yields the `Tab` their charges are recorded in."""
        tab = Tab(self)
        token = _tab.set(tab)
        _open_tabs.change(+1)
        try:
            yield tab
        finally:
            _open_tabs.change(-1)
            _tab.reset(token)

    def _reserve(self, usd: float, agent: str, what: str) -> None:
        with self._lock:
            committed = self._spent + self._reserved
            if self.budget is not None and committed + usd > self.budget + 1e-9:
                raise BudgetExceeded(what, agent, budget=self.budget, committed=committed,
                                     price=usd)
            if self.shared is not None:
                self.shared.reserve(usd, agent, what)
            self._reserved += usd

    def _settle(self, reserved: float, charge: Charge | None) -> None:
        with self._lock:
            self._reserved = max(0.0, self._reserved - reserved)
            if charge is not None:
                self._spent += charge.usd
            if self.shared is not None:
                self.shared.settle(reserved, 0.0 if charge is None else charge.usd)


class Bill:
    """The handle `paid_call` yields: adjust what is charged once the answer is in."""

    def __init__(self, charge: Charge) -> None:
        self.charge = charge
        """What will be charged when the block ends normally."""
        self.cancelled = False
        """True when `cancel` was called: nothing will be charged."""

    def settle(self, *, quantity: float | None = None, usd: float | None = None) -> None:
        """Replace the quantity and/or the price (e.g. tokens counted by the service)."""
        self.charge = attrs.evolve(
            self.charge,
            quantity=self.charge.quantity if quantity is None else float(quantity),
            usd=self.charge.usd if usd is None else float(usd))

    def cancel(self) -> None:
        """Charge nothing (the service did not bill: e.g. a cache answered)."""
        self.cancelled = True


@contextlib.contextmanager
def paid_call(*, agent: str, model: str, quantity: float, unit: str, usd: float,
              tab: Tab | None = None) -> Iterator[Bill]:
    """Around one paid request: reserve its price first, record the charge after.

    Args:
        agent: The agent paying.
        model: The model billed.
        quantity: The amount billed, in ``unit``.
        unit: ``video_second``, ``image``, ``input_token``, ``output_token`` or
            ``audio_second``.
        usd: The expected price in US dollars (reserved against the budget).
        tab: The step to charge; by default the one in reach (`current_tab`).

    Raises:
        BudgetExceeded: The price does not fit the run's budget; the block does not run.
        UsageError: No tab is in reach while a step is being metered in this process (the
            call comes from a thread that did not inherit the step's context); the block
            does not run.
    """
    bill = Bill(Charge(agent, model, float(quantity), unit, float(usd)))
    tab = tab if tab is not None else _tab.get()
    if tab is None:
        if _open_tabs:
            raise UsageError("tab", f"{agent}: a paid call ({model}) was made while a run is "
                             "metering its spending, but no ledger is in reach (a thread "
                             "of an agent's own pool does not inherit it): take "
                             "avgen.costs.current_tab() in the agent's coroutine and pass "
                             "paid_call(..., tab=tab), or use asyncio.to_thread")
        yield bill
        return
    tab.ledger._reserve(bill.charge.usd, agent, f"{model} ({quantity:g} {unit})")
    charged: Charge | None = None
    try:
        yield bill
        if not bill.cancelled:
            charged = bill.charge
            tab.append(charged)
    finally:
        tab.ledger._settle(usd, charged)
