"""Where pictures and clips came from: `avgen.Source` on an asset is kept in the manifest and
credited in ``final_output/credits.txt``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from media import SolidImages

from avgen import ImageAsset, Preset, Scene, Source, VideoGenerator
from avgen._models import asset_from_dict, asset_to_dict
from avgen.errors import UsageError
from avgen.testing import ToneNarrator

PEXELS = Source("pexels", title="Waves at dusk", author="Ana Lima",
                author_url="https://www.pexels.com/@ana", page_url="https://www.pexels.com/photo/1",
                license="Pexels License")


class CreditedImages(SolidImages):
    """Solid pictures said to come from a stock library, except the second scene's."""

    async def generate(self, scene: object, preset: object, target: Path) -> object:
        made = await super().generate(scene, preset, target)
        assert isinstance(made, ImageAsset) and isinstance(scene, Scene)
        if scene.index == 1:
            return made
        return ImageAsset(made.path, made.width, made.height, source=PEXELS)


def test_a_source_round_trips_through_the_manifest_form() -> None:
    asset = ImageAsset(Path("/tmp/a.png"), 10, 10, source=PEXELS)
    assert asset_from_dict(asset_to_dict(asset)) == asset
    assert asset_from_dict(asset_to_dict(ImageAsset(Path("/tmp/a.png"), 1, 1))).source is None
    with pytest.raises(UsageError) as caught:
        asset_from_dict({**asset_to_dict(asset), "source": {"provider": 5}})
    assert caught.value.field.endswith("source.provider")


def test_credits_name_every_credited_picture(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=CreditedImages(),
                               output_dir=tmp_path)
    video = generator.generate_sync(script="Waves roll.\n\nGulls cry.\n\nNight falls.",
                                    preset=Preset("t", 160, 288, fps=12,
                                                  encoder_preset="ultrafast"))
    credits = (video.path.parent / "credits.txt").read_text("utf-8").splitlines()
    line = ('"Waves at dusk" by Ana Lima (pexels, Pexels License) '
            '<https://www.pexels.com/photo/1>')
    assert credits == [f"Scene 1: {line}", f"Scene 3: {line}"]
    manifest = json.loads(video.manifest.read_text())
    saved = manifest["steps"]["scene-000.visual"]["data"]["asset"]["source"]
    assert saved["author"] == "Ana Lima" and saved["license"] == "Pexels License"


def test_no_credits_file_without_credits(tmp_path: Path) -> None:
    generator = VideoGenerator(narrator=ToneNarrator(), image_generator=SolidImages(),
                               output_dir=tmp_path)
    video = generator.generate_sync(script="Waves roll.", preset="draft")
    assert not (video.path.parent / "credits.txt").exists()
    assert Source("library", title="waves.jpg", score=0.8).credit is None


# -- sources in the order you give ----------------------------------------------------------

TINY = Preset("t", 160, 288, fps=12, encoder_preset="ultrafast")


class Declared:
    """A picture source whose generate takes no ``seconds`` but says it makes clips."""

    makes = "clip"

    async def generate(self, *args: object) -> object:
        raise AssertionError("never called")


def test_what_a_source_makes_comes_from_its_signature_or_its_word() -> None:
    from avgen.agents._protocols import makes
    from avgen.testing import PatternClips, PatternImages

    assert makes(PatternClips()) == "clip" and makes(PatternImages()) == "image"
    assert makes(Declared()) == "clip" and makes(object()) is None
    with pytest.raises(UsageError) as refused:
        VideoGenerator(narrator=ToneNarrator(), visuals=[PatternImages(), object()])
    assert refused.value.field == "visuals[1]"


def test_sources_are_tried_in_the_order_given_and_recorded(tmp_path: Path) -> None:
    from avgen.testing import PatternClips, PatternImages

    stills = PatternImages(fail_on={0, 1})  # first: fails on scenes 0 and 1
    clips = PatternClips(fail_on={0})       # then clips: fails on scene 0
    generator = VideoGenerator(narrator=ToneNarrator(), visuals=[stills, clips],
                               output_dir=tmp_path)
    video = generator.generate_sync(script="Waves roll.\n\nGulls cry.\n\nNight falls.",
                                    preset=TINY)
    assert video.tiers == ("card", "clip", "image")
    steps = json.loads(video.manifest.read_text())["steps"]
    assert [steps[f"scene-{i:03d}.visual"]["agent"] for i in range(3)] == [
        "ffmpeg-card", "pattern-clips", "pattern-images"]
    assert "image (pattern-images)" in steps["scene-000.visual"]["error"]
    assert "clip (pattern-clips)" in steps["scene-000.visual"]["error"]
    assert steps["scene-002.visual"]["status"] == "done"
    assert (stills.calls, clips.calls) == (3, 2)
    assert json.loads(video.manifest.read_text())["agents"]["visuals"] == \
        "pattern-images+pattern-clips"


def test_a_required_tier_needs_a_source_that_makes_it() -> None:
    from avgen.testing import PatternImages

    with pytest.raises(UsageError, match="makes clips"):
        VideoGenerator(narrator=ToneNarrator(), visuals=[PatternImages()],
                       required_tier="clip")
