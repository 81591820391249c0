"""A session folder is untrusted input: a manifest, a script file or an asset record from
someone else can neither make avgen read or write outside the session nor reach ffmpeg
unchecked; each bad value is a clear `UsageError` naming it, before any agent is called."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from avgen import VideoGenerator, VideoRequest
from avgen.errors import UsageError
from avgen.testing import PatternImages, ToneNarrator

SCRIPT = "# Two\n\nRivers run to the sea.\n\nClouds carry the rain."


class Counting:
    """Agents that count their calls: a refused manifest calls none of them."""

    def __init__(self) -> None:
        self.narrator, self.images = ToneNarrator(), PatternImages()

    def generator(self, output_dir: Path) -> VideoGenerator:
        return VideoGenerator(narrator=self.narrator, image_generator=self.images,
                              output_dir=output_dir)

    @property
    def calls(self) -> int:
        return self.narrator.calls + self.images.calls


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished session with a narration, a still and a card step."""
    out = tmp_path_factory.mktemp("made")
    video = VideoGenerator(narrator=ToneNarrator(), image_generator=PatternImages(fail_on={1}),
                           output_dir=out).generate_sync(script=SCRIPT)
    return video.session


def copy_session(made: Path, where: Path) -> tuple[Path, dict[str, Any]]:
    target = where / made.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(made, target, symlinks=True)
    manifest = json.loads((target / "metadata/manifest.json").read_text())
    return target, manifest


def save(session: Path, manifest: dict[str, Any]) -> None:
    (session / "metadata/manifest.json").write_text(json.dumps(manifest))


def resume_refused(session: Path, agents: Counting) -> UsageError:
    with pytest.raises(UsageError) as refused:
        agents.generator(session.parent).resume_sync(session)
    assert agents.calls == 0  # refused before any agent was called
    return refused.value


def test_the_filtergraph_injection_through_a_card_colour_is_refused(
        made: Path, tmp_path: Path) -> None:
    session, manifest = copy_session(made, tmp_path)
    pwned = tmp_path / "pwned.txt"
    card = manifest["steps"]["scene-001.visual"]["data"]["asset"]
    assert card["kind"] == "card"
    card["colors"][0] = (f"0x1e3a8a,trim=end_frame=3,metadata=mode=print:file={pwned},"
                         "nullsink;[x]null")
    save(session, manifest)
    error = resume_refused(session, Counting())
    assert "colors" in error.field and "0xRRGGBB" in error.problem
    assert not pwned.exists()


@pytest.mark.parametrize("path", ["../../../etc/hosts", "/etc/hosts", "audio/../../x.wav"])
def test_an_asset_path_outside_the_session_is_refused(made: Path, tmp_path: Path,
                                                      path: str) -> None:
    session, manifest = copy_session(made, tmp_path)
    manifest["steps"]["scene-000.narration"]["data"]["asset"]["path"] = path
    save(session, manifest)
    error = resume_refused(session, Counting())
    assert error.field.endswith("path") and "scene-000.narration" in error.field


def test_a_symlink_out_of_the_session_is_refused(made: Path, tmp_path: Path) -> None:
    session, manifest = copy_session(made, tmp_path)
    secret = tmp_path / "secret.wav"
    shutil.copy(session / "audio/scene_000.wav", secret)
    (session / "audio/link.wav").symlink_to(secret)
    manifest["steps"]["scene-000.narration"]["data"]["asset"]["path"] = "audio/link.wav"
    save(session, manifest)
    error = resume_refused(session, Counting())
    assert "outside" in error.problem


def test_music_outside_the_session_is_refused(made: Path, tmp_path: Path) -> None:
    session, manifest = copy_session(made, tmp_path)
    manifest["request"]["soundtrack"]["music"] = str(session / "../secret.mp3")
    save(session, manifest)
    error = resume_refused(session, Counting())
    assert "music" in error.problem or "music" in error.field


def at(manifest: dict[str, Any], where: tuple[Any, ...]) -> tuple[Any, Any]:
    node = manifest
    for key in where[:-1]:
        node = node[key]
    return node, where[-1]


