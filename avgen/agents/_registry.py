"""Agents by name: ``"local"``, ``"google"`` and ``"stock"`` built in, others from the
``avgen.agents`` entry-point group.

A third-party package adds a family of agents by declaring, in its ``pyproject.toml``::

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

import attrs

from avgen.agents._protocols import ClipGenerator, Composer, ImageGenerator, Narrator, ScriptWriter
from avgen.errors import UsageError

__all__ = ["ENTRY_POINT_GROUP", "AgentSet", "available_agents", "load_agents"]

ENTRY_POINT_GROUP = "avgen.agents"
"""The entry-point group read for named agent families."""


def _check(protocol: type, optional: bool = False) -> Callable[[Any, Any, Any], None]:
    def validator(_inst: Any, attribute: Any, value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, protocol):
            raise UsageError(attribute.name, f"{type(value).__name__} does not implement "
                             f"{protocol.__name__} (it needs the method(s) the protocol lists)")
    return validator


@attrs.frozen
class AgentSet:
    """The agents one run uses. Image and clip generators are optional: without them,
    scenes show a procedural card rendered by the composer."""

    script_writer: ScriptWriter = attrs.field(validator=_check(ScriptWriter))
    """Writes the script."""
    narrator: Narrator = attrs.field(validator=_check(Narrator))
    """Speaks each scene."""
    composer: Composer = attrs.field(validator=_check(Composer))
    """Renders the final video."""
    image_generator: ImageGenerator | None = attrs.field(
        default=None, validator=_check(ImageGenerator, optional=True))
    """Makes stills (the second tier of the fallback chain)."""
    clip_generator: ClipGenerator | None = attrs.field(
        default=None, validator=_check(ClipGenerator, optional=True))
    """Makes clips (the first tier of the fallback chain)."""

    def names(self) -> dict[str, str | None]:
        """The name of each agent, as the manifest records it."""
        return {field.name: None if (agent := getattr(self, field.name)) is None
                else agent_name(agent) for field in attrs.fields(AgentSet)}


def agent_name(agent: object) -> str:
    """An agent's ``name`` attribute, or its class name."""
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else type(agent).__name__


def _local(**options: Any) -> AgentSet:
    from avgen.agents.local import local_agents

    return local_agents(**options)


def _google(**options: Any) -> AgentSet:
    from avgen.agents.google import google_agents

    return google_agents(**options)


def _stock(**options: Any) -> AgentSet:
    from avgen.agents.stock import stock_agents

    return stock_agents(**options)


_BUILTIN: dict[str, Callable[..., AgentSet]] = {"google": _google, "local": _local,
                                                "stock": _stock}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_agents() -> list[str]:
    """Names that `load_agents` accepts: the built-in ones and those of installed plugins."""
    return sorted(set(_BUILTIN) | set(_entry_points()))


def load_agents(name: str, **options: Any) -> AgentSet:
    """Build the agent family called ``name``.

    Raises:
        UsageError: No built-in family or installed plugin has that name, or the plugin's
            factory does not return an `AgentSet`.
    """
    factory: Callable[..., Any] | None = _BUILTIN.get(name)
    if factory is None:
        entry = _entry_points().get(name)
        if entry is None:
            raise UsageError("agents", f"unknown agents {name!r}; choose one of "
                             f"{', '.join(available_agents())}")
        factory = entry.load()
    result = factory(**options)
    if not isinstance(result, AgentSet):
        raise UsageError("agents", f"the {name!r} plugin returned {type(result).__name__}, "
                         "not an AgentSet")
    return result
