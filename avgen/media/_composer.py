"""`FFmpegComposer`: renders a `Timeline` with ffmpeg.

No frame passes through Python: the timeline compiles to ffmpeg commands
(`avgen.media.FFmpegComposer.fingerprint` digests their one-process form). One process
reads the pictures, fits them to the frame, burns the captions with libass and encodes the
picture (in parts for long videos) — or, when every clip already matches the output, the
clips are used as they are; beside it, the sound is measured, levelled and encoded; a last
process joins picture and sound by stream copy. Cards' text that stands still is drawn
once and put on its frames by ffmpeg's ``overlay`` (`burn_scripts`, `fit_still_texts`).

Everything that can be checked is checked before the encode starts: every asset is probed
(a corrupt, empty or stream-less file fails naming its scene and path), and the caption
font is found. No character fails a render: a character the caption font lacks is drawn
in the font `avgen.media._fonts.faces` finds for it (the bundled DejaVu Sans and Noto
Emoji, then the system's fonts through fontconfig), named in the ASS text so libass draws
it in that font; what no font covers is left out of the burned captions and cards
(`FFmpegComposer.check_text` names it, and a package that has it, before any narration is
paid for).
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from avgen._cache_root import derived_file
from avgen._hashing import json_sha256
from avgen._models import ClipAsset, ImageAsset, Script, VideoRequest, Visual
from avgen._scratch import scratch_beside
from avgen.errors import ConfigurationError, MediaError, UsageError
from avgen.media._ffmpeg import (
    MediaInfo,
    ProgressCallback,
    decodes_audio,
    ffconcat,
    has_filter_option,
    measure_loudness,
    measure_mix,
    measure_sound,
    probe,
    run_ffmpeg,
)
from avgen.media._fonts import (
    FontFile,
    bundled_fonts_dir,
    faces,
    find_font,
    font_package,
    uncovered,
)
from avgen.media._graph import (
    LIMITER_CEILING_DB,
    StillTexts,
    compile_graph,
    compile_loudness_probe,
    compile_mux,
    compile_part,
    compile_sound,
    compile_still_text_probe,
    compile_voice_probe,
    copy_plan,
    fitted_still_texts,
    graph_threads,
    music_gain,
    part_ranges,
    voice_gains,
)
from avgen.media._timeline import Timeline

__all__ = ["FFmpegComposer"]

_logger = logging.getLogger("avgen.media")

MAX_LIMITING_DB = 12.0
"""The most the peak limiter may take off the loudest peaks, in dB. Speech from a TTS voice
peaks about 20 dB above its loudness, so -14 LUFS under a -1 dBTP ceiling takes some
8 dB off its rarest peaks; much more flattens the voice audibly."""
_CLOSE_ENOUGH = 0.15  # LU: stop correcting the gain once the mix measures this close
_CORRECTIONS = 3  # measuring passes after the first, at most
_MUSIC_ROUNDS = 3  # gain searches at most, to set the music against the voice it ends under
_MUSIC_CLOSE_ENOUGH = 0.3  # LU: the music is where asked, relative to the voice
_FIRST_GAINS = (0.0, 3.0)  # dB: the narrations are at the target already; the limiter
# costs some loudness, so the gain that lands there is usually between these two


@attrs.frozen
class Loudness:
    """What the composer measured of the mix and the gain it chose."""

    target: float
    """The loudness asked for (`avgen.Soundtrack.loudness`), LUFS."""
    gain: float
    """Gain applied to the whole mix before the peak limiter, dB."""
    voice_gains: list[float]
    """Per scene, the gain that levels its narration, dB."""
    integrated: float | None
    """Integrated loudness of the mix as encoded (gain and limiter), LUFS; ``None`` for
    silence."""
    peak: float | None
    """Its sample peak when the limiter stays idle, dBFS (``None`` when the limiter holds
    it at `avgen.media._graph.LIMITER_CEILING_DB`). The limiter's ceiling sits low enough
    that the encoded file's true peak stays under -1 dBTP."""
    music_gain: float = 0.0
    """Gain applied to the music before the whole mix's `gain`, dB: together they set it
    `avgen.Soundtrack.music_volume` below the narration."""
    music: float | None = None
    """The music's own loudness as the video plays it, LUFS (``None``: no music, or
    silence)."""

    @property
    def reached(self) -> bool:
        """True when the mix lands within half a loudness unit of the target (or is
        silent)."""
        return self.integrated is None or abs(self.integrated - self.target) <= 0.5


