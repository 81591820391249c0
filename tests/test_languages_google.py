"""A video in three languages with the google agents, the real SDK over HTTP to FakeGemini:
the pictures are paid once, narration once per scene and language, the translations through
the script model's checked, budgeted path."""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from media import decode

from avgen import VideoGenerator, VideoRequest
from avgen.agents import AssetCache
from avgen.agents.google import GoogleConnection, google_agents
from avgen.resilience import set_testing

KEY = "AIzaFAKE-languages-key-0123456789abcdef"
GREETING = {"es": "En español", "de": "Auf Deutsch", "ja": "日本語で"}


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(polls_until_done=1) as server, set_testing():
        server.script = answer
        yield server


def answer(prompt: str, *, drop: set[str] | None = None) -> dict[str, Any]:
    """The fake model: the default script, or a translation of the script in the prompt
    (each narration prefixed with the language's words)."""
    if "You translate" not in prompt:
        return FakeGemini().script  # type: ignore[no-any-return]
    language = re.search(r"BCP 47 tag '([\w-]+)'", prompt)
    assert language is not None
    given = json.loads(prompt.split("SCRIPT:\n", 1)[1].split("\n\nYour previous", 1)[0])
    words = GREETING[language[1]]
    scenes = [{"title": f"{words} {scene['title']}",
               "narration": f"{words}, {scene['narration']}"} for scene in given["scenes"]]
    if drop is not None and language[1] in drop:
        drop.discard(language[1])
        scenes = scenes[:-1]  # one scene short: the writer must ask again
    return {"title": f"{words}: {given['title']}", "scenes": scenes}


def generator(fake: FakeGemini, tmp_path: Path, name: str, **kwargs: Any) -> VideoGenerator:
    connection = GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                            "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        agents = google_agents(connection, poll_interval=0.01,
                               cache=AssetCache(tmp_path / f"cache-{name}"))
    return VideoGenerator(agents, output_dir=tmp_path / name, **kwargs)


def counts(fake: FakeGemini) -> dict[str, int]:
    return {kind: fake.count(kind) for kind in ("script", "speech", "image", "imagen", "veo")}


def test_three_languages_pay_for_the_pictures_once(fake: FakeGemini, tmp_path: Path) -> None:
    one = generator(fake, tmp_path, "one").generate_sync(topic="the water cycle")
    single = counts(fake)
    assert single["veo"] == 3 and single["speech"] == 3
    fake.reset()
    fake.script = answer
    video = generator(fake, tmp_path, "three").generate_sync(
        topic="the water cycle", languages=("en", "es", "de"), voices={"es": "Puck"})
    triple = counts(fake)
    # the same pictures: as many image and clip requests as one language
    assert (triple["veo"], triple["image"], triple["imagen"]) == (
        single["veo"], single["image"], single["imagen"])
    # narration once per scene per language; the script once, and one translation each
    assert triple["speech"] == 3 * 3 and triple["script"] == 1 + 2
    spoken = [call.prompt or "" for call in fake.calls("speech")]
    for words in ("En español", "Auf Deutsch"):
        assert sum(words in prompt for prompt in spoken) == 3
    assert {call.voice for call in fake.calls("speech")
            if "En español" in (call.prompt or "")} == {"Puck"}
    assert {call.voice for call in fake.calls("speech")
            if "Auf Deutsch" in (call.prompt or "")} == {"Kore"}
    translations = [call for call in fake.calls("script") if "You translate" in (call.prompt
                                                                                  or "")]
    assert len(translations) == 2
    # asked in the schema-checked way: JSON that follows the translation schema
    for call in translations:
        config = call.body["generationConfig"]
        assert config["responseMimeType"] == "application/json"
        assert set(config["responseSchema"]["properties"]) == {"title", "scenes"}
    assert list(video.versions) == ["en", "es", "de"]
    assert video.tiers == one.tiers == ("clip", "clip", "clip")
    for language, version in video.versions.items():
        decoded = decode(version.path)
        assert decoded["errors"] == "" and decoded["has_audio"]
        assert version.path.name == f"the-water-cycle.{language}.mp4"
    spanish = video.versions["es"].captions["srt"].read_text("utf-8")
    assert "En español" in spanish and "Auf Deutsch" not in spanish
    # each version follows its own narration: the translations are longer here
    assert video.versions["de"].duration > video.duration + 1
    data = json.loads(video.manifest.read_text("utf-8"))
    steps, cost = data["steps"], data["cost"]
    assert steps["script@es"]["cost"] > 0 and steps["script@es"]["data"]["language"] == "es"
    shared = sum(step["cost"] for name, step in steps.items()
                 if name == "script" or name.endswith(".visual"))
    assert cost["shared"] == pytest.approx(shared, abs=1e-6)
    assert cost["languages"]["es"] == pytest.approx(
        sum(step["cost"] for name, step in steps.items() if name.endswith("@es")), abs=1e-6)
    assert cost["languages"]["en"] == pytest.approx(
        sum(step["cost"] for name, step in steps.items()
            if re.fullmatch(r"scene-\d+\.narration|compose", name)), abs=1e-6)
    assert cost["spent"] == pytest.approx(
        cost["shared"] + sum(cost["languages"].values()), abs=1e-5)


