"""The demo's small parts: its options, its fault claims, and its careful SIGKILL."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from nursemaid._cli._demo import DemoConfig, kill_child
from nursemaid._cli.demo_worker import claim


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duration": 0}, "duration must be a positive number of seconds (got 0)"),
        ({"duration": float("inf")}, "duration must be a positive number"),
        ({"requests": 0}, "requests must be at least 1 (got 0)"),
        ({"size": 0}, "size must be at least 1 (got 0)"),
        ({"clients": 0}, "clients must be at least 1 (got 0)"),
        ({"fault_rate": 1.5}, "fault rate is a probability per request, between 0 and 1"),
        ({"faults": ("kill", "flood")}, "unknown fault kinds ['flood']"),
    ],
)
def test_bad_demo_config_is_a_value_error_naming_the_option(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        DemoConfig(**options)  # type: ignore[arg-type]


def test_an_armed_fault_is_claimed_by_exactly_one_worker(tmp_path: Path) -> None:
    (tmp_path / "hang").touch()
    assert claim(str(tmp_path), "hang") is True
    assert claim(str(tmp_path), "hang") is False
    assert [p.name.split(".")[:2] for p in tmp_path.iterdir()] == [["hang", "taken"]]


def test_nothing_armed_means_nothing_claimed(tmp_path: Path) -> None:
    assert claim(str(tmp_path), "garbage") is False


def test_kill_child_kills_a_live_child() -> None:
    with subprocess.Popen(["sleep", "30"]) as child:
        assert kill_child(child.pid) is True
        assert child.wait(timeout=10) == -signal.SIGKILL


def test_kill_child_refuses_a_process_that_is_not_our_child() -> None:
    # sh is our child; the sleep it starts is not (it is our grandchild).
    with subprocess.Popen(
        ["sh", "-c", "sleep 30 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    ) as shell:
        assert shell.stdout is not None
        grandchild = int(shell.stdout.readline())
        try:
            assert kill_child(grandchild) is False
            assert Path(f"/proc/{grandchild}").exists()
        finally:
            assert kill_child(grandchild) is False
            subprocess.run(["kill", str(grandchild)], check=True)
            shell.wait(timeout=10)


def test_kill_child_refuses_a_reaped_child() -> None:
    with subprocess.Popen(["true"]) as child:
        child.wait(timeout=10)
    assert kill_child(child.pid) is False
