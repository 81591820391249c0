"""Batches in this process and on a process pool, and ``avgen batch``: rows checked before
anything runs, input order kept, one failure never stopping the others, a re-run finishing
only what is not done, and the shared state (breakers, hold-offs) the items see."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen import RunEvent, Video, VideoGenerator, VideoRequest
from avgen._batch import BATCH_FILE
from avgen._generator import _BatchMaker
from avgen.errors import CircuitOpen, ServiceUnavailable, UsageError
from avgen.media._ffmpeg import probe
from avgen.resilience import CircuitBreaker, ResilienceEvent, _shared, collect
from avgen.resilience._shared import LocalCoordination, Shared, sharing
from avgen.testing import ToneNarrator

SCRIPTS = ["Bees dance. They tell the hive where flowers are.",
           "Rivers carry water to the sea.",
           "Tides follow the moon."]


def toned(tmp_path: Path, **narrator: object) -> tuple[VideoGenerator, ToneNarrator]:
    voice = ToneNarrator(**narrator)  # type: ignore[arg-type]
    return VideoGenerator("local", narrator=voice, output_dir=tmp_path / "out"), voice


def test_results_keep_the_input_order_and_a_failure_stops_no_other(tmp_path: Path) -> None:
    generator, voice = toned(tmp_path, fail_on={"Rivers carry water to the sea."})
    events: list[RunEvent] = []
    result = generator.generate_many_sync([VideoRequest(script=s) for s in SCRIPTS],
                                          on_event=events.append)
    assert [item.request.script for item in result] == SCRIPTS
    assert [item.status for item in result] == ["done", "failed", "done"]
    failed = result[1]
    assert failed.video is None and "fail_on" in (failed.error or "")
    assert failed.resume_command == f"avgen resume {failed.session}"
    for item in result.done:
        assert item.video is not None and probe(item.video).has_audio
        assert item.duration is not None and item.duration > 0 and item.tiers == ("card",)
    state = json.loads((result.directory / BATCH_FILE).read_text())
    assert [item["status"] for item in state["items"]] == ["done", "failed", "done"]
    assert state["totals"] == {"items": 3, "done": 2, "failed": 1, "cost": 0.0}
    finished = [e for e in events if e.kind == "batch.item" and e.data["status"] != "running"]
    assert sorted(e.data["item"] for e in finished) == [0, 1, 2]
    assert events[-1].kind == "batch.done" and events[-1].progress == 1.0
    assert {e.data["item"] for e in events if e.kind == "narration"} == {0, 2}

    # the same rows again: only the failed item runs, and it resumes its own session
    voice.fail_on = frozenset()
    spoken_before = voice.calls
    again = generator.generate_many_sync([VideoRequest(script=s) for s in SCRIPTS])
    assert again.directory == result.directory and again.ok
    assert voice.spoken[spoken_before:] == ["Rivers carry water to the sea."]
    assert again[1].session == failed.session
    assert [item.video for item in again][::2] == [item.video for item in result.done]


def test_a_bad_row_is_named_and_nothing_runs(tmp_path: Path) -> None:
    generator, voice = toned(tmp_path)
    rows = [{"script": "Fine."}, {"script": "Also fine.", "duration": "soon"}]
    with pytest.raises(UsageError, match=r"requests\[1\]: duration"):
        generator.generate_many_sync(rows)
    assert voice.calls == 0 and not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match=r"requests\[1\]: preset"):
        generator.generate_many_sync([VideoRequest(script="Hi.", preset="shorts"),
                                      {"script": "x", "preset": "no-such"}])
    with pytest.raises(UsageError, match="concurrency"):
        generator.generate_many_sync([{"script": "Hi."}], concurrency=0)
    with pytest.raises(UsageError, match="budget"):
        generator.generate_many_sync([{"script": "Hi."}], budget=-1)


def test_agent_objects_cannot_travel_to_other_processes(tmp_path: Path) -> None:
    generator, _ = toned(tmp_path)
    with concurrent.futures.ThreadPoolExecutor(1) as pool, \
            pytest.raises(UsageError, match="agent_options"):
        generator.generate_many_sync([{"script": "Hi."}], executor=pool)
    with pytest.raises(UsageError, match="executor"):
        generator.generate_many_sync([{"script": "Hi."}], executor="dask")


def test_a_process_pool_makes_the_batch_with_agents_built_in_each_process(
        tmp_path: Path) -> None:
    generator = VideoGenerator("local", output_dir=tmp_path / "out")
    events: list[RunEvent] = []
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        result = generator.generate_many_sync([{"script": s} for s in SCRIPTS[:2]],
                                              executor=pool, on_event=events.append)
    assert result.ok, [item.error for item in result]
    pids = set()
    for item in result:
        assert item.video is not None
        info = probe(item.video)
        assert info.has_video and info.has_audio
        manifest = json.loads((item.session / "metadata" / "manifest.json").read_text())
        pids.add(manifest["host"]["pid"])
        assert manifest["agents"]["narrator"].startswith("piper")
    assert os.getpid() not in pids  # made in the pool's processes
    assert {e.data["item"] for e in events if e.kind == "narration"} == {0, 1}


def test_a_breaker_opened_by_one_worker_is_open_for_every_worker() -> None:
    shared = LocalCoordination()
    first = CircuitBreaker("veo:model", minimum_calls=1, window_size=1, wait_open=30)
    second = CircuitBreaker("veo:model", minimum_calls=1, window_size=1, wait_open=30)

    def down() -> None:
        raise ServiceUnavailable("503", "veo")

    with sharing(Shared(shared, owner="item-0")), pytest.raises(ServiceUnavailable):
        first.call(down)
    assert shared.tripped_until("veo:model") > time.time() + 25
    with sharing(Shared(shared, owner="item-1")), pytest.raises(CircuitOpen) as refused:
        second.call(lambda: "never called")
    assert 25 < refused.value.remaining <= 30  # the time the first one still has to wait
    # without the batch's shared state a breaker is its own
    third = CircuitBreaker("veo:model", minimum_calls=1, window_size=1, wait_open=30)
    assert third.call(lambda: 7) == 7


def test_a_hold_off_after_a_429_makes_every_item_wait() -> None:
    shared = Shared(LocalCoordination(), owner="item-0")

    async def scenario() -> tuple[float, float]:
        until = time.time() + 0.3
        shared.coordination.hold_off("quota:tts", until)
        await shared.pace("quota:tts", None)
        return until, time.time()

    until, resumed = asyncio.run(scenario())
    assert resumed >= until


def test_pacing_never_starts_more_than_allowed_in_a_minute() -> None:
    shared = Shared(LocalCoordination(), owner="item-0")

    async def scenario() -> int:
        started = 0

        async def one() -> None:
            nonlocal started
            await shared.pace("quota:imagen", 3)
            started += 1

        tasks = [asyncio.ensure_future(one()) for _ in range(5)]
        for _ in range(3000):  # a guard against a hang, never a pace: each turn is 10 ms
            if started >= 3:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # the other two keep waiting: the window is 60 s
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return started

    assert asyncio.run(scenario()) == 3


def test_a_cancelled_waiter_never_keeps_a_slot() -> None:
    coordination = LocalCoordination()
    shared = Shared(coordination, owner="item-0")

    async def scenario() -> bool:
        async with shared.slot("veo", 1):
            waiter = asyncio.ensure_future(shared.slot("veo", 1).__aenter__())
            await asyncio.sleep(0.05)
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        await asyncio.sleep(0.05)
        return coordination.try_slot("veo", 1)

    assert asyncio.run(scenario())


def kinds(events: list[ResilienceEvent], kind: str) -> list[ResilienceEvent]:
    return [event for event in events if event.kind == kind]


def test_waiting_for_a_slot_is_reported_and_so_is_each_hold() -> None:
    """Two tasks, one slot: the second waits (a ``quota.wait`` that ends when its hold
    begins); both holds are reported with the limit. A slot taken at once is no wait."""
    class Counting(LocalCoordination):
        refused = 0

        def try_slot(self, name: str, limit: int) -> bool:
            taken = super().try_slot(name, limit)
            self.refused += not taken
            return taken

    coordination = Counting()
    shared = Shared(coordination, owner="item-0")

    holding = asyncio.Event()

    async def one(release: asyncio.Event | None) -> None:
        async with shared.slot("quota:veo", 1):
            if release is not None:
                holding.set()
                await release.wait()

    async def scenario() -> tuple[list[ResilienceEvent], list[ResilienceEvent]]:
        with collect() as alone:
            await one(None)
        release = asyncio.Event()
        with collect() as events:
            first = asyncio.ensure_future(one(release))
            await holding.wait()
            second = asyncio.ensure_future(one(None))
            for _ in range(3000):  # a guard against a hang: the second finds it taken
                if coordination.refused:
                    break
                await asyncio.sleep(0.01)
            assert not second.done()
            release.set()
            await asyncio.gather(first, second)
        return alone, events

    alone, events = asyncio.run(scenario())
    assert kinds(alone, "quota.wait") == [] and len(kinds(alone, "quota.held")) == 1
    (wait,) = kinds(events, "quota.wait")
    assert wait.data["name"] == "quota:veo" and wait.data["reason"] == "slot"
    assert wait.data["seconds"] > 0
    held = sorted(kinds(events, "quota.held"), key=lambda e: e.data["started"])
    assert [(e.data["name"], e.data["limit"]) for e in held] == [("quota:veo", 1)] * 2
    assert all(e.data["seconds"] >= 0 for e in held)
    # the waiter's hold began when its wait ended, not before the first hold did
    assert held[1].data["started"] == pytest.approx(wait.data["started"] + wait.data["seconds"])
    assert held[1].data["started"] >= held[0].data["started"]


def test_waiting_out_a_hold_off_and_the_requests_per_minute_is_reported(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_shared, "_WINDOW", 0.2)  # a "minute" of 0.2 s
    shared = Shared(LocalCoordination(), owner="item-0")

    async def scenario() -> tuple[list[ResilienceEvent], list[ResilienceEvent]]:
        with collect() as free:
            await shared.pace("quota:tts", 1)
        with collect() as paced:
            shared.hold_off("quota:tts", 0.05)
            await shared.pace("quota:tts", 1)  # the hold-off, then the one start a window
        return free, paced

    free, paced = asyncio.run(scenario())
    assert free == []
    reasons = [(e.data["reason"], e.data["name"]) for e in kinds(paced, "quota.wait")]
    assert reasons == [("hold-off", "quota:tts"), ("rate", "quota:tts")]
    assert all(e.data["seconds"] > 0 for e in paced)
    hold_off, rate = kinds(paced, "quota.wait")
    assert rate.data["started"] == pytest.approx(hold_off.data["started"]
                                                 + hold_off.data["seconds"])


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "avgen", "batch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.slow
def test_the_command_makes_a_batch_from_a_csv_and_a_rerun_does_nothing(tmp_path: Path
                                                                        ) -> None:
    rows = tmp_path / "topics.csv"
    rows.write_text("script,preset,captions\n" + "".join(
        f'"{script}",draft,{"yes" if n else "no"}\n' for n, script in enumerate(SCRIPTS[:2])))
    made = cli(str(rows), "--out", "out", "--processes", "2", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "2 done, 0 not done" in made.stdout
    videos = sorted((tmp_path / "out").glob("batch_*/items/*/final_output/*.mp4"))
    assert len(videos) == 2 and all(probe(v).has_audio for v in videos)
    stamps = [v.stat().st_mtime_ns for v in videos]
    again = cli(str(rows), "--out", "out", "-q", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    assert [v.stat().st_mtime_ns for v in videos] == stamps


def test_the_command_names_a_bad_line_and_makes_nothing(tmp_path: Path) -> None:
    rows = tmp_path / "topics.csv"
    rows.write_text('script,duration\n"Fine.",30\n"Not fine.",soon\n')
    made = cli(str(rows), "--out", "out", cwd=tmp_path)
    assert made.returncode == 2
    assert "topics.csv line 3: duration" in made.stderr
    assert not (tmp_path / "out").exists()
    rows.write_text('script\n"Fine."\n')
    wrong = cli(str(rows), "--cache", "gs://bucket", "--agents", "local", cwd=tmp_path)
    assert wrong.returncode == 2 and "cache: is a google option" in wrong.stderr


def test_batch_json_is_untrusted(tmp_path: Path) -> None:
    generator, voice = toned(tmp_path)
    rows = [VideoRequest(script=s) for s in SCRIPTS[:2]]
    result = generator.generate_many_sync(rows)
    state_file = result.directory / BATCH_FILE
    state = json.loads(state_file.read_text())
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"not the item's video")
    state["items"][0]["video"] = "../../../elsewhere.mp4"  # recorded as done, elsewhere
    state_file.write_text(json.dumps(state))
    calls = voice.calls
    again = generator.generate_many_sync(rows)
    assert again[0].video is not None and again[0].video.is_relative_to(again[0].session)
    assert again[0].video != outside.resolve()
    assert voice.calls == calls  # remade from its own session's steps, nothing spoken again
    state_file.write_text("{not json")
    with pytest.raises(UsageError, match=r"batch\.json cannot be read"):
        generator.generate_many_sync(rows)


def test_a_generator_that_cannot_travel_is_refused_before_anything_runs(tmp_path: Path
                                                                        ) -> None:
    from avgen import AgentPolicy
    from avgen.resilience import RetryPolicy

    policy = AgentPolicy(retry=RetryPolicy(attempts=2, hooks=(lambda event: None,)))
    generator = VideoGenerator("local", output_dir=tmp_path / "out",
                               policies={"narrator": policy})
    with concurrent.futures.ThreadPoolExecutor(1) as pool, \
            pytest.raises(UsageError, match="cannot be sent to other processes"):
        generator.generate_many_sync([{"script": "Hi."}], executor=pool)
    assert not (tmp_path / "out").exists()


def test_a_batch_is_driven_by_one_process_at_a_time(tmp_path: Path) -> None:
    import fcntl

    generator, _ = toned(tmp_path)
    rows = [VideoRequest(script=SCRIPTS[0])]
    first = generator.generate_many_sync(rows)
    lock = os.open(first.directory / ".driver.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another driver, still running
        with pytest.raises(UsageError, match="being run by another process"):
            generator.generate_many_sync(rows)
    finally:
        os.close(lock)
    assert generator.generate_many_sync(rows).ok  # free again once it let go


def test_facts_batch_json_records_are_checked(tmp_path: Path) -> None:
    generator, voice = toned(tmp_path)
    rows = [VideoRequest(script=SCRIPTS[0])]
    first = generator.generate_many_sync(rows)
    state_file = first.directory / BATCH_FILE
    state = json.loads(state_file.read_text())
    state["items"][0].update(cost="lots", duration=-1, tiers="clip")
    state_file.write_text(json.dumps(state))
    calls = voice.calls
    again = generator.generate_many_sync(rows)  # not trusted: the session is resumed instead
    assert again.ok and again[0].cost == 0 and again[0].tiers == ("card",)
    assert again[0].duration is not None and again[0].duration > 0
    assert voice.calls == calls


def test_the_batch_command_bar_reads_events_as_every_progress_display_does() -> None:
    """``avgen batch``'s bar asks `RunProgress` what an event means, like the command line's
    and the notebook's bars: the same item lines above it, the batch's fraction on it."""
    import io

    from avgen._batch_cli import _BatchBar
    from avgen._progress import RunProgress

    def counts(done: int, status: str | None = None, item: int | None = None) -> dict[str, Any]:
        return {"item": item, "done": done, "failed": 0, "running": 2 - done, "total": 2,
                **({"status": status} if status else {})}

    events = [RunEvent("batch.start", "batch b: 2 items, 2 to make", 0.0, None, counts(0)),
              RunEvent("script", "item 0: script: 1 scene", 0.0, None, counts(0, item=0)),
              RunEvent("retry", "item 0: image 1/3 again", 0.0, None, counts(0, item=0)),
              RunEvent("fallback", "item 1: a card instead", 0.0, None, counts(0, item=1)),
              RunEvent("note", "item 1: font swapped", 0.0, None, counts(0, item=1)),
              RunEvent("batch.item", "item 0: v.mp4", 0.5, None, counts(1, "done", 0)),
              RunEvent("batch.done", "batch b: 2 done", 1.0, None, counts(2))]
    core = RunProgress()
    expected = [step.line for step in map(core.follow, events[1:5]) if step.line is not None]
    assert expected == ["retry: item 0: image 1/3 again", "fallback: item 1: a card instead",
                        "note: item 1: font swapped"]
    out = io.StringIO()
    bar = _BatchBar(out, quiet=False)
    for event in events:
        bar(event)
    lines = out.getvalue().splitlines()
    assert lines[1:4] == expected
    assert lines[0].startswith("[  0%] batch b: 2 items") and lines[-1].startswith("[100%] batch b")


def test_a_waiter_takes_a_freed_slot_at_once_not_at_its_next_poll(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """In this process a slot given back wakes its waiters: with waits between polls of
    an hour, the waiter still gets the slot as soon as the holder lets go — and stops
    watching once it has it (or is cancelled)."""
    import avgen.resilience._shared as shared_module

    monkeypatch.setattr(shared_module, "_FIRST_WAIT", 3600.0)
    coordination = LocalCoordination()
    shared = Shared(coordination, owner="item-0")
    order: list[str] = []

    async def scenario() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with shared.slot("quota:veo", 1):
                order.append("held")
                await release.wait()
            order.append("freed")

        async def waiter() -> None:
            async with shared.slot("quota:veo", 1):
                order.append("taken")

        first = asyncio.ensure_future(holder())
        await asyncio.sleep(0)
        second = asyncio.ensure_future(waiter())
        for _ in range(3000):  # a guard against a hang: until the waiter watches
            if coordination._watchers:
                break
            await asyncio.sleep(0.01)
        assert not second.done()
        release.set()
        await asyncio.wait_for(asyncio.gather(first, second), 600)  # a guard, not a timing
        cancelled = asyncio.ensure_future(waiter())
        async with shared.slot("quota:veo", 1):
            for _ in range(3000):
                if coordination._watchers:
                    break
                await asyncio.sleep(0.01)
            cancelled.cancel()
            await asyncio.gather(cancelled, return_exceptions=True)

    asyncio.run(scenario())
    assert order == ["held", "freed", "taken"]
    assert coordination._watchers == {}
    assert coordination.try_slot("quota:veo", 1)


def test_items_in_this_process_start_in_turn_each_after_the_first_call_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Items sharing this process's event loop set up one at a time: item k starts once
    item k-1 has made its first agent call, so the first items' requests are out before
    the later items' set-up runs between their steps."""
    from avgen.agents.local import LocalScriptWriter

    log: list[tuple[str, int]] = []

    class Recording:
        """The local script writer, noting which item calls it first."""

        def __init__(self) -> None:
            self.inner = LocalScriptWriter()

        async def write(self, request: VideoRequest) -> Any:
            log.append(("call", SCRIPTS.index(request.script or "")))
            await asyncio.sleep(0.05)  # a remote answer's wait: the next item starts now
            return await self.inner.write(request)

    def seen(event: RunEvent) -> None:
        if event.kind == "batch.item" and event.data.get("status") == "running":
            log.append(("start", event.data["item"]))

    # however slow the machine, an item waits for the one before it (not for a second)
    monkeypatch.setattr("avgen._batch._OPENING_WAIT", 600.0)
    generator = VideoGenerator("local", script_writer=Recording(), narrator=ToneNarrator(),
                               output_dir=tmp_path / "out")
    result = generator.generate_many_sync([VideoRequest(script=s) for s in SCRIPTS],
                                          concurrency=3, on_event=seen)
    assert result.ok
    assert log == [("start", 0), ("call", 0), ("start", 1), ("call", 1), ("start", 2),
                   ("call", 2)]


