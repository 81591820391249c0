"""Offline videos at the speed of the encoder: three cases, made offline.

- ``readme``: the README's own command (``avgen make --agents local --script
  examples/scripts/water_cycle.md --preset shorts``), a 30 s 1080×1920 short, timed from
  the shell (process start included). Target: real-time factor <= 0.30.
- ``sixty``: a 60 s 720×1280 video made in this process. Target: real-time factor <= 0.20.
- ``stills``: the README's script as a 1080×1920 short with a still picture per scene
  (`avgen.testing.PatternImages`, moved by the Ken Burns zoom), made in this process. No
  real-time target of its own; the composition's targets apply.

avgen's modules are compiled to bytecode first, as `pip install` does and as Python does at
a package's first import unless ``PYTHONDONTWRITEBYTECODE`` is set: with it set and no
bytecode kept, every ``avgen`` process would compile avgen's sources again, which the
README's user does not pay. It prints what importing avgen's command costs a new process
either way, and what it spends loading the language model and the voice, with
an empty cache folder and with the files derived from them kept there. For each case it
prints the wall time and real-time factor (wall time / video length), the
narration and composition steps, peak memory, and the composition against its limits:

- the composer's own command run by hand (one ffmpeg process doing the whole timeline);
- the encoder alone: the final video decoded to raw frames (in memory) and encoded again
  with the same settings — no encode of this picture can take less. Target: <= 1.5×;
- the picture kept: SSIM (ffmpeg's ``ssim`` filter) of the video against the same timeline
  rendered slowly at high quality (``-preset slow -crf 16``). Target: >= 0.98.

    python benchmarks/offline.py                     # every case, about 5 minutes
    python benchmarks/offline.py --case readme --runs 3
    python benchmarks/offline.py --case sixty --where   # where the filter graph's CPU goes
    python benchmarks/offline.py --case sixty --graph-threads default   # to compare
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import contextlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import psutil

from avgen import PRESETS, VideoGenerator
from avgen._models import Scene, Script, VideoRequest, asset_from_dict
from avgen.media import _composer
from avgen.media._composer import burn_scripts, fit_still_texts
from avgen.media._ffmpeg import ffmpeg_exe, probe
from avgen.media._fonts import bundled_fonts_dir
from avgen.media._graph import (
    StillTexts,
    _video_codec_args,
    compile_graph,
    compile_part,
    graph_threads,
)
from avgen.media._timeline import Timeline
from avgen.testing import PatternImages

ROOT = Path(__file__).resolve().parent.parent
README_COMMAND = ["avgen", "make", "--agents", "local", "--script",
                  "examples/scripts/water_cycle.md", "--preset", "shorts"]

SCRIPT = """# Lighthouses

For centuries, lighthouses have guided sailors home. Their beams cut through fog and storm,
marking rocks and harbours that would otherwise be invisible in the dark.

The first famous lighthouse stood in Alexandria, in ancient Egypt. It was one of the seven
wonders of the world, and its fire could be seen from miles out at sea.

Later towers used oil lamps and polished mirrors. Then, in the nineteenth century, the
Fresnel lens changed everything. Its rings of glass bent the light into a single, powerful
beam.

Every lighthouse has its own signature. Some flash twice, some glow steadily, and some
rotate slowly, so a sailor can tell exactly where they are.

Keepers once lived in the towers all year round. They trimmed the wicks, wound the clockwork
that turned the lens, and kept logbooks of every ship and every storm that passed.

Today most lighthouses run automatically, and satellites do much of the work. Yet on a dark
night, a turning beam on the horizon still means the same thing it always has: safety is
near.
"""

CORES: int | None = os.cpu_count()
"""The cores the picture graph's threads are picked for (``--graph-threads`` sets 1, or
``None`` for ffmpeg's default)."""

TARGETS: dict[str, float | None] = {"readme": 0.30, "sixty": 0.20, "stills": None}
"""Real-time factor each case must keep (None: no target)."""
ENCODER_RATIO = 1.5
"""Composition at most this many times the encoder alone on the final frames."""
MIN_SSIM = 0.98
"""The video against the same timeline rendered slowly at high quality."""


