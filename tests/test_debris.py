"""Orphans and debris: ffmpeg dies with whoever started it, and a run sweeps the temporary
files a killed run left in its session — and nothing else.

Real processes throughout: a child Python is killed with SIGKILL while its ffmpeg encodes,
and psutil looks for any ffmpeg still running on the session's files.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from avgen import VideoGenerator
from avgen._scratch import is_debris, scratch_path, temp_path
from avgen._session import Session
from avgen.errors import MediaError
from avgen.media._ffmpeg import ffmpeg_exe, probe, run_ffmpeg
from avgen.testing import PatternImages, ToneNarrator

HANG_GUARD = 120.0  # seconds: only so a broken test cannot hang the suite
LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                           reason="only Linux lets a child die with its parent by SIGKILL")
SCRIPT = "# Slow\n\n" + "\n\n".join(
    f"Scene {index} says a few words about nothing in particular." for index in range(4))
ROOT = Path(__file__).resolve().parent.parent

CHILD = textwrap.dedent("""
    import sys
    from avgen import Preset, VideoGenerator
    from avgen.testing import PatternImages, ToneNarrator

    script, out = sys.argv[1], sys.argv[2]
    preset = Preset("slow", 640, 360, encoder_preset="veryslow")  # seconds of encoding
    generator = VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.5),
                               image_generator=PatternImages(), output_dir=out)
    generator.generate_sync(script=script, preset=preset)
""")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    give_up = time.monotonic() + HANG_GUARD
    while not condition():
        assert time.monotonic() < give_up, f"gave up waiting: {what}"
        time.sleep(0.05)


def ffmpegs(mentioning: str) -> list[psutil.Process]:
    """Live (not zombie) ffmpeg processes whose command line mentions ``mentioning``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        info = proc.info
        if info["status"] == psutil.STATUS_ZOMBIE or not info["cmdline"]:
            continue
        if "ffmpeg" in (info["name"] or "") + info["cmdline"][0] and \
                any(mentioning in arg for arg in info["cmdline"]):
            found.append(proc)
    return found


def composing(parent: psutil.Process) -> list[psutil.Process]:
    """ffmpeg processes under ``parent`` writing into a session's ``final_output/``."""
    found = []
    for proc in parent.children(recursive=True):
        try:
            args = proc.cmdline()
        except psutil.Error:
            continue
        if args and "ffmpeg" in Path(args[0]).name and \
                any("final_output" in arg and arg.endswith(".mp4") for arg in args):
            found.append(proc)
    return found


def debris(session: Path) -> list[Path]:
    """Every file in the session whose name avgen gives temporary files."""
    return sorted(path for path in session.rglob("*") if is_debris(path.name))


@pytest.fixture
def reaped() -> Iterator[list[subprocess.Popen[bytes]]]:
    children: list[subprocess.Popen[bytes]] = []
    yield children
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
@LINUX
def test_a_run_killed_while_composing_leaves_no_ffmpeg_and_its_resume_no_debris(
        tmp_path: Path, reaped: list[subprocess.Popen[bytes]]) -> None:
    out = (tmp_path / "out").resolve()
    log = tmp_path / "child.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with log.open("wb") as sink:
        child = subprocess.Popen([sys.executable, "-c", CHILD, SCRIPT, str(out)],
                                 stdout=sink, stderr=subprocess.STDOUT, env=env)
    reaped.append(child)
    parent = psutil.Process(child.pid)

    def encoding() -> bool:
        assert child.poll() is None, log.read_text("utf-8", "replace")
        # the composer writes the picture into a scratch part while it encodes the sound
        return bool(composing(parent)) and any(out.glob("session_*/final_output/.*.part0.mp4"))

    wait_for(encoding, "the child never started writing the video")
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=HANG_GUARD) == -signal.SIGKILL

    wait_for(lambda: ffmpegs(str(out)) == [], "an ffmpeg outlived its parent")
    [session] = out.glob("session_*")
    assert (session / "final_output").is_dir()
    left = debris(session)
    [partial] = [path for path in left if path.name.endswith(".part0.mp4")]
    with pytest.raises(MediaError):  # ffmpeg died with its parent: the encode never ended
        probe(partial)

    with VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.5),
                        image_generator=PatternImages(), output_dir=out) as generator:
        video = generator.resume_sync(session)
    assert video.session == session and video.path.is_file()
    info = probe(video.path)
    assert info.has_video and info.has_audio and info.duration
    assert debris(session) == []
    assert not [path for path in session.rglob(".*")]  # no hidden file of any kind
    assert ffmpegs(str(out)) == []


# ------------------------------------------------------------------------ ffmpeg's life


@LINUX
def test_ffmpeg_dies_with_its_parent_killed_by_sigkill(
        tmp_path: Path, reaped: list[subprocess.Popen[bytes]]) -> None:
    marker = tmp_path / "endless.mkv"
    code = ("import sys; from avgen.media._ffmpeg import run_ffmpeg_sync; "
            "run_ffmpeg_sync(['-re', '-f', 'lavfi', '-i', 'testsrc2=s=64x64:d=3600', "
            "'-c:v', 'ffv1', sys.argv[1]])")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", code, str(marker)], env=env)
    reaped.append(child)
    parent = psutil.Process(child.pid)

    def started() -> bool:
        assert child.poll() is None, "the child ended before its ffmpeg started"
        return bool(ffmpegs(str(marker)))

    wait_for(started, "ffmpeg never started")
    [ffmpeg] = ffmpegs(str(marker))
    assert ffmpeg.ppid() == parent.pid
    assert os.getpgid(ffmpeg.pid) == ffmpeg.pid  # its own group: Ctrl-C goes to Python
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=HANG_GUARD)
    wait_for(lambda: ffmpegs(str(marker)) == [], "ffmpeg outlived its parent")


