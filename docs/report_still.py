"""Make ``docs/images/report.png``, the run report shown in README.md and docs/report.md.

Usage::

    python docs/report_still.py

A Google video is made against the local fake API server the tests use
(``tests/fake_gemini.py``: the real google-genai SDK over HTTP; no key, no network): a
script with a style and two characters, one Veo operation at a time (so scenes wait for
quota), and one clip refused by the safety filter, then rewritten. Its report is
screenshotted with headless Chromium (``chromium`` from the system's packages) and kept as
a 256-colour PNG. Importing this file does nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["main"]

HERE = Path(__file__).resolve().parent


def main() -> int:
    """Make the screenshot; returns 0 on success."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from fake_gemini import FakeGemini
    from PIL import Image
    from test_google_look import SCENES, bakery, generator, rewritten, vertex

    from avgen import write_report
    from avgen.resilience import set_testing

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("needs Chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    with FakeGemini(polls_until_done=2, operation_seconds=1.0) as fake, set_testing(), \
            tempfile.TemporaryDirectory() as folder:
        fake.script = bakery
        fake.text = rewritten
        fake.fail("veo", "filtered", match=SCENES[1][0])
        video = generator(vertex(fake), Path(folder), max_clip_operations=1).generate_sync(
            topic="a bakery", preset="draft")
        page = write_report(video)
        shot = Path(folder) / "report.png"
        subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--mute-audio", "--no-first-run", "--hide-scrollbars",
                        f"--user-data-dir={Path(folder) / 'profile'}",
                        "--virtual-time-budget=3000", f"--screenshot={shot}",
                        "--window-size=1200,2600", page.as_uri()],
                       check=True, capture_output=True, timeout=120)
        with Image.open(shot) as image:
            image.convert("RGB").quantize(256).save(HERE / "images" / "report.png",
                                                    optimize=True)
    print(HERE / "images" / "report.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
