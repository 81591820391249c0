"""Veo operations outlive the process that submitted them: a crash never pays for a clip again.

The real google-genai SDK talks HTTP to `FakeGemini`; a child process is killed with SIGKILL
while its operations are running, and the resumed run polls them instead of submitting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from hypothesis import given
from hypothesis import strategies as st
from media import decode

from avgen import VideoGenerator
from avgen._models import ClipAsset, Preset, Scene
from avgen.agents import AssetCache
from avgen.agents._assets.journal import Entry, OperationJournal
from avgen.agents.google import GoogleConnection, VeoClips, google_agents
from avgen.errors import AgentError, ContentRejected, ServiceUnavailable
from avgen.resilience import set_testing

KEY = "AIzaFAKE-operations-key-0123456789ab"
MODEL = "veo-3.1-fast-generate-001"
AGENT = f"veo:{MODEL}"
TALL = Preset("tall", 144, 256, fps=24)
SCENE = Scene(0, "The sea is calm today.", visual="Waves rolling onto a sandy beach")
FAST: dict[str, Any] = {"poll_interval": 0.01, "poll_max_interval": 0.02, "deadline": 30.0}
HANG_GUARD = 240.0  # seconds: only stops a broken test from hanging, never paces it

CHILD = textwrap.dedent("""
    import sys

    from avgen import VideoGenerator
    from avgen.agents import AssetCache
    from avgen.agents.google import GoogleConnection, google_agents

    base_url, key, out, cache = sys.argv[1:5]
    connection = GoogleConnection.from_env(
        {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": key}, base_url=base_url)
    agents = google_agents(connection, cache=AssetCache(cache), poll_interval=0.01,
                           max_clip_operations=3)
    VideoGenerator(agents, output_dir=out).generate_sync(topic="the water cycle",
                                                         preset="draft")
""")


@pytest.fixture(autouse=True)
def _fast_retries() -> Iterator[None]:
    with set_testing():
        yield


def vertex(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                      "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)


def recorded(cache: Path) -> dict[str, str]:
    """The journal of an asset cache folder: clip key → operation name."""
    return {path.stem: json.loads(path.read_text("utf-8"))["operation"]
            for path in (cache / "operations").glob("*.json")}


def veo(fake: FakeGemini, cache: Path, **options: Any) -> VeoClips:
    """A new agent on the cache folder (as a new process would make it)."""
    return VeoClips(vertex(fake), MODEL, cache=AssetCache(cache), **{**FAST, **options})


def make(agent: VeoClips, target: Path) -> ClipAsset:
    return asyncio.run(agent.generate(SCENE, 3.2, TALL, target))


def left_running(fake: FakeGemini, cache: Path, tmp_path: Path) -> tuple[str, str]:
    """A clip whose operation was accepted and is still running when its caller gives up
    (the deadline passes): its key and its operation, as the journal keeps them."""
    fake.polls_until_done = 1_000_000
    with pytest.raises(AgentError, match="deadline"):
        make(veo(fake, cache, deadline=0.05), tmp_path / "abandoned.mp4")
    [(key, operation)] = recorded(cache).items()
    [submit] = fake.calls("veo")
    assert submit.operation == operation
    fake.polls_until_done = 1  # from now on, the next poll of an operation finishes it
    fake.reset()
    return key, operation


def _every_operation_polled(fake: FakeGemini, clips: int) -> bool:
    submitted = {call.operation for call in fake.calls("veo") if call.status == 200}
    polled = {call.operation for call in fake.calls("poll") if call.status == 200}
    return len(submitted) == clips and submitted <= polled


def test_a_run_killed_while_polling_resumes_its_operations_without_paying_again(
        tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD, "utf-8")
    out, cache = tmp_path / "out", tmp_path / "cache"
    with FakeGemini(polls_until_done=1_000_000) as fake:
        clips = len(fake.script["scenes"])
        log = (tmp_path / "child.log").open("wb")
        child = subprocess.Popen([sys.executable, str(script), fake.base_url, KEY, str(out),
                                  str(cache)], stdout=log, stderr=subprocess.STDOUT)
        try:
            give_up = time.monotonic() + HANG_GUARD
            while not _every_operation_polled(fake, clips):
                assert child.poll() is None, (tmp_path / "child.log").read_text("utf-8")
                assert time.monotonic() < give_up, "the child never polled every operation"
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
            assert child.wait(timeout=HANG_GUARD) == -signal.SIGKILL
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            log.close()
        submitted = [call.operation for call in fake.calls("veo")]
        assert len(submitted) == clips and fake.errors == []
        [session] = out.glob("session_*")
        assert sorted(recorded(cache).values()) == sorted(submitted)

        fake.polls_until_done = 1  # from now on an operation is done at its next poll
        before = len(fake.requests)
        agents = google_agents(vertex(fake), cache=AssetCache(cache), poll_interval=0.01)
        with VideoGenerator(agents, output_dir=out) as generator:
            video = generator.resume_sync(session)
        after = fake.requests[before:]
        assert fake.errors == []

    assert [call for call in after if call.kind == "veo"] == []  # nothing submitted again
    resumed = {call.operation for call in after if call.kind == "poll"}
    assert resumed == set(submitted)
    assert video.session == session and video.tiers == ("clip",) * clips
    assert decode(video.path)["errors"] == "" and decode(video.path)["has_video"]
    for index in range(clips):
        clip = decode(session / "video_clips" / f"scene_{index:03d}.mp4")
        assert clip["errors"] == "" and clip["has_video"] and clip["frames"] > 0
    assert recorded(cache) == {}  # each record went when its clip was stored


# ---------------------------------------------------------------------- one agent, in-process


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
    assert server.errors == []


def test_the_record_is_written_when_accepted_and_removed_when_the_clip_is_stored(
        fake: FakeGemini, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    key, operation = left_running(fake, cache, tmp_path)
    record = json.loads((cache / "operations" / f"{key}.json").read_text("utf-8"))
    assert set(record) == {"version", "key", "agent", "operation", "submitted"}
    assert (record["version"], record["key"], record["agent"]) == (1, key, AGENT)
    assert record["operation"] == operation and math.isfinite(record["submitted"])
    assert not [p for p in (cache / "operations").iterdir() if p.name.startswith(".tmp-")]

    asset = make(veo(fake, cache), tmp_path / "clip.mp4")  # a new agent: nothing in memory
    assert fake.count("veo") == 0
    assert [call.operation for call in fake.calls("poll")] == [operation]
    assert decode(asset.path)["frames"] == 96 and recorded(cache) == {}
    make(veo(fake, cache), tmp_path / "again.mp4")  # now from the cache: no request at all
    assert fake.count("veo") == 0 and fake.count("poll") == 1


def test_an_operation_the_service_does_not_know_is_submitted_again(
        fake: FakeGemini, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    _, operation = left_running(fake, cache, tmp_path)
    fake.expire()
    caplog.set_level(logging.WARNING, "avgen.agents.google")
    asset = make(veo(fake, cache), tmp_path / "clip.mp4")
    [gone, polled] = fake.calls("poll")
    assert (gone.operation, gone.status) == (operation, 404)
    [submit] = fake.calls("veo")
    assert polled.operation == submit.operation != operation
    assert decode(asset.path)["frames"] == 96 and recorded(cache) == {}
    assert "submitting it again" in caplog.text and "404" in caplog.text


def test_an_operation_that_failed_is_submitted_again(fake: FakeGemini, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _, operation = left_running(fake, cache, tmp_path)
    fake.fail("poll", "operation_error")
    asset = make(veo(fake, cache), tmp_path / "clip.mp4")
    [failed, done] = fake.calls("poll")
    [submit] = fake.calls("veo")
    assert failed.operation == operation and done.operation == submit.operation != operation
    assert decode(asset.path)["frames"] == 96 and recorded(cache) == {}


def test_a_fresh_operation_that_fails_is_not_submitted_again(fake: FakeGemini,
                                                             tmp_path: Path) -> None:
    fake.fail("poll", "operation_error")
    with pytest.raises(AgentError, match="code 13"):
        make(veo(fake, tmp_path / "cache"), tmp_path / "clip.mp4")
    assert fake.count("veo") == 1 and recorded(tmp_path / "cache") == {}


def test_a_recorded_operation_that_was_filtered_is_not_submitted_again(
        fake: FakeGemini, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    left_running(fake, cache, tmp_path)
    fake.fail("poll", "filtered")
    with pytest.raises(ContentRejected):
        make(veo(fake, cache), tmp_path / "clip.mp4")
    assert fake.count("veo") == 0 and recorded(cache) == {}


def test_a_recorded_operation_whose_polls_keep_failing_stays_recorded(
        fake: FakeGemini, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    key, operation = left_running(fake, cache, tmp_path)
    fake.fail("poll", "server_error", status=503, times=5)
    with pytest.raises(ServiceUnavailable):
        make(veo(fake, cache), tmp_path / "clip.mp4")
    assert fake.count("veo") == 0 and recorded(cache) == {key: operation}
    asset = make(veo(fake, cache), tmp_path / "clip.mp4")
    assert fake.count("veo") == 0 and decode(asset.path)["frames"] == 96


def test_an_operation_past_its_deadline_stays_recorded_for_the_next_run(
        fake: FakeGemini, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    key, operation = left_running(fake, cache, tmp_path)
    fake.polls_until_done = 1_000_000
    with pytest.raises(AgentError, match="deadline"):
        make(veo(fake, cache, deadline=0.05), tmp_path / "clip.mp4")
    assert fake.count("veo") == 0 and recorded(cache) == {key: operation}


def test_a_record_that_cannot_be_written_does_not_stop_the_clip(
        fake: FakeGemini, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "operations").write_text("a file where the journal's folder would be")
    caplog.set_level(logging.WARNING, "avgen.agents.google")
    asset = make(veo(fake, cache), tmp_path / "clip.mp4")
    assert decode(asset.path)["frames"] == 96 and fake.count("veo") == 1
    assert "could not record operation" in caplog.text


def test_without_a_cache_nothing_is_written(fake: FakeGemini, tmp_path: Path) -> None:
    agent = VeoClips(vertex(fake), MODEL, cache=None, **FAST)
    asset = make(agent, tmp_path / "clip.mp4")
    assert decode(asset.path)["frames"] == 96
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


# ------------------------------------------------------------------- untrusted records


def _record(key: str, **changes: Any) -> dict[str, Any]:
    name = f"publishers/google/models/{MODEL}/operations/op0001forged"
    return {"version": 1, "key": key, "agent": AGENT, "operation": name,
            "submitted": 1_700_000_000.0, **changes}


@pytest.mark.parametrize("forge", [
    pytest.param(lambda key: b"\x00\xff not json", id="binary"),
    pytest.param(lambda key: b'{"version": 1, "key": ', id="truncated"),
    pytest.param(lambda key: b"[1, 2, 3]", id="a-list"),
    pytest.param(lambda key: json.dumps({**_record(key), "extra": 1}).encode(), id="extra"),
    pytest.param(lambda key: json.dumps({k: v for k, v in _record(key).items()
                                         if k != "agent"}).encode(), id="missing"),
    pytest.param(lambda key: json.dumps(_record(key, version=2)).encode(), id="version"),
    pytest.param(lambda key: json.dumps(_record(key, version=True)).encode(), id="bool"),
    pytest.param(lambda key: json.dumps(_record("0" * 64)).encode(), id="other-key"),
    pytest.param(lambda key: json.dumps(_record(key, agent="veo:veo-2.0-generate-001"))
                 .encode(), id="other-agent"),
    pytest.param(lambda key: json.dumps(_record(key, submitted="yesterday")).encode(),
                 id="submitted-text"),
    pytest.param(lambda key: json.dumps(_record(key, submitted=math.inf)).encode(),
                 id="submitted-inf"),
    pytest.param(lambda key: json.dumps(_record(key, submitted=10 ** 400)).encode(),
                 id="submitted-huge"),
    pytest.param(lambda key: json.dumps(_record(key, operation=["op"])).encode(),
                 id="operation-list"),
    pytest.param(lambda key: json.dumps(_record(
        key, operation="publishers/google/models/veo-2.0-generate-001/operations/op1"))
                 .encode(), id="other-model"),
    pytest.param(lambda key: json.dumps(_record(
        key, operation=f"publishers/google/models/{MODEL}/operations/../../files/x"))
                 .encode(), id="traversal"),
    pytest.param(lambda key: json.dumps(_record(
        key, operation=f"https://evil.example/models/{MODEL}/operations/op1")).encode(),
                 id="url"),
    pytest.param(lambda key: json.dumps(_record(
        key, operation=f"models/{MODEL}/operations/op1\n")).encode(), id="newline"),
    pytest.param(lambda key: json.dumps(_record(key, operation="x" * 5000)).encode(),
                 id="too-large"),
])
def test_an_unsound_record_is_ignored_logged_and_replaced(
        forge: Any, fake: FakeGemini, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    key, _ = left_running(fake, cache, tmp_path)
    (cache / "operations" / f"{key}.json").write_bytes(forge(key))
    caplog.set_level(logging.WARNING, "avgen.agents.google")
    asset = make(veo(fake, cache), tmp_path / "clip.mp4")
    assert decode(asset.path)["frames"] == 96
    assert fake.count("veo") == 1 and fake.count("poll") == 1  # nothing forged was polled
    assert "ignoring the operation record" in caplog.text and recorded(cache) == {}


@pytest.mark.parametrize("name", [
    f"projects/my-project-123/locations/us-central1/publishers/google/models/{MODEL}"
    "/operations/9a3b8c1e-7d2f-4e6a-b5c4-0123456789ab",
    f"projects/123456789012/locations/europe-west4/publishers/google/models/{MODEL}"
    "/operations/abc_DEF-123",
    f"publishers/google/models/{MODEL}/operations/op000112345",
    f"models/{MODEL}/operations/x1y2z3",
])
def test_veo_operation_names_are_accepted(name: str) -> None:
    agent = VeoClips(GoogleConnection.from_env(
        {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": KEY},
        base_url="http://127.0.0.1:9"), MODEL)
    assert agent._pollable(name)
    assert not agent._pollable(name.replace(MODEL, "veo-2.0-generate-001"))
    assert not agent._pollable(name + "/extra") and not agent._pollable(" " + name)


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                     | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=6),
                     max_leaves=12)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


@given(changes=st.dictionaries(st.sampled_from(["version", "key", "agent", "operation",
                                                "submitted", "other"]), _JSON, max_size=4),
       drop=st.sets(st.sampled_from(["version", "key", "agent", "operation", "submitted"])))
def test_recall_accepts_only_a_sound_record(changes: dict[str, Any], drop: set[str],
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    journal = OperationJournal(tmp_path_factory.mktemp("journal"))
    key = "ab" * 32
    sound = _record(key)
    record = {k: v for k, v in {**sound, **changes}.items() if k not in drop}
    journal.directory.mkdir(parents=True, exist_ok=True)
    journal.path(key).write_text(json.dumps(record), "utf-8")
    entry = journal.recall(key, agent=AGENT, valid=lambda name: name == sound["operation"])
    if (set(record) == set(sound) and all(
            record[k] == sound[k] and type(record[k]) is type(sound[k])
            for k in ("version", "key", "agent", "operation"))
            and type(record["submitted"]) in (int, float) and _finite(record["submitted"])):
        assert entry == Entry(sound["operation"], float(record["submitted"]))
    else:
        assert entry is None
