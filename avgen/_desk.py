"""The videos of one long-lived server (``avgen mcp``): made one or a few at a time in one
root folder, under one budget, started in the background and asked about by id.

A `VideoDesk` is what the MCP tools call; it knows nothing of MCP. Everything it is told —
a session id, a title, a script, a preset — is checked before it reaches a path, a paid
call or the queue, and every folder it names lies inside its root (symlinks resolved).
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from avgen._generator import VideoGenerator, _BatchMaker
from avgen._models import _LANGUAGE_TAG, MAX_LANGUAGE_CHARS, MAX_LANGUAGES, VideoRequest
from avgen._progress import RunProgress
from avgen._reporting import RunEvent
from avgen._session import Session, read_manifest
from avgen.errors import AvgenError, UsageError
from avgen.resilience._shared import LocalCoordination, Shared, sharing

__all__: list[str] = []

SESSION_ID = re.compile(r"session_\d{8}_\d{6}_[0-9a-f]{8}")
"""A session's folder name, as `avgen.Session.create` makes it."""
_DONE = ("done", "failed")


def _spent(root: Path) -> float:
    """What the sessions under ``root`` paid, by their manifests."""
    total = 0.0
    for manifest in root.glob("session_*/metadata/manifest.json"):
        with contextlib.suppress(AvgenError, TypeError, AttributeError):
            cost = read_manifest(manifest).get("cost") or {}
            spent = float(cost.get("spent") or 0.0)
            if math.isfinite(spent) and spent > 0:
                total += spent
    return total


@attrs.define
class _Job:
    """A video this server started: its task, and what its events said."""

    session: Session
    request: VideoRequest
    task: asyncio.Task[None] | None = None
    status: str = "queued"
    step: str = "queued"
    progress: float = 0.0
    error: str | None = None
    video: Path | None = None
    follower: RunProgress = attrs.field(factory=RunProgress)

    def follow(self, event: RunEvent) -> None:
        shown = self.follower.follow(event)
        self.progress = shown.progress
        if shown.label is not None:
            self.step = shown.label


