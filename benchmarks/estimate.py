"""Estimate benchmark: does `VideoGenerator.estimate` predict what a fresh run pays?

Runs three different requests through the google agents — the real google-genai SDK over
HTTP to the local fake API server (``tests/fake_gemini.py``), which writes scripts to the
asked plan and speaks at about 150 words a minute — each with an empty cache, and compares
the manifest's ``cost.spent`` with the estimate made before the run.

    python benchmarks/estimate.py

Limit: every estimate within 10 % of what its run paid.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_gemini import FakeGemini
from test_google_look import STORY, developer, generator, manifest, planned, vertex

from avgen import Character, VideoRequest
from avgen.resilience import set_testing

LIMIT = 0.10
CASES = (
    ("topic, 24 s, Veo 3.1 Fast at 720p", "vertex",
     {"topic": "a bakery", "duration": 24, "preset": "draft"}, {}),
    ("script, 1080p, Veo 3.1 with a character's references", "vertex",
     {"script": STORY, "preset": "shorts",
      "characters": [Character("Mara", "a baker with silver hair")]},
     {"video_model": "veo-3.1-generate-001"}),
    ("topic, 40 s, Gemini stills (Developer API)", "developer",
     {"topic": "a town at dawn", "duration": 40, "preset": "draft",
      "style": "pencil sketch"}, {}),
)


def main() -> int:
    """Measure every case; returns 0 when each is within the limit."""
    worst = 0.0
    print(f"{'request':<56} {'estimate':>9} {'paid':>9} {'off by':>8}")
    for label, mode, fields, options in CASES:
        with FakeGemini(polls_until_done=1) as fake, set_testing(), \
                tempfile.TemporaryDirectory() as folder:
            fake.script = planned
            fake.speech_seconds_per_char = 1 / 16
            gen = generator(vertex(fake) if mode == "vertex" else developer(fake),
                            Path(folder), **options)
            request = VideoRequest(**fields)
            estimate = gen.estimate(request).total
            paid = manifest(gen.generate_sync(request).session)["cost"]["spent"]
        off = abs(estimate - paid) / paid
        worst = max(worst, off)
        print(f"{label:<56} ${estimate:>8.4f} ${paid:>8.4f} {off:>7.2%}")
    print(f"worst: {worst:.2%} of the run's cost (limit {LIMIT:.0%}; ratio "
          f"{worst / LIMIT:.2f} of the limit)")
    return 0 if worst <= LIMIT else 1


if __name__ == "__main__":
    sys.exit(main())