def test_cancelling_run_ffmpeg_kills_and_reaps_the_process(tmp_path: Path) -> None:
    marker = tmp_path / "endless.mkv"

    async def main() -> None:
        task = asyncio.create_task(run_ffmpeg(
            ["-re", "-f", "lavfi", "-i", "testsrc2=s=64x64:d=3600", "-c:v", "ffv1",
             str(marker)]))
        give_up = time.monotonic() + HANG_GUARD
        while not ffmpegs(str(marker)):
            assert not task.done() and time.monotonic() < give_up
            await asyncio.sleep(0.05)
        [ffmpeg] = ffmpegs(str(marker))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not ffmpeg.is_running()  # killed and reaped before the cancellation ended

    asyncio.run(main())


def test_ffmpeg_is_the_binary_these_tests_look_for() -> None:
    assert "ffmpeg" in Path(ffmpeg_exe()).name


# ----------------------------------------------------------------------------- the sweep


def test_sweep_removes_only_avgen_temporary_files_inside_the_session(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    with Session.create(tmp_path / "out") as session:
        root = session.root
        made = [temp_path(root / "audio/scene_000.wav"),
                temp_path(root / "metadata/manifest.json"),
                temp_path(root / "final_output/video.mp4"),
                scratch_path(temp_path(root / "final_output/video.mp4"), ".ass"),
                scratch_path(temp_path(root / "final_output/video.mp4"), ".ffconcat"),
                scratch_path(temp_path(root / "final_output/video.mp4"), ".part3.mp4"),
                scratch_path(temp_path(root / "video_clips/scene_000.mp4"), ".still.png"),
                scratch_path(temp_path(root / "video_clips/scene_000.mp4"), ".frame1.png")]
        for path in made:
            path.write_bytes(b"half")
        kept = [root / "audio/scene_000.wav", root / "final_output/video.ass",
                root / "final_output/video.part.mp4",       # not hidden
                root / "audio/.scene.1a2b3c4.part.wav",     # seven hex digits
                root / "audio/.scene.1A2B3C4D.part.wav",    # not how avgen writes hex
                root / "audio/.scene.1a2b3c4d.wav",         # no .part
                root / "final_output/.video.1a2b3c4d.srt",  # not a scratch suffix
                root / "images/.hidden", root / "notes.txt",
                root / "scripts/deeper/.s.1a2b3c4d.part.json"]  # below a session folder
        for path in kept:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"mine")
        # names avgen would sweep, reached only through symlinks, or not files at all
        target = outside / ".clip.1a2b3c4d.part.mp4"
        target.write_bytes(b"outside")
        link = root / "video_clips/.clip.1a2b3c4d.part.mp4"
        link.symlink_to(target)
        (root / "video_clips/.dir.1a2b3c4d.part.mp4").mkdir()
        linked = root / "linked"
        linked.symlink_to(outside, target_is_directory=True)
        beside = tmp_path / "out" / ".manifest.1a2b3c4d.part.json"  # beside, not in, the session
        beside.write_bytes(b"another folder's")
        (root / "images").rename(root / "images-real")
        (root / "images").symlink_to(outside, target_is_directory=True)

        removed = session.sweep()

    assert sorted(removed) == sorted(made)
    assert not [path for path in made if path.exists()]
    assert all(path.read_bytes() == b"mine" for path in kept if "images" not in path.parts)
    assert (root / "images-real/.hidden").read_bytes() == b"mine"
    assert link.is_symlink() and target.read_bytes() == b"outside"
    assert (root / "video_clips/.dir.1a2b3c4d.part.mp4").is_dir()
    assert beside.read_bytes() == b"another folder's"
    assert sorted(outside.iterdir()) == [target]


@given(stem=st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]),
                    min_size=1, max_size=30),
       suffix=st.sampled_from(["", ".wav", ".json", ".mp4", ".png", ".tar"]),
       scratch=st.sampled_from([".ass", ".ffconcat", ".part0.mp4", ".part12.mp4", ".still.png",
                                ".frame.png", ".frame3.png"]))
def test_every_name_avgen_makes_is_one_it_sweeps(stem: str, suffix: str, scratch: str) -> None:
    final = Path("folder") / f"{stem}{suffix}"
    if final.name in {".", ".."} or final.name != f"{stem}{suffix}":
        return
    temp = temp_path(final)
    assert temp.parent == final.parent and is_debris(temp.name)
    assert is_debris(scratch_path(temp, scratch).name)
    assert is_debris(scratch_path(final, scratch).name)


def test_a_scratch_suffix_avgen_would_not_sweep_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scratch suffix"):
        scratch_path(tmp_path / "video.mp4", ".txt")
