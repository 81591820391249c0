"""The google agents one by one, with the real google-genai SDK talking HTTP to FakeGemini."""

from __future__ import annotations

import asyncio
import json
import traceback
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from google import genai
from google.genai import types
from hypothesis import given
from hypothesis import strategies as st
from media import decode

from avgen._models import PRESETS, Preset, Scene, VideoRequest
from avgen.agents import AssetCache
from avgen.agents.google import (
    CATALOGUE,
    GeminiImages,
    GeminiNarrator,
    GeminiScriptWriter,
    GoogleConnection,
    google_agents,
)
from avgen.agents.google._catalogue import price_of
from avgen.agents.google._connection import RedactedError, credentials_present
from avgen.agents.google._images import aspect_ratio
from avgen.agents.google._narrator import pcm_rate
from avgen.costs import Ledger
from avgen.errors import (
    AgentError,
    BudgetExceeded,
    ConfigurationError,
    ContentRejected,
    RateLimited,
    ServiceUnavailable,
    UsageError,
)

KEY = "AIzaFAKE-test-key-0123456789abcdef"
SCENE = Scene(index=0, narration="A bee dances.", visual="a honeybee dancing on a comb",
              title="Dance")


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def developer(fake: FakeGemini, **options: Any) -> GoogleConnection:
    return GoogleConnection.from_env({"GEMINI_API_KEY": KEY}, base_url=fake.base_url, **options)


def vertex(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                      "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- connection ---------------------------------------------------------------------------


def test_modes_come_from_the_environment(fake: FakeGemini) -> None:
    from google.oauth2.credentials import Credentials

    assert developer(fake).mode == "developer"
    assert vertex(fake).mode == "vertex"
    project = GoogleConnection.from_env(
        {"GOOGLE_GENAI_USE_VERTEXAI": "1", "GOOGLE_CLOUD_PROJECT": "p",
         "GOOGLE_CLOUD_LOCATION": "europe-west4"}, base_url=fake.base_url,
        credentials=Credentials(token="ya29.secret-token-abcdefghijkl"))
    assert project.mode == "vertex" and "europe-west4" in project.describe()
    run(GeminiImages(project).generate(SCENE, PRESETS["square"], fake_path(fake)))
    call = fake.calls("image")[-1]
    assert "/projects/p/locations/europe-west4/" in call.path
    assert call.headers["authorization"] == "Bearer ya29.secret-token-abcdefghijkl"
    assert "ya29" not in repr(project) and project.redact("t ya29.secret-token-abcdefghijkl") \
        == "t [redacted]"


def fake_path(fake: FakeGemini, name: str = "x.png") -> Path:
    import tempfile

    return Path(tempfile.mkdtemp()) / name


def test_developer_key_goes_in_a_header_and_never_in_a_repr(fake: FakeGemini) -> None:
    connection = developer(fake)
    writer = GeminiScriptWriter(connection)
    run(writer.write(VideoRequest(topic="bees")))
    request = fake.calls("script")[0]
    assert request.headers["x-goog-api-key"] == KEY
    assert KEY not in request.path and KEY not in json.dumps(request.query)
    for text in (repr(connection), repr(writer), connection.describe()):
        assert KEY not in text
    assert connection.redact(f"key={KEY}!") == "key=[redacted]!"


def test_no_credentials_is_a_clear_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="GEMINI_API_KEY"):
        GoogleConnection.from_env({})
    with pytest.raises(ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true"})
    assert not credentials_present({})
    assert credentials_present({"GEMINI_API_KEY": "k"})
    assert not credentials_present({"GOOGLE_GENAI_USE_VERTEXAI": "true"})
    assert credentials_present({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                "GOOGLE_CLOUD_PROJECT": "p"})


def test_the_test_guard_refuses_real_google_endpoints() -> None:
    with pytest.raises(ConfigurationError, match="blocked"):
        GoogleConnection.from_env({"GEMINI_API_KEY": KEY})
    with pytest.raises(ConfigurationError, match="blocked"):
        GoogleConnection.from_env({"GEMINI_API_KEY": KEY},
                                  base_url="https://example.com")


def test_a_client_with_sdk_retries_is_refused(fake: FakeGemini) -> None:
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=fake.base_url, retry_options=types.HttpRetryOptions(attempts=3)))
    with pytest.raises(UsageError, match="retry_options"):
        GoogleConnection.from_client(client)
    plain = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.base_url))
    connection = GoogleConnection.from_client(plain)
    assert connection.mode == "developer" and connection.redact(KEY) == "[redacted]"
    with pytest.raises(UsageError, match="client"):
        GoogleConnection.from_client(object())


