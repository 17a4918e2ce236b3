"""The strategy pictures are drawn from plan_restart, and the committed ones are fresh."""

from __future__ import annotations

from pathlib import Path

import pytest

from nursemaid.supervisor._diagram import generated_files, strategy_diagram_for, strategy_diagrams
from nursemaid.supervisor._spec import Strategy
from nursemaid.supervisor._strategy import strategy_diagram

GENERATED = Path(__file__).resolve().parents[2] / "docs" / "_generated"


@pytest.mark.parametrize("name", sorted(generated_files()))
def test_generated_strategy_diagrams_are_fresh(name: str) -> None:
    path = GENERATED / name
    assert path.exists(), (
        f"{path} is missing: run python -m nursemaid diagram --write docs/_generated"
    )
    assert path.read_text() == generated_files()[name], (
        f"{path} is stale: run python -m nursemaid diagram --write docs/_generated"
    )


def test_rest_for_one_picture_shows_the_plan_order() -> None:
    dot = strategy_diagram_for(Strategy.REST_FOR_ONE, "dot")
    assert 'label="a\\nuntouched"' in dot
    assert 'label="c\\nstop 2, start 2"' in dot
    assert 'label="d\\nstop 1, start 3"' in dot


@pytest.mark.parametrize("format", ["dot", "mermaid"])
def test_every_strategy_is_drawn(format: str) -> None:
    text = strategy_diagrams(format)
    for strategy in Strategy:
        assert strategy.name in text
    assert strategy_diagram(format) == text


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="diagram format must be 'dot' or 'mermaid'"):
        strategy_diagrams("svg")
