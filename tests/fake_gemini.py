"""A local fake of the Gemini / Vertex AI REST API, for tests that drive the real google-genai SDK.

`FakeGemini` serves, over real HTTP on 127.0.0.1, the calls the SDK makes for structured
scripts, speech, Gemini images and Veo clips (submit, poll, download) and ``models.list``,
in the Developer-API and Vertex path forms. It records every request, answers with real
media (PCM or WAV, PNG, H.264/AAC MP4 made with ffmpeg) and can inject faults with
`FakeGemini.fail`.

It is as strict as Google's service: it serves the models of avgen's catalogue on the
surfaces that serve them until their shutdown day (``today=`` sets its date), answers a
retired or unknown id with Google's 404 NOT_FOUND, an Imagen ``predict`` (shut down) the
same way, and settings a model does not take (a clip length, a resolution, reference
images, an aspect ratio, a sampling setting, a response modality) with Google's 400.
"""

from __future__ import annotations

import base64
import copy
import datetime
import http.server
import itertools
import json
import math
import re
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from avgen.agents.google import CATALOGUE
from avgen.agents.google._catalogue import ModelCatalogue, ModelInfo

__all__ = ["FAULTS", "KINDS", "OPERATION_ERROR", "PCM_RATE", "RAI_REASON", "SPEECH_MIME",
           "VIDEO_FPS", "FakeGemini", "FakeOperation", "Recorded", "image_size", "make_mp4",
           "make_pcm", "make_png", "make_wav", "video_size"]

KINDS = ("script", "speech", "image", "text", "imagen", "veo", "poll", "download", "models",
         "unknown")
"""Every kind a request can be classified as."""

_GENERATE = frozenset({"script", "speech", "image", "text"})
_ANY = frozenset(KINDS) - {"unknown"}
FAULTS: dict[str, frozenset[str]] = {
    "rate_limit": _ANY,
    "server_error": _ANY,
    "refused": _ANY,
    "slow": _ANY,
    "html": _ANY,
    "malformed_json": frozenset({"script"}),
    "wrong_shape": frozenset({"script"}),
    "safety_block": _GENERATE | {"veo", "poll"},
    "filtered": _GENERATE | {"veo", "poll"},
    "operation_error": frozenset({"veo", "poll"}),
    "unsupported": frozenset({"veo"}),
}
"""Each fault `FakeGemini.fail` knows, and the kinds it applies to."""

PCM_RATE = 24_000
SPEECH_MIME = f"audio/L16;codec=pcm;rate={PCM_RATE}"
VIDEO_FPS = 24
RAI_REASON = ("Your current safety settings filtered out the generated media. "
              "Support codes: 58061214")
OPERATION_ERROR = {"code": 13, "message": "Internal error while generating"}
VERTEX_VIDEO_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
DEV_VIDEO_TYPE = ("type.googleapis.com/google.ai.generativelanguage.v1beta."
                  "PredictLongRunningResponse")

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ABORTED",
                 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
                 502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}

_REFUSED = {400: "API key not valid. Please pass a valid API key.",
            401: "Request had invalid authentication credentials.",
            403: "Permission denied: Consumer 'api_key:{key}' has been suspended."}
"""What Google says when it refuses credentials (``{key}``: the key the request carried,
echoed back as Google does for a suspended consumer)."""

_HTML = (b"<!DOCTYPE html><html><head><title>Sign in to the network</title></head>"
         b"<body><p>Please accept the terms to continue.</p></body></html>")
"""What the ``html`` fault answers, with HTTP 200: a captive portal's or a proxy's page."""

_VERSION = r"/(?P<version>v1|v1beta|v1beta1|v1alpha)/"
_MODEL = (r"(?P<model_path>(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/[^/]+/)?"
          r"models/(?P<model>[^/:]+))")
_RE_METHOD = re.compile(_VERSION + _MODEL + r":(?P<method>[A-Za-z]+)$")
_RE_OPERATION = re.compile(_VERSION + r"(?P<name>" + _MODEL + r"/operations/(?P<op>[^/:]+))$")
_RE_FILE = re.compile(_VERSION + r"files/(?P<id>[a-z0-9]+):download$")
_RE_MEDIA = re.compile(r"/media/(?P<id>[a-z0-9]+)\.mp4$")
_RE_LIST = re.compile(_VERSION + r"(?P<publisher>publishers/google/)?models$")

_IMAGE_SIZES = {"1:1": (128, 128), "9:16": (90, 160), "16:9": (160, 90), "3:4": (96, 128),
                "4:3": (128, 96), "2:3": (96, 144), "3:2": (144, 96), "4:5": (128, 160),
                "5:4": (160, 128), "21:9": (168, 72)}
_VIDEO_SIZES = {"9:16": (144, 256), "16:9": (256, 144), "1:1": (192, 192)}


