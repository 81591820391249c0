"""A session is worked on by one process at a time: a second run (``avgen resume`` while
``avgen make`` is still going) is refused at once, naming the process that holds it, and
a lock left by a killed process is taken over by the next run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from media import decode

from avgen import Session, VideoGenerator
from avgen._session import LOCK_FILE
from avgen.errors import UsageError
from avgen.testing import ToneNarrator

SCRIPT = "# Bees\n\nBees dance. They tell the hive where flowers are.\n\nThe hive listens."

# A run whose narrator waits, inside its step (its temporary WAV already begun), until the
# test lets it go: a real process holding its session for as long as the test needs.
HELD_RUN = textwrap.dedent('''
    import asyncio, sys, time
    from pathlib import Path
    from avgen import VideoGenerator
    from avgen.testing import ToneNarrator

    out, gate = Path(sys.argv[1]), Path(sys.argv[2])

    class HeldNarrator(ToneNarrator):
        async def speak(self, text, target, *, voice=None):
            target.write_bytes(b"RIFF")  # begun: a temporary file a sweep would remove
            (gate.parent / "holding").write_text("")
            while not gate.exists():
                await asyncio.sleep(0.05)
            return await super().speak(text, target, voice=voice)

    video = VideoGenerator(narrator=HeldNarrator(), output_dir=out).generate_sync(
        script=sys.argv[3], preset="draft")
    print(video.path)
''')


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    """A run in another process, held inside its narration step: (process, its session,
    the gate file that lets it go on)."""
    gate = tmp_path / "gate"
    process = subprocess.Popen([sys.executable, "-c", HELD_RUN, str(tmp_path / "out"),
                                str(gate), SCRIPT], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120  # only so a broken run cannot hang the tests
        while not (tmp_path / "holding").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never reached its narration"
            time.sleep(0.05)
        (session,) = (tmp_path / "out").glob("session_*")
        yield process, session, gate
    finally:
        gate.touch()
        if process.poll() is None:
            process.kill()
        process.communicate()


def resume(session: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "avgen", "resume", str(session), "-q"],
                          cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def test_resuming_a_session_whose_run_is_going_is_refused_and_the_run_finishes(
        held: tuple[subprocess.Popen[str], Path, Path], tmp_path: Path) -> None:
    process, session, gate = held
    before = sorted(path.name for path in (session / "audio").iterdir())
    refused = resume(session, tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert f"session: {session} is being worked on by process {process.pid}" \
        in refused.stderr
    assert "one process at a time" in refused.stderr and "Traceback" not in refused.stderr
    # no sweep: every temporary file begun is still there (another scene's narration may
    # have begun one since the snapshot; none may have gone)
    assert before and set(before) <= {path.name for path in (session / "audio").iterdir()}
    holder = json.loads((session / LOCK_FILE).read_text())
    assert holder["pid"] == process.pid
    gate.touch()
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert decode(Path(out.strip().splitlines()[-1]))["errors"] == ""
    manifest = json.loads((session / "metadata" / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["host"]["pid"] == process.pid


def test_a_lock_left_by_a_killed_run_is_taken_over(
        held: tuple[subprocess.Popen[str], Path, Path], tmp_path: Path) -> None:
    process, session, _ = held
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert json.loads((session / LOCK_FILE).read_text())["pid"] == process.pid  # left behind
    finished = resume(session, tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert decode(Path(finished.stdout.strip().splitlines()[-1]))["errors"] == ""
    manifest = json.loads((session / "metadata" / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["host"]["pid"] != process.pid


def test_two_runs_of_one_process_are_one_at_a_time_too(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)
    video = generator.generate_sync(script=SCRIPT, preset="draft")
    busy = rf"is being worked on by process {os.getpid()}"
    with Session.open(video.session).lock(), pytest.raises(UsageError, match=busy):
        generator.resume_sync(video.session)
    assert generator.resume_sync(video.session).path == video.path  # free once let go


@pytest.mark.parametrize("shape", ["folder", "symlink"])
def test_a_lock_file_that_is_not_a_file_is_refused_and_left_alone(tmp_path: Path,
                                                                  shape: str) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path / "out")
    video = generator.generate_sync(script=SCRIPT, preset="draft")
    lock = video.session / LOCK_FILE
    lock.unlink()
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    if shape == "folder":
        lock.mkdir()
    else:
        lock.symlink_to(target)
    with pytest.raises(UsageError, match=r"cannot use the lock file|is not a regular file"):
        generator.resume_sync(video.session)
    assert target.read_text() == "keep me"