class VideoDesk:
    """Starts, tracks, cancels and resumes the videos of one root folder.

    Args:
        root: Where every session is made (created if needed).
        generator: The generator to make the videos with (default: one of ``family``).
        family: The agent family (``"local"``, ``"google"``, a plugin).
        agent_options: Options for the family.
        budget: The most every call of every video together may spend, over the folder's
            whole life (what its sessions paid already counts); ``None``: no paid call.
        concurrency: Videos made at once; more wait in the queue.
        queue_limit: Videos waiting at most besides those being made; more are refused.
    """

    def __init__(self, root: str | Path, generator: VideoGenerator | None = None, *,
                 family: str = "local", agent_options: Mapping[str, Any] | None = None,
                 budget: float | None = None, concurrency: int = 1,
                 queue_limit: int = 20) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.generator = generator or VideoGenerator(family, agent_options=agent_options,
                                                     output_dir=self.root)
        """The generator every video is made with."""
        self.family = family
        """The agent family."""
        self.budget = budget
        """The most everything together may spend (``None``: nothing that costs money)."""
        self.coordination = LocalCoordination()
        self.coordination.open_budget(budget if budget is not None else 0.0,
                                      _spent(self.root))
        self.concurrency = concurrency
        self.queue_limit = queue_limit
        self._turns: asyncio.Semaphore | None = None
        self._jobs: dict[str, _Job] = {}

    # -- checks -------------------------------------------------------------------------

    def request(self, **fields: Any) -> VideoRequest:
        """A `VideoRequest` from tool arguments (``None``: the default).

        Raises:
            UsageError: An argument is not acceptable; the error names it.
        """
        given = {name: value for name, value in fields.items() if value is not None}
        request = VideoRequest(**given)
        self.generator.check(request)
        return request

    def folder(self, session: str) -> Path:
        """The folder of the session called ``session``, inside the root.

        Raises:
            UsageError: ``session`` is not a session id of this server's root.
        """
        if not isinstance(session, str) or not SESSION_ID.fullmatch(session):
            raise UsageError("session", f"must be a session id such as "
                             f"'session_20261204_101500_0a1b2c3d', not {str(session)[:80]!r}")
        folder = (self.root / session).resolve()
        if folder.parent != self.root or not (folder / "metadata" / "manifest.json").is_file():
            raise UsageError("session", f"no session {session!r} in this server's folder "
                             "(list_videos lists them)")
        return folder

    def _room(self, tool: str) -> None:
        """Refuse a video beyond those the server makes at once and lets wait."""
        active = sum(1 for job in self._jobs.values() if job.status not in _DONE)
        if active >= self.concurrency + self.queue_limit:
            raise UsageError(tool, f"{active} videos are running or waiting already (at most "
                             f"{self.concurrency} at once and {self.queue_limit} waiting); "
                             "ask again when one has ended")

    def _paid(self, request: VideoRequest, *, whole: bool = True) -> None:
        """Refuse a request whose calls cost money when the server has no budget, or (for a
        ``whole`` new video) one whose estimate is more than the budget left."""
        estimate = self.generator.estimate(request)
        if self.budget is None and (estimate.total > 0 or estimate.extras_total > 0):
            raise UsageError("budget", f"this video would cost about ${estimate.total:.2f} "
                             "and this server may spend nothing: its operator starts it with "
                             "--budget USD to allow paid calls")
        spent, reserved = self.coordination.spending()
        if whole and self.budget is not None and \
                spent + reserved + estimate.total > self.budget + 1e-9:
            raise UsageError("budget", f"this video would cost about ${estimate.total:.2f}, "
                             f"and ${self.budget - spent - reserved:.2f} of the server's "
                             f"${self.budget:.2f} is left")

    # -- the work -----------------------------------------------------------------------

    def estimate(self, request: VideoRequest) -> dict[str, Any]:
        """What ``request`` would cost, scene by scene, without spending anything."""
        estimate = self.generator.estimate(request)
        scenes = [{"scene": scene, "usd": round(math.fsum(c.usd for c in charges), 6),
                   "charges": [attrs.asdict(c) for c in charges]}
                  for scene, charges in estimate.by_scene().items()]
        spent, reserved = self.coordination.spending()
        return {"total_usd": round(estimate.total, 6),
                "extras_usd": round(estimate.extras_total, 6),
                "extras": [attrs.asdict(c) for c in estimate.extras], "scenes": scenes,
                "budget_left_usd": None if self.budget is None
                else round(self.budget - spent - reserved, 6)}

    def start(self, request: VideoRequest) -> str:
        """Queue ``request``; returns its session id at once.

        Raises:
            UsageError: The queue is full, or the video would cost more than the server
                may spend.
        """
        self._room("make_video")
        self._paid(request)
        session = Session.create(self.root)
        session.manifest.update(request=request.to_dict(root=session.root), status="queued")
        session.manifest.flush()  # on disk before its id is given: a restart resumes it
        job = _Job(session, request)
        self._jobs[session.root.name] = job
        self._launch(job)
        return session.root.name

    def resume(self, session: str) -> str:
        """Finish a session that did not: interrupted, failed or cancelled.

        Raises:
            UsageError: No such session, or it is done, queued or running.
        """
        folder = self.folder(session)
        job = self._jobs.get(session)
        if job is not None and job.status not in _DONE:
            raise UsageError("session", f"{session} is {job.status} already")
        manifest = read_manifest(folder / "metadata" / "manifest.json")
        if manifest.get("status") == "done":
            raise UsageError("session", f"{session} is done: its video is made")
        request = VideoRequest.from_dict(manifest.get("request"), root=folder)
        self._room("resume_video")
        self._paid(request, whole=False)  # what it made already is not paid again
        job = _Job(Session.open(folder), request)
        self._jobs[session] = job
        self._launch(job)
        return session

    def cancel(self, session: str) -> dict[str, Any]:
        """Stop a queued or running video (what it made is kept, to resume)."""
        self.folder(session)
        job = self._jobs.get(session)
        if job is None or job.status in _DONE:
            raise UsageError("session", f"{session} is not queued or running")
        if job.task is not None:
            job.task.cancel()
        return self.status(session)

    def _launch(self, job: _Job) -> None:
        job.task = asyncio.get_running_loop().create_task(self._make(job))

    async def _make(self, job: _Job) -> None:
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.concurrency)
        maker = _BatchMaker(self.generator)
        name = job.session.root.name
        try:
            async with self._turns:
                job.status, job.step = "running", "starting"
                with sharing(Shared(self.coordination, owner=name,
                                    budget_label="the server")):
                    video = await maker.make(job.session.root, job.request, job.follow)
            job.status, job.video, job.progress, job.step = "done", video.path, 1.0, "done"
            _report(job.session.root)
        except asyncio.CancelledError:
            job.status, job.error, job.step = "failed", "cancelled", "cancelled"
            with contextlib.suppress(OSError, AvgenError):
                job.session.manifest.update(status="interrupted")
        except Exception as exc:  # one video's failure never stops the server
            job.status, job.step = "failed", "failed"
            job.error = _sentence(exc)

    # -- what is known --------------------------------------------------------------------

    def status(self, session: str) -> dict[str, Any]:
        """Where a video stands (see the ``video_status`` tool)."""
        folder = self.folder(session)
        manifest = read_manifest(folder / "metadata" / "manifest.json")
        job = self._jobs.get(session)
        if job is not None:
            status, progress, step, error = job.status, job.progress, job.step, job.error
        else:
            recorded = manifest.get("status")
            status = "done" if recorded == "done" else "failed"
            progress = 1.0 if status == "done" else 0.0
            step = str(recorded or "unknown")
            error = None if status == "done" else str(
                manifest.get("error") or "the server stopped while it was made; "
                "resume_video finishes it")
        cost = manifest.get("cost") or {}
        spent = cost.get("spent") if isinstance(cost, dict) else None
        answer: dict[str, Any] = {
            "session": session, "status": status, "progress": round(float(progress), 3),
            "step": step, "cost_usd": spent if isinstance(spent, int | float) else 0.0,
            "title": manifest.get("title"), "resumable": status == "failed",
            "video": None, "report": None, "captions": {}, "versions": {}, "error": error}
        path = _inside(folder, manifest.get("video")) if status == "done" else None
        if path is not None:
            answer["video"] = str(path)
            answer["captions"] = _captions_beside(folder, path)
            answer["report"] = _report(folder)
            versions = manifest.get("versions")
            named = list(versions.items())[:MAX_LANGUAGES] if isinstance(versions, dict) else []
            for language, version in named:
                made = _inside(folder, version.get("video")) \
                    if _language_code(language) and isinstance(version, dict) else None
                if made is not None:
                    answer["versions"][language] = {"video": str(made),
                                                    "captions": _captions_beside(folder, made)}
        return answer

    def videos(self) -> list[dict[str, Any]]:
        """Every session of the root, newest first."""
        found = []
        for path in sorted(self.root.glob("session_*/metadata/manifest.json"), reverse=True):
            with contextlib.suppress(AvgenError, OSError, ValueError):  # not one of ours
                found.append(self.status(path.parent.parent.name))
        return found

    async def wait(self, session: str, seconds: float,
                   tell: Any = None) -> dict[str, Any]:
        """Wait up to ``seconds`` for a video to end, calling ``tell(progress, step)`` as
        it moves; returns its status."""
        job = self._jobs.get(session)
        deadline = time.monotonic() + seconds
        last = -1.0
        while job is not None and job.status not in _DONE and time.monotonic() < deadline:
            if tell is not None and job.progress != last:
                last = job.progress
                await tell(job.progress, job.step)
            await asyncio.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return self.status(session)

    async def aclose(self) -> None:
        """Cancel what runs (it stays resumable) and close the agents."""
        tasks = [job.task for job in self._jobs.values() if job.task is not None
                 and not job.task.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.generator.aclose()


def _inside(folder: Path, relative: object) -> Path | None:
    """The file a manifest names by ``relative``, when it is a file inside ``folder``
    (a manifest is read as untrusted: absolute, ``..``, symlinks out, loops and NUL bytes
    are refused)."""
    if not isinstance(relative, str):
        return None
    try:
        path = (folder / relative).resolve()
        return path if path.is_relative_to(folder) and path.is_file() else None
    except (OSError, ValueError, RuntimeError):  # RuntimeError: a symlink loop (3.11, 3.12)
        return None


def _captions_beside(folder: Path, video: Path) -> dict[str, str]:
    """The caption files written beside ``video``, by kind (each inside ``folder``)."""
    found = {kind: _inside(folder, str(video.with_suffix(f".{kind}").relative_to(folder)))
             for kind in ("srt", "vtt", "ass")}
    return {kind: str(path) for kind, path in found.items() if path is not None}


def _language_code(key: str) -> bool:
    """Whether a manifest's ``versions`` key is a language tag as requests take them."""
    return len(key) <= MAX_LANGUAGE_CHARS and _LANGUAGE_TAG.fullmatch(key) is not None


def _report(folder: Path) -> str | None:
    """The session's HTML report, written when it is not there yet (``None``: it could not
    be written; the video is still there)."""
    from avgen._report import REPORT_FILE, write_report

    page = folder / "metadata" / REPORT_FILE
    if not page.is_file():
        try:
            page = write_report(folder)
        except (AvgenError, OSError):
            return None
    return str(page)


def _sentence(exc: BaseException) -> str:
    """An error as one sentence (its first line, without the resume hint)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(" (assets kept in ")[0][:500]
