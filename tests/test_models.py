"""Google's models as they are: the catalogue, the defaults it picks, models refused before
anything is sent, a model the service does not serve as a clear permanent error, and
``avgen models`` — with the real SDK against a fake as strict as the service."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from hypothesis import given
from hypothesis import strategies as st
from media import decode

from avgen import VideoGenerator
from avgen._google_cli import listing
from avgen.agents import AssetCache
from avgen.agents.google import (
    CATALOGUE,
    GeminiNarrator,
    GoogleConnection,
    check_models,
    google_agents,
)
from avgen.agents.google._catalogue import KINDS, SURFACES, WARN_DAYS, ModelCatalogue
from avgen.errors import GenerationError, ModelNotFound, UsageError
from avgen.resilience import set_testing

KEY = "AIzaFAKE-models-key-0123456789abcdef"
TODAY = datetime.date.today()


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server, set_testing():
        yield server
    assert server.errors == []


def developer(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GEMINI_API_KEY": KEY}, base_url=fake.base_url)


def vertex(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                      "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)


def connect(fake: FakeGemini, surface: str) -> GoogleConnection:
    return developer(fake) if surface == "developer" else vertex(fake)


# -- the catalogue can never silently fall behind ------------------------------------------


def stale_defaults(today: datetime.date) -> list[str]:
    """avgen's defaults that are not plainly current on ``today``: shut down, within
    `WARN_DAYS` of it, or deprecated."""
    return [f"{model.id} on {surface}: {model.status(surface, today)}"
            for model in CATALOGUE for surface in model.default_on
            if model.status(surface, today) != "current"]


def test_no_default_is_shut_down_or_about_to_be_today() -> None:
    assert stale_defaults(TODAY) == []


def test_the_check_of_the_defaults_catches_a_date_past_a_shutdown() -> None:
    vertex_text = next(m for m in CATALOGUE if m.kind == "text" and "vertex" in m.default_on)
    shutdown = vertex_text.shutdown("vertex")
    assert shutdown is not None  # the Vertex default has a planned retirement
    assert f"{vertex_text.id} on vertex: retiring" in stale_defaults(
        shutdown - datetime.timedelta(days=WARN_DAYS))
    assert f"{vertex_text.id} on vertex: retired" in stale_defaults(shutdown)


def test_every_kind_has_a_default_where_it_is_served() -> None:
    for kind in KINDS:
        for surface in SURFACES:
            if kind == "video" and surface == "developer":
                with pytest.raises(UsageError, match="no default video model"):
                    CATALOGUE.default(kind, surface)
                continue
            chosen = CATALOGUE.get(CATALOGUE.default(kind, surface, TODAY))
            assert chosen is not None and chosen.kind == kind
            assert chosen.status(surface, TODAY) == "current"


def test_every_fact_has_a_source_and_every_model_a_price() -> None:
    assert len(CATALOGUE) >= 20
    for model in CATALOGUE:
        assert model.sources, model.id
        for fact in model.sources:
            assert fact.url.startswith("https://") and fact.about, model.id
            assert fact.checked <= CATALOGUE.checked, model.id
        price = model.price_on(TODAY)
        units = {"text": price.output_per_million, "image": price.per_image,
                 "speech": price.per_audio_second, "video": price.per_video_second}
        assert units[model.kind] > 0, model.id


def test_replacements_are_models_of_the_same_kind_served_there() -> None:
    suggested = 0
    for model in CATALOGUE:
        for surface in model.surfaces:
            if model.status(surface, TODAY) in ("retired", "retiring", "deprecated"):
                instead = CATALOGUE.replacement(model.id, kind=model.kind, surface=surface)
                if instead is None:  # nothing of its kind is served there (clips on the
                    assert (model.kind, surface) == ("video", "developer")  # Developer API)
                    continue
                info = CATALOGUE.get(instead)
                assert info is not None and info.kind == model.kind, model.id
                assert info.usable(surface, TODAY), (model.id, surface, instead)
                suggested += 1
    assert suggested >= 15


def small_catalogue(default_shutdown: str, replacement: str = "b") -> ModelCatalogue:
    return ModelCatalogue.load(
        "checked = 2026-01-01\naudio_tokens_per_second = 32\n"
        "[models.a]\nkind = 'text'\nprice = [{}]\ndefault = ['vertex']\n"
        f"replacement = '{replacement}'\nvertex = {{ shutdown = {default_shutdown} }}\n"
        "[models.b]\nkind = 'text'\nprice = [{}]\nvertex = {}\n"
        "[models.c]\nkind = 'text'\nprice = [{}]\ndeveloper = {}\n")


def test_a_default_past_its_shutdown_gives_way_to_its_replacement_served_there() -> None:
    catalogue = small_catalogue("2027-01-01")
    assert catalogue.default("text", "vertex", datetime.date(2026, 12, 31)) == "a"
    with pytest.warns(UserWarning, match="default text model a was shut down on 2027-01-01; "
                      "using its replacement b"):
        assert catalogue.default("text", "vertex", datetime.date(2027, 1, 1)) == "b"
    unserved = small_catalogue("2027-01-01", replacement="c")  # c is not on Vertex AI
    with pytest.raises(UsageError, match="no replacement is known"):
        unserved.default("text", "vertex", datetime.date(2027, 1, 1))
    assert unserved.replacement("a", kind="text", surface="vertex",
                                today=datetime.date(2027, 1, 1)) is None


def test_the_defaults_line_ends_in_a_clear_error_when_nothing_replaces_it() -> None:
    vertex_image = next(m for m in CATALOGUE if m.kind == "image" and "vertex" in m.default_on)
    shutdown = vertex_image.shutdown("vertex")
    assert shutdown is not None
    try:
        chosen = CATALOGUE.default("image", "vertex", shutdown)
    except UsageError as exc:
        assert "update avgen" in str(exc)
    else:
        info = CATALOGUE.get(chosen)
        assert info is not None and info.usable("vertex", shutdown)


def test_a_model_google_still_serves_can_be_allowed_past_its_catalogued_shutdown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UsageError):
        CATALOGUE.vet("gemini-2.5-flash", kind="text", surface="vertex")
    monkeypatch.setenv("AVGEN_ALLOW_MODELS", "gemini-2.0-flash, gemini-2.5-flash")
    with pytest.warns(UserWarning, match="used as AVGEN_ALLOW_MODELS asks"):
        info = CATALOGUE.vet("gemini-2.5-flash", kind="text", surface="vertex")
    assert info is not None and info.id == "gemini-2.5-flash"


def test_an_unserved_model_never_counts_against_the_breaker() -> None:
    import asyncio

    from avgen.agents.google import GOOGLE_POLICY
    from avgen.resilience import CircuitRegistry, CircuitState

    assert GOOGLE_POLICY.circuit is not None
    breaker = CircuitRegistry().get("gemini", GOOGLE_POLICY.circuit)

    @breaker
    async def call() -> None:
        raise ModelNotFound("404 NOT_FOUND", "gemini", model="gemini-9-flash")

    for _ in range(3 * GOOGLE_POLICY.circuit.window_size):
        with pytest.raises(ModelNotFound):
            asyncio.run(call())
    assert breaker.state is CircuitState.CLOSED


@given(st.dates(min_value=datetime.date(2025, 1, 1), max_value=datetime.date(2030, 1, 1)))
def test_a_models_status_follows_its_dates(day: datetime.date) -> None:
    model = CATALOGUE.get("gemini-3.1-flash-lite")
    assert model is not None
    shutdown = model.shutdown("developer")
    assert shutdown is not None
    status = model.status("developer", day)
    if day >= shutdown:
        assert status == "retired"
    elif (shutdown - day).days <= WARN_DAYS:
        assert status == "retiring"
    else:
        assert status == "current"
    verdict = CATALOGUE.judge("gemini-3.1-flash-lite", kind="text", surface="developer",
                              today=day)
    assert (verdict.problem is not None) == (status == "retired")
    assert (verdict.note is not None) == (status == "retiring")
    if status != "current":
        assert "gemini-3.5-flash-lite" in (verdict.problem or verdict.note or "")


def test_prices_change_on_their_day() -> None:
    model = CATALOGUE.get("gemini-3.8-flash")
    assert model is not None and len(model.prices) == 2
    day = model.prices[1][0]
    assert day is not None
    before, after = model.price_on(day - datetime.timedelta(days=1)), model.price_on(day)
    assert before != after and after.input_per_million > before.input_per_million


HEAD = "checked = 2026-01-01\naudio_tokens_per_second = 32\n"


@pytest.mark.parametrize(("text", "words"), [
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "colour = 'red'\n", "unknown keys"),
    (HEAD + "[models.x]\nkind = 'sound'\ndeveloper = {}\nprice = [{}]\n",
     "kind"),
    (HEAD + "[models.x]\nkind = 'text'\nprice = [{}]\n", "names no surface"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "replacement = 'y'\n", "not listed"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "default = ['developer']\n[models.y]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "default = ['developer']\n", "2 defaults"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "default = ['vertex']\n", "does not serve it"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\n"
     "price = [{}, {input_per_million = 1}]\n", "'from' day"),
    ("[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n", "checked"),
    ("checked = 2026-01-01\n[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n",
     "audio_tokens_per_second"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "can = { colour = true }\n", "models.x.can: unknown keys"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\n"
     "price = [{ per_frame = 1 }]\n", "models.x.price: unknown keys"),
    (HEAD + "[models.x]\nkind = 'text'\ndeveloper = {}\nprice = [{}]\n"
     "replacement = 'y'\n[models.y]\nkind = 'image'\ndeveloper = {}\nprice = [{}]\n",
     "is an image model, not a text one"),
])
def test_a_malformed_catalogue_is_refused_saying_where(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ModelCatalogue.load(text)


# -- refused before anything is sent --------------------------------------------------------


@pytest.mark.parametrize(("option", "model", "surface", "instead"), [
    ("script_model", "gemini-2.5-flash", "developer", "gemini-3.5-flash-lite"),
    ("script_model", "gemini-2.5-flash", "vertex", "gemini-3.5-flash-lite"),
    ("script_model", "gemini-2.0-flash", "developer", "gemini-3.5-flash-lite"),
    ("image_model", "gemini-2.5-flash-image", "developer", "gemini-nano-banana-2.1"),
    ("image_model", "imagen-4.0-fast-generate-001", "vertex", "gemini-3.1-flash-image"),
    ("portrait_model", "gemini-3.1-flash-image-preview", "vertex", "gemini-3.1-flash-image"),
    ("video_model", "veo-3.0-generate-001", "vertex", "veo-3.1-generate-001"),
    ("video_model", "veo-2.0-generate-001", "vertex", "veo-3.1-generate-001"),
])
def test_a_shut_down_model_is_refused_naming_its_replacement(
        fake: FakeGemini, option: str, model: str, surface: str, instead: str) -> None:
    with pytest.raises(UsageError) as refused:
        google_agents(connect(fake, surface), cache=False, **{option: model})
    assert refused.value.field == option
    assert "shut down" in str(refused.value) and instead in str(refused.value)
    assert fake.requests == []


@pytest.mark.parametrize(("option", "model", "words"), [
    ("script_model", "gemini-3.8-flash-tts", "a speech model, not a text model"),
    ("tts_model", "gemini-3.8-flash", "a text model, not a speech model"),
    ("image_model", "veo-9-generate", "looks like a video model"),
    ("video_model", "gemini-omni-1.1-flash", "not served by Vertex AI"),
])
def test_a_model_of_the_wrong_kind_or_surface_is_refused(fake: FakeGemini, option: str,
                                                         model: str, words: str) -> None:
    with pytest.raises(UsageError) as refused:
        google_agents(vertex(fake), cache=False, **{option: model})
    assert refused.value.field == option and words in str(refused.value)
    assert fake.requests == []


def test_a_deprecated_model_works_with_a_warning(fake: FakeGemini) -> None:
    with pytest.warns(UserWarning, match="gemini-3.7-flash is deprecated on the Developer "
                      "API; use gemini-3.8-flash instead"):
        agents = google_agents(developer(fake), cache=False, clips=False,
                               script_model="gemini-3.7-flash")
    assert agents.names()["script_writer"] == "gemini-script:gemini-3.7-flash"
    assert fake.requests == []


def test_the_command_refuses_a_shut_down_model_before_any_request(fake: FakeGemini,
                                                                  tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "avgen", "make", "Why the sea is salty", "--model",
         "script=gemini-2.5-flash", "--out", str(tmp_path / "out")],
        env=env(fake, tmp_path), capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 2, made.stderr
    assert "avgen: error: script_model: gemini-2.5-flash was shut down on the Developer " \
        "API on 2026-12-01; use gemini-3.5-flash-lite instead" in made.stderr
    assert fake.requests == [] and not (tmp_path / "out").exists()
    bad = subprocess.run([sys.executable, "-m", "avgen", "make", "x", "--model", "sound=y"],
                         env=env(fake, tmp_path), capture_output=True, text=True, timeout=120,
                         check=False)
    assert bad.returncode == 2 and "--model: must be ROLE=ID" in bad.stderr


# -- the defaults, end to end ---------------------------------------------------------------


def env(fake: FakeGemini, tmp_path: Path, *, vertex: bool = False) -> dict[str, str]:
    values = {**os.environ, "AVGEN_CACHE_DIR": str(tmp_path / "cache")}
    if vertex:
        values.update(GOOGLE_GENAI_USE_VERTEXAI="true", GOOGLE_API_KEY=KEY,
                      GOOGLE_VERTEX_BASE_URL=fake.base_url)
    else:
        values.update(GEMINI_API_KEY=KEY, GOOGLE_GEMINI_BASE_URL=fake.base_url)
    return values


@pytest.mark.parametrize("surface", ["developer", "vertex"])
def test_the_default_agents_make_a_video_with_generated_pictures(tmp_path: Path,
                                                                 surface: str) -> None:
    with FakeGemini(polls_until_done=0) as fake:  # a clip is ready when submitted
        made = subprocess.run(
            [sys.executable, "-m", "avgen", "make", "Why the sea is salty", "--preset",
             "draft", "--out", str(tmp_path / "out")],
            env=env(fake, tmp_path, vertex=surface == "vertex"), capture_output=True,
            text=True, timeout=600, check=False)
    assert made.returncode == 0, made.stderr
    video = Path(made.stdout.strip().splitlines()[-1])
    assert decode(video)["errors"] == "" and decode(video)["has_audio"]
    steps = json.loads((video.parents[1] / "metadata" / "manifest.json").read_text())["steps"]
    tiers = {name: step.get("tier") for name, step in steps.items()
             if name.endswith(".visual")}
    assert tiers and set(tiers.values()) == {"clip" if surface == "vertex" else "image"}
    assert all(call.status == 200 for call in fake.requests)  # no model was refused
    used = {call.path.rsplit("/", 1)[-1].split(":")[0] for call in fake.requests
            if call.kind in ("script", "speech", "image", "veo")}
    pictures = "video" if surface == "vertex" else "image"  # stills are the clips' fallback
    assert used == {CATALOGUE.default(kind, surface)  # type: ignore[arg-type]
                    for kind in ("text", "speech", pictures)}


def test_estimates_price_the_defaults(fake: FakeGemini) -> None:
    agents = google_agents(vertex(fake), cache=False)
    estimate = VideoGenerator(agents).estimate(topic="tides", duration=24, preset="draft")
    priced = {charge.model for charge in estimate.charges}
    assert priced == {CATALOGUE.default(k, "vertex") for k in ("text", "speech", "video")}
    for charge in estimate.charges:
        assert charge.usd > 0
    assert fake.requests == []


# -- a model the service does not serve ------------------------------------------------------


def test_an_unknown_model_is_allowed_with_a_note_and_its_404_is_final(
        fake: FakeGemini, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="gemini-9-flash is not in avgen's model catalogue"):
        agents = google_agents(developer(fake), cache=False, clips=False,
                               script_model="gemini-9-flash")
    generator = VideoGenerator(agents, output_dir=tmp_path / "out")
    with pytest.raises(GenerationError) as failed:
        generator.generate_sync(topic="tides", preset="draft")
    cause = failed.value.__cause__
    assert isinstance(cause, ModelNotFound)
    assert cause.model == "gemini-9-flash" and cause.replacement == "gemini-3.8-flash"
    assert "use gemini-3.8-flash instead" in str(cause)
    assert fake.count("script") == 1  # not retried
    assert failed.value.session is not None and failed.value.session.is_dir()


def test_a_visual_model_not_served_stops_the_run_instead_of_showing_cards(
        fake: FakeGemini, tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        agents = google_agents(developer(fake), cache=AssetCache(tmp_path / "cache"),
                               clips=False, image_model="gemini-9-flash-image",
                               portrait_model="gemini-9-flash-image")
    with pytest.raises(GenerationError) as failed:
        VideoGenerator(agents, output_dir=tmp_path / "out").generate_sync(
            topic="tides", preset="draft")
    assert isinstance(failed.value.__cause__, ModelNotFound)
    assert "gemini-nano-banana-2.1" in str(failed.value.__cause__)
    refused = [c for c in fake.calls("image") if c.status == 404]
    assert refused and len(refused) == fake.count("image")  # none retried past its scene
    assert fake.count("image") <= 3  # at most one per scene in flight, none repeated
    manifest = json.loads(next((tmp_path / "out").glob("session_*/metadata/manifest.json"))
                          .read_text())
    tiers = [step.get("tier") for name, step in manifest["steps"].items()
             if name.endswith(".visual")]
    assert "card" not in tiers


# -- speech as each model answers it ---------------------------------------------------------


@pytest.mark.parametrize("answer", ["pcm", "wav"])
def test_the_narrator_reads_raw_samples_and_whole_wav_files(tmp_path: Path,
                                                            answer: str) -> None:
    import wave

    with FakeGemini(speech_format=answer) as fake:
        narrator = GeminiNarrator(developer(fake))
        import asyncio

        audio = asyncio.run(narrator.speak("The tide comes in twice a day.",
                                           tmp_path / "n.wav"))
    seconds = len("The tide comes in twice a day.") * fake.speech_seconds_per_char
    with wave.open(str(audio.path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 24000)
        assert wav.getnframes() == round(seconds * 24000)  # no header read as sound
    assert audio.duration == pytest.approx(seconds, abs=0.001)
    assert fake.calls("speech")[0].body["generationConfig"].get("temperature") is None


# -- avgen models -----------------------------------------------------------------------------


def test_the_listing_marks_defaults_and_hides_what_is_shut_down_everywhere() -> None:
    text = listing(today=datetime.date(2026, 12, 4))
    assert "  * gemini-3.8-flash" in text and "  * veo-3.1-fast-generate-001" in text
    assert "gemini-2.0-flash" not in text and "veo-2.0-generate-001" not in text
    assert "gemini-2.5-flash-lite" in text  # still served on the Developer API
    everything = listing(today=datetime.date(2026, 12, 4), everything=True, kind="video")
    assert "veo-2.0-generate-001" in everything and "shut down on 2026-06-30" in everything
    assert "gemini-3.8-flash" not in everything
    assert "shuts down on 2027-05-07, in 36 days" in listing(today=datetime.date(2027, 4, 1))


def run_models(fake: FakeGemini, tmp_path: Path, *options: str,
               vertex: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "avgen", "models", *options],
                          env=env(fake, tmp_path, vertex=vertex), capture_output=True,
                          text=True, timeout=120, check=False)


def test_models_check_asks_the_service_and_says_what_would_fail(fake: FakeGemini,
                                                                tmp_path: Path) -> None:
    ok = run_models(fake, tmp_path, "--check", vertex=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "veo-3.1-fast-generate-001" in ok.stdout and "FAILS" not in ok.stdout
    assert {c.kind for c in fake.requests} == {"models"}  # only the free listing
    failing = run_models(fake, tmp_path, "--check", "--model", "script=gemini-2.5-flash",
                         "--model", "image=gemini-9-image")
    assert failing.returncode == 1
    lines = failing.stdout.splitlines()
    assert any("gemini-2.5-flash" in line and "FAILS" in line for line in lines)
    assert any("gemini-9-image" in line and "FAILS" in line for line in lines)
    assert "does not list gemini-9-image" in failing.stdout
    assert "2 model(s) would fail" not in failing.stdout  # script, image and portrait
    assert "3 model(s) would fail on Developer API" in failing.stdout
    assert all(c.kind == "models" and c.status == 200 for c in fake.requests)


def test_check_models_from_python(fake: FakeGemini) -> None:
    checks = {c.role: c for c in check_models(developer(fake),
                                              {"tts_model": "gemini-3.8-flash-lite-tts"})}
    assert checks["tts_model"].model == "gemini-3.8-flash-lite-tts"
    assert checks["tts_model"].usable and checks["tts_model"].listed is True
    assert checks["video_model"].model is None and "Vertex AI" in (checks["video_model"].note
                                                                   or "")
    offline = check_models(developer(fake), {"script_model": "gemini-2.5-pro"}, ask=False)
    assert offline[0].listed is None and not offline[0].usable
    assert "gemini-3.8-flash" in (offline[0].problem or "")
    with pytest.raises(UsageError, match="not a model option"):
        check_models(developer(fake), {"music_model": "x"})


def test_models_check_without_credentials_says_what_to_set(tmp_path: Path) -> None:
    values: dict[str, Any] = {k: v for k, v in os.environ.items()
                              if not k.startswith(("GEMINI", "GOOGLE"))}
    done = subprocess.run([sys.executable, "-m", "avgen", "models", "--check"], env=values,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "GEMINI_API_KEY" in done.stderr


def test_the_docs_table_is_the_catalogues() -> None:
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("models_table", root / "docs" /
                                                  "models_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    writes, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes
    page = (root / "docs" / "google.md").read_text("utf-8")
    shown = page.split(module.BEGIN, 1)[1].split(module.END, 1)[0].strip()
    assert shown == module.table()  # run `python docs/models_table.py --write` when it fails
    for model in CATALOGUE:
        assert f"`{model.id}`" in shown
