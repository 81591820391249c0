"""One self-contained HTML page that shows a run: a session's or a whole batch's.

`write_report` reads a session folder's ``metadata/manifest.json`` (or a batch folder's
``batch.json``) and writes ``metadata/report.html`` (``report.html`` in a batch folder). The
page needs nothing from the network: its CSS and script are inline, the charts are SVG drawn
by pygal and inlined, scene thumbnails are small JPEGs inlined as ``data:`` URIs, and the
video is linked by a path relative to the page.

Manifests and batch records are untrusted: every link is made from a file checked to lie
inside the session (or the batch), never copied from the record, and a manifest whose
video lies outside its session is refused.
"""

from __future__ import annotations

__docformat__ = "google"

import base64
import concurrent.futures
import functools
import html
import json
import math
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from avgen._batch import BATCH_FILE, journal_entries
from avgen._hashing import json_sha256
from avgen._models import Video, contained
from avgen._session import StepRecord, read_manifest
from avgen.errors import SessionError, UsageError

__all__ = ["ReportView", "write_report"]

REPORT_FILE = "report.html"
"""The page's file name (``metadata/report.html`` in a session, ``report.html`` in a batch)."""

_BATCH_FILE = BATCH_FILE
_SCENE_STEP = re.compile(r"scene-(\d+)\.(\w+)")
_THUMB_WIDTH = 160
_MAX_SAMPLES = 400
_SLIVER = 0.001  # work shorter than this, before a wait, is drawn as part of the wait

_COLORS = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777")
_STYLE = dict(background="white", plot_background="white", foreground="#333",
               foreground_strong="#111", foreground_subtle="#999",
               font_family="sans-serif", colors=_COLORS)


