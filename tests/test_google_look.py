"""Google videos that hold together: one style and one cast in every prompt, reference
pictures, rewrites of refused prompts, Veo's options and estimates — checked from the
request bodies the real google-genai SDK sends to FakeGemini."""

from __future__ import annotations

import datetime
import html
import itertools
import json
import os
import re
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from fake_gemini import FakeGemini, Recorded, make_png
from media import decode
from PIL import Image

from avgen import Character, VideoGenerator, VideoRequest, write_report
from avgen._run import _cast_slugs
from avgen.agents import AssetCache
from avgen.agents.google import CATALOGUE, GoogleConnection, VeoClips, google_agents
from avgen.agents.google._rewrite import REWRITE_POLICY
from avgen.agents.google._script import parse_script
from avgen.errors import UsageError
from avgen.resilience import set_testing

KEY = "AIzaFAKE-test-key-0123456789abcdef"
STYLE = {"medium": "watercolour illustration", "palette": "pastel blues and warm ochre",
         "light": "soft morning light", "camera": "slow pans at eye level"}
STYLE_TEXT = ("Style: watercolour illustration; palette: pastel blues and warm ochre; "
              "light: soft morning light; camera: slow pans at eye level.")
MARA = {"name": "Mara", "appearance": "a baker in her sixties with short silver hair",
        "wardrobe": "a flour-dusted green apron"}
TEO = {"name": "Teo", "appearance": "a boy of ten with curly black hair",
       "wardrobe": "a yellow raincoat"}
DESCRIBED = {"Mara": "Mara: a baker in her sixties with short silver hair, wearing a "
                     "flour-dusted green apron.",
             "Teo": "Teo: a boy of ten with curly black hair, wearing a yellow raincoat."}
SCENES = (("Mara opens the bakery door at dawn", ["Mara"]),
          ("Teo runs through the rain towards the bakery", ["Teo"]),
          ("Mara hands Teo a warm loaf across the counter", ["Mara", "Teo"]))


def bakery(prompt: str) -> dict[str, Any]:
    """The fake Gemini's script: a style, a cast of two, and who is in each scene."""
    del prompt
    return {"title": "The Bakery", "style": STYLE, "cast": [MARA, TEO], "scenes": [
        {"title": f"Scene {i + 1}", "narration": f"This is the bakery story, part {i + 1}.",
         "visual": visual, "seconds": 6, "cast": cast}
        for i, (visual, cast) in enumerate(SCENES)]}


def rewritten(prompt: str) -> str:
    """The fake Gemini's rewrite: the refused prompt, softened."""
    return "A gentle take: " + prompt.split("PROMPT:\n", 1)[-1]


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(polls_until_done=1) as server, set_testing():
        server.script = bakery
        yield server


def vertex(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                      "GOOGLE_API_KEY": KEY}, base_url=fake.base_url)


def developer(fake: FakeGemini) -> GoogleConnection:
    return GoogleConnection.from_env({"GEMINI_API_KEY": KEY}, base_url=fake.base_url)


