"""Tests of avgen._session: layout, unique names, path safety, atomic writes, manifest, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen._hashing import file_sha256
from avgen._session import SUBFOLDERS, Manifest, OutputRecord, Session, StepRecord
from avgen.errors import SessionError, UnsafePathError, UsageError

NAME = re.compile(r"session_\d{8}_\d{6}_[0-9a-f]+")


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    with Session.create(tmp_path / "outputs") as made:
        yield made


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    with Session.create(tmp_path_factory.mktemp("shared")) as made:
        yield made


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if ".part" in p.name]


# --------------------------------------------------------------------------- layout and ids


def test_layout(tmp_path: Path) -> None:
    with Session.create(tmp_path) as s:
        assert [p.name for p in tmp_path.iterdir()] == [s.id]  # the write probe is gone
        assert NAME.fullmatch(s.id), s.id
        assert s.root == (tmp_path / s.id).resolve()
        assert {p.name for p in s.root.iterdir()} == set(SUBFOLDERS)
        assert all(p.is_dir() for p in s.root.iterdir())


def test_ids_unique_in_one_process(tmp_path: Path) -> None:
    sessions = [Session.create(tmp_path) for _ in range(200)]
    assert len({s.id for s in sessions}) == 200
    assert len(list(tmp_path.iterdir())) == 200


def test_ids_unique_across_processes(tmp_path: Path) -> None:
    code = ("import sys\nfrom avgen._session import Session\n"
            "for _ in range(25): print(Session.create(sys.argv[1]).id)\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    names: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        names += out.split()
    assert len(names) == 100 and len(set(names)) == 100
    on_disk = {p.name for p in tmp_path.iterdir() if p.is_dir()}
    assert on_disk == set(names)
    assert all(NAME.fullmatch(n) for n in on_disk)


# --------------------------------------------------------------------------- path safety

SEGMENTS = st.one_of(
    st.sampled_from(["..", ".", "", "a", "b c", "é", "日本語", "x.png", "...", "..a", "a..", " "]),
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"),
            min_size=1, max_size=12),
)


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(["", "/", "//"]), segments=st.lists(SEGMENTS, max_size=6))
def test_path_stays_inside(shared: Session, prefix: str, segments: list[str]) -> None:
    raw = prefix + "/".join(segments)
    must_fail = raw == "" or raw.startswith("/") or ".." in segments
    try:
        result = shared.path(raw)
    except UnsafePathError as exc:
        assert isinstance(exc, UsageError) and isinstance(exc, ValueError)
        assert exc.field == "path"
        assert must_fail or raw.strip("/.") == "", raw
        return
    assert not must_fail, f"{raw!r} was accepted as {result}"
    assert result.is_absolute()
    assert result == shared.root or result.is_relative_to(shared.root)
    assert result == (shared.root / raw).resolve()


@pytest.mark.parametrize("raw", ["..", "../x", "a/../../x", "images/../..", "/etc/passwd",
                                 "//srv/x", "", "a\x00b", Path("/tmp")])
def test_path_rejects(session: Session, raw: str | Path) -> None:
    with pytest.raises(UnsafePathError):
        session.path(raw)


def test_symlinks(session: Session, tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", session.root / "images" / "link")
    with pytest.raises(UnsafePathError):
        session.path("images/link/x.png")
    with pytest.raises(UnsafePathError):
        session.write_bytes("images/link/x.png", b"escape")
    assert list((tmp_path / "outside").iterdir()) == []
    os.symlink(session.root / "audio", session.root / "images" / "inside")
    os.symlink("../audio", session.root / "images" / "relative")
    assert session.path("images/inside/x.png") == session.root / "audio" / "x.png"
    assert session.path("images/relative/y.png") == session.root / "audio" / "y.png"


def test_symlink_loop_is_unsafe(session: Session) -> None:
    os.symlink("loop", session.root / "images" / "loop")
    with pytest.raises(UnsafePathError):
        session.path("images/loop/x.png")
    record = StepRecord("s", "a", "h", "done", [attrs.evolve(
        session.manifest.output(session.write_bytes("images/ok.png", b"1")),
        path="images/loop/x.png")])
    assert session.manifest.is_valid(record) is False


def test_relative(session: Session, tmp_path: Path) -> None:
    assert session.relative(session.root / "scripts" / "a.txt") == "scripts/a.txt"
    for outside in (tmp_path / "elsewhere.txt", Path(f"{session.root}_evil") / "x",
                    session.root / ".." / "x"):
        with pytest.raises(UnsafePathError):
            session.relative(outside)


# --------------------------------------------------------------------------- atomic writes


def test_write_helpers(session: Session) -> None:
    assert session.write_bytes("audio/a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert session.write_text("scripts/t.txt", "héllo").read_text("utf-8") == "héllo"
    path = session.write_json("metadata/x.json", {"k": [1, "é"]})
    assert json.loads(path.read_text("utf-8")) == {"k": [1, "é"]}
    assert session.write_text("scripts/t.txt", "second").read_text("utf-8") == "second"
    assert temp_files(session.root) == []


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
@pytest.mark.parametrize("existing", [None, b"old content"])
def test_failed_atomic_write(session: Session, error: type[BaseException],
                             existing: bytes | None) -> None:
    final = session.root / "final_output" / "v.mp4"
    if existing is not None:
        final.write_bytes(existing)
    with pytest.raises(error), session.atomic_path("final_output/v.mp4") as tmp:
        assert tmp.parent == final.parent and tmp.suffix == ".mp4" and tmp != final
        tmp.write_bytes(b"partial")
        raise error("boom")
    assert not tmp.exists()
    assert temp_files(session.root) == []
    if existing is None:
        assert not final.exists()
    else:
        assert final.read_bytes() == existing


def test_atomic_write_success_and_empty_block(session: Session) -> None:
    with session.atomic_path("final_output/v.mp4") as tmp:
        tmp.write_bytes(b"video")
        assert not (session.root / "final_output" / "v.mp4").exists()
    assert (session.root / "final_output" / "v.mp4").read_bytes() == b"video"
    with pytest.raises(SessionError), session.atomic_path("final_output/w.mp4"):
        pass
    assert not (session.root / "final_output" / "w.mp4").exists()
    assert temp_files(session.root) == []


# --------------------------------------------------------------------------- manifest


def make_step(session: Session, step_id: str = "scene-001.narration") -> StepRecord:
    out = session.write_bytes("audio/scene-001.wav", b"RIFF" + bytes(range(256)) * 4)
    return StepRecord(step_id, "LocalNarrator", "h" * 64, "fallback",
                      (session.manifest.output(out),), started=1700000000.25, seconds=1.5,
                      tier="image", cost=0.125, error="quota",
                      data={"asset": {"kind": "audio", "path": "audio/scene-001.wav",
                                      "duration": 2.5},
                            "words": ["a", "b"]})


def test_manifest_round_trip(session: Session) -> None:
    step = make_step(session)
    assert step.outputs[0].path == "audio/scene-001.wav"
    assert step.outputs[0].sha256 == file_sha256(session.root / "audio" / "scene-001.wav")
    session.manifest.record(step)
    session.manifest.update(status="running")
    reopened = Session.open(session.root)
    try:
        assert reopened.manifest.step(step.id) == step
        assert reopened.manifest.steps == {step.id: step}
        assert reopened.manifest.get("status") == "running"
        assert reopened.manifest["session"] == session.id
        assert reopened.manifest.is_valid(step, step.inputs_hash)
    finally:
        reopened.close()


texts = st.text(alphabet=st.characters(blacklist_characters="\x00"))


@given(st.builds(
    StepRecord, id=st.text(min_size=1, alphabet=st.characters(blacklist_characters="\x00")),
    agent=texts, inputs_hash=texts, status=st.sampled_from(["done", "failed", "fallback"]),
    started=st.floats(min_value=0, allow_infinity=False),
    cost=st.floats(min_value=0, max_value=1e6),
    error=st.none() | texts,
    data=st.dictionaries(st.text(), st.integers() | st.text() | st.lists(st.integers())),
))
def test_step_record_json_round_trip(step: StepRecord) -> None:
    assert StepRecord.from_dict(json.loads(json.dumps(step.to_dict()))) == step


@pytest.mark.parametrize("damage", ["delete", "truncate", "same size"])
def test_is_valid_detects_damage(session: Session, damage: str) -> None:
    step = make_step(session)
    session.manifest.record(step)
    assert session.manifest.is_valid(step)
    assert session.manifest.is_valid(attrs.evolve(step, status="done"), step.inputs_hash)
    assert not session.manifest.is_valid(step, "0" * 64)
    assert not session.manifest.is_valid(attrs.evolve(step, status="failed"))
    path = session.root / "audio" / "scene-001.wav"
    data = bytearray(path.read_bytes())
    if damage == "delete":
        path.unlink()
    elif damage == "truncate":
        path.write_bytes(data[:-1])
    else:
        data[10] ^= 0xFF
        path.write_bytes(bytes(data))
        assert path.stat().st_size == step.outputs[0].size
    assert not session.manifest.is_valid(step)


def test_concurrent_records(session: Session) -> None:
    manifest_path = session.root / "metadata" / "manifest.json"
    session.manifest.update(status="running")
    done = threading.Event()
    bad: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                json.loads(manifest_path.read_text("utf-8"))
                reads += 1
            except (OSError, ValueError) as exc:
                bad.append(repr(exc))

    def writer(n: int) -> None:
        for i in range(50):
            session.manifest.record(StepRecord(f"t{n}.s{i}", "agent", str(i), "done"))

    watcher = threading.Thread(target=reader)
    watcher.start()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert bad == [] and reads > 0
    assert len(session.manifest.steps) == 400
    assert len(Manifest(session).steps) == 400
    assert len(json.loads(manifest_path.read_text("utf-8"))["steps"]) == 400
    assert temp_files(session.root) == []


def _held_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(release, entered): the manifest's file writes wait for ``release``; ``entered`` is
    set once one is waiting."""
    release, entered = threading.Event(), threading.Event()
    write = Session.write_text

    def held(self: Session, relative: str, text: str) -> Path:
        if relative == "metadata/manifest.json":
            entered.set()
            assert release.wait(60), "the test never released the write"
        return write(self, relative, text)

    monkeypatch.setattr(Session, "write_text", held)
    return release, entered


