"""The HTML run report (``avgen report``, ``write_report(video)``): one self-contained file per
session or batch whose numbers are the manifest's, with no external reference, that a real
headless Chromium renders without a script error."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avgen import AudioAsset, ReportView, VideoGenerator, VideoRequest, write_report
from avgen._cli import main
from avgen._report import (
    REPORT_FILE,
    WAITING_FOR_A_TURN,
    WAITING_FOR_ANOTHER_WORKER,
    WAITING_FOR_QUOTA,
    quota_in_use,
    step_segments,
)
from avgen.costs import Charge, paid_call
from avgen.errors import GenerationError, UsageError
from avgen.resilience import Monitor
from avgen.testing import PatternImages, ToneNarrator

SCRIPT = "Bees dance.\n\nRivers carry water.\n\nTides follow the moon.\n\nStars are far."
EXTERNAL = re.compile(r"(?:https?:|ftp:|file:)|[\"'(=]\s*//", re.I)


def external_references(page: str) -> list[str]:
    """Every URL with a scheme (outside data: URIs) or protocol-relative reference."""
    without_data = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "data:", page)
    return EXTERNAL.findall(without_data)


def manifest(session: Path) -> dict[str, object]:
    return json.loads((session / "metadata" / "manifest.json").read_text())  # type: ignore[no-any-return]


def scene_rows(page: str) -> dict[int, str]:
    rows = re.findall(r'<tr class="scene" id="scene-(\d+)"(.*?)</tr>', page, re.S)
    return {int(index): body for index, body in rows}


def check_session_page(session: Path, page: str) -> None:
    """Every scene is there, with the manifest's tier and cost, and the run's facts."""
    data = manifest(session)
    steps: dict[str, dict[str, object]] = data["steps"]  # type: ignore[assignment]
    scripted = json.loads((session / "scripts" / "script.json").read_text())["scenes"]
    rows = scene_rows(page)
    assert sorted(rows) == [scene["index"] for scene in scripted]
    for scene in scripted:
        row = rows[scene["index"]]
        assert scene["narration"] in row
        visual = steps.get(f"scene-{scene['index']:03d}.visual", {})
        assert f'data-tier="{visual.get("tier") or ""}"' in row
        cost = sum(float(s.get("cost", 0.0)) for key, s in steps.items()  # type: ignore[arg-type]
                   if key.startswith(f"scene-{scene['index']:03d}."))
        assert re.search(r'data-cost="([^"]+)"', row)[1] == repr(cost)  # type: ignore[index]
    spent = data["cost"]["spent"]  # type: ignore[index]
    assert f'<span id="fact-cost">{spent:.4f}</span>' in page
    if "compose" in steps:
        duration = steps["compose"]["data"]["duration"]  # type: ignore[index]
        assert f'<span id="fact-duration">{duration:.2f}</span>' in page
    assert external_references(page) == []


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    if found is None:
        pytest.fail("the report tests need Chromium (CI installs it: apt-get install chromium)")
    return found


def render(browser: str, page: Path, tmp_path: Path) -> tuple[Path, str]:
    """A screenshot and the DOM after the page's scripts ran, from headless Chromium."""
    common = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--mute-audio",
              "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
              "--virtual-time-budget=3000"]
    shot = tmp_path / f"{page.parent.name}-{page.stem}.png"
    subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,2000",
                    page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*common, "--dump-dom", page.resolve().as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    return shot, dom


def assert_renders(browser: str, page: Path, tmp_path: Path) -> str:
    shot, dom = render(browser, page, tmp_path)
    assert shot.is_file() and shot.stat().st_size > 20_000, "the screenshot is (nearly) blank"
    assert "<table" in dom
    error = re.search(r'id="avgen-js-error">(.*?)</pre>', dom, re.S)
    assert error is None, f"the page raised a script error: {error[1] if error else ''}"
    return dom


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished")
    monitor = Monitor(sampler=iter([{"cpu_percent": 10.0 + i, "memory_percent": 40.0}
                                    for i in range(50)]).__next__)
    for _ in range(5):
        monitor.tick()
    video = VideoGenerator(narrator=ToneNarrator(), image_generator=PatternImages(),
                           output_dir=out, monitor=monitor).generate_sync(
        script=SCRIPT, preset="draft")
    assert write_report(video) == video.session / "metadata" / REPORT_FILE
    return video.session


