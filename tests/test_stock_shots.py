"""Shots: a scene longer than `VideoRequest.max_shot` shows several stock clips in turn,
cut where a sentence (else a word) ends, each file once, each credited; over real HTTP
against FakeStock's catalogue, checked by decoding the video."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from fake_stock import PEXELS_KEY, FakeStock, Item
from hypothesis import given, settings
from hypothesis import strategies as st
from media import decode

from avgen import Preset, VideoGenerator, VideoRequest, write_report
from avgen._models import AudioAsset, Segment
from avgen.agents.stock import PexelsClips, PexelsImages
from avgen.errors import UsageError
from avgen.media._timeline import shot_cuts
from avgen.testing import ToneNarrator

SMALL = Preset("small", 320, 180, fps=12, encoder_preset="ultrafast")


@pytest.fixture
def fake() -> Iterator[FakeStock]:
    items = [Item(n, ("coral", "reef"), "reef", duration=6) for n in range(1, 4)]
    items.append(Item(9, ("volcano",), "volcano", duration=20))
    with FakeStock(catalogue=items) as server:
        yield server
    assert server.errors == []


def test_a_cut_goes_where_a_sentence_ends() -> None:
    audio = AudioAsset("a.wav", 12.0, segments=[
        Segment("One two three.", 0.0, 3.0), Segment("Four five six seven.", 3.2, 7.4),
        Segment("Eight nine.", 7.6, 12.0)])
    assert shot_cuts(audio, 8.0) == [7.5]  # the sentence end nearest 6.0 that fits
    assert shot_cuts(audio, 12.0) == []
    # 7.5 would make a first shot longer than 7 s: the gap between two words nearest 6.0
    timed = audio.with_words()
    gaps = [round((a.end + b.start) / 2, 3) for a, b in zip(timed.words, timed.words[1:],
                                                            strict=False)]
    [cut] = shot_cuts(timed, 7.0)
    assert cut in gaps and cut <= 7.0 and abs(cut - 6.0) < 1.2
    # no sentence end near enough: the gap between two words nearest the even cut
    words = AudioAsset("a.wav", 10.0, words=[Segment(w, n, n + 0.9) for n, w in
                                             enumerate("abcdefghij")])
    assert shot_cuts(words, 6.0) == [4.95]
    assert shot_cuts(words, 5.0) == [5.0]  # a gap would leave a shot over 5 s: the even cut


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.3, 6.0), min_size=1, max_size=12), st.floats(1.0, 10.0))
def test_shots_never_last_longer_than_max_shot(lengths: list[float], max_shot: float) -> None:
    segments, at = [], 0.0
    for length in lengths:
        segments.append(Segment("words here.", at, at + length))
        at += length + 0.2
    audio = AudioAsset("a.wav", at, segments=segments).with_words()
    cuts = shot_cuts(audio, max_shot)
    bounds = [0.0, *cuts, audio.duration]
    assert cuts == sorted(cuts) and len(cuts) == max(0, -(-round(at / max_shot, 6) // 1) - 1)
    assert all(b - a <= max_shot + 0.01 for a, b in pairwise(bounds))
    assert all(b - a > 0 for a, b in pairwise(bounds))


@pytest.mark.parametrize("value", [0.5, 0, 61, float("nan"), "5"])
def test_a_bad_max_shot_is_refused_naming_the_field(value: object) -> None:
    with pytest.raises(UsageError, match="max_shot"):
        VideoRequest(script="Hi.", max_shot=value)  # type: ignore[arg-type]


def test_the_default_shot_follows_the_frame() -> None:
    assert VideoRequest(script="Hi.", preset="shorts").shot_seconds == 5.0
    assert VideoRequest(script="Hi.", preset="youtube").shot_seconds == 7.0


def test_a_long_scene_shows_several_clips_each_once_and_credited(
        fake: FakeStock, tmp_path: Path) -> None:
    generator = VideoGenerator(
        narrator=ToneNarrator(seconds_per_word=0.5), output_dir=tmp_path,
        clip_generator=PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url),
        image_generator=PexelsImages(api_key=PEXELS_KEY, base_url=fake.base_url))
    script = ("<!-- search: coral reef -->\nThe reef is alive with colour. Fish dart between "
              "the corals. Divers watch in silence.\n\n"
              "<!-- search: volcano -->\nThe volcano wakes. Lava runs down to the sea below.")
    video = generator.generate_sync(script=script, preset=SMALL, max_shot=3.0)
    decoded = decode(video.path)
    assert decoded["errors"] == "" and (decoded["width"], decoded["height"]) == (320, 180)
    steps = json.loads((video.session / "metadata/manifest.json").read_text("utf-8"))["steps"]
    reef = [steps["scene-000.visual"], steps["scene-000.shot-01.visual"],
            steps["scene-000.shot-02.visual"]]
    pages = [step["data"]["asset"]["source"]["page_url"] for step in reef]
    assert len(set(pages)) == 3  # three shots, three files: none twice
    assert all(step["tier"] == "clip" for step in reef)
    assert (video.session / "video_clips/scene_000_2.mp4").is_file()
    # the volcano has one clip: its second shot finds no unused clip, and takes a photo
    assert steps["scene-001.visual"]["tier"] == "clip"
    later = steps["scene-001.shot-01.visual"]
    assert later["tier"] == "image" and later["data"]["asset"]["source"]["query"] == "volcano"
    assert any("every result already shown" in p for p in later["data"]["passed"])
    credits = (video.path.parent / "credits.txt").read_text("utf-8").splitlines()
    assert [line.split(":")[0] for line in credits] == [
        "Scene 1, shot 1 of 3", "Scene 1, shot 2 of 3", "Scene 1, shot 3 of 3",
        "Scene 2, shot 1 of 2", "Scene 2, shot 2 of 2"]
    # searches stay bounded: the shots of a scene reuse its search (kept for the run)
    assert len(fake.calls("pexels-videos")) == 2
    page = write_report(video).read_text("utf-8")
    assert "shot 3: clip (pexels:clips) \u201cCoral reef\u201d, found with \u201ccoral reef" \
        "\u201d" in page


def test_a_shot_with_nothing_new_lets_the_one_before_it_last(fake: FakeStock,
                                                            tmp_path: Path) -> None:
    generator = VideoGenerator(
        narrator=ToneNarrator(seconds_per_word=0.5), output_dir=tmp_path,
        clip_generator=PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url))
    video = generator.generate_sync(
        script="<!-- search: volcano -->\nThe volcano wakes. Lava runs down to the sea.",
        preset=SMALL, max_shot=3.0)
    assert video.tiers == ("clip",)
    steps = json.loads((video.session / "metadata/manifest.json").read_text("utf-8"))["steps"]
    assert steps["scene-000.shot-01.visual"]["tier"] == "card"  # recorded, not shown
    credits = (video.path.parent / "credits.txt").read_text("utf-8").splitlines()
    assert len(credits) == 1 and credits[0].startswith("Scene 1: ")
    assert abs(decode(video.path)["duration"] - 4.5) < 0.3


def test_avgen_make_refuses_a_bad_max_shot_before_any_request(
        fake: FakeStock, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from avgen._cli import main

    script = tmp_path / "s.md"
    script.write_text("Coral reefs.\n", "utf-8")
    status = main(["make", "--agents", "local", "--script", str(script), "--max-shot",
                   "0.5", "--out", str(tmp_path / "out")])
    assert status == 2 and "max_shot" in capsys.readouterr().err
    assert fake.count() == 0 and not (tmp_path / "out").exists()


def test_every_language_version_shows_the_shots_found_once(fake: FakeStock,
                                                            tmp_path: Path) -> None:
    """Shots and language versions together: the footage is searched and chosen once, for
    the original; each version shows the same shots over its own narration."""
    generator = VideoGenerator(
        narrator=ToneNarrator(seconds_per_word=0.5), output_dir=tmp_path,
        clip_generator=PexelsClips(api_key=PEXELS_KEY, base_url=fake.base_url))
    script = ("<!-- search: coral reef -->\nThe reef is alive with colour. Fish dart between "
              "the corals. Divers watch in silence.")
    spanish = ("El arrecife está lleno de color y de vida. Los peces nadan entre los corales "
               "sin parar. Los buzos miran en silencio desde arriba.")
    video = generator.generate_sync(script=script, preset=SMALL, max_shot=3.0,
                                    languages=("en", "es"), translations={"es": spanish})
    steps = json.loads((video.session / "metadata/manifest.json").read_text("utf-8"))["steps"]
    shots = sorted(step for step in steps if step.startswith("scene-000.") and "visual" in step)
    assert shots == ["scene-000.shot-01.visual", "scene-000.shot-02.visual",
                     "scene-000.visual"]  # made once: no visual step of the es version
    assert len(fake.calls("pexels-videos")) == 1
    english, spanish_video = video.versions["en"], video.versions["es"]
    for version in (english, spanish_video):
        decoded = decode(version.path)
        assert decoded["errors"] == "" and (decoded["width"], decoded["height"]) == (320, 180)
    # each version is as long as its own narration (the Spanish one has more words)
    assert decode(spanish_video.path)["duration"] > decode(english.path)["duration"] + 1.0


@settings(max_examples=100, deadline=None)
@given(st.floats(1.0, 30.0), st.floats(1.0, 30.0),
       st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6, unique=True))
def test_a_versions_shots_start_at_the_same_share_of_its_narration(
        original: float, translated: float, shares: list[float]) -> None:
    from avgen._models import ImageAsset
    from avgen._run import _shots
    from avgen._versions import Version

    audios = {"en": AudioAsset("en.wav", original), "es": AudioAsset("es.wav", translated)}
    pictures = [ImageAsset(f"{n}.png", 16, 16) for n in range(len(shares))]
    shots = list(zip(pictures, sorted(share * original for share in shares), strict=True))
    request = VideoRequest(script="Hi.")
    assert _shots(audios, shots, Version("en", request, original=True)) == shots
    scaled = _shots(audios, shots, Version("es", request, original=False))
    assert [picture for picture, _ in scaled] == pictures
    for (_, start), (_, moved) in zip(shots, scaled, strict=True):
        assert moved == pytest.approx(start / original * translated)
        assert 0 <= moved <= translated + 1e-9