@attrs.frozen
class FFmpegComposer:
    """The default `avgen.agents.Composer`: the picture and the sound encoded side by side
    by ffmpeg, then joined by stream copy."""

    name: str = "ffmpeg"
    """Shown in the manifest."""
    stream_copy: bool = True
    """Join clips by stream copy when they already match the output (no re-encode)."""
    max_scenes_per_pass: int = 5
    """Longer videos are rendered in parts of at most this many scenes, joined by stream
    copy: every scene rendered in one pass holds memory until the pass ends, so parts keep
    memory flat however long the video is."""

    async def compose(self, timeline: Timeline, target: Path,
                      progress: ProgressCallback | None = None) -> None:
        """Render ``timeline`` into the MP4 at ``target``.

        Raises:
            MediaError: An input is missing, empty, corrupt or lacks the stream it needs
                (the message names the scene and the file).
            ConfigurationError: The caption font is not found.
            FFmpegError: The encode failed.
        """
        probed = _probe_inputs(timeline)
        infos = _scene_infos(timeline, probed)
        timeline = _with_probed_clips(timeline, probed)
        font = self.check_font(timeline)
        timeline = _with_font(timeline, font)
        drawn_in = faces(font, timeline.drawn_texts()) if font else {}
        if not timeline.burn_captions:
            _report_missing(font, timeline, progress)
        with scratch_beside(target) as scratch, _fonts_folder(font) as fonts:
            def write(suffix: str, text: str) -> Path:
                path = scratch(suffix)
                path.write_text(text, encoding="utf-8")
                return path

            ass, stills = burn_scripts(timeline, drawn_in, write)
            sound = scratch(".sound.m4a")

            told = getattr(progress, "measured", None)

            async def soundtrack() -> tuple[Loudness, tuple[float | None, float | None]]:
                found = await self._loudness(timeline)
                await run_ffmpeg(compile_sound(timeline, sound, gain_db=found.gain,
                                               voice_gains=found.voice_gains,
                                               music_gain_db=found.music_gain),
                                 what=f"encoding the sound of {target.name}")
                # the file gets this sound by stream copy: measured now, while the picture
                # is encoded, it need not be measured once the file is made
                heard = await measure_sound(sound) if callable(told) else (None, None)
                return found, heard

            # the sound is measured and encoded (one core) while the picture is encoded
            # (every core); one last process joins them by stream copy
            async with asyncio.TaskGroup() as group:
                mixing = group.create_task(soundtrack())
                if self.stream_copy and copy_plan(timeline, infos):
                    pictures = [scene.visual.path for scene in timeline.scenes]  # type: ignore[union-attr]
                else:
                    parts = part_ranges(timeline, self.max_scenes_per_pass)
                    stills = await fit_still_texts(timeline, stills, fonts)
                    pictures = await self._render_parts(timeline, parts, ass, stills, fonts,
                                                        scratch, progress)
            loudness, heard = mixing.result()
            listing = scratch(".ffconcat")
            listing.write_text(ffconcat(pictures), encoding="utf-8")
            await run_ffmpeg(compile_mux(listing, sound, target),
                             what=f"composing {target.name}")
            if callable(told):
                told(*heard)
            if progress is not None:
                progress(1.0)
            _report_loudness(loudness, progress)

    def check(self, request: VideoRequest) -> None:
        """Refuse a request whose caption font cannot be found, or whose music is not
        audio ffmpeg can decode, before any work.

        Raises:
            UsageError: ``caption_style.font`` names no bundled or installed font, or a
                font file that does not exist; ``soundtrack.music`` is empty, corrupt, not
                audio, or decodes to nothing (the message names the file).
        """
        try:
            find_font(request.caption_style.font)
        except ConfigurationError as exc:
            raise UsageError("caption_style.font", str(exc)) from None
        if request.soundtrack.music is not None:
            check_music(request.soundtrack.music)

    def check_text(self, script: Script, request: VideoRequest) -> list[str]:
        """Notes on the script's characters no font can draw, before any narration is made.

        Nothing here fails: with captions burned in, the characters of the narration and
        of the scene titles (drawn on cards) that no font of the fallback chain covers (the
        caption font, the bundled fonts, the system's fonts through fontconfig; never a
        colour emoji font, which libass cannot draw) are named in one note, with a font
        package that has them; they will be left out of the burned captions and cards and
        kept in the ``.srt`` and ``.vtt`` files. With captions off, `compose` names what
        it leaves out of the cards.

        Args:
            script: The script, as written.
            request: The request (its ``captions`` and ``caption_style.font``).

        Returns:
            At most one note.
        """
        if not request.captions:
            return []
        try:
            font = find_font(request.caption_style.font)
        except ConfigurationError:
            return []  # `check` refuses such a request before the run starts
        texts = [text for scene in script.scenes for text in (scene.narration, scene.title)]
        missing = uncovered(font, texts)
        if not missing:
            return []
        return [missing_note("captions", missing, "the burned captions and cards "
                                                  "(the .srt/.vtt keep them)")]

    def sidecars(self, timeline: Timeline) -> dict[str, str]:
        """The caption files to keep beside the video, by extension (``srt``, ``vtt``,
        ``ass``); the ASS script draws the captions as this composer burns them, each
        character in the font found for it and without the characters no font covers (the
        SRT and WebVTT keep every character)."""
        font = find_font(timeline.style.font) if timeline.draws_on_picture else None
        drawn_in = faces(font, timeline.drawn_texts()) if font else {}
        return _with_font(timeline, font).caption_files(drawn_in)

    def fingerprint(self, timeline: Timeline) -> str:
        """A digest of what `compose` renders from ``timeline``: the ffmpeg command, the
        burned-in script and this composer's settings (a resume renders again only when
        it changes)."""
        drawn_in: dict[str, str | None] = {}
        if timeline.draws_on_picture:
            drawn_in = faces(find_font(timeline.style.font), timeline.drawn_texts())
        scripts: list[str] = []

        def keep(suffix: str, text: str) -> Path:
            scripts.append(text)
            return Path(f"script{len(scripts)}{suffix}")

        ass, stills = burn_scripts(timeline, drawn_in, keep)
        args = compile_graph(timeline, Path("out.mp4"), ass=ass, fonts_dir=None, stills=stills)
        track = timeline.soundtrack  # its levels are measured, not in the command above
        return json_sha256([args, scripts, attrs.asdict(self),
                            [track.loudness, track.music_volume]])

    @staticmethod
    async def _loudness(timeline: Timeline) -> Loudness:
        """Level every narration to the target and set the music `music_volume` below
        them, each by its measured loudness, then find the gain that brings the whole mix
        to the target (`_mix_gain`).

        The mix's gain and its limiter move the voice and the music unequally (the limiter
        takes the voice's peaks; the music's stretches between words count in the mix's
        loudness), so the voice as the final file has it is measured after each search —
        the narrations alone, through that gain and the limiter — and the music's gain set
        again against it, until the music lands within `_MUSIC_CLOSE_ENOUGH` of where it
        was asked (`_MUSIC_ROUNDS` searches at most).
        """
        voices = compile_voice_probe(timeline)
        measured = await measure_loudness(voices) if voices else []
        voiced = sum(scene.narration is not None for scene in timeline.scenes)
        levels = voice_gains(timeline, measured[:voiced])
        track = timeline.soundtrack
        if track.music is None:
            return await FFmpegComposer._mix_gain(timeline, levels, 0.0)
        bed = measured[voiced] if len(measured) > voiced else None
        music = music_gain(timeline, bed)
        speech = attrs.evolve(timeline, soundtrack=attrs.evolve(track, music=None))
        for attempt in range(_MUSIC_ROUNDS):
            found = await FFmpegComposer._mix_gain(timeline, levels, music)
            if not voiced or bed is None or found.integrated is None:
                break
            args = compile_loudness_probe(speech, levels, [found.gain], raw=False)
            assert args is not None
            ((voice, _),) = await measure_mix(args)
            if voice is None:
                break
            wanted = max(-60.0, min(40.0, voice - track.music_volume - bed - found.gain))
            if abs(wanted - music) <= _MUSIC_CLOSE_ENOUGH or attempt == _MUSIC_ROUNDS - 1:
                break
            music = wanted
        return attrs.evolve(found, music=bed)

    @staticmethod
    async def _mix_gain(timeline: Timeline, levels: list[float],
                        music: float) -> Loudness:
        """Find the gain that brings the whole mix (narrations levelled by ``levels``, the
        music by ``music`` dB), through the peak limiter, to the target: a few quick
        measuring passes, no dynamic processing.

        The limiter lowers the loudness as it takes the peaks off, the more the louder, so
        the gain is found by measuring the mix through it: the first pass measures the raw
        mix (loudness and sample peak) and the limited mix at two gains (`_FIRST_GAINS`);
        each next pass measures one better guess (the secant through the two points
        nearest the target), until the mix lands within `_CLOSE_ENOUGH` of the target.
        The limiter may take at most `MAX_LIMITING_DB` off the loudest peaks: a target
        that needs more is not reached, and `Loudness.reached` says so.
        """
        target = timeline.soundtrack.loudness
        args = compile_loudness_probe(timeline, levels, _FIRST_GAINS, music_gain_db=music)
        if args is None:
            return Loudness(target, 0.0, levels, None, None, music)
        (raw, peak), *limited = await measure_mix(args)
        if raw is None or any(loud is None for loud, _ in limited):  # silence
            return Loudness(target, 0.0, levels, None, peak, music)
        wanted = max(-40.0, min(40.0, target - raw))
        if peak is None or peak + wanted <= LIMITER_CEILING_DB:  # the limiter stays idle
            return Loudness(target, wanted, levels, raw + wanted, None if peak is None
                            else peak + wanted, music)
        most = LIMITER_CEILING_DB + MAX_LIMITING_DB - peak  # the limiter's share, at most
        points = [(gain, loud) for gain, (loud, _) in zip(_FIRST_GAINS, limited, strict=True)
                  if loud is not None]
        for _ in range(_CORRECTIONS + 1):
            # the secant through the two points nearest the target (the limiter's loss
            # grows with the gain, so the curve is gentle but not straight)
            (g0, i0), (g1, i1) = sorted(points, key=lambda point: abs(point[1] - target))[:2]
            if abs(target - i0) <= _CLOSE_ENOUGH:
                break
            slope = (i1 - i0) / (g1 - g0) if abs(i1 - i0) > 0.05 else 1.0
            gain = min(most, max(-40.0, min(40.0, g0 + (target - i0) / max(slope, 0.1))))
            if any(abs(gain - known) < 0.01 for known, _ in points):
                break  # at the limit (or measured already): nothing better to find
            args = compile_loudness_probe(timeline, levels, [gain], raw=False,
                                          music_gain_db=music)
            assert args is not None
            ((measured, _),) = await measure_mix(args)
            if measured is None:
                break
            points.append((gain, measured))
        allowed = [point for point in points if point[0] <= most + 0.01]
        if not allowed:  # even no gain would need more limiting than allowed
            args = compile_loudness_probe(timeline, levels, [most], raw=False,
                                          music_gain_db=music)
            assert args is not None
            ((measured, _),) = await measure_mix(args)
            if measured is None:
                return Loudness(target, most, levels, None, None, music)
            allowed = [(most, measured)]
        gain, loud = min(allowed, key=lambda point: abs(point[1] - target))
        return Loudness(target, gain, levels, loud, None, music)

    @staticmethod
    async def _render_parts(timeline: Timeline, parts: list[tuple[int, int]],
                            ass: Path | None, stills: StillTexts | None, fonts: Path | None,
                            scratch: Callable[[str], Path],
                            progress: ProgressCallback | None) -> list[Path]:
        """Render the picture part by part into files ``scratch`` names; returns them in
        order."""
        rendered: list[Path] = []
        total = timeline.frames
        for number, (first, stop) in enumerate(parts):
            path = scratch(f".part{number}.mp4")
            frames_before = sum(s.frames for s in timeline.scenes[:first])
            frames = sum(s.frames for s in timeline.scenes[first:stop])

            def report(fraction: float, before: int = frames_before, size: int = frames) -> None:
                if progress is not None:
                    progress(0.95 * (before + size * fraction) / total)

            args = [*graph_threads(os.cpu_count()),
                    *compile_part(timeline, first, stop, path, ass=ass, fonts_dir=fonts,
                                  stills=stills)]
            await run_ffmpeg(args, total=frames / timeline.preset.fps, progress=report,
                             what=f"composing part {number + 1} of {len(parts)}")
            rendered.append(path)
        return rendered

    @staticmethod
    def check_inputs(timeline: Timeline) -> list[MediaInfo | None]:
        """Probe every asset of the timeline; returns each scene picture's probe (``None``
        for a card, or a scene of several shots).

        Raises:
            MediaError: An asset is unusable; the message names the scene and the file.
        """
        return _scene_infos(timeline, _probe_inputs(timeline))

    @staticmethod
    def check_font(timeline: Timeline) -> FontFile | None:
        """Find the caption font (any character it lacks falls back, or is left out).

        Returns:
            The font, or ``None`` when nothing will be drawn.

        Raises:
            ConfigurationError: The font is not found.
        """
        if not timeline.draws_on_picture:
            return None
        return find_font(timeline.style.font)