# Places in a manifest whose values reach ffmpeg, a path or the run, and hostile values.
PLACES: list[tuple[Any, ...]] = [
    ("steps", "scene-000.narration", "data", "asset", "duration"),
    ("steps", "scene-000.narration", "data", "asset", "segments", 0, "start"),
    ("steps", "scene-000.narration", "data", "asset", "segments", 0, "text"),
    ("steps", "scene-000.narration", "data", "asset", "path"),
    ("steps", "scene-000.visual", "data", "asset", "width"),
    ("steps", "scene-000.visual", "data", "asset", "path"),
    ("steps", "scene-001.visual", "data", "asset", "colors"),
    ("steps", "scene-001.visual", "data", "asset", "kind"),
    ("steps", "scene-000.visual", "status"),
    ("steps", "scene-000.visual", "tier"),
    ("steps", "scene-000.visual", "cost"),
    ("steps", "scene-000.visual", "outputs"),
    ("request", "preset", "fps"),
    ("request", "preset", "audio_bitrate"),
    ("request", "preset", "encoder_preset"),
    ("request", "transition", "style"),
    ("request", "caption_style", "color"),
    ("request", "caption_style", "font"),
    ("request", "soundtrack", "loudness"),
    ("request", "soundtrack", "music"),
    ("request", "fit"),
    ("request", "duration"),
    ("request", "voice"),
    ("request", "captions"),
]
# values some fields may hold whatever their looks (free text, optional fields, flags)
LEGITIMATE: dict[Any, Callable[[Any], bool]] = {
    "text": lambda v: isinstance(v, str) and "\x00" not in v,
    "voice": lambda v: v is None or (isinstance(v, str) and "\x00" not in v),
    "captions": lambda v: isinstance(v, bool),
    "duration": lambda v: v is None,
    "music": lambda v: v is None,
    "tier": lambda v: v is None,
}
HOSTILE: list[Any] = [
    "0x000000,drawtext=text=x:textfile=/etc/passwd", "x;[0]null[y]", "'\\:,[]=",
    "../../../../etc/passwd", "/etc/hosts", "%{pts}", "\x00", "fast\n-y", "160k,-f null",
    10**12, -1, 1e308, float("nan"), float("inf"), True,
    None, [], {}, ["a", "b", "c"], {"nested": 1},
]


# every hostile value in every place: exhaustive, so no run depends on which were drawn
@pytest.mark.parametrize("value", HOSTILE, ids=repr)
@pytest.mark.parametrize("where", PLACES, ids=lambda w: ".".join(map(str, w[-3:])))
def test_hostile_values_anywhere_are_refused_or_harmless(
        made: Path, tmp_path: Path, where: tuple[Any, ...], value: Any) -> None:
    session, manifest = copy_session(made, tmp_path)
    node, key = at(manifest, where)
    node[key] = value
    save(session, manifest)
    outside = sorted(os.listdir(tmp_path))
    agents = Counting()
    try:
        video = agents.generator(session.parent).resume_sync(session)
    except UsageError as refused:
        assert agents.calls == 0
        assert refused.field  # names what was wrong
    else:  # accepted: only when the value is one the field may hold
        assert video.path.is_relative_to(session)
        assert LEGITIMATE.get(where[-1], lambda _v: False)(value), (where, value)
    assert sorted(os.listdir(tmp_path)) == outside  # nothing written beside the session


@pytest.mark.parametrize(("damage", "field"), [
    (lambda m: m.update(steps=[]), "manifest"),
    (lambda m: m["steps"].update(bogus="not a record"), "steps['bogus']"),
    (lambda m: m["steps"]["script"].update(surprise=1), "steps['script']"),
    (lambda m: m["steps"]["script"].pop("status"), "steps['script']"),
    (lambda m: m["steps"]["script"].update(id="other"), "steps['script'].id"),
    (lambda m: m.update(request="a string"), "session"),
    (lambda m: m["request"].update(unknown_field=1), "session"),
])
def test_a_manifest_of_the_wrong_shape_is_a_clear_error(
        made: Path, tmp_path: Path, damage: Callable[[dict[str, Any]], None],
        field: str) -> None:
    session, manifest = copy_session(made, tmp_path)
    damage(manifest)
    save(session, manifest)
    error = resume_refused(session, Counting())
    assert field in error.field


