"""Languages benchmark: one run in three languages against three separate runs.

Google-mode videos through the real SDK against the project's fake API server, its latencies
set to realistic ratios (a Veo operation ≫ speech ≈ a still > the script); each run has its
own empty cache, as separate runs of different scripts would. Prints the wall time and the
cost of

(a) one run with ``languages=("en", "es", "de")``: the script once, two translations, the
    clips once, narration per scene and language, three compositions;
(b) three separate runs, one per language (each writes its script and pays for its clips);
(c) one run in one language: the floor a run in several languages approaches (its clips
    are the critical path; the other languages add their narration alongside and a
    composition each);

and the ratios (a) ÷ (b) and (a) ÷ (c), with the requests each sent.

    python benchmarks/languages.py              # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avgen import Video, VideoGenerator, VideoRequest
from avgen.resilience import set_testing
from tests.fake_gemini import FakeGemini

KEY = "AIzaSyFAKE-benchmark-key-000000000000"
LATENCY = {"script": 0.4, "speech": 1.0, "image": 1.0, "veo": 0.2, "poll": 0.02,
           "download": 0.05}
OPERATION_SECONDS = 6.0
LANGUAGES = ("en", "es", "de")
KINDS = ("script", "speech", "image", "veo")


def answer(prompt: str) -> dict[str, Any]:
    """The fake model: its script, or a translation of the one in the prompt."""
    if "You translate" not in prompt:
        return FakeGemini().script  # type: ignore[no-any-return]
    found = re.search(r"BCP 47 tag '([\w-]+)'", prompt)
    language = found[1] if found else "xx"
    given = json.loads(prompt.split("SCRIPT:\n", 1)[1].split("\n\nYour previous", 1)[0])
    return {"title": given["title"], "scenes": [
        {"title": scene["title"], "narration": f"({language}) {scene['narration']}"}
        for scene in given["scenes"]]}


def generator(fake: FakeGemini, base: Path) -> VideoGenerator:
    env = {"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_API_KEY": KEY,
           "GOOGLE_VERTEX_BASE_URL": fake.base_url}
    return VideoGenerator("google", output_dir=base / "out", agent_options={
        "env": env, "cache": str(base / "cache"), "poll_interval": 0.25,
        "poll_max_interval": 0.25})


def spent(video: Video) -> float:
    return float(json.loads(video.manifest.read_text("utf-8"))["cost"]["spent"])


def measure(fake: FakeGemini, base: Path, requests: list[VideoRequest]
            ) -> tuple[float, float, dict[str, int]]:
    """Wall time, cost and requests of making ``requests`` one after another, each with a
    fresh cache."""
    fake.reset()
    fake.script = answer
    started, cost = time.perf_counter(), 0.0
    for number, request in enumerate(requests):
        video = generator(fake, base / f"run-{number}").generate_sync(request)
        cost += spent(video)
    return time.perf_counter() - started, cost, {kind: fake.count(kind) for kind in KINDS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, set_testing(), FakeGemini(
            latency=LATENCY, operation_seconds=OPERATION_SECONDS) as fake:
        base = Path(folder)
        topic = "the water cycle"
        together = measure(fake, base / "together", [
            VideoRequest(topic=topic, preset="draft", languages=LANGUAGES)])
        apart = measure(fake, base / "apart", [
            VideoRequest(topic=topic, preset="draft", language=language)
            for language in LANGUAGES])
        alone = measure(fake, base / "alone", [VideoRequest(topic=topic, preset="draft")])
    print(f"(a) one run in {len(LANGUAGES)} languages: {together[0]:6.2f} s  "
          f"${together[1]:.4f}  requests {together[2]}")
    print(f"(b) {len(LANGUAGES)} separate runs:        {apart[0]:6.2f} s  "
          f"${apart[1]:.4f}  requests {apart[2]}")
    print(f"(c) one run in one language: {alone[0]:6.2f} s  "
          f"${alone[1]:.4f}  requests {alone[2]}")
    print(f"ratio (a) / (b): wall time {together[0] / apart[0]:.2f}, "
          f"cost {together[1] / apart[1]:.2f}")
    print(f"ratio (a) / (c): wall time {together[0] / alone[0]:.2f}, "
          f"cost {together[1] / alone[1]:.2f}")


if __name__ == "__main__":
    main()
