"""End to end, as a user runs it: the `avgen` command, the real Piper voice, real ffmpeg."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

from avgen.media._ffmpeg import ffmpeg_exe, probe

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "scripts" / "water_cycle.md"
AVGEN = [sys.executable, "-m", "avgen"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AVGEN, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    def seconds(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        start, end = lines[1].split(" --> ")
        cues.append((seconds(start), seconds(end), " ".join(lines[2:])))
    return cues


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("out")
    proc = run("make", "--script", str(SCRIPT), "--out", str(out), cwd=out)
    assert proc.returncode == 0, proc.stderr
    video = Path(proc.stdout.strip().splitlines()[-1])
    session = video.parent.parent
    manifest = json.loads((session / "metadata/manifest.json").read_text())
    return {"video": video, "session": session, "manifest": manifest, "stderr": proc.stderr}


def test_the_video_decodes_with_picture_and_sound_at_the_preset_size(made: dict[str, Any]) -> None:
    video: Path = made["video"]
    decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(video), "-f", "null", "-"],
                             capture_output=True, text=True, check=False)
    assert decoded.returncode == 0 and decoded.stderr.strip() == ""
    info = probe(video)
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.audio_codec == "aac"
    assert (info.width, info.height) == (360, 640)


def test_the_video_lasts_as_long_as_the_narration(made: dict[str, Any]) -> None:
    wavs = sorted((made["session"] / "audio").glob("scene_*.wav"))
    assert len(wavs) == 4  # four paragraphs of narration; headings are not scenes
    narration = 0.0
    for wav_path in wavs:
        with wave.open(str(wav_path)) as wav:
            assert wav.getframerate() == 22050  # the bundled Piper voice
            narration += wav.getnframes() / wav.getframerate()
    duration = probe(made["video"]).duration
    assert duration is not None and abs(duration - narration) <= 0.5


def test_caption_cues_match_the_scenes(made: dict[str, Any]) -> None:
    session: Path = made["session"]
    script = json.loads((session / "scripts/script.json").read_text())
    steps = made["manifest"]["steps"]
    cues = parse_srt(next((session / "final_output").glob("*.srt")).read_text())
    vtt = next((session / "final_output").glob("*.vtt")).read_text()
    assert vtt.startswith("WEBVTT")
    start = 0.0
    for scene in script["scenes"]:
        duration = steps[f"scene-{scene['index']:03d}.narration"]["data"]["asset"]["duration"]
        end = start + duration
        mine = [c for c in cues if start - 0.05 <= c[0] < end]
        assert mine, f"no captions for scene {scene['index']}"
        assert all(c[1] <= end + 0.1 for c in mine)
        assert " ".join(c[2] for c in mine).split() == scene["narration"].split()
        start = end


def test_markdown_and_stage_directions_are_not_narrated(made: dict[str, Any]) -> None:
    narration = (made["session"] / "scripts/narration.txt").read_text()
    assert "Music" not in narration and "Pause" not in narration
    assert not re.search(r"[#\[\]*]", narration)
    assert "Every drop of water on Earth is on a journey." in narration


def test_the_manifest_records_every_step(made: dict[str, Any]) -> None:
    session: Path = made["session"]
    manifest = made["manifest"]
    assert manifest["status"] == "done"
    assert manifest["agents"]["narrator"] == "piper"
    assert set(manifest["steps"]) == {"script", "compose"} | {
        f"scene-{i:03d}.{kind}" for i in range(4) for kind in ("narration", "visual")}
    for step in manifest["steps"].values():
        assert step["status"] == "done" and len(step["inputs_hash"]) == 64
        for output in step["outputs"]:
            assert (session / output["path"]).stat().st_size == output["size"]
    assert {s["tier"] for k, s in manifest["steps"].items() if k.endswith("visual")} == {"card"}
    assert "INFO" in (session / "logs/session.log").read_text()


def test_the_command_says_which_agents_it_uses(made: dict[str, Any]) -> None:
    assert "narrator=piper" in made["stderr"]


def test_the_result_opens_in_moviepy(made: dict[str, Any]) -> None:
    from avgen import Video

    info = probe(made["video"])
    video = Video(made["video"], info.duration or 0, info.width, info.height, made["session"])
    with video.to_moviepy() as clip:
        assert tuple(clip.size) == (360, 640)
        assert clip.audio is not None
        assert abs(clip.duration - video.duration) < 0.1


def test_resume_from_the_command_line_remakes_a_lost_video(made: dict[str, Any],
                                                           tmp_path: Path) -> None:
    import shutil

    session = tmp_path / made["session"].name
    shutil.copytree(made["session"], session)
    for mp4 in (session / "final_output").glob("*.mp4"):
        mp4.unlink()
    audio_before = {p.name: p.stat().st_mtime_ns for p in (session / "audio").iterdir()}
    proc = run("resume", str(session), "-q", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).is_file()
    assert {p.name: p.stat().st_mtime_ns for p in (session / "audio").iterdir()} == audio_before


def test_a_bare_topic_is_refused_saying_which_agents_write_a_script(tmp_path: Path) -> None:
    """The offline agents write no script: a topic alone makes no filler video, it is
    refused before any work (no session folder), saying how to give a script and which
    agents can write one."""
    out = tmp_path / "out"
    proc = run("make", "Volcanoes", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("avgen: error: script: the local script writer")
    for hint in ("--script FILE", "--script -", "google agents", "GEMINI_API_KEY",
                 "plugin", "--agents NAME"):
        assert hint in error, hint
    assert not out.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["make", "--script", "missing.md"], "script: cannot read 'missing.md'"),
    (["make", "--script", "-"], "script: give a script or a topic"),
    (["make", "Hi", "--preset", "cinema"], "preset: unknown preset 'cinema'"),
    (["make", "--script", "hi.md", "--voice", "nobody"], "voice: unknown voice 'nobody'"),
    (["make", "--script", "hi.md", "--music-volume", "-18"],
     "soundtrack.music_volume: must be a finite number from 0 to 40 (dB the music sits below "
     "the narration"),
    (["resume", "."], "session:"),
    (["make", "notes/bees.md"], "topic: 'notes/bees.md' looks like a file, not a topic; to "
                                "narrate its text, give it with --script: avgen make --script "
                                "notes/bees.md"),
    (["make", "README.TXT"], "--script README.TXT"),
])
def test_bad_input_on_the_command_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "hi.md").write_text("Hi there.\n", "utf-8")
    proc = subprocess.run([*AVGEN, *args, "--out", str(tmp_path / "o")] if args[0] == "make"
                          else [*AVGEN, *args], capture_output=True, text=True, cwd=tmp_path,
                          input="", timeout=120, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