def _default_script() -> dict[str, Any]:
    return {
        "title": "The Water Cycle",
        "scenes": [
            {"title": "Evaporation",
             "narration": "The sun warms the ocean every day. "
                          "Water rises into the air as invisible vapour.",
             "visual": "Sunlight glittering on a calm blue ocean with rising mist",
             "seconds": 6, "search_terms": ["ocean mist", "sunlit sea", "ocean"]},
            {"title": "Condensation",
             "narration": "High in the sky the vapour cools down. "
                          "It gathers into clouds made of tiny droplets.",
             "visual": "White clouds forming and drifting over green mountains",
             "seconds": 6, "search_terms": ["forming clouds", "clouds"]},
            {"title": "Precipitation",
             "narration": "The droplets join and grow heavy. "
                          "They fall back to the ground as rain and snow.",
             "visual": "Rain falling on a forest and flowing into a river",
             "seconds": 6},
        ],
    }


@dataclass(frozen=True)
class Recorded:
    """One request the fake received, and how it answered."""

    method: str
    path: str
    """The URL path, without the query string."""
    query: dict[str, str]
    headers: dict[str, str]
    """Request headers, lower-case names."""
    body: Any
    """The parsed JSON body, or None (no body, or not JSON)."""
    kind: str
    """One of `KINDS`."""
    prompt: str | None
    """The text prompt found in the body (for a poll or download: the operation's prompt)."""
    has_image: bool
    """An input image was sent (inline image part, or a Veo/Imagen instance image)."""
    status: int
    """The HTTP status the fake answered."""
    voice: str | None = None
    """The prebuilt voice name of a speech request."""
    operation: str | None = None
    """The operation name a veo submit created, or a poll asked for."""
    fault: str | None = None
    """The fault injected into this request, if any."""
    at: float = 0.0
    """When it arrived (`time.monotonic`)."""
    images: int = 0
    """Input images sent: inline image parts of a generate request, or a Veo submit's
    reference images."""


@dataclass
class FakeOperation:
    """A Veo long-running operation the fake created."""

    id: str
    name: str
    prompt: str | None
    duration_seconds: int
    aspect_ratio: str
    generate_audio: bool | None
    has_image: bool
    sample_count: int = 1
    polls: int = 0
    started: float = 0.0
    """When it was submitted (`time.monotonic`)."""
    finished: float | None = None
    """When a poll first answered it done (`time.monotonic`)."""
    outcome: str = "video"
    """``"video"``, ``"filtered"`` or ``"error"``."""
    media: list[str] = field(default_factory=list)
    """Ids of the clips served under ``/media/<id>.mp4``."""


@dataclass
class _Fault:
    kind: str
    fault: str
    remaining: int
    match: str | None
    options: dict[str, Any]


@dataclass
class _Answer:
    status: int
    body: bytes
    content_type: str = "application/json; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> _Answer:
    return _Answer(status, json.dumps(value).encode(), headers=headers or {})


def _error(status: int, message: str, details: list[Any] | None = None,
           headers: dict[str, str] | None = None) -> _Answer:
    error: dict[str, Any] = {"code": status, "message": message,
                             "status": _STATUS_NAMES.get(status, "UNKNOWN")}
    if details is not None:
        error["details"] = details
    return _json(status, {"error": error}, headers)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _get(value: Any, *keys: str | int) -> Any:
    """``value[k1][k2]...`` or None when any step is missing.

    A camelCase key also matches its snake_case spelling: like the real API (proto JSON),
    the fake accepts both, and the SDK sends some nested fields (``inlineData.mime_type``,
    ``speechConfig.voice_config``...) in snake_case.
    """
    for key in keys:
        if isinstance(key, int):
            if not isinstance(value, list) or len(value) <= key:
                return None
            value = value[key]
        elif not isinstance(value, dict):
            return None
        else:
            value = value[key] if key in value else value.get(_snake(key))
    return value


def _credential(headers: Any, query: str) -> str | None:
    """The API key or access token a request carried (header, bearer token or ``?key=``)."""
    key = headers.get("x-goog-api-key") or dict(parse_qsl(query)).get("key")
    if key:
        return str(key)
    auth = str(headers.get("authorization") or "")
    return auth.removeprefix("Bearer ").strip() or None


