"""The ``avgen`` command: a thin shell over the public API.

::

    avgen make --script FILE [--preset tiktok] [--out outputs] [--voice joe] [--title T]
    avgen make "A TOPIC" --duration 40 --budget 3 [--estimate]   # with Google credentials
    avgen make --languages en,es --script en.md --script es.md   # one video per language
    avgen resume SESSION_DIR [--languages en,es,de --script de.md]
    avgen report SESSION_DIR | BATCH_DIR      # a self-contained HTML page of the run
    avgen batch REQUESTS.csv [--budget 20] [--workers 4 | --scheduler ADDRESS | --processes 4]
    avgen presets
    avgen models [--kind text] [--all]      # the Google models avgen knows, and their dates
    avgen models --check [--model script=ID]  # which of them your credentials can use
    avgen voices [--language he]            # Piper voices: installed, and fetchable by name
    avgen docs [--out docs/api] [--check]   # the API reference (needs avgen[dev])
"""

from __future__ import annotations

__docformat__ = "google"

import argparse
import contextlib
import shlex
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from avgen._generator import VideoGenerator
from avgen._google_cli import MODEL_ROLES, google_models, run_models_command
from avgen._models import (
    CAPTION_STYLES,
    MAX_SCRIPT_CHARS,
    PRESETS,
    TRANSITION_STYLES,
    CaptionStyle,
    Character,
    Soundtrack,
    VideoRequest,
    caption_style,
)
from avgen._progress import RunProgress, shorten
from avgen._reporting import RunEvent
from avgen._terminal import Terminal, agent_family, console
from avgen._version import __version__
from avgen.agents._protocols import AgentSet, agent_name
from avgen.agents._registry import load_agents
from avgen.errors import AgentError, AvgenError, GenerationError, UsageError

__all__: list[str] = []  # the entry point `main` is named in pyproject.toml


