"""One chain of picture sources in the order the user gives, from the command line: your
media folder, stock footage and the family's own, then the card; over real HTTP against
FakeStock, with the real local agents (Piper narration)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gemini import make_mp4
from fake_stock import PEXELS_KEY, FakeStock, Item

from avgen._cli import main


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStock]:
    items = [Item(1, ("bees", "hive", "honey"), "bees", shape="portrait"),
             Item(2, ("lighthouse",), "light", shape="portrait")]
    with FakeStock(catalogue=items) as server:
        monkeypatch.setenv("PEXELS_API_KEY", PEXELS_KEY)
        monkeypatch.setenv("PEXELS_API_URL", server.base_url)
        monkeypatch.delenv("PIXABAY_API_KEY", raising=False)
        yield server
    assert server.errors == []


def steps(out: Path) -> dict[str, Any]:
    [manifest] = out.glob("*/metadata/manifest.json")
    return json.loads(manifest.read_text("utf-8"))["steps"]  # type: ignore[no-any-return]


SCRIPT = ("<!-- search: ocean waves -->\nWaves crash on the ocean shore.\n\n"
          "<!-- search: bees -->\nBees carry pollen back to the hive.\n\n"
          "<!-- search: snowy peaks -->\nSnow covers the mountain peaks.\n")


def test_media_then_pexels_then_the_card_in_the_local_family(
        fake: FakeStock, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "ocean_waves.mp4").write_bytes(make_mp4(192, 108, 2.0, audio=False))
    script = tmp_path / "s.md"
    script.write_text(SCRIPT, "utf-8")
    status = main(["make", "--agents", "local", "--script", str(script), "--media",
                   str(media), "--sources", "media,pexels", "--no-cache", "--preset",
                   "draft", "--out", str(tmp_path / "out"), "-q"])
    assert status == 0, capsys.readouterr().err
    recorded = steps(tmp_path / "out")
    first, second, third = (recorded[f"scene-00{n}.visual"] for n in range(3))
    assert first["agent"] == "media-library-clips" and first["tier"] == "clip"
    assert first["data"]["asset"]["source"]["title"] == "ocean_waves.mp4"
    # the library had nothing for the bees: passed over, said so, then Pexels found them
    assert second["data"]["asset"]["source"]["provider"] == "pexels"
    assert second["data"]["asset"]["source"]["query"] == "bees"
    assert any(line.startswith("clip (media-library-clips)")
               for line in second["data"]["passed"])
    # nothing anywhere for the snow: every source passed over, the card shows it
    assert third["tier"] == "card"
    passed = " | ".join(third["data"]["passed"])
    assert "media-library" in passed and "'snowy peaks': no video" in passed
    assert [r.query["query"] for r in fake.calls("pexels-videos")] == ["bees",
                                                                      "snowy peaks"]


@pytest.mark.parametrize(("sources", "media", "said"), [
    ("media,bogus", True, "'bogus' is not a source"),
    ("pexels,pexels", True, "names pexels more than once"),
    ("media", False, "no --media DIR"),
    ("pexels", True, "leaves media out"),
    ("clips", False, "have no clips"),
    ("pexels,", False, "empty name"),
])
def test_a_bad_source_list_is_refused_before_anything_is_made(
        fake: FakeStock, tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: str,
        media: bool, said: str) -> None:
    script = tmp_path / "s.md"
    script.write_text(SCRIPT, "utf-8")
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "bees.mp4").write_bytes(make_mp4(192, 108, 1.0, audio=False))
    extra = ["--media", str(folder)] if media else []
    status = main(["make", "--agents", "local", "--script", str(script), *extra,
                   "--sources", sources, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and "sources" in err and said in err
    assert fake.count() == 0 and not (tmp_path / "out").exists()