def check_music(path: Path) -> None:
    """Refuse a music file ffmpeg cannot decode: a probe (cached per file) and the first
    second decoded, a fraction of a second in all.

    Raises:
        UsageError: The file is missing, empty, not media, has no audio stream, or its
            audio decodes to nothing; the error names ``soundtrack.music`` and the file.
    """
    try:
        info = probe(path)
    except MediaError as exc:
        raise UsageError("soundtrack.music", f"unusable music: {exc}") from None
    if not info.has_audio:
        problem = "has no audio stream"
    elif not info.duration:
        problem = "has no samples (0 s long)"
    elif not decodes_audio(path):
        problem = "is not audio ffmpeg can decode (corrupt or cut off)"
    else:
        return
    raise UsageError("soundtrack.music", f"the music file {str(path)!r} {problem}")


def _report_loudness(loudness: Loudness, progress: ProgressCallback | None) -> None:
    """Log what the mix measures; when the target was not reached, say so with the numbers:
    as a note of the run when ``progress`` takes notes (a run's progress does: its
    ``note(message, **data)`` becomes a ``note`` event and a line of the session's log),
    else as a warning of the ``avgen.media`` logger."""
    if loudness.integrated is None:
        return
    peak = "" if loudness.peak is None else f", peak {loudness.peak:.1f} dBFS"
    _logger.info("loudness: %.1f LUFS asked, %.1f LUFS measured%s (gain %+.1f dB)",
                 loudness.target, loudness.integrated, peak, loudness.gain)
    if loudness.music is not None:
        _logger.info("music: %.1f LUFS as played, set by %+.1f dB before the mix's gain",
                     loudness.music, loudness.music_gain)
    if loudness.reached:
        return
    why = ("more would clip (true peak ceiling -1 dBTP)"
           if loudness.integrated < loudness.target else "the mix is too loud")
    message = (f"loudness {loudness.target:.1f} LUFS asked, {loudness.integrated:.1f} LUFS "
               f"reached: {why}")
    note = getattr(progress, "note", None)
    if callable(note):
        note(message, loudness=loudness.target, integrated=loudness.integrated,
             gain=round(loudness.gain, 2))
    else:
        _logger.warning("%s", message)