class PaidTone(ToneNarrator):
    """A tone narrator that bills $0.01 a scene and prices a request ahead."""

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        with paid_call(agent="paid-tone", model="tone-1", quantity=1, unit="audio_second",
                       usd=0.01):
            return await super().speak(text, target, voice=voice)

    def estimate(self, request: VideoRequest) -> list[Charge]:
        return [Charge("paid-tone", "tone-1", 4, "audio_second", 0.05)]


def test_cost_by_agent_and_model_against_the_estimate_and_the_budget(tmp_path: Path) -> None:
    video = VideoGenerator(narrator=PaidTone(), image_generator=PatternImages(),
                           output_dir=tmp_path, budget=1.0).generate_sync(
        script=SCRIPT, preset="draft")
    data = manifest(video.session)
    assert data["estimate"]["total"] == pytest.approx(0.05)  # type: ignore[index]
    page = write_report(video).read_text()
    check_session_page(video.session, page)
    assert data["cost"]["spent"] == pytest.approx(0.04)  # type: ignore[index]
    chart = re.search(r'id="cost-chart">(.*?)</div>', page, re.S)
    assert chart is not None
    for label in ("paid-tone / tone-1", "spent", "estimate", "budget (whole run)"):
        assert label in chart[1]
    assert "of $1.00 budget" in page


class OneAtATime(ToneNarrator):
    """A tone narrator that speaks one scene at a time and takes a moment for each; it
    notes when each of its turns began and ended (wall clock, as the manifest has it)."""

    max_concurrency = 1

    def __init__(self) -> None:
        super().__init__()
        self.spoke: list[tuple[float, float]] = []

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        began = time.time()
        await asyncio.sleep(0.05)
        made = await super().speak(text, target, voice=voice)
        self.spoke.append((began, time.time()))
        return made


@pytest.fixture(scope="module")
def waiting_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, OneAtATime]:
    out = tmp_path_factory.mktemp("waiting")
    narrator = OneAtATime()
    video = VideoGenerator(narrator=narrator, image_generator=PatternImages(),
                           output_dir=out).generate_sync(script=SCRIPT, preset="draft")
    write_report(video)
    return video.session, narrator


@pytest.fixture(scope="module")
def waiting(waiting_run: tuple[Path, OneAtATime]) -> Path:
    return waiting_run[0]


def test_scenes_waiting_for_a_turn_are_recorded_and_drawn_waiting(
        waiting_run: tuple[Path, OneAtATime]) -> None:
    """Four scenes, a narrator that takes one at a time: the scenes start together, three
    of them wait (recorded in their narration steps), the narrator's turns never overlap
    and no recorded wait covers a turn."""
    waiting, narrator = waiting_run
    data = manifest(waiting)
    steps: dict[str, dict[str, object]] = data["steps"]  # type: ignore[assignment]
    narrations = [steps[f"scene-{index:03d}.narration"] for index in range(4)]
    waits = {index: step["data"]["waits"] for index, step  # type: ignore[index]
             in enumerate(narrations)}
    assert sum(1 for found in waits.values() if found) == 3
    origin = min(float(step["started"]) for step in steps.values())  # type: ignore[arg-type]
    turns = sorted(narrator.spoke)
    assert len(turns) == 4
    # one at a time: each turn begins after the one before it has ended
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(turns))
    waited_until = []
    for step in narrations:
        for wait in step["data"]["waits"]:  # type: ignore[index]
            assert wait["for"] == "turn:tone" and wait["seconds"] > 0
            waited_until.append(wait["started"] + wait["seconds"])
        segments = step_segments(step, origin)
        assert [group for *_times, group in segments][-1] == "narration"
        assert all(group in ("narration", WAITING_FOR_A_TURN) for *_t, group in segments)
    # a recorded wait ends when its turn comes: after the turn before it, before its own
    # (1 µs for the float sum of start and length)
    waited_until.sort()
    for index, until in enumerate(waited_until):
        assert turns[index][1] <= until + 1e-6 and until <= turns[index + 1][0] + 1e-6
    # parallel scenes: every narration step began before the first turn ended
    assert sum(1 for step in narrations
               if float(step["started"]) < turns[0][1]) == 4  # type: ignore[arg-type]
    page = (waiting / "metadata" / REPORT_FILE).read_text()
    check_session_page(waiting, page)
    chart = re.search(r'id="timeline-chart">(.*?)</div>', page, re.S)
    assert chart is not None and WAITING_FOR_A_TURN in chart[1]
    assert WAITING_FOR_QUOTA not in chart[1]
    rows = scene_rows(page)
    for index, found in waits.items():
        shown = float(re.search(r'data-waited="([^"]+)"', rows[index])[1])  # type: ignore[index]
        assert shown == pytest.approx(sum(wait["seconds"] for wait in found))


