"""Word timings: measured from Piper's phoneme alignments offline, estimated (and marked so)
for a narrator that reports none; checked against the real voice's waveform."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st
from media import distances_to_onsets, onsets_after_silence, sound_of, vtt_words

from avgen import AudioAsset, Segment, VideoGenerator
from avgen._models import spread_words
from avgen.agents.local import PiperNarrator
from avgen.agents.local._alignment import spoken_count, spoken_words, word_segments
from avgen.agents.local._narrator import (
    _aligned_copy,
    _bundled_model,
    _loaded_voice,
    _patched,
    _scenes_at_once,
)
from avgen.agents.local._voices import voices_folder
from avgen.testing import ToneNarrator

PAUSES = ("Rivers, lakes, oceans, and bays hold most of the water. Mountains, valleys, "
          "meadows, and dunes shape the land. Bees dance; moths drift; beetles dig. "
          "Morning comes, noon passes, evening falls. Wind blows. Rain drums. Dogs bark.")


def test_word_starts_match_the_voice_where_it_can_be_heard(tmp_path: Path) -> None:
    """At every pause inside a sentence or between sentences, the next word's start is
    compared with where the waveform's sound starts again."""
    audio = asyncio.run(PiperNarrator().speak(PAUSES, tmp_path / "pauses.wav"))
    assert not audio.words_estimated
    assert [word.text for word in audio.words] == PAUSES.split()
    distances = distances_to_onsets([(word.text, word.start) for word in audio.words],
                                    onsets_after_silence(audio.path))
    assert len(distances) >= 12
    assert statistics.median(distances) <= 0.050, distances
    assert max(distances) <= 0.120, distances


def test_each_words_caption_starts_when_the_word_is_heard_in_the_video(
        tmp_path: Path) -> None:
    """End to end: the finished video's own sound against its .vtt's word times."""
    video = VideoGenerator(output_dir=tmp_path).generate_sync(script=PAUSES, preset="draft")
    words = vtt_words(video.captions["vtt"])
    assert [word for word, _ in words] == PAUSES.split()
    onsets = onsets_after_silence(sound_of(video.path, tmp_path / "sound.wav"))
    distances = distances_to_onsets(words, onsets)
    assert len(distances) >= 12
    assert statistics.median(distances) <= 0.050, distances
    assert max(distances) <= 0.120, distances


def test_numbers_and_abbreviations_keep_their_place(tmp_path: Path) -> None:
    text = "In 1999, Dr. Smith paid $5 for 3 apples. Then it rained — hard."
    audio = asyncio.run(PiperNarrator().speak(text, tmp_path / "numbers.wav"))
    assert not audio.words_estimated
    words = {word.text: word for word in audio.words}
    assert [word.text for word in audio.words] == text.split()
    starts = [word.start for word in audio.words]
    assert starts == sorted(starts) and audio.words[-1].end <= audio.duration
    # "1999" is spoken as three words, "$5" as two: each lasts longer than "In" or "for"
    assert words["1999,"].end - words["1999,"].start > 2 * (words["In"].end - words["In"].start)
    assert words["$5"].end - words["$5"].start > words["for"].end - words["for"].start
    assert words["—"].start == words["—"].end  # spoken as nothing, at its place


def test_a_narrator_without_word_times_gets_them_estimated(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), output_dir=tmp_path)
    video = generator.generate_sync(script="Bees dance. They tell the hive where flowers "
                                           "are.", preset="draft")
    manifest = json.loads(video.manifest.read_text())
    asset = manifest["steps"]["scene-000.narration"]["data"]["asset"]
    assert asset["words_estimated"] is True
    assert [word["text"] for word in asset["words"]] == (
        ["Bees", "dance.", "They", "tell", "the", "hive", "where", "flowers", "are."])


def test_spoken_words_are_the_runs_between_spaces() -> None:
    alignments = [("^", 100), ("h", 10), ("a", 20), (",", 30), (" ", 40), ("b", 50),
                  (".", 60), ("$", 70)]
    assert spoken_words(alignments) == [(100, 130), (200, 250)]
    assert spoken_count([["h", "a", ",", " ", "b", "."], [" ", "c"]]) == 3
    assert spoken_count([[]]) == 0


def test_words_that_do_not_add_up_are_spread_and_said_to_be_estimated() -> None:
    alignments = [("^", 0), ("a", 2205), (" ", 2205), ("b", 2205), ("$", 0)]
    timed, estimated = word_segments("one two three", alignments, 22050, 1.0,
                                     count_of=lambda word: 1)
    assert estimated and [w.text for w in timed] == ["one", "two", "three"]
    assert timed[0].start == 1.0 and timed[-1].end == pytest.approx(1.3)
    exact, estimated = word_segments("one two", alignments, 22050, 1.0, lambda word: 1)
    assert not estimated
    assert [(w.start, w.end) for w in exact] == [(1.0, 1.1), (pytest.approx(1.2), 1.3)]