def test_errors_map_onto_the_avgen_tree(fake: FakeGemini) -> None:
    writer = GeminiScriptWriter(developer(fake))
    fake.fail("script", "rate_limit", retry_after=7)
    with pytest.raises(RateLimited) as limited:
        run(writer.write(VideoRequest(topic="bees")))
    assert limited.value.retry_after == 7
    fake.fail("script", "server_error", status=503)
    with pytest.raises(ServiceUnavailable, match="503"):
        run(writer.write(VideoRequest(topic="bees")))
    slow = GeminiScriptWriter(developer(fake, timeout=0.3))
    fake.fail("script", "slow", seconds=3)
    with pytest.raises(ServiceUnavailable, match="in time"):
        run(slow.write(VideoRequest(topic="bees")))


@pytest.mark.parametrize("via", ["header", "retry_info"])
def test_the_delay_of_a_429_or_a_503_survives_translation(fake: FakeGemini, via: str) -> None:
    writer = GeminiScriptWriter(developer(fake))
    fake.fail("script", "rate_limit", retry_after=7, via=via)
    with pytest.raises(RateLimited) as limited:
        run(writer.write(VideoRequest(topic="bees")))
    assert limited.value.retry_after == 7
    fake.fail("script", "server_error", status=503, retry_after=9, via=via)
    with pytest.raises(ServiceUnavailable) as down:
        run(writer.write(VideoRequest(topic="bees")))
    assert down.value.retry_after == 9 and "retry after 9 s" in str(down.value)
    fake.fail("script", "server_error", status=500)
    with pytest.raises(ServiceUnavailable) as down:
        run(writer.write(VideoRequest(topic="bees")))
    assert down.value.retry_after is None


