"""A voice speaks its own language: a script in another one is refused before anything is
made, naming the voices that would speak it."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avgen import VideoGenerator, VideoRequest
from avgen._language import _SCRIPTS, base, detect, resolved, written_in
from avgen.agents.local import PiperNarrator
from avgen.errors import UsageError
from avgen.testing import PatternImages, ToneNarrator


@pytest.mark.parametrize(("text", "expected"), [
    ("כלבים נובחים. חתולים מגרגרים.", "he"),
    ("القطط تحب النوم.", "ar"),
    ("猫は眠るのが好きです。", "ja"),
    ("猫喜欢睡觉。", "zh"),
    ("Кошки любят спать.", "ru"),
    ("बिल्लियाँ सोना पसंद करती हैं।", "hi"),
    ("แมวชอบนอน", "th"),
    ("Cats love to sleep. Les chats aiment dormir.", None),
    ("Cats love to sleep 🌧 🐈 — mostly.", None),
    ("Bees say shalom (שלום) to the hive every single morning.", None),  # a word, not the text
    ("", None),
])
def test_the_writing_system_tells_the_language(text: str, expected: str | None) -> None:
    found = written_in(text)
    assert (found[0] if found else None) == expected


def test_language_codes_compare_by_their_base() -> None:
    assert base("en_US") == base("en-gb") == base("EN") == "en"


def test_a_script_the_voice_cannot_speak_is_refused_before_anything_is_made(
        tmp_path: Path) -> None:
    generator = VideoGenerator(output_dir=tmp_path / "out")
    with pytest.raises(UsageError, match=r"written in Hebrew.*speaks en_US.*google") as refused:
        generator.generate_sync(script="כלבים נובחים. חתולים מגרגרים.")
    assert refused.value.field == "script"
    assert not (tmp_path / "out").exists()
    with pytest.raises(UsageError, match="language='he'") as asked:
        generator.check(VideoRequest(script="Dogs bark.", language="he"))
    assert asked.value.field == "language"
    generator.check(VideoRequest(script="Dogs bark.", language="en-US"))  # the voice's own
    assert PiperNarrator().language() == "en_US"


def test_the_command_says_which_voices_would_speak_it(tmp_path: Path) -> None:
    script = tmp_path / "he.md"
    script.write_text("# שלום\n\nכלבים נובחים. חתולים מגרגרים.\n", encoding="utf-8")
    made = subprocess.run([sys.executable, "-m", "avgen", "make", "--agents", "local",
                           "--script", str(script), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert made.returncode == 2
    assert "written in Hebrew" in made.stderr and "--agents google" in made.stderr
    assert not (tmp_path / "out").exists()
    asked = subprocess.run([sys.executable, "-m", "avgen", "make", "--agents", "local",
                            "--script", "-", "--language", "ja", "--out",
                            str(tmp_path / "out")], input="Dogs bark.", capture_output=True,
                           text=True, timeout=300, check=False)
    assert asked.returncode == 2 and "language='ja'" in asked.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("Los ríos llevan el agua de vuelta al mar cada día.", "es"),
    ("Les rivières ramènent l'eau à la mer chaque jour.", "fr"),
    ("Die Flüsse tragen das Wasser jeden Tag zurück ins Meer.", "de"),
    ("I fiumi riportano ogni giorno l'acqua al mare e alle nuvole.", "it"),
    ("Os rios levam a água de volta ao mar todos os dias.", "pt"),
    ("# The water cycle\n\nRivers carry the water back to the sea, and the sun lifts it "
     "into the clouds again.", "en"),
    ("Warning: the stove is hot.", "en"),
    ("Octopuses have three hearts. Two pump blood through the gills.", "en"),
    ("Il pleut.", None),  # too short to tell
    ("Tides", None),
    ("כלבים נובחים. חתולים מגרגרים.", "he"),
])
def test_the_language_a_script_is_written_in(text: str, expected: str | None) -> None:
    found = detect(text)
    assert (found[0] if found else None) == expected


def test_a_request_without_a_language_takes_the_scripts(tmp_path: Path) -> None:
    assert resolved(VideoRequest(script="Los ríos llevan el agua de vuelta al mar cada "
                                        "día.")).language == "es"
    assert resolved(VideoRequest(topic="Tides")).language == "en"  # cannot tell: English
    stated = VideoRequest(script="Los ríos llevan el agua al mar.", language="es-MX")
    assert resolved(stated) is stated
    # the language used is the one the manifest keeps
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=PatternImages(),
                               output_dir=tmp_path)
    video = generator.generate_sync(
        script="Die Flüsse tragen das Wasser jeden Tag zurück ins Meer.", preset="draft")
    manifest = json.loads((video.session / "metadata/manifest.json").read_text("utf-8"))
    assert manifest["request"]["language"] == "de"


def test_a_latin_script_the_voice_cannot_speak_is_refused_before_anything_is_made(
        tmp_path: Path) -> None:
    narrator = PiperNarrator()
    generator = VideoGenerator(narrator=narrator, output_dir=tmp_path / "out")
    with pytest.raises(UsageError, match=r"written in Spanish.*speaks en_US.*--language es"):
        generator.generate_sync(script="Los ríos llevan el agua de vuelta al mar cada día.")
    assert not (tmp_path / "out").exists()


def test_threads_detecting_at_once_load_the_model_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # a Dask worker's threads each start an item with a detection: one model, not one each
    import threading

    from py3langid.langid import LanguageIdentifier

    from avgen import _language

    loads: list[int] = []
    real = LanguageIdentifier.from_model_file
    gate = threading.Event()

    def counted(*args: object, **kwargs: object) -> object:
        loads.append(1)
        gate.wait(timeout=2)  # hold the first load open while the other threads arrive
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(LanguageIdentifier, "from_model_file", staticmethod(counted))
    monkeypatch.setattr(_language, "_unpacked_identifier", lambda: None)  # the packed model
    _language._loaded_identifier.cache_clear()
    try:
        start = threading.Barrier(8)
        found: list[object] = []

        def detect_one() -> None:
            start.wait()
            found.append(_language._identifier())

        threads = [threading.Thread(target=detect_one) for _ in range(8)]
        for thread in threads:
            thread.start()
        release = threading.Timer(0.5, gate.set)  # the first load then finishes
        release.start()
        for thread in threads:
            thread.join()
        release.cancel()
        assert len(loads) == 1
        assert len(found) == 8 and all(model is found[0] for model in found)
        assert detect("Los ríos llevan el agua de vuelta al mar cada día.") == ("es", "Spanish")
    finally:
        _language._loaded_identifier.cache_clear()  # the next test loads the real one


def test_the_model_is_unpacked_once_into_the_cache_and_read_from_there() -> None:
    """The packaged model is LZMA-compressed; the unpacked copy in the cache (an array per
    file, memory-mapped) answers the same, and a damaged copy is dropped (the packed model
    is used) and made again."""
    import numpy as np
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from avgen import _language
    from avgen._cache_root import cache_root

    assert not (cache_root() / "langid").exists()
    made = _language._unpacked_identifier()
    copies = list((cache_root() / "langid").glob("model-*"))
    assert made is not None and len(copies) == 1 and copies[0].is_dir()
    assert sorted(p.name for p in copies[0].iterdir()) == sorted(
        f"{name}.npy" for name in _language._ARRAYS)  # nothing else left there
    assert not [p for p in copies[0].parent.iterdir() if p.name.startswith(".")]
    read = _language._unpacked_identifier()  # from the copy this time
    assert isinstance(read._full_model[0], np.memmap)  # read as it is needed, not whole
    packed = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    for text in ("Every drop of water on Earth is on a journey.",
                 "Le soleil chauffe les océans, les lacs et les rivières.",
                 "Die Sonne wärmt die Ozeane, Seen und Flüsse."):
        assert read.classify(text) == packed.classify(text) == made.classify(text)

    damaged = copies[0] / "nextmove.npy"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    assert _language._unpacked_identifier() is None  # damaged: not used, and dropped
    assert not copies[0].exists()
    again = _language._unpacked_identifier()
    assert again is not None and damaged.stat().st_size > 1_000_000


def test_a_py3langid_that_reads_its_model_otherwise_still_detects(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from avgen import _language
    from avgen._cache_root import cache_root

    # a py3langid without the helper the unpacked copy is read with
    monkeypatch.setitem(sys.modules, "py3langid.modelio", types.ModuleType("py3langid.modelio"))
    assert _language._unpacked_identifier() is None
    assert not list((cache_root() / "langid").glob("model-*"))
    monkeypatch.undo()
    _language._loaded_identifier.cache_clear()
    real = _language._unpacked_identifier
    monkeypatch.setattr(_language, "_unpacked_identifier", lambda: None)
    try:
        assert detect("Los ríos llevan el agua de vuelta al mar cada día.") == ("es", "Spanish")
    finally:
        monkeypatch.setattr(_language, "_unpacked_identifier", real)
        _language._loaded_identifier.cache_clear()


def _written_in_by_name(text: str) -> tuple[str, str] | None:
    """The writing system by every letter's Unicode name, looked up each time."""
    counts: Counter[str] = Counter()
    letters = 0
    for char in text:
        if char.isalpha():
            letters += 1
            name = unicodedata.name(char, "")
            prefix = next((p for p in _SCRIPTS if name.startswith(p)), None)
            if prefix is not None:
                counts[prefix] += 1
    if not counts:
        return None
    if counts["HIRAGANA"] or counts["KATAKANA"]:
        counts["HIRAGANA"] += counts.pop("CJK", 0) + counts.pop("KATAKANA", 0)
    system, count = counts.most_common(1)[0]
    return _SCRIPTS[system] if count >= 0.3 * letters else None


_MIXED = st.text(alphabet=st.sampled_from(
    "abc XYZ éßøĳ ǅ,. 42 שלום مرحبا 你好世界 こんにちはカタカナ 한국어 नमस्ते ไทย Привет Ελλάδα "
    "বাংলা தமிழ் ქართული Հայերեն ɐɑɒ ʃ 🙂"), max_size=60)


@given(text=_MIXED | st.text(max_size=40))
def test_the_writing_system_is_what_every_letters_name_says(text: str) -> None:
    """Latin letters are counted without a name lookup and other letters' systems are
    remembered: the answer is the one the letters' Unicode names give."""
    assert written_in(text) == _written_in_by_name(text)
