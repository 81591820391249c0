"""Piper voices by name: fetched once from a catalogue (a local server here, in Piper's
published layout), verified, kept in the cache, listed by ``avgen voices``."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from avgen import VideoRequest
from avgen.agents.local import PiperNarrator
from avgen.agents.local._narrator import _bundled_model
from avgen.agents.local._voices import VoiceShelf
from avgen.errors import ConfigurationError, UsageError

HEBREW = "כלבים נובחים. חתולים מגרגרים."


class Site:
    """A voice catalogue on 127.0.0.1, recording the paths asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.asked: list[str] = []
        self.url = ""

    def publish(self, name: str, *, language: str, damaged: bool = False) -> None:
        code, voice, quality = name.split("-")
        folder = self.root / code.split("_")[0] / code / voice / quality
        folder.mkdir(parents=True, exist_ok=True)
        model = _bundled_model()
        onnx = folder / f"{name}.onnx"
        onnx.write_bytes(model.read_bytes())
        config = json.loads(model.with_suffix(".onnx.json").read_text("utf-8"))
        config["language"] = {"code": language, "family": language.split("_")[0],
                              "name_english": "Test", "country_english": "Nowhere"}
        onnx.with_suffix(".onnx.json").write_text(json.dumps(config), "utf-8")
        files = {}
        for path in (onnx, onnx.with_suffix(".onnx.json")):
            data = path.read_bytes()
            files[path.relative_to(self.root).as_posix()] = {
                "size_bytes": len(data),
                "md5_digest": hashlib.md5(data + (b"x" if damaged else b"")).hexdigest()}
        catalogue_file = self.root / "voices.json"
        catalogue = json.loads(catalogue_file.read_text()) if catalogue_file.exists() else {}
        catalogue[name] = {"key": name, "quality": quality, "files": files,
                           "language": config["language"]}
        catalogue_file.write_text(json.dumps(catalogue))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    published = Site(tmp_path / "site")
    published.root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            published.asked.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(published.root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    published.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield published
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_voice_is_fetched_once_verified_and_then_used_offline(site: Site) -> None:
    site.publish("he_IL-test-medium", language="he_IL")
    narrator = PiperNarrator(voices_url=site.url)
    request = VideoRequest(script=HEBREW, voice="he_IL-test-medium", language="he")
    narrator.check(request)  # fetched here, before any work
    assert sorted(site.asked) == ["/he/he_IL/test/medium/he_IL-test-medium.onnx",
                                  "/he/he_IL/test/medium/he_IL-test-medium.onnx.json",
                                  "/voices.json"]
    shelf = VoiceShelf(url=site.url)
    assert list(shelf.installed()) == ["he_IL-test-medium"]
    assert not list(shelf.folder.glob(".*.part"))
    assert narrator.language("he_IL-test-medium") == "he_IL"
    PiperNarrator(voices_url=site.url).check(request)  # another narrator, same cache
    assert len(site.asked) == 3
    with pytest.raises(UsageError, match="speaks he_IL"):  # English with a Hebrew voice
        narrator.check(VideoRequest(script="Dogs bark.", voice="he_IL-test-medium"))


def test_a_download_that_is_not_the_catalogues_is_not_kept(site: Site) -> None:
    site.publish("he_IL-broken-medium", language="he_IL", damaged=True)
    narrator = PiperNarrator(voices_url=site.url)
    with pytest.raises(ConfigurationError, match="MD5 digest"):
        narrator.check(VideoRequest(script=HEBREW, voice="he_IL-broken-medium",
                                    language="he"))
    folder = VoiceShelf(url=site.url).folder
    assert [path.name for path in folder.iterdir()] == ["voices.json"]


def test_an_unknown_voice_is_named_with_the_close_ones(site: Site) -> None:
    site.publish("he_IL-test-medium", language="he_IL")
    with pytest.raises(UsageError, match="did you mean he_IL-test-medium") as refused:
        PiperNarrator(voices_url=site.url).check(
            VideoRequest(script=HEBREW, voice="he_IL-tset-medium", language="he"))
    assert refused.value.field == "voice"


def test_an_unreachable_catalogue_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot fetch .*voices\.json"):
        PiperNarrator(voices_url="http://127.0.0.1:9").check(
            VideoRequest(script="Hi.", voice="en_GB-alan-medium"))


@pytest.mark.slow
def test_the_commands_list_fetch_and_speak_with_a_voice(site: Site, tmp_path: Path) -> None:
    site.publish("he_IL-test-medium", language="he_IL")
    site.publish("en_GB-other-low", language="en_GB")
    env = {**os.environ, "AVGEN_PIPER_VOICES_URL": site.url}
    listed = subprocess.run([sys.executable, "-m", "avgen", "voices", "--language", "he"],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert listed.returncode == 0, listed.stderr
    assert "he_IL-test-medium" in listed.stdout and "en_GB-other-low" not in listed.stdout
    script = tmp_path / "he.md"
    script.write_text(f"# שלום\n\n{HEBREW}\n", encoding="utf-8")
    made = subprocess.run([sys.executable, "-m", "avgen", "make", "--agents", "local",
                           "--script", str(script), "--voice", "he_IL-test-medium",
                           "--language", "he", "--no-captions", "--out",
                           str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert made.returncode == 0, made.stderr
    assert Path(made.stdout.strip().splitlines()[-1]).is_file()
    again = subprocess.run([sys.executable, "-m", "avgen", "voices"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    installed = again.stdout.split("known")[0]
    assert "he_IL-test-medium" in installed and "joe" in installed
