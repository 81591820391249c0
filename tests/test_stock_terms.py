"""Search terms per scene: from the author (Markdown comment, Python), from the Gemini
script writer, or extracted offline with YAKE; how the stock agents search them (in order,
at most three) and choose among the results (orientation, length, size, not already
shown), over real HTTP against FakeStock's keyword catalogue."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_stock import PEXELS_KEY, FakeStock, Item
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen import Preset, Scene, Script, VideoGenerator, VideoRequest, write_report
from avgen._models import search_terms
from avgen.agents._download import Reach
from avgen.agents._keywords import extract_terms
from avgen.agents.google._script import parse_script
from avgen.agents.local import LocalScriptWriter
from avgen.agents.stock import PexelsClips, PexelsImages
from avgen.agents.stock._kinds import MAX_SEARCHES, rank_candidates
from avgen.errors import NoMatch, UsageError
from avgen.testing import ToneNarrator

SMALL = Preset("small", 320, 180, fps=12, encoder_preset="ultrafast")


@pytest.fixture
def fake() -> Iterator[FakeStock]:
    items = [Item(1, ("coral", "reef", "fish"), "reef", duration=12),
             Item(2, ("coral", "reef"), "reef", duration=12),
             Item(3, ("fish", "ocean"), "reef", duration=12),
             Item(4, ("volcano", "lava"), "volcano", duration=3),
             Item(5, ("volcano", "lava"), "volcano", duration=15),
             Item(6, ("volcano",), "volcano", shape="portrait")]
    with FakeStock(catalogue=items) as server:
        yield server
    assert server.errors == []


# -- the terms themselves


@pytest.mark.parametrize(("value", "field", "said"), [
    ([], "search_terms", "at least one"),
    (["!!!"], r"search_terms\[0\]", "no letter or digit"),
    (["coral reef", " ... "], r"search_terms\[1\]", "no letter or digit"),
    (["one two three four"], r"search_terms\[0\]", "too long"),
    ("coral reef", "search_terms", "must be a list"),
    ([7], r"search_terms\[0\]", "must be a string"),
])
def test_bad_terms_are_refused_naming_the_field(value: Any, field: str, said: str) -> None:
    with pytest.raises(UsageError, match=rf"scenes\[2\]\.{field}.*{said}"):
        Scene(2, "Some words.", search_terms=value)


def test_terms_are_folded_and_kept_in_order() -> None:
    scene = Scene(0, "Words.", search_terms=("coral   reef", "Coral Reef", "fish", "ocean"))
    assert scene.search_terms == ("coral reef", "fish", "ocean")
    assert Scene(0, "Words.").search_terms is None
    saved = Script("T", [scene]).to_dict()
    assert Script.from_dict(json.loads(json.dumps(saved))).scenes[0] == scene


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=30), min_size=1, max_size=8))
def test_any_list_of_strings_is_kept_or_refused_with_the_field(terms: list[str]) -> None:
    try:
        kept = search_terms(terms, "scenes[0].search_terms")
    except UsageError as exc:
        assert "scenes[0].search_terms" in str(exc)
        return
    assert 1 <= len(kept) <= len(terms)
    assert all(1 <= len(t.split()) <= 3 and any(c.isalnum() for c in t) for t in kept)


def test_terms_are_extracted_offline_in_the_languages_yake_serves() -> None:
    assert extract_terms("", "Coral reefs are home to thousands of colourful fish, and "
                             "they are dying as the ocean warms.") == (
        "coral reefs", "coral", "fish")
    # words too vague to film are left out: "night" here
    assert extract_terms("", "Night falls on the town.") == ("town", "falls", "night falls")
    french = extract_terms("Les abeilles", "Les abeilles butinent les fleurs du jardin.",
                           "fr-FR")
    assert "abeilles" in french and all(len(t.split()) <= 2 for t in french)
    # not served (no spaces between words): the heading's first words, or nothing
    assert extract_terms("東京の朝", "東京は大きな都市です。", "ja") == ("東京の朝",)
    assert extract_terms("", "東京は大きな都市です。", "ja") == ()
    assert extract_terms("", "!!! ... ?", "en") == ()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=120), st.text(max_size=30),
       st.sampled_from(["en", "hi", "ar", "ru", "ja", "fr", None]))
def test_extracted_terms_are_always_valid(text: str, title: str, language: str | None) -> None:
    terms = extract_terms(title, text, language)
    assert len(terms) <= 3
    assert terms == () or search_terms(terms) == terms  # never a term a Scene refuses


def test_words_with_combining_marks_stay_whole() -> None:
    assert extract_terms("", "नमस्ते दुनिया", "hi") == ("नमस्ते दुनिया", "नमस्ते", "दुनिया")


# -- where the terms come from


def write(script: str) -> Script:
    request = VideoRequest(script=script, language="en")
    return asyncio.run(LocalScriptWriter().write(request))


def test_a_markdown_comment_gives_the_terms_of_its_section() -> None:
    script = write("# Reefs\n<!-- search: coral reef, tropical fish; ocean -->\n\n"
                   "Coral reefs shelter fish.\n\nThey are dying.\n\n"
                   "# Volcanoes\n\nLava pours down the slopes of the volcano.")
    first, second, third = script.scenes
    assert first.search_terms == second.search_terms == ("coral reef", "tropical fish",
                                                          "ocean")
    assert "search" not in first.narration and "coral reef," not in first.narration
    # the next heading ends the comment's reach: its terms are extracted
    assert third.search_terms == ("lava pours", "lava", "pours")


@pytest.mark.parametrize(("comment", "said"), [
    ("<!-- search: -->", "lists no search terms"),
    ("<!-- search: coral reef, ?! -->", "no letter or digit"),
    ("<!-- search: the great barrier reef of australia -->", "too long"),
])
def test_a_bad_comment_is_refused_before_any_request(comment: str, said: str,
                                                     tmp_path: Path) -> None:
    with FakeStock() as fake:
        generator = VideoGenerator(
            narrator=ToneNarrator(), output_dir=tmp_path,
            clip_generator=PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url))
        with pytest.raises(UsageError, match=r"<!-- search:.*" + said):
            generator.generate_sync(script=f"{comment}\n\nCoral reefs.", preset=SMALL)
        assert fake.count() == 0


def test_the_gemini_script_keeps_its_usable_terms_else_extracts_them() -> None:
    answer = {"title": "T", "scenes": [
        {"narration": "Korallenriffe beherbergen bunte Fische.", "visual": "v", "seconds": 4,
         "search_terms": ["coral reef", "a far too long search term", "!!", 7, "fish"]},
        {"narration": "Die Lava fließt den Vulkan hinab.", "visual": "v", "seconds": 4}]}
    first, second = parse_script(json.dumps(answer), language="de").scenes
    assert first.search_terms == ("coral reef", "fish")
    assert second.search_terms == ("vulkan hinab", "lava", "vulkan")


# -- searching and choosing


def scene(index: int, *terms: str) -> Scene:
    return Scene(index, "Words for the scene.", search_terms=terms)


def run_agent(agent: Any, scenes: list[Scene], session: Path, preset: Preset = SMALL,
              seconds: float = 10.0) -> list[Any]:
    async def go() -> list[Any]:
        made = []
        for each in scenes:
            target = session / "video_clips" / f"scene_{each.index:03d}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if isinstance(agent, PexelsClips):
                    made.append(await agent.generate(each, seconds, preset, target))
                else:
                    made.append(await agent.generate(each, preset, target))
            except NoMatch as exc:
                made.append(exc)
        return made

    return asyncio.run(go())


def test_terms_are_searched_in_order_and_at_most_three(fake: FakeStock,
                                                       tmp_path: Path) -> None:
    agent = PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url)
    [asset] = run_agent(agent, [scene(0, "tropical coral", "coral reef", "fish")], tmp_path)
    assert [r.query["query"] for r in fake.calls("pexels-videos")] == ["tropical coral",
                                                                      "coral reef"]
    assert asset.source.query == "coral reef"
    assert asset.source.notes[0] == "searched 'tropical coral': no video"
    fake.reset()
    [missed] = run_agent(agent, [scene(1, "a", "b", "c", "d", "coral")], tmp_path)
    assert isinstance(missed, NoMatch) and "'c': no video" in str(missed)
    assert len(fake.calls("pexels-videos")) == MAX_SEARCHES == 3


def test_no_item_is_shown_twice_while_the_searches_offer_others(fake: FakeStock,
                                                                tmp_path: Path) -> None:
    agent = PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url)
    scenes = [scene(i, "coral reef", "fish") for i in range(4)]
    made = run_agent(agent, scenes, tmp_path / "one")
    pages = [m.source.page_url for m in made[:3]]
    assert len(set(pages)) == 3  # items 1 and 2 (coral reef), then 3 (fish)
    assert made[2].source.query == "fish"
    assert isinstance(made[3], NoMatch) and "already shown" in str(made[3])
    # another video (another session folder) may show them again
    again = run_agent(agent, scenes[:1], tmp_path / "two")
    assert again[0].source.page_url == pages[0]


def test_the_clip_lasting_the_shot_wins_and_the_runner_up_is_recorded(
        fake: FakeStock, tmp_path: Path) -> None:
    agent = PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url)
    [asset] = run_agent(agent, [scene(0, "volcano lava")], tmp_path, seconds=8.0)
    assert asset.source.page_url.endswith("-5/")  # 15 s, not the first listed (3 s)
    assert asset.source.score == 0.99  # second in the service's list
    assert asset.source.runner_up is not None and asset.source.runner_up_score is not None
    assert asset.source.runner_up_score < asset.source.score


def test_rank_puts_orientation_first_then_length_and_size() -> None:
    reach = Reach(("example.com",))

    def item(n: int, width: int, height: int, duration: float = 10) -> dict[str, Any]:
        return {"id": n, "duration": duration,
                "renditions": [[width, height, f"https://example.com/{n}.mp4"]]}

    candidates = [item(1, 720, 1280), item(2, 640, 360), item(3, 1920, 1080),
                  item(4, 1920, 1080, duration=2), {"id": 5, "renditions": []}]
    ranked = rank_candidates(candidates, "landscape", reach, (1280, 720), 8.0,
                             used={":3"})
    # 3 is used; a small file (-0.2) beats a clip lasting a quarter of the shot (-0.225)
    assert [r.candidate["id"] for r in ranked] == [2, 4, 1]
    assert ranked[0].misses == ("resolution",) and ranked[1].misses == ("length",)
    assert ranked[2].misses == ("orientation", "resolution")  # 720 wide for 1280


def test_a_whole_video_records_the_terms_and_the_one_that_found_each_picture(
        fake: FakeStock, tmp_path: Path) -> None:
    generator = VideoGenerator(
        narrator=ToneNarrator(), output_dir=tmp_path,
        clip_generator=PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url),
        image_generator=PexelsImages(api_key=PEXELS_KEY, base_url=fake.base_url))
    video = generator.generate_sync(
        script="<!-- search: coral reef, fish -->\nCoral reefs shelter fish.\n\n"
               "<!-- search: volcano lava -->\nLava pours down.", preset=SMALL)
    assert video.tiers == ("clip", "clip")
    steps = json.loads((video.session / "metadata" / "manifest.json")
                       .read_text("utf-8"))["steps"]
    first = steps["scene-000.visual"]["data"]
    assert first["search_terms"] == ["coral reef", "fish"]
    assert first["asset"]["source"]["query"] == "coral reef"
    credits = (video.path.parent / "credits.txt").read_text("utf-8").splitlines()
    assert [line.split(":")[0] for line in credits] == ["Scene 1", "Scene 2"]
    page = write_report(video).read_text("utf-8")
    assert ('Search terms: <span class="term found">coral reef</span>, '
            '<span class="term">fish</span>; found with <strong class="query">coral reef'
            '</strong>') in page