@settings(deadline=None, max_examples=60)
@given(scripts=st.lists(st.text(st.characters(blacklist_characters="\0",
                                             blacklist_categories=("Cs",)),
                                min_size=1, max_size=40).filter(str.strip), max_size=4),
       preset=st.sampled_from(["draft", "shorts", "youtube"]),
       options=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8),
                               max_size=3))
def test_a_batch_id_is_the_digest_of_its_rows_and_agents_as_one_json_value(
        scripts: list[str], preset: str, options: dict[str, Any]) -> None:
    """The id is digested row by row, each row's JSON made once; it stays the digest of
    the whole value as `json_sha256` writes it, so a batch made before finds its folder."""
    from avgen._batch import AgentSpec, batch_id
    from avgen._hashing import json_sha256

    rows = [VideoRequest(script=script, preset=preset) for script in scripts]
    agents = AgentSpec("local", options)
    whole = json_sha256({"requests": [row.to_dict() for row in rows],
                         "agents": agents.public()})
    assert batch_id(rows, agents) == whole[:12]


class _InstantMaker(_BatchMaker):
    """The offline generator's checks; each video made at once (a few bytes in its
    session), noting the most tasks alive on the loop while items run."""

    most_tasks = 0

    async def make(self, root: Path, request: VideoRequest, on_event: Any) -> Video:
        type(self).most_tasks = max(type(self).most_tasks, len(asyncio.all_tasks()))
        out = root / "final_output"
        out.mkdir(parents=True, exist_ok=True)
        (out / "video.mp4").write_bytes(b"instant")
        return Video(out / "video.mp4", 1.0, 16, 16, root, tiers=("card",))


