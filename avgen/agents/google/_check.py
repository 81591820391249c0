"""`check_models`: which models a run would use, and whether the service serves them to you.

The catalogue knows what Google announced; only the service knows what your key or project
may call today (a model restricted to earlier users, one not open in your region, one newer
than avgen). `check_models` asks it (``models.list``, which costs nothing) and sets the
answer beside the catalogue's, for the default of each role or the models you name.
"""

from __future__ import annotations

__docformat__ = "google"

from collections.abc import Mapping

import attrs

from avgen.agents.google._catalogue import CATALOGUE, Kind, Status
from avgen.agents.google._connection import GoogleConnection
from avgen.errors import AvgenError, UsageError

__all__ = ["check_models"]

ROLES: Mapping[str, Kind] = {"script_model": "text", "tts_model": "speech",
                             "image_model": "image", "portrait_model": "image",
                             "video_model": "video"}
"""The `avgen.agents.google.google_agents` options that name a model, and the kind of each."""


@attrs.frozen
class ModelCheck:
    """One role's model, as the catalogue and the service see it."""

    role: str
    """The `avgen.agents.google.google_agents` option (``script_model`` …)."""
    model: str | None
    """The model the role would use (``None``: the surface has none of its kind)."""
    status: Status | None
    """The catalogue's word for it on the connection's surface (``None``: no model)."""
    listed: bool | None
    """Whether the service lists it for these credentials (``None``: not asked)."""
    problem: str | None = None
    """Why a run with it would fail before anything is sent, or when it is called."""
    note: str | None = None
    """What is worth knowing though it works (deprecated, retiring, unknown to avgen)."""

    @property
    def usable(self) -> bool:
        """Whether a run can use it: no problem, and the service lists it (when asked)."""
        return self.model is not None and self.problem is None and self.listed is not False


def served_models(connection: GoogleConnection) -> frozenset[str]:
    """The ids of the models the service lists for the connection's credentials
    (``models.list``; free).

    Raises:
        AgentError: The service could not be asked (the error says why; no secret in it).
    """
    try:
        pager = connection.client.models.list(config={"page_size": 100})
        return frozenset(str(model.name or "").rsplit("/", 1)[-1] for model in pager)
    except Exception as exc:
        error = connection.translate(exc, "models.list")
    raise error


def check_models(connection: GoogleConnection, models: Mapping[str, str | None] | None = None,
                 *, ask: bool = True) -> tuple[ModelCheck, ...]:
    """Check the model of every role on the connection's surface: the one you name
    (``{"script_model": "gemini-3.5-flash"}``) or the catalogue's default.

    Example::

        with GoogleConnection.from_env() as connection:
            for check in check_models(connection, {"tts_model": "gemini-3.8-flash-lite-tts"}):
                print(check.role, check.model, check.usable, check.problem or "")

    Args:
        connection: Whose surface and credentials to check.
        models: Models by `ROLES` option; a role absent or ``None``: its default.
        ask: Ask the service which models it lists (``models.list``, free); ``False``: judge
            by the catalogue alone.

    Raises:
        UsageError: A key is not one of `ROLES`.
        AgentError: The service could not be asked.
    """
    models = dict(models or {})
    unknown = sorted(set(models) - set(ROLES))
    if unknown:
        raise UsageError(unknown[0], f"is not a model option; choose from {', '.join(ROLES)}")
    surface = connection.mode
    listed = served_models(connection) if ask else None
    checks = []
    for role, kind in ROLES.items():
        chosen = models.get(role) or (models.get("image_model") if role == "portrait_model"
                                      else None)
        if role == "video_model" and not connection.supports("video"):
            stills = f"clips need Vertex AI ({connection.describe()} makes stills instead)"
            checks.append(ModelCheck(role, chosen, None, None, problem=stills if chosen
                                     else None, note=None if chosen else stills))
            continue
        if chosen is None:
            try:
                chosen = CATALOGUE.default(kind, surface)
            except AvgenError as exc:
                checks.append(ModelCheck(role, None, None, None, problem=str(exc)))
                continue
        verdict = CATALOGUE.judge(chosen, kind=kind, surface=surface)
        served = None if listed is None else verdict.model in listed
        problem = verdict.problem
        if problem is None and served is False:
            replacement = CATALOGUE.replacement(chosen, kind=kind, surface=surface)
            problem = (f"the service does not list {verdict.model} for these credentials"
                       + (f"; {replacement} is the catalogue's choice" if replacement else ""))
        checks.append(ModelCheck(role, verdict.model, verdict.status, served, problem,
                                 verdict.note))
    return tuple(checks)