def test_a_save_on_an_event_loop_does_not_wait_for_the_disk(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest_path = session.root / "metadata" / "manifest.json"
    session.manifest.update(status="before")
    release, entered = _held_writes(monkeypatch)

    async def run() -> None:
        session.manifest.update(status="running")  # returns while its write is held
        session.manifest.record(StepRecord("script", "agent", "h", "done"))
        assert entered.wait(60)
        assert json.loads(manifest_path.read_text("utf-8"))["status"] == "before"
        assert session.manifest.get("status") == "running"  # what the run reads
        release.set()
        await asyncio.to_thread(session.manifest.flush)

    asyncio.run(run())
    on_disk = json.loads(manifest_path.read_text("utf-8"))
    assert on_disk["status"] == "running" and "script" in on_disk["steps"]
    assert temp_files(session.root) == []


def test_a_save_off_an_event_loop_is_on_disk_when_it_returns(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    release, entered = _held_writes(monkeypatch)
    release.set()
    for number in range(20):
        session.manifest.update(count=number)
        on_disk = json.loads((session.root / "metadata" / "manifest.json").read_text("utf-8"))
        assert on_disk["count"] == number
    assert entered.is_set()


def test_a_save_off_an_event_loop_is_written_by_its_caller_after_the_loop_s_writes(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A script, the CLI or a worker thread pays no thread per save; a save made while a
    loop's write is in flight lands after it."""
    writers: list[str] = []
    write = Session.write_text

    def noted(self: Session, relative: str, text: str) -> Path:
        if relative == "metadata/manifest.json":
            writers.append(threading.current_thread().name)
        return write(self, relative, text)

    monkeypatch.setattr(Session, "write_text", noted)
    session.manifest.update(status="off the loop")
    assert writers == [threading.current_thread().name]
    release, entered = _held_writes(monkeypatch)

    async def on_loop() -> None:
        session.manifest.update(status="on the loop")  # its writer thread is held

    asyncio.run(on_loop())
    assert entered.wait(60)
    later = threading.Thread(target=session.manifest.update, kwargs={"status": "after"},
                             name="a worker")
    later.start()
    release.set()
    later.join()
    # the worker's state is written once: by the writer thread, if it was still going
    assert writers in ([threading.current_thread().name, "avgen-manifest", "a worker"],
                       [threading.current_thread().name, "avgen-manifest", "avgen-manifest"])
    assert json.loads((session.root / "metadata" / "manifest.json").read_text(
        "utf-8"))["status"] == "after"


def test_saves_on_a_loop_are_put_into_words_by_the_writer_once_per_write(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's thread never serialises the manifest (a long video's every step would
    serialise every step before it), and saves that come while a write is under way are
    written together."""
    said: list[str] = []
    text = Manifest._text

    def noted(self: Manifest) -> str:
        said.append(threading.current_thread().name)
        return text(self)

    monkeypatch.setattr(Manifest, "_text", noted)
    release, entered = _held_writes(monkeypatch)

    async def run() -> str:
        session.manifest.update(status="first")  # its write is held
        assert entered.wait(60)
        for number in range(300):  # all while that write is held
            session.manifest.record(StepRecord(f"scene-{number:03d}.narration", "agent",
                                               "h", "done"))
        release.set()
        await session.manifest.aflush()
        return threading.current_thread().name

    loop_thread = asyncio.run(run())
    assert loop_thread not in said
    assert said == ["avgen-manifest", "avgen-manifest"]  # the held state, then the rest
    on_disk = json.loads((session.root / "metadata" / "manifest.json").read_text("utf-8"))
    assert len(on_disk["steps"]) == 300 and on_disk["status"] == "first"


_texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_values = st.recursive(st.none() | st.booleans() | st.integers() | _texts
                       | st.floats(allow_nan=False, allow_infinity=False),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(_texts, inner, max_size=3), max_leaves=8)


@settings(deadline=None, max_examples=40)
@given(changes=st.lists(st.one_of(
    st.tuples(st.just("step"), st.sampled_from(["script", "scene-000.visual", "a\"b"]),
              st.sampled_from(["done", "failed", "fallback"]), _values),
    st.tuples(st.just("update"), st.sampled_from(["status", "title", "cost", "ü"]),
              _values)), min_size=1, max_size=12))
def test_the_file_holds_the_state_after_any_saves(
        tmp_path_factory: pytest.TempPathFactory,
        changes: list[tuple[Any, ...]]) -> None:
    """What is written is what is in memory: a record replaced is written anew (each
    step's text is kept between writes), whatever the values."""
    session = Session.create(tmp_path_factory.mktemp("out"))

    async def run() -> None:
        for change in changes:
            if change[0] == "step":
                _, step_id, status, value = change
                session.manifest.record(StepRecord(step_id, "agent", "h", status,
                                                   data={"value": value}))
            else:
                session.manifest.update(**{change[1]: change[2]})
            await asyncio.sleep(0)
        await session.manifest.aflush()

    asyncio.run(run())
    on_disk = json.loads(session.manifest.path.read_text("utf-8"))
    in_memory = json.loads(json.dumps(session.manifest._data, default=str))
    assert on_disk == in_memory
    assert Manifest(session).steps == session.manifest.steps
    session.close()


def test_writes_from_a_loop_land_in_order_with_the_newest_last(session: Session) -> None:
    async def run() -> None:
        for number in range(200):
            session.manifest.update(count=number)
            if number % 7 == 0:
                await asyncio.sleep(0)

    asyncio.run(run())
    session.manifest.flush()
    assert Manifest(session).get("count") == 199
    assert temp_files(session.root) == []


def test_a_manifest_that_cannot_be_written_is_reported_by_the_next_save(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Session, relative: str, text: str) -> Path:
        raise OSError(28, "No space left on device")

    async def run() -> None:
        session.manifest.update(status="running")  # the writer fails in its thread

    monkeypatch.setattr(Session, "write_text", broken)
    asyncio.run(run())
    with pytest.raises(SessionError, match=r"manifest\.json.*No space left"):
        session.manifest.flush()
    monkeypatch.undo()
    session.manifest.update(status="done")  # the disk has room again: written whole
    assert json.loads((session.root / "metadata" / "manifest.json").read_text(
        "utf-8"))["status"] == "done"


def test_sweeping_waits_for_the_manifest_write_in_flight(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    release, entered, flushing = threading.Event(), threading.Event(), threading.Event()
    replace, flush = os.replace, session.manifest.flush

    def held(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        if Path(target).name == "manifest.json":  # its temporary file is written: hold
            entered.set()
            assert release.wait(60), "the test never released the write"
        replace(source, target)

    def flushed() -> None:
        flushing.set()
        flush()

    monkeypatch.setattr(os, "replace", held)
    monkeypatch.setattr(session.manifest, "flush", flushed)

    async def saved() -> None:
        session.manifest.update(status="running")  # on a loop: returns, its write held

    asyncio.run(saved())
    assert entered.wait(60)
    swept: list[list[Path]] = []
    sweeper = threading.Thread(target=lambda: swept.append(session.sweep()))
    sweeper.start()
    while sweeper.is_alive() and not flushing.is_set():  # it waits, or it has swept
        flushing.wait(0.01)
    release.set()
    sweeper.join()
    assert swept == [[]]  # the write in flight was not debris
    assert json.loads((session.root / "metadata" / "manifest.json").read_text(
        "utf-8"))["status"] == "running"


# --------------------------------------------------------------------------- errors


def test_open_needs_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError) as info:
        Session.open(tmp_path / "plain")
    assert info.value.field == "session"


@pytest.mark.parametrize("sub", ["file.txt", "file.txt/sub", "file.txt/sub/deeper"])
def test_create_in_unwritable_base(tmp_path: Path, sub: str) -> None:
    (tmp_path / "file.txt").write_text("not a folder")
    with pytest.raises(UsageError) as info:
        Session.create(tmp_path / sub)
    assert info.value.field == "out"
    assert (tmp_path / "file.txt").read_text() == "not a folder"


# --------------------------------------------------------------------------- logging


def log_text(s: Session) -> str:
    return (s.root / "logs" / "session.log").read_text("utf-8")


def test_logging_routes_to_the_active_session(tmp_path: Path) -> None:
    avgen_logger = logging.getLogger("avgen")
    with Session.create(tmp_path) as a, Session.create(tmp_path) as b:
        with a.activate() as active:
            assert active is a
            logging.getLogger("avgen.x").warning("hello")
            a.log(logging.INFO, "info %s", 1)
        with b.activate():
            logging.getLogger("avgen.x").warning("for b only")
            b.log(logging.INFO, "b info")
            a.log(logging.WARNING, "a while b is active")
        a.log(logging.INFO, "a while inactive")
        assert "hello" in log_text(a) and "info 1" in log_text(a)
        assert "for b only" not in log_text(a) and "b info" not in log_text(a)
        assert "for b only" in log_text(b) and "b info" in log_text(b)
        assert "hello" not in log_text(b) and "a while b is active" not in log_text(b)
        assert "a while b is active" in log_text(a) and "a while inactive" in log_text(a)
        handlers = [h for h in avgen_logger.handlers if isinstance(h, logging.FileHandler)]
        assert len(handlers) >= 2
    assert all(h not in avgen_logger.handlers for h in handlers)
    logging.getLogger("avgen.x").warning("after close")
    assert "after close" not in log_text(a)


# --------------------------------------------------------------------------- housekeeping


def test_cleanup(session: Session) -> None:
    session.write_bytes("final_output/v.mp4", b"video")
    session.write_json("metadata/x.json", {})
    session.write_bytes("images/a.png", b"png")
    with session.activate():
        logging.getLogger("avgen.x").warning("x")
    with pytest.raises(UsageError) as info:
        session.cleanup(keep=["nope"])
    assert info.value.field == "keep"
    assert (session.root / "images" / "a.png").exists()
    session.cleanup()
    assert {p.name for p in session.root.iterdir()} == {"final_output", "metadata"}
    assert (session.root / "final_output" / "v.mp4").read_bytes() == b"video"
    assert (session.root / "metadata" / "x.json").exists()
    assert session._handler is None


def test_context_manager(tmp_path: Path) -> None:
    made = Session.create(tmp_path)
    with made as entered:
        assert entered is made
        with entered.activate():
            pass
        handler = entered._handler
        assert handler in logging.getLogger("avgen").handlers
    assert handler not in logging.getLogger("avgen").handlers
    assert made._handler is None
    made.close()  # closing twice is harmless


def test_a_step_s_outputs_are_checksummed_off_the_loop_and_recorded_if_cancelled(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """A step whose work is done is recorded even when the run is cancelled while its
    outputs are checksummed (the work may have been paid for), and the checksumming does
    not hold up the event loop."""
    from avgen._steps import Made, StepRunner
    from avgen.costs import Ledger

    release, entered = threading.Event(), threading.Event()
    output = Manifest.output

    def held(self: Manifest, path: Path) -> OutputRecord:
        entered.set()
        assert release.wait(60), "the test never released the checksum"
        return output(self, path)

    monkeypatch.setattr(Manifest, "output", held)
    runner = StepRunner(session, Ledger(None))
    clip = session.path("video_clips/scene_000.mp4")
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(b"a paid clip")

    async def made() -> Made[Path]:
        return Made(clip, (clip,), {"asset": None})

    async def run() -> bool:
        step = asyncio.create_task(runner.run("scene-000.visual", "veo", "h", made))
        while not entered.is_set():  # the loop goes on while the checksum is taken
            await asyncio.sleep(0.001)
        step.cancel()
        await asyncio.sleep(0.01)
        waiting = not step.done()  # the cancellation waits for the record
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await step
        return waiting

    assert asyncio.run(run())
    record = session.manifest.step("scene-000.visual")
    assert record is not None and record.status == "done"
    assert [out.path for out in record.outputs] == ["video_clips/scene_000.mp4"]
    assert record.outputs[0].sha256 == file_sha256(clip)


def test_a_step_s_reuse_is_checked_off_the_loop(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether a recorded step can be reused (its outputs checksummed again) is found in a
    worker thread: a resumed batch's other runs go on meanwhile."""
    from avgen._steps import StepRunner
    from avgen.costs import Ledger

    clip = session.path("video_clips/scene_000.mp4")
    clip.parent.mkdir(parents=True, exist_ok=True)
    clip.write_bytes(b"a paid clip")
    session.manifest.record(StepRecord("scene-000.visual", "veo", "h", "done",
                                       (session.manifest.output(clip),)))
    release, entered = threading.Event(), threading.Event()
    is_valid = Manifest.is_valid

    def held(self: Manifest, step: StepRecord, inputs_hash: str | None = None) -> bool:
        entered.set()
        assert release.wait(60), "the test never released the check"
        return is_valid(self, step, inputs_hash)

    monkeypatch.setattr(Manifest, "is_valid", held)
    runner = StepRunner(session, Ledger(None))

    async def run() -> tuple[bool, bool, bool]:
        check = asyncio.create_task(runner.reusable("scene-000.visual", "h"))
        while not entered.is_set():  # the loop goes on while the outputs are checked
            await asyncio.sleep(0.001)
        release.set()
        found = await check
        other = await runner.reusable("scene-000.visual", "other inputs")
        clip.write_bytes(b"changed")
        changed = await runner.reusable("scene-000.visual", "h")
        return found is not None, other is None, changed is None

    assert asyncio.run(run()) == (True, True, True)
