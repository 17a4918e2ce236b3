"""docs/tutorial.md says what its programs print; these tests run them and check it.

Every ``console`` block of the tutorial that runs ``python NAME.py`` is followed by
that program's expected output; the program is run for real, from
``docs/examples/tutorial/`` as the tutorial says, and its output must match line
for line. So the tutorial cannot drift away from the code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
TUTORIAL = DOCS / "tutorial.md"
EXAMPLES = DOCS / "examples" / "tutorial"


def console_runs() -> list[tuple[str, list[str]]]:
    """(program, expected output lines) for each ``$ python NAME.py`` in the tutorial."""
    runs: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", TUTORIAL.read_text(), flags=re.S):
        program: str | None = None
        for line in block.splitlines():
            if line.startswith("$ "):
                match = re.fullmatch(r"\$ python (\w+\.py)", line)
                program = match.group(1) if match else None
                if program:
                    runs.append((program, []))
            elif program:
                runs[-1][1].append(line)
    return runs


RUNS = console_runs()


def test_the_tutorial_runs_every_example_program() -> None:
    shown = {program for program, _ in RUNS}
    assert shown == {"one_port.py", "pool.py", "tree.py"}


def test_every_included_file_exists() -> None:
    included = re.findall(r"```\{literalinclude\} (\S+)", TUTORIAL.read_text())
    assert included
    for path in included:
        assert (DOCS / path).is_file(), path


@pytest.mark.slow
@pytest.mark.parametrize(("program", "expected"), RUNS, ids=[p for p, _ in RUNS])
def test_example_prints_what_the_tutorial_shows(program: str, expected: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, program],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected
