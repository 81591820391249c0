"""Stock footage that fits its scene: a video of ten scenes on ten subjects, written in
natural sentences, made with the Pexels agents against a local fake stock service that
holds a tagged catalogue (`fake_stock.catalogue`: 24 items for each subject and 120 of
generic filler) and searches it like a keyword engine (every word of the query among an
item's tags).

The narration is a tone of 0.45 s a word, so most scenes last longer than a shot (7 s
for this landscape frame): they are cut into shots, each its own clip or photo.

Prints the share of shots whose footage is on the scene's subject (target ≥ 90 %), the
items shown twice (target 0), the searches per scene (at most 3 for each kind) and the
shots of the scenes longer than ``--max-shot``.

    python benchmarks/stock.py [--headings] [--max-shot SECONDS]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_stock import PEXELS_KEY, FakeStock, catalogue  # noqa: E402

from avgen import Preset, VideoGenerator  # noqa: E402
from avgen.agents.stock import PexelsClips, PexelsImages  # noqa: E402
from avgen.testing import ToneNarrator  # noqa: E402

SCENES = [
    ("coral reef", "The reef", "Beneath the surface, coral reefs shelter a quarter of "
     "all the fish in the sea, although they cover a tiny part of the ocean floor."),
    ("volcano", "Fire below", "When a volcano erupts, molten lava pours down its slopes "
     "and clouds of ash rise for kilometres above the crater."),
    ("bakery", "Before dawn", "Long before sunrise the baker is already at work, kneading "
     "dough and sliding loaves of bread into a hot oven."),
    ("bees", "The hive", "A single bee visits hundreds of flowers a day, carrying pollen "
     "back to the hive where it slowly becomes honey."),
    ("railway", "All aboard", "At the station the morning train pulls in on time, and "
     "commuters hurry along the platform beside the track."),
    ("glacier", "Melting ice", "Every summer the glacier loses more ice than winter snow "
     "can replace, and great icebergs break away into the arctic sea."),
    ("coffee", "The first cup", "The barista grinds freshly roasted beans, pulls a short "
     "espresso and hands over the first cup of coffee of the day."),
    ("wind power", "Catching the wind", "On the hills, the blades of each wind turbine "
     "turn slowly, turning a steady breeze into clean renewable energy."),
    ("library", "Quiet pages", "In the old library, readers move between tall shelves, "
     "lifting a book and turning its pages in silence."),
    ("traffic", "Rush hour", "By six in the evening the highway is a slow river of cars, "
     "with drivers stuck in a traffic jam that stretches for miles."),
]
"""(subject, heading, narration) of each scene."""

SMALL = Preset("bench", 320, 180, fps=12, encoder_preset="ultrafast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--headings", action="store_true",
                        help="give each scene its Markdown heading")
    parser.add_argument("--max-shot", type=float, default=7.0,
                        help="the longest shot, seconds (default 7)")
    args = parser.parse_args()
    script = "\n\n".join((f"## {heading}\n\n" if args.headings else "") + text
                         for _, heading, text in SCENES)
    items = catalogue()
    by_id = {item.id: item for item in items}
    with tempfile.TemporaryDirectory(prefix="avgen-bench-stock-") as tmp, \
            FakeStock(catalogue=items) as fake:
        agents = {kind: cls(api_key=PEXELS_KEY, base_url=fake.base_url, cache=None)
                  for kind, cls in (("clip_generator", PexelsClips),
                                    ("image_generator", PexelsImages))}
        video = VideoGenerator(narrator=ToneNarrator(seconds_per_word=0.45),
                               output_dir=Path(tmp), **agents).generate_sync(
            script=script, preset=SMALL, max_shot=args.max_shot)
        manifest = json.loads((video.session / "metadata" / "manifest.json")
                              .read_text("utf-8"))
        scenes = json.loads((video.session / "scripts" / "script.json")
                            .read_text("utf-8"))["scenes"]
        searches = fake.calls("search")
    on_subject, shots, shown, long_scenes, long_shots = 0, 0, Counter[int](), 0, 0
    print(f"{'scene':<12} {'seconds':>7} {'terms':<44} shots: found with -> subject")
    for (subject, _, _), scene in zip(SCENES, scenes, strict=True):
        index = scene["index"]
        seconds = manifest["steps"][f"scene-{index:03d}.narration"]["data"]["asset"][
            "duration"]
        mine = [step for key, step in sorted(manifest["steps"].items())
                if key.startswith(f"scene-{index:03d}.") and key.endswith("visual")]
        shown_here = [step for n, step in enumerate(mine) if n == 0 or step["tier"] != "card"]
        said = []
        for step in shown_here:
            source = step["data"]["asset"].get("source") or {}
            page = source.get("page_url") or ""
            item = by_id.get(int(page.rstrip("/").rsplit("-", 1)[-1])) if page else None
            shots += 1
            if item is not None:
                shown[item.id] += 1
                on_subject += item.subject == subject
            said.append(f"{source.get('query') or step['tier']} -> "
                        f"{item.subject if item else '-'}")
        if seconds > args.max_shot:
            long_scenes += 1
            long_shots += len(shown_here)
        print(f"{subject:<12} {seconds:>7.1f} {', '.join(scene.get('search_terms') or []):<44} "
              + "; ".join(said))
    terms = {scene["index"]: set(scene.get("search_terms") or []) for scene in scenes}
    per_scene = [max(sum(1 for r in searches if r.kind == kind and r.query["query"] in mine)
                     for kind in ("pexels-videos", "pexels-photos"))
                 for mine in terms.values()]
    print(f"\nshots on the scene's subject: {on_subject}/{shots} "
          f"({100 * on_subject / shots:.0f} %, target >= 90 %)")
    print(f"items shown more than once: {sum(1 for n in shown.values() if n > 1)} "
          "(target 0)")
    print(f"searches per scene (per kind): max {max(per_scene)}, mean "
          f"{sum(per_scene) / len(per_scene):.1f} (limit 3)")
    print(f"scenes longer than {args.max_shot:g} s: {long_scenes}, shown in {long_shots} "
          f"shots")


if __name__ == "__main__":
    main()
