"""The fake Gemini / Vertex server, checked with the real google-genai SDK over real HTTP.

Nothing is mocked: each test builds a `genai.Client` pointed at `FakeGemini`, and the media
that comes back is decoded with ffmpeg.
"""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import time
import warnings
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import google.oauth2.credentials
import httpx2
import pytest
from fake_gemini import FAULTS, SPEECH_MIME, FakeGemini, make_png
from google import genai
from google.genai import errors, types
from media import decode
from pydantic import BaseModel

from avgen.agents.google import CATALOGUE

MODEL = CATALOGUE.default("text", "developer")
TTS = CATALOGUE.default("speech", "developer")
IMAGE_MODEL = CATALOGUE.default("image", "developer")
VERTEX_IMAGE_MODEL = CATALOGUE.default("image", "vertex")
IMAGEN = "imagen-4.0-generate-001"
VEO = CATALOGUE.default("video", "vertex")
OLD_TTS = "gemini-2.5-flash-preview-tts"
"""A speech model that answers raw PCM, served on the Developer API until 2026-12-18."""
BEFORE = datetime.date(2026, 11, 1)
"""A day on which `OLD_TTS` and Google's 2.5 models still answered."""


class Scene(BaseModel):
    title: str
    narration: str
    visual: str
    seconds: int


class Script(BaseModel):
    title: str
    scenes: list[Scene]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT",
                 "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_API_VERSION",
                 "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server
    assert server.errors == []


def developer(fake: FakeGemini, timeout: int | None = None) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(
        base_url=fake.base_url, api_version="v1beta", timeout=timeout))


def express(fake: FakeGemini) -> genai.Client:
    return genai.Client(vertexai=True, api_key="test-key",
                        http_options=types.HttpOptions(base_url=fake.base_url))


def project(fake: FakeGemini) -> genai.Client:
    creds = google.oauth2.credentials.Credentials(token="test-token")  # type: ignore[no-untyped-call]
    return genai.Client(vertexai=True, project="p", location="us-central1", credentials=creds,
                        http_options=types.HttpOptions(base_url=fake.base_url))


Mode = Callable[[FakeGemini], genai.Client]
MODES: dict[str, tuple[Mode, str]] = {
    "developer": (developer, "/v1beta/models/"),
    "express": (express, "/v1beta1/publishers/google/models/"),
    "project": (project, "/v1beta1/projects/p/locations/us-central1/publishers/google/models/"),
}
VERTEX = ["express", "project"]


def script_config() -> types.GenerateContentConfig:
    return types.GenerateContentConfig(response_mime_type="application/json",
                                       response_schema=Script)


def speech_config(voice: str = "Kore") -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_modalities=["AUDIO"],
        speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice))))


def generate_images(client: genai.Client, prompt: str,
                    aspect: str = "1:1") -> types.GenerateImagesResponse:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # generate_images is marked deprecated in 3.x
        response: types.GenerateImagesResponse = client.models.generate_images(
            model=IMAGEN, prompt=prompt, config=types.GenerateImagesConfig(aspect_ratio=aspect))
    return response


def submit_veo(client: genai.Client, prompt: str, seconds: int = 4, aspect: str = "9:16",
               **config: object) -> types.GenerateVideosOperation:
    return client.models.generate_videos(
        model=VEO, source=types.GenerateVideosSource(prompt=prompt),
        config=types.GenerateVideosConfig(duration_seconds=seconds, aspect_ratio=aspect,
                                          **config))  # type: ignore[arg-type]


def wait(client: genai.Client, op: types.GenerateVideosOperation,
         limit: int = 10) -> types.GenerateVideosOperation:
    for _ in range(limit):
        if op.done:
            return op
        op = client.operations.get(op)
    raise AssertionError(f"operation {op.name} not done after {limit} polls")


def media_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pcm_to_wav(path: Path, pcm: bytes, rate: int) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path


# ------------------------------------------------------------------------- generateContent


