"""One video in several languages with the offline agents and your own translations: the
pictures made once and shared, narration, captions and cards per language, each version
its own length; refusals before any work; resuming and adding a language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from avgen import VideoGenerator, VideoRequest, read_requests
from avgen._cli import main
from avgen.agents import load_agents
from avgen.errors import GenerationError, UsageError
from avgen.media._ffmpeg import probe
from avgen.testing import PatternImages, ToneNarrator

ORIGINAL = """# Water

The sun warms the sea. Water rises as vapour.

# Clouds

The vapour cools into clouds.
"""

SPANISH = """# Agua

El sol calienta el mar cada mañana. El agua sube al cielo como vapor invisible.

# Nubes

El vapor se enfría y forma nubes blancas.
"""

GERMAN = """# Wasser

Die Sonne wärmt das Meer.

# Wolken

Der Dampf kühlt ab und wird zu großen grauen Wolken am Himmel.
"""


def _request(**fields: Any) -> VideoRequest:
    return VideoRequest(script=ORIGINAL, preset="draft", languages=("en", "es", "de"),
                        translations={"es": SPANISH, "de": GERMAN}, transition="cut",
                        **fields)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("out")
    narrator, images = ToneNarrator(seconds_per_word=0.15), PatternImages()
    generator = VideoGenerator(narrator=narrator, image_generator=images, output_dir=out)
    video = generator.generate_sync(_request())
    manifest = json.loads(video.manifest.read_text("utf-8"))
    return {"video": video, "narrator": narrator, "images": images, "manifest": manifest,
            "out": out}


def test_one_picture_per_scene_and_one_narration_per_scene_and_language(
        made: dict[str, Any]) -> None:
    assert made["images"].calls == 2
    assert made["narrator"].calls == 6
    spoken = made["narrator"].spoken
    assert "El sol calienta el mar cada mañana. El agua sube al cielo como vapor invisible." \
        in spoken
    assert "Die Sonne wärmt das Meer." in spoken
    steps = made["manifest"]["steps"]
    assert sorted(step for step in steps if step.endswith(".visual")) == [
        "scene-000.visual", "scene-001.visual"]
    assert {"scene-000.narration", "scene-000.narration@es", "scene-001.narration@de",
            "compose", "compose@es", "compose@de", "script", "script@es",
            "script@de"} <= set(steps)


def test_every_version_is_its_own_file_as_long_as_its_narration(made: dict[str, Any]) -> None:
    video = made["video"]
    assert video.language == "en" and list(video.versions) == ["en", "es", "de"]
    lengths = {}
    for language, version in video.versions.items():
        assert version.path.name == f"water.{language}.mp4"
        info = probe(version.path)
        assert info.has_video and info.has_audio
        assert (info.width, info.height) == (video.width, video.height)
        narration = sum(probe(video.session / "audio" / ("" if language == "en" else language)
                              / f"scene_{i:03d}.wav").duration or 0 for i in range(2))
        assert abs((info.duration or 0) - narration) < 0.3
        lengths[language] = info.duration
    # Spanish says more in scene 1, German in scene 2: each version follows its own voice
    assert lengths["es"] > lengths["en"] + 0.5 and lengths["de"] > lengths["en"] + 0.2


def test_captions_and_cards_speak_each_language(made: dict[str, Any]) -> None:
    video = made["video"]
    spanish = video.versions["es"].captions["srt"].read_text("utf-8")
    german = video.versions["de"].captions["srt"].read_text("utf-8")
    english = video.captions["srt"].read_text("utf-8")
    assert video.versions["es"].captions["srt"].name == "water.es.srt"
    assert "calienta" in spanish and "sun" not in spanish
    assert "Dampf" in german and "vapour" not in german
    assert "sun warms" in english
    translated = json.loads((video.session / "scripts/script.es.json").read_text("utf-8"))
    assert [scene["title"] for scene in translated["scenes"]] == ["Agua", "Nubes"]
    original = json.loads((video.session / "scripts/script.json").read_text("utf-8"))
    # the pictures' prompts are the original's
    assert [s["visual"] for s in translated["scenes"]] == [s["visual"]
                                                           for s in original["scenes"]]


def test_the_manifest_shows_each_version_and_the_cost_split(made: dict[str, Any]) -> None:
    manifest = made["manifest"]
    assert manifest["languages"] == ["en", "es", "de"]
    assert set(manifest["versions"]) == {"en", "es", "de"}
    assert manifest["versions"]["de"]["video"] == "final_output/water.de.mp4"
    assert manifest["versions"]["es"]["title"] == "Agua"
    assert manifest["cost"]["shared"] == 0 and manifest["cost"]["languages"] == {
        "en": 0, "es": 0, "de": 0}


class _Watching:
    """The real composer, keeping the cards of each timeline it composes."""

    def __init__(self, composer: Any) -> None:
        self.composer = composer
        self.name = "ffmpeg"
        self.cards: list[list[tuple[str, str, str | None]]] = []
        self.languages: list[str | None] = []

    def __getattr__(self, name: str) -> Any:  # the composer's other members as they are
        return getattr(self.composer, name)

    async def compose(self, timeline: Any, target: Path, progress: Any) -> Any:
        self.languages.append(timeline.language)
        self.cards.append([(card.title, card.phrase, card.icon)
                           for _, _, card in timeline.cards])
        return await self.composer.compose(timeline, target, progress)


def test_cards_carry_the_version_s_words(tmp_path: Path) -> None:
    composer = _Watching(load_agents("local").composer)
    generator = VideoGenerator(narrator=ToneNarrator(), visuals=(), output_dir=tmp_path,
                               composer=composer, )
    video = generator.generate_sync(_request(captions=False))
    assert video.tiers == ("card", "card")
    english, spanish, german = composer.cards
    assert [title for title, _, _ in english] == ["Water", "Clouds"]
    assert [title for title, _, _ in spanish] == ["Agua", "Nubes"]
    assert spanish[0][1].startswith("El sol calienta el mar")
    assert [title for title, _, _ in german] == ["Wasser", "Wolken"]
    # one design: the icons are the original's
    assert [icon for *_, icon in spanish] == [icon for *_, icon in english]


@pytest.mark.parametrize(("fields", "field", "said"), [
    ({"translations": {"es": SPANISH}}, "translations", "--script de.md"),
    ({"translations": {"es": SPANISH, "de": "# Wasser\n\nDie Sonne wärmt das Meer.\n"}},
     "translations['de']", "has 1 scene; the original script has 2"),
])
def test_refused_before_any_work(tmp_path: Path, fields: dict[str, Any], field: str,
                                 said: str) -> None:
    narrator, images = ToneNarrator(), PatternImages()
    generator = VideoGenerator(narrator=narrator, image_generator=images, output_dir=tmp_path)
    request = VideoRequest(script=ORIGINAL, languages="en,es,de", **fields)
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(request)
    assert caught.value.field == field and said in str(caught.value)
    assert narrator.calls == 0 and images.calls == 0 and list(tmp_path.iterdir()) == []


def test_the_piper_voice_is_checked_for_each_language(tmp_path: Path) -> None:
    generator = VideoGenerator(image_generator=PatternImages(), output_dir=tmp_path)
    with pytest.raises(UsageError) as caught:
        generator.estimate(_request())
    assert "Spanish" in str(caught.value) and "speaks en" in str(caught.value)


def test_request_fields_are_checked() -> None:
    with pytest.raises(UsageError, match="languages"):
        VideoRequest(script="Hi.", languages="en,EN")
    with pytest.raises(UsageError) as caught:
        VideoRequest(script="Hi.", languages="en,es", translations={"fr": "Salut."})
    assert caught.value.field == "translations['fr']"
    with pytest.raises(UsageError) as caught:
        VideoRequest(script="Hi.", languages="en,es", language="es")
    assert caught.value.field == "language"
    with pytest.raises(UsageError, match="BCP 47"):
        VideoRequest(script="Hi.", languages=["en", "../x"])
    request = VideoRequest(script="Hi.", languages="en, es", voices={"es": "b"})
    assert request.languages == ("en", "es")
    assert VideoRequest.from_dict(request.to_dict()) == request


def test_adding_a_language_to_a_finished_run_makes_only_its_parts(tmp_path: Path) -> None:
    narrator, images = ToneNarrator(), PatternImages()
    generator = VideoGenerator(narrator=narrator, image_generator=images, output_dir=tmp_path)
    first = generator.generate_sync(VideoRequest(script=ORIGINAL, languages="en,es",
                                                 translations={"es": SPANISH}))
    made = {path.name: path.stat().st_mtime_ns for path in
            (first.session / "final_output").glob("*.mp4")}
    assert sorted(made) == ["water.en.mp4", "water.es.mp4"]
    assert (narrator.calls, images.calls) == (4, 2)
    video = generator.resume_sync(first.session, languages="en,es,de",
                                  translations={"de": GERMAN})
    assert (narrator.calls, images.calls) == (6, 2)
    assert narrator.spoken[4:] == ["Die Sonne wärmt das Meer.",
                                   "Der Dampf kühlt ab und wird zu großen grauen Wolken am "
                                   "Himmel."]
    assert list(video.versions) == ["en", "es", "de"]
    for name, stamp in made.items():  # the finished versions are left as they were
        assert (first.session / "final_output" / name).stat().st_mtime_ns == stamp
    assert probe(video.versions["de"].path).has_audio
    # a plain resume now knows the three languages, and makes nothing
    again = generator.resume_sync(first.session)
    assert list(again.versions) == ["en", "es", "de"] and narrator.calls == 6


def test_a_single_language_run_takes_more_languages_without_redoing_its_own(
        tmp_path: Path) -> None:
    narrator, images = ToneNarrator(), PatternImages()
    generator = VideoGenerator(narrator=narrator, image_generator=images, output_dir=tmp_path)
    first = generator.generate_sync(VideoRequest(script=ORIGINAL))
    assert first.path.name == "water.mp4" and first.versions == {}
    video = generator.resume_sync(first.session, languages=["en", "es"],
                                  translations={"es": SPANISH})
    assert (narrator.calls, images.calls) == (4, 2)
    assert video.versions["es"].path.name == "water.es.mp4"
    with pytest.raises(UsageError) as caught:
        generator.resume_sync(first.session, languages="es,en")
    assert caught.value.field == "language"


def test_a_killed_run_resumes_each_language_where_it_stopped(tmp_path: Path) -> None:
    narrator = ToneNarrator(fail_on={"Der Dampf kühlt ab und wird zu großen grauen Wolken am "
                                     "Himmel."})
    images = PatternImages()
    generator = VideoGenerator(narrator=narrator, image_generator=images, output_dir=tmp_path)
    with pytest.raises(GenerationError, match="could not be made"):
        generator.generate_sync(_request())
    session = next(tmp_path.iterdir())
    steps = json.loads((session / "metadata/manifest.json").read_text())["steps"]
    done = {step for step, record in steps.items() if record["status"] == "done"}
    assert "scene-001.narration@de" not in done
    pictures_before = images.calls
    spoken_before = narrator.calls
    narrator.fail_on = frozenset()
    video = generator.resume_sync(session)
    redone = narrator.spoken[spoken_before:]
    assert "Der Dampf kühlt ab und wird zu großen grauen Wolken am Himmel." in redone
    # what was spoken and made before is not made again
    for step in done:
        if ".narration" in step:
            assert steps[step]["outputs"]
    assert len(redone) == 6 - sum(".narration" in step for step in done)
    pictured = sum(step.endswith(".visual") for step in done)
    assert images.calls == pictures_before + 2 - pictured  # each picture made once
    assert list(video.versions) == ["en", "es", "de"]


def test_the_command_refuses_a_language_nobody_can_translate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original, spanish = tmp_path / "en.md", tmp_path / "es.md"
    original.write_text(ORIGINAL, "utf-8")
    spanish.write_text(SPANISH, "utf-8")
    out = tmp_path / "out"
    assert main(["make", "--script", str(original), "--script", str(spanish),
                 "--languages", "en,es,de", "--out", str(out), "-q"]) == 2
    said = capsys.readouterr().err
    assert "nothing can translate the script into de" in said and "--script de.md" in said
    assert main(["make", "--script", str(original), "--script", str(spanish),
                 "--script", str(spanish), "--languages", "en,es", "--out", str(out)]) == 2
    assert "--script: is given 3 times for 2 languages" in capsys.readouterr().err
    # the local narrator's bundled voice speaks English only: the Spanish version is refused
    # up front, saying which voice would speak it
    assert main(["make", "--script", str(original), "--script", str(spanish),
                 "--languages", "en,es", "--out", str(out), "-q"]) == 2
    said = capsys.readouterr().err
    assert "Spanish" in said and "avgen voices --language es" in said
    assert not out.exists()


def test_the_report_shows_each_version_and_what_they_share(made: dict[str, Any]) -> None:
    from avgen import write_report

    page = write_report(made["video"]).read_text("utf-8")
    table = page.split('<table id="versions">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 4  # the heading and three languages
    for language in ("en", "es", "de"):
        assert f'href="../final_output/water.{language}.mp4"' in table
    assert "Agua" in table and 'id="cost-shared">0.0000<' in page


HEBREW = """# מים

