"""A fake Pexels + Pixabay HTTP server for the stock agents' tests: real HTTP, real media.

`FakeStock` answers Pexels' ``/v1/search`` and ``/videos/search`` and Pixabay's ``/api/``
and ``/api/videos/`` in the documented JSON shapes, and serves the files they point to
(``/media/...``): MP4 clips and JPEG photos made with ffmpeg at the exact size each
rendition announces. It checks the keys (Pexels' ``Authorization`` header, Pixabay's
``key`` parameter), records every request with the time it arrived, can answer the next
requests with 429 and ``X-Ratelimit-Reset``, and can be down (HTTP 500, or closing every
connection without an answer).

It can also be hostile: name any link for the files (``links``: a ``file://`` path, another
host), rewrite its answers (``rewrite``: fields of the wrong type), answer the next requests
of a kind with a redirect (`FakeStock.redirect`), send files one byte at a time (``drip``)
or without their length (``no_length``).
"""

from __future__ import annotations

import contextlib
import http.server
import itertools
import json
import re
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs
from fake_gemini import make_mp4

from avgen.media._ffmpeg import ffmpeg_exe

PEXELS_KEY = "pexels-fake-key-0123456789"
PIXABAY_KEY = "pixabay-fake-key-9876543210"
CLIP_SECONDS = 1.5
DRIP_SECONDS = 120.0
"""How long a dripping download goes on before the fake closes it."""

VIDEO_SIZES = {"landscape": [(640, 360), (960, 540), (1280, 720), (1920, 1080)],
               "portrait": [(360, 640), (540, 960), (720, 1280), (1080, 1920)],
               "square": [(540, 540), (1080, 1080)]}
"""The renditions of every fake Pexels video, by orientation."""
PHOTO_SIZES = {"landscape": (2400, 1600), "portrait": (1600, 2400), "square": (2000, 2000)}
"""The original size of every fake photo, by orientation."""
PEXELS_BOUNDS = (("large2x", 1880, 1300), ("large", 940, 650), ("medium", None, 350),
                 ("small", None, 130))
"""How Pexels resizes a photo for each ``src`` (fit within, never enlarged)."""

_jpeg_cache: dict[tuple[int, int], bytes] = {}
_jpeg_lock = threading.Lock()


def make_jpeg(width: int, height: int) -> bytes:
    """A JPEG of ffmpeg's ``testsrc2`` pattern, exactly ``width`` x ``height`` (odd sizes
    too), cached by size."""
    with _jpeg_lock:
        if (width, height) in _jpeg_cache:
            return _jpeg_cache[width, height]
        with tempfile.TemporaryDirectory(prefix="fake-stock-") as tmp:
            out = Path(tmp) / "photo.jpg"
            subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
                            "-f", "lavfi",
                            "-i", f"testsrc2=s={width + width % 2}x{height + height % 2}",
                            "-vf", f"format=yuvj444p,crop={width}:{height}:0:0",
                            "-frames:v", "1", "-q:v", "5", str(out)], check=True,
                           capture_output=True, timeout=60)
            data = out.read_bytes()
        _jpeg_cache[width, height] = data
        return data


