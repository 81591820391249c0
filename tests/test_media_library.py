"""Your media library: a folder of pictures and clips (made here with ffmpeg), each matched
to the scene that names its subject; the manifest shows the scores; a scene that names
nothing falls through to the card; a damaged file is refused before anything is made."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from media import decode

from avgen import Preset, RunEvent, VideoGenerator, VideoRequest, write_report
from avgen.agents.local import MediaLibrary, _library, local_agents
from avgen.agents.local._library import assign, name_words
from avgen.errors import UsageError
from avgen.media._ffmpeg import ffmpeg_exe
from avgen.testing import ToneNarrator

SMALL = Preset("small", 192, 336, fps=12, crf=30, encoder_preset="ultrafast")

CLIPS = {"river.mp4": (320, 180, 6.0), "ocean_waves.mp4": (320, 180, 3.0),
         "city-night.mp4": (180, 320, 4.0), "LighthouseAtDusk.mov": (320, 180, 5.0),
         "volcano.mp4": (240, 240, 2.0), "clouds/timelapse.mp4": (320, 180, 3.0)}
PICTURES = ["MountainSnow.jpg", "forest/trees.jpg", "bees.png", "desert_dunes.jpg",
            "rain-window.png", "coffee.jpg"]
TAGS = {"bees.txt": "honey hive pollen flowers", "coffee.txt": "espresso cup morning"}


def make_library(folder: Path) -> Path:
    """A dozen named clips and pictures, each a different colour."""
    for number, (name, (width, height, seconds)) in enumerate(CLIPS.items()):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=s={width}x{height}:r=12:d={seconds}", "-vf",
                        f"hue=h={number * 50}", "-c:v", "libx264", "-preset", "ultrafast",
                        "-pix_fmt", "yuv420p", "-g", "12", str(path)], check=True)
    for number, name in enumerate(PICTURES):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"color=c=0x{(number * 37) % 256:02x}60a0:s=320x240", "-frames:v", "1",
                        str(path)], check=True)
    for name, words in TAGS.items():
        (folder / name).write_text(words, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_library(tmp_path_factory.mktemp("media"))


SCRIPT = """The river winds slowly through the valley.

Waves crash on the ocean shore all night.

Snow covers the mountain peaks in winter.

Bees carry pollen back to the hive.

Nobody could say what happened next.

