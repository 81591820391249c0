"""Costs and budgets: `paid_call`, `Ledger`, `VideoGenerator(budget=...)` and `estimate`."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen import VideoGenerator, VideoRequest
from avgen._models import AudioAsset, ClipAsset, Preset, Scene
from avgen._validate import check_budget
from avgen.costs import Charge, CostEstimate, Ledger, Tab, current_tab, paid_call
from avgen.errors import BudgetExceeded, GenerationError, UsageError
from avgen.testing import PatternClips, PatternImages, ToneNarrator


class PaidNarrator:
    """A narrator that pays per second of speech, as a plugin would."""

    name = "paid-voice"

    def __init__(self, usd_per_call: float) -> None:
        self.usd = usd_per_call
        self.inner = ToneNarrator()
        self.calls = 0

    def estimate(self, request: VideoRequest) -> list[Charge]:
        return [Charge(self.name, "voice-1", 2, "audio_second", 2 * self.usd)]

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        with paid_call(agent=self.name, model="voice-1", quantity=1, unit="audio_second",
                       usd=self.usd):
            self.calls += 1
            return await self.inner.speak(text, target, voice=voice)


def test_a_charge_is_recorded_only_when_the_call_succeeds() -> None:
    ledger = Ledger(budget=1.0)
    with ledger.step() as charges:
        with paid_call(agent="a", model="m", quantity=2, unit="image", usd=0.25) as bill:
            bill.settle(quantity=1, usd=0.125)
        with pytest.raises(RuntimeError), paid_call(agent="a", model="m", quantity=1,
                                                    unit="image", usd=0.5):
            raise RuntimeError("the service failed")
        with paid_call(agent="a", model="m", quantity=1, unit="image", usd=0.5) as bill:
            bill.cancel()
    assert list(charges) == [Charge("a", "m", 1, "image", 0.125)]
    assert ledger.spent == 0.125 and ledger.reserved == 0


def test_the_budget_refuses_before_the_block_runs() -> None:
    ledger = Ledger(budget=0.30, spent=0.20)
    ran = []
    with ledger.step(), pytest.raises(BudgetExceeded) as stopped, \
            paid_call(agent="veo", model="veo-x", quantity=8, unit="video_second", usd=0.16):
        ran.append(True)
    assert ran == []
    assert (stopped.value.budget, stopped.value.committed, stopped.value.price) == (
        0.30, 0.20, 0.16)
    assert "over its budget of $0.30" in str(stopped.value) and stopped.value.agent == "veo"


def test_outside_a_step_paid_calls_only_measure() -> None:
    with paid_call(agent="a", model="m", quantity=1, unit="image", usd=1e9) as bill:
        pass
    assert bill.charge.usd == 1e9


@settings(max_examples=40, deadline=None)
@given(st.floats(0, 5, exclude_min=True), st.lists(st.floats(0.01, 1.0), min_size=1,
                                                  max_size=30))
def test_concurrent_calls_never_spend_more_than_the_budget(budget: float,
                                                           prices: list[float]) -> None:
    ledger = Ledger(budget=budget)
    refused = []
    barrier = threading.Barrier(len(prices))

    def call(price: float) -> None:
        with ledger.step():
            barrier.wait()
            try:
                with paid_call(agent="a", model="m", quantity=1, unit="image", usd=price):
                    pass
            except BudgetExceeded:
                refused.append(price)

    threads = [threading.Thread(target=call, args=(p,)) for p in prices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.spent <= budget + 1e-9
    assert ledger.spent == pytest.approx(sum(prices) - sum(refused))
    assert ledger.reserved == pytest.approx(0)
    if refused:  # each refused call really did not fit when it asked
        assert ledger.spent + min(refused) > budget - 1e-9


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "5", True])
def test_bad_budgets_name_the_field(bad: object) -> None:
    with pytest.raises(UsageError, match="budget"):
        check_budget(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="budget"):
        VideoGenerator(budget=bad)  # type: ignore[arg-type]


def test_estimate_sums_the_agents_and_costs_nothing(tmp_path: Path) -> None:
    narrator = PaidNarrator(0.05)
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path, budget=0.05)
    estimate = generator.estimate(script="One. Two.", preset="draft")
    assert isinstance(estimate, CostEstimate)
    assert estimate.total == pytest.approx(0.10) and not estimate.within_budget
    assert "paid-voice" in str(estimate) and "total" in str(estimate)
    assert narrator.calls == 0 and not any(tmp_path.iterdir())
    assert VideoGenerator(output_dir=tmp_path).estimate(script="Hi.").total == 0
    with pytest.raises(UsageError, match="script"):
        generator.estimate(script="   ")


def test_a_run_stopped_by_its_budget_resumes_with_a_larger_one(tmp_path: Path) -> None:
    script = "\n\n".join(f"Part {n} of the talk." for n in range(4))
    narrator = PaidNarrator(0.10)
    stopped = VideoGenerator(narrator=narrator, image_generator=PatternImages(),
                             output_dir=tmp_path, budget=0.25)
    with pytest.raises(GenerationError, match="budget") as failed:
        stopped.generate_sync(script=script, preset="draft")
    session = failed.value.session
    assert session is not None and narrator.calls == 2  # the third would go over
    data = json.loads((session / "metadata" / "manifest.json").read_text())
    assert data["status"] == "failed" and data["cost"] == {"spent": 0.2, "budget": 0.25}
    spoken = [s for s in data["steps"].values() if s["id"].endswith("narration")]
    assert sorted(s["cost"] for s in spoken if s["status"] == "done") == [0.1, 0.1]
    refused = [s for s in spoken if s["status"] == "failed"]
    assert refused and all("budget" in s["error"] and s["cost"] == 0 for s in refused)
    assert all(s["data"]["charges"][0]["agent"] == "paid-voice" for s in spoken
               if s["status"] == "done")

    # the resumed run counts the 0.20 already spent: 0.35 allows one more call only
    tight = VideoGenerator(narrator=narrator, image_generator=PatternImages(),
                           output_dir=tmp_path, budget=0.35)
    with pytest.raises(GenerationError, match="budget"):
        tight.resume_sync(session)
    assert narrator.calls == 3
    video = VideoGenerator(narrator=narrator, image_generator=PatternImages(),
                           output_dir=tmp_path, budget=1.0).resume_sync(session)
    assert narrator.calls == 4 and video.path.exists()
    final = json.loads((session / "metadata" / "manifest.json").read_text())
    assert final["cost"]["spent"] == pytest.approx(0.4)


def test_ledger_steps_are_separate_per_task() -> None:
    ledger = Ledger()

    async def one(price: float) -> list[Charge]:
        with ledger.step() as charges:
            await asyncio.sleep(0.01)
            with paid_call(agent="a", model="m", quantity=1, unit="image", usd=price):
                await asyncio.sleep(0.01)
        return list(charges)

    async def both() -> list[list[Charge]]:
        return list(await asyncio.gather(one(0.1), one(0.2)))

    first, second = asyncio.run(both())
    assert [c.usd for c in first] == [0.1] and [c.usd for c in second] == [0.2]
    assert ledger.spent == pytest.approx(0.3)


class PoolPaidClips:
    """A clip generator that pays from a thread of its own pool (which does not inherit the
    run's context), optionally handing the step's tab over explicitly."""

    name = "pool-clips"

    def __init__(self, usd: float, *, hand_over: bool) -> None:
        self.usd, self.hand_over = usd, hand_over
        self.pool = concurrent.futures.ThreadPoolExecutor(1)
        self.requests = 0
        self.inner = PatternClips()

    def _pay(self, tab: Tab | None) -> None:
        with paid_call(agent=self.name, model="clip-1", quantity=1, unit="video_second",
                       usd=self.usd, tab=tab):
            self.requests += 1  # the request would be sent here

    async def generate(self, scene: Scene, seconds: float, preset: Preset,
                       target: Path) -> ClipAsset:
        tab = current_tab() if self.hand_over else None
        await asyncio.get_running_loop().run_in_executor(self.pool, self._pay, tab)
        return await self.inner.generate(scene, seconds, preset, target)


def test_a_call_paid_from_an_agents_own_thread_is_refused_without_a_tab(
        tmp_path: Path) -> None:
    clips = PoolPaidClips(5.0, hand_over=False)
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=clips,
                               output_dir=tmp_path, budget=1.0)
    video = generator.generate_sync(script="One scene only.")
    assert clips.requests == 0  # refused before anything was sent
    step = json.loads((video.session / "metadata/manifest.json").read_text())[
        "steps"]["scene-000.visual"]
    assert step["tier"] == "card" and "no ledger is in reach" in step["error"]
    assert video.tiers == ("card",)


def test_a_tab_handed_to_an_agents_own_thread_holds_the_budget(tmp_path: Path) -> None:
    clips = PoolPaidClips(5.0, hand_over=True)
    generator = VideoGenerator(narrator=ToneNarrator(), clip_generator=clips,
                               output_dir=tmp_path, budget=1.0)
    video = generator.generate_sync(script="One scene only.")
    assert clips.requests == 0 and video.tiers == ("card",)  # $5 does not fit $1
    data = json.loads((video.session / "metadata/manifest.json").read_text())
    assert "budget" in data["steps"]["scene-000.visual"]["error"]
    assert data["cost"]["spent"] == 0

    cheap = PoolPaidClips(0.25, hand_over=True)
    paid = VideoGenerator(narrator=ToneNarrator(), clip_generator=cheap, output_dir=tmp_path,
                          budget=1.0).generate_sync(script="One scene only.")
    data = json.loads((paid.session / "metadata/manifest.json").read_text())
    assert cheap.requests == 1 and paid.tiers == ("clip",)
    assert data["cost"]["spent"] == 0.25
    assert data["steps"]["scene-000.visual"]["data"]["charges"][0]["agent"] == "pool-clips"


def test_outside_any_run_a_thread_may_pay_without_a_tab() -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        def pay() -> float:
            with paid_call(agent="a", model="m", quantity=1, unit="image", usd=9.0) as bill:
                return bill.charge.usd
        assert pool.submit(pay).result() == 9.0
