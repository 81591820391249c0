"""What the ``avgen`` commands share on the terminal: a line-or-bar display, warnings and
log records as one concise line each, and the agent family the environment picks."""

from __future__ import annotations

__docformat__ = "google"

import argparse
import contextlib
import logging
import warnings
from collections.abc import Iterator
from typing import TextIO

__all__: list[str] = []


class Terminal:
    """Where the command draws: lines above a bar redrawn in place on a terminal, plain
    lines elsewhere (logs, CI)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream, self.quiet = stream, quiet
        self.tty = stream.isatty()
        self.drawn = False
        self._said: set[str] = set()

    def _bar(self, fraction: float, label: str) -> None:
        width = 30
        filled = round(fraction * width)
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {label}")
        self.stream.flush()
        self.drawn = True

    def _line(self, text: str) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, text: str) -> None:
        """Print ``text`` on a line of its own above the bar, once (a repeat is dropped)."""
        if text not in self._said:
            self._said.add(text)
            self._line(text)

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.drawn = False


class ConsoleHandler(logging.Handler):
    """Log records of WARNING and above as one ``avgen: warning: ...`` line each. A run's own
    lines (tagged with its session) are left to the progress display, which shows them."""

    def __init__(self, bar: Terminal) -> None:
        super().__init__(logging.WARNING)
        self.bar = bar

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "avgen_session"):
            return
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                text += f": {type(error).__name__}: {error}"
            self.bar.say(f"avgen: {record.levelname.lower()}: {text}")
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def console(bar: Terminal) -> Iterator[None]:
    """The command's own terminal output while it runs, set up for this process only (the
    library configures no logging): warnings and log records become one concise line each,
    said once, without source lines; stamina's own retry log lines are off, since the run's
    ``retry:`` lines say the same with the reason. Everything is restored on exit."""
    import stamina.instrumentation

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        bar.say(f"avgen: warning: {message}")

    handler = ConsoleHandler(bar)
    root = logging.getLogger()
    hooks = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([])
    root.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        root.removeHandler(handler)
        stamina.instrumentation.set_on_retry_hooks(hooks)


def agent_family(args: argparse.Namespace) -> str:
    """The agent family the command line asks for (google when credentials are set)."""
    from avgen.agents.google._connection import credentials_present

    return str(args.agents or ("google" if credentials_present() else "local"))