MAX_STILL_TEXTS = 48
"""The most cards whose still text is drawn once (`burn_scripts`): each card's overlay is in
the path of every frame of the picture and holds frames of its own, so the cost of many
outgrows what they save; a video with more cards has libass draw their text on every
frame."""


def burn_scripts(timeline: Timeline, faces: dict[str, str | None],
                 write: Callable[[str, str], Path]) -> tuple[Path | None, StillTexts | None]:
    """Write what the picture's render burns in: the ASS script libass draws on every
    frame, and the cards' text that stands still, drawn once (`avgen.media._graph.StillTexts`).
    ``(None, None)`` when nothing is drawn.

    A video with more than `MAX_STILL_TEXTS` cards, or an ffmpeg without ``setparams``'s
    ``alpha_mode`` (older than 8, set by ``AVGEN_FFMPEG``), has libass draw all of it.

    Args:
        timeline: The timeline.
        faces: The font of each character the caption font lacks (`faces`).
        write: Writes a script (its suffix, its text) and returns its path.
    """
    if not timeline.draws_on_picture:
        return None, None
    spans = timeline.still_texts()
    if len(spans) > MAX_STILL_TEXTS or not has_filter_option("setparams", "alpha_mode"):
        spans = []  # libass draws every frame of them, as it does what moves
    ass = write(".ass", timeline.ass_script(faces, "moving" if spans else "all"))
    if not spans:
        return ass, None
    return ass, StillTexts(write(".ass", timeline.ass_script(faces, "still")), spans)


