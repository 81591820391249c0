"""The ``avgen`` command: a thin shell over the public API.

::

    avgen make "A TOPIC"                      # a title sequence (the local agents need a script)
    avgen make --script FILE [--preset tiktok] [--out outputs] [--voice joe] [--title T]
    avgen resume SESSION_DIR
    avgen presets
"""

from __future__ import annotations

__docformat__ = "google"

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from avgen._version import __version__
from avgen.errors import AvgenError, GenerationError, UsageError
from avgen.generator import Event, VideoGenerator
from avgen.models import PRESETS, TRANSITION_STYLES, Soundtrack, VideoRequest

__all__ = ["main"]


class _ProgressBar:
    """Draws run progress on a terminal; prints plain lines elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream, self.quiet = stream, quiet
        self.tty = stream.isatty()
        self.drawn = False

    def __call__(self, event: Event) -> None:
        if self.quiet:
            return
        if event.kind in ("note", "fallback", "failed"):
            self._line(f"{event.kind}: {event.message}")
            return
        if self.tty:
            width = 30
            filled = round(event.progress * width)
            label = "composing" if event.kind == "compose" else event.message[:48]
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] "
                              f"{event.progress:4.0%} {label:<48}")
            self.stream.flush()
            self.drawn = True
        elif event.kind != "compose" or event.message != "composing":
            self._line(f"[{event.progress:4.0%}] {event.message}")

    def _line(self, text: str) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False


def _read_script(value: str) -> str:
    if value == "-":
        return sys.stdin.read()
    path = Path(value).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError("script", f"cannot read {value!r}: {reason}; give a readable UTF-8 "
                         "text or Markdown file, or - for standard input") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avgen", description="Turn a topic or a script into a narrated, captioned video.")
    parser.add_argument("--version", action="version", version=f"avgen {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    make = commands.add_parser("make", help="make a video")
    make.add_argument("topic", nargs="?", help="what the video is about")
    make.add_argument("--script", metavar="FILE",
                      help="narration as text or Markdown (paragraphs become scenes); "
                           "- reads stdin")
    make.add_argument("--preset", default="draft",
                      help=f"output format: {', '.join(PRESETS)} (default: draft)")
    make.add_argument("--out", default="outputs", metavar="DIR",
                      help="folder for session folders (default: outputs)")
    make.add_argument("--voice", help="narrator voice (local: 'joe' or a Piper .onnx path)")
    make.add_argument("--title", help="video title (default: the script's first heading)")
    make.add_argument("--images", nargs="+", metavar="IMAGE",
                      help="your own pictures, one per scene in turn (local agents)")
    make.add_argument("--no-captions", action="store_true", help="do not burn captions in")
    make.add_argument("--transition", default="cut",
                      help=f"between scenes: {', '.join(TRANSITION_STYLES)} (default: cut)")
    make.add_argument("--fit", choices=("cover", "blur"), default="cover",
                      help="pictures of another shape: crop (cover) or blur-pad (blur)")
    make.add_argument("--music", metavar="FILE", help="background music, ducked under the voice")
    make.add_argument("--loudness", type=float, default=-14.0, metavar="LUFS",
                      help="loudness of the final mix (default: -14)")
    make.add_argument("--agents", default="local", help="agent family (default: local)")
    make.add_argument("-q", "--quiet", action="store_true", help="print only the video path")

    resume = commands.add_parser("resume", help="finish an interrupted run")
    resume.add_argument("session", help="the session folder")
    resume.add_argument("--agents", default="local", help="agent family (default: local)")
    resume.add_argument("-q", "--quiet", action="store_true", help="print only the video path")

    commands.add_parser("presets", help="list the output presets")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``avgen`` command; returns the exit status (0 ok, 1 failed, 2 bad input)."""
    args = _parser().parse_args(argv)
    if args.command == "presets":
        for name, p in PRESETS.items():
            print(f"{name:8} {p.width}x{p.height} {p.fps} fps")
        return 0
    bar = _ProgressBar(sys.stderr, args.quiet)
    try:
        options = {"images": args.images} if getattr(args, "images", None) else {}
        from avgen.agents.registry import load_agents

        generator = VideoGenerator(load_agents(args.agents, **options),
                                   output_dir=getattr(args, "out", "outputs"), on_event=bar)
        if args.command == "resume":
            video = generator.resume_sync(args.session)
        else:
            script = _read_script(args.script) if args.script else None
            request = VideoRequest(topic=args.topic, script=script, preset=args.preset,
                                   voice=args.voice, title=args.title,
                                   captions=not args.no_captions, fit=args.fit,
                                   transition=args.transition,
                                   soundtrack=Soundtrack(music=args.music,
                                                         loudness=args.loudness))
            if not args.quiet:
                names = ", ".join(f"{k.replace('_', ' ')}={v}"
                                  for k, v in generator.agents.names().items() if v)
                print(f"agents: {names}", file=sys.stderr)
            video = generator.generate_sync(request)
    except UsageError as exc:
        bar.close()
        print(f"avgen: error: {exc}", file=sys.stderr)
        return 2
    except (GenerationError, AvgenError) as exc:
        bar.close()
        print(f"avgen: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        bar.close()
        print("avgen: interrupted; resume with `avgen resume SESSION_DIR`", file=sys.stderr)
        return 130
    bar.close()
    print(video.path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