def test_a_translation_that_loses_a_scene_is_asked_again(fake: FakeGemini,
                                                         tmp_path: Path) -> None:
    drop = {"de"}
    fake.script = lambda prompt: answer(prompt, drop=drop)
    video = generator(fake, tmp_path, "run").generate_sync(
        topic="the water cycle", languages="en,de")
    translations = [call.prompt or "" for call in fake.calls("script")
                    if "You translate" in (call.prompt or "")]
    assert len(translations) == 2
    assert "'scenes' has 2 items; the script has 3 scenes" in translations[1]
    assert len(json.loads((video.session / "scripts/script.de.json").read_text())["scenes"]) \
        == 3
    # the same request again: every answer, picture and voice comes from the cache
    fake.reset()
    fake.script = answer
    again = generator(fake, tmp_path, "run").generate_sync(
        topic="the water cycle", languages="en,de")
    assert fake.requests == [] and list(again.versions) == ["en", "de"]


def test_adding_a_language_pays_only_for_it(fake: FakeGemini, tmp_path: Path) -> None:
    made = generator(fake, tmp_path, "run")
    video = made.generate_sync(VideoRequest(topic="the water cycle", languages="en,es"))
    fake.reset()
    fake.script = answer
    grown = made.resume_sync(video.session, languages="en,es,ja")
    assert counts(fake) == {"script": 1, "speech": 3, "image": 0, "imagen": 0, "veo": 0}
    assert list(grown.versions) == ["en", "es", "ja"]
    japanese = grown.versions["ja"].captions["srt"].read_text("utf-8")
    assert "日本語で" in japanese
    assert decode(grown.versions["ja"].path)["errors"] == ""


def test_the_estimate_splits_shared_and_per_language_costs(fake: FakeGemini,
                                                           tmp_path: Path) -> None:
    made = generator(fake, tmp_path, "run")
    one = made.estimate(topic="the water cycle", duration=30)
    three = made.estimate(topic="the water cycle", duration=30, languages="en,es,de")
    assert fake.requests == []
    assert one.by_language() == {} and one.shared == pytest.approx(one.total)
    languages = three.by_language()
    assert list(languages) == ["en", "es", "de"]
    narration = math.fsum(c.usd for c in one.charges if c.agent.startswith("gemini-tts"))
    pictures = math.fsum(c.usd for c in one.charges if c.unit in ("video_second", "image"))
    assert narration > 0 and pictures > 0
    # the pictures and the script once; each language its narration (and a translation)
    assert three.shared == pytest.approx(one.total - narration)
    assert languages["en"] == pytest.approx(narration)
    translation = [c for c in three.charges if c.language == "es" and c.unit == "token"]
    assert len(translation) == 1 and translation[0].usd > 0
    assert languages["es"] == pytest.approx(narration + translation[0].usd)
    assert three.total == pytest.approx(three.shared + sum(languages.values()))
    shown = str(three)
    assert "shared by every language" in shown and "es alone" in shown
    assert three.to_dict()["languages"]["de"] == pytest.approx(languages["de"])
    # with your own translation, that language pays no translation
    yours = made.estimate(topic="the water cycle", duration=30, languages="en,es",
                          translations={"es": "Hola. El agua sube."})
    assert yours.by_language()["es"] == pytest.approx(
        math.fsum(c.usd for c in yours.charges if c.language == "es"
                  and c.agent.startswith("gemini-tts")))
