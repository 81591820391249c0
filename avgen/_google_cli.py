"""``avgen models``: the Google models avgen knows and, with ``--check``, which of them the
service serves to your credentials; and the ``--model ROLE=ID`` option of the commands that
make videos. The catalogue is imported only when it is needed, so the other commands do not
load the google agents.

::

    avgen models                           # every model in use somewhere, by kind
    avgen models --kind video --all        # with the ones shut down everywhere
    avgen models --check                   # the defaults, against models.list (free)
    avgen models --check --model script=gemini-3.5-flash-lite

Exit status: 0; with ``--check``, 1 when a model a run would use would fail, 2 on bad input
or missing credentials.
"""

from __future__ import annotations

__docformat__ = "google"

import argparse
import datetime
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from avgen.errors import AvgenError, UsageError

if TYPE_CHECKING:
    from avgen.agents.google._catalogue import ModelInfo
    from avgen.agents.google._prices import Price

__all__: list[str] = []

MODEL_ROLES = {"script": "script_model", "speech": "tts_model", "image": "image_model",
               "portrait": "portrait_model", "video": "video_model"}
"""``--model ROLE=ID`` roles, and the `avgen.agents.google.google_agents` option of each."""


def model_options(values: Sequence[str]) -> dict[str, str]:
    """``--model ROLE=ID`` options as `avgen.agents.google.google_agents` keywords.

    Raises:
        UsageError: An option is not ``ROLE=ID`` with a known role, or names a role twice.
    """
    chosen: dict[str, str] = {}
    for value in values:
        role, sign, model = value.partition("=")
        role, model = role.strip().lower(), model.strip()
        if not sign or role not in MODEL_ROLES or not model:
            raise UsageError("--model", f"must be ROLE=ID with ROLE one of "
                             f"{', '.join(MODEL_ROLES)}, not {value!r}")
        if MODEL_ROLES[role] in chosen:
            raise UsageError("--model", f"{role} is given twice")
        chosen[MODEL_ROLES[role]] = model
    return chosen


def google_models(args: argparse.Namespace, family: str) -> dict[str, str]:
    """The ``--model`` options (for the google agents only)."""
    chosen = model_options(getattr(args, "model", None) or [])
    if chosen and family != "google":
        raise UsageError("--model", f"chooses Google models; these agents are {family!r}")
    return chosen


_WHERE = {"developer": "Developer API", "vertex": "Vertex AI"}
_STATUS = {"current": "current", "deprecated": "deprecated", "retiring": "shuts down soon",
           "retired": "shut down", "unserved": "not served"}


def run_models_command(args: argparse.Namespace) -> int:
    """``avgen models``: returns the exit status."""
    try:
        chosen = model_options(args.model)
        if chosen and not args.check:
            raise UsageError("--model", "goes with --check")
        if args.check:
            return _check(chosen)
    except UsageError as exc:
        print(f"avgen: error: {exc}", file=sys.stderr)
        return 2
    print(listing(kind=args.kind, everything=args.all))
    return 0


def listing(*, kind: str | None = None, everything: bool = False,
            today: datetime.date | None = None) -> str:
    """The catalogue as text: per kind, each model's status and dates on each surface, its
    release and price; ``*`` marks avgen's defaults. Models shut down on every surface are
    left out unless ``everything``."""
    from avgen.agents.google._catalogue import CATALOGUE

    today = today or datetime.date.today()
    lines = [f"Google models avgen knows (checked {CATALOGUE.checked}; * = avgen's default "
             "there; shutdown days are the earliest Google gave)"]
    for each in ("text", "image", "speech", "video"):
        if kind is not None and each != kind:
            continue
        shown = [m for m in CATALOGUE if m.kind == each and (everything or any(
            m.status(s, today) != "retired" for s in m.surfaces))]
        if not shown:
            continue
        lines += ["", each]
        for model in sorted(shown, key=lambda m: (m.released or datetime.date.min),
                            reverse=True):
            lines += _model_lines(model, today)
    return "\n".join(lines)