def _tokens(text: str | None) -> int:
    return max(1, len(text or "") // 4)


def _usage(prompt: str | None, output_tokens: int) -> dict[str, int]:
    prompt_tokens = _tokens(prompt)
    return {"promptTokenCount": prompt_tokens, "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens}


def _generate_kind(model: str, config: Any, entry: ModelInfo | None = None) -> str:
    """What a ``generateContent`` request asks for: speech, an image, a script (JSON) or
    text (an image model asked for nothing in particular answers with an image)."""
    modalities = [str(m).upper() for m in _get(config, "responseModalities") or []]
    if "AUDIO" in modalities:
        return "speech"
    drawn = entry.kind == "image" if entry is not None else "-image" in model
    if "IMAGE" in modalities or (drawn and not modalities):
        return "image"
    if _get(config, "responseMimeType") == "application/json":
        return "script"
    return "text"


def _methods(model: ModelInfo) -> list[str]:
    """The methods ``models.list`` names for a model."""
    if model.can.method == "generateContent":
        return ["generateContent", "countTokens"]
    return [model.can.method]


_OUTPUTS = {"text": "TEXT", "speech": "AUDIO", "image": "TEXT, IMAGE", "video": "VIDEO"}
_ASKED = {"script": "text", "text": "text", "speech": "speech", "image": "image",
          "imagen": "image", "veo": "video"}


def _unsupported(model: ModelInfo, kind: str, body: Any, config: Any) -> str | None:
    """Why the real service would refuse this request to ``model`` (HTTP 400), or None."""
    can = model.can
    if _ASKED.get(kind) != model.kind:
        asked = {"speech": "AUDIO", "image": "IMAGE"}.get(kind, "TEXT")
        return (f"The requested combination of response modalities ({asked}) is not "
                f"supported by the model. models/{model.id} accepts the following combination "
                f"of response modalities:\n* {_OUTPUTS[model.kind]}")
    if kind == "script" and not can.structured_output:
        return f"JSON mode is not enabled for models/{model.id}"
    sampled = [name for name in ("temperature", "topP", "topK")
               if _get(config, name) is not None]
    if sampled and not can.sampling:
        return f"{sampled[0]} is not supported for models/{model.id}."
    if kind == "image":
        ratio = _get(config, "imageConfig", "aspectRatio")
        if ratio is not None and ratio not in can.aspect_ratios:
            return (f"Unsupported aspect ratio {ratio!r} for models/{model.id}; supported: "
                    f"{', '.join(can.aspect_ratios)}")
        pictures = sum(str(_get(part, "inlineData", "mimeType") or "").startswith("image/")
                       for content in _get(body, "contents") or []
                       for part in _get(content, "parts") or [])
        if pictures > can.input_images:
            return (f"models/{model.id} takes at most {can.input_images} input images, not "
                    f"{pictures}")
    if kind == "imagen":
        ratio = _get(body, "parameters", "aspectRatio")
        if ratio is not None and ratio not in can.aspect_ratios:
            return f"Unsupported aspect ratio: {ratio}"
    if kind == "veo":
        return _veo_unsupported(model, body)
    return None


def _veo_unsupported(model: ModelInfo, body: Any) -> str | None:
    """Why Veo would refuse this submit (HTTP 400), or None."""
    can = model.can
    params = _get(body, "parameters") or {}
    instance = _get(body, "instances", 0) or {}
    seconds = _get(params, "durationSeconds")
    resolution = _get(params, "resolution")
    ratio = _get(params, "aspectRatio")
    references = _get(instance, "referenceImages") or []
    if seconds is not None and int(seconds) not in can.durations:
        return (f"Unsupported output video duration {seconds} seconds, supported durations "
                f"are [{','.join(map(str, can.durations))}] for feature text_to_video.")
    if resolution is not None and resolution not in can.resolutions:
        return f"Unsupported resolution: {resolution} for {model.id}."
    if ratio is not None and ratio not in can.aspect_ratios:
        return f"Unsupported aspect ratio: {ratio} for {model.id}."
    if references and len(references) > can.reference_images:
        return ("Your use case is currently not supported. Please refer to Gemini API "
                "documentation for current model offering.")
    if _get(instance, "image") is not None and not can.image_to_video:
        return f"Image to video is not supported for {model.id}."
    if _get(params, "generateAudio") and not can.audio:
        return f"generateAudio is not supported for {model.id}."
    forced = [what for what in can.eight_seconds_with
              if what == resolution or (what == "references" and references)]
    if forced and seconds is not None and int(seconds) != 8:
        return (f"Unsupported output video duration {seconds} seconds with {forced[0]}: it "
                "must be 8 seconds.")
    return None


# ---------------------------------------------------------------------------------- media

_media_lock = threading.Lock()
_png_cache: dict[tuple[int, int], bytes] = {}
_mp4_cache: dict[tuple[int, int, float, bool], bytes] = {}
_mp4_locks: dict[tuple[int, int, float, bool], threading.Lock] = {}
"""One lock per clip's parameters: making one clip holds up only those asking for it."""


def image_size(aspect_ratio: str | None) -> tuple[int, int]:
    """The (width, height) of the PNG served for an aspect ratio such as ``"9:16"``."""
    ratio = aspect_ratio or "1:1"
    if ratio in _IMAGE_SIZES:
        return _IMAGE_SIZES[ratio]
    try:
        w, h = (float(part) for part in ratio.split(":"))
        scale = 160 / max(w, h)
        return max(1, round(w * scale)), max(1, round(h * scale))
    except ValueError:
        return _IMAGE_SIZES["1:1"]


def video_size(aspect_ratio: str | None) -> tuple[int, int]:
    """The (width, height) of the MP4 served for an aspect ratio (default 16:9)."""
    return _VIDEO_SIZES.get(aspect_ratio or "16:9", _VIDEO_SIZES["16:9"])


def make_png(width: int, height: int) -> bytes:
    """An RGB PNG of a gradient with a checker pattern (cached)."""
    with _media_lock:
        if (width, height) in _png_cache:
            return _png_cache[(width, height)]
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            check = 200 if (x // 16 + y // 16) % 2 else 40
            rows += bytes((x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), check))

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(bytes(rows)))
           + chunk(b"IEND", b""))
    with _media_lock:
        _png_cache[(width, height)] = png
    return png


