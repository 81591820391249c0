"""A batch survives what happens to its folder and its workers: a ``batch.json`` with an
impossible index or a folder in its place is named, not a traceback; a worker process
killed mid-batch costs no item: those it had not started run on a fresh pool, and the one
it was running resumes its session."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from media import decode

from avgen import VideoGenerator, VideoRequest, read_requests
from avgen._batch import BATCH_FILE, AgentSpec, batch_id
from avgen._batch_pool import MAX_RUNS, Pools, run_surviving
from avgen.errors import UsageError
from avgen.testing import ToneNarrator

SCRIPTS = ["Bees dance. They tell the hive where flowers are.",
           "Rivers carry water to the sea. The sea is wide.",
           "Tides follow the moon. The moon is far away.",
           "Owls hunt at night. Their wings are silent."]


def batch_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "avgen", "batch", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("damage", ["index 1e999", "index -1", "index 1.5",
                                    "items not a list", "a folder in its place",
                                    "a symlink in its place", "deeply nested"])
def test_a_damaged_batch_json_is_named_not_a_traceback(tmp_path: Path, damage: str) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"script": SCRIPTS[0], "preset": "draft"}) + "\n")
    folder = tmp_path / "out" / f"batch_{batch_id(read_requests(rows), AgentSpec('local'))}"
    folder.mkdir(parents=True)  # where `avgen batch rows.jsonl --out out` keeps its state
    state = folder / BATCH_FILE
    text = json.dumps({"version": 1, "items": [{"index": 0, "status": "done"}]})
    if damage.startswith("index"):
        state.write_text(text.replace('"index": 0', f'"index": {damage.split()[1]}'))
    elif damage == "items not a list":
        state.write_text(json.dumps({**json.loads(text), "items": {"0": {}}}))
    elif damage == "a folder in its place":
        state.mkdir()
    elif damage == "a symlink in its place":
        (tmp_path / "elsewhere.json").write_text(text)
        state.symlink_to(tmp_path / "elsewhere.json")
    else:
        state.write_text("[" * 100_000)
    again = batch_cli(str(rows), "--out", "out", cwd=tmp_path)
    assert again.returncode == 2, again.stderr
    assert "Traceback" not in again.stderr
    assert f"avgen: error: batch: {state}" in again.stderr
    assert "remove it to start the batch again" in again.stderr


def test_the_api_names_an_impossible_index_too(tmp_path: Path) -> None:
    generator = VideoGenerator("local", narrator=ToneNarrator(), output_dir=tmp_path)
    result = generator.generate_many_sync([VideoRequest(script=SCRIPTS[0])])
    state = result.directory / BATCH_FILE
    state.write_text(state.read_text().replace('"index": 0', '"index": 1e999'))
    with pytest.raises(UsageError, match=r"items\[0\]\.index: must be an int >= 0, not inf"):
        generator.generate_many_sync([VideoRequest(script=SCRIPTS[0])])


def test_a_worker_killed_mid_batch_costs_no_item(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"script": s, "preset": "draft"}) + "\n"
                            for s in SCRIPTS))
    batch = subprocess.Popen([sys.executable, "-m", "avgen", "batch", str(rows), "--processes",
                              "2", "--out", "out"], cwd=tmp_path, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    killed: tuple[int, Path] | None = None
    deadline = time.monotonic() + 300  # only so a broken batch cannot hang the tests
    try:
        while killed is None and batch.poll() is None and time.monotonic() < deadline:
            for manifest in (tmp_path / "out").glob("batch_*/items/*/metadata/manifest.json"):
                try:
                    data = json.loads(manifest.read_text())
                except (OSError, ValueError):
                    continue  # being written
                if data.get("status") == "running" and data.get("host"):
                    os.kill(data["host"]["pid"], signal.SIGKILL)  # a worker, mid-item
                    killed = data["host"]["pid"], manifest.parent.parent
                    break
            time.sleep(0.02)
        out, err = batch.communicate(timeout=600)
    finally:
        if batch.poll() is None:
            batch.kill()
    assert killed is not None, "no item was seen running"
    assert batch.returncode == 0, err
    assert "4 done, 0 not done" in out
    assert "the process running it died; it runs again and resumes its session" in err
    pid, session = killed
    manifest = json.loads((session / "metadata" / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["host"]["pid"] != pid  # resumed
    videos = sorted((tmp_path / "out").glob("batch_*/items/*/final_output/*.mp4"))
    assert len(videos) == 4 and all(decode(video)["errors"] == "" for video in videos)
    state = json.loads(next((tmp_path / "out").glob(f"batch_*/{BATCH_FILE}")).read_text())
    assert [item["status"] for item in state["items"]] == ["done"] * 4


def _exit_now(code: int) -> int:
    os._exit(code)


def _double(value: int) -> int:
    return 2 * value


def test_an_item_that_kills_its_worker_every_time_ends_and_others_still_run() -> None:
    user_pool = concurrent.futures.ProcessPoolExecutor(2)
    pools = Pools(user_pool)

    async def started() -> bool:
        return True

    async def never() -> bool:
        return False

    async def batch() -> list[object]:
        killer = run_surviving(pools, lambda pool: pool.submit(_exit_now, 3), started,
                               "item 0")
        fine = [run_surviving(pools, lambda pool, n=n: pool.submit(_double, n), never,
                              f"item {n}") for n in range(1, 6)]
        return await asyncio.gather(killer, *fine, return_exceptions=True)

    try:
        outcomes = asyncio.run(batch())
    finally:
        pools.close()
        user_pool.shutdown()
    assert isinstance(outcomes[0], concurrent.futures.process.BrokenProcessPool)
    assert f"died {MAX_RUNS} times" in str(outcomes[0])
    assert outcomes[1:] == [2, 4, 6, 8, 10]
    assert pools.current is not user_pool


def test_a_broken_pool_that_cannot_be_made_anew_fails_its_items() -> None:
    class Broken(concurrent.futures.Executor):
        def submit(self, *args: object, **kwargs: object) -> concurrent.futures.Future[int]:
            raise concurrent.futures.BrokenExecutor("gone")

    async def started() -> bool:
        return False

    with pytest.raises(concurrent.futures.BrokenExecutor, match="gone"):
        asyncio.run(run_surviving(Pools(Broken()), lambda pool: pool.submit(_double, 1),
                                  started, "item 0"))


JOURNAL = "batch.journal.jsonl"


def test_the_state_file_is_written_whole_only_when_a_run_starts_and_ends(
        tmp_path: Path) -> None:
    """While the items run, each change is a line added to the journal: ``batch.json`` is
    not replaced (its cost would grow with the batch); the run's end folds the journal in."""
    generator = VideoGenerator("local", narrator=ToneNarrator(), output_dir=tmp_path / "out")
    seen: list[tuple[int, int]] = []  # (batch.json's inode, journal lines) at each item's end
    folder: list[Path] = []

    def watch(event: object) -> None:
        kind, data = getattr(event, "kind", ""), getattr(event, "data", {})
        if kind == "batch.start":
            folder.append(Path(data["path"]))
        elif kind == "batch.item" and data["status"] != "running":
            lines = (folder[0] / JOURNAL).read_text().splitlines()
            seen.append(((folder[0] / BATCH_FILE).stat().st_ino, len(lines)))

    result = generator.generate_many_sync([VideoRequest(script=s) for s in SCRIPTS],
                                          concurrency=1, on_event=watch)
    assert result.ok and len(seen) == len(SCRIPTS)
    assert len({inode for inode, _ in seen}) == 1  # never replaced while the items ran
    # one line when an item starts, one when it ends: a change costs the same at any size
    assert [lines for _, lines in seen] == [2 * n for n in range(1, len(SCRIPTS) + 1)]
    assert not (result.directory / JOURNAL).exists()
    state = json.loads((result.directory / BATCH_FILE).read_text())
    assert [item["status"] for item in state["items"]] == ["done"] * len(SCRIPTS)


