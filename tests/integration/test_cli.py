"""``python -m nursemaid``: its commands, its diagrams, and its argument errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nursemaid.__main__ import main
from nursemaid.supervisor._strategy import strategy_diagram
from nursemaid.workers._lifecycle import TRANSITIONS, lifecycle_diagram


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse exits for --help and bad arguments
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_lifecycle_diagram_is_the_lifecycle_tables_own(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    status, out, _ = run_main(capsys, "diagram", "--format", fmt, "lifecycle")
    assert status == 0
    assert out == lifecycle_diagram(fmt)  # type: ignore[arg-type]


def test_lifecycle_diagram_draws_every_transition_in_the_table(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run_main(capsys, "diagram", "lifecycle")
    for state, row in TRANSITIONS.items():
        for event, target in row.items():
            assert f"{state.name} --> {target.name}: {event.name}" in out


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_supervisor_diagram_is_the_strategy_tables_own(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    status, out, _ = run_main(capsys, "diagram", "--format", fmt, "supervisor")
    assert status == 0
    assert out == strategy_diagram(fmt)


def test_diagram_without_a_name_prints_both_lifecycle_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, out, _ = run_main(capsys, "diagram")
    lifecycle, supervisor = lifecycle_diagram("mermaid"), strategy_diagram("mermaid")
    assert lifecycle in out
    assert supervisor in out
    assert out.index(lifecycle) < out.index(supervisor)


def test_unknown_diagram_is_a_usage_error_naming_the_choices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _, err = run_main(capsys, "diagram", "pool")
    assert status == 2
    expected = "lifecycle, supervisor, one_for_one, one_for_all or rest_for_one"
    assert f"unknown diagram 'pool' (expected {expected})" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "0"], "argument --duration: must be a positive, finite number (got '0')"),
        (["--duration", "soon"], "argument --duration: expected a number of seconds (got 'soon')"),
        (["--size", "0"], "argument --size: must be at least 1 (got '0')"),
        (["--clients", "-3"], "argument --clients: must be at least 1 (got '-3')"),
        (["--fault-rate", "5"], "between 0 and 1 (got '5')"),
        (["--faults", "kill,flood"], "unknown fault 'flood'"),
    ],
)
def test_bad_demo_arguments_are_usage_errors_before_anything_starts(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run_main(capsys, "demo", *argv)
    assert status == 2
    assert message in err
    assert out == ""


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_main(capsys)
    assert status == 2
    assert "COMMAND" in err


def test_python_dash_m_nursemaid_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nursemaid", "diagram", "--format", "dot", "lifecycle"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert lifecycle_diagram("dot") in done.stdout


def test_importing_the_command_line_module_imports_no_trio() -> None:
    code = "import sys, nursemaid.__main__; print('trio' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