def test_a_tampered_script_file_is_a_clear_error(made: Path, tmp_path: Path) -> None:
    session, _ = copy_session(made, tmp_path)
    script = json.loads((session / "scripts/script.json").read_text())
    script["scenes"][0]["index"] = "zero"
    (session / "scripts/script.json").write_text(json.dumps(script))
    # the script step's checksum no longer matches: the script is written again instead
    agents = Counting()
    video = agents.generator(session.parent).resume_sync(session)
    assert video.path.is_file()


def test_request_fields_are_type_checked_before_any_work(tmp_path: Path) -> None:
    agents = Counting()
    generator = agents.generator(tmp_path)
    for fields, field in [({"title": 123}, "title"), ({"voice": 123}, "voice"),
                          ({"language": 123}, "language"), ({"duration": "40"}, "duration"),
                          ({"duration": True}, "duration"), ({"captions": "no"}, "captions"),
                          ({"soundtrack": {"music": "x.mp3"}}, "soundtrack"),
                          ({"soundtrack": "loud"}, "soundtrack"),
                          ({"caption_style": "big"}, "caption_style"),
                          ({"script": "Hello\x00world."}, "script")]:
        with pytest.raises(UsageError) as refused:
            generator.generate_sync(VideoRequest(script="Hello.", **{**{}, **fields})
                                    if "script" not in fields else VideoRequest(**fields))
        assert refused.value.field == field, fields
    assert agents.calls == 0 and not any(tmp_path.iterdir())


def test_a_caption_font_that_is_not_there_is_refused_before_any_work(tmp_path: Path) -> None:
    from avgen import CaptionStyle

    agents = Counting()
    request = VideoRequest(script="Hello.", caption_style=CaptionStyle(font="No Such Sans"))
    with pytest.raises(UsageError) as refused:
        agents.generator(tmp_path).generate_sync(request)
    assert refused.value.field == "caption_style.font" and "No Such Sans" in refused.value.problem
    assert agents.calls == 0 and not any(tmp_path.iterdir())


@pytest.mark.parametrize("kind", ["fifo", "symlink", "list", "large"])
def test_a_manifest_that_is_no_plain_file_of_bounded_size_is_refused(
        made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    """The manifest is read as untrusted by every reader (a resume, the MCP desk, the
    report): never from a FIFO (which would block), through a link, or beyond a size limit
    (memory stays bounded), and it must hold an object; nothing blocks or crashes."""
    import threading

    from avgen import write_report
    from avgen._desk import VideoDesk
    from avgen.errors import AvgenError

    session, manifest = copy_session(made, tmp_path)
    path = session / "metadata" / "manifest.json"
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        elsewhere = tmp_path / "elsewhere.json"
        elsewhere.write_text(json.dumps(manifest))
        path.symlink_to(elsewhere)
    elif kind == "list":
        path.write_text(json.dumps([manifest]))
    else:
        monkeypatch.setattr("avgen._session.MANIFEST_LIMIT", 4096)
        path.write_text(json.dumps(manifest) + " " * 4096)
    agents = Counting()
    desk = VideoDesk(tmp_path, family="local")
    outcome: dict[str, object] = {}

    def read(name: str, call: Callable[[], object]) -> None:
        try:
            outcome[name] = call()
        except AvgenError as exc:
            outcome[name] = exc

    def every_reader() -> None:
        read("resume", lambda: agents.generator(session.parent).resume_sync(session))
        read("status", lambda: desk.status(session.name))
        read("videos", desk.videos)
        read("report", lambda: write_report(session))

    worker = threading.Thread(target=every_reader, daemon=True)
    worker.start()
    worker.join(120)
    assert not worker.is_alive(), f"a reader blocked on the manifest: {outcome}"
    assert agents.calls == 0 and outcome["videos"] == []
    for name in ("resume", "status", "report"):
        assert isinstance(outcome[name], AvgenError), (name, outcome[name])
    if kind != "fifo":  # (a FIFO is no session folder at all: "no session")
        said = {"symlink": ("outside the session", "symbolic links"),
                "list": ("must hold a JSON object, not list",),
                "large": ("larger than 4,096 bytes",)}[kind]
        for name in ("status", "report") if kind == "symlink" else ("resume", "status",
                                                                      "report"):
            assert any(words in str(outcome[name]) for words in said), (name, outcome[name])
