"""Shared fixtures: no test can pay Google, and none sees the developer's own credentials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from object_store import S3, moto_server

from avgen.testing import block_paid_calls

# No test may depend on how fast the machine is: properties write files and start processes,
# and a busy CI machine must not fail them with DeadlineExceeded. Loaded here, before any test
# module is imported, so every `@settings(...)` in the tests inherits it.
settings.register_profile("avgen", deadline=None)
settings.load_profile("avgen")

collect_ignore = ["typing"]  # type-checked by test_typing.py, never run

_CREDENTIALS = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GEMINI_BASE_URL",
                "GOOGLE_VERTEX_BASE_URL", "GOOGLE_APPLICATION_CREDENTIALS")


@pytest.fixture(autouse=True)
def _no_paid_calls(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[None]:
    for name in _CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("AVGEN_CACHE_DIR", str(tmp_path_factory.mktemp("avgen-cache")))
    with block_paid_calls():
        yield


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty asset cache folder for one test."""
    path = tmp_path / "cache"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """A real S3 server (moto's) with one bucket, until the end of the session."""
    with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as server:
        yield server
