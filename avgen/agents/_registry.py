"""Agent families by name, from the ``avgen.agents`` entry-point group: ``"local"``,
``"google"`` and ``"stock"`` are avgen's own entries there (declared in its
``pyproject.toml``), so the registry names no family in code and imports none.

A third-party package adds a family of agents the same way, by declaring, in its
``pyproject.toml``::

    [project.entry-points."avgen.agents"]
    mystudio = "mystudio.avgen:agents"

where ``mystudio.avgen.agents(**options)`` returns an `AgentSet`. Then
``VideoGenerator("mystudio")`` and ``avgen make --agents mystudio`` use it.
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Callable
from importlib import metadata
from typing import Any

from avgen.agents._protocols import AgentSet
from avgen.errors import UsageError

__all__ = ["available_agents", "load_agents"]

ENTRY_POINT_GROUP = "avgen.agents"
"""The entry-point group read for named agent families."""


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_agents() -> list[str]:
    """Names that `load_agents` accepts: avgen's own families and installed plugins'."""
    return sorted(_entry_points())


def load_agents(name: str, **options: Any) -> AgentSet:
    """Build the agent family called ``name``.

    Raises:
        UsageError: No built-in family or installed plugin has that name, or the plugin's
            factory does not return an `AgentSet`.
    """
    entry = _entry_points().get(name)
    if entry is None:
        known = available_agents()
        raise UsageError("agents", f"unknown agents {name!r}; choose one of "
                         f"{', '.join(known)}" if known else
                         f"unknown agents {name!r}: no family is registered (avgen's own are "
                         f"entry points of {ENTRY_POINT_GROUP!r}: install avgen with pip)")
    factory: Callable[..., Any] = entry.load()
    result = factory(**options)
    if not isinstance(result, AgentSet):
        raise UsageError("agents", f"the {name!r} plugin returned {type(result).__name__}, "
                         "not an AgentSet")
    return result