def test_a_killed_runs_journal_is_read_by_the_next_run_and_the_report(tmp_path: Path) -> None:
    """A run killed mid-batch leaves ``batch.json`` as it started and a journal whose last
    line may be cut short: what the journal says wins, the cut line is ignored."""
    from avgen import write_report
    from avgen._batch import batch_record

    generator = VideoGenerator("local", narrator=ToneNarrator(), output_dir=tmp_path / "out")
    rows = [VideoRequest(script=s) for s in SCRIPTS[:3]]
    result = generator.generate_many_sync(rows)
    state = json.loads((result.directory / BATCH_FILE).read_text())
    finished = state["items"]
    started = [{**item, "status": "pending", "video": None, "duration": None}
               for item in finished]
    (result.directory / BATCH_FILE).write_text(json.dumps({**state, "items": started}))
    (result.directory / JOURNAL).write_text(
        "".join(json.dumps(item) + "\n" for item in finished[:2])
        + json.dumps(finished[2])[:40])  # killed while writing the third
    record = batch_record(result.directory)
    assert [item["status"] for item in record["items"]] == ["done", "done", "pending"]
    page = write_report(result.directory).read_text()
    assert page.count('class="status status-done"') == 2
    assert page.count('class="status status-pending"') == 1

    again = generator.generate_many_sync(rows)
    assert again.ok and [item.video for item in again] == [item.video for item in result]
    assert not (again.directory / JOURNAL).exists()


