"""Agents by name: the built-in family and third-party plugins through entry points."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from avgen import VideoGenerator
from avgen.agents import AgentSet, available_agents, load_agents
from avgen.agents.local import LocalScriptWriter, PiperNarrator
from avgen.errors import UsageError
from avgen.media._composer import FFmpegComposer


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Install a tiny third-party package that publishes agents under 'studio'."""
    (tmp_path / "studio_agents.py").write_text(textwrap.dedent("""
        from avgen.agents import AgentSet
        from avgen.media._composer import FFmpegComposer
        from avgen.testing import PatternImages, ToneNarrator
        from avgen.agents.local import LocalScriptWriter

        def agents(**options):
            return AgentSet(LocalScriptWriter(), ToneNarrator(**options), FFmpegComposer(),
                            image_generator=PatternImages())

        def broken(**options):
            return "not an agent set"
    """))
    info = tmp_path / "studio_agents-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-agents\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[avgen.agents]\nstudio = studio_agents:agents\nbroken = studio_agents:broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "studio"
    sys.modules.pop("studio_agents", None)


def test_local_is_built_in_and_registered_as_an_entry_point() -> None:
    from importlib.metadata import entry_points

    assert "local" in available_agents()
    assert "local" in {ep.name for ep in entry_points(group="avgen.agents")}
    agents = load_agents("local")
    assert isinstance(agents.script_writer, LocalScriptWriter)
    assert isinstance(agents.narrator, PiperNarrator)
    assert isinstance(agents.composer, FFmpegComposer)
    assert agents.clip_generator is None and agents.image_generator is None


def test_options_reach_the_family() -> None:
    agents = load_agents("local", sentence_pause=0.5)
    assert isinstance(agents.narrator, PiperNarrator)
    assert agents.narrator.sentence_pause == 0.5


def test_a_plugin_is_found_by_name(plugin: str, tmp_path: Path) -> None:
    assert plugin in available_agents()
    generator = VideoGenerator(plugin, output_dir=tmp_path / "out")
    assert generator.agents.names()["narrator"] == "tone"
    video = generator.generate_sync(script="A plugin made this.")
    assert video.tiers == ("image",)


def test_unknown_names_and_bad_plugins_are_usage_errors(plugin: str) -> None:
    with pytest.raises(UsageError) as caught:
        load_agents("nope")
    assert caught.value.field == "agents"
    assert "local" in str(caught.value) and "studio" in str(caught.value)
    with pytest.raises(UsageError, match="not an AgentSet"):
        load_agents("broken")


def test_agent_sets_check_their_members() -> None:
    with pytest.raises(UsageError) as caught:
        AgentSet(LocalScriptWriter(), "narrator", FFmpegComposer())  # type: ignore[arg-type]
    assert caught.value.field == "narrator"
