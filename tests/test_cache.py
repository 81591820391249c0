"""Tests of avgen.resilience._cache: keys, policies, single flight, DiskStore, inspection."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import functools
import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import cachetools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avgen.errors import UsageError
from avgen.resilience import collect
from avgen.resilience._cache import CacheInfo, CacheStore, DiskStore, MemoryStore, cached
from avgen.resilience._monitor import monitored

WAIT = 10.0  # seconds a test waits for other threads before failing (never reached when green)


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the other callers"
        time.sleep(0.001)


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.frozen
class Shot:
    prompt: str
    seconds: float


@dataclasses.dataclass(frozen=True)
class Voice:
    name: str


# -- single flight --------------------------------------------------------------------------------


def test_threads_share_one_call() -> None:
    release = threading.Event()
    calls: list[int] = []

    @cached()
    def render(scene: int) -> str:
        calls.append(scene)
        release.wait(WAIT)
        return f"clip-{scene}"

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(render(7))) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: render.cache_info().hits == 7)  # seven joined the one call in flight
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert calls == [7]
    assert results == ["clip-7"] * 8
    assert render(7) == "clip-7" and calls == [7]


def test_threads_share_one_failure_and_nothing_is_cached() -> None:
    release = threading.Event()
    calls: list[int] = []

    @cached()
    def render(scene: int) -> str:
        calls.append(scene)
        release.wait(WAIT)
        if len(calls) == 1:
            raise TimeoutError("veo timed out")
        return "clip"

    errors: list[BaseException] = []

    def call() -> None:
        try:
            render(1)
        except TimeoutError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    wait_until(lambda: render.cache_info().hits == 7)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert len(errors) == 8 and calls == [1]
    assert len(render.cache) == 0
    assert render(1) == "clip" and calls == [1, 1]


def test_tasks_share_one_call_and_the_result_can_be_awaited_again() -> None:
    calls: list[int] = []

    async def main() -> None:
        release = asyncio.Event()

        @cached()
        async def render(scene: int) -> str:
            calls.append(scene)
            await release.wait()
            return f"clip-{scene}"

        tasks = [asyncio.create_task(render(3)) for _ in range(8)]
        while render.cache_info().hits < 7:
            await asyncio.sleep(0)
        release.set()
        assert await asyncio.gather(*tasks) == ["clip-3"] * 8
        assert await render(3) == "clip-3"
        assert await render(3) == "clip-3"
        assert inspect.iscoroutinefunction(render)

    asyncio.run(main())
    assert calls == [3]


def test_tasks_share_one_failure_and_nothing_is_cached() -> None:
    calls: list[int] = []

    async def main() -> None:
        release = asyncio.Event()

        @cached()
        async def render(scene: int) -> str:
            calls.append(scene)
            await release.wait()
            if len(calls) == 1:
                raise ConnectionError("reset")
            return "clip"

        tasks = [asyncio.create_task(render(3)) for _ in range(8)]
        while render.cache_info().hits < 7:
            await asyncio.sleep(0)
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [type(r) for r in results] == [ConnectionError] * 8
        assert len(render.cache) == 0
        assert await render(3) == "clip"

    asyncio.run(main())
    assert calls == [3, 3]


def test_cancelling_one_waiter_keeps_the_call_for_the_others() -> None:
    finished: list[str] = []

    async def main() -> None:
        gates = {1: asyncio.Event(), 2: asyncio.Event()}

        @cached()
        async def render(scene: int) -> str:
            try:
                await gates[scene].wait()
            except asyncio.CancelledError:
                finished.append(f"{scene} cancelled")
                raise
            finished.append(f"{scene} done")
            return "clip"

        first = asyncio.create_task(render(1))
        second = asyncio.create_task(render(1))
        while render.cache_info().hits < 1:
            await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        gates[1].set()
        assert await second == "clip"
        assert first.cancelled()

        lonely = asyncio.create_task(render(2))
        while "2" not in "".join(finished) and render.cache_info().misses < 2:
            await asyncio.sleep(0)
        for _ in range(3):  # let the shared call reach its await
            await asyncio.sleep(0)
        lonely.cancel()
        with pytest.raises(asyncio.CancelledError):
            await lonely
        for _ in range(3):
            await asyncio.sleep(0)

    asyncio.run(main())
    # the last waiter leaving cancels the shared call; one of two leaving does not
    assert finished == ["1 done", "2 cancelled"]


def test_a_cached_async_function_works_in_two_event_loops() -> None:
    calls: list[int] = []

    @cached()
    async def render(scene: int) -> int:
        calls.append(scene)
        return scene * 10

    assert asyncio.run(render(2)) == 20
    assert asyncio.run(render(2)) == 20
    assert calls == [2]


def test_a_sync_function_returning_a_coroutine_is_refused() -> None:
    async def work() -> int:
        return 1

    @cached()
    def render() -> Any:
        return work()

    with pytest.raises(UsageError, match="async def"):
        render()
    assert len(render.cache) == 0


# -- policies -------------------------------------------------------------------------------------


def reference_misses(policy: str, maxsize: int, keys: list[int]) -> list[bool]:
    """What each access should do under the policy: True for a miss."""
    order: collections.OrderedDict[int, None] = collections.OrderedDict()
    counts: dict[int, int] = {}
    arrived: dict[int, int] = {}  # LFU ties: the oldest arrival at its current count goes
    clock = 0
    misses = []
    for key in keys:
        clock += 1
        if key in order or key in counts:
            misses.append(False)
            if policy == "lru":
                order.move_to_end(key)
            elif policy == "lfu":
                counts[key] += 1
                arrived[key] = clock
            continue
        misses.append(True)
        if policy == "lfu":
            if len(counts) == maxsize:
                victim = min(counts, key=lambda k: (counts[k], arrived[k]))
                del counts[victim], arrived[victim]
            counts[key], arrived[key] = 1, clock
        else:
            if len(order) == maxsize:
                order.popitem(last=False)
            order[key] = None
    return misses


@given(policy=st.sampled_from(["lru", "fifo", "lfu"]), maxsize=st.integers(1, 4),
       keys=st.lists(st.integers(0, 6), max_size=40))
@settings(max_examples=150, deadline=None)
def test_policies_match_their_reference_models(policy: Any, maxsize: int,
                                               keys: list[int]) -> None:
    ran: list[int] = []

    @cached(policy=policy, maxsize=maxsize)
    def load(key: int) -> str:
        ran.append(key)
        return str(key)

    misses = []
    for key in keys:
        before = len(ran)
        assert load(key) == str(key)
        misses.append(len(ran) > before)
    assert misses == reference_misses(policy, maxsize, keys)
    info = load.cache_info()
    assert (info.hits, info.misses) == (misses.count(False), misses.count(True))
    assert info.evictions == misses.count(True) - info.currsize  # each miss stored one value


def test_ttl_expires_with_the_injected_clock() -> None:
    now = [100.0]
    ran: list[str] = []

    @cached(policy="ttl", ttl=10, timer=lambda: now[0])
    def load(key: str) -> str:
        ran.append(key)
        return key.upper()

    assert load("a") == "A"
    now[0] = 109.0
    assert load("a") == "A" and ran == ["a"]
    now[0] = 110.5
    assert load("a") == "A" and ran == ["a", "a"]


def test_ttl_with_lru_means_the_ttl_policy() -> None:
    @cached(ttl=5)
    def load(key: str) -> str:
        return key

    assert isinstance(load.cache, MemoryStore)
    assert isinstance(load.cache.cache, cachetools.TTLCache)


def test_condition_decides_what_is_cached() -> None:
    answers = iter([[], [], ["scene"], ["other"]])

    @cached(condition=bool)
    def plan(topic: str) -> list[str]:
        return next(answers)

    assert plan("x") == []
    assert plan("x") == []
    assert plan("x") == ["scene"]
    assert plan("x") == ["scene"]  # cached now: "other" is never asked for
    assert plan.cache_info().misses == 3


def test_none_is_never_cached() -> None:
    ran: list[int] = []

    @cached()
    def find(key: int) -> None:
        ran.append(key)

    find(1)
    find(1)
    assert ran == [1, 1]


def test_a_value_too_large_is_reported_not_silently_dropped() -> None:
    @cached(maxsize=10, getsizeof=len)
    def load(text: str) -> str:
        return text * 2

    with collect() as events:
        assert load("0123456789") == "01234567890123456789"
    assert load.cache_info().evictions == 1 and len(load.cache) == 0
    evict = [e for e in events if e.kind == "cache.evict"]
    assert len(evict) == 1 and evict[0].data["reason"] == "too large"


def test_evictions_for_room_are_counted_and_reported() -> None:
    @cached(maxsize=2)
    def load(key: int) -> int:
        return key

    with collect() as events:
        for key in (1, 2, 3, 4):
            load(key)
    assert load.cache_info().evictions == 2
    assert [e.data["evicted"] for e in events if e.kind == "cache.evict"] == [1, 1]


def test_a_store_that_cannot_keep_the_value_still_returns_it(tmp_path: Path) -> None:
    @cached(DiskStore(tmp_path))
    def load(key: int) -> object:
        return {1, 2}  # a set is not JSON

    with collect() as events:
        assert load(1) == {1, 2}
    assert [e.data["reason"][:12] for e in events if e.kind == "cache.evict"] == [
        "store failed"]


# -- keys -----------------------------------------------------------------------------------------


def test_positional_keyword_and_default_arguments_share_a_key() -> None:
    ran: list[int] = []

    @cached()
    def clip(x: int, seconds: float = 5.0) -> int:
        ran.append(x)
        return x

    clip(1)
    clip(x=1)
    clip(1, 5.0)
    clip(1, seconds=5.0)
    assert ran == [1]
    assert clip.cache_key(1) == clip.cache_key(x=1, seconds=5.0)
    assert len(clip.cache_key(1)) == 64


def test_equal_values_of_different_types_have_different_keys() -> None:
    @cached()
    def f(x: object) -> object:
        return x

    keys = {f.cache_key(v) for v in (1, 1.0, True, "1", b"1", (1,), [1.0], Color.RED, "red")}
    assert len(keys) == 9
    assert f.cache_key(0.0) == f.cache_key(-0.0)
    assert f.cache_key(Path("a.mp4")) == f.cache_key("a.mp4")
    assert f(1) == 1 and type(f(1.0)) is float and f(True) is True


def test_an_unsupported_argument_asks_for_key() -> None:
    @cached()
    def f(x: object) -> object:
        return x

    with pytest.raises(TypeError, match=r"argument 'x'.*key="):
        f(object())
    with pytest.raises(TypeError, match=r"key="):
        f({"nested": [1, object()]})


def test_key_function_replaces_the_default_key() -> None:
    ran: list[int] = []

    @cached(key=lambda scene, client: f"scene-{scene % 2}")
    def render(scene: int, client: object) -> int:
        ran.append(scene)
        return scene

    assert render(1, object()) == 1
    assert render(3, object()) == 1  # same key, objects not keyed at all
    assert ran == [1]

    @cached(key=lambda x: x)
    def bad(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="must return a str"):
        bad(1)


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5) | st.none(),
                       max_size=6))
@settings(max_examples=60, deadline=None)
def test_dict_order_does_not_change_the_key(options: dict[str, Any]) -> None:
    @cached()
    def plan(topic: str, options: dict[str, Any]) -> int:
        return 1

    reordered = dict(reversed(list(options.items())))
    assert plan.cache_key("t", options) == plan.cache_key(options=reordered, topic="t")


def test_methods_key_self_by_value_or_leave_it_out() -> None:
    @attrs.frozen
    class Agent:
        model: str

        @cached()
        def write(self, topic: str) -> str:
            return f"{self.model}:{topic}"

    class Client:
        calls = 0

        @cached(method=True)
        def fetch(self, url: str) -> str:
            Client.calls += 1
            return url

        @cached()
        def unkeyable(self, url: str) -> str:
            return url

    assert Agent("a").write("x") == "a:x"
    assert Agent("b").write("x") == "b:x"
    assert Agent("a").write("x") == "a:x"
    assert Agent.write.cache_info().misses == 2
    assert Client().fetch("u") == Client().fetch("u") == "u" and Client.calls == 1
    with pytest.raises(TypeError, match="key="):
        Client().unkeyable("u")


KEY_MODULE = '''
import dataclasses, enum
from pathlib import Path
import attrs
from avgen.resilience._cache import DiskStore, cached

CALLS = []

class Color(enum.Enum):
    RED = "red"

@attrs.frozen
class Shot:
    prompt: str
    seconds: float

@cached()
def plan(*args, **kwargs):
    return 1

def make(directory):
    @cached(DiskStore(directory))
    def render(prompt: str, seconds: int) -> dict:
        CALLS.append(prompt)
        return {"prompt": prompt, "seconds": seconds, "frames": [1, 2, 3]}
    return render

def arguments():
    return ((Shot("a ship", 4.5), {"z": [1, (2, 3)], "a": {b"raw", b"bytes"}},
             frozenset({"x", "y", "z"}), Path("clips/a.mp4"), Color.RED, -0.0, None, True),
            {"extra": {3: "three", "1": "one"}, "big": 2 ** 80, "tiny": 1e-300})
'''


@pytest.fixture
def key_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    name = f"keymod_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(KEY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield module
    sys.modules.pop(name, None)


def same_avgen_env() -> dict[str, str]:
    """The environment of a child interpreter that imports the avgen this test imports."""
    import avgen

    here = str(Path(avgen.__file__).resolve().parents[1])
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}


def run_python(code: str, cwd: Path, seed: str = "12345") -> str:
    env = same_avgen_env()
    env.update(PYTHONHASHSEED=seed, PYTHONPATH=os.pathsep.join([str(cwd), env["PYTHONPATH"]]))
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_keys_are_the_same_in_another_process(key_module: Any, tmp_path: Path) -> None:
    args, kwargs = key_module.arguments()
    here = key_module.plan.cache_key(*args, **kwargs)
    there = run_python(f"""
        import {key_module.__name__} as m
        args, kwargs = m.arguments()
        print(m.plan.cache_key(*args, **kwargs))
    """, tmp_path, seed="987")
    assert there == here
    kwargs["big"] += 1
    assert key_module.plan.cache_key(*args, **kwargs) != here


# -- DiskStore ------------------------------------------------------------------------------------


def test_disk_cache_survives_the_process(key_module: Any, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    run_python(f"""
        import {key_module.__name__} as m
        from avgen.resilience._cache import DiskStore
        render = m.make({str(store_dir)!r})
        render("a ship", 4)
        assert m.CALLS == ["a ship"]
        DiskStore({str(store_dir)!r}).set("raw", b"\\x00\\x01media")
    """, tmp_path)
    render = key_module.make(store_dir)
    assert render("a ship", 4) == {"prompt": "a ship", "seconds": 4, "frames": [1, 2, 3]}
    assert render(prompt="a ship", seconds=4)["frames"] == [1, 2, 3]
    assert key_module.CALLS == []
    assert render.cache_info().hits == 2
    assert DiskStore(store_dir).get("raw") == b"\x00\x01media"


def data_file(store: DiskStore, key: str) -> Path:
    record = json.loads((store.directory / key[:2] / f"{key}.meta.json").read_text())
    return store.directory / key[:2] / str(record["data"])


def entry_files(store: DiskStore) -> list[str]:
    return sorted(p.name for p in store.directory.rglob("*") if p.is_file())


def test_bytes_are_stored_raw_and_json_compressed(tmp_path: Path) -> None:
    store = DiskStore(tmp_path)
    media = bytes(range(256)) * 40
    assert store.set("clip", media) is True
    assert data_file(store, "clip").read_bytes() == media
    assert store.get("clip") == media
    value = {"scenes": [{"text": "hello " * 50, "seconds": 2.5}], "ok": True}
    assert store.set("script", value)
    packed = data_file(store, "script")
    assert packed.name.endswith(".json.z")
    assert json.loads(zlib.decompress(packed.read_bytes())) == value
    assert packed.stat().st_size < len(json.dumps(value))
    assert store.get("script") == value
    assert len(store) == 2 and "clip" in store and "nothing" not in store


def damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def damage_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def damage_bad_json(path: Path) -> None:  # sound zlib and checksum, but not JSON
    import hashlib

    payload = zlib.compress(b"{not json")
    record_path = next(path.parent.glob("*.meta.json"))
    record = json.loads(record_path.read_text())
    record.update(size=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    new = path.with_name(f"{path.name.split('.')[0]}.{record['sha256'][:16]}.json.z")
    path.unlink()
    new.write_bytes(payload)
    record["data"] = new.name
    record_path.write_text(json.dumps(record))


def damage_record(path: Path) -> None:
    next(path.parent.glob("*.meta.json")).write_text('{"kind": "json", "da')


def damage_delete(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip, damage_bad_json,
                                    damage_record, damage_delete])
def test_a_damaged_entry_is_a_miss_and_is_removed(tmp_path: Path,
                                                  damage: Callable[[Path], None]) -> None:
    store = DiskStore(tmp_path)
    store.set("entry", {"text": "x" * 500})
    store.set("other", b"kept")
    damage(data_file(store, "entry"))
    assert store.get("entry") is None
    assert "entry" not in store
    assert not [name for name in entry_files(store) if name.startswith("entry")]
    assert store.get("other") == b"kept"


def test_a_damaged_file_entry_is_a_miss_for_get_file(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "store")
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"\x00" * 1000)
    store.put_file("clip", source)
    damage_flip(data_file(store, "clip"))
    assert store.get_file("clip") is None
    assert entry_files(store) == []


def test_put_file_and_get_file(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "store")
    source = tmp_path / "clip.mp4"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    stored = store.put_file("clip-1", source)
    assert stored.read_bytes() == source.read_bytes() and source.exists()
    assert stored.is_relative_to(store.directory)
    assert store.get_file("clip-1") == stored
    assert store.get("clip-1") == source.read_bytes()
    assert store.get_file("missing") is None
    store.set("json", [1])
    assert store.get_file("json") is None
    assert store.delete("clip-1") and store.get_file("clip-1") is None
    assert not store.delete("clip-1")
    with pytest.raises(FileNotFoundError):
        store.put_file("x", tmp_path / "nope.mp4")


def test_size_limit_evicts_the_least_recently_read(tmp_path: Path) -> None:
    now = [0.0]

    def tick() -> float:
        now[0] += 1
        return now[0]

    store = DiskStore(tmp_path, max_bytes=300, timer=tick)
    for key in ("a", "b", "c"):
        assert store.set(key, bytes(100))
    assert store.get("a") == bytes(100)  # b is now the least recently read
    assert store.set("d", bytes(100))
    assert "b" not in store
    assert all(key in store for key in ("a", "c", "d"))
    assert store.evictions == 1 and store.currsize == 300
    assert store.set("huge", bytes(301)) is False and "huge" not in store
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(400))
    with pytest.raises(UsageError, match="max_bytes"):
        store.put_file("big", source)


def test_disk_ttl_uses_the_injected_timer(tmp_path: Path) -> None:
    now = [1000.0]
    store = DiskStore(tmp_path, ttl=60, timer=lambda: now[0])
    store.set("k", "value")
    now[0] = 1059.0
    assert store.get("k") == "value"
    now[0] = 1060.0
    assert store.get("k") is None
    assert entry_files(store) == []


def test_cached_with_a_disk_store_reports_its_info(tmp_path: Path) -> None:
    @cached(DiskStore(tmp_path, max_bytes=10_000))
    def load(key: str) -> bytes:
        return key.encode() * 10

    load("a")
    load("a")
    load("bb")
    info = load.cache_info()
    assert info == CacheInfo(hits=1, misses=2, evictions=0, currsize=30, maxsize=10_000)
    load.cache_clear()
    assert load.cache_info().currsize == 0 and len(load.cache) == 0


@pytest.mark.parametrize("key", ["../../etc", "..", "a/b", "/etc/passwd", "", "A", ".hidden",
                                 "x" * 129, "a\x00b", "é"])
def test_unsafe_keys_are_rejected(tmp_path: Path, key: str) -> None:
    store = DiskStore(tmp_path / "store")
    with pytest.raises(UsageError):
        store.set(key, b"x")
    with pytest.raises(ValueError):
        store.get(key)
    with pytest.raises(UsageError):
        store.put_file(key, __file__)
    assert key not in store
    assert not (tmp_path / "etc").exists() and not (tmp_path / "store").exists()


@given(st.text(max_size=20))
@settings(max_examples=100, deadline=None)
def test_no_key_writes_outside_the_directory(key: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        store = DiskStore(Path(root) / "store")
        try:
            store.set(key, b"x")
        except UsageError:
            return
        for path in Path(root).rglob("*"):
            assert path.resolve().is_relative_to((Path(root) / "store").resolve())


WRITER = """
import sys
from avgen.resilience._cache import DiskStore
store = DiskStore(sys.argv[1])
me = sys.argv[2]
for i in range(150):
    store.set("shared", {"writer": me, "i": i, "pad": me * 2000})
