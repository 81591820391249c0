"""The runnable examples in ``examples/`` work: each is run as a user would run it, and the
videos it reports are checked by probing them with the real ffmpeg."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from avgen.media._ffmpeg import probe

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run_example(name: str, out: Path) -> str:
    """Run ``examples/NAME.py --out OUT --preset draft``; its stdout, after a zero exit."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--out", str(out),
                           "--preset", "draft"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def field(stdout: str, label: str) -> str:
    """The value of the one line ``LABEL: value`` in ``stdout``."""
    values: list[str] = re.findall(rf"^{re.escape(label)}: (.*)$", stdout, re.MULTILINE)
    assert len(values) == 1, f"expected one {label!r} line in:\n{stdout}"
    return values[0].strip()


def video_paths(stdout: str) -> list[Path]:
    return [Path(p) for p in re.findall(r"video: (\S+\.mp4)", stdout)]


def check_draft_video(path: Path, out: Path) -> None:
    assert path.is_file(), f"{path} was printed but does not exist"
    assert path.is_relative_to(out), f"{path} is not under --out {out}"
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (360, 640)
    assert info.duration is not None and info.duration > 0.5


@pytest.mark.slow
def test_quickstart(tmp_path: Path) -> None:
    stdout = run_example("quickstart", tmp_path)
    (path,) = video_paths(stdout)
    check_draft_video(path, tmp_path)
    assert float(field(stdout, "duration").split()[0]) == pytest.approx(probe(path).duration,
                                                                        abs=0.1)
    for kind in ("srt", "vtt", "ass"):
        caption = Path(field(stdout, f"captions {kind}"))
        assert caption.suffix == f".{kind}" and caption.stat().st_size > 0
    assert "Octopuses" in Path(field(stdout, "captions srt")).read_text("utf-8")
    assert field(stdout, "tiers") == "card"  # the offline agents draw procedural cards
    # The progress lines come from the subscribed event handler, in order.
    kinds = re.findall(r"^\[\s*\d+%\] (\w+):", stdout, re.MULTILINE)
    assert kinds[0] == "session" and kinds[-1] == "done"
    assert {"script", "narration", "visual", "compose"} <= set(kinds)


@pytest.mark.slow
def test_custom_agent(tmp_path: Path) -> None:
    stdout = run_example("custom_agent", tmp_path)
    (path,) = video_paths(stdout)
    check_draft_video(path, tmp_path)
    # Both facts became scenes and both pictures came from the custom image generator.
    assert field(stdout, "tiers").split(", ") == ["image", "image"]
    images = sorted((path.parent.parent / "images").glob("scene_*.png"))
    assert [p.name for p in images] == ["scene_000.png", "scene_001.png"]
    info = probe(images[0])
    assert (info.width, info.height) == (360, 640)


@pytest.mark.slow
def test_batch(tmp_path: Path) -> None:
    stdout = run_example("batch", tmp_path)
    sessions = [Path(s) for s in re.findall(r"session: (\S+)", stdout)]
    assert len(sessions) == 3 and len(set(sessions)) == 3
    assert all(s.is_dir() and s.parent == tmp_path for s in sessions)
    assert sorted(tmp_path.glob("session_*")) == sorted(sessions)
    paths = video_paths(stdout)
    assert len(paths) == 3
    for session, path in zip(sessions, paths, strict=True):
        assert path.parent == session / "final_output"
        check_draft_video(path, tmp_path)


def test_resume(tmp_path: Path) -> None:
    stdout = run_example("resume", tmp_path)
    session = Path(field(stdout, "session"))
    deleted = re.findall(r"^deleted: (.*)$", stdout, re.MULTILINE)
    assert deleted[0] == "audio/scene_001.wav" and deleted[1].endswith(".mp4")
    # The deleted files are back, and the video is whole again.
    assert (session / deleted[0]).is_file()
    (path,) = video_paths(stdout)
    assert path == session / deleted[1]
    check_draft_video(path, tmp_path)
    redone = set(field(stdout, "redone").split(", "))
    kept = set(field(stdout, "kept").split(", "))
    # Exactly the deleted narration is spoken again, and the video is composed again ...
    assert {s for s in redone if s.endswith(".narration")} == {"scene-001.narration"}
    assert "compose" in redone
    # ... while the script and the untouched scene are reused. The second scene's visual
    # may be redone: it is planned from the narration's length, and Piper is not
    # bit-for-bit repeatable.
    assert redone <= {"scene-001.narration", "scene-001.visual", "compose"}
    assert {"script", "scene-000.narration", "scene-000.visual"} <= kept
    assert len(list(tmp_path.glob("session_*"))) == 1  # resumed in place, no new session