async def fit_still_texts(timeline: Timeline, stills: StillTexts | None,
                          fonts: Path | None) -> StillTexts | None:
    """``stills`` with each box fitted to what it draws (`compile_still_text_probe`: one
    short ffmpeg run, beside the loudness passes)."""
    if stills is None:
        return None
    report = await run_ffmpeg(compile_still_text_probe(timeline, stills, fonts),
                              loglevel="info", keep_lines=60 + len(stills.spans),
                              what="measuring the cards' text")
    return fitted_still_texts(timeline, stills, report)


@contextlib.contextmanager
def _fonts_folder(font: FontFile | None) -> Iterator[Path | None]:
    """The folder libass takes fonts from: the bundled fonts' (text, emoji and icon fonts),
    or, when the caption font is not one of them, a folder linking the caption font and
    the bundled fonts together.

    That folder is kept in avgen's cache folder (``fonts/``), one per caption font file and
    its modification time, made once for every later render; where the cache folder cannot
    be written, it is a temporary folder removed when the block ends.
    """
    if font is None:
        yield None
        return
    bundled = bundled_fonts_dir()
    if font.path.parent == bundled:
        yield bundled
        return
    fonts = (font.path.resolve(), *sorted(path.resolve() for path in bundled.glob("*.ttf")))

    def link(folder: Path) -> None:
        folder.mkdir()
        for path in fonts:  # the caption font first: a bundled font of its name is left out
            entry = folder / path.name
            if entry.is_symlink() or entry.exists():
                continue
            try:
                entry.symlink_to(path)
            except OSError:  # no symlinks here (Windows without the right): a copy
                shutil.copyfile(path, entry)

    stat = font.path.stat()
    key = {"fonts": [str(path) for path in fonts], "size": stat.st_size,
           "modified": stat.st_mtime_ns}
    kept = derived_file("fonts", "folder", key, link)
    if kept is not None:
        yield kept
        return
    with tempfile.TemporaryDirectory(prefix="avgen-fonts-") as folder:
        link(Path(folder) / "fonts")
        yield Path(folder) / "fonts"