"""


def test_two_processes_writing_one_key_leave_a_valid_entry(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(store_dir), name])
               for name in ("a", "b")]
    store = DiskStore(store_dir)
    while any(w.poll() is None for w in writers):
        value = store.get("shared")  # never half an entry: a whole value or a miss
        if value is not None:
            assert value["pad"] == value["writer"] * 2000
    assert [w.wait(60) for w in writers] == [0, 0]
    final = store.get("shared")
    assert final is not None and final["i"] == 149 and final["writer"] in "ab"
    names = entry_files(store)
    assert not [n for n in names if n.startswith(".tmp-")]
    assert "shared.meta.json" in names


def ticker() -> Callable[[], float]:
    """A clock that moves one second each time it is read (access times never tie)."""
    now = [0.0]

    def tick() -> float:
        now[0] += 1
        return now[0]

    return tick


def run_here(code: str, *args: object) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with ``args`` in a new interpreter that imports this avgen."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          env=same_avgen_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


LIMIT = 600  # a scan every 300 bytes written: most writes evict by the index alone
DISK_KEYS = [f"k{i}" for i in range(16)]  # about 1 000 bytes in all: evictions are common
DISK_OPS = st.lists(st.tuples(
    st.sampled_from(["set"] * 6 + ["get"] * 4 + ["delete", "prune", "reopen"]),
    st.sampled_from(DISK_KEYS),
    st.integers(20, 110).map(lambda size: LIMIT + 1 if size == 110 else size),  # too large
), min_size=30, max_size=80)


@given(DISK_OPS)
@settings(max_examples=60, deadline=None)
def test_a_size_limited_store_matches_a_reference_lru(ops: list[tuple[str, str, int]]) -> None:
    import tempfile

    model: dict[str, tuple[int, int]] = {}  # key -> (last access, size)
    clock = 0
    tick = ticker()
    with tempfile.TemporaryDirectory() as root:
        store = DiskStore(root, max_bytes=LIMIT, timer=tick)
        for op, key, size in ops:
            if op == "set":
                stored = size <= LIMIT
                assert store.set(key, (key.encode() * size)[:size]) is stored
                if stored:
                    clock += 1
                    model[key] = (clock, size)
                    while sum(size for _, size in model.values()) > LIMIT:
                        del model[min((t, k) for k, (t, _) in model.items() if k != key)[1]]
            elif op == "get":
                expected = (key.encode() * model[key][1])[:model[key][1]] if key in model else None
                assert store.get(key) == expected
                if key in model:
                    clock += 1
                    model[key] = (clock, model[key][1])
            elif op == "delete":
                assert store.delete(key) is (model.pop(key, None) is not None)
            elif op == "prune":
                assert store.prune() == 0
            else:  # a new process opens the folder
                store = DiskStore(root, max_bytes=LIMIT, timer=tick)
            assert {k for k in DISK_KEYS if k in store} == set(model)
            assert store.currsize == sum(size for _, size in model.values()) <= LIMIT


def test_an_entry_read_by_another_store_since_the_last_scan_is_kept(tmp_path: Path) -> None:
    tick = ticker()
    store = DiskStore(tmp_path, max_bytes=300, timer=tick)
    reader = DiskStore(tmp_path, timer=tick)  # what another process sees: its own object
    for key in ("a", "b", "c"):
        assert store.set(key, bytes(100))
    assert reader.get("a") == bytes(100)  # b is now the least recently read
    assert store.set("d", bytes(100))
    assert sorted(k for k in "abcd" if k in store) == ["a", "c", "d"]
    assert store.evictions == 1


def test_an_entry_deleted_by_another_store_makes_room(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=300, timer=ticker())
    for key in ("a", "b", "c"):
        assert store.set(key, bytes(100))
    assert DiskStore(tmp_path).delete("a")
    assert store.set("d", bytes(100))
    assert sorted(k for k in "abcd" if k in store) == ["b", "c", "d"]
    assert store.evictions == 0


def test_threads_writing_to_one_store_keep_it_within_the_limit(tmp_path: Path) -> None:
    store = DiskStore(tmp_path, max_bytes=2_000)

    def write(name: str) -> None:
        for i in range(50):
            store.set(f"{name}-{i}", bytes(100))

    threads = [threading.Thread(target=write, args=(name,)) for name in "wxyz"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert store.currsize == 2_000 and len(store) == 20


FILLER = """
import sys
from avgen.resilience import DiskStore
store = DiskStore(sys.argv[1], max_bytes=int(sys.argv[2]))
for i in range(int(sys.argv[4])):
    store.set(f"{sys.argv[3]}-{i}", bytes(1000))
"""


def test_two_processes_writing_with_a_limit_stay_within_the_stated_bound(tmp_path: Path) -> None:
    limit = 20_000
    writers = [subprocess.Popen([sys.executable, "-c", FILLER, str(tmp_path), str(limit), name,
                                 "300"], env=same_avgen_env()) for name in ("p", "q")]
    assert [w.wait(120) for w in writers] == [0, 0]
    store = DiskStore(tmp_path, max_bytes=limit)
    assert store.currsize <= limit * (2 + 1) / 2  # k = 2 writers
    assert {p.name.split("-")[0] for p in tmp_path.rglob("*.meta.json")} <= {"p", "q"}
    assert store.set("last", bytes(1000))  # a new store scans first: everything is counted
    assert store.currsize <= limit and "last" in store


def test_writes_of_another_process_are_counted_at_the_next_scan(tmp_path: Path) -> None:
    limit = 10_000
    store = DiskStore(tmp_path, max_bytes=limit)
    assert store.set("mine-0", bytes(1000))  # scanned now: the folder holds only this
    run_here(FILLER, tmp_path, limit, "other", 20)  # fills the folder to the limit
    sizes = []
    for i in range(1, 6):  # 5 000 bytes: max_bytes / 2, so the last write scans again
        assert store.set(f"mine-{i}", bytes(1000))
        sizes.append(store.currsize)
    assert max(sizes) <= limit * (2 + 1) / 2
    assert sizes[-1] <= limit
    assert all(f"mine-{i}" in store for i in range(1, 6))


def test_prune_removes_the_least_recently_read_past_the_limit(tmp_path: Path) -> None:
    tick = ticker()
    filler = DiskStore(tmp_path, timer=tick)  # no limit: the folder grows past 300 bytes
    for key in "abcde":
        filler.set(key, bytes(100))
    assert filler.get("a") == bytes(100)
    store = DiskStore(tmp_path, max_bytes=300, timer=tick)
    assert store.prune(keep="b") == 2
    assert sorted(k for k in "abcde" if k in store) == ["a", "b", "e"]
    assert store.evictions == 2 and store.currsize == 300
    assert store.prune() == 0


def test_prune_removes_expired_entries_and_old_debris(tmp_path: Path) -> None:
    now = [1000.0]
    store = DiskStore(tmp_path, ttl=60, timer=lambda: now[0])
    store.set("old", b"x")
    now[0] = 1030.0
    store.set("new", b"y")
    sub = tmp_path / "ne"
    stale, fresh = sub / ".tmp-crashed", sub / ".tmp-writing"
    orphan = sub / f"gone.{'0' * 16}.bin"
    for path in (stale, fresh, orphan):
        path.write_bytes(b"debris")
    hours_ago = time.time() - 7200
    os.utime(stale, (hours_ago, hours_ago))
    os.utime(orphan, (hours_ago, hours_ago))
    now[0] = 1065.0
    assert store.prune() == 1
    assert "old" not in store and store.get("new") == b"y"
    assert not stale.exists() and not orphan.exists() and fresh.exists()
    assert not [n for n in entry_files(store) if n.startswith("old")]


# -- inspection, events, validation, stacking -----------------------------------------------------


def test_cache_info_cache_clear_and_events() -> None:
    @cached(name="script", maxsize=4)
    def write(topic: str) -> str:
        """Write a script."""
        return topic * 2

    assert write.__name__ == "write" and write.__doc__ == "Write a script."
    assert write.__wrapped__("a") == "aa"
    with collect() as events:
        write("a")
        write("a")
        write("b")
    assert [(e.kind, e.source) for e in events] == [
        ("cache.miss", "script"), ("cache.hit", "script"), ("cache.miss", "script")]
    assert events[0].data == {"key": write.cache_key("a")[:12]}
    assert write.cache_info() == CacheInfo(hits=1, misses=2, evictions=0, currsize=2, maxsize=4)
    assert isinstance(write.cache, CacheStore) and write.cache_key("a") in write.cache
    write.cache_clear()
    assert write.cache_info() == CacheInfo(hits=0, misses=0, evictions=0, currsize=0, maxsize=4)


def test_hooks_receive_events_and_a_failing_hook_breaks_nothing() -> None:
    seen: list[str] = []

    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    @cached(hooks=[lambda e: seen.append(e.kind), broken])
    def f(x: int) -> int:
        return x

    assert f(1) == 1 and f(1) == 1
    assert seen == ["cache.miss", "cache.hit"]


def test_a_shared_store_and_a_plain_mapping(tmp_path: Path) -> None:
    shared: dict[str, Any] = {}

    @cached(shared)
    def f(x: int) -> int:
        return x

    @cached(shared)
    def g(x: int) -> int:
        return -x

    assert f(1) == 1 and g(1) == -1  # the function's name is part of the default key
    assert len(shared) == 2 and isinstance(f.cache, MemoryStore) and f.cache.cache is shared


@pytest.mark.parametrize("kwargs, field", [
    ({"policy": "random"}, "policy"), ({"maxsize": 0}, "maxsize"), ({"ttl": -1}, "ttl"),
    ({"policy": "ttl"}, "ttl"), ({"policy": "lfu", "ttl": 3}, "ttl"),
    ({"store": {}, "maxsize": 3}, "store"), ({"store": 42}, "store"),
])
def test_bad_arguments_are_usage_errors(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(UsageError) as caught:
        cached(**kwargs)
    assert caught.value.field == field


def test_bare_decorator_and_generators_are_refused() -> None:
    def f() -> int:
        return 1

    def gen() -> Iterator[int]:
        yield 1

    with pytest.raises(UsageError, match=r"@cached\(\)"):
        cached(f)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="generator"):
        cached()(gen)


def test_stacks_with_other_decorators_in_any_order() -> None:
    ran: list[int] = []

    def logged(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await func(*args, **kwargs)
        return wrapper

    @monitored("outer")
    @cached()
    @logged
    async def inner(x: int) -> int:
        ran.append(x)
        return x

    @cached()
    @monitored("inner")
    async def outer(x: int) -> int:
        ran.append(x)
        return x

    async def main() -> None:
        with collect() as events:
            assert await inner(1) == await inner(1) == 1
            assert await outer(2) == await outer(2) == 2
        assert [e.kind for e in events] == ["cache.miss", "call", "cache.hit", "call",
                                            "cache.miss", "call", "cache.hit"]

    asyncio.run(main())
    assert ran == [1, 2]
    assert inspect.iscoroutinefunction(inner) and inspect.iscoroutinefunction(outer)


def test_disk_store_expands_the_home_folder(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = DiskStore("~/avgen-cache")
    assert store.directory == tmp_path / "avgen-cache"
