"""Every example with a ``main`` runs to completion: examples are documentation that must work."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def has_main(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
        for node in tree.body
    )


RUNNABLE = sorted(path for path in EXAMPLES.glob("*.py") if has_main(path))


def test_there_are_examples_to_run() -> None:
    assert RUNNABLE, f"no example with a main() in {EXAMPLES}"


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNNABLE, ids=[path.name for path in RUNNABLE])
def test_example_runs_to_completion(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "an example should show what it did"


@pytest.mark.slow
def test_port_hello_prints_the_workers_answers() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "port_hello.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "hello, world!" in result.stdout
    assert "2 + 3 = 5" in result.stdout
    assert "the worker raised ZeroDivisionError" in result.stdout
    assert "worker exited with status 0" in result.stdout