def test_a_damaged_journal_line_is_named_before_anything_runs(tmp_path: Path) -> None:
    voice = ToneNarrator()
    generator = VideoGenerator("local", narrator=voice, output_dir=tmp_path / "out")
    rows = [VideoRequest(script=s) for s in SCRIPTS[:2]]
    result = generator.generate_many_sync(rows)
    calls = voice.calls
    (result.directory / JOURNAL).write_text('{"index": 0, "status": "done"}\nnot json\n{}\n')
    with pytest.raises(UsageError, match=r"batch\.journal\.jsonl, line 2, cannot be read"):
        generator.generate_many_sync(rows)
    assert voice.calls == calls


class CheckedNarrator(ToneNarrator):
    """A tone narrator that counts the requests it is asked to check."""

    def __init__(self) -> None:
        super().__init__()
        self.checked: list[str] = []

    def check(self, request: VideoRequest) -> None:
        self.checked.append(request.script or "")


def test_a_finished_row_is_not_checked_again_but_one_to_make_is(tmp_path: Path) -> None:
    voice = CheckedNarrator()
    generator = VideoGenerator("local", narrator=voice, output_dir=tmp_path / "out")
    rows = [VideoRequest(script=s) for s in SCRIPTS[:3]]
    first = generator.generate_many_sync(rows)
    assert first.ok and set(voice.checked) == set(SCRIPTS[:3])
    voice.checked.clear()
    assert generator.generate_many_sync(rows).ok
    assert voice.checked == []  # every row was made: nothing to check before running
    assert first[1].video is not None
    first[1].video.unlink()  # its video is gone: the row is to be made again
    again = generator.generate_many_sync(rows)
    assert again.ok and voice.checked and set(voice.checked) == {SCRIPTS[1]}


def test_an_item_killed_before_its_request_was_recorded_starts_again(tmp_path: Path) -> None:
    """A worker killed between making an item's session folder and recording its request
    leaves a manifest without one: the next run makes the item in that folder, instead of
    failing it as a session it cannot resume."""
    from avgen._batch import _item_root
    from avgen._generator import _BatchMaker
    from avgen._session import Session

    generator = VideoGenerator("local", narrator=ToneNarrator(), output_dir=tmp_path / "out")
    rows = [VideoRequest(script=s) for s in SCRIPTS[:2]]
    agents = AgentSpec("custom", {"agents": dict(_BatchMaker(generator).names())})
    folder = (tmp_path / "out").absolute() / f"batch_{batch_id(rows, agents)}"
    root = _item_root(folder, 0, rows[0])
    root.parent.mkdir(parents=True)
    Session.create(root.parent, name=root.name)  # the folder, as a killed run left it
    assert Session.open(root).manifest.get("request") is None
    result = generator.generate_many_sync(rows)
    assert result.directory == folder and result[0].session == root
    assert result.ok, [item.error for item in result.failed]
    assert result[0].video is not None and decode(result[0].video)["errors"] == ""


def test_a_journal_line_longer_than_avgen_writes_is_refused_unread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journal is read a bounded line at a time: a line past the limit (not one avgen
    wrote) is named, not loaded whole, even as the last line."""
    from avgen import _batch

    generator = VideoGenerator("local", narrator=ToneNarrator(), output_dir=tmp_path / "out")
    rows = [VideoRequest(script=SCRIPTS[0])]
    result = generator.generate_many_sync(rows)
    monkeypatch.setattr(_batch, "_JOURNAL_LINE_LIMIT", 1000)
    (result.directory / JOURNAL).write_text('{"index": 0, "pad": "' + "x" * 5000 + '"}')
    with pytest.raises(UsageError, match=r"line 1, cannot be read \(longer than 1,000 bytes"):
        generator.generate_many_sync(rows)
