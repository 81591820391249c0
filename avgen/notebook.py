"""Notebook helpers: a progress bar for `avgen.VideoGenerator` runs.

::

    from avgen import VideoGenerator
    from avgen.notebook import ProgressBar

    generator = VideoGenerator()
    with ProgressBar(generator):          # subscribes now, unsubscribes and closes at the end
        video = await generator.generate(script="Hello from a notebook.", preset="draft")
    video                                 # the last expression of a cell: an inline player

In Jupyter the bar is a widget (tqdm's notebook bar, drawn with ipywidgets); anywhere else,
or without ipywidgets, it is tqdm's text bar. Install both with the ``notebook`` extra
(``python -m pip install "avgen[notebook]"``). Nothing is imported until the first event,
so ``import avgen.notebook`` costs nothing.

How a finished `avgen.Video` displays in a notebook (embedded up to
`avgen.Video.embed_limit`) is described in `avgen.Video`.
"""

from __future__ import annotations

__docformat__ = "google"

import importlib
import importlib.util
import threading
from types import TracebackType
from typing import Any, Self, TextIO

from avgen._generator import VideoGenerator
from avgen._progress import RunProgress, shorten
from avgen._reporting import RunEvent
from avgen.errors import ConfigurationError

__all__ = ["ProgressBar"]

_TOTAL = 100
_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]{postfix}"


class ProgressBar:
    """An event handler that draws a run's progress as a progress bar.

    Pass it as ``VideoGenerator(on_event=ProgressBar())``, subscribe it with
    ``generator.subscribe(bar)``, or give it the generator and use it as a context manager,
    which subscribes it and, at the end, unsubscribes and closes it (a run that failed or
    was interrupted leaves the bar short of 100 %, red in a notebook).

    Each run gets its own bar, opened by its first event and closed by its ``done`` or
    ``failed`` event (one run at a time: give runs that overlap a bar each); the label
    shows the latest message, and notes, fallbacks, retries and failures are also printed
    above the bar in full.

    Args:
        generator: A generator to subscribe to now (and unsubscribe from on `close`).
        description: The text before the bar.
        file: Where a text bar is written (default: tqdm's, standard error). Ignored by
            the notebook widget.
        widget: ``None`` (the default) picks the notebook widget in a Jupyter kernel with
            ipywidgets and the text bar elsewhere; ``False`` always draws text; ``True``
            always the widget.
        leave: Keep each finished bar on screen (else it disappears when it closes).

    Raises:
        ConfigurationError: tqdm (or, with ``widget=True``, ipywidgets) is not installed.

    Example:
        >>> from avgen import VideoGenerator
        >>> from avgen.notebook import ProgressBar
        >>> generator = VideoGenerator()
        >>> with ProgressBar(generator):                    # doctest: +SKIP
        ...     video = generator.generate_sync(script="Hello. This is avgen.")
    """

    def __init__(self, generator: VideoGenerator | None = None, *, description: str = "avgen",
                 file: TextIO | None = None, widget: bool | None = None,
                 leave: bool = True) -> None:
        self.description = description
        """The text before the bar."""
        self.file = file
        """Where a text bar is written (``None``: tqdm's default, standard error)."""
        self.widget = widget
        """The notebook widget (``True``), the text bar (``False``) or either (``None``)."""
        self.leave = leave
        """Whether finished bars stay on screen."""
        self.runs = 0
        """How many bars (runs) this handler has opened."""
        needed = ("tqdm", "ipywidgets") if widget else ("tqdm",)
        missing = [name for name in needed if importlib.util.find_spec(name) is None]
        if missing:  # say so now: a handler's errors during a run are only logged
            raise ConfigurationError(
                f"the progress bar needs {' and '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed: "
                "install the notebook extra, e.g. `python -m pip install \"avgen[notebook]\"`")
        self._bar: Any = None
        self._core = RunProgress()
        self._lock = threading.Lock()  # the composer's progress may come from a thread
        self._unsubscribe = generator.subscribe(self) if generator is not None else None

    # -- the handler ---------------------------------------------------------------------

    def __call__(self, event: RunEvent) -> None:
        """Show ``event``: move the bar to its progress and its message to the label."""
        with self._lock:
            step = self._core.follow(event)
            if step.new_run and self._bar is not None:
                self._finish()  # a new run while the last one's bar is still open
            if self._bar is None:
                self._bar = self._open()
            bar = self._bar
            if step.line is not None:
                bar.write(step.line, file=self.file)
            if step.label is not None:  # the composer's ticks keep their label
                bar.set_postfix_str(shorten(step.label), refresh=False)
            target = round(step.progress * _TOTAL)
            if target > bar.n:
                bar.update(target - bar.n)  # redraws (at most every 0.1 s)
            elif step.label is not None:
                bar.refresh()
            if step.finished:
                self._finish()

    # -- state ---------------------------------------------------------------------------

    @property
    def progress(self) -> float:
        """The latest fraction done, 0.0 to 1.0 (of the current or the last run)."""
        return self._core.progress

    @property
    def closed(self) -> bool:
        """True when no bar is open: before the first event, and after each run ends."""
        return self._bar is None

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the open bar, if any, and unsubscribe from the generator given, if any.

        Safe to call twice. A bar closed before its run reached 100 % stays as it was (red
        in a notebook).
        """
        with self._lock:
            self._finish()
        if self._unsubscribe is not None:
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            unsubscribe()

    def __enter__(self) -> Self:
        """Use the handler in a ``with`` block; `close` is called at its end."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        """Close the bar and unsubscribe (exceptions propagate)."""
        self.close()

    # -- private -------------------------------------------------------------------------

    def _open(self) -> Any:
        module = {None: "tqdm.auto", False: "tqdm.std", True: "tqdm.notebook"}[self.widget]
        try:
            bar = importlib.import_module(module).tqdm(
                total=_TOTAL, desc=self.description, file=self.file, leave=self.leave,
                bar_format=_BAR_FORMAT)
        except ImportError as exc:  # no tqdm; or widget=True without ipywidgets
            raise ConfigurationError(
                f"the progress bar needs tqdm (and ipywidgets for the notebook widget): {exc}; "
                "install the notebook extra, e.g. `python -m pip install \"avgen[notebook]\"`"
            ) from exc
        self.runs += 1
        return bar

    def _finish(self) -> None:
        if self._bar is not None:
            bar, self._bar = self._bar, None
            bar.close()