@pytest.mark.parametrize("mode", list(MODES))
def test_script_in_every_mode(fake: FakeGemini, mode: str) -> None:
    make, prefix = MODES[mode]
    client = make(fake)  # keep a reference: a garbage-collected Client closes its transport
    response = client.models.generate_content(
        model=MODEL, contents="Explain the water cycle", config=script_config())
    assert isinstance(response.parsed, Script)
    assert response.parsed.title == "The Water Cycle"
    assert [s.seconds for s in response.parsed.scenes] == [6, 6, 6]
    assert all(s.narration.count(". ") == 1 for s in response.parsed.scenes)
    assert response.text == json.dumps(fake.script)
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    [call] = fake.calls()
    assert (call.method, call.path, call.kind, call.status) == (
        "POST", f"{prefix}{MODEL}:generateContent", "script", 200)
    assert call.prompt == "Explain the water cycle" and not call.has_image
    assert call.body["generationConfig"]["responseMimeType"] == "application/json"
    assert "responseSchema" in call.body["generationConfig"]
    if mode == "project":
        assert call.headers["authorization"] == "Bearer test-token"
        assert "x-goog-api-key" not in call.headers
    else:
        assert call.headers["x-goog-api-key"] == "test-key"
        assert "authorization" not in call.headers


def test_script_is_what_the_test_sets(fake: FakeGemini) -> None:
    fake.script = {"title": "Volcanoes", "scenes": [
        {"title": "Magma", "narration": "Hot rock rises. It melts.", "visual": "lava",
         "seconds": 4}]}
    client = developer(fake)
    parsed = client.models.generate_content(
        model=MODEL, contents="volcanoes", config=script_config()).parsed
    assert isinstance(parsed, Script)
    assert parsed.title == "Volcanoes" and len(parsed.scenes) == 1


def test_plain_text_and_stream(fake: FakeGemini) -> None:
    client = developer(fake)
    response = client.models.generate_content(model=MODEL, contents="Say hello")
    assert response.text is not None and "Say hello" in response.text
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Stream it"))
    assert "Stream it" in "".join(c.text or "" for c in chunks)
    assert [c.kind for c in fake.calls()] == ["text", "text"]
    assert fake.calls()[1].path.endswith(":streamGenerateContent")
    assert fake.calls()[1].query == {"alt": "sse"}


