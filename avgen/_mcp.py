"""``avgen mcp``: avgen as a tool for AI assistants, over the Model Context Protocol.

::

    avgen mcp --root videos/                       # stdio, the offline agents
    avgen mcp --root videos/ --agents google --budget 5 --concurrency 2
    avgen mcp --root videos/ --http 8765           # streamable HTTP on 127.0.0.1:8765

The operator decides the family, the folder, the budget and how many videos run at once;
the model decides only what to make. Keys come from the server's environment, never from a
tool argument. Built on the official ``mcp`` SDK (the ``mcp`` extra). See docs/mcp.md.
"""


__docformat__ = "google"

import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from avgen._desk import VideoDesk
from avgen._models import CAPTION_STYLES, PRESETS, caption_style
from avgen._session import read_manifest
from avgen.errors import AvgenError, ConfigurationError

__all__: list[str] = []

T = TypeVar("T")

TOOLS = ("estimate_video", "make_video", "video_status", "list_videos", "resume_video",
         "cancel_video", "list_presets", "list_voices", "list_caption_styles")
"""The tools the server offers, by name."""

_INSTRUCTIONS = (
    "avgen makes narrated, captioned videos from a topic or a script. Call estimate_video "
    "first when the video may cost money; make_video answers at once with a session id; "
    "poll video_status until its status is done (then it names the video file and its "
    "report) or failed (then it says why, and resume_video may finish it).")


def build_server(desk: VideoDesk) -> Any:
    """The MCP server of ``desk`` (an ``mcp.server.mcpserver.MCPServer``).

    Raises:
        ConfigurationError: The ``mcp`` package is not installed.
    """
    try:
        from mcp.server.mcpserver import Context, MCPServer
        from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
        from pydantic import Field
    except ImportError as exc:
        raise ConfigurationError("the MCP server needs the mcp package: pip install "
                                 "'avgen[mcp]'") from exc

    server = MCPServer("avgen", instructions=_INSTRUCTIONS)

    Topic = Annotated[str | None, Field(
        description="What the video is about; a script writer that can write from a topic "
                    "writes the narration (give script instead to narrate your own words)")]
    Script = Annotated[str | None, Field(
        description="The narration itself, as text or Markdown: paragraphs become scenes, "
                    "headings their titles")]
    Preset = Annotated[str | None, Field(
        description=f"The output format: {', '.join(PRESETS)} (default: draft)")]
    Duration = Annotated[float | None, Field(
        description="Seconds the video should last, for a script writer that plans it")]
    Language = Annotated[str | None, Field(
        description="The narration's language as a BCP 47 code (en, es, ja …; default: the "
                    "script's own)")]
    Voice = Annotated[str | None, Field(description="The narrator's voice (list_voices)")]
    Languages = Annotated[list[str] | None, Field(
        description="One video per language, as BCP 47 codes, the script's own first "
                    "(['en', 'es', 'de']): the pictures are made once and shared; each "
                    "other language's script is translated by a script writer that "
                    "translates, or taken from translations")]
    Translations = Annotated[dict[str, str] | None, Field(
        description="With languages: your own translated script per language code "
                    "({'es': '...'}), scene for scene as the original")]
    Voices = Annotated[dict[str, str] | None, Field(
        description="With languages: the voice per language code (list_voices)")]
    Captions = Annotated[bool | None, Field(description="Burn captions in (default: yes)")]
    Style = Annotated[str | None, Field(
        description=f"Caption style: {', '.join(CAPTION_STYLES)} (default: classic)")]
    Title = Annotated[str | None, Field(description="The video's title (default: the "
                                                    "script's first heading)")]
    Session = Annotated[str, Field(description="A session id, as make_video answered it")]
    Wait = Annotated[float, Field(ge=0, le=3600, description=(
        "Seconds to wait for the video before answering, sending progress notifications "
        "when the client asks for them (0: answer at once)"))]

    def request(topic: str | None, script: str | None, preset: str | None,
                duration: float | None, language: str | None, voice: str | None,
                captions: bool | None, style: str | None, title: str | None = None, *,
                languages: list[str] | None = None, translations: dict[str, str] | None = None,
                voices: dict[str, str] | None = None) -> Any:
        try:
            return desk.request(topic=topic, script=script, preset=preset, duration=duration,
                                language=language, voice=voice, captions=captions,
                                caption_style=None if style is None else caption_style(style),
                                title=title, languages=languages, translations=translations,
                                voices=voices)
        except (AvgenError, TypeError, ValueError) as exc:
            raise ToolError(_argument(exc)) from None

    def guarded(call: Callable[[], T]) -> T:
        try:
            return call()
        except (AvgenError, ValueError) as exc:
            raise ToolError(_argument(exc)) from None

    async def waited(ctx: Any, session: str, seconds: float) -> dict[str, Any]:
        async def tell(progress: float, step: str) -> None:
            await ctx.report_progress(progress, 1.0, step)
        return await desk.wait(session, seconds, tell)

    @server.tool()
    def estimate_video(topic: Topic = None, script: Script = None, preset: Preset = None,
                       duration: Duration = None, language: Language = None,
                       voice: Voice = None, captions: Captions = None,
                       caption_style: Style = None, languages: Languages = None,
                       translations: Translations = None,
                       voices: Voices = None) -> dict[str, Any]:
        """What a video would cost, scene by scene, without spending anything."""
        made = request(topic, script, preset, duration, language, voice, captions,
                       caption_style, languages=languages, translations=translations,
                       voices=voices)
        return guarded(lambda: desk.estimate(made))

    @server.tool()
    async def make_video(ctx: Context, topic: Topic = None, script: Script = None,
                         preset: Preset = None, duration: Duration = None,
                         language: Language = None, voice: Voice = None,
                         captions: Captions = None, caption_style: Style = None,
                         title: Title = None, languages: Languages = None,
                         translations: Translations = None, voices: Voices = None,
                         wait_seconds: Wait = 0.0) -> dict[str, Any]:
        """Start a video in the background; answers at once with its session id (videos
        run one or a few at a time, the others wait in a queue). With languages, one
        video per language (video_status names each)."""
        made = request(topic, script, preset, duration, language, voice, captions,
                       caption_style, title, languages=languages, translations=translations,
                       voices=voices)
        session = guarded(lambda: desk.start(made))
        return await waited(ctx, session, wait_seconds)

    @server.tool()
    def video_status(session: Session) -> dict[str, Any]:
        """Where a video stands: queued, running, done or failed; progress from 0 to 1,
        the current step, the cost so far; when done, the video's path, its report's and
        its caption files' (with languages, each language's video and captions under
        versions); when failed, why, and whether resume_video can finish it."""
        return guarded(lambda: desk.status(session))

    @server.tool()
    def list_videos() -> dict[str, Any]:
        """Every video of this server's folder, newest first, as video_status gives it."""
        return {"videos": desk.videos()}

    @server.tool()
    async def resume_video(ctx: Context, session: Session,
                           wait_seconds: Wait = 0.0) -> dict[str, Any]:
        """Finish a video that did not (cancelled, failed, or stopped with the server),
        paying for nothing it made already."""
        guarded(lambda: desk.resume(session))
        return await waited(ctx, session, wait_seconds)

    @server.tool()
    def cancel_video(session: Session) -> dict[str, Any]:
        """Stop a queued or running video; what it made is kept for resume_video."""
        return guarded(lambda: desk.cancel(session))

    @server.tool()
    def list_presets() -> dict[str, Any]:
        """The output formats: name, width, height and frames per second."""
        return {"presets": [{"name": name, "width": p.width, "height": p.height,
                             "fps": p.fps} for name, p in PRESETS.items()]}

    @server.tool()
    def list_voices() -> dict[str, Any]:
        """The voices this server's narrator speaks with (the voice argument)."""
        return {"voices": _voices(desk)}

    @server.tool()
    def list_caption_styles() -> dict[str, Any]:
        """The caption styles, by name, with what each looks like."""
        return {"styles": [{"name": name, "position": style.position,
                            "words_per_cue": style.words_per_cue,
                            "highlight": style.highlight_color is not None,
                            "box": style.box, "uppercase": style.uppercase}
                           for name, style in CAPTION_STYLES.items()]}

    def found(session: str) -> Any:
        try:
            return desk.folder(session)
        except AvgenError as exc:
            raise ResourceNotFoundError(_argument(exc)) from None

    @server.resource("avgen://sessions/{session}/manifest", mime_type="application/json")
    def manifest(session: str) -> str:
        """A session's manifest: every step, what it made, what it cost."""
        path = found(session) / "metadata" / "manifest.json"
        return json.dumps(guarded(lambda: read_manifest(path)), indent=2)

    @server.resource("avgen://sessions/{session}/report", mime_type="text/html")
    def report(session: str) -> str:
        """A session's HTML report (written when asked for)."""
        from avgen._report import write_report

        folder = found(session)
        return guarded(lambda: write_report(folder)).read_text("utf-8")

    return server