def test_waits_are_cut_out_of_the_steps_bar() -> None:
    step = {"id": "scene-001.visual", "started": 110.0, "seconds": 10.0, "data": {"waits": [
        {"for": "turn:pattern", "started": 110.0, "seconds": 2.0},
        {"for": "quota:imagen", "started": 115.0, "seconds": 1.0, "reason": "slot"},
        {"for": "flight:3fa9", "started": 113.0, "seconds": 0.5, "reason": "slot"},
        {"for": "quota:imagen", "started": 119.5, "seconds": 5.0, "reason": "rate"},
        "not a wait"]}}
    assert step_segments(step, 100.0) == [
        (10.0, 12.0, WAITING_FOR_A_TURN), (12.0, 13.0, "visual"),
        (13.0, 13.5, WAITING_FOR_ANOTHER_WORKER), (13.5, 15.0, "visual"),
        (15.0, 16.0, WAITING_FOR_QUOTA), (16.0, 19.5, "visual"),
        (19.5, 20.0, WAITING_FOR_QUOTA)]
    assert step_segments({"id": "script", "started": 100.0, "seconds": 1.0}, 100.0) == [
        (0.0, 1.0, "script")]


def test_a_steps_waits_and_quota_holds_come_from_its_events() -> None:
    from avgen._steps import waits
    from avgen.resilience import ResilienceEvent

    events = [
        ResilienceEvent("turn.wait", "tone", {"name": "tone", "started": 1.0, "seconds": 0.5}),
        ResilienceEvent("quota.wait", "quota:veo", {"name": "quota:veo", "started": 2.0,
                                                    "seconds": 1.0, "reason": "slot"}),
        ResilienceEvent("quota.held", "quota:veo", {"name": "quota:veo", "started": 3.0,
                                                    "seconds": 4.0, "limit": 2}),
        ResilienceEvent("quota.held", "flight:ab", {"name": "flight:ab", "started": 3.0,
                                                    "seconds": 1.0, "limit": 1}),
        ResilienceEvent("cache.hit", "veo")]
    assert waits(events) == {
        "waits": [{"for": "turn:tone", "started": 1.0, "seconds": 0.5},
                  {"for": "quota:veo", "started": 2.0, "seconds": 1.0, "reason": "slot"}],
        "quota": [{"name": "quota:veo", "started": 3.0, "seconds": 4.0, "limit": 2}]}
    assert waits([]) == {"waits": [], "quota": []}


@pytest.fixture(scope="module")
def fallbacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fallbacks")
    video = VideoGenerator(narrator=ToneNarrator(), image_generator=PatternImages(
        fail_on={0, 2, 3}), output_dir=out).generate_sync(script=SCRIPT, preset="draft")
    write_report(video.session)
    return video.session


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, VideoGenerator,
                                                                       ToneNarrator]]:
    out = tmp_path_factory.mktemp("failed")
    voice = ToneNarrator(fail_on={"Tides follow the moon."})
    generator = VideoGenerator(narrator=voice, image_generator=PatternImages(),
                               output_dir=out)
    with pytest.raises(GenerationError) as caught:
        generator.generate_sync(script=SCRIPT, preset="draft")
    assert caught.value.session is not None
    yield caught.value.session, generator, voice