@pytest.mark.parametrize("mode", ["developer", "project"])
def test_speech_is_a_wav_of_the_text_length(fake: FakeGemini, mode: str) -> None:
    text = "The sun warms the ocean every day. Water rises into the air."
    client = MODES[mode][0](fake)
    response = client.models.generate_content(
        model=TTS, contents=text, config=speech_config("Puck"))
    assert response.candidates
    content = response.candidates[0].content
    assert content is not None and content.parts
    blob = content.parts[0].inline_data
    assert blob is not None and blob.data is not None
    assert blob.mime_type == "audio/wav" and blob.data[:4] == b"RIFF"
    with wave.open(io.BytesIO(blob.data), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() == round(len(text) * 0.04 * 24000)
    [call] = fake.calls("speech")
    assert call.voice == "Puck" and call.prompt == text
    assert response.usage_metadata is not None and response.usage_metadata.total_token_count


def test_older_speech_is_pcm_of_the_text_length(tmp_path: Path) -> None:
    text = "The sun warms the ocean every day. Water rises into the air."
    with FakeGemini(today=BEFORE) as fake:
        client = developer(fake)
        response = client.models.generate_content(
            model=OLD_TTS, contents=text, config=speech_config("Puck"))
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts
    assert parts and parts[0].inline_data and parts[0].inline_data.data
    blob = parts[0].inline_data
    assert blob.mime_type == SPEECH_MIME == "audio/L16;codec=pcm;rate=24000"
    seconds = len(text) * 0.04
    assert blob.data is not None and len(blob.data) == 2 * round(seconds * 24000)
    decoded = decode(pcm_to_wav(tmp_path / "speech.wav", blob.data, 24000))
    assert decoded["errors"] == "" and decoded["has_audio"] and not decoded["has_video"]
    assert decoded["audio_duration"] == pytest.approx(seconds, abs=0.01)


def test_short_speech_lasts_half_a_second() -> None:
    with FakeGemini(speech_seconds_per_char=0.01) as fake:
        client = developer(fake)
        response = client.models.generate_content(
            model=TTS, contents="Hi.", config=speech_config())
        assert response.candidates and response.candidates[0].content
        parts = response.candidates[0].content.parts
        assert parts and parts[0].inline_data and parts[0].inline_data.data
        data = parts[0].inline_data.data
        with wave.open(io.BytesIO(data), "rb") as wav:
            assert wav.getnframes() == 12_000
        assert fake.calls("speech")[0].voice == "Kore"


@pytest.mark.parametrize(("aspect", "size"), [("9:16", (90, 160)), ("16:9", (160, 90))])
def test_gemini_image_has_the_aspect_asked(fake: FakeGemini, tmp_path: Path, aspect: str,
                                           size: tuple[int, int]) -> None:
    client = developer(fake)
    response = client.models.generate_content(
        model=IMAGE_MODEL, contents="A lighthouse at dusk",
        config=types.GenerateContentConfig(response_modalities=["IMAGE"],
                                           image_config=types.ImageConfig(aspect_ratio=aspect)))
    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts
    assert parts and parts[0].inline_data and parts[0].inline_data.data
    assert parts[0].inline_data.mime_type == "image/png"
    decoded = decode(media_file(tmp_path, "still.png", parts[0].inline_data.data))
    assert decoded["errors"] == "" and (decoded["width"], decoded["height"]) == size
    # An input image is noticed (image editing).
    edit: list[types.PartUnionDict] = [
        types.Part.from_bytes(data=parts[0].inline_data.data, mime_type="image/png"),
        "Make it night"]
    client.models.generate_content(model=IMAGE_MODEL, contents=edit)
    first, second = fake.calls()
    assert (first.kind, first.has_image) == ("image", False)
    assert (second.kind, second.has_image, second.prompt) == ("image", True, "Make it night")


# ---------------------------------------------------------------- which models are served


@pytest.mark.parametrize("mode", VERTEX)
def test_imagen_is_shut_down_on_vertex(fake: FakeGemini, mode: str) -> None:
    make, prefix = MODES[mode]
    with pytest.raises(errors.ClientError) as caught:
        generate_images(make(fake), "A red fox")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert str(caught.value.message).startswith("Publisher Model `")
    assert IMAGEN in str(caught.value.message)
    [call] = fake.calls()
    assert (call.kind, call.path, call.status) == ("imagen", f"{prefix}{IMAGEN}:predict", 404)


def test_retired_and_unknown_models_get_googles_404(fake: FakeGemini) -> None:
    client = developer(fake)
    with pytest.raises(errors.ClientError) as retired:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (retired.value.code, retired.value.status) == (404, "NOT_FOUND")
    assert "models/gemini-2.5-flash is no longer available" in str(retired.value.message)
    with pytest.raises(errors.ClientError) as unknown:
        client.models.generate_content(model="gemini-99-flash", contents="hi")
    assert unknown.value.code == 404
    assert str(unknown.value.message).startswith(
        "models/gemini-99-flash is not found for API version v1beta, or is not supported "
        "for generateContent.")
    with pytest.raises(errors.ClientError) as vertex_only:  # Veo is not a generateContent model
        client.models.generate_content(model=VEO, contents="hi")
    assert vertex_only.value.code == 404
    vertex = project(fake)
    with pytest.raises(errors.ClientError) as on_vertex:
        vertex.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert on_vertex.value.code == 404 and "Publisher Model `projects/p/locations/" \
        "us-central1/publishers/google/models/gemini-2.5-flash`" in str(on_vertex.value.message)
    assert [c.status for c in fake.calls()] == [404, 404, 404, 404]


def test_the_fakes_date_decides_what_it_serves() -> None:
    with FakeGemini(today=BEFORE) as fake:
        client = developer(fake)
        assert client.models.generate_content(model="gemini-2.5-flash", contents="hi").text
    with FakeGemini(today=datetime.date(2026, 12, 1)) as fake:  # its shutdown day
        client = developer(fake)
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model="gemini-2.5-flash", contents="hi")