def make_pcm(seconds: float, rate: int = PCM_RATE) -> bytes:
    """Raw 16-bit little-endian mono PCM of a quiet 200 Hz sine, ``round(seconds * rate)``
    samples long."""
    period = rate // 200
    one = b"".join(struct.pack("<h", round(3000 * math.sin(2 * math.pi * i / period)))
                   for i in range(period))
    count = round(seconds * rate)
    return (one * (count // period + 1))[: count * 2]


def make_wav(seconds: float, rate: int = PCM_RATE) -> bytes:
    """A whole WAV file (16-bit mono) of `make_pcm`'s sine, as Gemini 3.8 speech models
    answer."""
    pcm = make_pcm(seconds, rate)
    header = (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
              + b"data" + struct.pack("<I", len(pcm)))
    return header + pcm


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def make_mp4(width: int, height: int, seconds: float, audio: bool = True) -> bytes:
    """An H.264 yuv420p MP4 of ffmpeg's moving ``testsrc2`` pattern at 24 fps, with an AAC
    sine track when ``audio`` (cached by parameters for the whole test session)."""
    key = (width, height, float(seconds), audio)
    with _media_lock:
        if key in _mp4_cache:
            return _mp4_cache[key]
        making = _mp4_locks.setdefault(key, threading.Lock())
    with making:
        with _media_lock:
            if key in _mp4_cache:  # made meanwhile by whoever held the lock
                return _mp4_cache[key]
        args = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
                "-f", "lavfi", "-i", f"testsrc2=s={width}x{height}:r={VIDEO_FPS}:d={seconds}"]
        if audio:
            args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:d={seconds}",
                     "-c:a", "aac", "-b:a", "48k"]
        args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                 "-movflags", "+faststart"]
        with tempfile.TemporaryDirectory(prefix="fake-gemini-") as tmp:
            out = Path(tmp) / "clip.mp4"
            proc = subprocess.run([*args, str(out)], capture_output=True, timeout=120,
                                  check=False)
            if proc.returncode != 0:
                raise RuntimeError("ffmpeg failed: " + proc.stderr.decode("utf-8", "replace"))
            data = out.read_bytes()
        with _media_lock:
            _mp4_cache[key] = data
        return data


# ---------------------------------------------------------------------------------- server


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # Skip HTTPServer.server_bind's reverse DNS lookup (getfqdn).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | socket.timeout):
            return  # the client went away (e.g. its timeout fired during a "slow" fault)
        super().handle_error(request, client_address)