def test_a_batch_holds_tasks_for_the_items_running_not_for_every_row(tmp_path: Path
                                                                     ) -> None:
    """The driver makes an item's task when the item may start: however many rows, the
    loop holds about ``concurrency`` of them (a task per row held memory for every row)."""
    from avgen._batch import run_batch

    maker = _InstantMaker(VideoGenerator("local", output_dir=tmp_path / "out"))
    rows = [{"script": f"Row {n} is short.", "preset": "draft"} for n in range(80)]
    result = asyncio.run(run_batch(maker, rows, concurrency=3))
    assert result.ok and len(result) == 80
    assert 3 <= maker.most_tasks <= 8  # three items, the driver, its relay


def test_a_finished_batch_resumed_as_it_was_leaves_its_state_file_alone(tmp_path: Path
                                                                        ) -> None:
    generator, voice = toned(tmp_path)
    rows = [VideoRequest(script=s) for s in SCRIPTS[:2]]
    first = generator.generate_many_sync(rows)
    state = first.directory / BATCH_FILE

    def written() -> tuple[int, int]:
        facts = state.stat()
        return facts.st_ino, facts.st_mtime_ns

    before = written()
    again = generator.generate_many_sync(rows)
    assert again.ok and written() == before and voice.calls == 2
    assert repr(again).count("<2 items: 2 done>") == 1  # its items counted, not printed
    generator.generate_many_sync(rows, budget=5.0)  # a budget to record: written again
    assert written() != before
    assert json.loads(state.read_text())["budget"] == 5.0
    before = written()
    assert first[0].video is not None
    first[0].video.unlink()  # gone: the item is made again from its session
    third = generator.generate_many_sync(rows, budget=5.0)
    assert third.ok and third[0].video is not None and third[0].video.is_file()
    assert written() != before and voice.calls == 2