class PeakMemory:
    """Samples the resident memory of this process and of its children (ffmpeg) at 50 Hz.

    (``ru_maxrss`` of children is no use here: on Linux it counts the parent's pages a child
    held between fork and exec.)
    """

    def __init__(self) -> None:
        self.own = self.children = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.02):
            own = me.memory_info().rss
            kids = 0
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    kids = max(kids, child.memory_info().rss)
            self.own, self.children = max(self.own, own), max(self.children, kids)
            self.total = max(self.total, own + kids)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()




def ffmpeg(*args: str) -> str:
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", *args],
                          check=True, capture_output=True, text=True)
    return done.stderr


def timeline_of(session: Path) -> Timeline:
    """The timeline the run composed, rebuilt from its manifest and script."""
    manifest = json.loads((session / "metadata/manifest.json").read_text())
    script = Script.from_dict(json.loads((session / "scripts/script.json").read_text()))
    request = VideoRequest.from_dict(manifest["request"])
    steps = manifest["steps"]
    parts = []
    for scene in script.scenes:
        audio = asset_from_dict(steps[f"scene-{scene.index:03d}.narration"]["data"]["asset"],
                                session)
        visual = asset_from_dict(steps[f"scene-{scene.index:03d}.visual"]["data"]["asset"],
                                 session)
        assert isinstance(scene, Scene)
        parts.append((scene, audio, visual))
    return Timeline.build(request.preset, parts,  # type: ignore[arg-type]
                          style=request.caption_style, burn_captions=request.captions,
                          transition=request.transition, soundtrack=request.soundtrack,
                          fit=request.fit, language=request.language)


def render_by_hand(timeline: Timeline, out: Path, scratch: Path) -> float:
    """The composer's own command (the whole timeline in one ffmpeg process), timed."""
    ass, stills = burn_scripts(timeline, {}, writer(scratch))
    stills = asyncio.run(fit_still_texts(timeline, stills, bundled_fonts_dir()))
    args = [*graph_threads(CORES),
            *compile_graph(timeline, out, ass=ass, fonts_dir=bundled_fonts_dir(), stills=stills)]
    started = time.perf_counter()
    ffmpeg("-loglevel", "error", *args)
    return time.perf_counter() - started


def writer(folder: Path) -> Callable[[str, str], Path]:
    """Writes the scripts `burn_scripts` makes into ``folder``, as the composer does."""
    def write(suffix: str, text: str) -> Path:
        path = folder / f"script{len(list(folder.glob('script*')))}{suffix}"
        path.write_text(text, encoding="utf-8")
        return path
    return write


def encoder_alone(video: Path, timeline: Timeline, scratch: Path) -> float:
    """Decode ``video`` to raw frames in memory, then time encoding them with the
    timeline's settings: the least any composer can spend on this picture."""
    p = timeline.preset
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else scratch))
    try:
        raw = folder / "frames.yuv"
        ffmpeg("-loglevel", "error", "-i", str(video), "-f", "rawvideo", "-pix_fmt", "yuv420p",
               str(raw))
        started = time.perf_counter()
        ffmpeg("-loglevel", "error", "-f", "rawvideo", "-s", f"{p.width}x{p.height}",
               "-pix_fmt", "yuv420p", "-r", str(p.fps), "-i", str(raw),
               *_video_codec_args(timeline), str(scratch / "encoder-alone.mp4"))
        return time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def ssim(video: Path, timeline: Timeline, scratch: Path) -> float:
    """SSIM of ``video`` against the same timeline rendered with ``-preset slow -crf 16``."""
    slow = attrs.evolve(timeline, preset=attrs.evolve(timeline.preset, encoder_preset="slow",
                                                      crf=16))
    reference = scratch / "reference.mp4"
    render_by_hand(slow, reference, scratch)
    if probe(reference).duration != probe(video).duration:
        raise SystemExit("the rebuilt timeline differs from the run's: no fair reference")
    log = ffmpeg("-i", str(video), "-i", str(reference), "-lavfi", "ssim", "-f", "null", "-")
    found = re.search(r"All:([0-9.]+)", log)
    assert found is not None, log
    return float(found.group(1))


