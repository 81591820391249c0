"""The table of Google models in docs/google.md, made from avgen's catalogue.

Usage::

    python docs/models_table.py            # print the table (Markdown)
    python docs/models_table.py --write    # put it into docs/google.md, between its markers

The table lists the catalogue's facts that do not change from day to day (the defaults,
each surface's shutdown day, the replacement, the price); ``avgen models`` says what they
mean today. The tests check that docs/google.md holds exactly this output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avgen._google_cli import price_text
from avgen.agents.google import CATALOGUE
from avgen.agents.google._catalogue import ModelInfo

__all__ = ["BEGIN", "END", "PAGE", "main", "table"]

PAGE = Path(__file__).resolve().parent / "google.md"
BEGIN = "<!-- models:begin (python docs/models_table.py --write) -->"
END = "<!-- models:end -->"
_WHERE = {"developer": "Developer API", "vertex": "Vertex AI"}


def _surface(model: ModelInfo, surface: str) -> str:
    """What the surface serves of ``model``, as of the day the catalogue was checked."""
    life = model.surfaces.get(surface)  # type: ignore[call-overload]
    if life is None:
        return "—"
    if life.shutdown is not None and life.shutdown <= CATALOGUE.checked:
        words = f"shut down {life.shutdown}"
    else:
        words = "**default**" if surface in model.default_on else "served"
        if life.deprecated is not None:
            words += f", deprecated {life.deprecated}"
        if life.shutdown is not None:
            words += f", shuts down {life.shutdown}"
    if life.replacement:
        words += f" (instead: `{life.replacement}`)"
    return words


def table() -> str:
    """The Markdown table of every model in the catalogue, by kind, newest first."""
    rows = [f"The catalogue was last checked on {CATALOGUE.checked}. A shutdown day is the "
            "earliest Google gave; a model is refused from that day on and used with a "
            "warning in the 60 days before.", "",
            "| Kind | Model | Developer API | Vertex AI | Instead | Price |",
            "|---|---|---|---|---|---|"]
    for kind in ("text", "image", "speech", "video"):
        models = sorted((m for m in CATALOGUE if m.kind == kind),
                        key=lambda m: (not m.default_on, -(m.released.toordinal()
                                                           if m.released else 0)))
        for model in models:
            stage = "" if model.stage == "ga" else f" ({model.stage})"
            price = price_text(model.kind, model.prices[0][1])
            later = [f"from {since}: {price_text(model.kind, p)}"
                     for since, p in model.prices[1:]]
            rows.append(f"| {kind} | `{model.id}`{stage} | {_surface(model, 'developer')} | "
                        f"{_surface(model, 'vertex')} | "
                        f"{f'`{model.replacement}`' if model.replacement else ''} | "
                        f"{'; '.join([price, *later])} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """Print the table, or write it into docs/google.md; returns the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/google.md")
    args = parser.parse_args(argv)
    made = table()
    if not args.write:
        print(made)
        return 0
    text = PAGE.read_text("utf-8")
    if BEGIN not in text or END not in text:
        print(f"models_table.py: {PAGE} has no {BEGIN} … {END} markers", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    PAGE.write_text(f"{head}{BEGIN}\n{made}\n{END}{tail}", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