def _voices(desk: VideoDesk) -> list[dict[str, Any]]:
    """The voices of the desk's narrator: Gemini's prebuilt ones, or Piper's installed."""
    narrator = desk.generator.agents.narrator
    known = getattr(narrator, "voices", None)
    if callable(known):
        return [{"name": name} for name in known()]
    from avgen.agents.google import GeminiNarrator
    from avgen.agents.google._narrator import VOICES

    if isinstance(narrator, GeminiNarrator):
        return [{"name": name} for name in VOICES]
    from avgen.agents.local._voices import VoiceShelf

    installed = [{"name": "joe", "language": "en_US", "default": True}]
    installed += [{"name": name, "language": name.split("-")[0]}
                  for name in VoiceShelf().installed()]
    return installed


def _argument(exc: BaseException) -> str:
    """A refusal as the model should read it: the argument, and what is allowed."""
    return (str(exc).strip() or type(exc).__name__)[:1000]


def serve(desk: VideoDesk, http: str | None = None) -> None:
    """Serve ``desk`` over stdio, or streamable HTTP on ``http`` (``[HOST:]PORT``; the host
    is 127.0.0.1 unless given), until the client or a signal ends it."""
    import anyio

    server = build_server(desk)

    async def main() -> None:
        try:
            if http is None:
                await server.run_stdio_async()
            else:
                host, _, port = http.rpartition(":")
                await server.run_streamable_http_async(host=host or "127.0.0.1",
                                                       port=int(port))
        finally:
            await desk.aclose()

    anyio.run(main)


def describe(desk: VideoDesk) -> str:
    """One line about the server, for its operator's terminal."""
    budget = "no paid calls" if desk.budget is None else f"budget ${desk.budget:.2f}"
    return json.dumps({"agents": desk.family, "root": str(desk.root), "budget": budget,
                       "concurrency": desk.concurrency})