@given(st.lists(st.text(st.characters(categories=["L", "N", "P"]), min_size=1,
                        max_size=12), min_size=1, max_size=20),
       st.floats(0, 100), st.floats(0.01, 30))
def test_spread_words_cover_the_span_in_order(words: list[str], start: float,
                                              length: float) -> None:
    spread = spread_words(words, start, start + length)
    assert [segment.text for segment in spread] == words
    assert spread[0].start == start and spread[-1].end == pytest.approx(start + length)
    for before, after in itertools.pairwise(spread):
        assert before.end == after.start and before.start <= before.end


def test_estimated_words_round_trip_through_the_manifest_form() -> None:
    from avgen._models import asset_from_dict, asset_to_dict

    asset = AudioAsset(Path("/tmp/a.wav"), 2.0, (Segment("Hi there.", 0.0, 2.0),)).with_words()
    assert asset.words_estimated and len(asset.words) == 2
    again = asset_from_dict(asset_to_dict(asset, None))
    assert again == asset


_SPEAK_AND_REPORT = """
import asyncio, json, sys
from pathlib import Path
from typing import Any
from avgen.agents.local import PiperNarrator
audio = asyncio.run(PiperNarrator().speak("Bees dance. Rain drums.", Path(sys.argv[1])))
print(json.dumps({"estimated": audio.words_estimated, "words": len(audio.words),
                  "onnx": "onnx" in sys.modules}))
"""


def _speak_in_a_new_process(tmp_path: Path, name: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _SPEAK_AND_REPORT, str(tmp_path / name)],
                          capture_output=True, text=True, check=True, timeout=300)
    report: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return report


def test_the_voice_patched_for_alignments_is_kept_and_loaded_without_onnx(
        tmp_path: Path) -> None:
    """The first run patches the model (with onnx) and keeps the copy in the cache; the
    next process loads the copy, never imports onnx, and still measures its words."""
    aligned = voices_folder() / "aligned"
    assert not aligned.exists()
    first = _speak_in_a_new_process(tmp_path, "first.wav")
    assert first == {"estimated": False, "words": 4, "onnx": True}
    copies = list(aligned.glob("*.onnx"))
    assert len(copies) == 1
    import onnx  # only this test reads models itself

    kept = onnx.load(str(copies[0]))
    patched = onnx.load_from_string(_patched(_bundled_model()))
    # the alignments' output is there, and the graph is kept already optimised (fused)
    assert [o.name for o in kept.graph.output] == [o.name for o in patched.graph.output]
    assert len(patched.graph.output) > 1
    assert len(kept.graph.node) < len(patched.graph.node)
    assert not [p for p in aligned.iterdir() if p.name.startswith(".")]  # no temporary left
    second = _speak_in_a_new_process(tmp_path, "second.wav")
    assert second == {"estimated": False, "words": 4, "onnx": False}


def _load_voice_afresh() -> tuple[object, bool]:
    model = _bundled_model()
    stat = model.stat()
    return _loaded_voice.__wrapped__(str(model), stat.st_mtime_ns, stat.st_size)


