"""Agents: the protocols they follow, the registry that names them, and the built-in ones.

See `avgen.agents` for the contracts and `avgen.agents.local` for the offline
defaults.
"""

from __future__ import annotations

__docformat__ = "google"

from avgen.agents._assets.cache import AssetCache
from avgen.agents._protocols import (
    AgentCapabilities,
    AgentSet,
    ClipGenerator,
    Composer,
    ImageGenerator,
    Narrator,
    ScriptWriter,
)
from avgen.agents._registry import available_agents, load_agents

__all__ = [
    "AgentCapabilities",
    "AgentSet",
    "AssetCache",
    "ClipGenerator",
    "Composer",
    "ImageGenerator",
    "Narrator",
    "ScriptWriter",
    "available_agents",
    "load_agents",
]