def _handler_class(fake: FakeGemini) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "FakeGemini/1.0"
        protocol_version = "HTTP/1.1"  # connections kept alive between requests, as Google's

        def _any(self) -> None:
            fake._serve(self)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class FakeGemini:
    """A fake Gemini / Vertex AI HTTP server; use as a context manager.

    ``polls_until_done``: a Veo operation is done at its n-th poll, n = polls_until_done
    (0: already done in the submit answer); the attribute may be changed while the server
    runs (each poll reads it), for instance to hold operations running and let them finish
    later. ``speech_seconds_per_char``: length of the TTS
    audio per character of text (at least 0.5 s). ``video_delivery``: ``"inline"`` (video
    bytes in the operation) or ``"uri"`` (a URL to download them from). ``latency``: seconds
    to wait before answering, by kind; ``operation_seconds``: the least time a Veo operation
    takes (both model a real service's pace for batch tests and benchmarks).
    """

    def __init__(self, *, polls_until_done: int = 1, speech_seconds_per_char: float = 0.04,
                 video_delivery: str = "inline", latency: dict[str, float] | None = None,
                 operation_seconds: float = 0.0, today: datetime.date | None = None,
                 catalogue: ModelCatalogue = CATALOGUE,
                 speech_format: str | None = None) -> None:
        if video_delivery not in ("inline", "uri"):
            raise ValueError(f"video_delivery must be 'inline' or 'uri', not {video_delivery!r}")
        self.today = today or datetime.date.today()
        """The service's date: a model past its shutdown on it answers 404, as Google's do."""
        self.speech_format = speech_format
        """How speech comes back: ``"pcm"`` (raw samples), ``"wav"`` (a whole file), or
        ``None``: as the model's catalogue entry says."""
        self.catalogue = catalogue
        """The models the service serves (on each surface, until their shutdown), what they
        can do and how they are called: a request outside them gets the real service's
        error."""
        self.polls_until_done = polls_until_done
        self.speech_seconds_per_char = speech_seconds_per_char
        self.video_delivery = video_delivery
        self.latency = dict(latency or {})
        """Seconds to wait before answering a request, by kind (a slow service)."""
        self.operation_seconds = operation_seconds
        """A Veo operation is done no sooner than this many seconds after its submit."""
        self.script: Any = _default_script()
        self.text: Any = None
        """Answers a plain text request (a prompt rewrite): a function of the prompt, or
        None for an echo of the prompt's first 200 characters."""
        self.requests: list[Recorded] = []
        self.operations: dict[str, FakeOperation] = {}
        """Veo operations by id."""
        self.errors: list[str] = []
        """Tracebacks of bugs in the fake itself (each answered with HTTP 500)."""
        self._faults: list[_Fault] = []
        self._media: dict[str, tuple[int, int, float, bool, str | None]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def __enter__(self) -> FakeGemini:
        self._stop.clear()
        self._server = _Server(("127.0.0.1", 0), _handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-gemini", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()  # wakes "slow" faults
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` while running."""
        if self._server is None:
            raise RuntimeError("FakeGemini is not running: use it in a `with` block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- inspection and control

    def calls(self, kind: str | None = None) -> list[Recorded]:
        """The recorded requests (of one kind), in arrival order."""
        with self._lock:
            return [r for r in self.requests if kind is None or r.kind == kind]

    def count(self, kind: str) -> int:
        """How many requests of ``kind`` arrived."""
        return len(self.calls(kind))

    def peak_operations(self) -> int:
        """The most Veo operations that were running at once (submitted, not yet seen done
        by a poll); one never seen done counts as running to the end."""
        with self._lock:
            edges = sorted([(op.started, 1) for op in self.operations.values()]
                           + [(op.finished, -1) for op in self.operations.values()
                              if op.finished is not None], key=lambda e: (e[0], e[1]))
        peak = running = 0
        for _, change in edges:
            running += change
            peak = max(peak, running)
        return peak

    def fail(self, kind: str, fault: str, *, times: int = 1, match: str | None = None,
             **options: Any) -> None:
        """Answer the next ``times`` requests of ``kind`` (whose prompt contains ``match``)
        with ``fault`` instead of normally. Options: ``retry_after`` (seconds: rate_limit,
        default 1; server_error, default none), ``via`` (how ``retry_after`` is sent:
        ``"both"``, the default, ``"header"`` for ``Retry-After`` only, ``"retry_info"`` for
        the body's ``RetryInfo`` only), ``status`` (server_error, default 503; refused: 400,
        401 or 403, the default), ``message`` (rate_limit, server_error, refused: the error
        message; ``{key}`` in it is replaced by the key or token the request carried),
        ``seconds`` (slow, required). ``html`` answers HTTP 200 with an HTML page (a proxy
        or a captive portal in the service's place); ``unsupported`` refuses a Veo submit as
        Veo refuses a combination it does not take (400 "use case is currently not
        supported")."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {sorted(FAULTS)}")
        if kind not in FAULTS[fault]:
            raise ValueError(f"fault {fault!r} does not apply to kind {kind!r}; "
                             f"it applies to {sorted(FAULTS[fault])}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if fault == "slow" and "seconds" not in options:
            raise ValueError("the 'slow' fault needs seconds=...")
        if options.get("via", "both") not in ("both", "header", "retry_info"):
            raise ValueError("via must be 'both', 'header' or 'retry_info'")
        with self._lock:
            self._faults.append(_Fault(kind, fault, times, match, dict(options)))

    def expire(self) -> None:
        """Forget every Veo operation, as the service does when they expire: a later poll
        of one is answered 404 NOT_FOUND."""
        with self._lock:
            self.operations.clear()

    def reset(self) -> None:
        """Forget the recorded requests and every pending fault."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    def _take_fault(self, kind: str, prompt: str | None) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and (fault.match is None or fault.match in (prompt or "")):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _new_id(self) -> str:
        return f"op{next(self._ids):04d}{id(self) % 100000:05d}"

    # -- HTTP

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        url = urlsplit(handler.path)
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        info: dict[str, Any] = {"kind": "unknown", "prompt": None, "has_image": False,
                                "credential": _credential(handler.headers, url.query)}
        try:
            answer, fault = self._dispatch(handler.command, url.path, body, info, url.query)
        except Exception:
            trace = traceback.format_exc()
            self.errors.append(trace)
            answer, fault = _error(500, "fake_gemini bug:\n" + trace), None
        recorded = Recorded(
            method=handler.command, path=url.path, query=dict(parse_qsl(url.query)),
            headers={k.lower(): v for k, v in handler.headers.items()}, body=body,
            kind=info["kind"], prompt=info["prompt"], has_image=info["has_image"],
            status=answer.status, voice=info.get("voice"), operation=info.get("operation"),
            fault=fault.fault if fault else None, at=arrived, images=info.get("images", 0))
        with self._lock:
            self.requests.append(recorded)
        if self.latency.get(recorded.kind):
            self._stop.wait(self.latency[recorded.kind])
        if fault is not None and fault.fault == "slow":
            self._stop.wait(float(fault.options["seconds"]))
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(answer.body)

    def _dispatch(self, method: str, path: str, body: Any, info: dict[str, Any],
                  query: str = "") -> tuple[_Answer, _Fault | None]:
        match = _RE_LIST.match(path)
        if match and method == "GET":
            return self._list_models("vertex" if match["publisher"] else "developer", query,
                                     info)
        match = _RE_METHOD.match(path)
        if match and method == "POST":
            rpc = match["method"]
            surface = "vertex" if match["model_path"].startswith(("projects/", "publishers/")) \
                else "developer"
            refused = self._model_refused(match["model"], match["model_path"], surface, rpc,
                                          match["version"], body, info)
            if refused is not None:
                return refused, None
            if rpc in ("generateContent", "streamGenerateContent"):
                return self._generate(match["model"], body, info, stream=rpc != "generateContent")
            if rpc == "predictLongRunning":
                return self._veo(match["model_path"], body, info)
            if rpc == "fetchPredictOperation":
                return self._poll(_get(body, "operationName"), info, vertex=True)
        match = _RE_OPERATION.match(path)
        if match and method == "GET":
            vertex = match["model_path"].startswith(("projects/", "publishers/"))
            return self._poll(match["name"], info, vertex=vertex)
        match = _RE_MEDIA.match(path) or _RE_FILE.match(path)
        if match and method == "GET":
            return self._download(match["id"], info)
        return _error(404, f"Method not found: {method} {path}"), None

    @staticmethod
    def _common_fault(fault: _Fault | None, info: dict[str, Any]) -> _Answer | None:
        if fault is None or fault.fault not in ("rate_limit", "server_error", "refused",
                                                "html"):
            return None
        if fault.fault == "html":  # a proxy or portal answering in the service's place
            return _Answer(200, _HTML, "text/html; charset=utf-8")
        options = fault.options
        if fault.fault == "rate_limit":
            status, delay = 429, options.get("retry_after", 1)
            message = "Resource has been exhausted (e.g. check quota)."
        elif fault.fault == "server_error":
            status, delay = int(options.get("status", 503)), options.get("retry_after")
            message = {500: "Internal error encountered.",
                       503: "The service is currently unavailable."}.get(status, "Server error.")
        else:
            status, delay = int(options.get("status", 403)), None
            message = _REFUSED.get(status, "The request was refused.")
        message = str(options.get("message", message)).replace("{key}",
                                                                 info.get("credential") or "")
        via = options.get("via", "both")
        details: list[Any] | None = None
        headers: dict[str, str] = {}
        if delay is not None and via in ("both", "retry_info"):
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                        "retryDelay": f"{delay}s"}]
        if delay is not None and via in ("both", "header"):
            headers["Retry-After"] = str(delay)
        return _error(status, message, details, headers)

    # -- which models exist, and what each accepts

    def _list_models(self, surface: str, query: str,
                     info: dict[str, Any]) -> tuple[_Answer, _Fault | None]:
        """``models.list``: the models this service serves on ``surface`` today, a page at a
        time (``pageSize``, ``pageToken``), in the shape of each surface's answer."""
        info.update(kind="models")
        fault = self._take_fault("models", None)
        answer = self._common_fault(fault, info)
        if answer is not None:
            return answer, fault
        params = dict(parse_qsl(query))
        live = [m for m in self.catalogue
                if m.status(surface, self.today) not in ("retired", "unserved")]  # type: ignore[arg-type]
        size = max(1, min(1000, int(params.get("pageSize") or 50)))
        start = int(params.get("pageToken") or 0)
        page = live[start:start + size]
        listed: dict[str, Any]
        if surface == "developer":
            listed = {"models": [{
                "name": f"models/{m.id}", "version": "001", "displayName": m.id,
                "supportedGenerationMethods": _methods(m)} for m in page]}
        else:
            listed = {"publisherModels": [{
                "name": f"publishers/google/models/{m.id}", "versionId": "001",
                "launchStage": "GA" if m.stage == "ga" else "PUBLIC_PREVIEW"} for m in page]}
        if start + size < len(live):
            listed["nextPageToken"] = str(start + size)
        return _json(200, listed), fault

    def _model_refused(self, model: str, model_path: str, surface: str, rpc: str,
                       version: str, body: Any, info: dict[str, Any]) -> _Answer | None:
        """The real service's error for a request to a model it does not serve (404) or
        with settings the model does not take (400), or None to answer it."""
        if rpc not in ("generateContent", "streamGenerateContent", "predict",
                       "predictLongRunning"):
            return None  # a poll is judged by its operation; other methods are not served
        config = _get(body, "generationConfig") or {}
        entry = self.catalogue.get(model)
        kind = {"predict": "imagen", "predictLongRunning": "veo"}.get(rpc) \
            or _generate_kind(model, config, entry)
        info.update(kind=kind)
        method = rpc.removeprefix("stream").replace("GenerateContent", "generateContent")
        status = entry.status(surface, self.today) if entry is not None else None  # type: ignore[arg-type]
        if entry is None or status in ("retired", "unserved") or entry.can.method != method:
            if surface == "developer" and status == "retired":
                return _error(404, f"This model models/{model} is no longer available. "
                              "Please update your code to use a newer model for the latest "
                              "features and improvements.")
            if surface == "developer":
                return _error(404, f"models/{model} is not found for API version {version}, "
                              f"or is not supported for {rpc}. Call ListModels to see the "
                              "list of available models and their supported methods.")
            return _error(404, f"Publisher Model `{model_path}` was not found or your "
                          "project does not have access to it. Please ensure you are using "
                          "a valid model version. For more information, see: https://cloud."
                          "google.com/vertex-ai/generative-ai/docs/learn/model-versions")
        problem = _unsupported(entry, kind, body, config)
        info["entry"] = entry
        return None if problem is None else _error(400, problem)

    # -- generateContent

    def _generate(self, model: str, body: Any, info: dict[str, Any],
                  stream: bool) -> tuple[_Answer, _Fault | None]:
        config = _get(body, "generationConfig") or {}
        kind = info["kind"] if info["kind"] != "unknown" else _generate_kind(model, config)
        texts: list[str] = []
        images = 0
        for content in _get(body, "contents") or []:
            for sent in _get(content, "parts") or []:
                if isinstance(_get(sent, "text"), str):
                    texts.append(sent["text"])
                mime = _get(sent, "inlineData", "mimeType") or _get(sent, "fileData", "mimeType")
                images += str(mime or "").startswith("image/")
        prompt = "\n".join(texts) if texts else None
        info.update(kind=kind, prompt=prompt, has_image=images > 0, images=images)
        if kind == "speech":
            speech = _get(config, "speechConfig") or {}
            voices = [_get(speech, "voiceConfig", "prebuiltVoiceConfig", "voiceName")]
            voices += [_get(s, "voiceConfig", "prebuiltVoiceConfig", "voiceName")
                       for s in _get(speech, "multiSpeakerVoiceConfig", "speakerVoiceConfigs")
                       or []]
            info["voice"] = ",".join(v for v in voices if v) or None
        fault = self._take_fault(kind, prompt)
        answer = self._common_fault(fault, info)
        if answer is not None:
            return answer, fault
        name = fault.fault if fault else None
        result: dict[str, Any]
        if name == "safety_block":
            result = {"promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                   "probability": "HIGH", "blocked": True}]},
                "usageMetadata": _usage(prompt, 0)}
        elif name == "filtered":
            result = {"candidates": [{
                "finishReason": "SAFETY", "index": 0,
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                                   "probability": "HIGH", "blocked": True}]}],
                "usageMetadata": _usage(prompt, 0)}
        else:
            if kind == "script":
                script = self.script(prompt or "") if callable(self.script) else self.script
                text = json.dumps(script)
                if name == "malformed_json":
                    text = text[: len(text) // 2]
                elif name == "wrong_shape":
                    text = json.dumps({"scenes": "none"})
                part: dict[str, Any] = {"text": text}
                out_tokens = _tokens(text)
            elif kind == "speech":
                seconds = max(0.5, len(prompt or "") * self.speech_seconds_per_char)
                entry = info.get("entry")
                wav = self.speech_format == "wav" if self.speech_format else \
                    entry is not None and entry.can.audio_format == "wav"
                if wav:
                    part = {"inlineData": {"mimeType": "audio/wav",
                                           "data": _b64(make_wav(seconds))}}
                else:
                    part = {"inlineData": {"mimeType": SPEECH_MIME,
                                           "data": _b64(make_pcm(seconds))}}
                out_tokens = round(seconds * self.catalogue.audio_tokens_per_second)
            elif kind == "image":
                ratio = _get(config, "imageConfig", "aspectRatio")
                part = {"inlineData": {"mimeType": "image/png",
                                       "data": _b64(make_png(*image_size(ratio)))}}
                out_tokens = 1290
            else:
                text = (self.text(prompt or "") if callable(self.text)
                        else f"This is a fake answer to: {(prompt or '')[:200]}")
                part = {"text": text}
                out_tokens = _tokens(text)
            result = {"candidates": [{"content": {"role": "model", "parts": [part]},
                                      "finishReason": "STOP", "index": 0}],
                      "usageMetadata": _usage(prompt, out_tokens)}
        result["modelVersion"] = model
        if stream:
            return _Answer(200, f"data: {json.dumps(result)}\r\n\r\n".encode(),
                           "text/event-stream"), fault
        return _json(200, result), fault

    # -- Veo

    def _veo(self, model_path: str, body: Any,
             info: dict[str, Any]) -> tuple[_Answer, _Fault | None]:
        prompt = _get(body, "instances", 0, "prompt")
        has_image = _get(body, "instances", 0, "image") is not None
        info.update(kind="veo", prompt=prompt, has_image=has_image,
                    images=len(_get(body, "instances", 0, "referenceImages") or []))
        fault = self._take_fault("veo", prompt)
        answer = self._common_fault(fault, info)
        if answer is not None:
            return answer, fault
        if fault is not None and fault.fault == "unsupported":  # what Veo says of some refs
            return _error(400, "Your use case is currently not supported. Please refer to "
                          "Gemini API documentation for current model offering."), fault
        params = _get(body, "parameters") or {}
        op_id = self._new_id()
        op = FakeOperation(
            id=op_id, name=f"{model_path}/operations/{op_id}", prompt=prompt,
            duration_seconds=int(_get(params, "durationSeconds") or 8),
            aspect_ratio=str(_get(params, "aspectRatio") or "16:9"),
            generate_audio=_get(params, "generateAudio"), has_image=has_image,
            sample_count=int(_get(params, "sampleCount") or 1), started=time.monotonic())
        if fault and fault.fault in ("safety_block", "filtered"):
            op.outcome = "filtered"
        elif fault and fault.fault == "operation_error":
            op.outcome = "error"
        with self._lock:
            self.operations[op_id] = op
        info["operation"] = op.name
        if self.polls_until_done <= 0 and self.operation_seconds <= 0:
            op.finished = op.started
            return _json(200, self._operation_state(op, done=True, vertex=True)), fault
        if op.outcome == "video" and self.operation_seconds > 0:
            # as the service renders while the operation runs, the clip is made meanwhile,
            # not by the poll that finds it done
            width, height = video_size(op.aspect_ratio)
            threading.Thread(target=make_mp4, daemon=True, args=(
                width, height, op.duration_seconds, op.generate_audio is not False)).start()
        return _json(200, {"name": op.name}), fault

    def _poll(self, name: Any, info: dict[str, Any],
              vertex: bool) -> tuple[_Answer, _Fault | None]:
        info.update(kind="poll", operation=name)
        op_id = str(name).rpartition("/operations/")[2] if isinstance(name, str) else ""
        with self._lock:
            op = self.operations.get(op_id)
        info["prompt"] = op.prompt if op else None
        info["has_image"] = op.has_image if op else False
        fault = self._take_fault("poll", info["prompt"])
        answer = self._common_fault(fault, info)
        if answer is not None:
            return answer, fault
        if op is None:
            return _error(404, f"Operation {name} not found."), fault
        forced = fault is not None and fault.fault in ("safety_block", "filtered",
                                                       "operation_error")
        with self._lock:
            if fault is not None and forced:
                op.outcome = "error" if fault.fault == "operation_error" else "filtered"
            op.polls += 1
            now = time.monotonic()
            done = forced or (op.polls >= self.polls_until_done
                              and now - op.started >= self.operation_seconds)
            if done and op.finished is None:
                op.finished = now
        state = self._operation_state(op, done=done, vertex=vertex)
        state["name"] = name
        return _json(200, state), fault

    def _operation_state(self, op: FakeOperation, *, done: bool, vertex: bool) -> dict[str, Any]:
        if not done:
            return {"name": op.name, "done": False}
        if op.outcome == "error":
            return {"name": op.name, "done": True, "error": dict(OPERATION_ERROR)}
        response: dict[str, Any]
        if op.outcome == "filtered":
            response = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [RAI_REASON]}
        else:
            width, height = video_size(op.aspect_ratio)
            audio = op.generate_audio is not False
            with self._lock:
                if not op.media:
                    for _ in range(op.sample_count):
                        media_id = f"{op.id}v{len(self._media)}"
                        self._media[media_id] = (width, height, float(op.duration_seconds),
                                                 audio, op.prompt)
                        op.media.append(media_id)
            videos: list[dict[str, Any]] = []
            for media_id in op.media:
                if self.video_delivery == "uri":
                    uri = (f"{self.base_url}/media/{media_id}.mp4" if vertex else
                           f"https://generativelanguage.googleapis.com/v1beta/files/{media_id}"
                           ":download?alt=media")
                    videos.append({"gcsUri": uri, "mimeType": "video/mp4"} if vertex
                                  else {"video": {"uri": uri}})
                else:
                    data = _b64(make_mp4(width, height, op.duration_seconds, audio))
                    videos.append({"bytesBase64Encoded": data, "mimeType": "video/mp4"}
                                  if vertex else
                                  {"video": {"encodedVideo": data, "encoding": "video/mp4"}})
            response = {"videos": videos} if vertex else {"generatedSamples": videos}
        if vertex:
            return {"name": op.name, "done": True,
                    "response": {"@type": VERTEX_VIDEO_TYPE, **response}}
        return {"name": op.name, "done": True,
                "response": {"@type": DEV_VIDEO_TYPE,
                             "generateVideoResponse": copy.deepcopy(response)}}

    def _download(self, media_id: str, info: dict[str, Any]) -> tuple[_Answer, _Fault | None]:
        with self._lock:
            media = self._media.get(media_id)
        info.update(kind="download", prompt=media[4] if media else None)
        fault = self._take_fault("download", info["prompt"])
        answer = self._common_fault(fault, info)
        if answer is not None:
            return answer, fault
        if media is None:
            return _error(404, f"Media {media_id} not found."), fault
        width, height, seconds, audio, _ = media
        return _Answer(200, make_mp4(width, height, seconds, audio), "video/mp4"), fault