@pytest.mark.parametrize("mode", ["developer", "express"])
def test_models_list_names_the_models_served_today(fake: FakeGemini, mode: str) -> None:
    client = MODES[mode][0](fake)
    listed = [m.name or "" for m in client.models.list(config={"page_size": 3})]
    names = {name.rsplit("/", 1)[-1] for name in listed}
    if mode == "developer":
        assert {MODEL, TTS, IMAGE_MODEL} <= names and VEO not in names
        assert all(name.startswith("models/") for name in listed)
    else:
        assert {MODEL, TTS, VERTEX_IMAGE_MODEL, VEO} <= names
        assert IMAGE_MODEL not in names
        assert all(name.startswith("publishers/google/models/") for name in listed)
    assert not names & {"gemini-2.5-flash", IMAGEN, "veo-2.0-generate-001"}
    assert len(names) == len(listed) and len(fake.calls("models")) > 1  # paged


@pytest.mark.parametrize(("config", "words"), [
    ({"seconds": 5}, "duration 5 seconds"),
    ({"resolution": "480p"}, "resolution: 480p"),
    ({"seconds": 4, "resolution": "1080p"}, "must be 8 seconds"),
    ({"reference_images": [types.VideoGenerationReferenceImage(
        image=types.Image(image_bytes=make_png(8, 8), mime_type="image/png"),
        reference_type=types.VideoGenerationReferenceType.ASSET)]},
     "use case is currently not supported"),
])
def test_veo_refuses_what_the_model_does_not_take(fake: FakeGemini, config: dict[str, object],
                                                   words: str) -> None:
    client = project(fake)
    with pytest.raises(errors.ClientError) as caught:
        submit_veo(client, "Waves", **config)  # type: ignore[arg-type]
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert words in str(caught.value.message)
    assert fake.operations == {}


def test_generate_content_refuses_what_the_model_does_not_take(fake: FakeGemini) -> None:
    client = developer(fake)
    refusals = [
        (MODEL, speech_config(), "response modalities (AUDIO)"),
        (TTS, None, "response modalities (TEXT)"),
        (MODEL, types.GenerateContentConfig(temperature=0.7), "temperature"),
        (TTS, types.GenerateContentConfig(response_modalities=["AUDIO"], temperature=0.3),
         "temperature"),
        (IMAGE_MODEL, types.GenerateContentConfig(
            response_modalities=["IMAGE"], image_config=types.ImageConfig(aspect_ratio="7:3")),
         "aspect ratio"),
    ]
    for model, config, words in refusals:
        with pytest.raises(errors.ClientError) as caught:
            client.models.generate_content(model=model, contents="hi", config=config)
        assert caught.value.code == 400 and words in str(caught.value.message), model


def test_developer_mode_cannot_call_imagen_or_veo(fake: FakeGemini) -> None:
    client = developer(fake)
    with pytest.raises(ValueError, match="only supported in"):
        generate_images(client, "A red fox")
    with pytest.raises(ValueError, match="only supported in"):
        submit_veo(client, "waves")
    assert fake.calls() == []


# ------------------------------------------------------------------------------------- Veo