@pytest.mark.parametrize("tamper", ["absolute", "dot-dot", "link-out", "linked-session",
                                    "other-item", "folder"])
def test_a_recorded_video_is_believed_only_in_its_own_session_through_no_link(
        tmp_path: Path, tamper: str) -> None:
    """``batch.json`` is untrusted: the video an item records must be a regular file in
    its own session, reached through no link; otherwise the item resumes its session."""
    generator, voice = toned(tmp_path)
    rows = [VideoRequest(script=s) for s in SCRIPTS[:2]]
    result = generator.generate_many_sync(rows)
    state_file = result.directory / BATCH_FILE
    state = json.loads(state_file.read_text())
    session, other = result[0].session, result[1].session
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "video.mp4").write_bytes(b"not the item's video")
    recorded = state["items"][0]["video"]
    if tamper == "absolute":
        state["items"][0]["video"] = str(result.directory / recorded)
    elif tamper == "dot-dot":
        state["items"][0]["video"] = f"{recorded}/../../../../../elsewhere/video.mp4"
    elif tamper == "link-out":
        (session / "final_output" / "out.mp4").symlink_to(outside / "video.mp4")
        state["items"][0]["video"] = f"items/{session.name}/final_output/out.mp4"
    elif tamper == "linked-session":
        (session / "elsewhere").symlink_to(outside)
        state["items"][0]["video"] = f"items/{session.name}/elsewhere/video.mp4"
    elif tamper == "other-item":
        state["items"][0]["video"] = state["items"][1]["video"]
    else:
        state["items"][0]["video"] = f"items/{session.name}/final_output"
    state_file.write_text(json.dumps(state))
    again = generator.generate_many_sync(rows)
    video = again[0].video
    assert again.ok and video is not None and video.is_file() and not video.is_symlink()
    assert video.resolve().is_relative_to(session.resolve())
    assert not video.resolve().is_relative_to(outside) and other not in video.parents
    assert voice.calls == 2  # remade from its own session's steps, nothing spoken again


