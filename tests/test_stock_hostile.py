"""Stock answers and servers that cannot be trusted, over real HTTP against FakeStock: file
links, hosts an answer may not name, redirects that would carry the key away or never end,
fields of the wrong type, downloads that drip or never stop growing. Each scene falls to
the next source with the reason in the manifest; nothing else is opened, and no key leaves
its service."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import make_mp4
from fake_stock import PEXELS_KEY, PIXABAY_KEY, FakeStock
from media import decode

from avgen import Preset, VideoGenerator
from avgen.agents.stock import PexelsClips, PexelsImages, PixabayClips, PixabayImages
from avgen.resilience import set_testing
from avgen.testing import ToneNarrator

SMALL = Preset("small", 320, 180, fps=12, encoder_preset="ultrafast")
ONE = "Waves roll onto the beach."


@pytest.fixture
def fake() -> Iterator[FakeStock]:
    with FakeStock() as server:
        yield server
    assert server.errors == []


def make(tmp_path: Path, **agents: Any) -> Any:
    with set_testing():  # no backoff sleeping; the attempts stay the policy's
        return VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path / "out",
                              **agents).generate_sync(script=ONE, preset=SMALL)


def pexels(fake: FakeStock, **options: Any) -> dict[str, Any]:
    return {"clip_generator": PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url,
                                          cache=None, **options),
            "image_generator": PexelsImages(api_key=PEXELS_KEY, base_url=fake.base_url,
                                            cache=None, **options)}


def visual_error(video: Any) -> str:
    manifest = json.loads((video.session / "metadata" / "manifest.json").read_text("utf-8"))
    step = manifest["steps"]["scene-000.visual"]
    assert step["status"] == "fallback"
    return str(step["error"])


# ---------------------------------------------------------------------------- links


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_file_link_in_an_answer_is_never_opened(fake: FakeStock, tmp_path: Path,
                                                  kind: str) -> None:
    local = tmp_path / "local.mp4"
    if kind == "fifo":
        os.mkfifo(local)  # opening it would wait for a writer for ever
    else:
        local.write_bytes(make_mp4(640, 360, 1.5))
    fake.links = local.as_uri()
    video = make(tmp_path, **pexels(fake))
    assert video.tiers == ("card",)
    assert fake.count("download") == 0
    error = visual_error(video)
    assert "file:// is never downloaded" in error and "pexels:clips" in error
    assert "pexels:images" in error
    assert decode(video.path)["errors"] == ""


def test_a_link_to_a_host_the_answer_may_not_name_is_refused(fake: FakeStock,
                                                            tmp_path: Path) -> None:
    fake.links = "https://files.example.net/clip.mp4"
    video = make(tmp_path, **pexels(fake))
    assert video.tiers == ("card",)
    error = visual_error(video)
    assert "files.example.net is not a host the answer may name (pexels.com" in error


# ------------------------------------------------------------------------ redirects


def test_the_key_never_follows_a_redirect_to_another_port(fake: FakeStock,
                                                         tmp_path: Path) -> None:
    with FakeStock() as other:
        fake.redirect(10, other.base_url)
        video = make(tmp_path, **pexels(fake))
        assert all("Authorization" not in r.headers for r in other.calls())
        assert other.count() == 0  # plain http only to the base URL set: refused
    assert video.tiers == ("card",)
    assert "redirected to an address that is refused: http:// is never" in visual_error(video)


def test_a_redirect_to_another_host_name_is_followed_without_the_key(fake: FakeStock,
                                                                    tmp_path: Path) -> None:
    """``localhost`` is the machine the base URL names, but not the service's origin: the
    search is asked there without the key, and refused."""
    port = fake.base_url.rsplit(":", 1)[1]
    fake.redirect(1, f"http://localhost:{port}")
    video = make(tmp_path, clip_generator=pexels(fake)["clip_generator"])
    searches = fake.calls("search")
    assert [r.headers.get("Authorization") for r in searches] == [PEXELS_KEY, None]
    assert [r.headers["Host"].split(":")[0] for r in searches] == ["127.0.0.1", "localhost"]
    assert video.tiers == ("card",)
    assert "HTTP 401" in visual_error(video)


def test_a_redirect_on_the_service_own_origin_keeps_the_key(fake: FakeStock,
                                                           tmp_path: Path) -> None:
    fake.redirect(1, fake.base_url)
    video = make(tmp_path, **pexels(fake))
    assert video.tiers == ("clip",)
    assert [r.headers.get("Authorization") for r in fake.calls("search")] == [PEXELS_KEY] * 2


def test_redirects_are_bounded(fake: FakeStock, tmp_path: Path) -> None:
    fake.redirect(100, fake.base_url)
    video = make(tmp_path, clip_generator=pexels(fake)["clip_generator"])
    assert video.tiers == ("card",)
    assert "redirected more than 5 times" in visual_error(video)
    assert fake.count("search") == 6  # the search and 5 redirects, not retried


@pytest.mark.parametrize("where", ["file:///etc/hostname", "ftp://127.0.0.1/clip.mp4"])
def test_a_download_redirected_to_another_scheme_is_refused(fake: FakeStock, tmp_path: Path,
                                                           where: str) -> None:
    fake.redirect(100, where, kind="download")
    video = make(tmp_path, clip_generator=pexels(fake)["clip_generator"])
    assert video.tiers == ("card",)
    scheme = where.split(":")[0]
    assert f"redirected to an address that is refused: {scheme}:// is never" in \
        visual_error(video)


# ------------------------------------------------------------------- wrong types


def _videos(answer: dict[str, Any], change: Callable[[dict[str, Any]], None]
            ) -> dict[str, Any]:
    for video in answer.get("videos", []):
        change(video)
    return answer


def _files(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(video: dict[str, Any]) -> None:
        for item in video["video_files"]:
            item[key] = value
    return change


NONE_USABLE = "gave 3 results, none with a file avgen may download"

WRONG: dict[str, tuple[Callable[[dict[str, Any]], Any], str | None]] = {
    # how the answer is changed; what the scene's error says (None: the clip is still used)
    "videos is a string": (lambda a: {**a, "videos": "many"},
                           "the answer's 'videos' is a str, not a list"),
    "answer is a list": (lambda a: [a], "the answer is a list, not an object"),
    "video_files is a string": (lambda a: _videos(a, lambda v: v.update(video_files="mp4")),
                                NONE_USABLE),
    "link is a number": (lambda a: _videos(a, _files("link", 12345)), NONE_USABLE),
    "width is a word": (lambda a: _videos(a, _files("width", "wide")), NONE_USABLE),
    "user is a list": (lambda a: _videos(a, lambda v: v.update(user=["x"])), None),
    "url is a number": (lambda a: _videos(a, lambda v: v.update(url=7)), None),
    "duration is a word": (lambda a: _videos(a, lambda v: v.update(duration="long")), None),
}


@pytest.mark.parametrize("wrong", sorted(WRONG))
def test_a_pexels_answer_with_fields_of_the_wrong_type_sends_the_scene_on(
        fake: FakeStock, tmp_path: Path, wrong: str) -> None:
    change, said = WRONG[wrong]
    fake.rewrite = lambda kind, answer: change(answer) if kind == "pexels-videos" else answer
    video = make(tmp_path, **pexels(fake))
    if said is None:  # the credit or the ranking loses a field; the clip itself is fine
        assert video.tiers == ("clip",)
        return
    assert video.tiers == ("image",)  # the photo search answered well
    error = visual_error(video)
    assert error.startswith("clip (pexels:clips): ") and said in error


PIXABAY_WRONG: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    # which search is changed (any, videos or images), and how
    "hits is a string": ("any", lambda a: {**a, "hits": "many"}),
    "videos is a string": ("pixabay-videos", lambda a: {
        **a, "hits": [{**hit, "videos": "large"} for hit in a["hits"]]}),
    "url is a number": ("pixabay-videos", lambda a: {**a, "hits": [
        {**hit, "videos": {name: {**v, "url": 5} for name, v in hit["videos"].items()}}
        for hit in a["hits"]]}),
    "webformatURL is a list": ("pixabay-images", lambda a: {**a, "hits": [
        {**hit, "webformatURL": [hit["webformatURL"]], "largeImageURL": None,
         "imageWidth": "big"} for hit in a["hits"]]}),
}


@pytest.mark.parametrize("wrong", sorted(PIXABAY_WRONG))
def test_a_pixabay_answer_with_fields_of_the_wrong_type_sends_the_scene_on(
        fake: FakeStock, tmp_path: Path, wrong: str) -> None:
    kinds, change = PIXABAY_WRONG[wrong]
    fake.rewrite = lambda kind, answer: (change(answer) if kinds in ("any", kind) else answer)
    agents = {"image_generator": PixabayImages(api_key=PIXABAY_KEY, base_url=fake.base_url,
                                               cache=None)}
    if kinds != "pixabay-images":
        agents["clip_generator"] = PixabayClips(api_key=PIXABAY_KEY, base_url=fake.base_url,
                                                cache=None)
    video = make(tmp_path, **agents)
    error = visual_error(video)
    assert video.tiers == (("image",) if kinds == "pixabay-videos" else ("card",))
    assert ("pixabay:clips" in error) == (kinds != "pixabay-images")
    assert ("pixabay:images" in error) == (kinds != "pixabay-videos")
    said = ("the answer's 'hits' is a str, not a list" if kinds == "any"
            else "gave 3 results, none with a file avgen may download")
    assert said in error and "no photo found" not in error and "no video found" not in error


# --------------------------------------------------------------- time and size


def test_a_dripping_download_stops_at_its_deadline(fake: FakeStock, tmp_path: Path) -> None:
    fake.drip = 0.5
    clips = PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url, cache=None, deadline=2.0)
    video = make(tmp_path, clip_generator=clips)
    assert video.tiers == ("card",)
    assert "did not finish within its deadline of 2 s" in visual_error(video)


@pytest.mark.parametrize("announced", [True, False])
def test_a_download_larger_than_the_cap_is_refused(fake: FakeStock, tmp_path: Path,
                                                   announced: bool) -> None:
    fake.no_length = not announced
    clips = PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url, cache=None,
                        max_bytes=1000)
    video = make(tmp_path, clip_generator=clips)
    assert video.tiers == ("card",)
    assert "larger than 1000 bytes" in visual_error(video)
    assert not list((video.session / "video_clips").glob("*"))