def test_a_damaged_copy_of_the_patched_voice_is_made_again() -> None:
    model = _bundled_model()
    stat = model.stat()
    copy = _aligned_copy(model, stat.st_mtime_ns, stat.st_size)
    assert copy is not None
    whole = copy.read_bytes()
    copy.write_bytes(whole[: len(whole) // 3])
    voice, aligned = _load_voice_afresh()
    assert aligned
    assert len(voice.session.get_outputs()) > 1  # type: ignore[attr-defined]
    assert copy.read_bytes() == whole


def test_a_cache_that_cannot_be_written_still_gives_measured_words(tmp_path: Path) -> None:
    voices_folder().parent.mkdir(parents=True, exist_ok=True)
    voices_folder().write_text("a file where the voices folder would be")
    voice, aligned = _load_voice_afresh()
    assert aligned
    assert len(voice.session.get_outputs()) > 1  # type: ignore[attr-defined]
    assert voices_folder().read_text() == "a file where the voices folder would be"


def test_scenes_are_spoken_at_once_each_on_one_thread(tmp_path: Path) -> None:
    """Piper's session computes on one thread and the narrator speaks a scene per core
    (at most four): two scenes are spoken side by side, each still timed word by word,
    and a narrator of one turn speaks one at a time, across every run it serves."""
    voice, aligned = _load_voice_afresh()
    assert aligned and voice.session.get_session_options().intra_op_num_threads == 1
    assert PiperNarrator().max_concurrency == _scenes_at_once() <= 4

    spans: list[tuple[float, float]] = []

    class Timed(PiperNarrator):
        def _speak(self, text: str, target: Path, voice: str | None) -> AudioAsset:
            started = time.monotonic()
            try:
                return super()._speak(text, target, voice)
            finally:
                spans.append((started, time.monotonic()))

    script = ("# Water\n\nRain falls on the hills and runs down to the valley floor.\n\n"
              "Rivers carry it all the way to the sea, past towns and fields.")
    video = VideoGenerator(narrator=Timed(max_concurrency=2), output_dir=tmp_path / "two"
                           ).generate_sync(script=script, preset="draft")
    first, second = sorted(spans)
    assert second[0] < first[1]  # the second scene began before the first one ended
    assert [word for word, _ in vtt_words(video.captions["vtt"])] == script.split()[2:]

    spans.clear()
    one = Timed(max_concurrency=1)

    async def two_runs() -> None:  # two runs on one loop, as a batch's items share it
        generator = VideoGenerator(narrator=one, output_dir=tmp_path / "one")
        await asyncio.gather(generator.generate(script="Rain falls on the hills.",
                                                preset="draft"),
                             generator.generate(script="Rivers carry it to the sea.",
                                                preset="draft"))
    asyncio.run(two_runs())
    first, second = sorted(spans)
    assert second[0] >= first[1]


def test_a_voice_loading_never_holds_up_the_event_loop() -> None:
    """A narrator's voice loads in a worker thread under the narrator's lock (a second or
    so); taking a turn on the event loop must not wait for that lock, or every run on the
    loop (a batch's items, an MCP server's videos) would stop while a voice loads."""
    narrator = PiperNarrator(max_concurrency=1)
    taken: list[bool] = []

    async def take_a_turn() -> None:
        async with narrator._gate():
            taken.append(True)

    with narrator._lock:  # a voice loading in another thread
        turn = threading.Thread(target=lambda: asyncio.run(take_a_turn()), daemon=True)
        turn.start()
        turn.join(120)
        assert not turn.is_alive() and taken == [True]


T = TypeVar("T")


class _Meeting:
    """Two threads calling one slowed-down function: the first, once in, waits until the
    second has asked, then up to 2 s for it to come in too — which it does unless a lock
    keeps it out. ``most`` is the most callers ever inside at once."""

    def __init__(self) -> None:
        self.first_in, self.second_asked, self.second_in = (
            threading.Event(), threading.Event(), threading.Event())
        self.inside = self.most = 0
        self._counting = threading.Lock()

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Around the slowed-down function's body."""
        with self._counting:
            self.inside += 1
            self.most = max(self.most, self.inside)
        try:
            if self.first_in.is_set():
                self.second_in.set()
            else:
                self.first_in.set()
                self.second_asked.wait(120)
                self.second_in.wait(2)  # the second would be in by now, without a lock
            yield
        finally:
            with self._counting:
                self.inside -= 1

    def both(self, first: Callable[[], T], second: Callable[[], T]) -> tuple[T, T]:
        """Call ``first`` here and ``second`` in another thread once ``first`` is in."""
        got: list[T] = []

        def other() -> None:
            self.first_in.wait(120)
            self.second_asked.set()
            got.append(second())

        thread = threading.Thread(target=other)
        thread.start()
        mine = first()
        thread.join(120)
        assert not thread.is_alive() and len(got) == 1
        return mine, got[0]


def test_a_voice_not_phonemized_by_espeak_makes_its_phonemes_one_thread_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Piper makes a Chinese, Hebrew, Japanese or Thai voice's phonemizer on its first
    sentence without a lock (and eSpeak's under one): scenes spoken at once must not each
    make one, nor share one at the same time."""
    from piper import PiperVoice

    from avgen.agents.local._narrator import _piper_voice

    model = _bundled_model()
    config = json.loads(model.with_suffix(".onnx.json").read_text("utf-8"))
    for kind, alone in (("text", True), ("espeak", False)):
        meeting = _Meeting()

        def phonemize(self: object, text: str, meeting: _Meeting = meeting
                      ) -> list[list[str]]:  # Piper's, slowed down
            with meeting.entered():
                return [list(text)]

        monkeypatch.setattr(PiperVoice, "phonemize", phonemize)
        config["phoneme_type"] = kind
        written = tmp_path / f"{kind}.onnx.json"
        written.write_text(json.dumps(config), "utf-8")
        voice: Any = _piper_voice(model, written)
        first, _ = meeting.both(lambda voice=voice: voice.phonemize("First."),
                                lambda voice=voice: voice.phonemize("Second."))
        assert first == [list("First.")]
        # eSpeak's phonemes are Piper's to lock (it does): the wrapper leaves them alone
        assert meeting.most == (1 if alone else 2), (kind, meeting.most)


def test_narrators_of_one_process_load_a_voice_once_between_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each item of a batch on a worker builds its own narrator: two of them starting to
    speak at once load the voice once, the second waiting for the first's."""
    import functools

    loads: list[str] = []
    meeting = _Meeting()

    @functools.lru_cache(maxsize=4)
    def loading(model: str, mtime_ns: int, size: int) -> tuple[object, bool]:
        with meeting.entered():
            loads.append(model)
            return object(), True

    monkeypatch.setattr("avgen.agents.local._narrator._loaded_voice", loading)
    one, two = PiperNarrator(), PiperNarrator()
    got = meeting.both(lambda: one._load(None)[0], lambda: two._load(None)[0])
    assert len(loads) == 1 and got[0] is got[1] and meeting.most == 1