def test_a_finished_session_shows_every_scene_with_the_manifests_numbers(
        finished: Path) -> None:
    page = (finished / "metadata" / REPORT_FILE).read_text()
    check_session_page(finished, page)
    assert '<video id="video"' in page and 'src="../final_output/' in page
    assert page.count("data:image/jpeg;base64,") == 5  # a frame of each scene, the poster
    assert 'id="timeline-chart"' in page and "<svg" in page
    assert 'id="resource-chart"' in page  # the monitor sampled
    assert "LUFS" in page and "draft" in page
    assert 'id="unfinished"' not in page
    # a second report reuses the frames kept in metadata/thumbnails/ (one folder)
    kept = list((finished / "metadata" / "thumbnails").iterdir())
    assert len(kept) == 1 and len(list(kept[0].glob("*.jpg"))) == 4
    assert write_report(finished).read_text().count("data:image/jpeg;base64,") == 5
    assert list((finished / "metadata" / "thumbnails").iterdir()) == kept


def test_scenes_are_numbered_from_1_with_their_titles(finished: Path) -> None:
    """One numbering for people: the page, the run's messages and the credits say
    "scene 1" for the scene of index 0 (ids, files and the manifest keep the index)."""
    page = (finished / "metadata" / REPORT_FILE).read_text()
    scripted = json.loads((finished / "scripts" / "script.json").read_text())["scenes"]
    rows = scene_rows(page)
    for scene in scripted:
        row = rows[scene["index"]]
        assert f'<td class="scene-number">{scene["index"] + 1}</td>' in row
        assert scene["title"] and f'<strong class="scene-title">{scene["title"]}</strong>' in row
        assert f'alt="scene {scene["index"] + 1}"' in row
    log = (finished / "logs" / "session.log").read_text()
    assert "scene 1: narration" in log and "scene 4: narration" in log
    assert "scene 0:" not in log


def test_a_fallback_heavy_session_names_each_error_that_made_a_scene_fall(
        fallbacks: Path) -> None:
    page = (fallbacks / "metadata" / REPORT_FILE).read_text()
    check_session_page(fallbacks, page)
    rows = scene_rows(page)
    for index in (0, 2, 3):
        assert 'data-tier="card"' in rows[index]
        assert f"no image for scene {index + 1} (fail_on)" in rows[index]
    assert 'data-tier="image"' in rows[1] and "first try" in rows[1]
    assert "card × 3" in page


def test_a_failed_session_says_what_is_missing_and_how_to_finish_it(
        failed: tuple[Path, VideoGenerator, ToneNarrator]) -> None:
    session = failed[0]
    page = write_report(session).read_text()
    check_session_page(session, page)
    assert 'id="run-status">failed<' in page
    assert f'<code id="resume-command">avgen resume {session}</code>' in page
    assert "the final video (not composed yet)" in page
    assert "narration failed" in scene_rows(page)[2]
    assert "<video" not in page


def test_a_resumed_session_reports_as_done(
        failed: tuple[Path, VideoGenerator, ToneNarrator], tmp_path: Path) -> None:
    session, generator, voice = failed
    copy = tmp_path / session.name
    shutil.copytree(session, copy)
    voice.fail_on = frozenset()
    video = generator.resume_sync(copy)
    page = write_report(video).read_text()
    check_session_page(copy, page)
    assert 'id="run-status">done<' in page and "avgen resume" not in page
    assert page.count("data:image/jpeg;base64,") == 5


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch")
    voice = ToneNarrator(fail_on={"Rivers carry water to the sea."})
    generator = VideoGenerator("local", narrator=voice, output_dir=out)
    result = generator.generate_many_sync(
        [VideoRequest(script=s, preset="draft") for s in
         ["Bees dance.", "Rivers carry water to the sea.", "Tides follow the moon."]])
    assert [item.status for item in result] == ["done", "failed", "done"]
    assert main(["report", str(result.directory)]) == 0
    return result.directory


def test_a_batch_lists_failures_first_with_their_resume_commands(batch: Path) -> None:
    page = (batch / REPORT_FILE).read_text()
    state = json.loads((batch / "batch.json").read_text())
    order = [int(i) for i in re.findall(r'<tr class="item" id="item-(\d+)"', page)]
    assert order == [1, 0, 2]
    failed = state["items"][1]
    assert f"avgen resume {batch / failed['session']}" in page
    rows = dict(re.findall(r'<tr class="item" id="item-(\d+)">(.*?)</tr>', page, re.S))
    for item in state["items"]:
        row = rows[str(item["index"])]
        assert (batch / item["session"] / "metadata" / REPORT_FILE).is_file()
        assert f'href="./{item["session"]}/metadata/{REPORT_FILE}"' in row
        title = manifest(batch / item["session"])["title"]
        assert title and f'<td class="item-title">{title}</td>' in row
        assert f">{item['status']}</span>" in row and f"{item['cost']:.4f}" in row
        videos = re.findall(r'class="video-link" href="([^"]+)"', row)
        if item["status"] == "done":
            assert f"{item['duration']:.2f}" in row
            assert videos == [f"./{item['video']}"]
            assert (batch / item["video"]).is_file()
        else:
            assert videos == []
    assert f'<span id="total-done">{state["totals"]["done"]}</span>' in page
    assert f'<span id="total-failed">{state["totals"]["failed"]}</span>' in page
    assert 'id="items-chart"' in page
    assert external_references(page) == []


