"""``nursemaid diagram``: the diagrams the code's own tables draw.

Nothing is re-derived here: the worker lifecycle comes from
:func:`nursemaid.workers._lifecycle.lifecycle_diagram` (its transition table), the
supervisor's restart strategies from the supervisor's strategy table. This module
only chooses and joins them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

__all__ = ["diagram", "diagrams"]

Format = Literal["mermaid", "dot"]


def diagram(which: str, format: Format) -> str:
    """Return one diagram's source text.

    Raises:
        ValueError: *which* is not ``"lifecycle"`` or ``"supervisor"``, or *format*
            is not ``"mermaid"`` or ``"dot"``.
    """
    if which == "lifecycle":
        from nursemaid.workers._lifecycle import lifecycle_diagram

        return lifecycle_diagram(format)
    if which == "supervisor":
        from nursemaid.supervisor._strategy import strategy_diagram

        return strategy_diagram(format)
    raise ValueError(f"unknown diagram {which!r} (expected 'lifecycle' or 'supervisor')")


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