def missing_note(what: str, missing: str, where: str) -> str:
    """The note on characters no font here has: which, where they are left out, and the
    Debian/Ubuntu packages of fonts that have them (`avgen.media._fonts.font_package`)."""
    by_package: dict[str | None, list[str]] = {}
    for char in missing:
        by_package.setdefault(font_package(char), []).append(char)
    hints = [f"the Debian/Ubuntu package {package} has {' '.join(chars)}"
             for package, chars in by_package.items() if package is not None]
    if None in by_package:
        hints.append(f"{' '.join(by_package[None])} are newer than the bundled Noto Emoji")
    verb = "has" if len(missing) == 1 else "have"
    return f"{what}: {' '.join(missing)} {verb} no font here; left out of {where}; " + \
        "; ".join(hints)


def _report_missing(font: FontFile | None, timeline: Timeline,
                    progress: ProgressCallback | None) -> None:
    """With captions off, name the characters of the cards' text no font has: as a note
    of the run when ``progress`` takes notes, else as a warning of the ``avgen.media``
    logger."""
    texts = [text for _, _, card in timeline.cards for text in (card.title, card.phrase)]
    missing = uncovered(font, texts) if font is not None else ""
    if not missing:
        return
    message = missing_note("cards", missing, "the cards")
    note = getattr(progress, "note", None)
    if callable(note):
        note(message, characters=missing)
    else:
        _logger.warning("%s", message)