@pytest.mark.slow
def test_the_pages_render_in_chromium_without_a_script_error(
        chromium: str, finished: Path, fallbacks: Path,
        failed: tuple[Path, VideoGenerator, ToneNarrator], batch: Path, waiting: Path,
        tmp_path: Path) -> None:
    for page in (finished / "metadata" / REPORT_FILE, fallbacks / "metadata" / REPORT_FILE,
                 write_report(failed[0]), waiting / "metadata" / REPORT_FILE):
        dom = assert_renders(chromium, page, tmp_path)
        assert 'data-scenes="4"' in dom  # the page's own script ran
    dom = assert_renders(chromium, batch / REPORT_FILE, tmp_path)
    assert dom.count('<tr class="item"') == 3


def test_the_script_error_check_catches_an_error(chromium: str, finished: Path,
                                                 tmp_path: Path) -> None:
    broken = finished / "metadata" / "broken.html"
    page = (finished / "metadata" / REPORT_FILE).read_text()
    broken.write_text(page.replace("</body>", "<script>noSuchFunction();</script></body>"))
    try:
        _shot, dom = render(chromium, broken, tmp_path)
    finally:
        broken.unlink()
    assert 'id="avgen-js-error"' in dom and "noSuchFunction" in dom


def test_the_command_refuses_a_folder_that_is_neither(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "neither a session folder" in capsys.readouterr().err
    with pytest.raises(UsageError, match="neither"):
        write_report(tmp_path)
    (tmp_path / "metadata").mkdir()
    manifest_file = tmp_path / "metadata" / "manifest.json"
    manifest_file.write_text(json.dumps({"steps": {"script": {"id": "script"}}}))
    with pytest.raises(UsageError, match=r"steps\['script'\]"):
        write_report(tmp_path)
    manifest_file.write_text(json.dumps({"steps": [], "request": 3}))
    with pytest.raises(UsageError, match="cannot read"):
        write_report(tmp_path)
    manifest_file.write_text("{not json")
    with pytest.raises(UsageError, match="cannot read"):
        write_report(tmp_path)


def test_the_notebook_view_frames_a_report_under_the_working_directory(
        finished: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = finished / "metadata" / REPORT_FILE
    monkeypatch.chdir(finished)
    assert '<iframe src="metadata/report.html"' in ReportView(report)._repr_html_()
    monkeypatch.chdir(finished / "metadata")
    outside = ReportView(finished / "final_output")._repr_html_()
    assert "<iframe" not in outside and "outside the working directory" in outside


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                              exclude_characters=":/;"), min_size=1, max_size=40).filter(str.strip)


@settings(deadline=None, max_examples=25,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenes=st.lists(st.tuples(texts, st.sampled_from(["clip", "image", "card"]),
                                 st.floats(0, 5, allow_nan=False), st.booleans()),
                       min_size=1, max_size=8))