def _model_lines(model: ModelInfo, today: datetime.date) -> list[str]:
    from avgen.agents.google._catalogue import CATALOGUE, SURFACES

    default = "*" if model.default_on else " "
    stage = "" if model.stage == "ga" else f" ({model.stage})"
    lines = [f"  {default} {model.id}{stage}"]
    for surface in SURFACES:
        life = model.surfaces.get(surface)
        if life is None:
            continue
        status = model.status(surface, today)
        if status == "retired":
            words = f"shut down on {life.shutdown}"
        elif status == "retiring" and life.shutdown is not None:
            words = (f"shuts down on {life.shutdown}, in {(life.shutdown - today).days} "
                     "days")
        else:
            words = _STATUS[status]
            if status == "deprecated" and life.deprecated is not None:
                words += f" since {life.deprecated}"
            if life.shutdown is not None:
                words += f"; shuts down {life.shutdown}"
        if status in ("retired", "retiring", "deprecated"):
            instead = CATALOGUE.replacement(model.id, kind=model.kind, surface=surface,
                                            today=today)
            words += f" → {instead}" if instead else ""
        if surface in model.default_on:
            words += " (default)"
        lines.append(f"      {_WHERE[surface]:<14} {words}")
    released = f"released {model.released}; " if model.released else ""
    price = "; from ".join(
        (f"{since}: " if since else "") + price_text(model.kind, each)
        for since, each in model.prices if since is None or since > today or
        model.price_on(today) is each)
    lines.append(f"      {released}{price}")
    if model.can.method == "interactions":
        lines.append("      answers through the Interactions API, which avgen does not call")
    return lines


def _usd(amount: float) -> str:
    """Dollars with two decimals, or three for a fraction of a cent's tenth."""
    text = f"{amount:.3f}"
    return "$" + (text[:-1] if text.endswith("0") else text)


def price_text(kind: str, price: Price) -> str:
    """A price in the units of its kind."""
    if kind == "text":
        return (f"{_usd(price.input_per_million)} in, {_usd(price.output_per_million)} out "
                "per million tokens")
    if kind == "image":
        return f"{_usd(price.per_image)} an image"
    if kind == "speech":
        from avgen.agents.google._catalogue import CATALOGUE

        per_million = price.per_audio_second * 1e6 / CATALOGUE.audio_tokens_per_second
        return (f"{_usd(price.input_per_million)} per million text tokens, "
                f"{_usd(per_million)} per million audio tokens")
    audio = price.per_video_second_audio or price.per_video_second
    text = f"{_usd(price.per_video_second)}/s silent, {_usd(audio)}/s with sound"
    if price.per_video_second_4k:
        text += f" (4k: {_usd(price.per_video_second_4k)}/s)"
    return text


def _check(chosen: dict[str, str]) -> int:
    """``avgen models --check``: the run's models against what the service lists."""
    from avgen.agents.google._check import check_models
    from avgen.agents.google._connection import GoogleConnection, credentials_present

    if not credentials_present():
        raise UsageError("credentials", "--check asks the service: set GEMINI_API_KEY, or "
                         "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT")
    try:
        with GoogleConnection.from_env() as connection:
            checks = check_models(connection, chosen)
            where = connection.describe()
    except UsageError:
        raise
    except AvgenError as exc:
        print(f"avgen: failed: cannot ask the service: {exc}", file=sys.stderr)
        return 1
    surface = connection.mode
    print(f"models a run would use ({where}), against what the service lists for these "
          "credentials:")
    failing = 0
    for check in checks:
        name = check.role.removesuffix("_model").replace("tts", "speech")
        if check.model is None:
            print(f"  {name:<9} none: {check.problem or check.note or 'none is served'}")
            failing += check.problem is not None
            continue
        mark = "ok" if check.usable else "FAILS"
        failing += not check.usable
        listed = {True: "listed", False: "not listed", None: "not asked"}[check.listed]
        status = _STATUS.get(check.status or "", check.status or "")
        print(f"  {name:<9} {check.model:<30} {mark:<5} ({status or 'unknown to avgen'}, "
              f"{listed})")
        words = check.problem or check.note
        if words:
            print(f"            {words}")
    if failing:
        print(f"{failing} model(s) would fail on {_WHERE[surface]}; choose others with "
              "--model ROLE=ID (avgen models lists them)")
    return 1 if failing else 0
