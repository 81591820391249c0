"""A real S3 server for tests: moto's, started as a process on 127.0.0.1, reached through
s3fs (no in-memory fake)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BUCKET = "avgen-shared-cache"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
HANG_GUARD = 120.0  # seconds: only stops a broken server from hanging the run, never paces it


class S3:
    """A moto S3 server on 127.0.0.1 with one bucket."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.options: dict[str, Any] = {
            "endpoint_url": endpoint, "key": "testing", "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"}}
        import s3fs

        self.fs = s3fs.S3FileSystem(**self.options)

    def url(self) -> str:
        """A new, empty prefix in the bucket."""
        return f"s3://{BUCKET}/{uuid.uuid4().hex}"

    def another_machine(self) -> dict[str, Any]:
        """Storage options for a cache with an S3 client of its own."""
        return {**self.options, "skip_instance_cache": True}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[S3]:
    """``python -m moto.server`` on a free port with the bucket `BUCKET`, until the block
    ends (its output goes to ``log``)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **CREDENTIALS})
    try:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        give_up = time.monotonic() + HANG_GUARD
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"moto's server ended ({server.returncode}): "
                                   f"{log.read_text(errors='replace')[-2000:]}")
            try:
                with direct.open(endpoint + "/", timeout=5):
                    break
            except urllib.error.HTTPError:
                break  # it answers
            except OSError:
                if time.monotonic() > give_up:
                    raise RuntimeError(f"moto's server did not answer on {endpoint}") \
                        from None
                time.sleep(0.1)
        found = S3(endpoint)
        found.fs.call_s3("create_bucket", Bucket=BUCKET)
        yield found
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


