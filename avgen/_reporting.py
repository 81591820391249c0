"""What a run tells its observers: `RunEvent`s with a progress that never moves back, and
the same lines in the session's log."""

from __future__ import annotations

__docformat__ = "google"

import logging
from collections.abc import Callable
from typing import Any

import attrs

from avgen._session import Session
from avgen.errors import AvgenError
from avgen.resilience import ResilienceEvent

__all__ = ["RunEvent"]


@attrs.frozen
class RunEvent:
    """Something that happened during a run, for progress bars and observers."""

    kind: str
    """``session``, ``script``, ``narration``, ``visual``, ``fallback``, ``retry``,
    ``compose``, ``note``, ``version`` (in several languages: one language's video is
    made; ``data["language"]``, ``data["path"]``), ``done`` or ``failed``. With several
    languages, the events of one language's translation, narration and composition carry
    ``data["language"]``."""
    message: str
    """A human-readable line."""
    progress: float
    """Overall fraction done, 0.0 to 1.0."""
    scene: int | None = None
    """The scene concerned, if any: its `avgen.Scene.index`, from 0 (a message names it as
    people count, from 1: ``scene 1`` is index 0)."""
    data: dict[str, Any] = attrs.field(factory=dict)
    """Extra facts (paths, tiers, errors)."""


EventHandler = Callable[[RunEvent], None]
"""A callable that receives every `RunEvent` of a run."""


class Reporter:
    """The events of one run: the script is the first 5 % of the progress, the scenes the
    next 55 % (each half done by its narration, half by its picture), the composition the
    rest."""

    SCRIPT, SCENES = 0.05, 0.55

    def __init__(self, session: Session, send: EventHandler) -> None:
        self.session = session
        self.send = send
        self.progress = 0.0
        self.scene_count = 1
        self.parts = 2
        """What each scene waits for: its picture and a narration per language."""
        self.versions = (0, 1)
        """The version being composed, and how many there are."""
        self._scenes_done = 0.0
        self.composer_notes: list[str] = []
        self.notes: list[str] = []
        """Every note of the run, in order."""

    def emit(self, kind: str, message: str, progress: float | None = None,
             scene: int | None = None, *, quiet: bool = False, **data: Any) -> None:
        """Send an event (at ``progress``, or where the run is) and log it unless quiet."""
        self.progress = max(self.progress, self.progress if progress is None else progress)
        if kind == "note":
            self.notes.append(message)
        if not quiet:
            level = logging.WARNING if kind in ("fallback", "failed") else logging.INFO
            self.session.log(level, "%s", message)
        self.send(RunEvent(kind, message, self.progress, scene, data))

    def scripted(self, message: str) -> None:
        """The script is written (or reused)."""
        self.emit("script", message, self.SCRIPT)

    def half_scene(self, kind: str, scene: int, what: str, **data: Any) -> None:
        """A scene's narration (of one language) or picture is ready."""
        self._scenes_done += 1 / self.parts
        progress = self.SCRIPT + self.SCENES * self._scenes_done / self.scene_count
        self.emit(kind, f"scene {scene + 1}: {what}", progress, scene, **data)

    def fallback(self, scene: int, tier: str, exc: AvgenError) -> None:
        """A picture tier failed; the next one is tried."""
        self.emit("fallback", f"scene {scene + 1}: {tier} failed, falling back: {exc}", None,
                  scene, tier=tier, error=str(exc))

    def composing(self) -> _Composing:
        """A new progress callback for the composer: call it with the fraction done, 0.0
        to 1.0 (not logged: it ticks often); its ``note(message, **data)`` sends a
        ``note`` event (logged), for what the composer has to tell (a loudness it could not
        reach); its ``measured(integrated_lufs, true_peak_dbtp)`` takes the finished
        file's sound as the composer measured it."""
        return _Composing(self)

    def compose_progress(self, fraction: float) -> None:
        """The composer's progress, 0.0 to 1.0 (not logged: it ticks often)."""
        base = self.SCRIPT + self.SCENES
        done, count = self.versions
        self.emit("compose", "composing", base + (1 - base) * (done + fraction) / count,
                  quiet=True)

    def resilience(self, event: ResilienceEvent) -> None:
        """A decorator's event: retries are worth telling."""
        if event.kind == "retry.attempt":
            data = event.data
            self.emit("retry", f"{event.source}: attempt {data.get('attempt')} failed "
                      f"({data.get('error')}); retried after {data.get('delay', 0):.1f} s",
                      **dict(data))


@attrs.define
class _Composing:
    """A run's progress callback for its composer, which can also take notes and the
    finished file's sound as the composer measured it."""

    reporter: Reporter
    sound: tuple[float | None, float | None] | None = None
    """The finished file's sound as the composer measured it (`measured`), or ``None``."""

    def __call__(self, fraction: float) -> None:
        self.reporter.compose_progress(fraction)

    def note(self, message: str, **data: Any) -> None:
        """Tell the run's observers (a ``note`` event) and the session's log."""
        self.reporter.composer_notes.append(message)
        self.reporter.emit("note", message, **data)

    def measured(self, integrated_lufs: float | None, true_peak_dbtp: float | None) -> None:
        """The finished file's sound as ffmpeg's R128 meter measures it (``ebur128`` with
        ``peak=true``), measured by the composer itself, e.g. on the sound it then joined
        to the picture by stream copy: the run does not measure the file again."""
        self.sound = (integrated_lufs, true_peak_dbtp)
