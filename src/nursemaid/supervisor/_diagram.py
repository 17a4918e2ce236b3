"""Pictures of the restart strategies, drawn from :func:`plan_restart` itself.

Rules:
    * Nothing here decides anything: each picture asks
      :func:`~nursemaid.supervisor._strategy.plan_restart` what happens when the
      second of four children crashes, and draws the answer. Change the
      strategy code and the pictures change; ``tests/unit/test_strategy_diagram.py``
      fails until the generated files under ``docs/_generated/`` are refreshed
      (``python -m nursemaid diagram --write docs/_generated``, which writes
      these with every other diagram the docs use).
    * Two text formats: Graphviz DOT (the docs render it) and Mermaid (GitHub
      and many editors render it).
"""

from __future__ import annotations

from collections.abc import Sequence

from nursemaid.supervisor._spec import Restart, Strategy
from nursemaid.supervisor._strategy import RestartPlan, Sibling, plan_restart

__all__ = ["FORMATS", "example_plan", "strategy_diagram_for", "strategy_diagrams"]

FORMATS = ("dot", "mermaid")

# The example every picture uses: four permanent children, the second crashes.
EXAMPLE_CHILDREN = ("a", "b", "c", "d")
EXAMPLE_CRASHED = "b"

_COLOURS = {"crashed": "#e06666", "restarted": "#93c47d", "stopped": "#f6b26b", "kept": "#ffffff"}


def example_plan(strategy: Strategy) -> tuple[Sequence[Sibling], RestartPlan]:
    """The children of the example and the plan the strategy makes for them."""
    siblings = [
        Sibling(i, Restart.PERMANENT, running=i != EXAMPLE_CRASHED) for i in EXAMPLE_CHILDREN
    ]
    return siblings, plan_restart(strategy, siblings, EXAMPLE_CRASHED)


def _fates(strategy: Strategy) -> list[tuple[str, str, str]]:
    """(child, fate, label) for each child, in start order."""
    siblings, plan = example_plan(strategy)
    rows = []
    for sibling in siblings:
        child = str(sibling.id)
        notes = []
        if child == EXAMPLE_CRASHED:
            fate = "crashed"
            notes.append("crashed")
        elif child in plan.stop:
            fate = "stopped"
            notes.append(f"stop {plan.stop.index(child) + 1}")
        else:
            fate = "kept"
            notes.append("untouched")
        if child in plan.start:
            if fate != "crashed":
                fate = "restarted"
            notes.append(f"start {plan.start.index(child) + 1}")
        rows.append((child, fate, ", ".join(notes)))
    return rows


def _title(strategy: Strategy) -> str:
    return f"{strategy.name}: {EXAMPLE_CRASHED} crashes"


def _dot(strategy: Strategy, *, standalone: bool) -> list[str]:
    key = strategy.name.lower()
    lines = []
    indent = "  " if standalone else "    "
    if standalone:
        lines.append(f"digraph {key} {{")
    else:
        lines.append(f"  subgraph cluster_{key} {{")
    lines.append(f'{indent}label="{_title(strategy)}";')
    lines.append(f'{indent}node [shape=box, style="rounded,filled", fontname="Helvetica"];')
    lines.append(f'{indent}{key}_sup [label="supervisor\\n{strategy.name}", fillcolor="#cfe2f3"];')
    for child, fate, label in _fates(strategy):
        lines.append(
            f'{indent}{key}_{child} [label="{child}\\n{label}", fillcolor="{_COLOURS[fate]}"];'
        )
        lines.append(f"{indent}{key}_sup -> {key}_{child};")
    lines.append("}" if standalone else "  }")
    return lines


def _mermaid(strategy: Strategy) -> list[str]:
    key = strategy.name.lower()
    lines = [f'  subgraph {key}["{_title(strategy)}"]']
    lines.append(f'    {key}_sup["supervisor<br/>{strategy.name}"]')
    for child, fate, label in _fates(strategy):
        lines.append(f'    {key}_{child}["{child}<br/>{label}"]:::{fate}')
        lines.append(f"    {key}_sup --> {key}_{child}")
    lines.append("  end")
    return lines


def _mermaid_classes() -> list[str]:
    return [f"  classDef {fate} fill:{colour}" for fate, colour in _COLOURS.items()]


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"diagram format must be 'dot' or 'mermaid' (got {format!r})")


def strategy_diagram_for(strategy: Strategy, format: str) -> str:
    """One strategy's picture: which siblings stop (in order) and start (in order).

    Raises:
        ValueError: *format* is not ``"dot"`` or ``"mermaid"``.
    """
    _check_format(format)
    if format == "dot":
        return "\n".join(_dot(strategy, standalone=True)) + "\n"
    return "\n".join(["flowchart TB", *_mermaid(strategy), *_mermaid_classes()]) + "\n"


def strategy_diagrams(format: str) -> str:
    """Every strategy's picture in one diagram, as DOT or Mermaid text.

    Raises:
        ValueError: *format* is not ``"dot"`` or ``"mermaid"``.
    """
    _check_format(format)
    if format == "dot":
        lines = ["digraph supervisor_strategies {", '  fontname="Helvetica";']
        for strategy in Strategy:
            lines.extend(_dot(strategy, standalone=False))
        lines.append("}")
    else:
        lines = ["flowchart TB"]
        for strategy in Strategy:
            lines.extend(_mermaid(strategy))
        lines.extend(_mermaid_classes())
    return "\n".join(lines) + "\n"


def generated_files() -> dict[str, str]:
    """File name → content of every generated diagram (for docs/_generated/)."""
    files = {}
    for strategy in Strategy:
        key = strategy.name.lower()
        files[f"strategy_{key}.dot"] = strategy_diagram_for(strategy, "dot")
        files[f"strategy_{key}.mmd"] = strategy_diagram_for(strategy, "mermaid")
    files["strategies.dot"] = strategy_diagrams("dot")
    files["strategies.mmd"] = strategy_diagrams("mermaid")
    return files