def test_items_started_in_one_worker_process_set_up_in_turn(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A Dask worker runs an item per thread: the next one's set-up waits for the one
    before it to make its first agent call, or to end (here with an error) without one."""
    from avgen import _batch
    from avgen._policy import call_agent, first_call

    monkeypatch.setattr(_batch, "_OPENING_WAIT", 60.0)  # the order alone decides
    monkeypatch.setattr(_batch._Turns, "latest", None)
    order: list[str] = []
    names = "ABCD"
    started = {name: threading.Event() for name in names}

    def item(name: str) -> None:
        with contextlib.suppress(RuntimeError), _batch._set_up_in_turn() as opened, \
                first_call(opened):
            order.append(f"{name} sets up")
            following = names[names.index(name) + 1:][:1]
            if following:  # the next item has started: were it not to wait, it would
                started[following].wait(30)  # set up during this pause
                time.sleep(0.2)
            if name == "C":
                order.append("C gives up")
                raise RuntimeError("its agents could not be built")
            order.append(f"{name} asks an agent")
            asyncio.run(call_agent(lambda: None))

    threads = []
    for name in names:
        threads.append(threading.Thread(target=item, args=(name,)))
        started[name].set()
        threads[-1].start()
        while f"{name} sets up" not in order and threads[-1].is_alive():
            time.sleep(0.01)  # each starts while the one before sets up
    for thread in threads:
        thread.join(60)
    assert order == ["A sets up", "A asks an agent", "B sets up", "B asks an agent",
                     "C sets up", "C gives up", "D sets up", "D asks an agent"]