def test_any_recorded_scenes_are_reported_escaped_with_their_numbers(
        tmp_path: Path, scenes: list[tuple[str, str, float, bool]]) -> None:
    """A manifest written by hand (no video): each scene's text (escaped), tier and cost
    are on the page, and nothing in it points outside the file."""
    from markupsafe import escape

    session = Path(tempfile.mkdtemp(prefix="session_", dir=tmp_path))
    (session / "metadata").mkdir()
    (session / "scripts").mkdir()
    steps: dict[str, object] = {}
    for index, (text, tier, cost, failed) in enumerate(scenes):
        steps[f"scene-{index:03d}.visual"] = {
            "id": f"scene-{index:03d}.visual", "agent": "x", "inputs_hash": "0",
            "status": "fallback" if failed else "done", "outputs": [], "tier": tier,
            "started": 1000.0 + index, "seconds": 1.5, "cost": cost,
            "error": f"clip (x): {text}" if failed else None, "data": {"charges": [
                {"agent": "x", "model": "m", "quantity": 1, "unit": "image", "usd": cost}]}}
    (session / "metadata" / "manifest.json").write_text(json.dumps({
        "session": session.name, "status": "interrupted", "steps": steps,
        "cost": {"spent": sum(c for _t, _tier, c, _f in scenes), "budget": 10.0}}))
    (session / "scripts" / "script.json").write_text(json.dumps({"scenes": [
        {"index": i, "narration": text} for i, (text, *_rest) in enumerate(scenes)]}))
    page = write_report(session).read_text()
    rows = scene_rows(page)
    assert sorted(rows) == list(range(len(scenes)))
    for index, (text, tier, cost, _failed) in enumerate(scenes):
        assert str(escape(text)) in rows[index]
        assert f'data-tier="{tier}"' in rows[index] and f'data-cost="{cost!r}"' in rows[index]
    assert "avgen resume" in page and 'id="cost-chart"' in page
    assert external_references(page) == []


def test_a_batch_record_cannot_point_outside_its_folder(finished: Path, tmp_path: Path) -> None:
    """batch.json is untrusted: an item whose session lies outside the batch folder is
    neither read nor given a report there, and a bad index is no traceback."""
    victim = tmp_path / "victim"
    shutil.copytree(finished, victim, ignore=shutil.ignore_patterns(REPORT_FILE))
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "batch.json").write_text(json.dumps({"items": [
        {"index": 0, "session": "../victim", "status": "failed"},
        {"index": "x", "session": "items/0001-x", "status": "pending"}]}), "utf-8")
    page = write_report(batch).read_text("utf-8")
    assert not (victim / "metadata" / REPORT_FILE).exists()
    assert "victim/metadata" not in page
    # a record without totals: they are counted from the items, never a method's repr
    assert "<li>Items: 2</li>" in page and "built-in method" not in page
    assert '<span id="total-failed">1</span>' in page


@pytest.mark.parametrize("recorded", ["javascript:alert(1)//../items/0000-x",
                                      "javascript:alert(1)"])
def test_a_batch_report_links_only_to_reports_inside_the_batch(finished: Path, tmp_path: Path,
                                                             recorded: str) -> None:
    """An item's ``session`` is never copied into a link: the link is made from the folder
    it resolves to inside the batch, so no recorded text can become a ``javascript:`` URL."""
    batch = tmp_path / "batch"
    folder = (batch / recorded).resolve()  # "javascript:alert(1)" is a folder name too
    shutil.copytree(finished, folder, ignore=shutil.ignore_patterns(REPORT_FILE))
    (batch / "batch.json").write_text(json.dumps({"items": [
        {"index": 0, "session": recorded, "status": "done"}]}), "utf-8")
    page = write_report(batch).read_text("utf-8")
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    assert links, "the item's report is linked"
    for link in links:
        assert not re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", link), link  # no scheme at all
        target = (batch / urllib.parse.unquote(link)).resolve()
        assert target.is_file() and target.is_relative_to(batch.resolve())
    assert (folder / "metadata" / REPORT_FILE).is_file()


@pytest.mark.parametrize("where", ["climbing", "absolute", "symlink"])
def test_a_session_report_refuses_a_video_outside_the_session(finished: Path, tmp_path: Path,
                                                              where: str) -> None:
    """A manifest whose ``video`` lies outside the session is refused, as the composer
    refuses such paths: no frame of that file is decoded, and nothing links to it."""
    session = tmp_path / "session"
    shutil.copytree(finished, session, ignore=shutil.ignore_patterns(REPORT_FILE,
                                                                     "thumbnails"))
    outside = tmp_path / "elsewhere.mp4"
    shutil.copy(session / str(manifest(session)["video"]), outside)
    recorded = {"climbing": "../elsewhere.mp4", "absolute": str(outside),
                "symlink": "final_output/elsewhere.mp4"}[where]
    if where == "symlink":
        (session / recorded).symlink_to(outside)
    data = manifest(session)
    data["video"] = recorded
    (session / "metadata" / "manifest.json").write_text(json.dumps(data), "utf-8")
    with pytest.raises(UsageError, match=r"video.*(outside|inside)"):
        write_report(session)
    assert not (session / "metadata" / REPORT_FILE).exists()
    assert not (session / "metadata" / "thumbnails").exists()


