"""``nursemaid diagram``: the diagrams the code's own tables draw.

Nothing is re-derived here: the worker lifecycle comes from
:func:`nursemaid.workers._lifecycle.lifecycle_diagram` (its transition table), the
supervisor's restart strategies from the supervisor's strategy table
(:mod:`nursemaid.supervisor._diagram`). This module only chooses and joins them.

Rules:
    * Every file under ``docs/_generated/`` is exactly what one
      ``python -m nursemaid diagram NAME [--format dot]`` prints (:data:`GENERATED`
      says which), and ``python -m nursemaid diagram --write docs/_generated``
      rewrites them all. ``tests/unit/test_generated_diagrams.py`` fails when a
      committed file differs from the command's output, or when a file there is
      not in :data:`GENERATED`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

__all__ = ["GENERATED", "NAMES", "diagram", "diagrams", "generated_files", "write_generated"]

Format = Literal["mermaid", "dot"]

STRATEGY_NAMES: Final = ("one_for_one", "one_for_all", "rest_for_one")
"""One restart strategy's picture each (``supervisor`` draws all three together)."""

NAMES: Final = ("lifecycle", "supervisor", *STRATEGY_NAMES)
"""Every diagram ``nursemaid diagram`` can print."""

_SUFFIX: Final[Mapping[Format, str]] = {"mermaid": "mmd", "dot": "dot"}

GENERATED: Final[Mapping[str, tuple[str, Format]]] = {
    f"{stem}.{_SUFFIX[format]}": (name, format)
    for name, stem in (
        ("lifecycle", "lifecycle"),
        ("supervisor", "strategies"),
        *((name, f"strategy_{name}") for name in STRATEGY_NAMES),
    )
    for format in ("dot", "mermaid")
}
"""File name under ``docs/_generated/`` → the diagram and format it holds."""


def diagram(which: str, format: Format) -> str:
    """Return one diagram's source text.

    Raises:
        ValueError: *which* is not one of :data:`NAMES`, or *format* is not
            ``"mermaid"`` or ``"dot"``.
    """
    if which == "lifecycle":
        from nursemaid.workers._lifecycle import lifecycle_diagram

        return lifecycle_diagram(format)
    if which == "supervisor":
        from nursemaid.supervisor._strategy import strategy_diagram

        return strategy_diagram(format)
    if which in STRATEGY_NAMES:
        from nursemaid.supervisor._diagram import strategy_diagram_for
        from nursemaid.supervisor._spec import Strategy

        return strategy_diagram_for(Strategy[which.upper()], format)
    raise ValueError(f"unknown diagram {which!r} (expected one of {', '.join(NAMES)})")


def diagrams(which: Sequence[str], format: Format) -> str:
    """Return the diagrams named in *which*.

    One diagram comes out exactly as its table's function draws it, ready to pipe
    into a renderer; several are each headed by a comment naming them.
    """
    if len(which) == 1:
        return diagram(which[0], format)
    comment = "%%" if format == "mermaid" else "//"
    return "\n".join(
        f"{comment} {name}: generated from nursemaid's tables\n{diagram(name, format)}"
        for name in which
    )


def generated_files() -> dict[str, str]:
    """File name → content of every file under ``docs/_generated/``."""
    return {name: diagram(which, format) for name, (which, format) in GENERATED.items()}


def write_generated(directory: Path) -> list[Path]:
    """Write :func:`generated_files` into *directory*; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in generated_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written