class _ProgressBar(Terminal):
    """Draws run progress on a terminal; prints plain lines elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        super().__init__(stream, quiet)
        self.core = RunProgress()
        self.label = ""
        self.session: str | None = None
        """The folder of the run under way, once it has one (to say how to resume it)."""

    def __call__(self, event: RunEvent) -> None:
        if event.kind == "session" and isinstance(event.data.get("path"), str):
            self.session = event.data["path"]
        if self.quiet:
            return
        step = self.core.follow(event)
        if step.line is not None:
            self._line(step.line)
        elif self.tty:
            self.label = shorten(step.label, 48) if step.label is not None else self.label
            self._bar(step.progress, f"{step.progress:4.0%} {self.label:<48}")
        elif step.label is not None:
            self._line(f"[{step.progress:4.0%}] {event.message}")


_TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".text", ".rst"})


def _check_topic(topic: str | None) -> None:
    """Refuse a topic that is a file name (``avgen make notes.md``, ``--script`` forgotten)."""
    if not topic:
        return
    if len(topic.split()) != 1:
        return
    path = Path(topic).expanduser()
    named_like_a_file = bool(path.suffix) or "/" in topic or "\\" in topic
    if path.suffix.lower() in _TEXT_SUFFIXES or (named_like_a_file and path.is_file()):
        raise UsageError("topic", f"{topic!r} looks like a file, not a topic; to narrate its "
                         f"text, give it with --script: avgen make --script {shlex.quote(topic)}")


def _read_script(value: str) -> str:
    """The script file's text, read no further than a script may be long."""
    too_long = UsageError("script", f"{value!r} has more than {MAX_SCRIPT_CHARS:,} "
                          "characters, the limit; split it into several videos")
    try:
        if value == "-":
            text = sys.stdin.read(MAX_SCRIPT_CHARS + 1)
        else:
            with Path(value).expanduser().open("rb") as file:
                data = file.read(4 * MAX_SCRIPT_CHARS + 1)  # UTF-8: up to 4 bytes a character
            if len(data) > 4 * MAX_SCRIPT_CHARS:
                raise too_long
            text = data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError("script", f"cannot read {value!r}: {reason}; give a readable UTF-8 "
                         "text or Markdown file, or - for standard input") from exc
    if len(text) > MAX_SCRIPT_CHARS:
        raise too_long
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avgen", description="Turn a topic or a script into a narrated, captioned video.")
    parser.add_argument("--version", action="version", version=f"avgen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("make", help="make a video")
    make.add_argument("topic", nargs="?", help="what the video is about")
    make.add_argument("--script", metavar="FILE", action="append",
                      help="narration as text or Markdown (paragraphs become scenes); "
                           "- reads stdin; with --languages, once per language in its order "
                           "(the first the original, the others its translations)")
    make.add_argument("--languages", metavar="CODES",
                      help="one video per language, the first the original: en,es,de "
                           "(pictures are made once and shared)")
    make.add_argument("--preset", default="draft",
                      help=f"output format: {', '.join(PRESETS)} (default: draft)")
    make.add_argument("--out", default="outputs", metavar="DIR",
                      help="folder for session folders (default: outputs)")
    make.add_argument("--voice", help="narrator voice (local: 'joe' or a Piper .onnx path)")
    make.add_argument("--language", metavar="CODE",
                      help="the narration's language (en, he, ja …; default: the one the "
                           "script is written in, else en); the narrator must speak it")
    make.add_argument("--title", help="video title (default: the script's first heading)")
    make.add_argument("--images", nargs="+", metavar="IMAGE",
                      help="your own pictures, one per scene in turn (local agents)")
    make.add_argument("--media", metavar="DIR",
                      help="a folder of your pictures and clips, each matched to the scene "
                           "it fits by its name and tags (any agents: tried first)")
    make.add_argument("--sources", metavar="LIST",
                      help="where each scene's picture comes from, in the order to try: "
                           "comma-separated from media (the --media folder), clips, images "
                           "(the agents' own), pexels, pixabay (stock clips, then photos); "
                           "the procedural card comes last (default: media,clips,images)")
    make.add_argument("--no-captions", action="store_true", help="do not burn captions in")
    make.add_argument("--captions", default="classic", metavar="STYLE",
                      help=f"caption style: {', '.join(CAPTION_STYLES)} (default: classic)")
    make.add_argument("--caption-font", metavar="FONT",
                      help="caption font: a family name or a .ttf/.otf file (default: the "
                           "style's; characters it lacks fall back to other fonts)")
    make.add_argument("--caption-size", type=float, metavar="FRACTION",
                      help="caption text height as a fraction of the frame's shorter side "
                           "(e.g. 0.06)")
    make.add_argument("--caption-position", choices=("bottom", "middle", "top"),
                      help="where captions sit (default: the style's)")
    make.add_argument("--transition", default="cut",
                      help=f"between scenes: {', '.join(TRANSITION_STYLES)} (default: cut)")
    make.add_argument("--fit", choices=("cover", "blur"), default="cover",
                      help="pictures of another shape: crop (cover) or blur-pad (blur)")
    make.add_argument("--max-shot", type=float, metavar="SECONDS",
                      help="longest shot of found footage (stock): a longer scene shows "
                           "several clips in turn, 1 to 60 (default: 5 for vertical "
                           "presets, 7 for others)")
    make.add_argument("--music", metavar="FILE", help="background music, ducked under the voice")
    make.add_argument("--music-volume", type=float, metavar="DB",
                      help="how many dB the music sits below the narration, 0 to 40, "
                           "whatever the file's own loudness (default: 18)")
    make.add_argument("--loudness", type=float, default=-14.0, metavar="LUFS",
                      help="loudness of the final mix (default: -14)")
    make.add_argument("--duration", type=float, metavar="SECONDS",
                      help="target length, for script writers that plan it (google)")
    make.add_argument("--style", metavar="TEXT",
                      help="one look for every picture (e.g. 'watercolour, pastel palette, "
                           "soft morning light'); default: the script writer's choice")
    make.add_argument("--character", action="append", default=[], metavar="NAME=LOOK",
                      help="someone who appears, described once for every picture: "
                           "'Ada=a woman of sixty with short grey hair' (repeatable)")
    make.add_argument("--character-picture", action="append", default=[],
                      metavar="NAME=FILE",
                      help="a picture of a --character, to keep their face (repeatable)")
    _agent_options(make)
    make.add_argument("--budget", type=float, metavar="USD",
                      help="the most the video may cost; a paid call that would go over it "
                           "is not made")
    make.add_argument("--estimate", action="store_true",
                      help="print what the video would cost, and stop")
    make.add_argument("-q", "--quiet", action="store_true", help="print only the video path")

    resume = commands.add_parser("resume", help="finish an interrupted run")
    resume.add_argument("session", help="the session folder")
    resume.add_argument("--languages", metavar="CODES",
                        help="add languages to the run (all of them, the original first: "
                             "en,es,de); only the new ones' parts are made")
    resume.add_argument("--script", metavar="FILE", action="append",
                        help="a translation for each language --languages adds, in order "
                             "(the last languages)")
    _agent_options(resume)
    resume.add_argument("--budget", type=float, metavar="USD",
                        help="the most the whole video may cost")
    resume.add_argument("-q", "--quiet", action="store_true", help="print only the video path")

    report = commands.add_parser(
        "report", help="write a self-contained HTML report of a session or a batch",
        description="Write one HTML file that needs no network: metadata/report.html in a "
                    "session folder, report.html in a batch folder (with each item's).")
    report.add_argument("path", help="a session folder or a batch folder")

    batch = commands.add_parser(
        "batch", help="make many videos from a JSONL or CSV file of requests",
        description="Make one video per row of a .jsonl or .csv file whose fields are those "
                    "of avgen.VideoRequest (topic, script, preset, duration, voice, ...). "
                    "Every row is checked first. Running the same file again finishes only "
                    "what is not done.")
    batch.add_argument("requests", help="the requests file (.jsonl, .ndjson or .csv)")
    batch.add_argument("--out", default="outputs", metavar="DIR",
                       help="folder for the batch folder (default: outputs)")
    _agent_options(batch)
    batch.add_argument("--cache", metavar="URL",
                       help="google: the asset cache, a folder or an fsspec URL every worker "
                            "reaches (gs://bucket/avgen, s3://...)")
    batch.add_argument("--max-clip-operations", type=int, metavar="N",
                       help="google: Veo operations in flight at once, across every worker")
    batch.add_argument("--budget", type=float, metavar="USD",
                       help="the most the whole batch may cost")
    batch.add_argument("--video-budget", type=float, metavar="USD",
                       help="the most one video may cost")
    batch.add_argument("--concurrency", type=int, default=4, metavar="N",
                       help="videos at once in this process (default: 4)")
    where = batch.add_mutually_exclusive_group()
    where.add_argument("--processes", type=int, metavar="N",
                       help="run the videos in N processes of this machine")
    where.add_argument("--workers", type=int, metavar="N",
                       help="run the videos on a local Dask cluster of N workers "
                            "(needs avgen[dask])")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the videos on the Dask cluster at ADDRESS (tcp://host:8786)")
    batch.add_argument("-q", "--quiet", action="store_true",
                       help="print only the table of results")

    commands.add_parser("presets", help="list the output presets")

    models = commands.add_parser(
        "models", help="list the Google models avgen knows (--check: ask the service)",
        description="List the Google models of avgen's catalogue: kind, status on each "
                    "surface, dates, price and which are the defaults. With --check, ask "
                    "the service (models.list, free) which models your credentials can use, "
                    "and say which of the models a run would use would fail.")
    models.add_argument("--kind", choices=("text", "image", "speech", "video"),
                        help="only models of this kind")
    models.add_argument("--all", action="store_true",
                        help="also the models shut down everywhere")
    models.add_argument("--check", action="store_true",
                        help="ask the service which models your credentials can use")
    models.add_argument("--model", action="append", default=[], metavar="ROLE=ID",
                        help="with --check: a model you would choose (roles: "
                             f"{', '.join(MODEL_ROLES)}; repeatable)")

    voices = commands.add_parser("voices", help="list the Piper voices installed and known")
    voices.add_argument("--language", metavar="CODE",
                        help="only voices of this language (he, en_GB …)")
    voices.add_argument("--refresh", action="store_true",
                        help="fetch the catalogue of voices again")

    mcp = commands.add_parser(
        "mcp", help="serve avgen to AI assistants over the Model Context Protocol",
        description="Serve avgen's tools (estimate_video, make_video, video_status …) over "
                    "MCP: stdio by default, or streamable HTTP with --http. Needs avgen[mcp].")
    mcp.add_argument("--root", default="outputs", metavar="DIR",
                     help="the folder every session is made in (default: outputs)")
    mcp.add_argument("--agents", default=None,
                     help="agent family (default: google when Google credentials are set, "
                          "else local)")
    mcp.add_argument("--model", action="append", default=[], metavar="ROLE=ID",
                     help="google: the model of a role instead of the default (repeatable)")
    mcp.add_argument("--budget", type=float, metavar="USD",
                     help="the most every call together may spend; without it, videos that "
                          "cost money are refused")
    mcp.add_argument("--concurrency", type=int, default=1, metavar="N",
                     help="videos made at once (default: 1); others wait in the queue")
    mcp.add_argument("--http", metavar="[HOST:]PORT",
                     help="serve streamable HTTP (on 127.0.0.1 unless HOST is given) "
                          "instead of stdio")

    docs = commands.add_parser("docs", help="build the HTML API reference (needs avgen[dev])")
    docs.add_argument("--out", type=Path, default=Path("docs", "api"), metavar="DIR",
                      help="output folder (default: docs/api)")
    docs.add_argument("--check", action="store_true",
                      help="only check that every public name has a docstring")
    return parser


def _agent_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--agents", default=None,
                         help="agent family: local, google, stock, or a plugin's name (default: "
                              "google when Google credentials are set, else local)")
    command.add_argument("--model", action="append", default=[], metavar="ROLE=ID",
                         help="google: the model of a role instead of the default (roles: "
                              f"{', '.join(MODEL_ROLES)}; repeatable; avgen models lists "
                              "them)")
    command.add_argument("--no-cache", action="store_true",
                         help="google, stock: do not reuse assets or searches kept by "
                              "earlier runs")


def _agents(args: argparse.Namespace) -> tuple[AgentSet, str]:
    """The agents the command line asks for, and a line saying which they are."""
    name = agent_family(args)
    options: dict[str, Any] = {}
    if getattr(args, "images", None):
        if name != "local":
            raise UsageError("images", f"--images works with the local agents, not {name!r} "
                             "(add --agents local)")
        options["images"] = args.images
    media = getattr(args, "media", None)
    sources = getattr(args, "sources", None)
    if media and name == "local" and sources is None:
        options["media"] = media  # the local family's own pictures
    if name in ("google", "stock") and args.no_cache:
        options["cache"] = False
    options.update(google_models(args, name))
    agents = load_agents(name, **options)
    if sources is not None or (media and "media" not in options):
        agents = _ordered_sources(agents, media, sources, no_cache=bool(args.no_cache))
    connection = getattr(agents.script_writer, "connection", None)
    where = f" ({connection.describe()})" if connection is not None else ""
    chosen = ", ".join(f"{role.replace('_', ' ')}={agent}"
                       for role, agent in agents.names().items() if agent)
    missing = [role.replace("_", " ") for role, agent in agents.names().items() if not agent]
    line = f"agents: {name}{where}: {chosen}"
    if missing:
        line += f"; none: {', '.join(missing)}"
    return agents, line


SOURCE_NAMES = ("media", "clips", "images", "pexels", "pixabay")
"""What ``--sources`` lists."""


def _ordered_sources(agents: AgentSet, media: str | None, sources: str | None, *,
                     no_cache: bool) -> AgentSet:
    """``agents`` with its picture sources in the order ``--sources`` gives (default:
    the ``--media`` folder, then the family's clips and images), the card last.

    Raises:
        UsageError: An unknown or repeated name, ``media`` without ``--media``, or a
            family without the clips or images named.
    """
    names = ([n.strip().lower() for n in sources.split(",")] if sources is not None
             else ["media", "clips", "images"])
    if not any(names) or not all(names):
        raise UsageError("sources", f"lists an empty name ({sources!r}); give names from "
                         f"{', '.join(SOURCE_NAMES)}, separated by commas")
    unknown = [n for n in names if n not in SOURCE_NAMES]
    if unknown:
        raise UsageError("sources", f"{', '.join(map(repr, unknown))} is not a source; "
                         f"choose from {', '.join(SOURCE_NAMES)} (the card always comes last)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError("sources", f"names {', '.join(repeated)} more than once")
    if "media" in names and not media:
        raise UsageError("sources", "lists media but no --media DIR is given")
    if media and "media" not in names:
        raise UsageError("sources", "--media DIR is given but --sources leaves media out")
    chain: list[Any] = []
    for name in names:
        if name == "media" and media:
            from avgen.agents.local import MediaLibrary

            library = MediaLibrary(media)
            chain += [library.clips, library.images]
        elif name in ("clips", "images"):
            own = agents.clip_generator if name == "clips" else agents.image_generator
            if own is None:
                if sources is None:
                    continue  # the default order skips what the family does not have
                raise UsageError("sources", f"these agents have no {name} (their "
                                 "pictures: " + (", ".join(
                                     agent_name(a) for _, a in agents.sources()) or "none")
                                 + ")")
            chain.append(own)
        else:
            from avgen.agents._assets.cache import AssetCache
            from avgen.agents.stock import PexelsClips, PexelsImages, PixabayClips, PixabayImages
            from avgen.agents.stock._common import default_cache_dir

            cache = None if no_cache else AssetCache(default_cache_dir())
            kinds: tuple[Any, Any] = ((PexelsClips, PexelsImages) if name == "pexels"
                                      else (PixabayClips, PixabayImages))
            chain += [kind(cache=cache) for kind in kinds]  # keys from the environment
    return attrs.evolve(agents, visuals=tuple(chain))


def _serve_mcp(args: argparse.Namespace) -> int:
    """``avgen mcp``: serve until the client or a signal ends it."""
    from avgen._desk import VideoDesk
    from avgen._mcp import describe, serve
    from avgen._validate import check_budget, number

    try:
        family = agent_family(args)
        number("concurrency", args.concurrency, integer=True, low=1, high=64)
        if args.http is not None:
            _host, _, port = args.http.rpartition(":")
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError("--http", f"must be [HOST:]PORT, not {args.http!r}")
        desk = VideoDesk(args.root, family=family,
                         agent_options=google_models(args, family),
                         budget=check_budget(args.budget), concurrency=args.concurrency)
        print(f"avgen mcp: {describe(desk)}", file=sys.stderr)
        serve(desk, args.http)
    except UsageError as exc:
        print(f"avgen: error: {exc}", file=sys.stderr)
        return 2
    except AvgenError as exc:
        print(f"avgen: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _build_docs(out: Path, check_only: bool) -> int:
    """``avgen docs``: refuse undocumented public names, then build the pdoc reference."""
    from avgen import _docs

    try:
        return _docs.run(out, check_only=check_only)
    except AvgenError as exc:  # ConfigurationError: pdoc is not installed
        print(f"avgen: error: {exc}", file=sys.stderr)
        return 1


def _list_voices(language: str | None, refresh: bool) -> int:
    """``avgen voices``: the bundled voice, the fetched ones, and the catalogue's."""
    from avgen._language import base
    from avgen.agents.local._voices import VoiceShelf, describe

    def wanted(code: str) -> bool:
        return language is None or code.lower().replace("-", "_").startswith(
            language.lower().replace("-", "_")) or base(code) == base(language)

    shelf = VoiceShelf()
    print("installed:")
    if wanted("en_US"):
        print(f"  {'joe':<32} English (United States), medium — bundled, the default")
    for name, path in shelf.installed().items():
        if wanted(name.split("-")[0]):
            print(f"  {name:<32} {path}")
    try:
        catalogue = shelf.catalogue(refresh=refresh)
    except AvgenError as exc:
        print(f"avgen: cannot list the known voices: {exc}", file=sys.stderr)
        return 0
    print(f"known ({shelf.url}; --voice NAME fetches one once):")
    for name in sorted(catalogue):
        entry = catalogue[name]
        if isinstance(entry, dict) and wanted(name.split("-")[0]):
            print(f"  {name:<32} {describe(entry)}")
    return 0


def _hint(exc: AvgenError, family: str) -> str | None:
    """What to suggest when a run with remote agents failed because of them."""
    if family == "local":
        return None
    link: BaseException | None = exc
    for _ in range(10):
        if link is None:
            return None
        if isinstance(link, AgentError):
            return ("avgen: hint: to make the video on this machine instead (offline, at no "
                    "cost), add --agents local")
        link = link.__cause__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``avgen`` command; returns the exit status (0 ok, 1 failed, 2 bad input,
    130 interrupted)."""
    args = _parser().parse_args(argv)
    if args.command == "presets":
        for name, p in PRESETS.items():
            print(f"{name:8} {p.width}x{p.height} {p.fps} fps")
        return 0
    if args.command == "docs":
        return _build_docs(args.out, args.check)
    if args.command == "voices":
        return _list_voices(args.language, args.refresh)
    if args.command == "models":
        return run_models_command(args)
    if args.command == "mcp":
        return _serve_mcp(args)
    if args.command == "report":
        from avgen._report import write_report

        try:
            print(write_report(args.path))
        except UsageError as exc:
            print(f"avgen: error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "batch":
        from avgen._batch_cli import run_batch_command

        return run_batch_command(args)
    bar = _ProgressBar(sys.stderr, args.quiet)
    with console(bar):
        return _run(args, bar)


def _scripts(args: argparse.Namespace) -> tuple[str | None, dict[str, str]]:
    """The ``--script`` files: the original's text, and the translations by language
    (the second and later files, in the order of ``--languages``).

    Raises:
        UsageError: More files than languages, or several without ``--languages``.
    """
    files: list[str] = args.script or []
    if not files:
        return None, {}
    languages = [tag.strip() for tag in (args.languages or "").split(",") if tag.strip()]
    if len(files) > max(1, len(languages)):
        raise UsageError("--script", f"is given {len(files)} times for "
                         f"{len(languages) or 1} language{'s' if len(languages) > 1 else ''}"
                         ": give one script, then one translation per language of "
                         "--languages after the first, in its order")
    if len([name for name in files if name == "-"]) > 1:
        raise UsageError("--script", "- (stdin) can be given once")
    texts = [_read_script(name) for name in files]
    return texts[0], dict(zip(languages[1:], texts[1:], strict=False))


def _caption_style(args: argparse.Namespace) -> CaptionStyle:
    """The named style with the ``--caption-*`` changes made to it."""
    changes = {field: value for field, value in (
        ("font", args.caption_font), ("font_size", args.caption_size),
        ("position", args.caption_position)) if value is not None}
    return caption_style(args.captions).replace(**changes)


def _soundtrack(args: argparse.Namespace) -> Soundtrack:
    """The ``--music``, ``--music-volume`` and ``--loudness`` options as a soundtrack."""
    chosen = {} if args.music_volume is None else {"music_volume": args.music_volume}
    return Soundtrack(music=args.music, loudness=args.loudness, **chosen)


def _characters(args: argparse.Namespace) -> list[Character]:
    """The ``--character`` and ``--character-picture`` options as characters.

    Raises:
        UsageError: An option is not ``NAME=VALUE``, or a picture names no character.
    """
    def pairs(option: str, values: list[str]) -> dict[str, tuple[str, str]]:
        """NAME=VALUE options by the name's case-folded form: (name, value)."""
        found: dict[str, tuple[str, str]] = {}
        for value in values:
            name, sign, rest = value.partition("=")
            if not sign or not name.strip() or not rest.strip():
                raise UsageError(option, f"must be NAME=VALUE, not {value!r}")
            if name.strip().casefold() in found:
                raise UsageError(option, f"{name.strip()!r} is given twice")
            found[name.strip().casefold()] = (name.strip(), rest.strip())
        return found

    looks = pairs("--character", args.character)
    pictures = pairs("--character-picture", args.character_picture)
    for key, (name, _) in pictures.items():
        if key not in looks:
            given = ", ".join(shown for shown, _ in looks.values()) or "none"
            raise UsageError("--character-picture", f"{name!r} is not a --character "
                             f"(given: {given})")
    return [Character(name, look, reference=pictures[key][1] if key in pictures else None)
            for key, (name, look) in looks.items()]


@contextlib.contextmanager
def _notes_shown_once() -> Iterator[None]:
    """The run's notes are lines of the progress display: not warnings as well."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"avgen\._run\Z")
        yield


def _run(args: argparse.Namespace, bar: _ProgressBar) -> int:
    """``avgen make`` and ``avgen resume``."""
    if args.command == "resume":
        bar.session = args.session
    try:
        if args.command == "make" and not args.script:
            _check_topic(args.topic)
        if args.command == "resume" and args.languages:
            languages = args.languages
            translations = {}
            if args.script:
                tags = [tag.strip() for tag in languages.split(",") if tag.strip()]
                if len(args.script) >= len(tags):
                    raise UsageError("--script", "gives the new languages' translations, "
                                     "one per language at the end of --languages")
                new = tags[len(tags) - len(args.script):]
                translations = {tag: _read_script(name)
                                for tag, name in zip(new, args.script, strict=True)}
            changes: dict[str, Any] = {"languages": languages, "translations": translations}
        else:
            changes = {}
        agents, line = _agents(args)
        generator = VideoGenerator(agents, output_dir=getattr(args, "out", "outputs"),
                                   on_event=bar, budget=args.budget)
        if not args.quiet:
            print(line, file=sys.stderr)
        if args.command == "resume":
            with _notes_shown_once():
                video = generator.resume_sync(args.session, **changes)
        else:
            script, translations = _scripts(args)
            request = VideoRequest(topic=args.topic, script=script, preset=args.preset,
                                   voice=args.voice, title=args.title,
                                   language=args.language, languages=args.languages,
                                   translations=translations,
                                   captions=not args.no_captions, fit=args.fit,
                                   caption_style=_caption_style(args),
                                   transition=args.transition,
                                   duration=args.duration, max_shot=args.max_shot,
                                   style=args.style, characters=_characters(args),
                                   soundtrack=_soundtrack(args))
            if args.estimate:
                print(generator.estimate(request))
                return 0
            with _notes_shown_once():
                video = generator.generate_sync(request)
    except UsageError as exc:
        bar.close()
        print(f"avgen: error: {exc}", file=sys.stderr)
        return 2
    except (GenerationError, AvgenError) as exc:
        bar.close()
        print(f"avgen: failed: {exc}", file=sys.stderr)
        hint = _hint(exc, agent_family(args))
        if hint:
            print(hint, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bar.close()
        if bar.session:
            print(f"avgen: interrupted; resume with `avgen resume {shlex.quote(bar.session)}`",
                  file=sys.stderr)
        else:
            print("avgen: interrupted before the run started; nothing to resume",
                  file=sys.stderr)
        return 130
    bar.close()
    for made in video.versions.values() or (video,):  # each language's video, or the one
        print(made.path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
