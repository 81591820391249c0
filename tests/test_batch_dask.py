"""Batches on a real Dask ``LocalCluster`` (two worker processes): the google agents through
the real SDK against one fake API server for every worker, real ffmpeg, decoded videos.

What the workers share is shown by the server's request log: duplicate rows pay once,
operations in flight never pass the quota, the budget is never passed, a worker killed with
``kill -9`` costs no repeated request, and re-running a finished batch sends nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import distributed
import pytest
from fake_gemini import FakeGemini
from object_store import S3

from avgen import BatchResult, VideoGenerator, VideoRequest
from avgen._dask import DaskCoordination, worker_settings
from avgen._scratch import is_debris
from avgen.media._ffmpeg import probe
from avgen.resilience._shared import LocalCoordination, Shared

KEY = "AIzaSyFAKE-batch-key-0000000000000000"
PAID = ("script", "speech", "image", "veo")


@pytest.fixture
def worker_temp(tmp_path_factory: pytest.TempPathFactory,
                monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder of the workers the test starts (theirs alone)."""
    folder = tmp_path_factory.mktemp("worker-temp")
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


@pytest.fixture
def client(worker_temp: Path) -> Iterator[Any]:
    """Two worker processes with one thread each; a dead worker's leases expire in 2 s."""
    with dask.config.set({"distributed.scheduler.locks.lease-timeout": "2s",
                          "distributed.scheduler.locks.lease-validation-interval": "0.5s",
                          "distributed.scheduler.allowed-failures": 5,
                          **worker_settings()}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


def google(fake: FakeGemini, cache: Path, **options: Any) -> VideoGenerator:
    """A generator the workers can rebuild: the google family by name, plain options. The
    cache is a ``file://`` URL: shared storage with no lock of its own, so single flight
    across the workers is the batch's doing."""
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": KEY,
           "GOOGLE_VERTEX_BASE_URL": fake.base_url}
    return VideoGenerator("google", output_dir=cache.parent / "out", agent_options={
        "env": env, "cache": cache.as_uri(), "poll_interval": 0.05, **options})


def one_scene(topic: str) -> VideoRequest:
    return VideoRequest(script=f"{topic} are worth a look. Here is why.", preset="draft")


def scripted(prompt: str) -> dict[str, Any]:
    """The fake's script answer: one scene about the request's topic (its first word)."""
    topic = prompt.partition("NARRATION:\n")[2].split()[0]
    return {"title": topic, "scenes": [{
        "title": topic, "narration": f"{topic} are worth a look. Here is why.",
        "visual": f"{topic} in close-up, natural light", "seconds": 6}]}


def server(**options: Any) -> FakeGemini:
    fake = FakeGemini(**options)
    fake.script = scripted
    return fake


def paid(fake: FakeGemini) -> Counter[tuple[str, str | None]]:
    """Each paid request the server got, by kind and prompt."""
    return Counter((r.kind, r.prompt) for r in fake.requests if r.kind in PAID)


def decoded(result: BatchResult) -> None:
    for item in result:
        assert item.status == "done", item.error
        assert item.video is not None and item.video.is_file()
        info = probe(item.video)
        assert info.has_video and info.has_audio and info.duration > 1


@pytest.mark.slow
def test_duplicate_rows_pay_once_and_operations_stay_within_the_quota(
        client: Any, tmp_path: Path) -> None:
    distinct = [one_scene(topic) for topic in ("Bees", "Rivers", "Tides")]
    rows = [distinct[0], distinct[1], distinct[0], distinct[2], distinct[1], distinct[0]]
    with server(polls_until_done=2, operation_seconds=0.5) as alone:
        google(alone, tmp_path / "alone-cache").generate_many_sync(distinct)
        wanted = paid(alone)
    assert all(count == 1 for count in wanted.values())
    with server(polls_until_done=2, operation_seconds=0.5) as fake:
        result = google(fake, tmp_path / "cache", max_clip_operations=1).generate_many_sync(
            rows, executor=client)
        decoded(result)
        assert paid(fake) == wanted  # duplicates made no request of their own
        assert fake.peak_operations() == 1  # two workers, one operation at a time
        assert [item.request for item in result] == rows  # the input order
        fake.reset()
        again = google(fake, tmp_path / "cache", max_clip_operations=1).generate_many_sync(
            rows, executor=client)
        assert fake.requests == []  # a finished batch is finished
        assert again.directory == result.directory
        assert [item.video for item in again] == [item.video for item in result]


