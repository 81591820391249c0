"""Filter graphs reach ffmpeg through inherited descriptors, not as arguments: a long
video's picture graph outgrows what Linux takes in one argument (128 KiB), and nothing is
left behind or left open."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from media import decode

from avgen import Preset, Scene
from avgen._models import CardVisual
from avgen.errors import FFmpegError
from avgen.media._composer import FFmpegComposer
from avgen.media._ffmpeg import _graph_file_option, ffmpeg_exe, run_ffmpeg, run_ffmpeg_sync
from avgen.media._graph import compile_part
from avgen.media._timeline import Timeline

ONE_ARGUMENT = 128 * 1024
"""The most bytes Linux passes in one argument (``MAX_ARG_STRLEN``)."""

TINY = Preset("tiny", 180, 320, fps=4, crf=0, encoder_preset="ultrafast")


def open_descriptors() -> set[str]:
    return set(os.listdir(f"/proc/{os.getpid()}/fd"))


def long_graph(frames: int = 3) -> str:
    """A graph of more than `ONE_ARGUMENT` bytes that makes ``frames`` frames."""
    graph = (f"testsrc2=s=64x64:r=10,trim=end_frame={frames},{' ' * ONE_ARGUMENT}"
             "format=yuv420p[out]")
    assert len(graph.encode()) > ONE_ARGUMENT
    return graph


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_graph_longer_than_one_argument_runs_and_no_descriptor_stays_open(
        tmp_path: Path) -> None:
    before = open_descriptors()
    run_ffmpeg_sync(["-filter_complex", long_graph(3), "-map", "[out]", str(tmp_path / "a.mp4")])
    asyncio.run(run_ffmpeg(["-filter_complex", long_graph(5), "-filter_complex", "sine=d=0.5[s]",
                            "-map", "[out]", "-map", "[s]", str(tmp_path / "b.mp4")]))
    a, b = decode(tmp_path / "a.mp4"), decode(tmp_path / "b.mp4")
    assert (a["frames"], b["frames"], a["errors"], b["errors"]) == (3, 5, "", "")
    assert b["has_audio"] and b["audio_duration"] == pytest.approx(0.5, abs=0.05)
    with pytest.raises(FFmpegError, match="No such filter: 'nosuchfilter'"):
        run_ffmpeg_sync(["-filter_complex", "nosuchfilter[out]", "-map", "[out]",
                         str(tmp_path / "c.mp4")])
    with pytest.raises(FFmpegError, match="No such filter: 'nosuchfilter'"):
        asyncio.run(run_ffmpeg(["-filter_complex", "nosuchfilter[out]", "-map", "[out]",
                                str(tmp_path / "c.mp4")]))
    assert open_descriptors() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_a_video_of_seven_hundred_cards_is_made_whole(tmp_path: Path) -> None:
    cards = [(Scene(n, f"Card {n}."), None, CardVisual(f"Card {n}", phrase="It falls",
                                                       icon="cloud-rain"))
             for n in range(700)]
    timeline = Timeline.build(TINY, cards, silent_seconds=0.5)
    picture = compile_part(timeline, 0, 700, tmp_path / "part.mp4", ass=tmp_path / "a.ass",
                           fonts_dir=tmp_path)
    assert max(len(arg.encode()) for arg in picture) > ONE_ARGUMENT  # its graph
    made = tmp_path / "made.mp4"
    asyncio.run(FFmpegComposer().compose(timeline, made))
    video = decode(made)
    assert video["errors"] == "" and video["frames"] == timeline.frames == 1400
    assert video["duration"] == pytest.approx(350.0, abs=0.1)


def wrapper(tmp: Path, version: str) -> Path:
    """An ffmpeg that says it is ``version``; before 7 it knows ``-filter_complex_script``
    and not ``-/filter_complex`` (it runs the real one with the option ffmpeg 9 knows)."""
    script = tmp / "ffmpeg"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "args = sys.argv[1:]\n"
        f"if '-version' in args:\n    print({f'ffmpeg version {version} Copyright'!r})\n"
        "    sys.exit(0)\n"
        f"old = {version!r}[0].isdigit() and int({version!r}.split('.')[0]) < 7\n"
        "refused = '-/filter_complex' if old else '-filter_complex_script'\n"
        "if refused in args:\n"
        "    print(f\"Unrecognized option '{refused[1:]}'.\", file=sys.stderr)\n"
        "    sys.exit(8)\n"
        "args = ['-/filter_complex' if a == '-filter_complex_script' else a for a in args]\n"
        f"os.execv({ffmpeg_exe()!r}, [{ffmpeg_exe()!r}, *args])\n")
    script.chmod(0o755)
    return script


@pytest.mark.parametrize(("version", "option"), [
    ("6.1.1-3ubuntu5", "-filter_complex_script"),
    ("n7.0", "-/filter_complex"),
    ("N-117000-g1234abcd", "-/filter_complex"),  # built from git: recent
])
def test_the_graph_option_follows_the_ffmpeg_in_use(
        version: str, option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = wrapper(tmp_path, version)
    assert _graph_file_option(str(fake)) == option
    monkeypatch.setenv("AVGEN_FFMPEG", str(fake))
    run_ffmpeg_sync(["-filter_complex", long_graph(2), "-map", "[out]",
                     str(tmp_path / "made.mp4")])
    assert decode(tmp_path / "made.mp4")["frames"] == 2