def chain(error: BaseException) -> list[BaseException]:
    """``error`` and every error chained to it (causes and contexts)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [error]
    while todo:
        link = todo.pop()
        if link is not None and all(link is not s for s in seen):
            seen.append(link)
            todo += [link.__cause__, link.__context__]
    return seen


@pytest.mark.parametrize(("fault", "options", "expected"), [
    ("refused", {"status": 403}, AgentError),
    ("refused", {"status": 401, "message": "bad credentials {key}"}, AgentError),
    ("rate_limit", {"message": "Quota exceeded for consumer 'api_key:{key}'."}, RateLimited),
    ("server_error", {"status": 500, "message": "Internal error for {key}."},
     ServiceUnavailable),
])
def test_no_key_in_a_traceback(fake: FakeGemini, tmp_path: Path, fault: str,
                               options: dict[str, Any], expected: type[Exception]) -> None:
    from google.genai import errors

    fake.fail("speech", fault, **options)
    with pytest.raises(expected) as caught:
        run(GeminiNarrator(developer(fake)).speak("Hello.", tmp_path / "a.wav"))
    error = caught.value
    printed = "".join(traceback.format_exception(error))
    assert fake.calls("speech")[0].headers["x-goog-api-key"] == KEY  # the key was sent
    assert KEY not in printed and KEY not in repr(error)
    assert "[redacted]" in printed  # the service's answer did echo it
    # the SDK's error is not chained (its response holds the request and its key header);
    # a scrubbed stand-in with its traceback is, so the traceback shows where it failed
    links = chain(error)
    assert not any(isinstance(link, errors.APIError) for link in links)
    [stand_in] = [link for link in links if isinstance(link, RedactedError)]
    assert stand_in.original_type.startswith("google.genai.errors.")
    assert stand_in.__traceback__ is not None and "google/genai" in printed


# -- script -------------------------------------------------------------------------------


def test_script_follows_the_request_and_is_charged_by_tokens(fake: FakeGemini) -> None:
    writer = GeminiScriptWriter(developer(fake))
    request = VideoRequest(topic="the water cycle", duration=30, preset="shorts")
    with Ledger().step() as charges:
        script = run(writer.write(request))
    assert [s.narration for s in script.scenes] == [s["narration"] for s in
                                                    fake.script["scenes"]]
    assert script.title == fake.script["title"]
    assert all(s.duration_hint == 6 for s in script.scenes)
    body = fake.calls("script")[0].body
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert "scenes" in json.dumps(config["responseSchema"])
    prompt = fake.calls("script")[0].prompt or ""
    assert "30 seconds" in prompt and "vertical" in prompt and "the water cycle" in prompt
    [charge] = charges
    price = price_of(CATALOGUE.default("text", "developer"))
    usage = fake.calls("script")[0]
    assert charge.unit == "token" and charge.usd > 0
    assert charge.usd == pytest.approx(price.tokens(charge.quantity, 0), rel=10) and usage


def test_script_keeps_a_given_script_and_strips_markup(fake: FakeGemini) -> None:
    fake.script = {"title": "Bees", "scenes": [
        {"title": "One", "narration": "**Bees** dance. [music swells]", "visual": "bees",
         "seconds": 5},
        {"narration": "NARRATOR: They _talk_ with their bodies.", "visual": "", "seconds": 7}]}
    writer = GeminiScriptWriter(developer(fake))
    script = run(writer.write(VideoRequest(script="Bees dance. They talk with their bodies.")))
    assert [s.narration for s in script.scenes] == ["Bees dance.",
                                                    "They talk with their bodies."]
    assert script.scenes[1].visual == "They talk with their bodies."  # empty → narration
    prompt = fake.calls("script")[0].prompt or ""
    assert "exactly as given" in prompt and "Bees dance. They talk" in prompt


@pytest.mark.parametrize("fault", ["malformed_json", "wrong_shape"])
def test_a_bad_answer_is_asked_again_with_the_problem(fake: FakeGemini, fault: str) -> None:
    fake.fail("script", fault)
    script = run(GeminiScriptWriter(developer(fake)).write(VideoRequest(topic="bees")))
    assert len(script.scenes) == 3
    first, second = fake.calls("script")
    assert first.status == 200 and "rejected" not in (first.prompt or "")
    assert "previous answer was rejected" in (second.prompt or "")


def test_bad_answers_stop_after_the_attempts_with_a_clear_error(fake: FakeGemini) -> None:
    fake.fail("script", "malformed_json", times=5)
    writer = GeminiScriptWriter(developer(fake), attempts=2)
    with Ledger().step() as charges, pytest.raises(AgentError, match="no valid script after 2"):
        run(writer.write(VideoRequest(topic="bees")))
    assert fake.count("script") == 2
    assert len(charges) == 2  # each answer was paid for


@pytest.mark.parametrize("fault", ["safety_block", "filtered"])
def test_a_blocked_script_is_content_rejected(fake: FakeGemini, fault: str) -> None:
    fake.fail("script", fault)
    with pytest.raises(ContentRejected) as rejected:
        run(GeminiScriptWriter(developer(fake)).write(VideoRequest(topic="bees")))
    assert rejected.value.reason == "SAFETY"
    assert fake.count("script") == 1


def test_the_same_script_request_is_served_from_the_cache(fake: FakeGemini,
                                                          cache_dir: Path) -> None:
    request = VideoRequest(topic="bees", duration=20)
    first = run(GeminiScriptWriter(developer(fake), cache=AssetCache(cache_dir)).write(request))
    with Ledger().step() as charges:
        again = run(GeminiScriptWriter(developer(fake), cache=AssetCache(cache_dir))
                    .write(request))
    assert again == first and fake.count("script") == 1 and charges == []
    run(GeminiScriptWriter(developer(fake), cache=AssetCache(cache_dir))
        .write(VideoRequest(topic="wasps", duration=20)))
    assert fake.count("script") == 2


# -- narration ----------------------------------------------------------------------------


def test_speech_is_a_measured_wav_in_the_chosen_voice(fake: FakeGemini, tmp_path: Path) -> None:
    narrator = GeminiNarrator(developer(fake), voice="puck")
    text = "Bees dance in the dark. The others feel the steps and learn the way."
    with Ledger().step() as charges:
        asset = run(narrator.speak(text, tmp_path / "a.wav", voice="Charon"))
    with wave.open(str(tmp_path / "a.wav")) as wav:
        assert wav.getframerate() == 24000 and wav.getnchannels() == 1
        assert asset.duration == pytest.approx(wav.getnframes() / 24000)
    assert asset.duration == pytest.approx(len(text) * fake.speech_seconds_per_char, abs=0.05)
    assert fake.calls("speech")[0].voice == "Charon"
    assert [s.text for s in asset.segments] == ["Bees dance in the dark.",
                                                "The others feel the steps and learn the way."]
    assert asset.segments[-1].end == pytest.approx(asset.duration)
    [charge] = charges
    assert charge.unit == "audio_second" and charge.quantity == pytest.approx(asset.duration,
                                                                              abs=1e-3)
    decoded = decode(tmp_path / "a.wav")
    assert decoded["errors"] == "" and decoded["audio_duration"] == pytest.approx(
        asset.duration, abs=0.01)


def test_long_narration_is_split_at_sentence_boundaries(fake: FakeGemini,
                                                        tmp_path: Path) -> None:
    sentences = [f"Sentence number {n} tells a little more about the hive." for n in range(12)]
    narrator = GeminiNarrator(developer(fake), max_chars=120)
    asset = run(narrator.speak(" ".join(sentences), tmp_path / "long.wav"))
    spoken = [call.prompt or "" for call in fake.calls("speech")]
    assert len(spoken) >= 6 and all(len(text) <= 120 for text in spoken)
    assert " ".join(spoken) == " ".join(sentences)  # whole sentences, in order
    expected = sum(max(0.5, len(t) * fake.speech_seconds_per_char) for t in spoken)
    assert asset.duration == pytest.approx(expected, abs=0.05)
    assert len(asset.segments) == 12


def test_unknown_voices_are_refused_before_any_call(fake: FakeGemini) -> None:
    with pytest.raises(UsageError, match="voice"):
        GeminiNarrator(developer(fake), voice="Joe")
    narrator = GeminiNarrator(developer(fake))
    with pytest.raises(UsageError, match="Kore"):
        narrator.check(VideoRequest(script="Hi.", voice="robot"))
    assert fake.requests == []


def test_blocked_narration_is_content_rejected(fake: FakeGemini, tmp_path: Path) -> None:
    fake.fail("speech", "safety_block")
    with pytest.raises(ContentRejected, match="SAFETY"):
        run(GeminiNarrator(developer(fake)).speak("Hello.", tmp_path / "a.wav"))


@given(st.integers(min_value=8000, max_value=96000))
def test_the_sample_rate_is_read_from_the_mime_type(rate: int) -> None:
    assert pcm_rate(f"audio/L16;codec=pcm;rate={rate}") == rate
    assert pcm_rate("audio/L16") == 24000


# -- stills -------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["developer", "vertex"])
@pytest.mark.parametrize(("preset", "ratio"), [("shorts", "9:16"), ("youtube", "16:9"),
                                               ("square", "1:1")])
def test_stills_ask_for_the_presets_shape(fake: FakeGemini, tmp_path: Path, preset: str,
                                          ratio: str, surface: str) -> None:
    connection = developer(fake) if surface == "developer" else vertex(fake)
    asset = run(GeminiImages(connection).generate(SCENE, PRESETS[preset], tmp_path / "i.png"))
    call = fake.calls("image")[0]
    assert call.status == 200
    assert call.body["generationConfig"]["imageConfig"]["aspectRatio"] == ratio
    assert "honeybee" in (call.prompt or "")
    info = decode(tmp_path / "i.png")
    assert info["errors"] == "" and (info["width"], info["height"]) == (asset.width,
                                                                          asset.height)
    w, h = (int(x) for x in ratio.split(":"))
    assert asset.width / asset.height == pytest.approx(w / h, rel=0.05)


RATIOS = ("1:1", "1:4", "1:8", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16",
          "16:9", "21:9")


@given(st.integers(32, 2048).map(lambda n: 2 * n), st.integers(32, 2048).map(lambda n: 2 * n),
       st.lists(st.sampled_from(RATIOS), min_size=1, unique=True))
def test_aspect_ratio_is_the_nearest_offered(width: int, height: int,
                                             offered: list[str]) -> None:
    chosen = aspect_ratio(Preset("p", width, height), tuple(offered))
    assert chosen in offered
    w, h = (int(x) for x in chosen.split(":"))
    ratio = width / height
    for option in offered:
        a, b = (int(x) for x in option.split(":"))
        assert abs(w / h - ratio) <= abs(a / b - ratio) + 1e-12


def test_a_filtered_still_is_content_rejected_with_the_reason(fake: FakeGemini,
                                                              tmp_path: Path) -> None:
    fake.fail("image", "filtered")
    with Ledger().step() as charges, pytest.raises(ContentRejected) as rejected:
        run(GeminiImages(vertex(fake)).generate(SCENE, PRESETS["shorts"], tmp_path / "i.png"))
    assert rejected.value.reason and charges == []


def test_gemini_images_work_in_developer_mode(fake: FakeGemini, tmp_path: Path) -> None:
    asset = run(GeminiImages(developer(fake)).generate(SCENE, PRESETS["shorts"],
                                                        tmp_path / "g.png"))
    assert asset.height > asset.width
    config = fake.calls("image")[0].body["generationConfig"]
    assert config["responseModalities"] == ["IMAGE"]
    fake.fail("image", "filtered")
    with pytest.raises(ContentRejected):
        run(GeminiImages(developer(fake)).generate(SCENE, PRESETS["shorts"], tmp_path / "h.png"))


@pytest.mark.parametrize("surface", ["developer", "vertex"])
def test_imagen_is_refused_up_front_naming_its_replacement(fake: FakeGemini,
                                                           surface: str) -> None:
    connection = developer(fake) if surface == "developer" else vertex(fake)
    with pytest.raises(UsageError, match="shut down") as refused:
        google_agents(connection, cache=False, image_model="imagen-4.0-fast-generate-001")
    assert refused.value.field == "image_model"
    assert "2026-08-17" in str(refused.value)
    assert ("gemini-nano-banana-2.1" if surface == "developer"
            else "gemini-3.1-flash-image") in str(refused.value)
    assert fake.requests == []


def test_the_budget_stops_a_still_before_it_is_asked_for(fake: FakeGemini,
                                                         tmp_path: Path) -> None:
    images = GeminiImages(vertex(fake))
    with Ledger(budget=0.01).step(), pytest.raises(BudgetExceeded) as stopped:
        run(images.generate(SCENE, PRESETS["shorts"], tmp_path / "i.png"))
    assert fake.count("image") == 0
    assert stopped.value.price == pytest.approx(images.price.per_image)
    assert images.price.per_image > 0.01
    assert stopped.value.budget == 0.01


# -- the family ---------------------------------------------------------------------------


def test_developer_mode_gets_stills_and_says_why(fake: FakeGemini) -> None:
    with pytest.warns(UserWarning, match="Vertex AI"):
        agents = google_agents(developer(fake), cache=False)
    assert agents.clip_generator is None
    assert isinstance(agents.image_generator, GeminiImages)
    with pytest.raises(UsageError, match="clips"):
        google_agents(developer(fake), clips=True)


def test_vertex_mode_gets_veo_clips_and_gemini_stills(fake: FakeGemini) -> None:
    agents = google_agents(vertex(fake), cache=False)
    assert agents.clip_generator is not None
    assert agents.names()["clip_generator"] == "veo:veo-3.1-fast-generate-001"
    assert isinstance(agents.image_generator, GeminiImages)
    with pytest.raises(UsageError, match="model"):
        google_agents(vertex(fake), cache=False, video_model="sora-2")
    with pytest.raises(UsageError, match="price"):
        google_agents(vertex(fake), cache=False, script_model="claude-9")


def test_a_generator_closes_the_connection_it_was_given_agents_on(fake: FakeGemini) -> None:
    from avgen import VideoGenerator
    from avgen.agents.google import google_agents

    connection = developer(fake)
    with VideoGenerator(google_agents(connection, clips=False)) as generator:
        run(generator.agents.script_writer.write(VideoRequest(topic="bees")))
    assert connection.closed
    with pytest.raises(RuntimeError, match="closed"):  # the SDK refuses a closed client
        connection.client.models.generate_content(model="gemini-3.8-flash", contents="hi")

    async def async_use() -> GoogleConnection:
        opened = developer(fake)
        async with VideoGenerator(google_agents(opened, clips=False)) as generator:
            await generator.agents.script_writer.write(VideoRequest(topic="bees"))
        return opened

    assert run(async_use()).closed


def test_a_client_you_made_stays_open_when_the_connection_closes(fake: FakeGemini) -> None:
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.base_url))
    with GoogleConnection.from_client(client) as connection:
        run(GeminiScriptWriter(connection).write(VideoRequest(topic="bees")))
    assert connection.closed
    run(GeminiScriptWriter(GoogleConnection.from_client(client)).write(
        VideoRequest(topic="ants")))  # still usable
    assert len(fake.calls("script")) == 2


def test_file_work_in_a_thread_runs_to_its_end_when_its_caller_is_cancelled() -> None:
    import threading

    from avgen._threads import through_thread

    release, kept = threading.Event(), []

    def keep(value: str) -> str:
        assert release.wait(60), "the test never released the work"
        kept.append(value)
        return value

    async def run() -> None:
        release.set()
        assert await through_thread(keep, "first") == "first"
        release.clear()
        task = asyncio.ensure_future(through_thread(keep, "second"))
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        for _ in range(20):
            await asyncio.sleep(0)
        assert not task.done()  # cancelled, it waits for the copy it started
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert kept == ["first", "second"]

    asyncio.run(run())