def run_case(case: str, out: Path) -> tuple[float, Path, Path]:
    """Make the case's video; returns the wall time, the session and the video."""
    if case == "readme":
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        started = time.perf_counter()
        command = [str(Path(sys.executable).with_name("avgen")), *README_COMMAND[1:]]
        done = subprocess.run([*command, "--out", str(out), "-q"], cwd=ROOT, env=env,
                              check=True, capture_output=True, text=True)
        wall = time.perf_counter() - started
        video = Path(done.stdout.strip().splitlines()[-1])
        return wall, video.parent.parent, video
    if case == "stills":
        generator = VideoGenerator(output_dir=out, image_generator=PatternImages())
        script, preset = (ROOT / README_COMMAND[5]).read_text("utf-8"), PRESETS["shorts"]
    else:
        generator = VideoGenerator(output_dir=out)
        script, preset = SCRIPT, PRESETS["shorts"].resized(720, 1280)
    started = time.perf_counter()
    made = generator.generate_sync(script=script, preset=preset)
    return time.perf_counter() - started, made.session, made.path


def measure(case: str, explain: bool = False) -> bool:
    """Run one case and print its figures (with ``explain``, also `where` the picture's
    graph spends its CPU); True when every target is met."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        with PeakMemory() as memory:
            wall, session, video = run_case(case, scratch / "out")
        steps = json.loads((session / "metadata/manifest.json").read_text())["steps"]
        spoken = [s for k, s in steps.items() if k.endswith("narration")]
        narration = sum(s["seconds"] for s in spoken)
        speaking = (max(s["started"] + s["seconds"] for s in spoken)  # first start to
                    - min(s["started"] for s in spoken))  # last end
        compose = steps["compose"]["seconds"]
        info = probe(video)
        assert info.duration is not None
        timeline = timeline_of(session)
        by_hand = render_by_hand(timeline, scratch / "by-hand.mp4", scratch)
        encoder = encoder_alone(video, timeline, scratch)
        kept = ssim(video, timeline, scratch)
        explained = where(timeline, scratch) if explain else []
    rtf = wall / info.duration
    target = TARGETS[case]
    p = timeline.preset
    rtf_met = target is None or rtf <= target
    met = rtf_met and compose / encoder <= ENCODER_RATIO and kept >= MIN_SSIM
    print(f"[{case}] {info.duration:.1f} s, {info.width}x{info.height}, "
          f"{len(timeline.scenes)} scenes, x264 {p.encoder_preset} crf {p.crf}")
    verdict = ("no target" if target is None else f"target <= {target}: ratio to target "
               f"{rtf / target:.2f}, {'met' if rtf_met else 'MISSED'}")
    print(f"  wall time        {wall:6.2f} s   real-time factor {rtf:.3f} ({verdict})"
          f"   SSIM {kept:.4f} (>= {MIN_SSIM})")
    print(f"  narration        {narration:6.2f} s   (Piper, summed over scenes; "
          f"{speaking:.2f} s from the first scene's start to the last one's end)")
    print(f"  composition      {compose:6.2f} s   (loudness passes, picture, sound, mux)")
    print(f"  own command      {by_hand:6.2f} s   (the whole timeline in one process, by "
          f"hand): composition / it = {compose / by_hand:.2f}")
    print(f"  encoder alone    {encoder:6.2f} s   (the final frames, raw, encoded again): "
          f"composition / it = {compose / encoder:.2f} (target <= {ENCODER_RATIO})")
    mb = 1024 * 1024
    print(f"  peak memory      {memory.total / mb:6.0f} MB in all: {memory.own / mb:.0f} MB "
          f"this process, {memory.children / mb:.0f} MB the largest child")
    for line in explained:
        print(line)
    return met


_LOAD_MODELS = """
import sys, time
from avgen._language import _identifier
from avgen.agents.local._narrator import _bundled_model, _loaded_voice
started = time.perf_counter()
import numpy, onnxruntime, piper, py3langid.langid
imports = time.perf_counter() - started
started = time.perf_counter()
_identifier()
language = time.perf_counter() - started
model = _bundled_model()
stat = model.stat()
started = time.perf_counter()
voice, aligned = _loaded_voice(str(model), stat.st_mtime_ns, stat.st_size)
assert aligned, "the voice reports no alignments"
print(imports, language, time.perf_counter() - started)
"""

_LOAD_AS_KEPT_BEFORE = """
import tempfile, time
from pathlib import Path
import numpy as np, onnxruntime, piper  # imported before timing, as in _LOAD_MODELS
from avgen._language import _ARRAYS, _unpacked_identifier
from avgen.agents.local._narrator import _bundled_model, _patched, _piper_voice
_unpacked_identifier()  # the copy as it is kept now (made if missing)
from avgen._cache_root import cache_root
folder = next((cache_root() / "langid").glob("model-*"))
with tempfile.TemporaryDirectory() as tmp:
    whole = Path(tmp) / "model.npz"  # the model in one file, as it was kept before
    np.savez(whole, **{name: np.load(folder / f"{name}.npy") for name in _ARRAYS})
    patched = Path(tmp) / "aligned.onnx"  # the voice patched, not optimised, as before
    patched.write_bytes(_patched(_bundled_model()))
    started = time.perf_counter()
    with np.load(whole, allow_pickle=False) as data:  # read whole and held, as before
        arrays = {name: np.asarray(data[name]) for name in _ARRAYS}
    language = time.perf_counter() - started
    started = time.perf_counter()
    _piper_voice(patched, _bundled_model().with_suffix(".onnx.json"))
    print(language, time.perf_counter() - started)
