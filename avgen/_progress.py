"""What a progress display makes of a run's events: one core for the terminal bar of the
command line and the tqdm bar of `avgen.notebook`.

A display asks `RunProgress.follow` what an event means — a new run, a line to print above
the bar, a new label, the fraction done, the end of the run — and only draws.
"""

from __future__ import annotations

__docformat__ = "google"

import attrs

from avgen._reporting import RunEvent

__all__ = []

LABEL_WIDTH = 60
"""Longest label, in characters."""

# Events worth a line of their own above the bar; the others only update its label.
_LOGGED = frozenset({"note", "fallback", "retry", "failed"})


def shorten(message: str, width: int = LABEL_WIDTH) -> str:
    """``message`` in at most ``width`` characters, cut in the middle (so a long path keeps
    its file name)."""
    if len(message) <= width:
        return message
    keep = width - 1
    return f"{message[:keep // 3]}…{message[len(message) - (keep - keep // 3):]}"


@attrs.frozen
class Step:
    """What one event means for the display."""

    new_run: bool
    """A run starts: open a new bar (closing one left open)."""
    line: str | None
    """A line to print above the bar, if any."""
    label: str | None
    """The bar's new label (``None``: keep it: the composer's ticks)."""
    progress: float
    """The fraction done: never backwards, held where a failed run stopped."""
    finished: bool
    """The run ended (done or failed): close the bar."""


class RunProgress:
    """Follows the events of one run after another."""

    def __init__(self) -> None:
        self.progress = 0.0
        """The latest fraction done, 0.0 to 1.0."""
        self.running = False
        """True between a run's first event and its end."""

    def follow(self, event: RunEvent) -> Step:
        """What ``event`` means for the display.

        The events of a batch (`avgen.VideoGenerator.generate_many`) make one bar for the
        batch: ``batch.*`` events move it; an item's own events only print their notes,
        fallbacks, retries and failures above it.
        """
        if "item" in event.data and not event.kind.startswith("batch"):
            line = (f"{event.kind}: {event.message}"
                    if event.kind in _LOGGED else None)
            return Step(new_run=False, line=line, label=None, progress=self.progress,
                        finished=False)
        new_run = not self.running or event.kind in ("session", "batch.start")
        if new_run:
            self.progress, self.running = 0.0, True
        if event.kind != "failed":  # a failed run's bar stays where it stopped
            self.progress = max(self.progress, min(1.0, max(0.0, event.progress)))
        tick = event.kind == "compose" and event.message == "composing"
        finished = event.kind in ("done", "failed", "batch.done")
        if finished:
            self.running = False
        return Step(new_run=new_run,
                    line=f"{event.kind}: {event.message}" if event.kind in _LOGGED else None,
                    label=None if tick else event.message, progress=self.progress,
                    finished=finished)
