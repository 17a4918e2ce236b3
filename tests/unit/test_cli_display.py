"""The demo's live display: rich on a terminal when installed, plain lines otherwise."""

from __future__ import annotations

import io

import pytest

from nursemaid._cli import _display
from nursemaid._cli._display import NullDisplay, PlainDisplay, RichDisplay, Snapshot, make_display


def snapshot(elapsed: float, *, stopping: bool = False) -> Snapshot:
    return Snapshot(
        elapsed=elapsed,
        duration=15.0,
        requests=1234,
        ok=1200,
        in_flight=3,
        errors={"RequestTimeout": 4, "WorkerCrashed": 30},
        restarts=31,
        states={"idle": 2, "leased": 1, "starting": 1},
        faults={"kill": 30, "hang": 4},
        stopping=stopping,
        recent=("pid 1 stderr: demo worker: hanging",),
    )


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_show_requests_errors_restarts_and_worker_states() -> None:
    out = io.StringIO()
    with PlainDisplay(out) as display:
        display.update(snapshot(0.0))
    line = out.getvalue()
    assert "requests 1,234" in line
    assert "RequestTimeout=4" in line
    assert "restarts 31" in line
    assert "idle=2 leased=1 starting=1" in line


def test_plain_display_prints_at_most_once_per_interval_and_the_last_at_exit() -> None:
    out = io.StringIO()
    with PlainDisplay(out, interval=1.0) as display:
        for tenth in range(25):
            display.update(snapshot(tenth / 10))
    lines = out.getvalue().splitlines()
    # at 0.0, 1.0 and 2.0 s, then the last snapshot (2.4 s) when the run ends
    assert len(lines) == 4
    assert lines[-1].startswith("[  2.4/15s]")


def test_plain_display_says_when_the_run_is_draining() -> None:
    out = io.StringIO()
    with PlainDisplay(out) as display:
        display.update(snapshot(15.0, stopping=True))
    assert out.getvalue().startswith("[draining]")


def test_auto_is_plain_when_output_is_not_a_terminal() -> None:
    assert isinstance(make_display(io.StringIO(), "auto"), PlainDisplay)


def test_auto_is_rich_on_a_terminal() -> None:
    pytest.importorskip("rich")
    assert isinstance(make_display(FakeTerminal(), "auto"), RichDisplay)


def test_without_rich_every_mode_but_none_falls_back_to_plain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_display, "rich_available", lambda: False)
    for mode in ("auto", "rich", "plain"):
        assert isinstance(make_display(FakeTerminal(), mode), PlainDisplay)  # type: ignore[arg-type]
    assert isinstance(make_display(FakeTerminal(), "none"), NullDisplay)


def test_rich_display_renders_the_figures() -> None:
    pytest.importorskip("rich")
    out = FakeTerminal()
    with RichDisplay(out) as display:
        display.update(snapshot(3.0))
    text = out.getvalue()
    for fragment in ("1,234", "RequestTimeout: 4", "idle=2", "demo worker: hanging"):
        assert fragment in text
