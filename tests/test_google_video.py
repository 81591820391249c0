"""Whole videos with the google agents: the real SDK over HTTP to FakeGemini, real ffmpeg,
decoded output; faults injected per scene; re-runs served by the cache; the command line."""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fake_gemini import FakeGemini
from media import decode

from avgen import RunEvent, VideoGenerator
from avgen.agents import AssetCache
from avgen.agents.google import GoogleConnection, google_agents
from avgen.agents.google._catalogue import price_of
from avgen.errors import GenerationError, RateLimited
from avgen.resilience import CircuitState, set_testing

KEY = "AIzaFAKE-video-key-0123456789abcdef"
TOKEN = "ya29.fake-access-token-0123456789"
PAID = ("script", "speech", "image", "veo")
VISUALS = ("Sunlight glittering", "White clouds forming", "Rain falling")
NARRATIONS = ("The sun warms", "High in the sky", "The droplets join")


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(polls_until_done=2) as server, set_testing():
        yield server


def vertex(fake: FakeGemini, *, project: bool = False) -> GoogleConnection:
    if project:
        from google.oauth2.credentials import Credentials

        return GoogleConnection.from_env(
            {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_CLOUD_PROJECT": "demo"},
            base_url=fake.base_url, credentials=Credentials(token=TOKEN))
    return GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                      "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)


def developer(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GEMINI_API_KEY": KEY}, base_url=fake.base_url)


def generator(connection: GoogleConnection, tmp_path: Path, **options: Any) -> VideoGenerator:
    budget = options.pop("budget", None)
    on_event = options.pop("on_event", None)
    options.setdefault("cache", AssetCache(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Developer mode: stills instead of clips
        agents = google_agents(connection, poll_interval=0.01, **options)
    return VideoGenerator(agents, output_dir=tmp_path / "out", budget=budget, on_event=on_event)


def rewritten(prompt: str) -> str:
    """What the fake's Gemini answers a rewrite request with: the refused prompt, softened."""
    return "A gentle take: " + prompt.split("PROMPT:\n", 1)[-1]


def manifest(video_session: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((video_session / "metadata" / "manifest.json")
                                      .read_text("utf-8"))
    return data


def paid(fake: FakeGemini) -> dict[str, int]:
    return {kind: fake.count(kind) for kind in PAID if fake.count(kind)}


def test_vertex_video_from_gemini_script_tts_and_veo_clips(fake: FakeGemini,
                                                            tmp_path: Path) -> None:
    video = generator(vertex(fake), tmp_path).generate_sync(topic="the water cycle",
                                                            preset="draft")
    decoded = decode(video.path)
    assert decoded["errors"] == ""
    assert (decoded["width"], decoded["height"]) == (360, 640) and decoded["has_audio"]
    narration = [max(0.5, len(s["narration"]) * fake.speech_seconds_per_char)
                 for s in fake.script["scenes"]]
    assert decoded["audio_duration"] == pytest.approx(sum(narration), abs=0.25)
    assert video.tiers == ("clip", "clip", "clip")
    assert paid(fake) == {"script": 1, "speech": 3, "veo": 3}
    assert all(call.body["parameters"]["aspectRatio"] == "9:16" for call in fake.calls("veo"))
    data = manifest(video.session)
    steps = data["steps"]
    veo = price_of("veo-3.1-fast-generate-001")
    for index in range(3):
        visual = steps[f"scene-{index:03d}.visual"]
        assert visual["status"] == "done" and visual["tier"] == "clip"
        [charge] = visual["data"]["charges"]
        assert visual["cost"] == pytest.approx(veo.video(charge["quantity"], False))
        assert steps[f"scene-{index:03d}.narration"]["cost"] > 0
        # the clip's operation held one of the model's quota slots, submit to download
        [held] = visual["data"]["quota"]
        assert held["name"] == "quota:veo-3.1-fast-generate-001" and held["limit"] == 2
        assert visual["started"] <= held["started"] and held["seconds"] > 0
        assert held["started"] + held["seconds"] <= visual["started"] + visual["seconds"]
    assert steps["script"]["cost"] > 0
    assert data["cost"]["spent"] == pytest.approx(
        math.fsum(step["cost"] for step in steps.values()), abs=1e-6)
    assert data["agents"]["clip_generator"] == "veo:veo-3.1-fast-generate-001"


def test_faults_on_some_scenes_still_make_the_video(fake: FakeGemini, tmp_path: Path) -> None:
    fake.fail("veo", "rate_limit", match=VISUALS[0], retry_after=1)
    fake.fail("veo", "filtered", match=VISUALS[1], times=3)  # the prompt and 2 rewrites
    fake.text = rewritten
    fake.fail("speech", "server_error", status=503, match=NARRATIONS[2])
    fake.fail("veo", "operation_error", match=VISUALS[2])
    events: list[RunEvent] = []
    video = generator(vertex(fake), tmp_path, on_event=events.append).generate_sync(
        topic="the water cycle", preset="draft")
    assert decode(video.path)["errors"] == ""
    assert video.tiers == ("clip", "image", "image")
    assert fake.count("text") == 2  # two rewrites were asked for, then the scene fell back
    steps = manifest(video.session)["steps"]
    first = steps["scene-000.visual"]
    assert first["tier"] == "clip" and first["data"]["resilience"]["attempts"] == 2
    assert "429" in first["data"]["resilience"]["retries"][0]["error"]
    assert len([c for c in fake.calls("veo") if VISUALS[0] in (c.prompt or "")]) == 2
    second = steps["scene-001.visual"]
    assert second["status"] == "fallback" and second["tier"] == "image"
    assert "filtered" in second["error"] or "safety" in second["error"].lower()
    third = steps["scene-002.visual"]
    assert third["status"] == "fallback" and "failed" in third["error"]
    assert len([c for c in fake.calls("veo") if VISUALS[2] in (c.prompt or "")]) == 1
    narration = steps["scene-002.narration"]["data"]["resilience"]
    assert narration["attempts"] == 2 and "503" in narration["retries"][0]["error"]
    assert {e.kind for e in events} >= {"fallback", "retry", "done"}
    # the filtered clips were not charged; the two rewrites were (tokens), then the still
    assert [c["unit"] for c in second["data"]["charges"]] == ["token", "token", "image"]
    assert [r["attempt"] for r in second["data"]["resilience"]["rewrites"]] == [1, 2]


def test_the_same_request_again_pays_for_nothing(fake: FakeGemini, tmp_path: Path) -> None:
    first = generator(vertex(fake), tmp_path).generate_sync(topic="the water cycle",
                                                            preset="draft")
    fake.reset()
    again = generator(vertex(fake), tmp_path).generate_sync(topic="the water cycle",
                                                            preset="draft")
    assert again.session != first.session
    assert paid(fake) == {}
    assert fake.requests == []
    data = manifest(again.session)
    assert data["cost"]["spent"] == 0
    hits = [step["data"]["resilience"].get("cache") for step in data["steps"].values()
            if step["id"] != "compose"]
    assert hits and all(hit == ["hit"] for hit in hits)
    assert decode(again.path)["errors"] == "" and again.tiers == first.tiers
    # an edited request pays for its script again, then only for the scene that changed
    fake.script["scenes"][1]["narration"] = "Then a storm builds over the sea."
    fake.script["scenes"][1]["visual"] = "A thunderstorm over the sea"
    generator(vertex(fake), tmp_path).generate_sync(topic="the water cycle, with storms",
                                                    preset="draft")
    assert paid(fake) == {"script": 1, "speech": 1, "veo": 1}


def test_developer_mode_makes_a_video_from_stills(fake: FakeGemini, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="Vertex AI"):
        agents = google_agents(developer(fake), cache=False)
    video = VideoGenerator(agents, output_dir=tmp_path).generate_sync(
        script="Bees dance. They tell the hive where flowers are.", preset="draft")
    assert video.tiers == ("image",) * len(fake.script["scenes"])
    assert paid(fake) == {"script": 1, "speech": 3, "image": 3}
    assert decode(video.path)["errors"] == ""


def test_an_open_breaker_makes_the_other_scenes_fall_back_at_once(fake: FakeGemini,
                                                                   tmp_path: Path) -> None:
    fake.fail("veo", "server_error", status=503, times=100)
    gen = generator(vertex(fake), tmp_path, max_clip_operations=1)
    gen.agents.clip_generator.max_concurrency = 1  # type: ignore[union-attr]
    video = gen.generate_sync(topic="the water cycle", preset="draft")
    assert video.tiers == ("image", "image", "image")
    assert fake.count("veo") == 4  # one scene's 4 attempts open it; the others are refused
    steps = manifest(video.session)["steps"]
    refused = [s for s in steps.values() if "circuit" in (s.get("error") or "").lower()
               or "open" in (s.get("error") or "")]
    assert len(refused) == 2


@pytest.mark.parametrize("via", ["header", "retry_info"])
@pytest.mark.parametrize("times", [2, 3])
def test_quota_answers_on_narration_never_open_its_breaker(fake: FakeGemini, tmp_path: Path,
                                                           times: int, via: str) -> None:
    gen = generator(developer(fake), tmp_path, cache=False)
    narrator = gen.agents.narrator.name  # type: ignore[union-attr]
    for _ in range(2):  # the breaker outlives a run: the next video is made too
        fake.reset()
        fake.fail("speech", "rate_limit", times=times, retry_after=2, via=via)
        video = gen.generate_sync(topic="the water cycle", preset="draft")
        assert decode(video.path)["errors"] == ""
        assert fake.count("speech") == 3 + times
        steps = manifest(video.session)["steps"]
        retries = [retry for index in range(3) for retry in
                   steps[f"scene-{index:03d}.narration"]["data"]["resilience"]["retries"]]
        assert len(retries) == times
        assert all(r["requested"] == 2 and "429" in r["error"] for r in retries)
    metrics = gen.breakers.get(narrator).metrics()
    assert metrics.state is CircuitState.CLOSED
    assert (metrics.calls, metrics.failures) == (6, 0)  # the quota answers count as nothing


@pytest.mark.parametrize("via", ["header", "retry_info"])
def test_a_503_with_retry_after_waits_as_asked(fake: FakeGemini, tmp_path: Path,
                                               via: str) -> None:
    fake.fail("speech", "server_error", status=503, retry_after=7, via=via,
              match=NARRATIONS[1])
    video = generator(developer(fake), tmp_path).generate_sync(topic="the water cycle",
                                                               preset="draft")
    retries = manifest(video.session)["steps"]["scene-001.narration"]["data"]["resilience"][
        "retries"]
    assert [(r["requested"], "503" in r["error"]) for r in retries] == [(7, True)]


def test_a_quota_wait_longer_than_allowed_says_when_to_come_back(fake: FakeGemini,
                                                                 tmp_path: Path) -> None:
    fake.fail("speech", "rate_limit", retry_after=120, match=NARRATIONS[0])
    with pytest.raises(GenerationError) as failed:
        generator(developer(fake), tmp_path).generate_sync(topic="the water cycle",
                                                           preset="draft")
    cause = failed.value.__cause__
    assert isinstance(cause, RateLimited) and cause.retry_after == 120
    assert "come back in 120 s" in str(failed.value) and " UTC" in str(failed.value)
    # never asked again sooner than the service said
    assert len([c for c in fake.calls("speech") if NARRATIONS[0] in (c.prompt or "")]) == 1


@pytest.mark.parametrize(("kind", "fault", "options"), [
    ("script", "refused", {"status": 403}),
    ("script", "refused", {"status": 401, "message": "credentials {key} refused"}),
    ("script", "server_error", {"status": 500, "message": "Internal error for {key}.",
                                "times": 4}),
    ("speech", "rate_limit", {"message": "Quota exceeded for consumer 'api_key:{key}'.",
                              "times": 4, "match": NARRATIONS[0]}),
])
def test_a_failed_run_shows_no_key_in_its_traceback(fake: FakeGemini, tmp_path: Path,
                                                    kind: str, fault: str,
                                                    options: dict[str, Any]) -> None:
    fake.fail(kind, fault, **options)
    with pytest.raises(GenerationError) as failed:
        generator(developer(fake), tmp_path).generate_sync(topic="the water cycle",
                                                           preset="draft")
    printed = "".join(traceback.format_exception(failed.value))
    assert fake.calls(kind)[0].headers["x-goog-api-key"] == KEY
    assert KEY not in printed and "[redacted]" in printed
    assert KEY not in str(failed.value) and KEY not in repr(failed.value)


def test_the_budget_keeps_the_run_within_it(fake: FakeGemini, tmp_path: Path) -> None:
    gen = generator(vertex(fake), tmp_path, budget=0.25)
    estimate = gen.estimate(topic="the water cycle", preset="draft")
    assert estimate.total > 0.25 and not estimate.within_budget
    assert {c.agent.split(":")[0] for c in estimate.charges} == {
        "gemini-script", "gemini-tts", "veo"}
    # possible extras: the stills (the clips' fallback), rewrites, portraits of a cast
    assert {c.agent.split(":")[0] for c in estimate.extras} == {"gemini-rewrite",
                                                                 "gemini-image"}
    assert estimate.total == pytest.approx(math.fsum(c.usd for c in estimate.charges))
    assert fake.requests == []  # estimating costs nothing
    video = gen.generate_sync(topic="the water cycle", preset="draft")
    data = manifest(video.session)
    assert data["cost"]["spent"] <= 0.25
    assert fake.count("veo") == 0  # a 4 s clip ($0.40) never fitted
    assert video.tiers == ("image", "image", "image")
    assert all("budget" in data["steps"][f"scene-{i:03d}.visual"]["error"] for i in range(3))


def test_no_secret_reaches_a_file_a_log_or_an_event(fake: FakeGemini, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    fake.fail("veo", "rate_limit", match=VISUALS[0])
    fake.fail("image", "server_error", status=500, times=2)
    fake.fail("veo", "filtered", match=VISUALS[1], times=6)  # with 2 rewrites, per run
    fake.text = rewritten
    events: list[RunEvent] = []
    caplog.set_level(logging.DEBUG)
    for connection, secret in ((vertex(fake), KEY), (vertex(fake, project=True), TOKEN)):
        gen = generator(connection, tmp_path, on_event=events.append)
        video = gen.generate_sync(topic="the water cycle", preset="draft")
        written = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert any(p.suffix == ".json" for p in written) and any(p.suffix == ".log"
                                                                 for p in written)
        for path in written:
            assert secret.encode() not in path.read_bytes(), path
        assert secret not in caplog.text
        assert secret not in repr(events) and secret not in repr(gen)
        assert secret not in repr(gen.agents)
        assert video.path.exists()
    assert fake.calls("image")[0].headers.get("x-goog-api-key") == KEY  # it was used


@pytest.mark.slow
def test_avgen_make_picks_the_google_agents_and_says_which(fake: FakeGemini,
                                                           tmp_path: Path) -> None:
    script = tmp_path / "bees.md"
    script.write_text("# Bees\n\nBees dance. They tell the hive where flowers are.\n")
    env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.base_url,
           "AVGEN_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "avgen", "make", "--script", str(script), "--preset",
               "draft", "--out", str(tmp_path / "out")]
    estimate = subprocess.run([*command, "--estimate"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert estimate.returncode == 0, estimate.stderr
    assert "total" in estimate.stdout and "gemini-tts" in estimate.stdout
    assert fake.requests == []
    made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert made.returncode == 0, made.stderr
    assert "agents: google (developer mode)" in made.stderr
    assert "clip generator" in made.stderr and "Vertex AI" in made.stderr
    assert KEY not in made.stderr + made.stdout
    path = Path(made.stdout.strip().splitlines()[-1])
    assert decode(path)["errors"] == "" and paid(fake)["speech"] == 3
    local = subprocess.run([*command, "--agents", "local"], env=env, capture_output=True,
                           text=True, timeout=300, check=False)
    assert local.returncode == 0 and "agents: local:" in local.stderr


def connections_to(port: int) -> list[Any]:
    """This process's open TCP connections to ``port`` on this machine."""
    process = psutil.Process()
    listing = getattr(process, "net_connections", None) or process.connections  # psutil < 6
    return [c for c in listing("tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED]


def test_each_sync_call_closes_the_connections_its_loop_opened(fake: FakeGemini,
                                                              tmp_path: Path) -> None:
    # google-genai pools connections per event loop; a loop that has ended cannot close
    # its pool, which would keep its sockets until the garbage collector found it
    made = generator(vertex(fake), tmp_path)
    port = int(fake.base_url.rsplit(":", 1)[1].split("/")[0])
    gc.collect()  # what earlier tests left to the collector warns before the window
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for topic in ("bees", "owls"):
            video = made.generate_sync(topic=topic, preset="draft")
            assert video.tiers == ("clip", "clip", "clip")
            assert connections_to(port) == []
            gc.collect()  # a socket to the fake left unclosed would warn now
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)
            and f", {port})" in str(w.message)] == []
    assert paid(fake)["script"] == 2  # the second call's loop opened a pool of its own


def cli_env(tmp_path: Path, base_url: str) -> dict[str, str]:
    return {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": base_url,
            "AVGEN_CACHE_DIR": str(tmp_path / "cache")}


def bees(tmp_path: Path) -> Path:
    script = tmp_path / "bees.md"
    script.write_text("# Bees\n\nBees dance. They tell the hive where flowers are.\n")
    return script


@pytest.mark.slow
def test_without_network_the_command_says_so_plainly(tmp_path: Path) -> None:
    with socket.socket() as probe_socket:  # a port nothing listens on: no network
        probe_socket.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe_socket.getsockname()[1]}"
    in_test_mode = ("import sys; from avgen.resilience import set_testing; set_testing(); "
                    "from avgen._cli import main; raise SystemExit(main(sys.argv[1:]))")
    made = subprocess.run(
        [sys.executable, "-c", in_test_mode, "make", "--script", str(bees(tmp_path)), "--out",
         str(tmp_path / "out")], env=cli_env(tmp_path, closed), cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False)
    err = made.stderr
    assert made.returncode == 1, err
    assert "cannot reach the service" in err
    assert "--agents local" in err  # what to do instead
    assert "UserWarning" not in err and "stamina" not in err and "Traceback" not in err
    warned = [line for line in err.splitlines() if "Veo clips need Vertex AI" in line]
    assert warned == ["avgen: warning: Veo clips need Vertex AI (developer mode; the Developer "
                      "API's own video models answer through its Interactions API, which avgen "
                      "does not call): every scene gets a still with Ken Burns motion instead"]
    assert err.count("retry: ") == 3  # avgen's own retry lines, one per retry
    assert KEY not in err + made.stdout


def test_the_command_shows_warnings_and_retries_once_each(
        fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    import stamina.instrumentation

    from avgen._cli import main

    for name, value in cli_env(tmp_path, fake.base_url).items():
        monkeypatch.setenv(name, value)
    fake.fail("script", "rate_limit", retry_after=1)
    hooks, handlers = stamina.instrumentation.get_on_retry_hooks(), logging.getLogger().handlers
    caplog.set_level(logging.DEBUG)
    gc.collect()  # what earlier tests left to the collector warns before, not in, the window
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        status = main(["make", "--script", str(bees(tmp_path)), "--preset", "draft", "--out",
                       str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 0, err
    assert escaped == []  # every warning went through the command's own output
    assert err.count("avgen: warning: Veo clips need Vertex AI") == 1
    assert err.count("retry: gemini-script") == 1 and "429" in err
    assert not [r for r in caplog.records if r.name == "stamina"]
    # what the command set up for itself is undone when it returns
    assert stamina.instrumentation.get_on_retry_hooks() == hooks
    assert logging.getLogger().handlers == handlers


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_ctrl_c_says_how_to_resume_the_session_it_made(fake: FakeGemini,
                                                       tmp_path: Path) -> None:
    fake.fail("script", "slow", seconds=600)  # the run waits on Google until interrupted
    # avgen as a terminal starts it, Ctrl-C included: a job a non-interactive shell starts
    # in the background (as a CI script may start the tests) hands SIGINT on ignored, and
    # Python keeps an ignored SIGINT ignored
    command = [sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGINT, "
               "signal.default_int_handler); from avgen._cli import main; sys.exit(main())",
               "make", "--script", str(bees(tmp_path)), "--out", str(tmp_path / "out")]
    with subprocess.Popen(command, env=cli_env(tmp_path, fake.base_url), cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        guard = threading.Timer(300, proc.kill)  # only so a broken run cannot hang the tests
        guard.start()
        try:
            assert proc.stderr is not None
            seen = []
            for line in proc.stderr:  # wait until the run has its session folder
                seen.append(line)
                if "session " in line:
                    break
            session = Path(seen[-1].split("session ", 1)[1].strip())
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate()
        finally:
            guard.cancel()
    assert proc.returncode == 130, "".join(seen) + rest
    assert f"avgen: interrupted; resume with `avgen resume {session}`" in rest
    assert "SESSION_DIR" not in rest
    assert manifest(session)["status"] == "interrupted"


def test_a_blocked_script_fails_the_run_with_the_reason(fake: FakeGemini,
                                                        tmp_path: Path) -> None:
    fake.fail("script", "safety_block")
    with pytest.raises(GenerationError, match="SAFETY") as failed:
        generator(vertex(fake), tmp_path).generate_sync(topic="something", preset="draft")
    assert failed.value.session is not None
    assert manifest(failed.value.session)["status"] == "failed"
    assert fake.count("speech") == 0


def test_cli_refuses_local_only_options_with_the_google_agents(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    from avgen._cli import main

    monkeypatch.setenv("GEMINI_API_KEY", KEY)
    status = main(["make", "--script", "-", "--images", "a.png", "--out", str(tmp_path)])
    assert status == 2
    assert "--agents local" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