@pytest.mark.parametrize("mode", VERTEX)
def test_veo_inline_after_polls(mode: str, tmp_path: Path) -> None:
    make, prefix = MODES[mode]
    with FakeGemini(polls_until_done=2) as fake:
        client = make(fake)
        op = submit_veo(client, "Waves on a beach", seconds=4, aspect="9:16")
        assert op.name and op.name.startswith(prefix.split("/", 2)[2] + VEO + "/operations/")
        assert not op.done
        op = client.operations.get(op)
        assert not op.done and op.response is None
        op = client.operations.get(op)
        assert op.done and op.error is None
        assert op.response and op.response.generated_videos
        video = op.response.generated_videos[0].video
        assert video is not None and video.video_bytes and video.mime_type == "video/mp4"
        assert video.uri is None
        decoded = decode(media_file(tmp_path, "clip.mp4", video.video_bytes))
        assert decoded["errors"] == "" and decoded["has_video"] and decoded["has_audio"]
        assert (decoded["width"], decoded["height"]) == (144, 256)
        assert decoded["fps"] == 24 and decoded["frames"] == 96
        submit, poll1, poll2 = fake.calls()
        assert [c.kind for c in (submit, poll1, poll2)] == ["veo", "poll", "poll"]
        assert submit.path == f"{prefix}{VEO}:predictLongRunning"
        assert submit.body["parameters"] == {"durationSeconds": 4, "aspectRatio": "9:16"}
        assert poll1.path == f"{prefix}{VEO}:fetchPredictOperation"
        assert poll1.body == {"operationName": op.name} and poll2.prompt == "Waves on a beach"
        [stored] = fake.operations.values()
        assert (stored.name, stored.duration_seconds, stored.aspect_ratio, stored.polls) == (
            op.name, 4, "9:16", 2)


def test_veo_image_to_video_landscape_without_audio(fake: FakeGemini, tmp_path: Path) -> None:
    client = project(fake)
    op = client.models.generate_videos(
        model=VEO, source=types.GenerateVideosSource(
            prompt="The boats drift", image=types.Image(image_bytes=make_png(160, 90),
                                                        mime_type="image/png")),
        config=types.GenerateVideosConfig(duration_seconds=4, aspect_ratio="16:9",
                                          generate_audio=False))
    op = wait(client, op)
    assert op.response and op.response.generated_videos
    video = op.response.generated_videos[0].video
    assert video and video.video_bytes
    decoded = decode(media_file(tmp_path, "boats.mp4", video.video_bytes))
    assert (decoded["width"], decoded["height"]) == (256, 144)
    assert decoded["has_video"] and not decoded["has_audio"] and decoded["frames"] == 96
    submit = fake.calls("veo")[0]
    assert submit.has_image and submit.body["parameters"]["generateAudio"] is False
    assert submit.body["instances"][0]["image"]["mimeType"] == "image/png"
    [stored] = fake.operations.values()
    assert stored.has_image and stored.generate_audio is False


def test_veo_done_at_submit_when_polls_until_done_is_zero() -> None:
    with FakeGemini(polls_until_done=0) as fake:
        op = submit_veo(express(fake), "Rain")
        assert op.done and op.response and op.response.generated_videos
        assert fake.count("poll") == 0


def test_veo_uri_delivery_and_download(tmp_path: Path) -> None:
    with FakeGemini(video_delivery="uri") as fake:
        client = project(fake)
        op = wait(client, submit_veo(client, "A storm at sea"))
        assert op.response and op.response.generated_videos
        video = op.response.generated_videos[0].video
        assert video and video.uri and video.video_bytes is None
        assert video.uri.startswith(f"{fake.base_url}/media/") and video.uri.endswith(".mp4")
        with httpx2.Client(trust_env=False) as http:
            got = http.get(video.uri)
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
        decoded = decode(media_file(tmp_path, "storm.mp4", got.content))
        assert decoded["errors"] == "" and decoded["frames"] == 96 and decoded["has_audio"]
        [download] = fake.calls("download")
        assert download.prompt == "A storm at sea" and download.status == 200
        with httpx2.Client(trust_env=False) as http:
            assert http.get(f"{fake.base_url}/media/nope.mp4").status_code == 404


def test_developer_poll_and_files_download(tmp_path: Path) -> None:
    with FakeGemini(video_delivery="uri") as fake:
        vertex_op = submit_veo(express(fake), "Clouds")
        op_id = vertex_op.name.rpartition("/")[2] if vertex_op.name else ""
        client = developer(fake)
        op = client.operations.get(
            types.GenerateVideosOperation.model_validate(
                {"name": f"models/{VEO}/operations/{op_id}"}))
        assert op.done and op.response and op.response.generated_videos
        video = op.response.generated_videos[0].video
        assert video and video.uri
        assert video.uri.startswith("https://generativelanguage.googleapis.com/v1beta/files/")
        data = client.files.download(file=video)
        assert decode(media_file(tmp_path, "clouds.mp4", data))["frames"] == 96
        assert video.video_bytes == data
        poll, download = fake.calls()[1:]
        assert (poll.method, poll.path, poll.kind) == (
            "GET", f"/v1beta/models/{VEO}/operations/{op_id}", "poll")
        assert download.kind == "download" and download.path.endswith(":download")
        assert download.query == {"alt": "media"}


