"""The asset cache in shared storage: a folder given as a ``file://`` URL, and a real S3
server (moto's, started here as a process on 127.0.0.1) reached through s3fs.

Each cache made on a location is another "machine": it shares nothing with the others but
the location (the S3 ones even get their own client). The last test makes a whole video
with the google agents against `FakeGemini`, twice, with the cache in the bucket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from hypothesis import given, settings
from hypothesis import strategies as st
from media import decode
from object_store import BUCKET, CREDENTIALS, HANG_GUARD, S3, free_port

from avgen import VideoGenerator
from avgen._scratch import is_debris
from avgen.agents import AssetCache
from avgen.agents._assets.journal import Entry
from avgen.agents._assets.remote import TRAILER_SIZE, RemoteStore, is_url
from avgen.agents.google import GoogleConnection, google_agents
from avgen.errors import UsageError
from avgen.resilience import DiskStore, set_testing

AGENT = "veo:veo-3.1-fast-generate-001"
OPERATION = "models/veo-3.1-fast-generate-001/operations/op-1"
GOOGLE_KEY = "AIzaFAKE-shared-cache-key-0123456789"


Machine = Callable[[], AssetCache]


@pytest.fixture(params=["folder", "file url", "s3"])
def machines(request: pytest.FixtureRequest, tmp_path: Path) -> Machine:
    """Makes caches on one shared location, each as another machine would."""
    if request.param == "folder":
        folder = tmp_path / "shared"
        return lambda: AssetCache(folder)
    if request.param == "file url":
        url = (tmp_path / "shared").as_uri()
        return lambda: AssetCache(url)
    s3: S3 = request.getfixturevalue("s3")
    url = s3.url()
    return lambda: AssetCache(url, storage_options=s3.another_machine())


def key(name: str) -> str:
    return AssetCache.key("test", name=name)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- the same behaviours on every location -----------------------------------------------


def test_a_file_and_a_json_value_round_trip_between_machines(machines: Machine,
                                                             tmp_path: Path) -> None:
    media = bytes(range(256)) * 1000 + b"\x00\xff"
    script = {"title": "Bees", "scenes": [{"narration": "Bees dance. ✓", "n": 1.5}]}
    one, two = machines(), machines()
    one.keep(key("clip"), write(tmp_path / "clip.mp4", media), source="veo")
    one.set_json(key("script"), script, source="gemini")
    assert two.fetch(key("clip"), tmp_path / "copy.mp4", source="veo")
    assert (tmp_path / "copy.mp4").read_bytes() == media
    assert two.get_json(key("script"), source="gemini") == script
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_missing_entry_is_a_miss(machines: Machine, tmp_path: Path,
                                   caplog: pytest.LogCaptureFixture) -> None:
    cache = machines()
    with caplog.at_level(logging.WARNING):
        assert not cache.fetch(key("none"), tmp_path / "out.mp4", source="veo")
        assert cache.get_json(key("none"), source="gemini") is None
    assert not (tmp_path / "out.mp4").exists()
    assert caplog.text == ""


def test_the_journal_written_on_one_machine_is_recalled_on_another(machines: Machine) -> None:
    one, two = machines(), machines()
    clip = key("clip")
    assert two.journal().recall(clip, agent=AGENT, valid=lambda _: True) is None
    one.journal().record(clip, agent=AGENT, operation=OPERATION)
    entry = two.journal().recall(clip, agent=AGENT, valid=lambda name: name == OPERATION)
    assert isinstance(entry, Entry) and entry.operation == OPERATION
    two.journal().forget(clip, operation="models/x/operations/another")  # not this one
    assert one.journal().recall(clip, agent=AGENT, valid=lambda _: True) == entry
    two.journal().forget(clip, operation=OPERATION)
    assert one.journal().recall(clip, agent=AGENT, valid=lambda _: True) is None
    two.journal().forget(clip)  # nothing left to forget: nothing happens


def test_single_flight_holds_in_the_process(machines: Machine) -> None:
    one, two = machines(), machines()
    inside: list[str] = []
    overlaps: list[str] = []

    async def hold(cache: AssetCache, name: str) -> None:
        async with cache.flight(key("asset"), source=name):
            if inside:
                overlaps.append(name)
            inside.append(name)
            await asyncio.sleep(0.01)
            inside.remove(name)

    async def main() -> None:
        await asyncio.gather(*(hold(cache, f"{i}") for i, cache in enumerate([one, two] * 3)))

    asyncio.run(main())
    assert overlaps == []


def test_a_reader_never_sees_half_an_entry(machines: Machine, tmp_path: Path) -> None:
    versions = [bytes([n]) * (3 << 20) + os.urandom(1024) for n in range(4)]
    sources = [write(tmp_path / f"v{n}.bin", data) for n, data in enumerate(versions)]
    writer_cache, reader_cache = machines(), machines()
    clip = key("large")
    done = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for source in sources:
                writer_cache.keep(clip, source, source="writer")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    seen: list[int | None] = []  # which version each read found (-1: none of them)
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while True:
            finished = done.is_set()
            target = tmp_path / "read.bin"
            if reader_cache.fetch(clip, target, source="reader"):
                data = target.read_bytes()
                seen.append(versions.index(data) if data in versions else -1)
            else:
                seen.append(None)
            if finished:
                break
    finally:
        thread.join()
    assert errors == []
    assert -1 not in seen and seen[-1] == len(versions) - 1


# -- remote entries are checked ------------------------------------------------------------


@pytest.fixture(params=["file url", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[AssetCache, Any]:
    """A cache at a URL, and the fsspec filesystem to tamper with its objects."""
    if request.param == "file url":
        cache = AssetCache((tmp_path / "shared").as_uri())
    else:
        s3: S3 = request.getfixturevalue("s3")
        cache = AssetCache(s3.url(), storage_options=s3.options)
    assert isinstance(cache.store, RemoteStore)
    return cache, cache.store.fs


def test_copies_in_transit_are_beside_the_files_under_names_a_sweep_knows(
        remote: tuple[AssetCache, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a process killed while it uploads or downloads leaves its copy in the session, where
    # the session's sweep removes it, and nothing in the system's temporary folder
    cache, fs = remote
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    folder = tmp_path / "session" / "video_clips"
    folder.mkdir(parents=True)
    media = os.urandom(3 << 20)
    in_transit: list[Path] = []
    for method in ("put_file", "get_file"):
        real = getattr(fs, method)

        def seen(first: str, second: str, *args: Any, real: Any = real,
                 local: int = 0 if method == "put_file" else 1, **kwargs: Any) -> Any:
            in_transit.append(Path((first, second)[local]))
            return real(first, second, *args, **kwargs)

        monkeypatch.setattr(fs, method, seen)
    cache.keep(key("clip"), write(folder / "scene_000.mp4", media), source="veo")
    assert cache.fetch(key("clip"), folder / "scene_001.mp4", source="veo")
    assert (folder / "scene_001.mp4").read_bytes() == media
    assert len(in_transit) == 2
    assert all(path.parent == folder and is_debris(path.name) for path in in_transit)
    assert sorted(path.name for path in folder.iterdir()) == ["scene_000.mp4", "scene_001.mp4"]
    assert list(system_temp.iterdir()) == []


@pytest.mark.parametrize("damage", ["other bytes", "cut short", "tiny", "flipped byte"])
def test_a_damaged_entry_is_a_logged_miss(remote: tuple[AssetCache, Any], tmp_path: Path,
                                          damage: str, caplog: pytest.LogCaptureFixture) -> None:
    cache, fs = remote
    assert isinstance(cache.store, RemoteStore)
    root = cache.store.root
    cache.keep(key("clip"), write(tmp_path / "clip.mp4", b"video" * 1000))
    cache.set_json(key("script"), {"scenes": ["a", "b"]})
    for name in (f"{key('clip')[:2]}/{key('clip')}", f"{key('script')[:2]}/{key('script')}.json"):
        stored = fs.cat_file(f"{root}/{name}")
        assert len(stored) > TRAILER_SIZE
        damaged = {"other bytes": os.urandom(len(stored)), "cut short": stored[:-10],
                   "tiny": b"x",
                   "flipped byte": bytes([stored[0] ^ 1]) + stored[1:]}[damage]
        fs.pipe_file(f"{root}/{name}", damaged)
    target = write(tmp_path / "target.mp4", b"the caller's")
    with caplog.at_level(logging.WARNING, "avgen.agents.google"):
        assert not cache.fetch(key("clip"), target, source="veo")
        assert cache.get_json(key("script"), source="gemini") is None
    assert target.read_bytes() == b"the caller's"  # untouched by a bad download
    assert caplog.text.count("cannot be read") == 2 and "Damaged" in caplog.text
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # the next keep replaces the damaged entry
    cache.keep(key("clip"), write(tmp_path / "clip.mp4", b"again"))
    assert cache.fetch(key("clip"), target, source="veo") and target.read_bytes() == b"again"


def test_the_objects_are_where_the_docs_say(s3: S3, tmp_path: Path) -> None:
    url = s3.url()
    cache = AssetCache(url, storage_options=s3.options)
    clip, script = key("clip"), key("script")
    cache.keep(clip, write(tmp_path / "clip.mp4", b"video"))
    cache.set_json(script, [1, 2])
    cache.journal().record(clip, agent=AGENT, operation=OPERATION)
    root = url.removeprefix("s3://")
    found = sorted(path.removeprefix(root + "/") for path in s3.fs.find(root))
    assert found == sorted([f"{clip[:2]}/{clip}", f"{script[:2]}/{script}.json",
                            f"operations/{clip}.json"])
    stored = s3.fs.cat_file(f"{root}/{clip[:2]}/{clip}")
    assert stored[:5] == b"video" and len(stored) == 5 + TRAILER_SIZE
    record = json.loads(s3.fs.cat_file(f"{root}/operations/{clip}.json"))
    assert record["operation"] == OPERATION and record["key"] == clip


def test_an_unsound_record_in_the_bucket_is_ignored(s3: S3,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    url = s3.url()
    cache = AssetCache(url, storage_options=s3.options)
    clip = key("clip")
    path = f"{url.removeprefix('s3://')}/operations/{clip}.json"
    for raw in (b"{not json", json.dumps({"version": 1, "key": clip}).encode(), b"x" * 5000):
        s3.fs.pipe_file(path, raw)
        with caplog.at_level(logging.WARNING, "avgen.agents.google"):
            assert cache.journal().recall(clip, agent=AGENT, valid=lambda _: True) is None
    assert caplog.text.count("ignoring the operation record s3://") == 3
    cache.journal().record(clip, agent=AGENT, operation=OPERATION)  # replaced
    assert cache.journal().recall(clip, agent=AGENT, valid=lambda _: True) is not None


def test_an_unreachable_store_is_a_logged_miss(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cache = AssetCache(f"s3://{BUCKET}/x", storage_options={
        "endpoint_url": closed, "key": "testing", "secret": "testing", "skip_instance_cache":
        True, "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
        "retries": 1})
    with caplog.at_level(logging.WARNING, "avgen.agents.google"):
        assert not cache.fetch(key("clip"), tmp_path / "out.mp4", source="veo")
        cache.keep(key("clip"), write(tmp_path / "clip.mp4", b"video"), source="veo")
        cache.journal().record(key("clip"), agent=AGENT, operation=OPERATION)
    assert "cannot be read" in caplog.text and "could not keep" in caplog.text
    assert "could not record operation" in caplog.text


@settings(max_examples=30)
@given(data=st.binary(max_size=3000), value=st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10))
def test_any_bytes_and_json_round_trip_through_s3(
        s3: S3, tmp_path_factory: pytest.TempPathFactory, data: bytes, value: Any) -> None:
    folder = tmp_path_factory.mktemp("bytes")
    cache = AssetCache(f"s3://{BUCKET}/property", storage_options=s3.options)
    name = key(data.hex())
    cache.keep(name, write(folder / "in.bin", data))
    assert cache.fetch(name, folder / "out.bin", source="test")
    assert (folder / "out.bin").read_bytes() == data
    cache.set_json(name, value)
    assert cache.get_json(name, source="test") == value


# -- options ---------------------------------------------------------------------------------


def test_what_is_a_url() -> None:
    assert is_url("s3://bucket/prefix") and is_url("file:///tmp/x") and is_url("gs://b")
    assert not is_url("C://folder") and not is_url("/tmp/s3://x") and not is_url("cache")
    assert not is_url(Path("s3://bucket"))  # a Path is a folder


def test_options_that_do_not_apply_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="lifecycle"):
        AssetCache((tmp_path / "c").as_uri(), max_bytes=1000)
    with pytest.raises(UsageError, match="storage_options"):
        AssetCache(tmp_path, storage_options={"key": "k"})
    with pytest.raises(UsageError, match="nosuchproto"):
        AssetCache("nosuchproto://x/y")
    with pytest.raises(UsageError):
        AssetCache("")


def test_a_url_needs_its_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec  # noqa: F401  (so that fsspec.registry is loaded)

    registry = sys.modules["fsspec.registry"]  # the module: fsspec.registry is a mapping
    monkeypatch.setitem(sys.modules, "s3fs", None)  # `import s3fs` raises ImportError
    monkeypatch.delitem(registry._registry, "s3", raising=False)
    with pytest.raises(UsageError, match="pip install s3fs"):
        AssetCache("s3://bucket/prefix")


def test_avgen_imports_and_works_without_fsspec(tmp_path: Path) -> None:
    child = textwrap.dedent("""
        import sys
        sys.modules["fsspec"] = None  # `import fsspec` raises ImportError
        from avgen.agents import AssetCache
        from avgen.errors import UsageError

        cache = AssetCache(sys.argv[1])
        cache.set_json("ab" * 32, [1])
        assert cache.get_json("ab" * 32, source="child") == [1]
        try:
            AssetCache("s3://bucket/prefix")
        except UsageError as exc:
            print(exc)
    """)
    done = subprocess.run([sys.executable, "-c", child, str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=HANG_GUARD, check=False)
    assert done.returncode == 0, done.stderr
    assert "needs fsspec" in done.stdout and "pip install 'avgen[dask]'" in done.stdout


def test_google_agents_take_a_folder_or_a_url(tmp_path: Path, s3: S3,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    connection = GoogleConnection.from_env({"GEMINI_API_KEY": GOOGLE_KEY},
                                           base_url="http://127.0.0.1:9")
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3.endpoint}.items():
        monkeypatch.setenv(name, value)
    url = s3.url()
    for option, kind in ((str(tmp_path / "c"), DiskStore), (tmp_path / "c", DiskStore),
                         (url, RemoteStore)):
        assert pickle.loads(pickle.dumps(option)) == option
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            agents = google_agents(connection, cache=option)
        cache = agents.narrator.cache
        assert isinstance(cache, AssetCache) and isinstance(cache.store, kind)
    assert cache.location == url and repr(cache) == f"AssetCache({url!r})"
    cache.set_json(key("x"), "through the environment's endpoint")
    assert s3.fs.exists(f"{url.removeprefix('s3://')}/{key('x')[:2]}/{key('x')}.json")
    for wrong in ("", 3, b"/tmp/x"):
        with pytest.raises(UsageError, match="a folder, a URL"):
            google_agents(connection, cache=wrong)  # type: ignore[arg-type]


# -- a whole video, twice, with the cache in the bucket --------------------------------------


def test_the_second_run_on_another_machine_pays_for_nothing(s3: S3, tmp_path: Path) -> None:
    url = s3.url()
    with FakeGemini(polls_until_done=2) as fake, set_testing():
        connection = GoogleConnection.from_env(
            {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": GOOGLE_KEY},
            base_url=fake.base_url)

        def run(machine: str) -> Any:
            cache = AssetCache(url, storage_options=s3.another_machine())
            agents = google_agents(connection, cache=cache, poll_interval=0.01)
            generator = VideoGenerator(agents, output_dir=tmp_path / machine)
            return generator.generate_sync(topic="the water cycle", preset="draft")

        first = run("one")
        assert {kind: fake.count(kind) for kind in ("script", "speech", "veo")} == {
            "script": 1, "speech": 3, "veo": 3}
        fake.reset()
        again = run("two")
        assert fake.requests == []
    decoded = decode(again.path)
    assert decoded["errors"] == "" and decoded["has_audio"]
    assert again.tiers == first.tiers == ("clip", "clip", "clip")
    root = url.removeprefix("s3://")
    assert s3.fs.find(f"{root}/operations") == []  # every clip stored: no record left