@functools.cache
def _templates() -> Any:
    """The Jinja2 environment of ``avgen/templates`` (imported on first use: avgen's import
    stays light)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("avgen", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True)


def write_report(path: str | Path | Video) -> Path:
    """Write the HTML report of a video, a session folder or a batch folder.

    The page is self-contained (no network): for a video, its facts, a row per scene with
    a frame, tier, fallbacks, retries, cost and times, a timeline of the steps, cost by
    agent and model, and CPU and memory when a monitor sampled (``metadata/report.html``
    in its session); for a batch, every item (``report.html`` in the batch folder). Show
    it in a notebook with ``ReportView(write_report(video))``. See ``docs/report.md``.

    Args:
        path: A `avgen.Video`, a session folder (with ``metadata/manifest.json``) or a batch
            folder (with ``batch.json``; each item's report is written too).

    Returns:
        The report's path.

    Raises:
        UsageError: ``path`` is neither a session folder nor a batch folder, or its record
            cannot be read.
    """
    root = path.session if isinstance(path, Video) else Path(path)
    try:
        if (root / _BATCH_FILE).is_file():
            return _batch_report(root)
        if (root / "metadata" / "manifest.json").is_file():
            return _session_report(root)
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        # a record avgen did not write (its steps are checked; other parts are read as
        # they come): say so rather than show a traceback
        raise UsageError("path", f"{root} holds a record avgen cannot read: "
                         f"{type(exc).__name__}: {exc}") from None
    raise UsageError("path", f"{root} is neither a session folder (metadata/manifest.json) "
                     f"nor a batch folder ({_BATCH_FILE})")


# -- reading ---------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError("path", f"cannot read {path}: {exc}") from None


def _read_manifest(session: Path) -> dict[str, Any]:
    """A session's manifest (`avgen._session.read_manifest`: a regular file of bounded
    size holding an object)."""
    try:
        return read_manifest(session / "metadata" / "manifest.json")
    except SessionError as exc:
        raise UsageError("path", str(exc)) from None


def _link(root: Path, target: Path, prefix: str = "./") -> str:
    """A relative link from a page in ``root`` to ``target`` (a resolved path inside
    ``root``): every part percent-encoded, led by ``prefix``, so it can never read as a
    scheme (``javascript:``) or another host."""
    relative = target.relative_to(root.resolve()).as_posix()
    return prefix + quote(relative, safe="/")


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else default


def _scenes(root: Path, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per scene: its narration, steps, tier, errors, retries, cost and times."""
    steps: Mapping[str, Any] = manifest.get("steps") or {}
    texts: dict[int, str] = {}
    titles: dict[int, str] = {}
    script_file = root / "scripts" / "script.json"
    if script_file.is_file():
        try:
            for scene in json.loads(script_file.read_text("utf-8")).get("scenes", []):
                texts[int(scene["index"])] = str(scene.get("narration", ""))
                titles[int(scene["index"])] = str(scene.get("title") or "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            texts, titles = {}, {}
    indices = set(texts)
    for key in steps:
        match = _SCENE_STEP.fullmatch(key)
        if match:
            indices.add(int(match.group(1)))
    rows = []
    for index in sorted(indices):
        own = {kind: steps[f"scene-{index:03d}.{kind}"] for kind in ("narration", "visual")
               if f"scene-{index:03d}.{kind}" in steps}
        errors: list[str] = []
        retries: list[str] = []
        circuit: list[str] = []
        waited = 0.0
        for kind, step in own.items():
            waited += sum(_number(wait.get("seconds")) for wait in _records(step, "waits"))
            if step.get("error"):
                errors.extend(f"{kind}: {part}" for part in str(step["error"]).split("; "))
            resilience = (step.get("data") or {}).get("resilience") or {}
            retries.extend(f"{kind}: attempt {r.get('attempt')} failed ({r.get('error')}), "
                           f"waited {_number(r.get('delay')):.1f} s"
                           for r in resilience.get("retries", []))
            circuit.extend(f"{kind}: {c.get('event', '')}" + "".join(
                f" {k}={v}" for k, v in c.items() if k != "event")
                for c in resilience.get("circuit", []))
        visual = own.get("visual", {})
        narration = own.get("narration", {})
        audio = (narration.get("data") or {}).get("asset") or {}
        made = (visual.get("data") or {}).get("asset")
        source = made.get("source") if isinstance(made, Mapping) else None
        source = source if isinstance(source, Mapping) else {}
        listed = source.get("notes")
        notes: list[Any] = listed if isinstance(listed, list) else []
        passed = (visual.get("data") or {}).get("passed")
        terms = (visual.get("data") or {}).get("search_terms")
        later = [steps[key] for key in sorted(steps) if isinstance(steps[key], Mapping)
                 and re.fullmatch(rf"scene-{index:03d}\.shot-\d+\.visual", key)]
        rows.append({
            "shots": [_shot_line(number, step) for number, step in enumerate(later, 2)],
            "terms": [str(t) for t in terms] if isinstance(terms, list) else [],
            "query": str(source.get("query") or ""),
            "index": index, "number": index + 1, "title": titles.get(index, ""),
            "text": texts.get(index, ""),
            "passed": [str(p) for p in passed] if isinstance(passed, list) else [],
            "tier": visual.get("tier"), "visual_status": visual.get("status", "missing"),
            "narration_status": narration.get("status", "missing"),
            "agent": visual.get("agent", ""), "errors": errors, "retries": retries,
            "circuit": circuit,
            "method": str(source.get("method") or ""),
            "notes": [str(note) for note in notes],
            "cost": sum(_number(step.get("cost")) for step in own.values()),
            "seconds": sum(_number(step.get("seconds")) for step in own.values()),
            "waited": waited,
            "audio_seconds": _number(audio.get("duration")),
            "thumbnail": None,
        })
    return rows


def _versions(root: Path, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """A run in several languages: each version (its language, title, length, link, what
    it alone cost) and what they share; ``None`` for a run in one language."""
    listed = manifest.get("versions")
    if not isinstance(listed, Mapping) or not listed:
        return None
    found = manifest.get("cost")
    cost: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    split = cost.get("languages")
    own: Mapping[str, Any] = split if isinstance(split, Mapping) else {}
    rows = []
    for language, version in listed.items():
        if not isinstance(version, Mapping):
            continue
        link = None
        try:
            path = contained(root, version.get("video"), "versions.video")
            if path.is_file():
                link = _link(root, path, "../")
        except (UsageError, TypeError):
            link = None
        rows.append({"language": str(language), "title": str(version.get("title") or ""),
                     "duration": _number(version.get("duration")), "video": link,
                     "cost": _number(own.get(language))})
    return {"rows": rows, "shared": _number(cost.get("shared"))}


def _shot_line(number: int, step: Mapping[str, Any]) -> str:
    """What a later shot of a scene showed: ``shot 2: clip (pexels:clips) "Title", found
    with 'term'`` (a card is not shown: the shot before it lasts longer)."""
    def inner(outer: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        found = outer.get(key)
        return found if isinstance(found, Mapping) else {}

    source = inner(inner(inner(step, "data"), "asset"), "source")
    tier = str(step.get("tier") or "")
    if tier == "card":
        return f"shot {number}: nothing new (the shot before it lasts longer)"
    line = f"shot {number}: {tier} ({step.get('agent', '')})"
    if source.get("title"):
        line += f" \u201c{source['title']}\u201d"
    if source.get("query"):
        line += f", found with \u201c{source['query']}\u201d"
    return line


def _records(step: object, key: str) -> list[Mapping[str, Any]]:
    """A step's ``data[key]`` records (``waits``, ``quota``); whatever is not one is left
    out (a manifest is untrusted)."""
    data = step.get("data") if isinstance(step, Mapping) else None
    found = data.get(key) if isinstance(data, Mapping) else None
    return [r for r in found if isinstance(r, Mapping)] if isinstance(found, list) else []


def _thumbnails(video: Path, scenes: list[dict[str, Any]], duration: float,
                cache: Path, video_sha256: str) -> None:
    """Put a small JPEG (a data: URI) of the final video at the middle of each scene.

    A scene's place is taken from its narration's length, scaled to the video's duration
    (transitions make the real cut points differ slightly). Two ffmpeg processes decode a
    half of the video each and keep the frames asked for. The frames are kept in ``cache`` (a folder
    per video checksum and scene times), so a later report of the same video reuses them.
    """
    if not scenes or duration <= 0 or not video.is_file():
        return
    lengths = [max(scene["audio_seconds"], 0.05) for scene in scenes]
    scale = duration / sum(lengths)
    times, start = [], 0.0
    for length in lengths:
        times.append(min((start + length / 2) * scale, max(duration - 0.05, 0.0)))
        start += length
    key = json_sha256([video_sha256, video.stat().st_size, _THUMB_WIDTH,
                       [round(t, 3) for t in times]])
    folder = cache / key[:16]
    frames = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if len(frames) != len(scenes):
        frames = _extract_frames(video, times, cache, folder)
    for scene, frame in zip(scenes, frames, strict=False):
        data = base64.b64encode(frame.read_bytes()).decode("ascii")
        scene["thumbnail"] = f"data:image/jpeg;base64,{data}"


_DECODERS = 2
"""ffmpeg processes that decode a video's frames at once, each a stretch of it (the report
waits for the slowest: two halve the wait on two cores)."""


def _extract_frames(video: Path, times: Sequence[float], cache: Path,
                    folder: Path) -> list[Path]:
    """Decode ``video`` into one JPEG per time in ``folder`` (made whole or not at all;
    older folders in ``cache`` are removed). The times are split into `_DECODERS` stretches,
    each decoded by its own ffmpeg process from a seek to its first time. An ffmpeg
    failure gives no frames."""
    cache.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".frames-", dir=cache))
    size = max(4, math.ceil(len(times) / _DECODERS))
    groups = [list(times[i:i + size]) for i in range(0, len(times), size)]
    running: list[subprocess.Popen[bytes]] = []
    try:
        for n, group in enumerate(groups):
            running.append(subprocess.Popen(
                _frames_command(video, group, temp / f"{n}-%04d.jpg"),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        deadline = time.monotonic() + 300  # one limit for all of them
        failed = False
        for process in running:
            process.communicate(timeout=max(0.1, deadline - time.monotonic()))
            failed = failed or process.returncode != 0
        frames = sorted(temp.glob("*.jpg"), key=lambda f: tuple(map(int, f.stem.split("-"))))
        if failed or len(frames) != len(times):
            raise subprocess.SubprocessError("ffmpeg did not give every frame")
        for index, frame in enumerate(frames):  # one sequence, in the times' order
            frame.rename(temp / f"{index:04d}.jpg")
        for old in cache.iterdir():
            if old != temp and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        temp.replace(folder)
    except (OSError, subprocess.SubprocessError):
        for process in running:  # none is left writing into the folder removed below
            if process.poll() is None:
                process.kill()
                process.communicate()
        shutil.rmtree(temp, ignore_errors=True)
        return []
    return sorted(folder.glob("*.jpg"))


def _frames_command(video: Path, times: Sequence[float], pattern: Path) -> list[str]:
    """ffmpeg keeping the frames at ``times`` (seconds, rising) from a seek to the first
    (the video's own timestamps kept); reading stops a second after the last."""
    from avgen.media._ffmpeg import ffmpeg_exe

    pick = "+".join(f"lt(prev_t\\,{t:.3f})*gte(t\\,{t:.3f})" for t in times)
    begin = max(0.0, times[0] - 0.5)
    return [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-ss", f"{begin:.3f}",
            "-copyts", "-to", f"{times[-1] + 1:.3f}", "-i", str(video), "-an",
            "-vf", f"select='{pick}',scale={_THUMB_WIDTH}:-2", "-fps_mode", "passthrough",
            "-q:v", "6", str(pattern)]


# -- charts ----------------------------------------------------------------------------------

def _svg(chart: Any) -> str:
    """A pygal chart as inline SVG for an HTML page: no XML prolog, namespace declarations,
    comments or pygal's tooltip config (an HTML parser knows inline SVG; none of them is
    needed offline)."""
    text: str = chart.render(is_unicode=True)
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    # pygal's config for its tooltip script, which is not loaded (``js=[]``)
    text = re.sub(r"<script.*?</script>", "", text, flags=re.S)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", text)
    return text.strip()


def _chart_options(**extra: Any) -> dict[str, Any]:
    from pygal.style import Style

    stroke = extra.pop("stroke_width", 1)
    style = {**_STYLE, "colors": extra.pop("colors", _COLORS)}
    options: dict[str, Any] = {"style": Style(**style, stroke_width=stroke,
                                              stroke_width_hover=stroke,
                                              stroke_opacity=1, stroke_opacity_hover=1),
                               "js": [], "width": 900,
                               "disable_xml_declaration": True, "explicit_size": False,
                               "pretty_print": False}
    options.update(extra)
    return options


Segment = tuple[float, float, str]
"""A stretch of a chart's row: start, end, and the group (series) it is drawn in."""

WAITING_FOR_A_TURN = "waiting for a turn"
"""The timeline's group of waits for a turn of an agent (its ``max_concurrency``)."""
WAITING_FOR_QUOTA = "waiting for quota"
"""The timeline's group of waits for quota: a slot, a hold-off, the requests per minute."""
WAITING_FOR_ANOTHER_WORKER = "waiting for another worker's call"
"""The timeline's group of waits for the same paid call made by another worker of a batch."""
_WAIT_COLORS = {WAITING_FOR_A_TURN: "#9ca3af", WAITING_FOR_QUOTA: "#fca5a5",
                WAITING_FOR_ANOTHER_WORKER: "#c4b5fd",
                # a batch item's bar, by its status (as its badge on the page)
                "done": "#16a34a", "failed": "#dc2626", "running": "#f59e0b",
                "pending": "#6b7280"}


def _wait_group(what: object) -> str:
    what = str(what)
    if what.startswith("turn:"):
        return WAITING_FOR_A_TURN
    return WAITING_FOR_ANOTHER_WORKER if what.startswith("flight:") else WAITING_FOR_QUOTA


def step_segments(step: Mapping[str, Any], origin: float) -> list[Segment]:
    """A step's stretch of the timeline, from ``origin``: its waits (``data.waits``, each
    in its own group, clipped to the step) and the work around them (the step's kind:
    ``narration``, ``visual``, ``script``…)."""
    start = _number(step.get("started")) - origin
    end = start + _number(step.get("seconds"))
    kind = str(step.get("id", "")).rsplit(".", 1)[-1]
    waits = []
    for wait in _records(step, "waits"):
        begin = max(start, _number(wait.get("started")) - origin)
        finish = min(end, begin + _number(wait.get("seconds")))
        if finish > begin:
            waits.append((begin, finish, _wait_group(wait.get("for"))))
    segments: list[Segment] = []
    at = start
    for begin, finish, group in sorted(waits):
        begin = max(begin, at)
        if finish <= begin:
            continue
        if begin - at < _SLIVER:  # the moment between starting the step and waiting
            begin = at
        if begin > at:
            segments.append((at, begin, kind))
        segments.append((begin, finish, group))
        at = finish
    if end > at or not segments:
        segments.append((at, end, kind))
    return segments


def _timeline_chart(title: str, rows: Sequence[tuple[str, Sequence[Segment]]],
                    x_title: str) -> str | None:
    """A Gantt-like chart: a row per label, each segment (start, end, group) a thick
    horizontal line; waits in their own colours."""
    if not rows:
        return None
    import pygal

    groups: dict[str, list[tuple[float, float] | None]] = {}
    for row, (_label, segments) in enumerate(rows):
        y = len(rows) - 1 - row
        for start, end, group in segments:
            points = groups.setdefault(group, [])
            points.extend([(start, y), (max(end, start + 0.01), y), None])
    palette = iter(_COLORS)
    colors = tuple(_WAIT_COLORS.get(group) or next(palette, "#333") for group in groups)
    height = max(220, 60 + 14 * len(rows))
    chart = pygal.XY(**_chart_options(
        title=title, height=min(height, 2400), show_legend=True, legend_at_bottom=True,
        dots_size=0, show_y_labels=False, show_y_guides=False, x_title=x_title,
        range=(-1, len(rows)), print_values=False, truncate_legend=-1, colors=colors,
        stroke_width=round(max(1.0, min(9.0, 0.6 * (min(height, 2400) - 90) / len(rows))), 1)))
    for group, points in groups.items():
        chart.add(group, points, allow_interruptions=True, stroke_style={"linecap": "butt"})
    return _svg(chart)


def quota_in_use(holds: Iterable[Mapping[str, Any]], origin: float = 0.0
                 ) -> dict[str, tuple[list[tuple[float, int]], int | None]]:
    """How many slots of each quota were held over time, from ``quota.held`` records.

    Args:
        holds: Records with ``name``, ``started`` (epoch seconds), ``seconds`` and
            ``limit`` (a step's ``data.quota``); unusable ones are skipped.
        origin: Subtracted from every time.

    Returns:
        For each quota name: its changes as (time, slots held from then on), in time
        order, from the first hold to the last given back (0); and its limit (the largest
        recorded, ``None`` if none was). A slot given back at the moment another is taken
        is not counted twice.
    """
    changes: dict[str, list[tuple[float, int]]] = {}
    limits: dict[str, int | None] = {}
    for hold in holds:
        name, started = hold.get("name"), hold.get("started")
        if not isinstance(name, str) or not isinstance(started, int | float) \
                or not math.isfinite(started):
            continue
        start = float(started) - origin
        changes.setdefault(name, []).extend(
            [(start, 1), (start + max(0.0, _number(hold.get("seconds"))), -1)])
        limit = hold.get("limit")
        known = limits.setdefault(name, None)
        if isinstance(limit, int) and not isinstance(limit, bool):
            limits[name] = limit if known is None else max(known, limit)
    found: dict[str, tuple[list[tuple[float, int]], int | None]] = {}
    for name, deltas in sorted(changes.items()):
        points: list[tuple[float, int]] = []
        held = 0
        for at, delta in sorted(deltas):  # changes at one moment make one point
            held += delta
            if points and points[-1][0] == at:
                points[-1] = (at, held)
            else:
                points.append((at, held))
            if len(points) > 1 and points[-1][1] == points[-2][1]:
                points.pop()  # taken as another was given back: no change
        found[name] = (points, limits[name])
    return found


def _quota_chart(usage: Mapping[str, tuple[list[tuple[float, int]], int | None]]
                 ) -> str | None:
    """A step line per quota of the slots held across the batch, with its limit dashed."""
    if not usage:
        return None
    import pygal

    colors = [color for index, (_name, (_points, limit)) in enumerate(usage.items())
              for color in [_COLORS[index % len(_COLORS)]] * (1 if limit is None else 2)]
    chart = pygal.XY(**_chart_options(
        title="Quota in use (slots held)", height=300, dots_size=0, x_title="seconds",
        legend_at_bottom=True, legend_at_bottom_columns=2, truncate_legend=-1,
        stroke_width=2, colors=tuple(colors), include_x_axis=True, print_values=False))
    for name, (points, limit) in usage.items():
        steps: list[tuple[float, float]] = []
        for at, held in points:
            if steps:
                steps.append((at, steps[-1][1]))
            steps.append((at, held))
        chart.add(f"{name} (limit {limit})" if limit is not None else name, steps)
        if limit is not None and points:
            chart.add(f"{name} limit", [(points[0][0], limit), (points[-1][0], limit)],
                      stroke_style={"dasharray": "6, 4"})
    return _svg(chart)


def _cost_chart(lines: Mapping[str, float], estimate: Mapping[str, float],
                budget: float | None) -> str | None:
    if not lines and not estimate:
        return None
    import pygal

    labels = sorted(set(lines) | set(estimate))
    chart = pygal.HorizontalBar(**_chart_options(
        title="Cost by agent and model (USD)", height=max(200, 80 + 40 * len(labels)),
        legend_at_bottom=True))
    chart.x_labels = labels
    chart.add("spent", [round(lines.get(label, 0.0), 6) for label in labels])
    if estimate:
        chart.add("estimate", [round(estimate.get(label, 0.0), 6) for label in labels])
    if budget is not None:
        chart.add("budget (whole run)", [budget if i == 0 else None
                                         for i in range(len(labels))])
    return _svg(chart)


def _resource_chart(samples: Sequence[Mapping[str, Any]]) -> str | None:
    usable = [s for s in samples if isinstance(s.get("time"), int | float)]
    if len(usable) < 2:
        return None
    step = max(1, math.ceil(len(usable) / _MAX_SAMPLES))
    usable = usable[::step]
    import pygal

    start = float(usable[0]["time"])
    chart = pygal.XY(**_chart_options(title="CPU and memory (%)", height=300, dots_size=1,
                                      x_title="seconds", legend_at_bottom=True, range=(0, 100)))
    for metric in ("cpu_percent", "memory_percent"):
        points = [(round(float(s["time"]) - start, 2), _number(s.get(metric)))
                  for s in usable if metric in s]
        if points:
            chart.add(metric.replace("_percent", ""), points)
    return _svg(chart)


# -- the session page ------------------------------------------------------------------------

def _session_context(root: Path, thumbnails: bool = True) -> dict[str, Any]:
    manifest = _read_manifest(root)
    steps: dict[str, Any] = manifest.get("steps") or {}
    for key, raw in steps.items():  # untrusted: each step must be one avgen writes
        StepRecord.from_dict(raw, f"manifest steps[{key!r}]")
    compose = steps.get("compose") or {}
    compose_data = compose.get("data") or {}
    status = str(manifest.get("status", "unknown"))
    video_rel = manifest.get("video")
    # untrusted: the video must lie inside the session, as for the composer
    video = contained(root, video_rel, "manifest.video") if video_rel is not None else None
    duration = _number(compose_data.get("duration"))
    scenes = _scenes(root, manifest)
    framing: concurrent.futures.Future[None] | None = None
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        if thumbnails and video is not None and status == "done":
            # ffmpeg decodes the frames while this thread draws the charts
            video_sha = next((str(o.get("sha256")) for o in compose.get("outputs") or []
                              if o.get("path") == video_rel), "")
            framing = pool.submit(_thumbnails, video, scenes, duration,
                                  root / "metadata" / "thumbnails", video_sha)
        context = _session_facts(root, manifest, scenes, status, video, duration)
        if framing is not None:
            framing.result()
    return context


def _session_facts(root: Path, manifest: dict[str, Any], scenes: list[dict[str, Any]],
                   status: str, video: Path | None, duration: float) -> dict[str, Any]:
    steps: dict[str, Any] = manifest.get("steps") or {}
    request = manifest.get("request") or {}
    preset = request.get("preset") or {}
    compose = steps.get("compose") or {}
    compose_data = compose.get("data") or {}

    starts = [_number(s.get("started")) for s in steps.values() if _number(s.get("started"))]
    origin = min(starts) if starts else 0.0
    ordered = sorted(steps.values(), key=lambda s: (_number(s.get("started")), s.get("id", "")))
    bars = [(str(s.get("id")), step_segments(s, origin)) for s in ordered]
    wall = max((end for _l, segments in bars for _s, end, _g in segments), default=0.0)

    spent_by: dict[str, float] = {}
    for step in steps.values():
        for charge in (step.get("data") or {}).get("charges") or []:
            key = f"{charge.get('agent')} / {charge.get('model')}"
            spent_by[key] = spent_by.get(key, 0.0) + _number(charge.get("usd"))
    estimate_by: dict[str, float] = {}
    for charge in (manifest.get("estimate") or {}).get("charges") or []:
        key = f"{charge.get('agent')} / {charge.get('model')}"
        estimate_by[key] = estimate_by.get(key, 0.0) + _number(charge.get("usd"))
    cost = manifest.get("cost") or {}
    budget = cost.get("budget") if isinstance(cost.get("budget"), int | float) else None
    spent = _number(cost.get("spent"), sum(_number(s.get("cost")) for s in steps.values()))

    tiers: dict[str, int] = {}
    for scene in scenes:
        if scene["tier"]:
            tiers[scene["tier"]] = tiers.get(scene["tier"], 0) + 1
    missing = [f"scene {scene['number']}: " + ", ".join(
        kind for kind in ("narration", "visual")
        if scene[f"{kind}_status"] in ("missing", "failed"))
        for scene in scenes
        if scene["narration_status"] in ("missing", "failed")
        or scene["visual_status"] in ("missing", "failed")]
    if status != "done" and "compose" not in steps:
        missing.append("the final video (not composed yet)")
    output_size = sum(int(o.get("size", 0)) for o in compose.get("outputs") or []
                      if str(o.get("path", "")).endswith(".mp4"))
    return {
        "root": root, "manifest": manifest, "title": manifest.get("title") or root.name,
        "session": manifest.get("session", root.name), "status": status,
        "error": manifest.get("error"),
        "resume": None if status == "done" else f"avgen resume {shlex.quote(str(root))}",
        "missing": missing,
        "video": None if video is None or status != "done" else _link(root, video, "../"),
        "facts": {
            "duration": duration, "width": compose_data.get("width"),
            "height": compose_data.get("height"), "size": output_size,
            "preset": preset.get("name") if isinstance(preset, dict) else preset,
            "language": request.get("language"), "tiers": tiers, "spent": spent,
            "budget": budget, "loudness": compose_data.get("loudness"),
            "wall": wall, "agents": manifest.get("agents") or {},
            "look": _look(manifest.get("look")),
        },
        "scenes": scenes,
        "versions": _versions(root, manifest),
        "timeline": _timeline_chart("Steps over the run's wall time", bars, "seconds"),
        "quota_chart": _quota_chart(quota_in_use(_holds(steps.values()), origin)),
        "cost_chart": _cost_chart(spent_by, estimate_by, budget),
        "resource_chart": _resource_chart(manifest.get("monitor_samples") or []),
        "alerts": ((manifest.get("report") or {}).get("alerts") or []),
    }


def _look(value: object) -> dict[str, Any] | None:
    """The manifest's ``look`` (style and cast), or None; what is not text is left out."""
    if not isinstance(value, Mapping):
        return None
    style = value.get("style") if isinstance(value.get("style"), str) else None
    cast = [str(c) for c in value.get("cast") or [] if isinstance(c, str)] \
        if isinstance(value.get("cast"), list) else []
    return {"style": style, "cast": cast} if style or cast else None


def _session_report(root: Path) -> Path:
    context = _session_context(root)
    target = root / "metadata" / REPORT_FILE
    _write(target, _templates().get_template("report_session.html.j2").render(**context))
    return target


# -- the batch page --------------------------------------------------------------------------

def _whole(value: object) -> int:
    """An item's index as recorded, or 0 when it is not a whole number."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _batch_report(root: Path) -> Path:
    state = _read_json(root / _BATCH_FILE)
    if not isinstance(state, dict) or not isinstance(state.get("items"), list):
        raise UsageError("path", f"{root / _BATCH_FILE} is not a batch record")
    changed = journal_entries(root)  # a run going on, or killed: its items' latest states
    if changed:
        state["items"] = [changed.get(_whole(item.get("index")), item)
                          if isinstance(item, dict) else item for item in state["items"]]
    rows, spans = [], []
    holds: list[Mapping[str, Any]] = []
    inside = root.resolve()
    for item in state["items"]:
        if not isinstance(item, dict):
            raise UsageError("path", f"{root / _BATCH_FILE} is not a batch record")
        item = {"duration": None, "cost": 0.0, "error": None, "seconds": None, "tiers": [],
                **item, "index": _whole(item.get("index"))}
        # batch.json is untrusted: an item's session must lie inside the batch folder
        try:
            session: Path | None = contained(root, item.get("session"), "session")
        except UsageError:
            session = None
        if session == inside:
            session = None
        report = video = None
        title = _request_title(item.get("request"))
        first = last = None
        if session is not None and (session / "metadata" / "manifest.json").is_file():
            try:
                report = _link(root, _session_report(session))
            except UsageError:
                report = None
            manifest = _read_manifest(session)
            title = str(manifest.get("title") or "") or title
            video = _item_video(root, session, manifest)
            steps = (manifest.get("steps") or {}).values()
            times = [(_number(s.get("started")), _number(s.get("started"))
                      + _number(s.get("seconds"))) for s in steps if _number(s.get("started"))]
            if times:
                first, last = min(t[0] for t in times), max(t[1] for t in times)
            holds.extend(_holds(steps))
        status = str(item.get("status", "pending"))
        rows.append({**item, "status": status, "report": report, "title": title,
                     "video": video if status == "done" else None,
                     "resume": None if status == "done" or report is None
                     else f"avgen resume {shlex.quote(str(session))}",
                     "first": first, "last": last})
    rows.sort(key=lambda r: (r["status"] == "done", r["index"]))
    starts = [r["first"] for r in rows if r["first"] is not None]
    origin = min(starts) if starts else 0.0
    for row in sorted(rows, key=lambda r: r["index"]):
        if row["first"] is not None:
            spans.append((f"item {row.get('index')}",
                          [(row["first"] - origin, row["last"] - origin, row["status"])]))
    given = state.get("totals")
    totals = dict(given) if isinstance(given, Mapping) else {}
    totals.setdefault("cost", sum(_number(r.get("cost")) for r in rows))
    totals.setdefault("items", len(rows))  # a hand-made batch.json may leave them out
    totals.setdefault("done", sum(r["status"] == "done" for r in rows))
    totals.setdefault("failed", sum(r["status"] == "failed" for r in rows))
    context = {"id": state.get("id", root.name), "rows": rows, "totals": totals,
               "budget": state.get("budget"),
               "chart": _timeline_chart("Items over time", spans, "seconds"),
               "quota_chart": _quota_chart(quota_in_use(holds, origin))}
    target = root / REPORT_FILE
    _write(target, _templates().get_template("report_batch.html.j2").render(**context))
    return target


def _request_title(request: object) -> str:
    """What a batch item's request is called: its title, topic or first words of its
    script (``""`` when it has none of them)."""
    if not isinstance(request, Mapping):
        return ""
    for field in ("title", "topic", "script"):
        value = request.get(field)
        if isinstance(value, str) and value.strip():
            words = value.split()
            return " ".join(words[:12]) + ("…" if len(words) > 12 else "")
    return ""


def _item_video(root: Path, session: Path, manifest: Mapping[str, Any]) -> str | None:
    """A link from the batch page to an item's video: the file its manifest names, checked
    to lie inside its session and to exist; None otherwise."""
    try:
        video = contained(session, manifest.get("video"), "manifest.video") \
            if manifest.get("video") is not None else None
    except UsageError:
        return None
    return _link(root, video) if video is not None and video.is_file() else None


def _holds(steps: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The quota slots the steps held (their ``data.quota`` records)."""
    return [hold for step in steps for hold in _records(step, "quota")]


def _write(target: Path, text: str) -> None:
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(target)


class ReportView:
    """A written report, displayed in a notebook (Jupyter's ``_repr_html_``).

    The page is shown in an ``<iframe>`` when it lies under the working directory (where
    notebook front-ends serve files from), else as its path to open in a browser.

    Args:
        path: The report's HTML file (from `write_report`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        """The report's HTML file."""

    def __repr__(self) -> str:
        return f"ReportView({str(self.path)!r})"

    def _repr_html_(self) -> str:
        from urllib.parse import quote

        name = html.escape(str(self.path))
        try:
            relative = self.path.resolve().relative_to(Path.cwd().resolve())
        except (OSError, ValueError):
            return (f"<p>avgen report: <code>{name}</code> (outside the working directory: "
                    "open it in a browser)</p>")
        source = html.escape(quote(relative.as_posix()))
        return (f'<iframe src="{source}" width="100%" height="700" '
                f'style="border:1px solid #ddd"></iframe><br><code>{name}</code>')
