"""One paid request per asset, whoever asks: processes, threads and tasks sharing one cache.

Whole runs use the real google-genai SDK over HTTP to `FakeGemini`; two child processes are
started together on one cache folder; a child holding a lock is killed with SIGKILL. Also:
what the cache folder holds where an entry or a lock is expected, and answers that are not
JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from media import decode

from avgen import VideoGenerator
from avgen._models import Preset, Scene, VideoRequest
from avgen.agents import AssetCache
from avgen.agents._assets import flight as _flight
from avgen.agents.google import (
    GeminiNarrator,
    GeminiScriptWriter,
    GoogleConnection,
    VeoClips,
    google_agents,
)
from avgen.errors import AgentError, ServiceUnavailable
from avgen.resilience import set_testing

KEY = "AIzaFAKE-flight-key-0123456789abcdef"
PAID = ("script", "speech", "image", "veo")
HANG_GUARD = 240.0  # seconds: only stops a broken test from hanging, never paces it
ASSET = "ab" + "0" * 62
TALL = Preset("tall", 144, 256, fps=24)
SCENE = Scene(0, "The sea is calm today.", visual="Waves rolling onto a sandy beach")

RUN = textwrap.dedent("""
    import sys
    import time
    from pathlib import Path

    from avgen import VideoGenerator
    from avgen.agents import AssetCache
    from avgen.agents.google import GoogleConnection, google_agents

    base_url, key, out, cache, ready, go = sys.argv[1:7]
    connection = GoogleConnection.from_env(
        {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": key}, base_url=base_url)
    agents = google_agents(connection, cache=AssetCache(cache), poll_interval=0.01)
    generator = VideoGenerator(agents, output_dir=out)
    Path(ready).touch()
    while not Path(go).exists():  # start together with the other process
        time.sleep(0.005)
    generator.generate_sync(topic="the water cycle", preset="draft")
""")

HOLD = textwrap.dedent("""
    import asyncio
    import sys
    import time
    from pathlib import Path

    from avgen.agents import AssetCache

    cache, key, held = sys.argv[1:4]

    async def main() -> None:
        async with AssetCache(cache).flight(key, source="child"):
            Path(held).touch()
            time.sleep(3600)  # killed while it holds the lock

    asyncio.run(main())
""")


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(polls_until_done=2) as server, set_testing():
        yield server
    assert server.errors == []


def vertex(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                      "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)


def generator(fake: FakeGemini, cache: Path, out: Path) -> VideoGenerator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        agents = google_agents(vertex(fake), cache=AssetCache(cache), poll_interval=0.01)
    return VideoGenerator(agents, output_dir=out)


def paid(fake: FakeGemini) -> dict[str, int]:
    return {kind: fake.count(kind) for kind in PAID if fake.count(kind)}


def one_run(fake: FakeGemini, tmp_path: Path) -> dict[str, int]:
    """What one run pays for, alone on an empty cache (then the fake forgets it)."""
    generator(fake, tmp_path / "alone", tmp_path / "alone-out").generate_sync(
        topic="the water cycle", preset="draft")
    single = paid(fake)
    assert single == {"script": 1, "speech": 3, "veo": 3}
    fake.reset()
    return single


# -- whole runs ------------------------------------------------------------------------------


def test_two_processes_started_together_pay_once(fake: FakeGemini, tmp_path: Path) -> None:
    single = one_run(fake, tmp_path)
    script, cache, go = tmp_path / "run.py", tmp_path / "cache", tmp_path / "go"
    script.write_text(RUN, "utf-8")
    fake.fail("script", "slow", seconds=0.5)  # the first script answer keeps the other waiting
    children, logs = [], []
    try:
        for index in range(2):
            log = tmp_path / f"child{index}.log"
            logs.append(log)
            with log.open("wb") as out:
                children.append(subprocess.Popen(
                    [sys.executable, str(script), fake.base_url, KEY,
                     str(tmp_path / f"out{index}"), str(cache),
                     str(tmp_path / f"ready{index}"), str(go)],
                    stdout=out, stderr=subprocess.STDOUT))
        give_up = time.monotonic() + HANG_GUARD
        while not all((tmp_path / f"ready{index}").exists() for index in range(2)):
            assert all(child.poll() is None for child in children), logs[0].read_text()
            assert time.monotonic() < give_up, "the children never got ready"
            time.sleep(0.01)
        go.touch()
        codes = [child.wait(timeout=HANG_GUARD) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert codes == [0, 0], "\n".join(log.read_text("utf-8") for log in logs)
    assert paid(fake) == single
    for index in range(2):
        [video] = (tmp_path / f"out{index}").glob("session_*/final_output/*.mp4")
        assert decode(video)["errors"] == ""
    assert list((cache / "locks").iterdir()) == []  # each holder removed its lock file


def test_four_gathered_runs_in_one_process_pay_once(fake: FakeGemini, tmp_path: Path) -> None:
    single = one_run(fake, tmp_path)
    cache = tmp_path / "cache"

    async def together() -> list[Any]:
        generators = [generator(fake, cache, tmp_path / f"out{index}") for index in range(4)]
        return await asyncio.gather(*(g.generate(topic="the water cycle", preset="draft")
                                      for g in generators))

    videos = asyncio.run(together())
    assert paid(fake) == single
    assert all(video.tiers == ("clip",) * 3 for video in videos)
    assert _flight._registry == {}


def test_runs_in_two_threads_pay_once(fake: FakeGemini, tmp_path: Path) -> None:
    single = one_run(fake, tmp_path)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(index: int) -> None:
        try:
            made = generator(fake, tmp_path / "cache", tmp_path / f"out{index}")
            barrier.wait()
            made.generate_sync(topic="the water cycle", preset="draft")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD)
    assert errors == []
    assert paid(fake) == single


# -- the lock --------------------------------------------------------------------------------


def test_a_lock_held_by_a_killed_process_does_not_block_the_next(tmp_path: Path) -> None:
    script, cache, held = tmp_path / "hold.py", tmp_path / "cache", tmp_path / "held"
    script.write_text(HOLD, "utf-8")
    child = subprocess.Popen([sys.executable, str(script), str(cache), ASSET, str(held)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        give_up = time.monotonic() + HANG_GUARD
        while not held.exists():
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < give_up, "the child never took the lock"
            time.sleep(0.01)

        async def next_process() -> None:
            entered = asyncio.Event()

            async def take() -> None:
                async with AssetCache(cache).flight(ASSET, source="next"):
                    entered.set()

            waiter = asyncio.create_task(take())
            for _ in range(20):  # while the child lives, the lock stays its own
                await asyncio.sleep(0.01)
                assert not entered.is_set()
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=HANG_GUARD) == -signal.SIGKILL
            assert (cache / "locks" / f"{ASSET}.lock").exists()  # left behind by the crash
            await asyncio.wait_for(waiter, HANG_GUARD)
            assert entered.is_set()

        asyncio.run(next_process())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr:
            child.stderr.close()
    assert not (cache / "locks" / f"{ASSET}.lock").exists()


def test_one_holder_at_a_time_across_threads_and_tasks(tmp_path: Path) -> None:
    inside, most, entries = 0, 0, 0
    count = threading.Lock()

    async def visit() -> None:
        nonlocal inside, most, entries
        async with AssetCache(tmp_path).flight(ASSET, source="test"):
            with count:
                inside += 1
                most, entries = max(most, inside), entries + 1
            for _ in range(3):
                await asyncio.sleep(0)
            with count:
                inside -= 1

    async def loop() -> None:
        await asyncio.gather(*(visit() for _ in range(5)))

    threads = [threading.Thread(target=asyncio.run, args=(loop(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD)
    assert (most, entries) == (1, 15)
    assert _flight._registry == {}


def test_a_cancelled_waiter_holds_nothing(tmp_path: Path) -> None:
    cache = AssetCache(tmp_path)

    async def scenario() -> None:
        release = asyncio.Event()

        async def holder() -> None:
            async with cache.flight(ASSET, source="test"):
                await release.wait()

        first = asyncio.create_task(holder())
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(holder())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        await first
        async with cache.flight(ASSET, source="test"):
            pass

    asyncio.run(scenario())
    assert _flight._registry == {}


@pytest.mark.parametrize("where", ["locks folder is a file", "lock file is a folder"])
def test_an_unusable_lock_file_is_logged_and_the_flight_goes_on(
        tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture) -> None:
    if where == "locks folder is a file":
        (tmp_path / "locks").write_text("not a folder")
    else:
        (tmp_path / "locks" / f"{ASSET}.lock").mkdir(parents=True)

    async def enter() -> bool:
        async with AssetCache(tmp_path).flight(ASSET, source="narrator"):
            return True

    with caplog.at_level(logging.WARNING, "avgen.agents.google"):
        assert asyncio.run(enter())
    assert "narrator: cannot use the lock file" in caplog.text


def test_the_lock_folder_is_not_the_stores(tmp_path: Path) -> None:
    cache = AssetCache(tmp_path)
    source = tmp_path / "clip.bin"
    source.write_bytes(b"clip")
    cache.keep(ASSET, source)
    (tmp_path / "locks").mkdir()
    (tmp_path / "locks" / f"{'cd' + '1' * 62}.lock").touch()
    assert len(cache.store) == 1
    cache.store.prune()
    cache.store.clear()
    assert (tmp_path / "locks" / f"{'cd' + '1' * 62}.lock").exists()


# -- what the folder holds instead of an entry ---------------------------------------------


def _in_the_way(cache: Path, key: str, shape: str) -> None:
    sub = cache / key[:2]
    if shape == "entry folder is a file":
        sub.write_text("stray")
        return
    sub.mkdir(parents=True, exist_ok=True)
    if shape == "record is a folder":
        (sub / f"{key}.meta.json").mkdir()
    else:  # a record pointing at data that is a folder
        record = {"kind": "file", "data": f"{key}.{'a' * 16}.bin", "size": 3,
                  "sha256": "a" * 64, "created": 1.0}
        (sub / f"{key}.meta.json").write_text(json.dumps(record))
        (sub / f"{key}.{'a' * 16}.bin").mkdir()


@pytest.mark.parametrize("shape", ["entry folder is a file", "record is a folder",
                                   "data is a folder"])
def test_a_stray_folder_or_file_is_a_logged_miss(tmp_path: Path, shape: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    cache = AssetCache(tmp_path)
    _in_the_way(tmp_path, ASSET, shape)
    made = tmp_path / "made.bin"
    made.write_bytes(b"abc")
    with caplog.at_level(logging.WARNING):
        assert not cache.fetch(ASSET, tmp_path / "out.bin", source="narrator")
        assert cache.get_json(ASSET, source="narrator") is None
        cache.keep(ASSET, made, source="narrator")
        cache.set_json(ASSET, "text", source="narrator")
    assert "narrator" in caplog.text or "cache entry" in caplog.text


def test_stray_folders_in_the_cache_never_fail_a_run_and_heal(
        fake: FakeGemini, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    first = generator(fake, cache, tmp_path / "out").generate_sync(topic="the water cycle",
                                                                   preset="draft")
    for meta in cache.glob("??/*.meta.json"):  # every entry's data becomes a folder
        for data in meta.parent.glob(meta.name.removesuffix(".meta.json") + ".*.bin"):
            data.unlink()
            data.mkdir()
            (data / "inside").write_text("a folder with something in it")
    (cache / "locks").rmdir()
    (cache / "locks").write_text("not a folder")
    fake.reset()
    with caplog.at_level(logging.WARNING, "avgen"):
        again = generator(fake, cache, tmp_path / "out").generate_sync(
            topic="the water cycle", preset="draft")
    assert again.tiers == first.tiers
    assert "damaged data, removed" in caplog.text and "cannot use the lock file" in caplog.text
    assert paid(fake) == {"speech": 3, "veo": 3}  # a miss each, stored again over the folder
    fake.reset()
    third = generator(fake, cache, tmp_path / "out").generate_sync(topic="the water cycle",
                                                                   preset="draft")
    assert third.tiers == first.tiers and paid(fake) == {}  # healed: nothing paid again


@pytest.mark.parametrize("damage", ["record is a folder", "data is a folder",
                                    "entry folder is a file", "truncated data",
                                    "wrong checksum", "record is a symlink"])
def test_a_broken_entry_is_replaced_on_the_next_write_and_logged(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    cache = AssetCache(tmp_path)
    made = tmp_path / "made.bin"
    made.write_bytes(b"the asset")
    sub = tmp_path / ASSET[:2]
    if damage in ("truncated data", "wrong checksum"):
        cache.keep(ASSET, made)
        (stored,) = sub.glob(f"{ASSET}.*.bin")
        stored.write_bytes(b"the ass" if damage == "truncated data" else b"the gas!!")
    elif damage == "record is a symlink":
        sub.mkdir()
        outside = tmp_path / "outside.json"
        outside.write_text("not a record")
        (sub / f"{ASSET}.meta.json").symlink_to(outside)
    else:
        _in_the_way(tmp_path, ASSET, damage)
    with caplog.at_level(logging.WARNING):
        assert not cache.fetch(ASSET, tmp_path / "out.bin", source="narrator")  # a miss
        cache.keep(ASSET, made, source="narrator")  # the next write: replaces the damage
    assert "cache entry" in caplog.text
    assert cache.fetch(ASSET, tmp_path / "again.bin", source="narrator")
    assert (tmp_path / "again.bin").read_bytes() == b"the asset"
    if damage == "record is a symlink":
        assert outside.read_text() == "not a record"  # the link went, not what it pointed to
    assert not [path for path in sub.iterdir() if path.is_dir()]


# -- answers that are not JSON ----------------------------------------------------------------


def test_an_html_page_with_200_is_a_retryable_outage_naming_the_agent(
        fake: FakeGemini, tmp_path: Path) -> None:
    narrator = GeminiNarrator(vertex(fake))
    fake.fail("speech", "html")
    with pytest.raises(ServiceUnavailable, match=r"gemini-tts:.*not the JSON expected"):
        asyncio.run(narrator.speak("Hello there.", tmp_path / "a.wav"))
    writer = GeminiScriptWriter(vertex(fake))
    fake.fail("script", "html")
    with pytest.raises(ServiceUnavailable, match="gemini-script:"):
        asyncio.run(writer.write(VideoRequest(topic="bees")))


def test_a_run_retries_an_html_page_and_finishes(fake: FakeGemini, tmp_path: Path) -> None:
    fake.fail("script", "html")
    fake.fail("speech", "html")
    fake.fail("poll", "html")
    video = generator(fake, tmp_path / "cache", tmp_path / "out").generate_sync(
        topic="the water cycle", preset="draft")
    assert video.tiers == ("clip",) * 3
    assert paid(fake) == {"script": 2, "speech": 4, "veo": 3}


def test_an_html_page_answering_a_clip_submit_is_not_submitted_again(
        fake: FakeGemini, tmp_path: Path) -> None:
    agent = VeoClips(vertex(fake), cache=AssetCache(tmp_path / "cache"), poll_interval=0.01)
    fake.fail("veo", "html")
    with pytest.raises(AgentError, match="no usable answer") as caught:
        asyncio.run(agent.generate(SCENE, 3.2, TALL, tmp_path / "clip.mp4"))
    assert not isinstance(caught.value, ServiceUnavailable)
    assert fake.count("veo") == 1