def test_without_the_shared_quota_two_workers_would_overlap(client: Any, tmp_path: Path
                                                             ) -> None:
    """The control for the quota test: the same batch with two operations allowed does
    overlap at the server, so ``peak_operations() == 1`` above is the quota's doing."""
    rows = [one_scene(topic) for topic in ("Owls", "Moss")]
    with server(polls_until_done=2, operation_seconds=2.0) as fake:
        result = google(fake, tmp_path / "cache", max_clip_operations=2).generate_many_sync(
            rows, executor=client)
        decoded(result)
        assert fake.peak_operations() == 2


def test_the_batch_budget_holds_across_workers(client: Any, tmp_path: Path) -> None:
    rows = [one_scene(topic) for topic in ("Foxes", "Ferns", "Frogs", "Finches")]
    with server(polls_until_done=1) as priced:
        one = google(priced, tmp_path / "priced-cache").generate_many_sync(rows[:1])
    per_video = one.cost
    assert per_video > 0
    budget = per_video * 2.5  # room for two videos and part of a third
    with server(polls_until_done=1) as fake:
        result = google(fake, tmp_path / "cache").generate_many_sync(
            rows, executor=client, budget=budget)
    assert result.cost <= budget + 1e-9
    charged = 0.0
    for item in result:
        manifest = json.loads((item.session / "metadata" / "manifest.json").read_text())
        charged += sum(step["cost"] for step in manifest["steps"].values())
    assert charged == pytest.approx(result.cost)
    assert charged <= budget + 1e-9
    stopped = [item for item in result if item.status != "done" or "card" in item.tiers
               or "image" in item.tiers]
    assert stopped, "a budget for 2.5 videos cannot make four full ones"
    state = json.loads((result.directory / "batch.json").read_text())
    assert state["budget"] == budget and state["totals"]["cost"] == pytest.approx(result.cost)


@pytest.mark.slow
def test_a_worker_killed_mid_batch_costs_no_repeated_request(client: Any, tmp_path: Path,
                                                            worker_temp: Path) -> None:
    rows = [one_scene(topic) for topic in ("Whales", "Wolves", "Wasps", "Willows")]
    with server(polls_until_done=3, operation_seconds=3.0) as fake:
        generator = google(fake, tmp_path / "cache", max_clip_operations=1)
        killed: list[int] = []

        def kill_one_while_it_waits_on_veo() -> None:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and not killed:
                polls = fake.calls("poll")
                if polls:
                    prompt = polls[0].prompt or ""
                    for manifest in (tmp_path / "out").glob(
                            "batch_*/items/*/metadata/manifest.json"):
                        data = json.loads(manifest.read_text())
                        script = (data.get("request") or {}).get("script") or ""
                        pid = (data.get("host") or {}).get("pid")
                        if script.split()[0] in prompt and pid:
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
                            return
                time.sleep(0.05)

        killer = threading.Thread(target=kill_one_while_it_waits_on_veo)
        killer.start()
        result = generator.generate_many_sync(rows, executor=client)
        killer.join()
        assert killed, "no worker was caught waiting on Veo"
        decoded(result)
        assert all(count == 1 for count in paid(fake).values()), paid(fake)
        assert len(paid(fake)) == 3 * len(rows)  # script, speech and clip of each, once
        hosts = {json.loads((item.session / "metadata" / "manifest.json").read_text())
                 ["host"]["pid"] for item in result}
        assert killed[0] not in hosts or len(hosts) > 1  # the killed item ran again
    # what the killed run was writing was in its session, swept when the item ran again;
    # nothing was left in the system's temporary folder, where no sweep looks
    assert [path for path in (tmp_path / "out").rglob("*") if is_debris(path.name)] == []
    assert [path.name for path in worker_temp.iterdir() if "avgen" in path.name] == []