# ---------------------------------------------------------------------------------- faults


def test_rate_limit_then_success_is_counted(fake: FakeGemini) -> None:
    client = project(fake)
    fake.fail("veo", "rate_limit", retry_after=7)
    with pytest.raises(errors.ClientError) as caught:
        submit_veo(client, "Waves")
    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    assert error.message == "Resource has been exhausted (e.g. check quota)."
    assert error.response.headers["retry-after"] == "7"
    assert error.details["error"]["details"][0]["retryDelay"] == "7s"
    op = wait(client, submit_veo(client, "Waves"))
    assert op.response and op.response.generated_videos
    assert fake.count("veo") == 2
    assert [(c.status, c.fault) for c in fake.calls("veo")] == [(429, "rate_limit"), (200, None)]
    assert len(fake.operations) == 1


@pytest.mark.parametrize(("status", "name"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_server_error(fake: FakeGemini, status: int, name: str) -> None:
    fake.fail("speech", "server_error", status=status, times=2)
    client = developer(fake)
    for _ in range(2):
        with pytest.raises(errors.ServerError) as caught:
            client.models.generate_content(model=TTS, contents="Hello", config=speech_config())
        assert (caught.value.code, caught.value.status) == (status, name)
    client.models.generate_content(model=TTS, contents="Hello", config=speech_config())
    assert [c.status for c in fake.calls("speech")] == [status, status, 200]


@pytest.mark.parametrize(("via", "header", "retry_info"), [
    ("header", "3", None), ("retry_info", None, "3s"), ("both", "3", "3s")])
def test_the_delay_asked_for_goes_by_header_or_retry_info(
        fake: FakeGemini, via: str, header: str | None, retry_info: str | None) -> None:
    client = developer(fake)
    fake.fail("speech", "rate_limit", retry_after=3, via=via)
    fake.fail("speech", "server_error", status=503, retry_after=3, via=via)
    for status in (429, 503):
        with pytest.raises(errors.APIError) as caught:
            client.models.generate_content(model=TTS, contents="Hello", config=speech_config())
        error = caught.value
        assert error.code == status
        assert error.response.headers.get("retry-after") == header
        sent = [d.get("retryDelay") for d in error.details["error"].get("details", [])]
        assert sent == ([retry_info] if retry_info else [])
    fake.fail("speech", "server_error", status=503)  # no delay unless asked
    with pytest.raises(errors.ServerError) as caught:
        client.models.generate_content(model=TTS, contents="Hello", config=speech_config())
    assert "retry-after" not in caught.value.response.headers
    assert "details" not in caught.value.details["error"]


@pytest.mark.parametrize(("status", "name"), [(400, "INVALID_ARGUMENT"),
                                              (401, "UNAUTHENTICATED"),
                                              (403, "PERMISSION_DENIED")])
def test_refused_credentials(fake: FakeGemini, status: int, name: str) -> None:
    fake.fail("text", "refused", status=status)
    fake.fail("text", "refused", message="key {key} is not welcome")
    keyed, bearer = developer(fake), project(fake)
    with pytest.raises(errors.ClientError) as caught:
        keyed.models.generate_content(model=MODEL, contents="a")
    assert (caught.value.code, caught.value.status) == (status, name)
    assert ("api_key:test-key" in str(caught.value.message)) == (status == 403)
    with pytest.raises(errors.ClientError) as caught:
        bearer.models.generate_content(model=MODEL, contents="a")
    assert caught.value.code == 403 and caught.value.message == "key test-token is not welcome"


def test_slow_answer_trips_the_client_timeout(fake: FakeGemini) -> None:
    fake.fail("script", "slow", seconds=3)
    client = developer(fake, timeout=300)
    started = time.monotonic()
    with pytest.raises(httpx2.TimeoutException) as caught:
        client.models.generate_content(model=MODEL, contents="Slow", config=script_config())
    assert isinstance(caught.value, httpx2.ReadTimeout)
    assert not isinstance(caught.value, errors.APIError)
    assert time.monotonic() - started < 2
    assert fake.calls("script")[0].fault == "slow"
    response = client.models.generate_content(model=MODEL, contents="Fast",
                                              config=script_config())
    assert isinstance(response.parsed, Script)


def test_malformed_and_wrong_shape_json_parse_to_none(fake: FakeGemini) -> None:
    client = developer(fake)
    fake.fail("script", "malformed_json")
    fake.fail("script", "wrong_shape")
    broken = client.models.generate_content(model=MODEL, contents="a", config=script_config())
    assert broken.parsed is None and broken.text
    assert json.dumps(fake.script).startswith(broken.text)
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.text)
    wrong = client.models.generate_content(model=MODEL, contents="b", config=script_config())
    assert wrong.parsed is None and wrong.text == '{"scenes": "none"}'
    good = client.models.generate_content(model=MODEL, contents="c", config=script_config())
    assert isinstance(good.parsed, Script)
    assert [c.status for c in fake.calls()] == [200, 200, 200]


@pytest.mark.parametrize("kind", ["script", "speech", "image", "text"])
def test_safety_block_and_filtered_generate(fake: FakeGemini, kind: str) -> None:
    config = {"script": script_config(), "speech": speech_config(), "text": None,
              "image": types.GenerateContentConfig(response_modalities=["IMAGE"])}[kind]
    model = {"speech": TTS, "image": IMAGE_MODEL}.get(kind, MODEL)
    client = developer(fake)
    fake.fail(kind, "safety_block")
    blocked = client.models.generate_content(model=model, contents="bad", config=config)
    assert blocked.prompt_feedback and blocked.prompt_feedback.block_reason == (
        types.BlockedReason.SAFETY)
    assert not blocked.candidates and blocked.text is None and blocked.parsed is None
    fake.fail(kind, "filtered")
    filtered = client.models.generate_content(model=model, contents="bad", config=config)
    assert filtered.candidates and filtered.candidates[0].finish_reason == (
        types.FinishReason.SAFETY)
    assert filtered.candidates[0].content is None and filtered.parsed is None
    assert [c.kind for c in fake.calls()] == [kind, kind]


@pytest.mark.parametrize("kind", ["veo", "poll"])
def test_veo_filtered(fake: FakeGemini, kind: str) -> None:
    client = project(fake)
    fake.fail(kind, "safety_block")
    op = wait(client, submit_veo(client, "bad"))
    assert op.error is None and op.response is not None
    assert not op.response.generated_videos
    assert op.response.rai_media_filtered_count == 1
    assert op.response.rai_media_filtered_reasons and op.response.rai_media_filtered_reasons[0]


@pytest.mark.parametrize("kind", ["veo", "poll"])
def test_operation_error(kind: str) -> None:
    with FakeGemini(polls_until_done=3) as fake:
        client = express(fake)
        fake.fail(kind, "operation_error")
        op = wait(client, submit_veo(client, "Waves"))
        assert op.error == {"code": 13, "message": "Internal error while generating"}
        assert op.response is None
        assert fake.count("poll") == (3 if kind == "veo" else 1)


def test_match_targets_one_prompt(fake: FakeGemini) -> None:
    client = developer(fake)
    fake.fail("speech", "rate_limit", match="storm")
    calm = client.models.generate_content(model=TTS, contents="A calm sea.",
                                          config=speech_config())
    assert calm.candidates
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=TTS, contents="A storm.", config=speech_config())
    client.models.generate_content(model=TTS, contents="A storm.", config=speech_config())
    assert [(c.prompt, c.status) for c in fake.calls("speech")] == [
        ("A calm sea.", 200), ("A storm.", 429), ("A storm.", 200)]


