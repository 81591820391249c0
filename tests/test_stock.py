"""The stock agents (Pexels, Pixabay) over real HTTP against FakeStock: whole videos made
from stock clips, credits, the cache, rate limits, outages, orientation and renditions, and
a missing key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_stock import PEXELS_KEY, PIXABAY_KEY, FakeStock
from hypothesis import given, settings
from hypothesis import strategies as st
from media import decode

from avgen import Preset, VideoGenerator
from avgen.agents import AssetCache, load_agents
from avgen.agents._keywords import extract_terms
from avgen.agents.stock import (
    PexelsClips,
    PexelsImages,
    PixabayClips,
    PixabayImages,
    _common,
    stock_agents,
)
from avgen.agents.stock._common import Rendition, choose_rendition, rate_limit_delay
from avgen.errors import UsageError
from avgen.resilience import set_testing
from avgen.testing import ToneNarrator

SCRIPT = "Waves roll onto the beach.\n\nGulls cry over the harbour.\n\nNight falls on the town."
SMALL = Preset("small", 320, 180, fps=12, encoder_preset="ultrafast")


@pytest.fixture
def fake() -> Iterator[FakeStock]:
    with FakeStock() as server:
        yield server
    assert server.errors == []


def pexels(fake: FakeStock, cache: Path | None, **options: Any) -> dict[str, Any]:
    store = AssetCache(cache) if cache is not None else None
    return {"clip_generator": PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url,
                                          cache=store, **options),
            "image_generator": PexelsImages(api_key=PEXELS_KEY, base_url=fake.base_url,
                                            cache=store, **options)}


def generator(tmp_path: Path, agents: dict[str, Any], name: str = "out") -> VideoGenerator:
    return VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path / name, **agents)


def steps(video_session: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((video_session / "metadata" / "manifest.json")
                                      .read_text("utf-8"))
    return data["steps"]  # type: ignore[no-any-return]


def credits(video: Any) -> list[str]:
    return (video.path.parent / "credits.txt").read_text("utf-8").splitlines()


def test_a_video_from_pexels_clips_credits_every_clip(fake: FakeStock, tmp_path: Path) -> None:
    video = generator(tmp_path, pexels(fake, tmp_path / "cache")).generate_sync(
        script=SCRIPT, preset="draft")
    decoded = decode(video.path)
    assert decoded["errors"] == "" and decoded["frames"] > 0 and decoded["has_audio"]
    assert (decoded["width"], decoded["height"]) == (360, 640)
    assert video.tiers == ("clip", "clip", "clip")
    searches = fake.calls("pexels-videos")
    assert len(searches) == 3 and fake.count("pexels-photos") == 0
    assert all(r.query["orientation"] == "portrait" for r in searches)
    assert all(r.headers["Authorization"] == PEXELS_KEY for r in searches)
    # each scene's first search term (extracted offline from its words), not its sentence
    assert {r.query["query"] for r in searches} == {"waves roll", "gulls cry", "town"}
    # the smallest rendition covering 360x640 is exactly 360x640; no key goes to the CDN
    downloads = fake.calls("download")
    assert [r.path.split("/")[3] for r in downloads] == ["360x640"] * 3
    assert all("Authorization" not in r.headers for r in downloads)
    lines = credits(video)
    assert len(lines) == 3
    for number, line in enumerate(lines, 1):
        assert line.startswith(f"Scene {number}: ")
        assert "by Videographer 1 (pexels, Pexels License)" in line
        assert "<https://www.pexels.com/video/" in line
    source = steps(video.session)["scene-000.visual"]["data"]["asset"]["source"]
    assert source["author_url"] == "https://www.pexels.com/@videographer1"
    assert source["title"] == "Waves roll"
    assert source["query"] == "waves roll" and source["score"] == 1.0
    assert source["runner_up"] == "Waves roll" and source["runner_up_score"] == 0.99
    script = json.loads((video.session / "scripts" / "script.json").read_text("utf-8"))
    assert script["scenes"][0]["search_terms"][0] == "waves roll"


def test_a_rerun_with_the_same_cache_asks_the_service_nothing(fake: FakeStock,
                                                             tmp_path: Path) -> None:
    first = generator(tmp_path, pexels(fake, tmp_path / "cache"), "one").generate_sync(
        script=SCRIPT, preset=SMALL)
    assert fake.count("search") == 3 and fake.count("download") == 3
    fake.reset()
    again = generator(tmp_path, pexels(fake, tmp_path / "cache"), "two").generate_sync(
        script=SCRIPT, preset=SMALL)
    assert fake.count() == 0
    assert again.tiers == first.tiers == ("clip", "clip", "clip")
    assert credits(again) == credits(first)
    assert decode(again.path)["errors"] == ""
    cache = steps(again.session)["scene-000.visual"]["data"]["resilience"]["cache"]
    assert set(cache) == {"hit"}


@pytest.mark.parametrize("style", ["epoch", "seconds"])
def test_a_rate_limit_is_waited_out_until_the_reset(fake: FakeStock, tmp_path: Path,
                                                    style: str) -> None:
    fake.rate_limit(1, reset=1.0, style=style)
    video = generator(tmp_path, pexels(fake, None)).generate_sync(
        script="Waves roll onto the beach.", preset=SMALL)
    assert video.tiers == ("clip",)
    limited, retried = fake.calls("pexels-videos")
    assert limited.status == 429 and retried.status == 200
    if style == "epoch":  # Pexels: the UNIX time of the reset; never called before it
        reset = float(limited.answer_headers["X-Ratelimit-Reset"])
        assert reset > 1e9 and retried.at >= reset
    else:  # Pixabay: seconds from the answer
        assert limited.answer_headers["X-Ratelimit-Reset"] == "1"
        assert retried.at - limited.at >= 1.0
    resilience = steps(video.session)["scene-000.visual"]["data"]["resilience"]
    assert resilience["attempts"] == 2 and "429" in resilience["retries"][0]["error"]
    assert resilience["retries"][0]["requested"] >= (0.5 if style == "epoch" else 1.0)


def test_a_reset_too_far_off_gives_up_at_once_and_falls_back(fake: FakeStock,
                                                            tmp_path: Path) -> None:
    fake.rate_limit(10, reset=3600.0)
    video = generator(tmp_path, pexels(fake, None)).generate_sync(
        script="Waves roll onto the beach.", preset=SMALL)
    assert video.tiers == ("card",)
    # one request per agent: the hour-long reset is not waited, and not asked again
    assert fake.count("pexels-videos") == 1 and fake.count("pexels-photos") == 1
    step = steps(video.session)["scene-000.visual"]
    assert step["status"] == "fallback" and "come back" in step["error"]


@pytest.mark.parametrize("down", ["500", "refuse"])
def test_a_service_that_is_down_trips_the_breaker_and_scenes_fall_back(
        fake: FakeStock, tmp_path: Path, down: str) -> None:
    fake.down = down
    script = "\n\n".join(f"Scene number {n} shows the sea." for n in range(6))
    with set_testing():  # no backoff sleeping; the attempts stay the policy's
        video = generator(tmp_path, pexels(fake, None, max_concurrency=1)).generate_sync(
            script=script, preset=SMALL)
    assert video.tiers == ("card",) * 6
    assert decode(video.path)["errors"] == ""
    # 3 failed attempts open each agent's breaker; the other scenes never reach the service
    assert fake.count("pexels-videos") == 3 and fake.count("pexels-photos") == 3
    last = steps(video.session)["scene-005.visual"]
    assert last["status"] == "fallback" and last["tier"] == "card"
    assert "circuit" in last["error"].lower()


def test_a_scene_with_no_result_falls_to_the_next_tier(fake: FakeStock, tmp_path: Path) -> None:
    terms = extract_terms("", "Gulls cry over the harbour.")
    assert terms == ("gulls cry", "gulls", "cry")
    fake.empty.update(terms)
    video = generator(tmp_path, pexels(fake, tmp_path / "cache")).generate_sync(
        script=SCRIPT, preset=SMALL)
    assert video.tiers == ("clip", "card", "clip")
    empty = [r for r in fake.calls("search") if r.query["query"] in terms]
    # each term once for clips, once for photos, in order: no retries
    assert [r.query["query"] for r in empty if r.kind == "pexels-videos"] == list(terms)
    assert [r.query["query"] for r in empty if r.kind == "pexels-photos"] == list(terms)
    # a search with no result is nothing for the scene, not a failure
    step = steps(video.session)["scene-001.visual"]
    assert step["status"] == "done" and step["error"] is None
    assert any("'gulls cry': no video; 'gulls': no video; 'cry': no video" in note
               for note in step["data"]["passed"])
    assert step["data"]["search_terms"] == list(terms)


def test_scenes_with_no_result_never_open_the_breaker(fake: FakeStock, tmp_path: Path) -> None:
    texts = [f"Nothing matches scene {n}." for n in range(5)]
    script = "\n\n".join(texts)
    fake.results = 0
    video = generator(tmp_path, pexels(fake, None, max_concurrency=1)).generate_sync(
        script=script, preset=SMALL)
    assert video.tiers == ("card",) * 5
    # each term searched once per video (the scenes share them here), at most 3 a scene
    searches = {term for text in texts for term in extract_terms("", text)[:3]}
    assert fake.count("pexels-videos") == fake.count("pexels-photos") == len(searches) == 3


def test_searches_are_asked_again_after_24_hours(fake: FakeStock, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    generator(tmp_path, pexels(fake, tmp_path / "cache"), "one").generate_sync(
        script=SCRIPT, preset=SMALL)
    fake.reset()
    later = time.time() + 24 * 3600 + 60

    class Later:
        @staticmethod
        def time() -> float:
            return later

    monkeypatch.setattr(_common, "time", Later)
    again = generator(tmp_path, pexels(fake, tmp_path / "cache"), "two").generate_sync(
        script=SCRIPT, preset=SMALL)
    assert again.tiers == ("clip",) * 3
    assert fake.count("pexels-videos") == 3


def test_the_pixabay_key_never_shows_in_errors(fake: FakeStock, tmp_path: Path) -> None:
    fake.down = "500"
    images = PixabayImages(api_key=PIXABAY_KEY, base_url=fake.base_url, cache=None)
    with set_testing():
        video = generator(tmp_path, {"image_generator": images}).generate_sync(
            script=SCRIPT, preset=SMALL)
    assert video.tiers == ("card",) * 3
    assert fake.calls("pixabay-images")[0].query["key"] == PIXABAY_KEY
    for path in video.session.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".log", ".jsonl"):
            assert PIXABAY_KEY not in path.read_text("utf-8", "replace"), path
    assert PIXABAY_KEY not in repr(images)


def test_pixabay_photos_and_clips(fake: FakeStock, tmp_path: Path) -> None:
    store = AssetCache(tmp_path / "cache")
    images = PixabayImages(api_key=PIXABAY_KEY, base_url=fake.base_url, cache=store)
    video = generator(tmp_path, {"image_generator": images}).generate_sync(
        script=SCRIPT, preset="draft")
    assert video.tiers == ("image",) * 3 and decode(video.path)["errors"] == ""
    searches = fake.calls("pixabay-images")
    assert all(r.query["orientation"] == "vertical" and r.query["key"] == PIXABAY_KEY
               for r in searches)
    # portrait 1600x2400: webformat 427x640 covers 360x640 (large is 853x1280)
    assert {r.path.split("/")[3] for r in fake.calls("download")} == {"427x640"}
    lines = credits(video)
    assert len(lines) == 3 and all("(pixabay, Pixabay Content License)" in line
                                   and "<https://pixabay.com/photos/" in line
                                   and " by artist1 " in line for line in lines)
    fake.reset()
    clips = PixabayClips(api_key=PIXABAY_KEY, base_url=fake.base_url, cache=store)
    landscape = Preset("wide", 640, 360, fps=12, encoder_preset="ultrafast")
    video = generator(tmp_path, {"clip_generator": clips}, "clips").generate_sync(
        script="Waves roll onto the beach.", preset=landscape)
    assert video.tiers == ("clip",)
    # Pixabay cannot filter by orientation: the landscape result (the second) is chosen
    [download] = fake.calls("download")
    assert download.path.split("/")[3] == "640x360"
    assert "orientation" not in fake.calls("pixabay-videos")[0].query
    assert "by filmer2 (pixabay" in credits(video)[0]


def test_pexels_photos_in_each_orientation(fake: FakeStock, tmp_path: Path) -> None:
    presets = {"landscape": Preset("l", 1280, 720), "portrait": Preset("p", 360, 640),
               "square": Preset("s", 1080, 1080)}
    expected = {"landscape": "1880x1253", "portrait": "433x650", "square": "1300x1300"}
    for shape, preset in presets.items():
        fake.reset()
        agent = PexelsImages(api_key=PEXELS_KEY, base_url=fake.base_url, cache=None)
        target = tmp_path / f"{shape}.jpg"
        from avgen import Scene

        asset = _run(agent.generate(Scene(index=0, narration="Waves.", visual="ocean waves",
                                                  search_terms=["ocean waves"]),
                                    preset, target))
        [search] = fake.calls("pexels-photos")
        assert search.query == {"query": "ocean waves", "orientation": shape,
                                "per_page": "15"}
        [download] = fake.calls("download")
        assert download.path.split("/")[3] == expected[shape]
        assert f"{asset.width}x{asset.height}" == expected[shape]
        assert asset.source is not None and asset.source.title == "ocean waves (1)"


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


renditions = st.lists(st.builds(Rendition, st.integers(1, 4000), st.integers(1, 4000),
                                st.just("u")), min_size=1, max_size=8)


@settings(deadline=None, max_examples=200)
@given(renditions, st.integers(1, 4000), st.integers(1, 4000))
def test_the_smallest_covering_rendition_is_chosen_else_the_largest(
        options: list[Rendition], width: int, height: int) -> None:
    chosen = choose_rendition(options, width, height)
    assert chosen in options
    covering = [r for r in options if r.width >= width and r.height >= height]
    if covering:
        assert chosen in covering
        assert chosen.width * chosen.height == min(r.width * r.height for r in covering)
    else:
        assert chosen.width * chosen.height == max(r.width * r.height for r in options)


@settings(deadline=None)
@given(st.floats(0, 10_000), st.floats(1.7e9, 1.8e9))
def test_a_reset_is_read_as_seconds_or_as_a_unix_time(delay: float, now: float) -> None:
    assert rate_limit_delay({"X-Ratelimit-Reset": f"{delay!r}"}, now) == pytest.approx(delay)
    assert rate_limit_delay({"x-ratelimit-reset": f"{now + delay!r}"}, now) == pytest.approx(
        delay, abs=1e-3)
    assert rate_limit_delay({"Retry-After": "7", "X-Ratelimit-Reset": "2"}, now) == 7
    assert rate_limit_delay({}, now) is None


def test_a_missing_key_is_refused_before_anything_is_made(fake: FakeStock, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.delenv("PEXELS_API_KEY", raising=False)
    monkeypatch.delenv("PIXABAY_API_KEY", raising=False)
    agents = {"clip_generator": PexelsClips(base_url=fake.base_url)}
    narrator = ToneNarrator()
    with pytest.raises(UsageError) as caught:
        VideoGenerator(narrator=narrator, output_dir=tmp_path / "out",
                       **agents).generate_sync(script=SCRIPT, preset=SMALL)
    assert caught.value.field == "PEXELS_API_KEY"
    assert "PEXELS_API_KEY" in str(caught.value)
    assert fake.count() == 0 and narrator.calls == 0
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    family = stock_agents(env={}, cache=None)
    with pytest.raises(UsageError):
        VideoGenerator(family, output_dir=tmp_path / "out").check(
            __import__("avgen").VideoRequest(script=SCRIPT))


def test_the_stock_family_by_name(tmp_path: Path) -> None:
    both = load_agents("stock", env={"PEXELS_API_KEY": "a", "PIXABAY_API_KEY": "b"},
                       cache=False)
    assert isinstance(both.clip_generator, PexelsClips)
    assert isinstance(both.image_generator, PexelsImages)
    assert both.names()["clip_generator"] == "pexels:clips"
    only = stock_agents(env={"PIXABAY_API_KEY": "b"}, cache=AssetCache(tmp_path / "c"))
    assert isinstance(only.clip_generator, PixabayClips)
    assert isinstance(only.image_generator, PixabayImages)
    assert only.image_generator.cache is not None
    with pytest.raises(UsageError):
        stock_agents(env={}, cache="nope")
    assert type(both.narrator).__name__ == "PiperNarrator"


def test_avgen_make_agents_stock_without_a_key_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from avgen._cli import main

    monkeypatch.delenv("PEXELS_API_KEY", raising=False)
    monkeypatch.delenv("PIXABAY_API_KEY", raising=False)
    script = tmp_path / "sea.md"
    script.write_text("The sea is wide.\n", "utf-8")
    status = main(["make", "--script", str(script), "--agents", "stock", "--no-cache",
                   "--out", str(tmp_path / "out")])
    assert status == 2
    assert "PEXELS_API_KEY" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