"""
"""Reads the language model and loads the voice as they were kept in the cache before
(the model's arrays in one ``.npz`` read whole; the patched voice not optimised), the
packages already imported: what the copies kept now save."""


_STILL_TEXT = ("CardTitle", "CardPhrase", "CardText")
"""The ASS styles of the cards' text that stands still (headline, phrase, rule)."""
_DRAWN = {"the cards' icons": ("CardIcon",), "the captions": ("Caption",)}
"""What libass draws on every frame, by the ASS styles that draw it."""


def graph_cpu(timeline: Timeline, scratch: Path, script: str | None,
              stills: StillTexts | None = None) -> float:
    """CPU seconds (best of two) of the picture's filter graph rendered to nothing — no
    encoder — burning ``script`` (``None``: no libass at all) and putting ``stills`` on."""
    ass = scratch / "where.ass"
    if script is not None:
        ass.write_text(script, encoding="utf-8")
    args = compile_part(timeline, 0, len(timeline.scenes), scratch / "unused.mp4",
                        ass=ass if script is not None else None, fonts_dir=bundled_fonts_dir(),
                        stills=stills if script is not None else None)
    args = [*graph_threads(CORES), *args[:args.index("-an")], "-an", "-f", "null", "-"]
    spent = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        ffmpeg("-loglevel", "error", *args)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        spent.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return min(spent)


def without(script: str, styles: tuple[str, ...]) -> str:
    """``script`` without the events of ``styles``."""
    return "".join(line + "\n" for line in script.splitlines()
                   if not (line.startswith("Dialogue:") and line.split(",", 4)[3] in styles))


def where(timeline: Timeline, scratch: Path) -> list[str]:
    """Where the picture's filter graph spends its CPU, as lines to print: whole, then
    without each kind of drawn text, then without libass; and what the cards' still text
    would cost drawn by libass into every frame."""
    ass, stills = burn_scripts(timeline, {}, writer(scratch))
    started = time.perf_counter()
    stills = asyncio.run(fit_still_texts(timeline, stills, bundled_fonts_dir()))
    fitting = time.perf_counter() - started
    assert ass is not None
    script = ass.read_text("utf-8")
    whole = graph_cpu(timeline, scratch, script, stills)
    lines = [f"  filter graph     {whole:6.2f} CPU s (the picture's, alone: no encoder), of which"]
    if stills is not None:
        lines.insert(0, f"  fitting the boxes of the cards' still text: {fitting:.2f} s (one "
                        "ffmpeg run before the picture's, beside the loudness passes)")
    if stills is not None:
        bare = graph_cpu(timeline, scratch, without(script, _STILL_TEXT))
        lines.append(f"    the cards' headline, phrase and rule, drawn once and overlaid "
                     f"({len(stills.spans)} cards): {whole - bare:.2f} CPU s")
        everything = timeline.ass_script()
        every_frame = graph_cpu(timeline, scratch, everything)
        plain = graph_cpu(timeline, scratch, without(everything, _STILL_TEXT))
        lines.append(f"      (drawn by libass into every frame instead: {every_frame - plain:.2f}"
                     f" CPU s; the whole graph {every_frame:.2f} CPU s)")
    for what, styles in _DRAWN.items():
        kept = without(script, styles)
        if kept.count("Dialogue:") == script.count("Dialogue:"):
            continue
        lines.append(f"    {what}: {whole - graph_cpu(timeline, scratch, kept, stills):.2f} CPU s")
    lines.append(f"    libass in all: {whole - graph_cpu(timeline, scratch, None):.2f} CPU s")
    return lines


def import_seconds() -> float:
    """What a new process spends importing avgen's command (bytecode written by nobody)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-c", "import time; started = time.perf_counter();"
                           " import avgen._cli; print(time.perf_counter() - started)"],
                          env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return float(done.stdout)


def bytecode() -> None:
    """Compile avgen's modules to bytecode, as an installed avgen has them, and print what
    importing its command costs a new process without them and with them."""
    for cache in (ROOT / "avgen").rglob("__pycache__"):
        shutil.rmtree(cache)
    compiling = import_seconds()
    if not compileall.compile_dir(str(ROOT / "avgen"), quiet=1):
        raise SystemExit("avgen's modules could not be compiled")
    kept = import_seconds()
    print(f"[start-up] a new process importing avgen's command: {compiling:.2f} s compiling "
          f"avgen's modules, {kept:.2f} s with their bytecode, which the cases below use")


def startup() -> None:
    """Print what a new process spends loading the language model and the voice, with an
    empty cache folder (each derived file made), again with the files kept there, and with
    them kept as they were before (`_LOAD_AS_KEPT_BEFORE`)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "AVGEN_CACHE_DIR": cache, "PYTHONWARNINGS": "ignore"}
        times = []
        for _ in range(2):
            done = subprocess.run([sys.executable, "-c", _LOAD_MODELS], env=env, check=True,
                                  capture_output=True, text=True)
            times.append([float(word) for word in done.stdout.split()])
        done = subprocess.run([sys.executable, "-c", _LOAD_AS_KEPT_BEFORE], env=env,
                              check=True, capture_output=True, text=True)
        before = [float(word) for word in done.stdout.split()]
    (_, language, voice), (imports, language_kept, voice_kept) = times
    print(f"[start-up] a new process loading the language model and the voice, after "
          f"importing their packages ({imports:.2f} s): {language:.2f} s + {voice:.2f} s "
          f"with an empty cache folder, {language_kept:.2f} s + {voice_kept:.2f} s with the "
          f"unpacked model and the aligned voice kept there; {before[0]:.2f} s + "
          f"{before[1]:.2f} s kept as before (the model's arrays in one file read whole, the "
          f"aligned voice not optimised)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--where", action="store_true",
                        help="also print where the picture's filter graph spends its CPU")
    parser.add_argument("--graph-threads", choices=["auto", "one", "default"], default="auto",
                        help="the picture graph's threads: as the composer picks them for "
                        "this machine (auto), one, or ffmpeg's default — to compare")
    options = parser.parse_args()
    if options.graph_threads != "auto":
        global CORES
        CORES = 1 if options.graph_threads == "one" else None  # None: ffmpeg's default
        _composer.graph_threads = lambda cores: graph_threads(CORES)
    cases = list(TARGETS) if options.case == "all" else [options.case]
    bytecode()
    startup()
    results = [measure(case, options.where) for _ in range(options.runs) for case in cases]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
