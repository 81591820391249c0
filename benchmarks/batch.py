"""Batch benchmark: many videos under one quota, in this process and on a Dask cluster.

One run prints three figures against their limits:

(a) a batch of google-mode videos (the real SDK against the project's fake API server, its
    latencies set to realistic ratios: a Veo operation ≫ speech ≈ a still > the script)
    against the least time the quota allows: clips ÷ operations allowed at once × the
    operation's length, plus one composition (target ≤ 1.1×; each process's start-up —
    importing the SDK and the keyword extractor, loading the language model — is printed
    apart, not timed);
(b) the same batch on a two-worker Dask ``LocalCluster`` against in this process: the
    engine's overhead (target ≤ 10 %);
(c) a batch of offline videos (Piper, ffmpeg) on two processes: videos per second against
    what this machine's cores allow, from one video's CPU time;
(d) batches of 1 000 and 10 000 rows made by instant agents (the real checks, no media): the
    time to check every row before anything runs (target ≤ 5 s), the driver's time per item
    (≤ 10 ms), its peak memory, the bytes written to the batch's state per finished item
    (constant: no file rewritten whole per item), and the time to resume the finished batch
    (≤ 5 s); and how each grows from the smaller batch to the larger.

    python benchmarks/batch.py                 # about 4 minutes on 2 cores
    python benchmarks/batch.py --videos 8      # a smaller batch
    python benchmarks/batch.py --only d        # only the large batches
    python benchmarks/batch.py --only a --timeline   # (a), then where its time goes
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import math
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dask
import distributed
import psutil

from avgen import BatchResult, RunEvent, Video, VideoGenerator, VideoRequest
from avgen._batch import run_batch
from avgen._dask import worker_settings
from avgen._generator import _BatchMaker
from avgen.resilience import set_testing
from tests.fake_gemini import FakeGemini

KEY = "AIzaSyFAKE-benchmark-key-000000000000"
LATENCY = {"script": 0.4, "speech": 1.0, "image": 1.0, "veo": 0.2, "poll": 0.02,
           "download": 0.05}
OPERATION_SECONDS = 6.0
OPERATIONS_AT_ONCE = 4
TOPICS = ["Bees", "Rivers", "Tides", "Owls", "Moss", "Whales", "Wolves", "Ferns", "Comets",
          "Glaciers", "Lichens", "Octopuses", "Volcanoes", "Corals", "Deserts", "Storms"]


def google(fake: FakeGemini, base: Path) -> VideoGenerator:
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": KEY,
           "GOOGLE_VERTEX_BASE_URL": fake.base_url}
    return VideoGenerator("google", output_dir=base / "out", agent_options={
        "env": env, "cache": str(base / "cache"), "poll_interval": 0.25,
        "poll_max_interval": 0.25, "max_clip_operations": OPERATIONS_AT_ONCE})


def warm() -> float:
    """What a process pays once, before its first item: importing the SDK and building
    its request and response models (the SDK's pydantic models defer that to their first
    use: about 0.1 s of the event loop's time spread over the first script, the first
    finished operation...), importing avgen's google agents and the keyword extractor
    (YAKE, with numpy and networkx), loading the language model. Returns the seconds it
    took."""
    started = time.perf_counter()
    import inspect

    import google.genai
    from google.genai import _common

    for model in vars(google.genai.types).values():
        if inspect.isclass(model) and issubclass(model, _common.BaseModel):
            model.model_rebuild()

    import avgen.agents.google  # noqa: F401
    from avgen._language import detect
    from avgen.agents._keywords import extract_terms

    detect("Warm up the language model before the batch starts.")
    extract_terms("Warm up", "Warm up the keyword extractor before the batch starts.")
    return time.perf_counter() - started


def rows(count: int) -> list[VideoRequest]:
    return [VideoRequest(script=f"{TOPICS[n % len(TOPICS)]} number {n} are worth a look.",
                         preset="draft") for n in range(count)]


def compose_seconds(result: BatchResult) -> float:
    """The longest composition step of the batch (its last one bounds the batch)."""
    longest = 0.0
    for item in result:
        manifest = json.loads((item.session / "metadata" / "manifest.json").read_text())
        longest = max(longest, manifest["steps"]["compose"]["seconds"])
    return longest


def scripted(prompt: str) -> dict[str, Any]:
    """The fake's script answer: one scene about the row's own subject."""
    subject = " ".join(prompt.partition("NARRATION:\n")[2].split()[:3])
    return {"title": subject, "scenes": [{
        "title": subject, "narration": f"{subject} are worth a look.",
        "visual": f"{subject} in close-up, natural light", "seconds": 6}]}


def google_batch(count: int, executor: Any) -> tuple[float, int, float, int, float]:
    """(wall seconds, clips, the longest composition's seconds, peak operations, seconds
    into the batch of its first request)."""
    with tempfile.TemporaryDirectory() as tmp, FakeGemini(
            polls_until_done=1, latency=LATENCY, operation_seconds=OPERATION_SECONDS) as fake:
        fake.script = scripted
        generator = google(fake, Path(tmp))
        origin, started = time.monotonic(), time.perf_counter()
        result = generator.generate_many_sync(rows(count), executor=executor,
                                              concurrency=count)
        wall = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"the batch failed: {[i.error for i in result.failed]}")
        clips = sum(item.tiers.count("clip") for item in result)
        first = min(request.at for request in fake.requests) - origin
        return wall, clips, compose_seconds(result), fake.peak_operations(), first


def timeline(count: int, executor: Any = None) -> None:
    """Run (a) once more (with ``executor``, (b)) and say where its time goes: when each
    kind of request is first made, how late each wave of operations is seen done and how
    soon the next wave is asked for, and (in this process) the syncs to the disk made on
    the event loop's thread and elsewhere."""
    syncs: list[tuple[float, bool]] = []
    real_fsync, loop_thread = os.fsync, threading.get_ident()

    def timed_fsync(fd: int) -> None:
        started = time.perf_counter()
        try:
            real_fsync(fd)
        finally:
            syncs.append((time.perf_counter() - started, threading.get_ident() == loop_thread))

    with tempfile.TemporaryDirectory() as tmp, FakeGemini(
            polls_until_done=1, latency=LATENCY, operation_seconds=OPERATION_SECONDS) as fake:
        fake.script = scripted
        generator = google(fake, Path(tmp))
        os.fsync = timed_fsync
        try:
            origin = time.monotonic()
            generator.generate_many_sync(rows(count), executor=executor, concurrency=count)
            end = time.monotonic() - origin
        finally:
            os.fsync = real_fsync
        requests = sorted(fake.requests, key=lambda request: request.at)
        operations = sorted(fake.operations.values(), key=lambda op: op.started)
    first: dict[str, float] = {}
    for request in requests:
        first.setdefault(request.kind, request.at - origin)
    chain = LATENCY["script"] + LATENCY["speech"]
    print("    timeline: first request of each kind at "
          + ", ".join(f"{kind} {at:.3f} s" for kind, at in first.items())
          + f"; the first clip asked for {first.get('veo', 0.0) - chain:.3f} s after the "
          f"{chain:.1f} s chain")
    late = [op.finished - op.started - OPERATION_SECONDS for op in operations
            if op.finished is not None]
    waves = [late[at:at + OPERATIONS_AT_ONCE] for at in range(0, len(late), OPERATIONS_AT_ONCE)]
    handoffs = [after.started - before.finished for before, after in
                zip(operations, operations[OPERATIONS_AT_ONCE:], strict=False)
                if before.finished is not None]
    print("    each wave seen done after its end by "
          + ", ".join(f"{min(wave):.3f}–{max(wave):.3f} s" for wave in waves)
          + (f"; the next clips asked for {min(handoffs):.3f}–{max(handoffs):.3f} s after "
             "a slot's operation was seen done" if handoffs else ""))
    last = max((op.finished for op in operations if op.finished is not None),
               default=origin) - origin
    on_loop = [seconds for seconds, here in syncs if here]
    elsewhere = [seconds for seconds, here in syncs if not here]
    print(f"    the batch ended {end - last:.3f} s after the last operation was seen done"
          + ("" if executor is not None else
             f"; syncs to the disk: {len(on_loop)} on the event loop's thread (longest "
             f"{1000 * max(on_loop, default=0.0):.1f} ms), {len(elsewhere)} in other threads "
             f"(longest {1000 * max(elsewhere, default=0.0):.1f} ms)"))


def cpu_seconds() -> float:
    own, children = (resource.getrusage(resource.RUSAGE_SELF),
                     resource.getrusage(resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def offline(count: int) -> tuple[float, float, float]:
    """(CPU seconds of one video, wall seconds of ``count`` on two processes, video s)."""
    script = ("Rivers carry water from the hills to the sea. On the way they shape valleys, "
              "feed forests and fill lakes. People have built towns beside them for as long "
              "as there have been towns.")
    with tempfile.TemporaryDirectory() as tmp:
        one = VideoGenerator("local", output_dir=Path(tmp) / "one")
        one.generate_sync(script="Warm up the voice.", preset="draft")
        before = cpu_seconds()
        video = one.generate_sync(script=script, preset="draft")
        per_video = cpu_seconds() - before
        generator = VideoGenerator("local", output_dir=Path(tmp) / "batch")
        requests = [VideoRequest(script=f"{script} Part {n}.", preset="draft")
                    for n in range(count)]
        with concurrent.futures.ProcessPoolExecutor(2) as pool:
            list(pool.map(math.sqrt, range(2)))  # the processes are up
            started = time.perf_counter()
            result = generator.generate_many_sync(requests, executor=pool)
            wall = time.perf_counter() - started
        if not result.ok:
            raise SystemExit(f"the offline batch failed: {[i.error for i in result.failed]}")
        return per_video, wall, video.duration


class InstantMaker(_BatchMaker):
    """The offline generator's checks, but each video is made at once: a few bytes in the
    item's session folder (what a batch's driver costs, without the media)."""

    async def make(self, root: Path, request: VideoRequest, on_event: Any) -> Video:
        out = root / "final_output"
        out.mkdir(parents=True, exist_ok=True)
        (out / "video.mp4").write_bytes(b"instant")
        on_event(RunEvent("narration", "spoken", 0.5, 0, {}))
        return Video(out / "video.mp4", 1.0, 16, 16, root, tiers=("card",))


class Written:
    """Counts the bytes avgen writes to a batch folder's state files (``batch.json`` and
    its journal) by looking at their sizes after each item's event."""

    def __init__(self) -> None:
        self.bytes = 0
        self.folder: Path | None = None
        self.seen: dict[str, tuple[int, int, int]] = {}  # name: (inode, mtime, size)

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "batch.start":
            self.folder = Path(event.data["path"])
        if self.folder is None or event.kind not in ("batch.start", "batch.item"):
            return
        for name in ("batch.json", "batch.journal.jsonl"):
            try:
                stat = (self.folder / name).stat()
            except FileNotFoundError:
                continue
            now = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            before = self.seen.get(name)
            if before == now:
                continue
            if before is not None and before[0] == now[0] and now[2] >= before[2]:
                self.bytes += now[2] - before[2]  # the same file, added to
            else:
                self.bytes += now[2]  # a new file, or one written anew
            self.seen[name] = now


def large_batch(count: int) -> Mapping[str, float]:
    """Check, drive and resume a ``count``-row batch of instant videos."""
    requests = [{"script": f"{TOPICS[n % len(TOPICS)]} number {n} are worth a look.",
                 "preset": "draft"} for n in range(count)]
    with tempfile.TemporaryDirectory() as tmp:
        maker = InstantMaker(VideoGenerator("local", output_dir=Path(tmp)))
        written = Written()
        marks: dict[str, float] = {}

        process = psutil.Process()
        memory: list[int] = []  # resident bytes when the items start, then the most since

        def watch(event: RunEvent) -> None:
            marks.setdefault(event.kind, time.perf_counter())
            if event.kind == "batch.start":
                memory[:] = [process.memory_info().rss] * 2
            elif memory and event.data.get("item", 0) % 100 == 0:
                memory[1] = max(memory[1], process.memory_info().rss)
            written(event)

        started = time.perf_counter()
        result = asyncio.run(run_batch(maker, requests, concurrency=64, on_event=watch))
        wall = time.perf_counter() - started
        peak = memory[1] - memory[0]
        if not result.ok or len(result) != count:
            raise SystemExit("the instant batch failed")
        again_started = time.perf_counter()
        again = asyncio.run(run_batch(maker, requests, concurrency=64))
        resumed = time.perf_counter() - again_started
        if len(again.done) != count:
            raise SystemExit("the resumed batch did not find every item done")
        checked = marks["batch.start"] - started  # every row checked, the folder set up
        return {"check": checked, "per_item": (wall - checked) / count, "peak": peak,
                "written": written.bytes / count, "resume": resumed}


def scale(counts: list[int]) -> None:
    """Part (d): the large batches, and how their figures grow."""
    figures = {count: large_batch(count) for count in counts}
    for count, got in figures.items():
        print(f"(d) {count} instant rows: checked in {got['check']:.2f} s (target ≤ 5), "
              f"{1000 * got['per_item']:.2f} ms of driver time per item (≤ 10), the "
              f"driver's memory grew {got['peak'] / 2**20:.1f} MiB (resident), "
              f"{got['written']:.0f} bytes of state written per item, resumed in "
              f"{got['resume']:.2f} s (≤ 5)")
    small, large = min(figures), max(figures)
    if small != large:
        a, b = figures[small], figures[large]
        print(f"(d) from {small} to {large} rows ({large / small:g}×): check "
              f"{b['check'] / a['check']:.1f}×, driver time per item "
              f"{b['per_item'] / a['per_item']:.2f}×, memory growth "
              f"{b['peak'] / max(1, a['peak']):.1f}×, "
              f"state bytes per item {b['written'] / max(1.0, a['written']):.2f}×, resume "
              f"{b['resume'] / a['resume']:.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=12, help="google videos (default 12)")
    parser.add_argument("--offline", type=int, default=6, help="offline videos (default 6)")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append",
                        help="run only these parts (repeatable)")
    parser.add_argument("--timeline", action="store_true",
                        help="with (a) or (b): run it once more and say where its time goes")
    parser.add_argument("--rows", default="1000,10000",
                        help="row counts of part (d), comma-separated (default 1000,10000)")
    args = parser.parse_args()
    parts = set(args.only or "abcd")
    set_testing()  # no backoff sleeps: the fake answers at once when it answers
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    cores = os.cpu_count() or 1
    print(f"machine: {cores} cores; fake latencies {LATENCY}, a Veo operation "
          f"{OPERATION_SECONDS:g} s, {OPERATIONS_AT_ONCE} operations at once")

    if parts & {"a", "b"}:  # (b) compares with (a)
        print(f"process start-up (the SDK and its models, the agents, the keyword extractor, the "
              f"language model), once per "
              f"process and not in the timed spans: {warm():.2f} s")
        here, clips, compose, peak, first = google_batch(args.videos, None)
        bound = math.ceil(clips / OPERATIONS_AT_ONCE) * OPERATION_SECONDS + compose
        print(f"(a) {args.videos} google videos, {clips} clips, in this process: {here:.1f} s; "
              f"quota bound {bound:.1f} s ({math.ceil(clips / OPERATIONS_AT_ONCE)} waves × "
              f"{OPERATION_SECONDS:g} s + a {compose:.1f} s composition): "
              f"ratio {here / bound:.2f} (target ≤ 1.1); peak operations {peak}; first "
              f"request {first:.2f} s in")
        # a clip's length is its scene's narration's: the first operation waits for a
        # script and its narration, which the quota bound leaves out
        chain = LATENCY["script"] + LATENCY["speech"]
        print(f"    with the {chain:.1f} s a first clip waits for (its script, then its "
              f"narration): bound {bound + chain:.1f} s, ratio {here / (bound + chain):.2f}")
        if args.timeline:
            timeline(args.videos)

    if "b" in parts:
        with dask.config.set(worker_settings()), \
                distributed.LocalCluster(n_workers=2,
                                         threads_per_worker=math.ceil(args.videos / 2),
                                         processes=True, dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            client.run(set_testing)
            client.run(warm)  # each worker's start-up, as this process's before (a)
            there, _, _, peak, first = google_batch(args.videos, client)
            print(f"(b) the same batch on a 2-worker Dask LocalCluster: {there:.1f} s "
                  f"against {here:.1f} s in this process: overhead "
                  f"{100 * (there / here - 1):+.1f} % (target ≤ 10 %); peak operations {peak}; "
                  f"first request {first:.2f} s in")
            if args.timeline:
                timeline(args.videos, client)

    if "c" in parts:
        per_video, wall, seconds = offline(args.offline)
        ideal = args.offline * per_video / cores
        print(f"(c) {args.offline} offline videos ({seconds:.1f} s each) on 2 processes: "
              f"{wall:.1f} s; one video takes {per_video:.2f} CPU s, so {cores} cores allow "
              f"{ideal:.1f} s: {args.offline / wall:.2f} videos/s against "
              f"{args.offline / ideal:.2f}, efficiency {ideal / wall:.2f}")

    if "d" in parts:
        scale(sorted(int(count) for count in args.rows.split(",")))

if __name__ == "__main__":
    main()