def held_session(batch: Path, name: str, holds: list[tuple[str, float, float, int]]) -> None:
    """An item's session whose one step held these quota slots (name, start, end, limit)."""
    session = batch / "items" / name
    (session / "metadata").mkdir(parents=True)
    start = min((h[1] for h in holds), default=1000.0)
    end = max((h[2] for h in holds), default=1001.0)
    step = {"id": "scene-000.visual", "agent": "google:veo-2", "inputs_hash": "0",
            "status": "done", "outputs": [], "tier": "clip", "started": start,
            "seconds": end - start, "cost": 0.0, "error": None, "data": {
                "waits": [], "quota": [{"name": q, "started": s, "seconds": e - s, "limit": lim}
                                       for q, s, e, lim in holds]}}
    (session / "metadata" / "manifest.json").write_text(json.dumps({
        "session": name, "status": "done", "steps": {"scene-000.visual": step}}))


def test_a_batch_shows_the_quota_its_items_held_against_the_limit(tmp_path: Path) -> None:
    """Three items' holds of one model's slots overlap at most two at a time (the third
    starts when the first gives its slot back); a fourth item recorded none."""
    batch = tmp_path / "batch"
    held_session(batch, "0000-a", [("quota:veo-2", 1000.0, 1010.0, 2)])
    held_session(batch, "0001-b", [("quota:veo-2", 1005.0, 1020.0, 2),
                                   ("quota:imagen", 1006.0, 1007.0, 4)])
    held_session(batch, "0002-c", [("quota:veo-2", 1010.0, 1015.0, 2)])
    held_session(batch, "0003-d", [])
    (batch / "batch.json").write_text(json.dumps({"items": [
        {"index": i, "session": f"items/{name}", "status": "done"}
        for i, name in enumerate(["0000-a", "0001-b", "0002-c", "0003-d"])]}))
    page = write_report(batch).read_text()
    chart = re.search(r'id="quota-chart">(.*?)</div>', page, re.S)
    assert chart is not None
    assert "quota:veo-2 (limit 2)" in chart[1] and "quota:imagen (limit 4)" in chart[1]
    holds = [hold for item in sorted((batch / "items").iterdir())
             for step in manifest(item)["steps"].values()  # type: ignore[attr-defined]
             for hold in step["data"]["quota"]]
    usage = quota_in_use(holds, 1000.0)
    veo, limit = usage["quota:veo-2"]
    assert limit == 2 and max(held for _t, held in veo) == 2
    assert veo == [(0.0, 1), (5.0, 2), (15.0, 1), (20.0, 0)]
    assert usage["quota:imagen"] == ([(6.0, 1), (7.0, 0)], 4)
    assert external_references(page) == []
    # an item's own page shows what it held
    item = (batch / "items" / "0001-b" / "metadata" / REPORT_FILE).read_text()
    own = re.search(r'id="quota-chart">(.*?)</div>', item, re.S)
    assert own is not None and "quota:imagen (limit 4)" in own[1]
    assert 'id="quota-chart"' not in (batch / "items" / "0003-d" / "metadata"
                                      / REPORT_FILE).read_text()


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(["quota:a", "quota:b"]),
                          st.integers(0, 20), st.integers(0, 10)), max_size=12))
def test_quota_in_use_peaks_at_the_most_holds_that_overlap(
        holds: list[tuple[str, int, int]]) -> None:
    usage = quota_in_use([{"name": n, "started": float(s), "seconds": float(d), "limit": 3}
                          for n, s, d in holds])
    assert set(usage) == {n for n, _s, d in holds}
    for name, (points, limit) in usage.items():
        spans = [(s, s + d) for n, s, d in holds if n == name]
        assert limit == 3 and points[-1][1] == 0
        assert [t for t, _held in points] == sorted({t for t, _held in points})
        for at, held in points:  # the slots held from each change on
            assert held == sum(1 for s, e in spans if s <= at < e)
        overlap = max((sum(1 for s, e in spans if s <= at < e) for at, _e in spans), default=0)
        assert max(held for _t, held in points) == overlap
