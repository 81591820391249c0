"""Piper voices by name (``he_IL-motek-medium``), fetched once into the cache and verified.

Piper's voices are published as a catalogue, ``voices.json``, beside one folder per voice::

    <base>/voices.json
    <base>/<family>/<code>/<name>/<quality>/<code>-<name>-<quality>.onnx
    <base>/<family>/<code>/<name>/<quality>/<code>-<name>-<quality>.onnx.json

The base is ``$AVGEN_PIPER_VOICES_URL``, else Piper's own on Hugging Face (`VOICES_URL`).
The catalogue gives each file's size and MD5 digest: a voice is downloaded to temporary
names, checked against both, and only then moved into ``<cache>/voices/`` — a damaged or
partial download is never used. Once there, a voice is used offline; the catalogue is kept
there too (``avgen voices --refresh`` fetches it again).
"""

from __future__ import annotations

__docformat__ = "google"

import contextlib
import difflib
import json
import os
import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from avgen._cache_root import cache_root
from avgen._hashing import md5_hasher
from avgen.errors import ConfigurationError, UsageError

__all__: list[str] = []

VOICES_URL = "https://huggingface.co/rhasspy/piper-voices/resolve/main"
"""Where Piper publishes its voices (``voices.json`` and one folder per voice)."""
URL_ENV = "AVGEN_PIPER_VOICES_URL"
"""The environment variable that names another base (a mirror, a test server)."""
VOICE_NAME = re.compile(r"(?P<code>[a-z]{2,3}_[A-Z]{2})-(?P<name>[A-Za-z0-9_]+)-"
                        r"(?P<quality>x_low|low|medium|high)")
"""A Piper voice name: ``<language code>-<name>-<quality>``."""
_CATALOGUE = "voices.json"
_TIMEOUT = 60.0
_CHUNK = 1 << 20


def voices_folder(env: Mapping[str, str] | None = None) -> Path:
    """Where fetched voices are kept: ``voices`` in avgen's cache folder
    (``$AVGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/avgen``, else ``~/.cache/avgen``)."""
    return cache_root(env) / "voices"


@attrs.frozen
class VoiceShelf:
    """The voices fetched into one folder, and the catalogue they come from.

    Args:
        folder: Where voices are kept (default: `voices_folder`).
        url: The catalogue's base URL (default: ``$AVGEN_PIPER_VOICES_URL`` or `VOICES_URL`).
    """

    folder: Path = attrs.field(factory=voices_folder, converter=Path)
    url: str = attrs.field(factory=lambda: os.environ.get(URL_ENV) or VOICES_URL)

    def installed(self) -> dict[str, Path]:
        """The voices already here, by name (their ``.onnx`` files)."""
        if not self.folder.is_dir():
            return {}
        return {path.name.removesuffix(".onnx"): path
                for path in sorted(self.folder.glob("*.onnx"))
                if VOICE_NAME.fullmatch(path.name.removesuffix(".onnx"))
                and path.with_suffix(".onnx.json").is_file()}

    def catalogue(self, *, refresh: bool = False) -> dict[str, Any]:
        """Every voice the catalogue lists, by name (fetched once, then read from here).

        Raises:
            ConfigurationError: It cannot be fetched or read.
        """
        kept = self.folder / _CATALOGUE
        if refresh or not kept.is_file():
            self._download(_CATALOGUE, kept, size=None, md5=None)
        try:
            voices = json.loads(kept.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            kept.unlink(missing_ok=True)
            raise ConfigurationError(f"the voice catalogue {kept} cannot be read ({exc}); "
                                     "run `avgen voices --refresh`") from None
        if not isinstance(voices, dict):
            raise ConfigurationError(f"the voice catalogue {kept} is not a JSON object")
        return voices

    def fetch(self, name: str) -> Path:
        """The ``.onnx`` file of the voice ``name``, downloaded and verified if not here.

        Raises:
            UsageError: The catalogue has no such voice (the error lists close names).
            ConfigurationError: It cannot be downloaded, or what came is not what the
                catalogue describes (nothing is kept then).
        """
        have = self.installed().get(name)
        if have is not None:
            return have
        voices = self.catalogue()
        entry = voices.get(name)
        if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
            close = difflib.get_close_matches(name, list(voices), n=5, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError("voice", f"no Piper voice is called {name!r}{hint} (`avgen "
                             "voices` lists them)")
        wanted = {}
        for path, facts in entry["files"].items():
            if isinstance(path, str) and path.endswith((".onnx", ".onnx.json")):
                wanted[path] = facts if isinstance(facts, dict) else {}
        if len(wanted) != 2:
            raise ConfigurationError(f"the catalogue entry of {name!r} does not list its "
                                     ".onnx and .onnx.json files")
        self.folder.mkdir(parents=True, exist_ok=True)
        temps: dict[Path, Path] = {}
        try:
            for path, facts in wanted.items():
                final = self.folder / Path(path).name
                temp = self.folder / f".{final.name}.{secrets.token_hex(4)}.part"
                temps[temp] = final
                self._download(path, temp, size=facts.get("size_bytes"),
                               md5=facts.get("md5_digest"))
            for temp, final in sorted(temps.items(), key=lambda pair: pair[1].suffix == ".onnx"):
                os.replace(temp, final)  # the .onnx last: a voice is there once it is whole
        finally:
            for temp in temps:
                temp.unlink(missing_ok=True)
        return self.folder / f"{name}.onnx"

    def _download(self, path: str, target: Path, *, size: Any, md5: Any) -> None:
        url = f"{self.url.rstrip('/')}/{path}"
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = md5_hasher()
        got = 0
        try:
            with urllib.request.urlopen(url, timeout=_TIMEOUT) as answer, \
                    target.open("wb") as out:
                while chunk := answer.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    got += len(chunk)
        except (OSError, urllib.error.URLError) as exc:
            with contextlib.suppress(OSError):
                target.unlink()
            raise ConfigurationError(f"cannot fetch {url} ({exc}); check the connection, or "
                                     f"set {URL_ENV} to a mirror") from None
        problems = []
        if isinstance(size, int) and got != size:
            problems.append(f"{got} bytes instead of {size}")
        if isinstance(md5, str) and digest.hexdigest() != md5.lower():
            problems.append("its MD5 digest is not the catalogue's")
        if problems:
            target.unlink(missing_ok=True)
            raise ConfigurationError(f"{url} is not the file the catalogue describes "
                                     f"({'; '.join(problems)}); nothing was kept")


def describe(entry: Mapping[str, Any]) -> str:
    """A catalogue entry in a few words: its language and quality."""
    language = entry.get("language")
    facts = language if isinstance(language, dict) else {}
    english = facts.get("name_english") or facts.get("code") or "?"
    where = f" ({facts['country_english']})" if facts.get("country_english") else ""
    return f"{english}{where}, {entry.get('quality', '?')}"