def slug(text: str) -> str:
    """A page slug like Pexels': lowercase words joined by hyphens."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower())[:6]) or "untitled"


def fitted(width: int, height: int, max_w: int | None, max_h: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled to fit within the bounds, never enlarged."""
    scale = min(1.0, max_h / height, (max_w / width) if max_w else 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _stem(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") \
        else word


@attrs.frozen
class Item:
    """One video or photo of a catalogue: what it shows, its shape and length."""

    id: int
    tags: tuple[str, ...]
    """Its keywords (a search matches when every word of the query is among them)."""
    subject: str
    """What it is about (for a benchmark to tell a shot on the subject)."""
    shape: str = "landscape"
    duration: int = 10

    def matches(self, words: list[str]) -> bool:
        tags = {_stem(word) for tag in self.tags for word in tag.split()}
        return bool(words) and all(_stem(word) in tags for word in words)


@attrs.frozen
class Recorded:
    """One request the server received."""

    kind: str
    """``pexels-photos``, ``pexels-videos``, ``pixabay-images``, ``pixabay-videos``,
    ``download`` or ``unknown``."""
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float
    """``time.time()`` when it arrived."""
    status: int
    answer_headers: dict[str, str]
    """The headers of the answer (beyond the content type and length)."""


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError | socket.timeout):
            return
        super().handle_error(request, client_address)


class FakeStock:
    """A fake Pexels and Pixabay; use as a context manager.

    Attributes set while it runs change its next answers: ``down`` (``None``, ``"500"`` or
    ``"refuse"``), ``empty`` (queries with no result), ``results`` (results per search),
    ``links`` (every file link of a search answer, instead of the fake's own), ``rewrite``
    (called with the kind and the answer of a search, returns what is sent instead),
    ``drip`` (files are sent one byte every ``drip`` seconds, for `DRIP_SECONDS` at most)
    and ``no_length`` (files are sent without a ``Content-Length``, ended by closing).
    """

    def __init__(self, *, results: int = 3, catalogue: list[Item] | None = None) -> None:
        self.results = results
        self.catalogue = catalogue
        """When set, Pexels searches answer from it like a keyword engine: the items whose
        tags hold every word of the query (plurals folded), in the asked orientation, in
        catalogue order, at most ``per_page``; ``results`` is then not used."""
        self.down: str | None = None
        self.empty: set[str] = set()
        self.links: str | None = None
        self.rewrite: Callable[[str, dict[str, Any]], Any] | None = None
        self.drip: float | None = None
        self.no_length = False
        self._redirects: dict[str, tuple[int, str]] = {}
        self._closing = threading.Event()
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self._limited = 0
        self._reset: tuple[str, float] = ("seconds", 1.0)
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1000)

    def __enter__(self) -> FakeStock:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "FakeStock/1.0"

            def do_GET(self) -> None:
                fake._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="fake-stock")
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._closing.set()
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
            raise RuntimeError("FakeStock is not running: use it in a `with` block")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- control and inspection

    def rate_limit(self, count: int, *, reset: float, style: str = "seconds") -> None:
        """Answer the next ``count`` requests with 429 and ``X-Ratelimit-Reset``: ``reset``
        seconds from now, sent as seconds (``style="seconds"``, Pixabay) or as the UNIX
        time rounded up (``style="epoch"``, Pexels)."""
        with self._lock:
            self._limited = count
            self._reset = (style, reset)

    def redirect(self, count: int, to: str, *, kind: str = "search") -> None:
        """Answer the next ``count`` requests of ``kind`` (``"search"`` or ``"download"``)
        with ``302 Found``: to ``to`` itself when it has a path, else to the same path and
        query on ``to`` (a scheme, host and port)."""
        with self._lock:
            self._redirects[kind] = (count, to)

    def calls(self, kind: str | None = None) -> list[Recorded]:
        """The requests received, of one kind (``"search"`` for any search)."""
        with self._lock:
            found = list(self.requests)
        if kind == "search":
            return [r for r in found if r.kind not in ("download", "unknown")]
        return [r for r in found if kind is None or r.kind == kind]

    def count(self, kind: str | None = None) -> int:
        """How many requests of a kind were received."""
        return len(self.calls(kind))

    def reset(self) -> None:
        """Forget the recorded requests."""
        with self._lock:
            self.requests.clear()

    # -- serving

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(handler.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        kind = {"/v1/search": "pexels-photos", "/videos/search": "pexels-videos",
                "/api/": "pixabay-images", "/api/videos/": "pixabay-videos"}.get(parts.path)
        if kind is None:
            kind = "download" if parts.path.startswith("/media/") else "unknown"
        headers: dict[str, str] = {}
        try:
            status, body, ctype = self._answer(kind, parts.path, query, handler, headers)
        except Exception as exc:  # a bug in the fake: say so, answer 500
            import traceback

            self.errors.append("".join(traceback.format_exception(exc)))
            status, body, ctype = 500, b"fake bug", "text/plain"
        with self._lock:
            self.requests.append(Recorded(kind, parts.path, query, dict(handler.headers),
                                          time.time(), status, dict(headers)))
        if status == 0:  # refuse: close without an answer
            handler.close_connection = True
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)
            return
        slow = kind == "download" and status == 200 and (self.drip or self.no_length)
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        if not slow:
            handler.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if self.drip and slow:
            self._drip(handler, body, self.drip)
        else:
            handler.wfile.write(body)
        if slow:
            handler.close_connection = True

    def _drip(self, handler: http.server.BaseHTTPRequestHandler, body: bytes,
              every: float) -> None:
        """Send ``body`` one byte every ``every`` seconds until the client leaves, the fake
        stops or `DRIP_SECONDS` pass."""
        until = time.monotonic() + DRIP_SECONDS
        with contextlib.suppress(OSError):
            for byte in body:
                if time.monotonic() > until or self._closing.wait(every):
                    return
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()

    def _answer(self, kind: str, path: str, query: dict[str, str],
                handler: http.server.BaseHTTPRequestHandler, headers: dict[str, str]
                ) -> tuple[int, bytes, str]:
        if self.down == "refuse":
            return 0, b"", ""
        if self.down is not None:
            return 500, b'{"error": "down"}', "application/json"
        with self._lock:
            limited = self._limited > 0
            if limited:
                self._limited -= 1
            style, reset = self._reset
        if limited:
            value = (str(int(time.time() + reset) + 1) if style == "epoch" else f"{reset:g}")
            headers.update({"X-Ratelimit-Limit": "100", "X-Ratelimit-Remaining": "0",
                            "X-Ratelimit-Reset": value})
            return 429, b'{"error": "Too many requests"}', "application/json"
        location = self._redirected("download" if kind == "download" else "search", handler)
        if location is not None:
            headers["Location"] = location
            return 302, b"moved", "text/plain"
        if kind == "download":
            return self._media(path)
        if kind.startswith("pexels") and handler.headers.get("Authorization") != PEXELS_KEY:
            return 401, b'{"error": "Unauthorized"}', "application/json"
        if kind.startswith("pixabay") and query.get("key") != PIXABAY_KEY:
            return 400, b"[ERROR 400] Invalid or missing API key", "text/plain"
        if kind == "unknown":
            return 404, b"not found", "text/plain"
        words = query.get("query") or query.get("q") or ""
        count = 0 if words in self.empty else self.results
        answer = getattr(self, "_" + kind.replace("-", "_"))(words, query, count)
        if self.rewrite is not None:
            answer = self.rewrite(kind, answer)
        headers.update({"X-Ratelimit-Limit": "100", "X-Ratelimit-Remaining": "99"})
        return 200, json.dumps(answer).encode(), "application/json"

    def _redirected(self, kind: str, handler: http.server.BaseHTTPRequestHandler
                    ) -> str | None:
        with self._lock:
            count, to = self._redirects.get(kind, (0, ""))
            if count <= 0:
                return None
            self._redirects[kind] = (count - 1, to)
        if urllib.parse.urlsplit(to).path:
            return to
        return to.rstrip("/") + handler.path

    def _media(self, path: str) -> tuple[int, bytes, str]:
        match = re.fullmatch(r"/media/(\w+)/(\d+)x(\d+)/[\w-]+\.(mp4|jpg)", path)
        if not match:
            return 404, b"not found", "text/plain"
        width, height = int(match.group(2)), int(match.group(3))
        if match.group(4) == "mp4":
            return 200, make_mp4(width, height, CLIP_SECONDS), "video/mp4"
        return 200, make_jpeg(width, height), "image/jpeg"

    def _url(self, what: str, width: int, height: int, name: str, ext: str) -> str:
        if self.links is not None:
            return self.links
        return f"{self.base_url}/media/{what}/{width}x{height}/{name}.{ext}"

    # Pexels

    def found(self, words: str, shape: str, limit: int) -> list[Item]:
        """The catalogue's answer to a search."""
        asked = re.findall(r"\w+", words.lower())
        return [item for item in self.catalogue or []
                if item.shape == shape and item.matches(asked)][:limit]

    def _pexels_photos(self, words: str, query: dict[str, str], count: int) -> dict[str, Any]:
        shape = query.get("orientation", "landscape")
        if self.catalogue is not None:
            return self._catalogue_photos(words, query, shape)
        width, height = PHOTO_SIZES[shape]
        photos = []
        for n in range(count):
            pid = next(self._ids)
            name = f"{slug(words)}-{pid}"
            src = {"original": self._url("photo", width, height, name, "jpg")}
            for key, max_w, max_h in PEXELS_BOUNDS:
                src[key] = self._url("photo", *fitted(width, height, max_w, max_h), name, "jpg")
            photos.append({"id": pid, "width": width, "height": height,
                           "url": f"https://www.pexels.com/photo/{name}/",
                           "photographer": f"Photographer {n + 1}",
                           "photographer_url": f"https://www.pexels.com/@photographer{n + 1}",
                           "photographer_id": n + 1, "avg_color": "#7E7E7E",
                           "alt": f"{words} ({n + 1})", "src": src, "liked": False})
        return {"page": 1, "per_page": int(query.get("per_page", 15)), "photos": photos,
                "total_results": count}

    def _catalogue_photos(self, words: str, query: dict[str, str], shape: str
                          ) -> dict[str, Any]:
        width, height = PHOTO_SIZES[shape]
        items = self.found(words, shape, int(query.get("per_page", 15)))
        photos = []
        for item in items:
            name = f"{slug(' '.join(item.tags[:3]))}-{item.id}"
            src = {"original": self._url("photo", width, height, name, "jpg")}
            for key, max_w, max_h in PEXELS_BOUNDS:
                src[key] = self._url("photo", *fitted(width, height, max_w, max_h), name, "jpg")
            photos.append({"id": item.id, "width": width, "height": height,
                           "url": f"https://www.pexels.com/photo/{name}/",
                           "photographer": f"Photographer {item.id}",
                           "photographer_url": f"https://www.pexels.com/@p{item.id}",
                           "alt": ", ".join(item.tags), "src": src})
        return {"page": 1, "per_page": int(query.get("per_page", 15)), "photos": photos,
                "total_results": len(photos)}

    def _catalogue_videos(self, words: str, query: dict[str, str], shape: str
                          ) -> dict[str, Any]:
        items = self.found(words, shape, int(query.get("per_page", 15)))
        videos = []
        for item in items:
            name = f"{slug(' '.join(item.tags[:3]))}-{item.id}"
            files = [{"id": item.id * 10 + i, "quality": "hd" if h >= 720 else "sd",
                      "file_type": "video/mp4", "width": w, "height": h, "fps": 24,
                      "link": self._url("video", w, h, name, "mp4")}
                     for i, (w, h) in enumerate(VIDEO_SIZES[shape])]
            w, h = VIDEO_SIZES[shape][-1]
            videos.append({"id": item.id, "width": w, "height": h, "duration": item.duration,
                           "url": f"https://www.pexels.com/video/{name}/",
                           "user": {"id": item.id, "name": f"Videographer {item.id}",
                                    "url": f"https://www.pexels.com/@v{item.id}"},
                           "video_files": files})
        return {"page": 1, "per_page": int(query.get("per_page", 15)), "videos": videos,
                "total_results": len(videos)}

    def _pexels_videos(self, words: str, query: dict[str, str], count: int) -> dict[str, Any]:
        shape = query.get("orientation", "landscape")
        if self.catalogue is not None:
            return self._catalogue_videos(words, query, shape)
        videos = []
        for n in range(count):
            vid = next(self._ids)
            name = f"{slug(words)}-{vid}"
            files = [{"id": vid * 10 + i, "quality": "hd" if h >= 720 else "sd",
                      "file_type": "video/mp4", "width": w, "height": h, "fps": 24,
                      "link": self._url("video", w, h, name, "mp4")}
                     for i, (w, h) in enumerate(VIDEO_SIZES[shape])]
            files.append({"id": vid * 10 + 9, "quality": "hls", "file_type": "hls",
                          "width": None, "height": None, "fps": None,
                          "link": f"{self.base_url}/media/hls/{name}.m3u8"})
            w, h = VIDEO_SIZES[shape][-1]
            videos.append({"id": vid, "width": w, "height": h, "duration": 2,
                           "url": f"https://www.pexels.com/video/{name}/",
                           "image": f"{self.base_url}/media/still/{w}x{h}/{name}.jpg",
                           "user": {"id": n + 1, "name": f"Videographer {n + 1}",
                                    "url": f"https://www.pexels.com/@videographer{n + 1}"},
                           "video_files": files, "video_pictures": []})
        return {"page": 1, "per_page": int(query.get("per_page", 15)), "videos": videos,
                "total_results": count}

    # Pixabay

    def _pixabay_images(self, words: str, query: dict[str, str], count: int
                        ) -> dict[str, Any]:
        shape = {"horizontal": "landscape", "vertical": "portrait"}.get(
            query.get("orientation", ""), "square")
        width, height = PHOTO_SIZES[shape]
        hits = []
        for n in range(count):
            pid = next(self._ids)
            name = f"{slug(words)}-{pid}"
            web = fitted(width, height, 640, 640)
            large = fitted(width, height, 1280, 1280)
            hits.append({"id": pid, "pageURL": f"https://pixabay.com/photos/{name}/",
                         "type": "photo", "tags": f"{words}, stock",
                         "previewURL": self._url("photo", *fitted(width, height, 150, 150),
                                                 name, "jpg"),
                         "webformatURL": self._url("photo", *web, name, "jpg"),
                         "webformatWidth": web[0], "webformatHeight": web[1],
                         "largeImageURL": self._url("photo", *large, name, "jpg"),
                         "imageWidth": width, "imageHeight": height, "user_id": 100 + n,
                         "user": f"artist{n + 1}"})
        return {"total": count, "totalHits": count, "hits": hits}

    def _pixabay_videos(self, words: str, query: dict[str, str], count: int
                        ) -> dict[str, Any]:
        hits = []
        for n in range(count):
            vid = next(self._ids)
            name = f"{slug(words)}-{vid}"
            # the first result is portrait, the others landscape (Pixabay has no filter)
            sizes = VIDEO_SIZES["portrait" if n == 0 else "landscape"]
            tiers = dict(zip(("tiny", "small", "medium", "large"), sizes, strict=True))
            hits.append({"id": vid, "pageURL": f"https://pixabay.com/videos/{name}/",
                         "type": "film", "tags": f"{words}, clip", "duration": 2,
                         "videos": {tier: {"url": self._url("video", w, h, name, "mp4"),
                                           "width": w, "height": h, "size": 1000,
                                           "thumbnail": ""}
                                    for tier, (w, h) in tiers.items()},
                         "user_id": 200 + n, "user": f"filmer{n + 1}"})
        return {"total": count, "totalHits": count, "hits": hits}