def _with_font(timeline: Timeline, font: FontFile | None) -> Timeline:
    """The timeline with its style naming the font family actually found."""
    if font is None or font.family == timeline.style.font:
        return timeline
    return attrs.evolve(timeline, style=attrs.evolve(timeline.style, font=font.family))


def _with_probed_clips(timeline: Timeline, probed: dict[Path, MediaInfo]) -> Timeline:
    """Trust the file, not the agent: take each clip's size, rate and length from its probe
    (every shot's)."""
    def checked(visual: Visual) -> Visual:
        if not isinstance(visual, ClipAsset) or (info := probed.get(visual.path)) is None:
            return visual
        return attrs.evolve(visual, width=info.width, height=info.height,
                            fps=info.fps or visual.fps, duration=info.duration or visual.duration)

    scenes = [attrs.evolve(scene, visual=checked(scene.visual), shots=[
        attrs.evolve(shot, visual=checked(shot.visual)) for shot in scene.shots])
        for scene in timeline.scenes]
    return attrs.evolve(timeline, scenes=scenes)


def _probe_inputs(timeline: Timeline) -> dict[Path, MediaInfo]:
    """Probe every asset of the timeline (every shot's picture, every narration, the
    music), by path.

    Raises:
        MediaError: An asset is unusable; the message names the scene and the file.
    """
    jobs: list[tuple[str, Path, str]] = []  # (where, file, stream it needs)
    for scene in timeline.scenes:
        for visual in scene.visuals:
            if isinstance(visual, (ClipAsset, ImageAsset)):
                jobs.append((f"scene {scene.index + 1}", visual.path, "video"))
        if scene.narration is not None:
            jobs.append((f"scene {scene.index + 1}", scene.narration.path, "audio"))
    if timeline.soundtrack.music is not None:
        jobs.append(("music", timeline.soundtrack.music, "audio"))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # each probe is a process
        futures = [pool.submit(probe, path) for _, path, _ in jobs]
    probed: dict[Path, MediaInfo] = {}
    for (where, path, stream), future in zip(jobs, futures, strict=True):
        try:
            info = future.result()
        except MediaError as exc:
            raise _in_scene(where, exc) from exc
        if stream == "video" and not info.has_video:
            raise MediaError(f"{where}: the picture has no video stream", path)
        what = "narration" if where != "music" else "music"
        if stream == "audio" and not info.has_audio:
            raise MediaError(f"{where}: the {what} has no audio stream", path)
        if stream == "audio" and not info.duration:
            raise MediaError(f"{where}: the {what} has no samples (0 s long)", path)
        probed[path] = info
    return probed


def _scene_infos(timeline: Timeline, probed: dict[Path, MediaInfo]) -> list[MediaInfo | None]:
    """Each scene's picture probe: ``None`` for a card or a scene of several shots."""
    return [probed.get(scene.visual.path) if not scene.shots and isinstance(
        scene.visual, (ClipAsset, ImageAsset)) else None for scene in timeline.scenes]


def _in_scene(where: str, exc: MediaError) -> MediaError:
    """``exc`` prefixed with the scene, keeping its `MediaError.path` (already in the text)."""
    error = MediaError(f"{where}: {exc}")
    error.path = exc.path
    return error
