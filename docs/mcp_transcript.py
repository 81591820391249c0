"""A real exchange with ``avgen mcp``, as docs/mcp.md shows it.

Usage::

    python docs/mcp_transcript.py [ROOT]   # prints each call and its answer (ROOT: a folder)

It starts the server as an MCP client would — ``avgen mcp`` over stdio, offline agents —
with the official SDK's client, and asks what an assistant asks: the tools, an estimate, a
video, its status until it is done, and its manifest.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

__all__ = ["main"]


def _show(label: str, value: Any) -> None:
    print(f"→ {label}")
    print("← " + json.dumps(value, indent=2, ensure_ascii=False).replace("\n", "\n  ") + "\n")


async def _exchange(root: Path) -> None:
    server = StdioServerParameters(command=sys.executable, args=[
        "-m", "avgen", "mcp", "--root", str(root), "--agents", "local"])
    async with Client(server) as client:
        tools = await client.list_tools()
        _show("tools/list", [tool.name for tool in tools.tools])
        script = "# Tides\n\nThe moon pulls the sea.\n\nTwice a day the water rises."
        asked = {"script": script, "preset": "draft"}
        answer = await client.call_tool("estimate_video", asked)
        _show(f"tools/call estimate_video {json.dumps(asked)}", answer.structured_content)
        answer = await client.call_tool("make_video", asked)
        _show(f"tools/call make_video {json.dumps(asked)}", answer.structured_content)
        session = answer.structured_content["session"]
        while True:
            answer = await client.call_tool("video_status", {"session": session})
            if answer.structured_content["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.5)
        _show(f'tools/call video_status {{"session": "{session}"}}', answer.structured_content)
        answer = await client.call_tool("video_status", {"session": "../../etc/passwd"})
        _show('tools/call video_status {"session": "../../etc/passwd"}',
              {"isError": answer.is_error, "text": answer.content[0].text})
        manifest = await client.read_resource(f"avgen://sessions/{session}/manifest")
        steps = json.loads(manifest.contents[0].text)["steps"]
        _show(f"resources/read avgen://sessions/{session}/manifest (its steps)",
              {name: step["status"] for name, step in steps.items()})


def main(argv: list[str]) -> int:
    """Run the exchange; returns the exit status."""
    root = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="avgen-mcp-"))
    asyncio.run(_exchange(root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