SUBJECTS: dict[str, tuple[str, ...]] = {
    "coral reef": ("coral", "reef", "fish", "ocean", "underwater", "diver", "tropical", "sea"),
    "volcano": ("volcano", "lava", "eruption", "magma", "crater", "ash", "molten", "rock"),
    "bakery": ("bakery", "bread", "baker", "dough", "oven", "loaf", "flour", "pastry"),
    "bees": ("bee", "honey", "hive", "flower", "pollen", "beekeeper", "honeycomb", "insect"),
    "railway": ("train", "railway", "station", "locomotive", "track", "rail", "commuter"),
    "glacier": ("glacier", "ice", "snow", "iceberg", "arctic", "melt", "cold"),
    "coffee": ("coffee", "bean", "barista", "espresso", "cup", "roast", "cafe"),
    "wind power": ("wind", "turbine", "energy", "renewable", "blade", "power", "farm"),
    "library": ("book", "library", "reading", "shelf", "page", "reader", "study"),
    "traffic": ("traffic", "car", "highway", "road", "driving", "jam", "commute"),
}
"""The subjects of `catalogue` and the words their items are tagged with."""

FILLER_TAGS = ("people", "city", "nature", "sky", "sunset", "background", "abstract",
               "light", "water", "hands", "street", "day", "night", "world", "life",
               "time", "morning", "work", "green", "blue")
"""Generic words the filler items of `catalogue` are tagged with."""


def catalogue(per_subject: int = 24, filler: int = 120, seed: int = 7) -> list[Item]:
    """A tagged catalogue: ``per_subject`` items for each of `SUBJECTS` (each tagged with
    its subject's first word and three to five more of its words), and ``filler`` generic
    items (three to five of `FILLER_TAGS`); two in three landscape, lengths 4 to 20 s."""
    import random

    rng = random.Random(seed)
    items: list[Item] = []
    ids = itertools.count(5000)
    for subject, words in SUBJECTS.items():
        for _ in range(per_subject):
            tags = (words[0], *rng.sample(words[1:], rng.randint(3, 5)))
            items.append(Item(next(ids), tags, subject, rng.choice(("landscape",) * 2
                                                                  + ("portrait",)),
                              rng.randint(4, 20)))
    for _ in range(filler):
        items.append(Item(next(ids), tuple(rng.sample(FILLER_TAGS, rng.randint(3, 5))),
                          "filler", rng.choice(("landscape",) * 2 + ("portrait",)),
                          rng.randint(4, 20)))
    rng.shuffle(items)
    return items