def test_poll_and_download_faults(tmp_path: Path) -> None:
    with FakeGemini(video_delivery="uri") as fake:
        client = project(fake)
        op = submit_veo(client, "Snow")
        fake.fail("poll", "server_error", status=500)
        with pytest.raises(errors.ServerError):
            client.operations.get(op)
        op = wait(client, op)
        assert op.response and op.response.generated_videos
        video = op.response.generated_videos[0].video
        assert video and video.uri
        fake.fail("download", "rate_limit", retry_after=2)
        with httpx2.Client(trust_env=False) as http:
            first, second = http.get(video.uri), http.get(video.uri)
        assert first.status_code == 429 and first.headers["retry-after"] == "2"
        assert second.status_code == 200 and decode(
            media_file(tmp_path, "snow.mp4", second.content))["has_video"]


def test_fail_rejects_what_it_cannot_do(fake: FakeGemini) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        fake.fail("veo", "explode")
    with pytest.raises(ValueError, match="does not apply"):
        fake.fail("veo", "malformed_json")
    with pytest.raises(ValueError, match="seconds"):
        fake.fail("script", "slow")
    with pytest.raises(ValueError, match="via"):
        fake.fail("script", "rate_limit", via="carrier pigeon")
    assert set(FAULTS) == {"rate_limit", "server_error", "refused", "slow", "html",
                           "malformed_json", "wrong_shape", "safety_block", "filtered",
                           "operation_error", "unsupported"}