השמש מחממת את הים. המים עולים כאדים.

# עננים

האדים מתקררים והופכים לעננים.
"""

JAPANESE = """# 水

太陽が海を温めます。水は蒸気になって空へ昇ります。

# 雲

蒸気は冷えて雲になります。
"""


@pytest.mark.parametrize(("language", "text"), [("he", HEBREW), ("ja", JAPANESE)])
def test_right_to_left_and_cjk_versions_are_set_as_videos_of_their_own(
        language: str, text: str, tmp_path: Path) -> None:
    composer = _Watching(load_agents("local").composer)
    generator = VideoGenerator(narrator=ToneNarrator(), visuals=(), composer=composer,
                               output_dir=tmp_path / "many")
    many = generator.generate_sync(VideoRequest(
        script=ORIGINAL, languages=("en", language), translations={language: text},
        caption_style="lower-third"))
    alone = VideoGenerator(narrator=ToneNarrator(), visuals=(),
                           output_dir=tmp_path / "one").generate_sync(VideoRequest(
                               script=text, language=language, caption_style="lower-third"))
    version = many.versions[language]
    # the same captions as a video made in that language alone: the same line breaks,
    # the same alignment, the same timing
    for kind in ("ass", "srt", "vtt"):
        assert version.captions[kind].read_text("utf-8") == \
            alone.captions[kind].read_text("utf-8")
    assert composer.languages == ["en", language]
    titles = [title for title, _, _ in composer.cards[1]]
    assert titles == [line[2:] for line in text.splitlines() if line.startswith("# ")]


def test_batch_rows_carry_languages_and_translations(tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text('script,languages,translations\n'
                    '"Hello there.","en,es","{""es"": ""Hola a todos.""}"\n', "utf-8")
    (request,) = read_requests(rows)
    assert request.languages == ("en", "es") and request.translations == {
        "es": "Hola a todos."}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"script": "Hi.", "languages": ["en", "es"], '
                   '"translations": {"de": "Hallo."}}\n', "utf-8")
    with pytest.raises(UsageError, match=r"translations\['de'\]"):
        read_requests(bad)
    cell = tmp_path / "cell.csv"
    cell.write_text('script,languages,voices\n"Hi.","en,es","Puck"\n', "utf-8")
    with pytest.raises(UsageError, match="voices: must be a JSON object"):
        read_requests(cell)


def test_the_resume_command_adds_languages_and_checks_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=PatternImages(),
                               output_dir=tmp_path)
    video = generator.generate_sync(VideoRequest(script=ORIGINAL))
    spanish = tmp_path / "es.md"
    spanish.write_text(SPANISH, "utf-8")
    # the offline writer cannot translate German: refused, nothing changed
    assert main(["resume", str(video.session), "--languages", "en,es,de",
                 "--script", str(spanish)]) == 2
    assert "nothing can translate the script into es" in capsys.readouterr().err
    assert main(["resume", str(video.session), "--languages", "en,es",
                 "--script", str(spanish), "--script", str(spanish)]) == 2
    assert "--script: gives the new languages' translations" in capsys.readouterr().err
    # the bundled Piper voice speaks English: the Spanish version is refused up front
    assert main(["resume", str(video.session), "--languages", "en,es",
                 "--script", str(spanish)]) == 2
    assert "Spanish" in capsys.readouterr().err
    manifest = json.loads(video.manifest.read_text("utf-8"))
    assert manifest["request"]["languages"] == [] and "versions" not in manifest
