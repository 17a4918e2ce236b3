"""nursemaid.testing exports each public name once and imports lazily.

``python -m nursemaid.testing.fault_worker`` executes ``nursemaid/testing/__init__.py``
first, so that file must import nothing heavy (trio, attrs, cattrs, hypothesis).
"""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import nursemaid.testing


def test_type_checking_imports_match_lazy_table() -> None:
    tree = ast.parse(Path(inspect.getfile(nursemaid.testing)).read_text())
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for stmt in node.body
        if isinstance(stmt, ast.ImportFrom)
        for alias in stmt.names
    }
    assert set(nursemaid.testing.__all__) == names


@pytest.mark.parametrize("name", nursemaid.testing.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(nursemaid.testing, name) is not None


def test_importing_nursemaid_testing_imports_nothing_heavy() -> None:
    code = (
        "import sys, nursemaid.testing;"
        "bad = [m for m in ('trio', 'attrs', 'cattrs', 'hypothesis') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", nursemaid.testing.__all__)
def test_public_classes_and_functions_show_the_public_module(name: str) -> None:
    obj = getattr(nursemaid.testing, name)
    if isinstance(obj, type) or callable(obj):
        assert obj.__module__ == "nursemaid.testing"