At dusk the keeper climbed the lighthouse stairs."""

EXPECTED = {0: ("clip", "river.mp4"), 1: ("clip", "ocean_waves.mp4"),
            2: ("image", "MountainSnow.jpg"), 3: ("image", "bees.png"), 4: ("card", None),
            5: ("clip", "LighthouseAtDusk.mov")}


def steps(video_manifest: Path) -> dict[str, dict[str, object]]:
    return dict(json.loads(video_manifest.read_text())["steps"])


def test_each_scene_gets_the_file_that_names_its_subject(library: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         ) -> None:
    ranked: list[int] = []
    real_rank = _library.rank

    def counted(files: Any, queries: Any) -> list[list[float]]:
        ranked.append(len(queries))
        return real_rank(files, queries)

    monkeypatch.setattr(_library, "rank", counted)
    media = MediaLibrary(library)
    generator = VideoGenerator(narrator=ToneNarrator(0.25), clip_generator=media.clips,
                               image_generator=media.images, output_dir=tmp_path)
    video = generator.generate_sync(script=SCRIPT, preset=SMALL)
    # the script is matched once, whole, though both views of the library prepare it
    assert ranked == [len(EXPECTED)]
    assert not decode(video.path)["errors"]
    recorded = steps(video.manifest)
    for index, (tier, name) in EXPECTED.items():
        step = recorded[f"scene-{index:03d}.visual"]
        assert step["tier"] == tier, (index, step)
        if name is None:
            assert step["data"]["asset"]["kind"] == "card"  # type: ignore[index]
            continue
        source = step["data"]["asset"]["source"]  # type: ignore[index]
        assert source["provider"] == "library" and source["title"] == name, source
        assert source["score"] > 0
        if source["runner_up"] is not None:
            assert source["runner_up_score"] <= source["score"]
    assert video.tiers == tuple(tier for tier, _ in EXPECTED.values())


def test_a_scene_the_library_has_a_picture_for_is_a_match_not_a_failure(
        library: Path, tmp_path: Path) -> None:
    """The clip view has nothing for a scene matched to a picture, and no view has anything
    for a scene matched to no file: the scene goes on to the next source, and nothing
    reports a failure — no fallback event (the command's "failed, falling back" line), no
    step error, no "Fell through" on the report."""
    media = MediaLibrary(library)
    events: list[RunEvent] = []
    generator = VideoGenerator(narrator=ToneNarrator(0.25), clip_generator=media.clips,
                               image_generator=media.images, output_dir=tmp_path,
                               on_event=events.append)
    video = generator.generate_sync(script=SCRIPT, preset=SMALL)
    assert [e.message for e in events if e.kind == "fallback"] == []
    recorded = steps(video.manifest)
    for index, (tier, name) in EXPECTED.items():
        step = recorded[f"scene-{index:03d}.visual"]
        assert step["status"] == "done" and step["error"] is None, step
        passed = step["data"].get("passed", [])  # type: ignore[attr-defined]
        if tier == "image":  # the clips had nothing: the scene names a picture
            assert passed == [f"clip (media-library-clips): scene {index + 1} matches a "
                              f"picture ({Path(str(name)).name})"]
        elif tier == "card":
            assert len(passed) == 2 and all(f"matches scene {index + 1}" in p for p in passed)
        else:
            assert passed == []
    page = write_report(video).read_text("utf-8")
    assert "Fell through" not in page and '<ul class="errors">' not in page
    row = re.search(r'<tr class="scene" id="scene-2"(.*?)</tr>', page, re.S)
    assert row is not None and '<td class="scene-number">3</td>' in row[1]
    assert "Nothing for this scene from:" in row[1] and "scene 3 matches a picture" in row[1]


def test_a_clip_shows_a_stretch_as_long_as_its_scene(library: Path, tmp_path: Path) -> None:
    media = MediaLibrary(library)
    generator = VideoGenerator(narrator=ToneNarrator(0.2), clip_generator=media.clips,
                               image_generator=media.images, output_dir=tmp_path)
    video = generator.generate_sync(script="The river runs.", preset=SMALL)
    clip = steps(video.manifest)["scene-000.visual"]["data"]["asset"]  # type: ignore[index]
    assert clip["kind"] == "clip"
    # 0.6 s of narration: about 1.6 s of the 6 s clip, not all of it
    assert 0.5 < clip["duration"] < 2.5


def test_files_are_used_once_before_any_repeats(library: Path, tmp_path: Path) -> None:
    media = MediaLibrary(library)
    generator = VideoGenerator(narrator=ToneNarrator(0.2), clip_generator=media.clips,
                               image_generator=media.images, output_dir=tmp_path)
    video = generator.generate_sync(
        script="The river at dawn.\n\nThe river at noon.\n\nRiver clouds in a timelapse.",
        preset=SMALL)
    titles = [steps(video.manifest)[f"scene-{i:03d}.visual"]["data"]["asset"]  # type: ignore[index]
              .get("source", {}).get("title") for i in range(3)]
    # the third scene names the clouds clip better than the river clip: no repeat needed
    assert titles[2] == "clouds/timelapse.mp4"
    assert titles[0] != titles[1] or (titles[0] == "river.mp4" and all(titles))


def test_a_damaged_file_is_refused_naming_it_before_anything_is_made(
        library: Path, tmp_path: Path) -> None:
    folder = make_library(tmp_path / "media")
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    narrator = ToneNarrator()
    media = MediaLibrary(folder)
    generator = VideoGenerator(narrator=narrator, clip_generator=media.clips,
                               image_generator=media.images, output_dir=tmp_path / "out")
    with pytest.raises(UsageError) as caught:
        generator.generate_sync(script="The river runs.", preset=SMALL)
    assert caught.value.field == "media" and "broken.mp4" in str(caught.value)
    assert narrator.calls == 0 and not (tmp_path / "out").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="holds no picture or clip"):
        MediaLibrary(empty).check(None)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as both:
        local_agents(images=["a.png"], media=str(folder))
    assert both.value.field == "media"


def picture(path: Path, colour: str = "0x3060a0") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c={colour}:s=320x240", "-frames:v", "1", str(path)], check=True)
    return path


def test_files_linked_from_outside_the_folder_are_skipped_with_a_note(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A picture and a tags file that are links to files outside the folder are neither
    used nor read: the scenes that name them get the card, and the note says why."""
    outside = tmp_path / "outside"
    picture(outside / "lighthouse.jpg")
    (outside / "secret.txt").write_text("zebra stripes savanna", encoding="utf-8")
    folder = tmp_path / "media"
    picture(folder / "bees.png", "0xa0a020")
    (folder / "lighthouse.jpg").symlink_to(outside / "lighthouse.jpg")
    (folder / "bees.txt").symlink_to(outside / "secret.txt")
    media = MediaLibrary(folder)
    generator = VideoGenerator(narrator=ToneNarrator(0.2), clip_generator=media.clips,
                               image_generator=media.images, output_dir=tmp_path / "out")
    with caplog.at_level("WARNING", logger="avgen"):
        video = generator.generate_sync(
            script="The keeper climbed the lighthouse.\n\nA zebra crossed the savanna."
                   "\n\nBees visit the hive.", preset=SMALL)
    assert video.tiers == ("card", "card", "image")
    recorded = steps(video.manifest)
    source = recorded["scene-002.visual"]["data"]["asset"]["source"]  # type: ignore[index]
    assert source["title"] == "bees.png"
    assert [note.split(":")[0] for note in source["notes"]] == [
        "skipped lighthouse.jpg", "skipped bees.txt (tags)"]
    assert all("outside" in note for note in source["notes"])
    warned = [r.getMessage() for r in caplog.records if "media library" in r.getMessage()]
    assert len(warned) == 2 and "lighthouse.jpg" in warned[0] and "bees.txt" in warned[1]
    assert media.notes == tuple(source["notes"])


def huge_png(path: Path, side: int) -> Path:
    """A black ``side`` x ``side`` PNG (one bit a pixel) written row by row: a few hundred
    KB on disk, far more pixels than ffmpeg decodes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    packer = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


def test_a_picture_too_large_to_decode_is_named_as_such(tmp_path: Path) -> None:
    folder = tmp_path / "media"
    picture(folder / "bees.png")
    huge_png(folder / "wall.png", 30000)
    with pytest.raises(UsageError) as caught:
        MediaLibrary(folder).check(VideoRequest(script="Bees visit the hive."))
    assert caught.value.field == "media"
    message = str(caught.value)
    assert "wall.png" in message and "30000x30000 pixels, too large" in message
    assert "no picture" not in message


def test_the_command_takes_a_media_folder(library: Path, tmp_path: Path) -> None:
    script = tmp_path / "s.md"
    script.write_text("Waves crash on the ocean shore.\n\nBees visit the hive.\n",
                      encoding="utf-8")
    made = subprocess.run([sys.executable, "-m", "avgen", "make", "--agents", "local",
                           "--script", str(script), "--media", str(library), "--out",
                           str(tmp_path / "out"), "-q"],
                          capture_output=True, text=True, timeout=600, check=False)
    assert made.returncode == 0, made.stderr
    session = Path(made.stdout.strip().splitlines()[-1]).parent.parent
    recorded = steps(session / "metadata/manifest.json")
    assert recorded["scene-000.visual"]["data"]["asset"]["source"]["title"] \
        == "ocean_waves.mp4"  # type: ignore[index]
    assert recorded["scene-001.visual"]["data"]["asset"]["source"]["title"] == "bees.png"  # type: ignore[index]
    refused = subprocess.run([sys.executable, "-m", "avgen", "make", "--agents", "local",
                              "--script", str(script), "--media", str(tmp_path / "nowhere"),
                              "--out", str(tmp_path / "no")],
                             capture_output=True, text=True, timeout=300, check=False)
    assert refused.returncode == 2 and "media" in refused.stderr
    assert not (tmp_path / "no").exists()


def test_name_words() -> None:
    assert name_words("RiverAtDawn_02-wide") == "River At Dawn 02 wide"
    assert name_words("city-night") == "city night"


scores = st.lists(st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0, 3.5]), min_size=4,
                           max_size=4), min_size=0, max_size=8)


@settings(max_examples=300)
@given(scores)
def test_assignment_uses_each_file_once_before_repeats(table: list[list[float]]) -> None:
    chosen = assign(table)
    for scene, row in enumerate(table):
        if not any(value > 0 for value in row):
            assert chosen[scene] is None
            continue
        file = chosen[scene]
        assert file is not None and row[file] > 0
        others = [s for s, f in enumerate(chosen) if f == file and s != scene]
        if others:  # a repeat: every file this scene matches is taken by another scene
            taken = {f for s, f in enumerate(chosen) if s != scene}
            assert all(f in taken for f, value in enumerate(row) if value > 0)


def test_a_scene_with_one_choice_keeps_it() -> None:
    # the first scene could take either file; the second only the first: both get one
    assert assign([[0.5, 0.0, 0.0, 0.5], [0.5, 0.0, 0.0, 0.0]]) == [3, 0]
