"""The notebook experience: ``examples/quickstart.ipynb`` runs top to bottom in a real Jupyter
kernel, a `Video` displays as a playable inline player, and `avgen.notebook.ProgressBar`
follows a run to the end.

The notebook is executed with nbclient in a real ipykernel kernel started from *this*
interpreter (``sys.executable -m ipykernel_launcher``), given by a kernel-spec manager of
our own: no kernelspec needs to be installed, and one a user installed (a ``python3`` in
``~/.local/share/jupyter/kernels`` pointing at another Python) cannot be picked up instead.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
import zmq
from ipykernel.kernelspec import RESOURCES, get_kernel_dict
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from media import decode, make_clip
from nbclient import NotebookClient
from traitlets import default

import avgen._models
from avgen import AgentPolicy, RunEvent, Video, VideoGenerator
from avgen.errors import AgentError, ConfigurationError
from avgen.notebook import ProgressBar
from avgen.testing import ToneNarrator

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"
DATA_URI = re.compile(r'src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"')


# -- running a notebook in a kernel of this interpreter ----------------------------------


class ThisPythonKernelSpecs(KernelSpecManager):
    """Every kernel name means ipykernel's own spec for the interpreter running the tests
    (``[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]``, what
    ``python -m ipykernel install`` would write), whatever kernelspecs are installed."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        spec = get_kernel_dict()
        assert spec["argv"][0] == sys.executable
        return KernelSpec(resource_dir=RESOURCES, **spec)


class ThisPythonKernel(AsyncKernelManager):
    """nbclient's default kernel manager, with `ThisPythonKernelSpecs`, and CurveZMQ
    encryption when pyzmq has it (so the kernel does not warn about plain TCP)."""

    @default("kernel_spec_manager")
    def _this_python(self) -> KernelSpecManager:
        return ThisPythonKernelSpecs(parent=self)

    @default("transport_encryption")
    def _encrypt_if_possible(self) -> str:
        return "auto" if zmq.has("curve") else "disabled"