def test_unknown_calls_get_a_google_404_and_reset_clears(fake: FakeGemini) -> None:
    client = developer(fake)
    with pytest.raises(errors.ClientError) as caught:
        client.models.embed_content(model="text-embedding-004", contents="hi")
    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert fake.calls()[0].kind == "unknown" and fake.calls()[0].status == 404
    fake.fail("text", "rate_limit")
    fake.reset()
    assert fake.calls() == [] and fake.count("unknown") == 0
    assert client.models.generate_content(model=MODEL, contents="ok").text
    assert fake.count("text") == 1


# ----------------------------------------------------------------------------------- async


def test_async_veo_and_concurrent_speech(tmp_path: Path) -> None:
    async def run(fake: FakeGemini) -> tuple[bytes, list[types.GenerateContentResponse]]:
        sync = project(fake)
        client = sync.aio
        fake.fail("veo", "rate_limit")
        with pytest.raises(errors.ClientError):
            await client.models.generate_videos(
                model=VEO, source=types.GenerateVideosSource(prompt="Async waves"),
                config=types.GenerateVideosConfig(duration_seconds=4))
        op = await client.models.generate_videos(
            model=VEO, source=types.GenerateVideosSource(prompt="Async waves"),
            config=types.GenerateVideosConfig(duration_seconds=4))
        while not op.done:
            op = await client.operations.get(op)
        assert op.response and op.response.generated_videos
        video = op.response.generated_videos[0].video
        assert video and video.video_bytes
        speech = await asyncio.gather(*(
            client.models.generate_content(model=TTS, contents=f"Line number {i}.",
                                           config=speech_config())
            for i in range(4)))
        return video.video_bytes, list(speech)

    with FakeGemini(polls_until_done=2) as fake:
        clip, speech = asyncio.run(run(fake))
        decoded = decode(media_file(tmp_path, "async.mp4", clip))
        assert (decoded["width"], decoded["height"], decoded["frames"]) == (256, 144, 96)
        for answer in speech:
            assert answer.candidates and answer.candidates[0].content
            parts = answer.candidates[0].content.parts
            assert parts and parts[0].inline_data
            assert parts[0].inline_data.mime_type == "audio/wav"
        assert (fake.count("veo"), fake.count("poll"), fake.count("speech")) == (2, 2, 4)
        assert sorted(c.prompt or "" for c in fake.calls("speech")) == [
            f"Line number {i}." for i in range(4)]
        assert fake.errors == []
