"""docs/bad-input.md cannot rot: every test it links to exists, and every row links one.

The page lists every kind of bad input (from a worker, or from a client) and the
named error it gets, each row backed by links to tests. This checks the links
resolve to real test functions, so a renamed or deleted test fails the suite
until the page is updated with it.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "bad-input.md"
LINK = re.compile(r"\[`(test_\w+)`\]\(\.\./(tests/[\w/]+\.py)\)")


def table_rows() -> list[str]:
    return [
        line
        for line in PAGE.read_text().splitlines()
        if line.startswith("| ") and not line.startswith(("| The ", "|---"))
    ]


@cache
def functions_in(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text())
    return frozenset(
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    )


LINKS = sorted({(name, path) for row in table_rows() for name, path in LINK.findall(row)})


def test_the_page_has_both_tables() -> None:
    text = PAGE.read_text()
    assert "## What a worker can do wrong" in text
    assert "## What a client can do wrong" in text
    assert len(table_rows()) >= 40


@pytest.mark.parametrize("row", table_rows(), ids=lambda row: row.split("|")[1].strip()[:60])
def test_every_row_names_an_error_and_links_a_test(row: str) -> None:
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert len(cells) == 4, row
    assert cells[1], "the 'You get' column is empty"
    assert LINK.findall(cells[3]), "no test linked"
    assert not LINK.sub("", cells[3]).strip(" ,"), f"not a test link: {cells[3]!r}"


@pytest.mark.parametrize(("name", "path"), LINKS, ids=[name for name, _ in LINKS])
def test_every_linked_test_exists(name: str, path: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"{path} does not exist"
    assert name in functions_in(file), f"{path} has no test named {name}"
