"""``avgen mcp``: the MCP server, driven by the official SDK's client — in memory, and over
stdio with a real server process that is killed and started again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import FakeGemini
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from media import decode

from avgen import AudioAsset, VideoGenerator
from avgen._desk import VideoDesk
from avgen._mcp import TOOLS, build_server
from avgen.testing import ToneNarrator

KEY = "AIzaFAKE-mcp-key-0123456789abcdef"
SCRIPT = "Waves roll in.\n\nGulls cry over the bay."


class HeldNarrator:
    """A narrator that waits for ``go`` before speaking a text with "slow" in it."""

    name = "held-tone"

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.inner = ToneNarrator()

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        if "slow" in text:
            await self.go.wait()
        return await self.inner.speak(text, target, voice=voice)


def tool(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    content: dict[str, Any] = result.structured_content
    return content


async def until(client: Client, session: str, statuses: tuple[str, ...] = ("done", "failed"),
                seconds: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        status = tool(await client.call_tool("video_status", {"session": session}))
        if status["status"] in statuses or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.2)


def serving(desk: VideoDesk, test: Callable[[Client], Awaitable[None]]) -> None:
    async def run() -> None:
        try:
            async with Client(build_server(desk)) as client:
                await test(client)
        finally:
            await desk.aclose()
    asyncio.run(run())


def test_the_tools_and_a_video_made_offline(tmp_path: Path) -> None:
    desk = VideoDesk(tmp_path / "videos", family="local")

    async def test(client: Client) -> None:
        listed = await client.list_tools()
        assert sorted(t.name for t in listed.tools) == sorted(TOOLS)
        for listed_tool in listed.tools:
            assert listed_tool.description and listed_tool.input_schema["type"] == "object"
        make = next(t for t in listed.tools if t.name == "make_video")
        assert {"topic", "script", "preset", "title", "wait_seconds"} <= set(
            make.input_schema["properties"])
        assert all(p.get("description") for p in make.input_schema["properties"].values())
        estimate = tool(await client.call_tool("estimate_video", {"script": SCRIPT}))
        assert estimate["total_usd"] == 0.0 and estimate["budget_left_usd"] is None
        started = tool(await client.call_tool("make_video", {
            "script": SCRIPT, "preset": "draft", "title": "Bay"}))
        assert started["status"] in ("queued", "running")
        done = await until(client, started["session"])
        assert done["status"] == "done" and done["progress"] == 1.0, done
        assert decode(Path(done["video"]))["has_audio"]
        assert set(done["captions"]) == {"srt", "vtt", "ass"}
        assert Path(done["report"]).read_text("utf-8").startswith("<!DOCTYPE html>")
        manifest = await client.read_resource(
            f"avgen://sessions/{started['session']}/manifest")
        recorded = json.loads(manifest.contents[0].text)
        assert recorded["status"] == "done" and recorded["title"] == "Bay"
        listed_videos = tool(await client.call_tool("list_videos", {}))["videos"]
        assert [v["session"] for v in listed_videos] == [started["session"]]
        presets = tool(await client.call_tool("list_presets", {}))["presets"]
        assert {"name": "shorts", "width": 1080, "height": 1920, "fps": 30} in presets
        styles = tool(await client.call_tool("list_caption_styles", {}))["styles"]
        assert {s["name"] for s in styles} == {"classic", "karaoke", "pop", "lower-third",
                                               "boxed"}
        voices = tool(await client.call_tool("list_voices", {}))["voices"]
        assert voices[0]["name"] == "joe"

    serving(desk, test)


def test_a_video_is_cancelled_and_resumed(tmp_path: Path) -> None:
    narrator = HeldNarrator()
    desk = VideoDesk(tmp_path, VideoGenerator(narrator=narrator, output_dir=tmp_path))

    async def test(client: Client) -> None:
        started = tool(await client.call_tool("make_video", {
            "script": "A fast line.\n\nA slow line.", "preset": "draft"}))
        session = started["session"]
        await until(client, session, ("running",))
        stopped = tool(await client.call_tool("cancel_video", {"session": session}))
        assert stopped["session"] == session
        failed = await until(client, session, ("failed",))
        assert failed["error"] == "cancelled" and failed["resumable"]
        narrator.go.set()
        resumed = tool(await client.call_tool("resume_video", {"session": session,
                                                               "wait_seconds": 300}))
        assert resumed["status"] == "done", resumed
        steps = json.loads((tmp_path / session / "metadata" / "manifest.json")
                           .read_text())["steps"]
        assert steps["scene-000.narration"]["status"] == "done"
        again = await client.call_tool("resume_video", {"session": session})
        assert again.is_error and "done" in again.content[0].text

    serving(desk, test)


@pytest.mark.parametrize(("name", "arguments", "words"), [
    ("video_status", {"session": "../../etc/passwd"}, "session: must be a session id"),
    ("video_status", {"session": "/etc/passwd"}, "session: must be a session id"),
    ("video_status", {"session": "session_20261204_101500_0a1b2c3d\x00"}, "session id"),
    ("video_status", {"session": "session_20261204_101500_0a1b2c3d"}, "no session"),
    ("cancel_video", {"session": "x" * 100_000}, "session: must be a session id"),
    ("make_video", {"script": "x" * 300_000}, "script: has 300,000 characters"),
    ("make_video", {"title": "a\x00b", "script": "Hi."}, "title"),
    ("make_video", {"script": "Hi.", "preset": "../../etc"}, "preset"),
    ("make_video", {"script": "Hi.", "caption_style": "neon"}, "caption_style"),
    ("make_video", {"script": "Hi.", "duration": -3}, "duration"),
    ("estimate_video", {}, "topic"),
])
def test_hostile_arguments_are_tool_errors_and_the_server_goes_on(
        tmp_path: Path, name: str, arguments: dict[str, Any], words: str) -> None:
    desk = VideoDesk(tmp_path, family="local")

    async def test(client: Client) -> None:
        refused = await client.call_tool(name, arguments)
        assert refused.is_error and words in refused.content[0].text, refused.content
        assert tool(await client.call_tool("list_videos", {}))["videos"] == []

    serving(desk, test)
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing was made


def test_a_symlinked_session_outside_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "session_20261204_101500_0a1b2c3d"
    (outside / "metadata").mkdir(parents=True)
    (outside / "metadata" / "manifest.json").write_text('{"status": "done"}')
    root = tmp_path / "videos"
    root.mkdir()
    (root / outside.name).symlink_to(outside)
    desk = VideoDesk(root, family="local")

    async def test(client: Client) -> None:
        refused = await client.call_tool("video_status", {"session": outside.name})
        assert refused.is_error and "no session" in refused.content[0].text
        with pytest.raises(MCPError, match="no session"):
            await client.read_resource(f"avgen://sessions/{outside.name}/manifest")
        with pytest.raises(MCPError):
            await client.read_resource("avgen://sessions/..%2F..%2Fetc/manifest")
        assert tool(await client.call_tool("list_videos", {}))["videos"] == []

    serving(desk, test)


def test_without_a_budget_paid_videos_are_refused_and_a_budget_bounds_them(
        tmp_path: Path) -> None:
    with FakeGemini() as fake:
        import avgen.agents.google as google

        def desk(budget: float | None) -> VideoDesk:
            connection = google.GoogleConnection.from_env({"GEMINI_API_KEY": KEY},
                                                          base_url=fake.base_url)
            agents = google.google_agents(connection, cache=False, clips=False)
            return VideoDesk(tmp_path, VideoGenerator(agents), budget=budget)

        async def free(client: Client) -> None:
            refused = await client.call_tool("make_video", {"topic": "tides"})
            assert refused.is_error and "--budget" in refused.content[0].text
            estimate = tool(await client.call_tool("estimate_video", {"topic": "tides"}))
            assert estimate["total_usd"] > 0

        serving(desk(None), free)

        async def tiny(client: Client) -> None:
            refused = await client.call_tool("make_video", {"topic": "tides"})
            assert refused.is_error and "of the server's $0.01" in refused.content[0].text

        serving(desk(0.01), tiny)
        assert fake.calls("script") == [] and fake.calls("speech") == []


def test_make_video_reports_progress_while_the_client_waits(tmp_path: Path) -> None:
    desk = VideoDesk(tmp_path, family="local")
    seen: list[float] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        seen.append(value)

    async def test(client: Client) -> None:
        done = await client.call_tool("make_video", {"script": SCRIPT, "preset": "draft",
                                                     "wait_seconds": 300},
                                      progress_callback=progress)
        assert tool(done)["status"] == "done"

    serving(desk, test)
    assert seen and seen == sorted(seen) and seen[-1] < 1.0 + 1e-9


# -- over stdio, with a real server process -------------------------------------------------


def _server(root: Path, env: dict[str, str], *options: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[
        "-m", "avgen", "mcp", "--root", str(root), *options], env=env)


@pytest.mark.slow
def test_a_killed_server_restarts_and_resumes_paying_for_nothing_twice(tmp_path: Path) -> None:
    root = tmp_path / "videos"
    with FakeGemini(latency={"image": 2.0}) as fake:
        env = {**os.environ, "GEMINI_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": fake.base_url,
               "AVGEN_CACHE_DIR": str(tmp_path / "cache")}

        killed: list[str] = []

        async def first() -> None:
            async with Client(_server(root, env, "--budget", "5")) as client:
                started = tool(await client.call_tool("make_video", {
                    "topic": "tides", "preset": "draft", "duration": 12}))
                session = started["session"]
                manifest = root / session / "metadata" / "manifest.json"
                deadline = time.monotonic() + 120
                while fake.count("image") < 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                pid = json.loads(manifest.read_text())["host"]["pid"]
                killed.append(session)
                os.kill(pid, signal.SIGKILL)  # the server dies mid-run, stills in flight

        try:
            asyncio.run(first())
        except BaseException:  # the client's teardown of the process it lost
            if not killed:
                raise
        [session] = killed
        # what the killed server had kept: the steps its manifest records as done (an
        # answer that came back but was not kept yet may be paid again; nothing kept may)
        folder = root / session
        steps = json.loads((folder / "metadata" / "manifest.json").read_text())["steps"]
        kept = {key for key, step in steps.items() if step["status"] == "done"}
        scenes = json.loads((folder / "scripts" / "script.json").read_text())["scenes"] \
            if "script" in kept else []
        before = {(c.kind, c.prompt) for c in fake.requests}

        def was_kept(kind: str, prompt: str) -> bool:
            if kind == "script":
                return "script" in kept
            for scene in scenes:
                step = f"scene-{scene['index']:03d}"
                if kind == "speech" and prompt == scene["narration"]:
                    return f"{step}.narration" in kept
                if kind == "image" and prompt.startswith(scene["visual"]):
                    return f"{step}.visual" in kept
            return False

        async def second() -> dict[str, Any]:
            async with Client(_server(root, env, "--budget", "5")) as client:
                listed = tool(await client.call_tool("list_videos", {}))["videos"]
                assert [v["session"] for v in listed] == [session]
                assert listed[0]["status"] == "failed" and listed[0]["resumable"]
                return tool(await client.call_tool("resume_video", {
                    "session": session, "wait_seconds": 300}))

        done = asyncio.run(second())
        assert done["status"] == "done", done
        assert decode(Path(done["video"]))["has_video"]
        paid = Counter((c.kind, c.prompt) for c in fake.requests
                       if c.kind in ("script", "speech", "image") and c.status == 200)
        twice = {key for key, count in paid.items() if count > 1}
        assert twice <= before, paid  # only what the killed server had asked for
        assert not [key for key in twice if was_kept(*key)], (paid, kept)
        assert any(kind == "image" and not was_kept(kind, prompt)
                   for kind, prompt in before), kept  # it died with stills to make
        assert paid[("script", fake.calls("script")[0].prompt)] == 1
        assert sum(paid.values()) < 2 * len(paid)  # most was made once


def test_videos_beyond_the_queue_are_refused(tmp_path: Path) -> None:
    narrator = HeldNarrator()
    desk = VideoDesk(tmp_path, VideoGenerator(narrator=narrator, output_dir=tmp_path),
                     concurrency=1, queue_limit=1)

    async def test(client: Client) -> None:
        calls = [client.call_tool("make_video", {"script": f"A slow line {n}.",
                                                 "preset": "draft"}) for n in range(4)]
        answers = await asyncio.gather(*calls)
        refused = [a for a in answers if a.is_error]
        started = [tool(a)["session"] for a in answers if not a.is_error]
        assert len(started) == 2 and len(refused) == 2  # one running, one waiting
        assert all("running or waiting already" in a.content[0].text for a in refused)
        narrator.go.set()
        for session in started:
            assert (await until(client, session))["status"] == "done"

    serving(desk, test)


def test_streamable_http_serves_on_loopback(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(  # SIGINT stops it, even if this process was started ignoring it
        [sys.executable, "-c", "import signal, sys; signal.signal(signal.SIGINT, "
         "signal.default_int_handler); from avgen._cli import main; sys.exit(main())",
         "mcp", "--root", str(tmp_path), "--agents", "local", "--http", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        async def test() -> list[str]:
            deadline = time.monotonic() + 60
            while True:
                try:
                    async with Client(f"http://127.0.0.1:{port}/mcp") as client:
                        return sorted(t.name for t in (await client.list_tools()).tools)
                except Exception:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise
                    await asyncio.sleep(0.3)

        assert asyncio.run(test()) == sorted(TOOLS)
        listening = [line for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                     if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]
        assert listening and all(line.split()[1].startswith("0100007F:")
                                 for line in listening)  # 127.0.0.1 only
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


SPANISH = "Las olas llegan.\n\nLas gaviotas gritan sobre la bahía."


def test_a_video_in_two_languages_names_each_version(tmp_path: Path) -> None:
    """languages and translations reach the run; video_status names each language's video
    and captions, and only files inside the session (its manifest is not trusted)."""
    desk = VideoDesk(tmp_path, VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path))

    async def test(client: Client) -> None:
        listed = await client.list_tools()
        for name in ("make_video", "estimate_video"):
            schema = next(t for t in listed.tools if t.name == name).input_schema
            for argument in ("languages", "translations", "voices"):
                assert schema["properties"][argument].get("description"), (name, argument)
        refused = await client.call_tool("make_video", {
            "script": SCRIPT, "languages": ["en", "es"], "translations": {"es": "Una."}})
        assert refused.is_error and "translations" in refused.content[0].text
        started = tool(await client.call_tool("make_video", {
            "script": SCRIPT, "preset": "draft", "languages": ["en", "es"],
            "translations": {"es": SPANISH}}))
        done = await until(client, started["session"])
        assert done["status"] == "done", done
        assert sorted(done["versions"]) == ["en", "es"]
        assert done["versions"]["en"]["video"] == done["video"]
        spanish = done["versions"]["es"]
        assert Path(spanish["video"]) != Path(done["video"])
        assert decode(Path(spanish["video"]))["has_audio"]
        assert "gaviotas" in Path(spanish["captions"]["vtt"]).read_text("utf-8")
        folder = tmp_path / started["session"]
        manifest_path = folder / "metadata" / "manifest.json"
        manifest = json.loads(manifest_path.read_text("utf-8"))
        outside = tmp_path / "outside.mp4"
        outside.write_bytes(b"not the session's")
        manifest["versions"]["es"]["video"] = "../outside.mp4"
        manifest["versions"]["<script>"] = {"video": manifest["video"]}
        (folder / "loop").symlink_to("loop")
        manifest["versions"]["de"] = {"video": "loop"}
        manifest["versions"]["fr"] = {"video": "final_output/\u0000.mp4"}
        manifest_path.write_text(json.dumps(manifest), "utf-8")
        srt = Path(done["captions"]["srt"])
        srt.unlink()
        srt.symlink_to(outside)
        again = tool(await client.call_tool("video_status", {"session": started["session"]}))
        assert sorted(again["versions"]) == ["en"]
        assert sorted(again["versions"]["en"]["captions"]) == ["ass", "vtt"]
        assert sorted(again["captions"]) == ["ass", "vtt"]
        assert [video["session"] for video in tool(
            await client.call_tool("list_videos", {}))["videos"]] == [started["session"]]

    serving(desk, test)