@pytest.mark.parametrize("backend", ["local", "dask"])
def test_the_shared_state_means_the_same_on_every_backend(backend: str, client: Any) -> None:
    shared = LocalCoordination() if backend == "local" else DaskCoordination("avgen-test")
    if isinstance(shared, DaskCoordination):
        shared.setup()
    assert shared.try_slot("veo", 2) and shared.try_slot("veo", 2)
    assert not shared.try_slot("veo", 2)
    shared.free_slot("veo")
    assert shared.try_slot("veo", 2)
    shared.open_budget(1.0, 0.25)
    assert shared.reserve("a", 0.5)[0]
    granted, committed, budget = shared.reserve("b", 0.5)
    assert (granted, committed, budget) == (False, pytest.approx(0.75), 1.0)
    shared.settle("a", 0.5, 0.4)
    assert shared.spending() == (pytest.approx(0.65), pytest.approx(0.0))
    assert shared.reserve("b", 0.3)[0]
    shared.forget("b")  # a dead worker's reservation
    assert shared.spending() == (pytest.approx(0.65), pytest.approx(0.0))
    assert shared.tripped_until("veo:x") == 0
    shared.trip("veo:x", time.time() + 60)
    assert shared.tripped_until("veo:x") > time.time()
    shared.hold_off("quota:veo", time.time() + 5)
    assert shared.not_before("quota:veo") > time.time()
    assert shared.try_start("rpm", 2) and shared.try_start("rpm", 2)
    assert not shared.try_start("rpm", 2)
    shared.publish({"item": 1, "kind": "note"})
    assert shared.drain() == [{"item": 1, "kind": "note"}]
    assert shared.drain() == []


def test_a_slot_given_back_here_is_taken_by_a_waiter_on_a_worker_while_it_waits(
        client: Any) -> None:
    """A waiter refused once waits on the scheduler's side (`DaskCoordination.wait_slot`):
    the slot given back reaches it during that wait, not at a later try of its own."""
    shared = DaskCoordination("avgen-wake")
    shared.setup()
    assert shared.try_slot("veo", 1)
    assert not shared.wait_slot("veo", 1, 0.1)  # nobody gives it back: refused when it ends

    def wait_for_the_slot() -> list[Any]:
        calls: list[Any] = []

        class Counting(DaskCoordination):
            def try_slot(self, name: str, limit: int) -> bool:
                taken = super().try_slot(name, limit)
                calls.append(("try", taken))
                if not taken:
                    self.publish({"waiting": True})
                return taken

            def wait_slot(self, name: str, limit: int, timeout: float) -> bool:
                taken = super().wait_slot(name, limit, timeout)
                calls.append(("wait", taken))
                return taken

        async def take() -> None:
            async with Shared(Counting("avgen-wake"), "item").slot("veo", 1):
                pass

        asyncio.run(take())
        return calls

    future = client.submit(wait_for_the_slot, pure=False)
    deadline = time.monotonic() + 60
    while not shared.drain():  # until the worker has been refused
        assert time.monotonic() < deadline and not future.done()
        time.sleep(0.05)
    shared.free_slot("veo")
    calls = future.result(timeout=60)
    assert calls[0] == ("try", False) and calls[-1] == ("wait", True)
    assert all(kind == "wait" for kind, _ in calls[1:])  # no try of its own after the first


def test_workers_on_the_scheduler_never_pass_the_last_dollar_together(client: Any) -> None:
    """Both workers reserve at once, many times: what is granted never passes the budget."""
    shared = DaskCoordination("avgen-race")
    shared.setup()
    shared.open_budget(1.0, 0.0)

    def grab(owner: str) -> int:
        return sum(shared.reserve(owner, 0.1)[0] for _ in range(8))

    granted = sum(client.gather([client.submit(grab, f"worker-{n}", pure=False)
                                 for n in range(2)]))
    assert granted == 10  # exactly the ten dimes of the dollar, never eleven
    spent, reserved = shared.spending()
    assert spent == 0 and reserved == pytest.approx(1.0)


@pytest.mark.slow
def test_workers_share_a_cache_in_a_real_object_store(client: Any, s3: S3,
                                                       tmp_path: Path) -> None:
    """The cache in an S3 bucket (moto's server through s3fs): duplicates pay once across
    the workers, the assets are objects in the bucket, and another batch of the same rows
    in another folder (nothing of the first but the bucket) sends no request."""
    bucket = s3.url()
    rows = [one_scene("Herons"), one_scene("Hornets"), one_scene("Herons")]
    with server(polls_until_done=2) as fake:
        env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": KEY,
               "GOOGLE_VERTEX_BASE_URL": fake.base_url}
        generator = VideoGenerator("google", output_dir=tmp_path / "out", agent_options={
            "env": env, "cache": bucket, "cache_options": s3.another_machine(),
            "poll_interval": 0.05})
        result = generator.generate_many_sync(rows, executor=client)
        decoded(result)
        assert all(count == 1 for count in paid(fake).values())
        assert len(paid(fake)) == 3 * 2  # script, speech and clip of two distinct rows
        stored = [path for path in s3.fs.find(bucket) if "/operations/" not in path]
        assert len(stored) >= 6  # the scripts, narrations and clips, each one object
        state = (result.directory / "batch.json").read_text()
        assert "testing" not in state and "cache_options" in state  # no secret kept
        fake.reset()
        elsewhere = VideoGenerator("google", output_dir=tmp_path / "elsewhere",
                                   agent_options={"env": env, "cache": bucket,
                                                  "cache_options": s3.another_machine(),
                                                  "poll_interval": 0.05})
        again = elsewhere.generate_many_sync(rows, executor=client)
        decoded(again)
        assert again.directory != result.directory
        assert fake.requests == []  # every asset came from the bucket


@pytest.mark.slow
def test_the_command_runs_offline_videos_on_a_local_dask_cluster(tmp_path: Path) -> None:
    """``avgen batch --workers 2``: the offline family (Piper, ffmpeg) built on each worker."""
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps({"script": f"{topic} are worth a look.",
                                          "preset": "draft"})
                              for topic in ("Beetles", "Bats", "Badgers")) + "\n")
    made = subprocess.run([sys.executable, "-m", "avgen", "batch", str(rows), "--agents",
                           "local", "--workers", "2", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, check=False)
    assert made.returncode == 0, made.stderr
    assert "3 done, 0 not done" in made.stdout
    pids = set()
    for manifest in (tmp_path / "out").glob("batch_*/items/*/metadata/manifest.json"):
        data = json.loads(manifest.read_text())
        assert data["status"] == "done" and data["agents"]["narrator"].startswith("piper")
        pids.add(data["host"]["pid"])
        video = manifest.parent.parent / data["video"]
        assert probe(video).has_audio
    assert len(pids) >= 1 and os.getpid() not in pids


@pytest.mark.slow
def test_a_429_seen_by_one_worker_holds_every_worker_off(client: Any, tmp_path: Path
                                                          ) -> None:
    """Item "Herons" gets a 429 asking for 10 s on its narration; "Hornets", whose script is
    answered a second later (so it is ready to speak well inside those 10 s, however busy
    the machine), runs on the other worker: its narration request must not reach the server
    before the 10 s are up."""
    rows = [one_scene("Herons"), one_scene("Hornets")]
    with server(polls_until_done=1) as fake:
        fake.fail("speech", "rate_limit", match="Herons", retry_after=10)
        fake.fail("script", "slow", match="Hornets", seconds=1)
        result = google(fake, tmp_path / "cache").generate_many_sync(rows, executor=client)
        decoded(result)
        speech = fake.calls("speech")
        refused = next(r for r in speech if r.status == 429)
        other = [r for r in speech if "Hornets" in (r.prompt or "")]
        ready = next(r for r in fake.calls("script") if "Hornets" in (r.prompt or "")).at + 1
        assert ready < refused.at + 10  # it was ready to speak during the hold-off ...
        assert other and all(r.at >= refused.at + 10 - 0.05 for r in other)  # ... and waited


def test_clusters_avgen_starts_do_not_profile_their_workers_before_python_3_12() -> None:
    """A worker's profiler reads every thread's stack with ``sys._current_frames()``, which
    before Python 3.12 can deadlock a worker process against a thread starting or ending
    (CPython issue 106883): ``avgen batch --workers`` starts its cluster without it."""
    import argparse

    from avgen._batch_cli import _where

    with _where(argparse.Namespace(processes=None, workers=1, scheduler=None)) as client:
        profiled = client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
    assert list(profiled.values()) == [sys.version_info >= (3, 12)]