def execute(path: Path, cwd: Path) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` with ``cwd`` as the kernel's working directory; the
    notebook with its outputs (and the widgets' final state in its metadata)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_manager_class=ThisPythonKernel, timeout=300,
                   resources={"metadata": {"path": str(cwd)}}, store_widget_state=True).execute()
    return nb


def outputs(nb: nbformat.NotebookNode, cell_id: str) -> list[Any]:
    (cell,) = [cell for cell in nb.cells if cell.get("id") == cell_id]
    return list(cell.outputs)


def stdout(nb: nbformat.NotebookNode, cell_id: str) -> str:
    return "".join(o.text for o in outputs(nb, cell_id)
                   if o.output_type == "stream" and o.name == "stdout")


@pytest.fixture
def jupyter_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the kernel's connection file and IPython's profile out of the home folder."""
    home = tmp_path / "jupyter-home"
    home.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(home / "ipython"))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return home


def test_the_stored_notebook_is_clean() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) >= 4
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "widgets" not in nb.metadata


@pytest.mark.slow
def test_quickstart_notebook_runs(tmp_path: Path, jupyter_home: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    nb = execute(NOTEBOOK, work)

    every = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    errors = [o for o in every if o.output_type == "error"]
    assert not errors, [f"{o.ename}: {o.evalue}" for o in errors]
    stderr = "".join(o.text for o in every if o.output_type == "stream" and o.name == "stderr")
    assert "Warning" not in stderr and "Traceback" not in stderr, stderr

    # One session, in the kernel's working directory, with a final MP4 that decodes.
    (session,) = sorted((work / "outputs").glob("session_*"))
    (mp4,) = sorted((session / "final_output").glob("*.mp4"))
    decoded = decode(mp4)
    assert decoded["errors"] == ""
    assert (decoded["width"], decoded["height"]) == (360, 640)
    assert decoded["frames"] > 24 and decoded["audio_duration"] > 2.0
    assert (session / "metadata" / "manifest.json").is_file()

    # The cell's last expression, the Video, shows a player with the MP4 embedded.
    html = [o.data["text/html"] for o in outputs(nb, "make")
            if o.output_type == "execute_result" and "text/html" in o.data]
    assert len(html) == 1 and "<video" in html[0] and "controls" in html[0]
    (embedded,) = DATA_URI.findall(html[0])
    assert base64.b64decode(embedded, validate=True) == mp4.read_bytes()
    assert 'width="270" height="480"' in html[0]  # 360×640 scaled into 640×480

    # The progress bar was the notebook widget, and it ended full and green.
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs(nb, "make"))
    state = nb.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"]
    bars = [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]
    assert len(bars) == 1
    assert bars[0]["value"] == bars[0]["max"] == 100
    assert bars[0]["bar_style"] == "success"

    # The event list, in order of first appearance.
    printed = stdout(nb, "events")
    (line,) = re.findall(r"^kinds: (.*)$", printed, re.MULTILINE)
    kinds = line.split(", ")
    assert kinds[0] == "session" and kinds[-1] == "done"
    assert {"script", "narration", "visual", "compose"} <= set(kinds)
    for scene in (0, 1):  # two paragraphs, two scenes, each a procedural card
        assert re.search(rf"^  scene {scene}: visual +tier=card ", printed, re.MULTILINE)

    # The session cell points at the folder and reads the manifest.
    printed = stdout(nb, "files")
    assert f"session:  {session}" in printed
    assert f"video:    final_output/{mp4.name}" in printed
    assert "manifest: metadata/manifest.json" in printed
    assert "status:   done" in printed
    assert re.search(r"^  compose +done ", printed, re.MULTILINE)


# -- Video._repr_html_ ---------------------------------------------------------------------


def _video(path: Path, session: Path, width: int = 360, height: int = 640) -> Video:
    return Video(path, 1.0, width, height, session)


def test_small_video_is_embedded_exactly(tmp_path: Path) -> None:
    mp4 = make_clip(tmp_path / "small.mp4", 1.0, 360, 640, audio=True)
    html = _video(mp4, tmp_path)._repr_html_()
    (embedded,) = DATA_URI.findall(html)
    assert base64.b64decode(embedded, validate=True) == mp4.read_bytes()
    assert "<video controls" in html and 'type="video/mp4"' in html
    assert 'width="270" height="480"' in html
    assert str(mp4) in html


def test_player_size_fits_the_box(tmp_path: Path) -> None:
    mp4 = make_clip(tmp_path / "wide.mp4", 0.5, 320, 180)
    assert 'width="320" height="180"' in _video(mp4, tmp_path, 320, 180)._repr_html_()
    html = _video(mp4, tmp_path, 1920, 1080)._repr_html_()  # never larger than 640×480
    assert 'width="640" height="360"' in html


def test_large_video_under_the_working_directory_is_linked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "my outputs" / "final_output"
    folder.mkdir(parents=True)
    mp4 = make_clip(folder / "big.mp4", 1.0, 360, 640)
    monkeypatch.setattr(avgen.Video, "embed_limit", mp4.stat().st_size - 1)
    monkeypatch.chdir(tmp_path)
    html = _video(mp4, tmp_path)._repr_html_()
    assert "data:" not in html
    assert '<source src="my%20outputs/final_output/big.mp4" type="video/mp4">' in html
    assert "relative to the working directory" in html


def test_large_video_elsewhere_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mp4 = make_clip(tmp_path / "big.mp4", 1.0, 360, 640)
    monkeypatch.setattr(avgen.Video, "embed_limit", 1000)
    elsewhere = tmp_path / "notebooks"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    html = _video(mp4, tmp_path)._repr_html_()
    assert "<video" not in html and "data:" not in html
    assert str(mp4) in html
    assert "too large to embed" in html and "outside the working directory" in html


def test_missing_video_says_so(tmp_path: Path) -> None:
    html = _video(tmp_path / "gone.mp4", tmp_path)._repr_html_()
    assert "<video" not in html and "does not exist" in html


# -- ProgressBar ---------------------------------------------------------------------------


class BrokenImages:
    """An image generator that always fails, so every scene falls back to a card."""

    name = "broken-images"

    async def generate(self, *_: object) -> None:
        raise AgentError("the image service is down", "broken-images")


def test_progress_bar_text_fallback_follows_a_run(tmp_path: Path) -> None:
    out = io.StringIO()
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=BrokenImages(),
                               output_dir=tmp_path, policies={
                                   "image_generator": AgentPolicy(retry=None)})
    events: list[RunEvent] = []
    generator.subscribe(events.append)
    with ProgressBar(generator, file=out, description="making") as bar:
        assert bar.closed and bar.runs == 0  # nothing is drawn before the first event
        video = generator.generate_sync(script="One scene here.\n\nAnother scene there.",
                                        preset="draft")
        assert bar.closed and bar.runs == 1  # the "done" event closed it
    assert bar.progress == 1.0
    text = out.getvalue()
    assert text.count("making:") >= 2
    final = text.rstrip("\n").rsplit("\r", 1)[-1]
    assert final.startswith("making: 100%|##########|"), final
    # The label: the last message, the video's path, cut in the middle if too long.
    label = final.rsplit("], ", 1)[1].rstrip()
    assert len(label) == 60 and "…" in label, label
    assert label.endswith(f"/final_output/{video.path.name}"), label
    assert str(video.path).startswith(label.split("…")[0]), label
    fallbacks = [e for e in events if e.kind == "fallback"]
    assert len(fallbacks) == 2
    for event in fallbacks:  # printed in full above the bar
        assert f"fallback: {event.message}\n" in text
    assert text.endswith("\n")  # closed: the cursor left the bar's line
    # Unsubscribed on leaving the block: another run draws nothing more.
    generator.generate_sync(script="A third run.", preset="draft")
    assert out.getvalue() == text and bar.runs == 1


def test_progress_bar_handles_runs_in_turn_and_closes_an_unfinished_bar() -> None:
    out = io.StringIO()
    bar = ProgressBar(file=out, widget=False)
    for run in range(2):
        bar(RunEvent("session", f"session {run}", 0.0))
        bar(RunEvent("script", "script: 1 scene", 0.05))
        bar(RunEvent("done", f"video {run}", 1.0))
        assert bar.closed and bar.progress == 1.0
    bar(RunEvent("session", "session 2", 0.0))
    bar(RunEvent("narration", "scene 0: narration 1.0 s", 0.3))
    assert not bar.closed and bar.progress == 0.3
    bar.close()
    bar.close()  # twice is fine
    assert bar.closed and bar.runs == 3
    bar(RunEvent("session", "session 3", 0.0))
    bar(RunEvent("script", "script: 1 scene", 0.05))
    bar(RunEvent("failed", "the narrator is broken", 1.0))  # failed events say 1.0 ...
    assert bar.closed and bar.progress == 0.05  # ... but the bar stays where it stopped
    # What stays on screen: each line as its last carriage return left it.
    shown = [line.rsplit("\r", 1)[-1] for line in out.getvalue().split("\n")]
    assert [line.split("|")[0] for line in shown if line.startswith("avgen:")] == [
        "avgen: 100%", "avgen: 100%", "avgen:  30%", "avgen:   5%"]
    assert "failed: the narrator is broken" in shown


def test_progress_bar_draws_one_bar_for_a_batch(tmp_path: Path) -> None:
    out = io.StringIO()
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=BrokenImages(),
                               output_dir=tmp_path, policies={
                                   "image_generator": AgentPolicy(retry=None)})
    with ProgressBar(generator, file=out, widget=False) as bar:
        result = generator.generate_many_sync(
            [{"script": "One scene here."}, {"script": "Another scene there."}])
        assert bar.closed and bar.runs == 1  # one bar for the batch, not one per item
    assert result.ok and bar.progress == 1.0
    text = out.getvalue()
    final = text.rstrip("\n").rsplit("\r", 1)[-1]
    assert final.startswith("avgen: 100%|##########|"), final
    assert "2 done, 0 not done" in final
    assert text.count("fallback: item ") == 2  # each item's fallback, above the bar


def test_importing_avgen_does_not_import_tqdm() -> None:
    code = ("import sys, avgen, avgen.notebook; "
            "assert 'tqdm' not in sys.modules, 'tqdm imported'; "
            "assert 'ipywidgets' not in sys.modules, 'ipywidgets imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 0, proc.stderr


def test_progress_bar_without_its_libraries_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name in ("tqdm", "ipywidgets") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigurationError, match=r"needs tqdm and ipywidgets.*avgen\[notebook\]"):
        ProgressBar(widget=True)
    with pytest.raises(ConfigurationError, match=r"needs tqdm, which"):
        ProgressBar()