def generator(connection: GoogleConnection, tmp_path: Path, **options: Any) -> VideoGenerator:
    options.setdefault("cache", AssetCache(tmp_path / "cache"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Developer mode: stills, not clips
        agents = google_agents(connection, poll_interval=0.01, **options)
    return VideoGenerator(agents, output_dir=tmp_path / "out")


def manifest(session: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((session / "metadata" / "manifest.json")
                                      .read_text("utf-8"))
    return data


def same_picture(kept: Path, given: Path) -> bool:
    """Whether the session's copy of a picture shows the same pixels (it is kept as PNG)."""
    with Image.open(kept) as a, Image.open(given) as b:
        return a.format == "PNG" and a.convert("RGB").tobytes() == b.convert("RGB").tobytes()


def scene_of(call: Recorded) -> int:
    """Which scene a picture or clip request is for (by its visual)."""
    [index] = [i for i, (visual, _) in enumerate(SCENES) if visual in (call.prompt or "")]
    return index


def params(call: Recorded) -> dict[str, Any]:
    parameters: dict[str, Any] = call.body["parameters"]
    return parameters


def portraits(fake: FakeGemini) -> list[Recorded]:
    return [c for c in fake.calls("image") if "character reference portrait" in (c.prompt or "")]


def stills(fake: FakeGemini) -> list[Recorded]:
    return [c for c in fake.calls("image") if c not in portraits(fake)]


def assert_one_look(call: Recorded) -> None:
    """The prompt has the style, and each character of its scene in the same words."""
    prompt = call.prompt or ""
    assert STYLE_TEXT in prompt
    cast = SCENES[scene_of(call)][1]
    for name, words in DESCRIBED.items():
        assert (words in prompt) == (name in cast), (name, prompt)


def test_every_prompt_of_a_run_has_the_same_style_and_cast(fake: FakeGemini,
                                                          tmp_path: Path) -> None:
    video = generator(vertex(fake), tmp_path).generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")
    assert decode(video.path)["errors"] == ""
    clips, pictures = fake.calls("veo"), stills(fake)
    assert len(clips) == 3 and len(pictures) == 3
    for call in [*clips, *pictures]:
        assert_one_look(call)
    # a portrait of each character, painted once, from the same words and style
    drawn = portraits(fake)
    assert sorted(DESCRIBED[n].rstrip(".") in c.prompt for c in drawn for n in ("Mara", "Teo")
                  if n in (c.prompt or "")) == [True, True]
    assert len(drawn) == 2 and all(STYLE_TEXT.removeprefix("Style: ").rstrip(".") in
                                   (c.prompt or "") for c in drawn)
    for name in ("mara", "teo"):
        picture = video.session / "images" / "cast" / f"{name}.png"
        assert decode(picture)["has_video"], picture
    data = manifest(video.session)
    assert data["look"] == {"style": STYLE_TEXT.removeprefix("Style: ").rstrip("."),
                            "cast": [DESCRIBED["Mara"].rstrip("."),
                                     DESCRIBED["Teo"].rstrip(".")]}


def test_the_fast_model_animates_a_still_painted_from_the_references(
        fake: FakeGemini, tmp_path: Path) -> None:
    video = generator(vertex(fake), tmp_path).generate_sync(topic="a bakery", preset="draft")
    # veo-3.1-fast takes no reference images: each scene's still gets them, and the clip
    # animates that still
    for call in stills(fake):
        assert call.images == len(SCENES[scene_of(call)][1])
    for call in fake.calls("veo"):
        assert call.has_image and call.images == 0
    steps = manifest(video.session)["steps"]
    methods = [steps[f"scene-{i:03d}.visual"]["data"]["asset"]["source"]["method"]
               for i in range(3)]
    assert methods == ["image-to-video from the scene's still (reference images: Mara)",
                       "image-to-video from the scene's still (reference images: Teo)",
                       "image-to-video from the scene's still (reference images: Mara, Teo)"]


def test_a_model_that_takes_reference_images_is_sent_them(fake: FakeGemini,
                                                          tmp_path: Path) -> None:
    video = generator(vertex(fake), tmp_path, video_model="veo-3.1-generate-001"
                      ).generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")
    for call in fake.calls("veo"):
        assert call.images == len(SCENES[scene_of(call)][1]) and not call.has_image
        assert params(call)["durationSeconds"] == 8  # Veo 3.1 with references: 8 s only
        assert_one_look(call)
        sent = call.body["instances"][0]["referenceImages"]
        assert {r["referenceType"] for r in sent} == {"ASSET"}
    assert stills(fake) == [] and len(portraits(fake)) == 2  # no still is needed
    steps = manifest(video.session)["steps"]
    assert [steps[f"scene-{i:03d}.visual"]["data"]["asset"]["source"]["method"]
            for i in range(3)] == ["reference images: Mara", "reference images: Teo",
                                   "reference images: Mara, Teo"]


def test_refused_reference_images_make_the_clip_from_a_painted_still_for_the_run(
        fake: FakeGemini, tmp_path: Path) -> None:
    # Veo refuses some reference images it lists ("use case is currently not supported"):
    # the scene is tried again animating a still painted with them, and no later scene
    # sends them again
    fake.fail("veo", "unsupported")
    gen = generator(vertex(fake), tmp_path, video_model="veo-3.1-generate-001",
                    max_clip_operations=1)
    video = gen.generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")
    refused, *made = fake.calls("veo")
    assert refused.status == 400 and refused.images > 0
    assert len(made) == 3 and all(c.status == 200 and c.images == 0 and c.has_image
                                  for c in made)
    for call in stills(fake):
        assert call.images == len(SCENES[scene_of(call)][1])
    steps = manifest(video.session)["steps"]
    sources = [steps[f"scene-{i:03d}.visual"]["data"]["asset"]["source"] for i in range(3)]
    assert all(s["method"].startswith("image-to-video from the scene's still") for s in sources)
    noted = [s for s in sources if any("refused reference images" in n for n in s["notes"])]
    assert len(noted) == 1


def test_stills_from_a_gemini_image_model_carry_the_references(fake: FakeGemini,
                                                              tmp_path: Path) -> None:
    video = generator(developer(fake), tmp_path).generate_sync(topic="a bakery",
                                                               preset="draft")
    assert video.tiers == ("image", "image", "image")
    assert fake.count("veo") == 0 and len(portraits(fake)) == 2
    for call in stills(fake):
        assert_one_look(call)
        assert call.images == len(SCENES[scene_of(call)][1])


def test_your_style_and_cast_win_and_your_picture_is_used(fake: FakeGemini,
                                                         tmp_path: Path) -> None:
    mine = tmp_path / "mara.png"
    mine.write_bytes(make_png(40, 60))
    mara = Character("Mara", "a tall woman with a red scarf", reference=mine)
    request = VideoRequest(topic="a bakery", preset="draft", style="ink drawing",
                           characters=[mara])
    video = generator(vertex(fake), tmp_path).generate_sync(request)
    told = fake.calls("script")[0].prompt or ""  # the writer was told
    assert "ink drawing" in told and "Mara: a tall woman with a red scarf." in told
    for call in [*fake.calls("veo"), *stills(fake)]:
        prompt = call.prompt or ""
        assert "Style: ink drawing." in prompt and "watercolour" not in prompt
        assert "silver hair" not in prompt
        assert ("Mara: a tall woman with a red scarf." in prompt) == (
            "Mara" in SCENES[scene_of(call)][1])
    # only the writer's Teo needed a portrait; yours of Mara was copied into the session
    assert [("Teo" in (c.prompt or "")) for c in portraits(fake)] == [True]
    assert same_picture(video.session / "images" / "cast" / "mara.png", mine)
    # the session keeps its own copy, and its manifest names that copy, inside it
    saved = manifest(video.session)["request"]["characters"][0]["reference"]
    assert saved == "images/cast/given-0.png"
    assert (video.session / saved).read_bytes() == mine.read_bytes()


def test_a_saved_request_cannot_point_a_picture_outside_its_session(tmp_path: Path) -> None:
    saved = VideoRequest(topic="a bakery").to_dict()
    saved["characters"] = [{"name": "Mara", "appearance": "tall", "wardrobe": "",
                            "reference": "../../etc/hostname"}]
    with pytest.raises(UsageError, match=r"characters\[0\]\.reference"):
        VideoRequest.from_dict(saved, root=tmp_path)


def test_a_refused_clip_is_rewritten_once_then_made(fake: FakeGemini, tmp_path: Path) -> None:
    fake.text = rewritten
    fake.fail("veo", "filtered", match=SCENES[1][0])  # once: the first prompt only
    gen = generator(vertex(fake), tmp_path)
    video = gen.generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")  # not a fallback
    [rewrite] = fake.calls("text")
    refused = [c for c in fake.calls("veo") if c.fault == "filtered"]
    assert len(refused) == 1 and SCENES[1][0] in (rewrite.prompt or "")
    assert REWRITE_POLICY in (rewrite.prompt or "")
    retried = [c for c in fake.calls("veo") if (c.prompt or "").startswith("A gentle take: ")]
    assert len(retried) == 1
    assert (retried[0].prompt or "").startswith(rewritten(rewrite.prompt or "") + "\n")
    assert_one_look(retried[0])  # the rewrite kept the style and the cast
    step = manifest(video.session)["steps"]["scene-001.visual"]
    assert step["status"] == "done" and step["tier"] == "clip"
    assert [r["attempt"] for r in step["data"]["resilience"]["rewrites"]] == [1]
    [note] = step["data"]["asset"]["source"]["notes"]
    assert note.startswith("refused (") and "rewritten by gemini-rewrite:" in note
    units = sorted(c["unit"] for c in step["data"]["charges"])
    assert units == ["image", "token", "video_second"]  # the rewrite was paid and recorded
    # the run report shows the look, how each scene was made and the rewrite
    page = html.unescape(write_report(video).read_text("utf-8"))
    assert STYLE_TEXT.removeprefix("Style: ").rstrip(".") in page
    assert DESCRIBED["Teo"].rstrip(".") in page and note in page
    assert page.count("image-to-video from the scene's still (reference images:") == 3
    # the same request again: nothing is rewritten, refused or submitted again
    fake.reset()
    again = gen.generate_sync(topic="a bakery", preset="draft")
    assert again.tiers == ("clip", "clip", "clip")
    assert fake.count("text") == 0 and fake.count("veo") == 0 and fake.count("image") == 0
    note = manifest(again.session)["steps"]["scene-001.visual"]["data"]["asset"]["source"]
    assert "its rewrite was reused" in note["notes"][0]


@pytest.mark.parametrize("answer", [
    "A boy in a raincoat hurries through light rain towards a warm shop",
    "A boy hurries through light rain to a shop.\nStyle: neon cyberpunk, harsh light.\n"
    "Characters: Teo: a grown man in a suit."])
def test_a_rewrite_changes_the_scene_and_never_the_look(fake: FakeGemini, tmp_path: Path,
                                                        answer: str) -> None:
    """Only the scene's own text is sent to be rewritten; the style and the cast are added
    back by code, whatever the rewrite says of them."""
    fake.text = lambda _prompt: answer
    fake.fail("veo", "filtered", match=SCENES[1][0])  # once: the first prompt only
    video = generator(vertex(fake), tmp_path).generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")
    [rewrite] = fake.calls("text")
    sent = (rewrite.prompt or "").split("PROMPT:\n", 1)[1]
    assert sent == SCENES[1][0]  # the scene's own words: no style, no cast
    [retried] = [c for c in fake.calls("veo") if (c.prompt or "").startswith("A boy ")]
    prompt = retried.prompt or ""
    assert "neon" not in prompt and "grown man" not in prompt
    assert STYLE_TEXT in prompt and prompt.count("Style:") == 1  # the scene's style, once
    assert DESCRIBED["Teo"] in prompt and DESCRIBED["Mara"] not in prompt  # and its cast


@pytest.mark.parametrize("answer", ["", "Bakery", ' "Bakery." ', "Style: watercolour."])
def test_an_empty_or_one_word_rewrite_is_a_failed_rewrite(fake: FakeGemini, tmp_path: Path,
                                                          answer: str) -> None:
    fake.text = lambda _prompt: answer
    fake.fail("veo", "filtered", match=SCENES[1][0])
    video = generator(vertex(fake), tmp_path, rewrites=2).generate_sync(topic="a bakery",
                                                                        preset="draft")
    assert fake.count("text") == 1  # the rewrite failed: not tried again
    assert all(scene_named(c) is not None for c in fake.calls("veo"))  # none from the answer
    assert video.tiers == ("clip", "image", "clip")  # the scene fell back to its still
    step = manifest(video.session)["steps"]["scene-001.visual"]
    assert "could not be rewritten" in step["error"]
    assert "empty" in step["error"] or "one word" in step["error"]


def scene_named(call: Recorded) -> int | None:
    """The scene whose visual a prompt shows, or None."""
    found = [i for i, (visual, _) in enumerate(SCENES) if visual in (call.prompt or "")]
    return found[0] if found else None


def test_veo_options_reach_every_request(fake: FakeGemini, tmp_path: Path) -> None:
    generator(vertex(fake), tmp_path, seed=42, negative_prompt="text, logos",
              person_generation="allow_adult", references=False
              ).generate_sync(topic="a bakery", preset="draft")
    for call in fake.calls("veo"):
        assert params(call) == {"durationSeconds": 4, "aspectRatio": "9:16",
                                "generateAudio": False, "resolution": "720p", "seed": 42,
                                "negativePrompt": "text, logos",
                                "personGeneration": "allow_adult"}
    assert portraits(fake) == []  # references off: nobody is painted


def test_by_default_veo_makes_no_sound_and_the_preset_sets_the_resolution(
        fake: FakeGemini, tmp_path: Path) -> None:
    generator(vertex(fake), tmp_path).generate_sync(topic="a bakery", preset="shorts")
    for call in fake.calls("veo"):
        sent = params(call)
        assert sent["generateAudio"] is False and "seed" not in sent
        assert sent["resolution"] == "1080p" and sent["durationSeconds"] == 8


# ------------------------------------------------------------------------------ estimates

SWAY = (0.88, 1.12, 0.97, 1.06, 0.91, 1.09, 1.0, 0.94)
"""How far each written scene runs from the asked length (a model's narration varies)."""
WORDS = ("the", "morning", "light", "falls", "across", "quiet", "streets", "while", "bakers",
         "shape", "warm", "bread", "and", "children", "hurry", "towards", "school")


def planned(prompt: str) -> dict[str, Any]:
    """What a model asked for this plan writes: about the asked number of scenes and words,
    or the given narration split into that many scenes."""
    scenes = int(re.search(r"in about (\d+) scenes", prompt)[1])  # type: ignore[index]
    given = prompt.split("NARRATION:\n", 1)[1].split("\n")[0] if "NARRATION:" in prompt \
        else None
    if given is not None:  # the narration's sentences, in about as many scenes as asked
        sentences = [s.strip() for s in re.findall(r"[^.]+\.", given)]
        count = min(scenes, len(sentences))
        cuts = [round(i * len(sentences) / count) for i in range(count + 1)]
        parts = [" ".join(sentences[a:b]) for a, b in itertools.pairwise(cuts)]
    else:  # about the asked length, each scene a little over or under it, as a model writes
        words = int(re.search(r"about (\d+) words", prompt)[1])  # type: ignore[index]
        each = [round(words / scenes * SWAY[i % len(SWAY)]) for i in range(scenes)]
        parts = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(count)).capitalize()
                 + "." for i, count in enumerate(each)]
    return {"title": "Plan", "style": STYLE, "cast": [], "scenes": [
        {"narration": text, "visual": f"Visual {i}: {text[:40]}", "seconds": 6}
        for i, text in enumerate(parts)]}


STORY = " ".join(f"Sentence {n} tells of the town waking up before the first bus comes."
                 for n in range(1, 9))


@pytest.mark.parametrize(("mode", "request_fields", "options"), [
    ("vertex", {"topic": "a bakery", "duration": 24, "preset": "draft"}, {}),
    ("vertex", {"script": STORY, "preset": "shorts",
                "characters": [Character("Mara", "a baker with silver hair")]},
     {"video_model": "veo-3.1-generate-001"}),
    ("developer", {"topic": "a town at dawn", "duration": 40, "preset": "draft",
                   "style": "pencil sketch"}, {}),
])
@pytest.mark.slow
def test_a_fresh_run_costs_what_it_was_estimated_to(fake: FakeGemini, tmp_path: Path,
                                                     mode: str, request_fields: dict[str, Any],
                                                     options: dict[str, Any]) -> None:
    fake.script = planned
    fake.speech_seconds_per_char = 1 / 16  # about 150 words a minute, as Gemini speaks
    gen = generator(vertex(fake) if mode == "vertex" else developer(fake), tmp_path,
                    **options)
    request = VideoRequest(**request_fields)
    estimate = gen.estimate(request)
    assert fake.requests == []  # estimating sends nothing
    video = gen.generate_sync(request)
    spent = manifest(video.session)["cost"]["spent"]
    assert spent > 0 and abs(spent - estimate.total) <= 0.10 * spent, (spent, str(estimate))
    # the breakdown names every planned scene
    printed = str(estimate)
    scenes = {c.scene for c in estimate.charges if c.scene is not None}
    assert scenes == set(range(len(scenes))) and len(scenes) >= 3
    for index in scenes:
        assert f"scene {index + 1} " in printed
    assert "possible extras" in printed and estimate.extras_total > 0


def test_avgen_make_takes_a_style_and_characters(fake: FakeGemini, tmp_path: Path) -> None:
    picture = tmp_path / "mara.png"
    picture.write_bytes(make_png(40, 60))
    env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.base_url,
           "AVGEN_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "avgen", "make", "a bakery", "--preset", "draft",
               "--out", str(tmp_path / "out"), "--style", "ink drawing", "--character",
               "Mara=a tall woman with a red scarf", "--character-picture",
               f"Mara={picture}"]
    estimate = subprocess.run([*command, "--estimate"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert estimate.returncode == 0, estimate.stderr
    for line in ("whole video", "scene 1 ", "scene 4 ", "total", "possible extras"):
        assert line in estimate.stdout, (line, estimate.stdout)
    assert fake.requests == []
    made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert made.returncode == 0, made.stderr
    session = Path(made.stdout.strip().splitlines()[-1]).parents[1]
    assert same_picture(session / "images" / "cast" / "mara.png", picture)
    for call in stills(fake):
        assert "Style: ink drawing." in (call.prompt or "")
    wrong = subprocess.run([*command[:-1], "Ada=ada.png"], env=env, capture_output=True,
                           text=True, timeout=120, check=False)
    assert wrong.returncode == 2 and "--character-picture" in wrong.stderr
    assert "'Ada' is not a --character" in wrong.stderr
    twice = subprocess.run([*command, "--character", "mara=someone else", "--estimate"],
                           env=env, capture_output=True, text=True, timeout=120, check=False)
    assert twice.returncode == 2 and "--character: 'mara' is given twice" in twice.stderr


def test_the_writers_cast_is_checked_and_matched_by_name() -> None:
    answer = {"title": "T", "style": {"medium": "", "palette": "", "light": "", "camera": ""},
              "cast": [MARA, {"name": "", "appearance": "nobody"}, {"name": "Teo"},
                       {**MARA, "appearance": "a second Mara"}],
              "scenes": [{"narration": "One.", "visual": "a", "seconds": 4,
                          "cast": ["mara", "Ghost", 7, "MARA"]},
                         {"narration": "Two.", "visual": "b", "seconds": 4}]}
    script = parse_script(json.dumps(answer))
    assert script.style is None  # an empty style is no style
    assert [c.name for c in script.cast] == ["Mara"]  # unusable members left out, once each
    assert script.cast[0].appearance == MARA["appearance"]
    assert [c.name for c in script.scenes[0].characters] == ["Mara"]
    assert script.scenes[1].characters == ()


def test_a_request_refuses_a_bad_style_or_character_before_any_call(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"characters\[0\]\.reference"):
        VideoRequest(topic="x", characters=[Character("Ada", "tall",
                                                      reference=tmp_path / "none.png")])
    with pytest.raises(UsageError, match=r"characters\[1\]\.name: 'ada' is given twice"):
        VideoRequest(topic="x", characters=[Character("Ada", "tall"),
                                            Character("ada", "short")])
    with pytest.raises(UsageError, match="style"):
        VideoRequest(topic="x", style="   ")
    with pytest.raises(UsageError, match="name"):
        Character("Ada/Eve", "tall")


def another_image_model() -> str:
    """A Vertex AI image model served today that is not the default."""
    today = datetime.date.today()
    return next(m.id for m in CATALOGUE if m.kind == "image" and not m.default_on
                and m.status("vertex", today) == "current" and m.can.input_images)


def test_without_references_nobody_is_painted_and_no_picture_is_sent(
        fake: FakeGemini, tmp_path: Path) -> None:
    video = generator(vertex(fake), tmp_path, references=False,
                      image_model=another_image_model()
                      ).generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")
    assert portraits(fake) == [] and not (video.session / "images" / "cast").exists()
    for call in fake.calls("veo"):
        assert_one_look(call)  # the words still hold the look together
        assert call.images == 0 and not call.has_image


def test_a_veo_agent_without_a_painter_has_the_image_generator_paint(
        fake: FakeGemini, tmp_path: Path) -> None:
    connection = vertex(fake)
    agents = google_agents(connection, cache=AssetCache(tmp_path / "cache"), poll_interval=0.01,
                           image_model=another_image_model())
    clips = VeoClips(connection, "veo-3.1-generate-001", poll_interval=0.01)
    gen = VideoGenerator(attrs.evolve(agents, clip_generator=clips), output_dir=tmp_path / "o")
    video = gen.generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip") and len(portraits(fake)) == 2
    for call in fake.calls("veo"):
        assert call.images == len(SCENES[scene_of(call)][1])


def test_a_rewrite_the_service_could_not_answer_is_retried_not_a_refusal(
        fake: FakeGemini, tmp_path: Path) -> None:
    fake.text = rewritten
    fake.fail("veo", "filtered", match=SCENES[1][0])
    fake.fail("text", "rate_limit", retry_after=0)  # the rewrite request, once
    video = generator(vertex(fake), tmp_path).generate_sync(topic="a bakery", preset="draft")
    assert video.tiers == ("clip", "clip", "clip")
    step = manifest(video.session)["steps"]["scene-001.visual"]
    assert step["status"] == "done" and "could not be rewritten" not in json.dumps(step)
    assert step["data"]["resilience"]["retries"]  # the call was retried after the 429


def test_a_reference_that_is_not_a_picture_is_refused_before_any_call(
        fake: FakeGemini, tmp_path: Path) -> None:
    notes = tmp_path / "ada.png"
    notes.write_text("not a picture")
    request = VideoRequest(topic="a bakery", preset="draft",
                           characters=[Character("Ada", "tall", reference=notes)])
    with pytest.raises(UsageError, match=r"characters\[0\]\.reference: .* not a picture"):
        generator(vertex(fake), tmp_path).generate_sync(request)
    assert fake.requests == []


def test_cast_pictures_get_distinct_file_names() -> None:
    names = ["Ana Maria", "Ana-Maria", "李明", "王芳", "Mara"]
    slugs = _cast_slugs([Character(name, "someone") for name in names])
    assert slugs["Mara"] == "mara" and len(set(slugs.values())) == len(names)
    assert all(re.fullmatch(r"[a-z0-9-]+", slug) for slug in slugs.values())
